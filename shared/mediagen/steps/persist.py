"""Step ``persist`` (function ``persist``, state ``Persist``): stream the result into S3, write
``result.json``, record the outputs, publish "Job Succeeded"."""

from __future__ import annotations

import random
import time
from typing import Any

from mediagen.errors import MediagenError, StorageError
from mediagen.records import JobStatus, utcnow
from mediagen.redact import redact_text
from mediagen.steps.core import (
    Ports,
    _log,
    _move,
    _publish,
)
from mediagen.steps.phases import Phase

#: Attempts at fetching a result whose download failed in a way that is safe to repeat.
DOWNLOAD_ATTEMPTS = 3


class ResultDownloadFailed(MediagenError):
    """The result could not be downloaded completely after :data:`DOWNLOAD_ATTEMPTS` attempts."""

    code = "download_failed"


class ResultExpired(MediagenError):
    """The provider's temporary result URL no longer serves the file ([003:68-70]: treat
    ``fileURL`` as temporary)."""

    code = "result_expired"


def persist_result(state: dict[str, Any], ports: Ports) -> dict[str, Any]:
    """Copy the provider's result into S3 and finish the job.

    Writes ``<prefix><job_id>/output.<ext>`` (real content type, SHA-256) -- and, for a zip result, each
    member as ``<prefix><job_id>/files/<name>`` -- plus ``<prefix><job_id>/result.json``; records SUCCEEDED with
    the outputs and the detection lag; publishes "Job Succeeded". Transient download failures are retried
    (:data:`DOWNLOAD_ATTEMPTS`, jittered backoff); an expired result URL is not.

    Raises:
        ResultExpired: the provider no longer serves the result.
        MediagenError: the result could not be fetched or stored. Either way the state machine records
            PIPELINE_FAILED through :func:`record_failure`, with this message.
    """
    from mediagen.provider import DownloadFailed, DownloadUnavailable, ProviderUnavailable

    assert ports.outputs is not None, "persist needs an output store"
    job_id = state["job_id"]
    record = ports.jobs.transition(job_id, JobStatus.PERSISTING,
                                    expect={JobStatus.SUBMITTED, JobStatus.PERSISTING})
    started = utcnow()
    base = f"{record.get('output_prefix', '')}{job_id}/"
    for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
        try:
            outputs, source_url = _fetch_and_store(state["provider_task_id"], base, ports)
            break
        except (DownloadUnavailable, ProviderUnavailable) as exc:
            retryable: MediagenError = exc
        except DownloadFailed as exc:
            if exc.http_status in (403, 404, 410):
                raise ResultExpired(f"the provider's result URL no longer serves the file (HTTP {exc.http_status}); "
                                    "the result could not be fetched before it expired") from exc
            raise
        except StorageError as exc:
            if exc.code != "download_incomplete":
                raise
            retryable = exc
        if attempt == DOWNLOAD_ATTEMPTS:
            raise ResultDownloadFailed(f"result download failed {DOWNLOAD_ATTEMPTS} times: {retryable.message}") \
                from retryable
        _log().warning("result download failed; retrying", job_id=job_id, attempt=attempt, error=retryable.message)
        time.sleep(random.uniform(0.5, 1.0) * 2 ** (attempt - 1))

    signal = record.get("callback_received_at") or record.get("provider_completed_at")
    lag_ms = _ms_between(signal, started) if signal else None
    manifest = {
        "job_id": job_id, "model": record.get("model"), "provider": record.get("provider") or "cliprise",
        "provider_task_id": state["provider_task_id"],
        "status": str(JobStatus.SUCCEEDED), "outputs": outputs, "metadata": record.get("metadata", {}),
        "created_at": record.get("created_at"), "completed_at": utcnow(), "source_url": source_url,
    }
    manifest_obj = ports.outputs.put_json(base + "result.json", manifest)
    done = _move(job_id, JobStatus.SUCCEEDED, ports, expect={JobStatus.PERSISTING}, set_fields={
        "outputs": outputs, "manifest_uri": manifest_obj.uri, "persist_started_at": started,
        "detection_lag_ms": lag_ms})
    _log().info("job succeeded", job_id=job_id, outputs=len(outputs), bytes=outputs[0]["bytes"],
                detection_lag_ms=lag_ms)
    ports.metrics.count("BytesPersisted", sum(int(o["bytes"]) for o in outputs), unit="Bytes")
    if lag_ms is not None:
        ports.metrics.count("DetectionLagMs", lag_ms, unit="Milliseconds")
    _publish(done, ports)
    return {"job_id": job_id, "phase": Phase.SUCCEEDED, "outputs": len(outputs)}


def _fetch_and_store(provider_task_id: str, base: str, ports: Ports) -> tuple[list[dict[str, Any]], str]:
    """One attempt: status -> fileURL -> stream into S3 (and unpack a zip). Returns (outputs, redacted URL)."""
    import tempfile

    from mediagen.provider import Succeeded
    from mediagen.storage import unpack_zip

    assert ports.outputs is not None
    client = ports.provider()
    result = client.status(provider_task_id)
    if not isinstance(result, Succeeded):
        raise MediagenError(f"status changed after success: {type(result).__name__}", code="result_unavailable")
    with tempfile.TemporaryFile() as spool, client.open_download(provider_task_id, result.file_url) as download:
        chunks = download.iter_bytes()
        first = next(chunks, b"")
        is_zip = first.startswith(b"PK\x03\x04")
        stored = ports.outputs.put_stream(base + "output", _prepend(first, chunks), declared_type=download.content_type,
                                          expected_bytes=download.content_length, tee=spool if is_zip else None)
        outputs = [stored.to_dict()]
        if is_zip:
            spool.seek(0)
            outputs += [{**m.to_dict(), "unpacked_from": stored.key}
                        for m in unpack_zip(ports.outputs, spool, base + "files/")]
    return outputs, redact_text(result.file_url or "")


def _prepend(first: bytes, rest: Any) -> Any:
    yield first
    yield from rest


def _ms_between(start_iso: str, end_iso: str) -> int | None:
    from datetime import datetime

    try:
        a = datetime.fromisoformat(start_iso.replace("Z", "+00:00"))
        b = datetime.fromisoformat(end_iso.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0, int((b - a).total_seconds() * 1000))

