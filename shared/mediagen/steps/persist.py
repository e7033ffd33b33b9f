"""Step ``persist`` (function ``persist``, state ``Persist``): stream every output of the job's provider into
S3, write ``result.json``, record the outputs, publish "Job Succeeded"."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

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

#: Attempts at fetching a result (or one of its outputs) whose download failed in a way that is safe to repeat.
DOWNLOAD_ATTEMPTS = 3
#: The provider of a job whose execution input names none (jobs accepted before the provider field existed).
DEFAULT_PROVIDER = "cliprise"

_T = TypeVar("_T")


class ResultDownloadFailed(MediagenError):
    """The result could not be downloaded completely after :data:`DOWNLOAD_ATTEMPTS` attempts."""

    code = "download_failed"


class ResultExpired(MediagenError):
    """The provider's temporary result URL no longer serves the file (Cliprise: treat ``fileURL`` as temporary
    [003:68-70]; Clipia media URLs are temporary too)."""

    code = "result_expired"


def persist_result(state: dict[str, Any], ports: Ports) -> dict[str, Any]:
    """Copy every output of the provider's result into S3 and finish the job.

    The provider is ``state["provider"]`` (default :data:`DEFAULT_PROVIDER`), its request
    ``state["provider_task_id"]``; its port's ``result`` lists the outputs and ``open_download`` streams each.
    Keys: ``<prefix><job_id>/output.<ext>`` for a single output, ``output-<n>.<ext>`` (n from 1, in the
    provider's order) for several, each with its sniffed content type and SHA-256. A zip output is kept and
    unpacked from the bucket with ranged reads (no local staging) into ``files/`` (``files-<n>/`` for several
    outputs); a zip over a :class:`~mediagen.storage.ZipLimits` limit (or unreadable) is kept whole and the job
    still SUCCEEDS, with ``unpack_error`` on the record. ``result.json`` lists every object with ``provider``
    and ``provider_task_id`` (the provider's request id). Records SUCCEEDED (``outputs``, ``delivered_by``,
    detection lag) and publishes "Job Succeeded".

    Transient failures (provider unavailable, download cut short) are retried per output
    (:data:`DOWNLOAD_ATTEMPTS`, jittered backoff); an expired result URL is not.

    Raises:
        ResultExpired: the provider no longer serves an output (HTTP 403/404/410).
        ResultDownloadFailed: an output could not be fetched completely after :data:`DOWNLOAD_ATTEMPTS`.
        MediagenError: the result could not be listed or stored (``result_unavailable``: the provider no longer
            reports the request as completed). Either way the state machine records PIPELINE_FAILED through
            :func:`record_failure`, with this message.
    """
    from mediagen.provider import ResultNotReady

    assert ports.outputs is not None, "persist needs an output store"
    assert ports.providers is not None, "persist needs the provider ports"
    job_id = state["job_id"]
    task_id = state["provider_task_id"]
    name = state.get("provider") or DEFAULT_PROVIDER
    record = ports.jobs.transition(job_id, JobStatus.PERSISTING,
                                    expect={JobStatus.SUBMITTED, JobStatus.PERSISTING})
    started = utcnow()
    base = f"{record.get('output_prefix', '')}{job_id}/"
    provider = ports.providers(name)
    try:
        results = _attempts(lambda: provider.result(task_id), job_id)
    except ResultNotReady as exc:
        raise MediagenError(f"{name} no longer reports request {task_id} as completed: {exc.message}",
                            code="result_unavailable") from exc

    single = len(results) == 1
    outputs: list[dict[str, Any]] = []
    sources: list[str] = []
    unpack_error: dict[str, Any] | None = None
    for n, output in enumerate(results, start=1):
        stem, files = (base + "output", base + "files/") if single else (base + f"output-{n}", base + f"files-{n}/")
        stored = _attempts(partial(_store_one, provider, task_id, output, stem, ports), job_id)
        outputs.append(stored)
        sources.append(_source(output.url))
        if stored["content_type"] == "application/zip":
            members, refused = _unpack(stored["key"], files, ports)
            outputs += members
            unpack_error = unpack_error or refused

    signal = record.get("callback_received_at") or record.get("provider_completed_at")
    lag_ms = _ms_between(signal, started) if signal else None
    manifest = {
        "job_id": job_id, "model": record.get("model"), "provider": name, "provider_task_id": task_id,
        "status": str(JobStatus.SUCCEEDED), "outputs": outputs, "metadata": record.get("metadata", {}),
        "created_at": record.get("created_at"), "completed_at": utcnow(), "source_urls": sources,
    }
    if unpack_error:
        manifest["unpack_error"] = unpack_error
    manifest_obj = ports.outputs.put_json(base + "result.json", manifest)
    fields: dict[str, Any] = {"outputs": outputs, "manifest_uri": manifest_obj.uri, "persist_started_at": started,
                              "detection_lag_ms": lag_ms, "delivered_by": name}
    if unpack_error:
        fields["unpack_error"] = unpack_error
    done = _move(job_id, JobStatus.SUCCEEDED, ports, expect={JobStatus.PERSISTING}, set_fields=fields)
    _log().info("job succeeded", job_id=job_id, provider=name, outputs=len(outputs),
                bytes=sum(int(o["bytes"]) for o in outputs), detection_lag_ms=lag_ms)
    ports.metrics.count("BytesPersisted", sum(int(o["bytes"]) for o in outputs), unit="Bytes")
    if lag_ms is not None:
        ports.metrics.count("DetectionLagMs", lag_ms, unit="Milliseconds")
    _publish(done, ports)
    return {"job_id": job_id, "phase": Phase.SUCCEEDED, "outputs": len(outputs)}


def _attempts(call: Callable[[], _T], job_id: str) -> _T:
    """``call()``, repeated on failures that are safe to repeat; an expired URL becomes :class:`ResultExpired`."""
    from mediagen.provider import DownloadFailed, ProviderUnavailable

    for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
        try:
            return call()
        except ProviderUnavailable as exc:  # DownloadUnavailable included
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
    raise AssertionError("unreachable")  # pragma: no cover


def _store_one(provider: Any, task_id: str, output: Any, stem: str, ports: Ports) -> dict[str, Any]:
    """Stream one output into ``<stem>.<ext>``; returns the stored object's dict."""
    assert ports.outputs is not None
    with provider.open_download(task_id, output) as download:
        stored = ports.outputs.put_stream(stem, download.iter_bytes(),
                                          declared_type=download.content_type or output.content_type,
                                          expected_bytes=download.content_length)
    return stored.to_dict()


def _unpack(zip_key: str, dest: str, ports: Ports) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Unpack the stored zip ``zip_key`` into ``dest`` straight from the bucket (ranged reads). A zip refused
    by the limits, or unreadable, is kept as it is: ``([], {code, message, key})``."""
    from mediagen.storage import ZipLimits, unpack_zip_from_store

    assert ports.outputs is not None
    try:
        members = unpack_zip_from_store(ports.outputs, zip_key, dest, ZipLimits.from_env())
    except StorageError as exc:
        if exc.code not in ("zip_refused", "bad_zip"):
            raise
        _log().warning("zip result kept but not unpacked", key=zip_key, code=exc.code, error=exc.message)
        return [], {"code": exc.code, "message": exc.message, "key": zip_key}
    return [{**m.to_dict(), "unpacked_from": zip_key} for m in members], None


def _source(url: str | None) -> str:
    """Where an output came from, for ``result.json``: the URL without its query (signed CDN links and
    Cliprise ``fileURL`` carry credentials there), redacted."""
    return redact_text((url or "").split("?", 1)[0])


def _ms_between(start_iso: str, end_iso: str) -> int | None:
    from datetime import datetime

    try:
        a = datetime.fromisoformat(start_iso.replace("Z", "+00:00"))
        b = datetime.fromisoformat(end_iso.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0, int((b - a).total_seconds() * 1000))
