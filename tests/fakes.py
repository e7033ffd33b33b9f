"""Hand-written fakes for the ports in ``mediagen.pipeline`` (no mocks of internals)."""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from typing import Any

from mediagen.errors import TaskConflict, TaskNotFound
from mediagen.tasks import TaskStatus, utcnow


class InMemoryTasks:
    """``TaskRepository`` with the same conditional semantics as the DynamoDB adapter."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def create(self, record: dict[str, Any]) -> dict[str, Any] | None:
        with self._lock:
            if record["job_id"] in self.items:
                return copy.deepcopy(self.items[record["job_id"]])
            now = utcnow()
            self.items[record["job_id"]] = {"created_at": now, "updated_at": now, "polls": 0, "callbacks": 0,
                                            "transitions": {record["status"]: now}, **copy.deepcopy(record)}
            return None

    def get(self, job_id: str) -> dict[str, Any] | None:
        item = self.items.get(job_id)
        return copy.deepcopy(item) if item else None

    def transition(self, job_id: str, to: TaskStatus | None, *, expect: Any = None,
                   set_fields: dict[str, Any] | None = None, add: dict[str, int] | None = None,
                   remove: tuple[str, ...] = (), unless_set: str | None = None) -> dict[str, Any]:
        with self._lock:
            item = self.items.get(job_id)
            if item is None:
                raise TaskNotFound(job_id)
            if expect and item["status"] not in {str(s) for s in expect}:
                raise TaskConflict(f"{job_id} is {item['status']}")
            if unless_set and unless_set in item:
                raise TaskConflict(f"{job_id} already has {unless_set}")
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
            return copy.deepcopy(item)


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

    def __init__(self, generate: list[Any] | None = None, status: list[Any] | None = None) -> None:
        self.generate_script = list(generate or [])
        self.status_script = list(status or [])
        self.generate_bodies: list[dict[str, Any]] = []
        self.status_calls = 0

    def generate(self, body: dict[str, Any]) -> Any:
        self.generate_bodies.append(body)
        return self._next(self.generate_script)

    def status(self, task_id: str) -> Any:
        self.status_calls += 1
        return self._next(self.status_script)

    @staticmethod
    def _next(script: list[Any]) -> Any:
        item = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(item, BaseException):
            raise item
        return item


class InMemoryOutputStore:
    """``mediagen.storage.OutputStore`` in a dict: objects by key, with the ranged reads zip unpacking uses."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.range_reads: list[tuple[str, int, int]] = []

    def put_stream(self, key_stem: str, chunks: Any, *, declared_type: str | None = None,
                   expected_bytes: int | None = None, tee: Any = None, extension: str | None = None) -> Any:
        import hashlib

        from mediagen.errors import StorageError
        from mediagen.storage import EXTENSIONS, StoredObject, sniff_content_type

        data = b"".join(chunks)
        if expected_bytes is not None and len(data) != expected_bytes:
            raise StorageError(f"download incomplete: received {len(data)} of {expected_bytes} bytes",
                               code="download_incomplete")
        content_type = sniff_content_type(data[:64], declared_type)
        key = f"{key_stem}.{extension or EXTENSIONS.get(content_type, 'bin')}"
        self.objects[key] = data
        return StoredObject(uri=f"s3://fake/{key}", key=key, bytes=len(data), content_type=content_type,
                            sha256=hashlib.sha256(data).hexdigest())

    def put_json(self, key: str, document: dict[str, Any]) -> Any:
        import json

        return self.put_stream(key.rsplit(".", 1)[0], [json.dumps(document).encode()], extension="json")

    def presigned_url(self, key: str, expires_seconds: int) -> str:
        return f"https://fake.example/{key}?X-Amz-Expires={expires_seconds}"

    def size(self, key: str) -> int:
        return len(self.objects[key])

    def read_range(self, key: str, start: int, end: int) -> bytes:
        self.range_reads.append((key, start, end))
        return self.objects[key][start:end]
