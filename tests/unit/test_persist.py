"""Persist on the provider port: every output of a Clipia request stored (own key, type, SHA-256), a zip
unpacked from the bucket with ranged reads, a zip over the limits kept with the reason, an expired URL not
retried, and result.json naming the provider and its request id."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from typing import Any

import pytest

from mediagen.provider import DownloadFailed, DownloadUnavailable
from mediagen.provider.port import ResultOutput
from mediagen.records import JOB_RECORD_FIELDS
from mediagen.settings import Settings
from mediagen.steps.core import Ports
from mediagen.steps.persist import ResultExpired, persist_result
from mediagen.steps.phases import Phase
from tests.fakes import InMemoryJobs, MemoryOutputStore, PortProvider, RecordingEvents

PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 300
JPEG = b"\xff\xd8\xff\xe0" + b"\x02" * 300
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x03" * 300


def _zip(files: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _ports(provider: PortProvider, jobs: InMemoryJobs | None = None) -> tuple[Ports, InMemoryJobs, MemoryOutputStore]:
    jobs = jobs or InMemoryJobs()
    jobs.create({"job_id": "job-1", "status": "RECEIVED", "model": "nano-banana-2", "output_prefix": "out/"})
    jobs.transition("job-1", None, set_fields={"status": "SUBMITTED", "provider_task_id": "req-1"})
    store = MemoryOutputStore()
    named: dict[str, PortProvider] = {provider.name: provider}

    def providers(name: str) -> Any:
        return named[name]

    ports = Ports(settings=Settings(), jobs=jobs, events=RecordingEvents(), provider=lambda: None,  # type: ignore[arg-type,return-value]
                  providers=providers, outputs=store)
    return ports, jobs, store


STATE = {"job_id": "job-1", "provider_task_id": "req-1", "provider": "clipia"}


def test_every_output_of_a_clipia_request_is_stored_under_its_own_key_with_type_and_sha256() -> None:
    outputs = [ResultOutput("https://media.clipia.ai/r/a.png?sig=s3cr3t", "image/png", "image", 0),
               ResultOutput("https://media.clipia.ai/r/b.jpg", "image/jpeg", "image", 1)]
    provider = PortProvider("clipia", native_idempotency=True, result=[outputs], downloads=[[PNG], [JPEG]])
    ports, jobs, store = _ports(provider)

    assert persist_result(dict(STATE), ports)["phase"] == Phase.SUCCEEDED

    record = jobs.get("job-1")
    assert record is not None and record["status"] == "SUCCEEDED" and record["delivered_by"] == "clipia"
    assert [(o["key"], o["content_type"]) for o in record["outputs"]] == [
        ("out/job-1/output-1.png", "image/png"), ("out/job-1/output-2.jpg", "image/jpeg")]
    assert [o["sha256"] for o in record["outputs"]] == [hashlib.sha256(PNG).hexdigest(),
                                                        hashlib.sha256(JPEG).hexdigest()]
    assert store.objects["out/job-1/output-2.jpg"] == JPEG
    assert provider.downloads == [o.url for o in outputs]
    manifest = json.loads(store.objects["out/job-1/result.json"])
    assert manifest["provider"] == "clipia" and manifest["provider_task_id"] == "req-1"
    assert [o["key"] for o in manifest["outputs"]] == ["out/job-1/output-1.png", "out/job-1/output-2.jpg"]
    assert "s3cr3t" not in json.dumps(manifest)
    assert set(record) <= JOB_RECORD_FIELDS


def test_a_job_without_a_provider_field_is_persisted_from_cliprise_as_output_ext() -> None:
    provider = PortProvider("cliprise", result=[[ResultOutput(None)]], downloads=[[MP4]])
    ports, jobs, store = _ports(provider)
    persist_result({"job_id": "job-1", "provider_task_id": "req-1"}, ports)
    record = jobs.get("job-1")
    assert record is not None and [o["key"] for o in record["outputs"]] == ["out/job-1/output.mp4"]
    assert record["delivered_by"] == "cliprise"


def test_a_zip_is_unpacked_from_the_bucket_with_ranged_reads() -> None:
    archive = _zip({"a.png": PNG, "../../etc/b.png": PNG})
    provider = PortProvider("clipia", downloads=[[archive]], download_type="application/zip")
    ports, jobs, store = _ports(provider)
    persist_result(dict(STATE), ports)
    record = jobs.get("job-1")
    assert record is not None
    assert [o["key"] for o in record["outputs"]] == ["out/job-1/output.zip", "out/job-1/files/a.png",
                                                     "out/job-1/files/b.png"]
    assert store.objects["out/job-1/files/b.png"] == PNG
    assert store.range_reads and all(key == "out/job-1/output.zip" for key, _, _ in store.range_reads)
    assert "unpack_error" not in record


def test_a_zip_over_the_limits_is_kept_and_the_job_succeeds_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = _zip({"big.bin": b"\x00" * 2_000_000}, zipfile.ZIP_DEFLATED)  # expands ~1000x: over the ratio cap
    provider = PortProvider("clipia", downloads=[[bomb]])
    ports, jobs, store = _ports(provider)
    persist_result(dict(STATE), ports)
    record = jobs.get("job-1")
    assert record is not None and record["status"] == "SUCCEEDED"
    assert [o["key"] for o in record["outputs"]] == ["out/job-1/output.zip"]
    assert record["unpack_error"]["code"] == "zip_refused" and record["unpack_error"]["key"] == "out/job-1/output.zip"
    assert not any(k.startswith("out/job-1/files/") for k in store.objects)
    assert json.loads(store.objects["out/job-1/result.json"])["unpack_error"]["code"] == "zip_refused"


def test_a_zip_over_the_total_size_cap_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIAGEN_ZIP_MAX_TOTAL_BYTES", "100")
    provider = PortProvider("clipia", downloads=[[_zip({"a.png": PNG})]])
    ports, jobs, _ = _ports(provider)
    persist_result(dict(STATE), ports)
    record = jobs.get("job-1")
    assert record is not None and record["status"] == "SUCCEEDED" and "100" in record["unpack_error"]["message"]


def test_an_expired_url_is_not_retried_and_nothing_is_stored() -> None:
    provider = PortProvider("clipia", downloads=[DownloadFailed("gone", http_status=403)])
    ports, jobs, store = _ports(provider)
    with pytest.raises(ResultExpired):
        persist_result(dict(STATE), ports)
    assert len(provider.downloads) == 1 and store.objects == {}


def test_a_dropped_download_is_retried_for_that_output_only(monkeypatch: pytest.MonkeyPatch) -> None:
    import mediagen.steps.persist as persist

    monkeypatch.setattr(persist.time, "sleep", lambda s: None)
    outputs = [ResultOutput("https://media.clipia.ai/a.png", index=0), ResultOutput("https://media.clipia.ai/b.png",
                                                                                     index=1)]
    provider = PortProvider("clipia", result=[outputs],
                            downloads=[[PNG], DownloadUnavailable("reset"), [PNG]])
    ports, jobs, _ = _ports(provider)
    persist_result(dict(STATE), ports)
    assert provider.downloads == ["https://media.clipia.ai/a.png"] + ["https://media.clipia.ai/b.png"] * 2
    record = jobs.get("job-1")
    assert record is not None and len(record["outputs"]) == 2


def test_a_damaged_zip_is_kept_and_the_job_succeeds_with_the_reason() -> None:
    archive = _zip({"a.png": PNG, "b.png": PNG})
    second = archive.index(b"PK\x03\x04", 4)
    damaged = archive[:second] + b"PK\x00\x00" + archive[second + 4:]  # the second member's header is unreadable
    provider = PortProvider("clipia", downloads=[[damaged]])
    ports, jobs, store = _ports(provider)
    persist_result(dict(STATE), ports)
    record = jobs.get("job-1")
    assert record is not None and record["status"] == "SUCCEEDED"
    assert record["unpack_error"]["code"] == "bad_zip" and store.objects["out/job-1/output.zip"] == damaged
