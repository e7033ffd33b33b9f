"""Hand-written fakes for the ports of ``mediagen.steps`` (no mocks of internals)."""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from typing import Any

from mediagen.errors import JobNotFound, StatusConflict
from mediagen.records import JobStatus, utcnow


class InMemoryJobs:
    """``JobRepository`` with the same conditional semantics as the DynamoDB adapter."""

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

    def transition(self, job_id: str, to: JobStatus | None, *, expect: Any = None,
                   set_fields: dict[str, Any] | None = None, add: dict[str, int] | None = None,
                   remove: tuple[str, ...] = (), unless_set: str | None = None) -> dict[str, Any]:
        with self._lock:
            item = self.items.get(job_id)
            if item is None:
                raise JobNotFound(job_id)
            if expect and item["status"] not in {str(s) for s in expect}:
                raise StatusConflict(f"{job_id} is {item['status']}")
            if unless_set and unless_set in item:
                raise StatusConflict(f"{job_id} already has {unless_set}")
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
