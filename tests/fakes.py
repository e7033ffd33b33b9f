"""Hand-written fakes for the ports of ``mediagen.steps`` (no mocks of internals)."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from mediagen.errors import JobNotFound, StatusConflict
from mediagen.records import JobStatus, utcnow


class InMemoryJobs:
    """``JobRepository`` with the same conditional semantics as the DynamoDB adapter."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        #: Every attribute name ever written (created, set, added to): checked against ``JobRecord``.
        self.written_keys: set[str] = set()
        #: Spend counters (``#in-flight:<provider>``, ``#budget:<provider>:<day>``) -> value.
        self.counters: dict[str, int] = {}
        #: Spend counter -> how many times it changed (``counter_state``'s version).
        self.counter_versions: dict[str, int] = {}
        #: Called as ``fault(operation, job_id)`` before each write; may raise to inject a repository fault.
        self.fault: Any = None
        #: Called as ``fault_after(operation, job_id)`` after a write is applied; may raise (the answer is lost).
        self.fault_after: Any = None
        self._lock = threading.Lock()

    def counter(self, key: str) -> int:
        return self.counters.get(key, 0)

    def counter_state(self, key: str) -> tuple[int, int]:
        return self.counters.get(key, 0), self.counter_versions.get(key, 0)

    def set_counter(self, key: str, value: int, *, version: int | None = None) -> bool:
        with self._lock:
            if version is not None and self.counter_versions.get(key, 0) != version:
                return False
            self.counters[key] = value
            self.counter_versions[key] = self.counter_versions.get(key, 0) + 1
            return True

    def create(self, record: dict[str, Any]) -> dict[str, Any] | None:
        with self._lock:
            self.written_keys.update(record)
            if record["job_id"] in self.items:
                return copy.deepcopy(self.items[record["job_id"]])
            now = utcnow()
            self.items[record["job_id"]] = {"created_at": now, "updated_at": now, "polls": 0, "callbacks": 0,
                                            "transitions": {record["status"]: now}, **copy.deepcopy(record)}
            return None

    def get(self, job_id: str) -> dict[str, Any] | None:
        item = self.items.get(job_id)
        return copy.deepcopy(item) if item else None

    def transition(self, job_id: str, to: JobStatus | None, *, expect: Any = None,
                   set_fields: dict[str, Any] | None = None, add: dict[str, int] | None = None,
                   remove: tuple[str, ...] = (), unless_set: str | None = None,
                   if_fields: dict[str, Any] | None = None, counters: Any = ()) -> dict[str, Any]:
        if self.fault is not None:
            self.fault("transition", job_id)
        with self._lock:
            item = self.items.get(job_id)
            if item is None:
                raise JobNotFound(job_id)
            if expect and item["status"] not in {str(s) for s in expect}:
                raise StatusConflict(f"{job_id} is {item['status']}")
            if unless_set and unless_set in item:
                raise StatusConflict(f"{job_id} already has {unless_set}")
            for key, value in (if_fields or {}).items():
                if item.get(key) != value:
                    raise StatusConflict(f"{job_id}: {key} is {item.get(key)!r}, expected {value!r}")
            for change in counters:
                if change.limit is not None and change.amount > 0 \
                        and self.counters.get(change.key, 0) + change.amount > change.limit:
                    from mediagen.budget import CounterLimitReached

                    raise CounterLimitReached(change.key)
            for change in counters:
                self.counters[change.key] = self.counters.get(change.key, 0) + change.amount
                self.counter_versions[change.key] = self.counter_versions.get(change.key, 0) + 1
            self.written_keys.update(set_fields or {}, add or {})
            for key in remove:
                item.pop(key, None)
            now = utcnow()
            if to is not None:
                item["status"] = str(to)
                item["transitions"][str(to)] = now
            item.update(copy.deepcopy(set_fields or {}))
            for key, amount in (add or {}).items():
                item[key] = item.get(key, 0) + amount
            item["updated_at"] = now
            result = copy.deepcopy(item)
        if self.fault_after is not None:  # the write is done, but its caller sees an error (a lost answer)
            self.fault_after("transition", job_id)
        return result

    def scan(self, *, status: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        records = sorted((r for r in self.items.values() if status is None or r.get("status") == status),
                         key=lambda r: str(r.get("created_at", "")), reverse=True)
        return copy.deepcopy(records[:limit] if limit is not None else records)

    def take(self, job_id: str, attribute: str) -> Any:
        with self._lock:
            item = self.items.get(job_id)
            return None if item is None else item.pop(attribute, None)


@dataclass
class RecordingEvents:
    published: list[dict[str, Any]] = field(default_factory=list)

    def publish_job_event(self, record: dict[str, Any]) -> None:
        from mediagen.events import job_event_detail

        self.published.append(job_event_detail(record))


@dataclass
class RecordingStarter:
    started: dict[str, dict[str, Any]] = field(default_factory=dict)

    def start(self, name: str, state: dict[str, Any]) -> str:
        self.started.setdefault(name, state)
        return f"arn:aws:states:us-east-1:123456789012:execution:sm:{name}"


class ScriptedProvider:
    """Answers generate/status from scripts: each entry is a return value or an exception to raise."""

    def __init__(self, generate: list[Any] | None = None, status: list[Any] | None = None,
                 downloads: list[Any] | None = None, download_type: str | None = None,
                 download_length: int | None = None) -> None:
        self.generate_script = list(generate or [])
        self.status_script = list(status or [])
        #: What ``open_download`` streams, one entry per call (the last repeats): a list of chunks, or an
        #: exception raised on ``__enter__``. ``download_length``: the ``Content-Length`` announced.
        self.download_script = list(downloads or [[b""]])
        self.download_type = download_type
        self.download_length = download_length
        self.generate_bodies: list[dict[str, Any]] = []
        self.status_calls = 0

    def generate(self, body: dict[str, Any]) -> Any:
        self.generate_bodies.append(body)
        return self._next(self.generate_script)

    def status(self, provider_task_id: str) -> Any:
        self.status_calls += 1
        return self._next(self.status_script)

    @contextlib.contextmanager
    def open_download(self, provider_task_id: str, file_url: str | None = None) -> Iterator[FakeDownload]:
        item = self._next(self.download_script)
        yield FakeDownload(list(item), self.download_type, self.download_length)

    @staticmethod
    def _next(script: list[Any]) -> Any:
        item = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(item, BaseException):
            raise item
        return item


class PortProvider:
    """The provider port (:class:`mediagen.provider.port.Provider`) from scripts. Each script entry is a return
    value or an exception to raise; the last entry repeats. Counts every call, as an emulator would.

    Args:
        name: ``"cliprise"`` or ``"clipia"``.
        native_idempotency: as the real adapter (Clipia True, Cliprise False).
        submit: what each ``submit`` returns (``Submitted``) or raises (a ``ProviderError``).
        status: what each ``status`` returns (``Queued``/``Running``/``Succeeded``/``Failed``/``Cancelled``).
        result: what each ``result`` returns (a list of ``ResultOutput``).
        downloads: what each ``open_download`` streams: a list of chunks (or an exception).
    """

    def __init__(self, name: str = "cliprise", *, native_idempotency: bool = False,
                 submit: list[Any] | None = None, status: list[Any] | None = None,
                 result: list[Any] | None = None, downloads: list[Any] | None = None,
                 download_type: str | None = None, download_length: int | None = None) -> None:
        from mediagen.provider.port import ResultOutput, Submitted, Succeeded

        self.name = name
        self.native_idempotency = native_idempotency
        self.submit_script = list(submit or [Submitted("ptask-1")])
        self.status_script = list(status or [Succeeded()])
        self.result_script = list(result or [[ResultOutput("https://cdn.example/out.png", "image/png")]])
        self.download_script = list(downloads or [[b"\x89PNG\r\n\x1a\n" + b"0" * 64]])
        self.download_type = download_type
        self.download_length = download_length
        #: ``(body, idempotency_key, webhook_url)`` of every submit call, accepted or not.
        self.submits: list[tuple[dict[str, Any], str, str | None]] = []
        self.status_calls = 0
        self.result_calls = 0
        self.downloads: list[str | None] = []

    def submit(self, body: Any, *, idempotency_key: str, webhook_url: str | None = None) -> Any:
        self.submits.append((copy.deepcopy(dict(body)), idempotency_key, webhook_url))
        return ScriptedProvider._next(self.submit_script)

    def status(self, provider_task_id: str) -> Any:
        self.status_calls += 1
        return ScriptedProvider._next(self.status_script)

    def result(self, provider_task_id: str) -> Any:
        self.result_calls += 1
        return ScriptedProvider._next(self.result_script)

    @contextlib.contextmanager
    def open_download(self, provider_task_id: str, output: Any = None) -> Iterator[FakeDownload]:
        self.downloads.append(getattr(output, "url", None))
        item = ScriptedProvider._next(self.download_script)
        yield FakeDownload(list(item), self.download_type, self.download_length)

    def close(self) -> None:
        pass


@dataclass
class FakeDownload:
    """What ``ClipriseClient.open_download`` yields: chunks, content type and length."""

    chunks: list[bytes]
    content_type: str | None = None
    content_length: int | None = None

    def iter_bytes(self, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        yield from self.chunks


class MemoryOutputStore:
    """``OutputStore`` in memory, with the S3 adapter's contract: content type sniffed, a short stream is refused
    (``download_incomplete``) and nothing truncated is left behind; ranged reads (zip unpacking) are recorded."""

    def __init__(self, bucket: str = "outputs") -> None:
        self.bucket = bucket
        self.objects: dict[str, bytes] = {}
        self.content_types: dict[str, str] = {}
        self.range_reads: list[tuple[str, int, int]] = []

    def put_stream(self, key_stem: str, chunks: Iterable[bytes], *, declared_type: str | None = None,
                   expected_bytes: int | None = None, tee: IO[bytes] | None = None,
                   extension: str | None = None) -> Any:
        from mediagen.errors import StorageError
        from mediagen.storage import EXTENSIONS, StoredObject, sniff_content_type

        body = b"".join(chunks)
        if tee is not None:
            tee.write(body)
        content_type = sniff_content_type(body[:64], declared_type)
        key = f"{key_stem}.{extension or EXTENSIONS.get(content_type, 'bin')}"
        if expected_bytes is not None and len(body) != expected_bytes:
            raise StorageError(f"download incomplete: received {len(body)} of {expected_bytes} bytes",
                               code="download_incomplete")
        self.objects[key], self.content_types[key] = body, content_type
        return StoredObject(uri=f"s3://{self.bucket}/{key}", key=key, bytes=len(body), content_type=content_type,
                            sha256=hashlib.sha256(body).hexdigest())

    def put_json(self, key: str, document: dict[str, Any]) -> Any:
        from mediagen.storage import StoredObject

        body = json.dumps(document, indent=2, sort_keys=True).encode()
        self.objects[key], self.content_types[key] = body, "application/json"
        return StoredObject(uri=f"s3://{self.bucket}/{key}", key=key, bytes=len(body),
                            content_type="application/json", sha256=hashlib.sha256(body).hexdigest())

    def presigned_url(self, key: str, expires_seconds: int) -> str:
        return f"https://{self.bucket}.s3.eu-west-1.amazonaws.com/{key}?X-Amz-Expires={expires_seconds}"

    def size(self, key: str) -> int:
        return len(self.objects[key])

    def read_range(self, key: str, start: int, end: int) -> bytes:
        self.range_reads.append((key, start, end))
        return self.objects[key][start:end]


@dataclass
class RecordingQueue:
    """``JobQueue`` that keeps what was sent; ``fail`` makes every send raise (the queue refused)."""

    sent: list[dict[str, Any]] = field(default_factory=list)
    fail: bool = False
    #: ``(document, delay)`` put back as new messages; ``(receipt handle, delay)`` made visible again.
    resent: list[tuple[dict[str, Any], int]] = field(default_factory=list)
    requeued: list[tuple[str, int]] = field(default_factory=list)

    def requeue(self, receipt_handle: str, delay_seconds: int) -> None:
        self.requeued.append((receipt_handle, delay_seconds))

    def resend(self, document: dict[str, Any], delay_seconds: int) -> None:
        self.resent.append((copy.deepcopy(document), delay_seconds))

    def send(self, documents: list[dict[str, Any]]) -> None:
        from mediagen.errors import MediagenError

        if self.fail:
            raise MediagenError("the jobs queue refused the job(s): ServiceUnavailable", code="queue_unavailable")
        self.sent.extend(copy.deepcopy(documents))


@dataclass
class RecordingWaker:
    """``TaskWaker``: every Step Functions task token it was asked to wake; ``valid=False``: the wait is gone."""

    woken: list[str] = field(default_factory=list)
    valid: bool = True

    def wake(self, task_token: str, output: dict[str, Any]) -> bool:
        if self.valid:
            self.woken.append(task_token)
        return self.valid


@dataclass
class MapInputs:
    """``InputResolver`` that turns each ``s3://`` URI into ``https://inputs.example/<key>``."""

    def resolve(self, request: dict[str, Any], catalog: Any = None) -> dict[str, Any]:
        text = json.dumps(request)
        return dict(json.loads(text.replace("s3://", "https://inputs.example/")))


class MemoryLedger:
    """``ManifestLedger`` in memory: open manifests, their lines, and which lines are done."""

    def __init__(self) -> None:
        self.manifests: dict[str, dict[str, Any]] = {}
        self.members: dict[str, set[str]] = {}

    def open(self, manifest_id: str, *, job_ids: list[str], report: dict[str, Any]) -> None:
        self.manifests.setdefault(manifest_id, {"job_id": f"#manifest:{manifest_id}", "total": len(job_ids),
                                                "job_ids": list(job_ids), "report": copy.deepcopy(report),
                                                "done": set()})

    def join(self, job_id: str, manifest_id: str) -> None:
        self.members.setdefault(job_id, set()).add(manifest_id)

    def manifests_of(self, job_id: str) -> list[str]:
        return sorted(self.members.get(job_id, set()))

    def mark_done(self, manifest_id: str, job_ids: list[str]) -> dict[str, Any] | None:
        item = self.manifests.get(manifest_id)
        if item is None:
            return None
        item["done"] |= set(job_ids)
        return copy.deepcopy(item) if item["done"] >= set(item["job_ids"]) else None


@dataclass
class MemoryObjects:
    """``ObjectReader`` on a dict ``(bucket, key) -> bytes``."""

    objects: dict[tuple[str, str], bytes] = field(default_factory=dict)
    metadata: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)

    def read(self, bucket: str, key: str, version: str | None, max_bytes: int) -> bytes:
        return self.objects[(bucket, key)][:max_bytes]

    def user_metadata(self, bucket: str, key: str, version: str | None) -> dict[str, str]:
        return dict(self.metadata.get((bucket, key), {}))
