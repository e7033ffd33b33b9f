"""EventBridge events: one per terminal transition of a job.

Every event has ``source`` = the configured event source (default ``mediagen``), a ``detail-type`` from
:data:`DETAIL_TYPES`, and this ``detail`` (schema version 1)::

    {
      "version": "1",
      "job_id": str,
      "status": "SUCCEEDED|REJECTED|FAILED|PIPELINE_FAILED|TIMED_OUT|OUTCOME_UNKNOWN|CANCELLED|EXPIRED",
      "model": str, "modality": str | null, "provider": "cliprise|clipia", "provider_task_id": str | null,
      "outputs": [{"uri": "s3://…", "key": str, "bytes": int, "content_type": str, "sha256": str}],
      "outputs_truncated"?: true, "output_count"?: int,   # outputs too large for an event: see manifest_uri
      "manifest_uri": "s3://…/result.json" | null,
      "error": {"code": str, "message": str, "problems"?: [...]} | null,
      "credits_estimate": int | null, "polls": int, "callbacks": int, "detection_lag_ms": int | null,
      "created_at": ISO-8601, "finished_at": ISO-8601,
      "metadata": {...},         # the job's own metadata, echoed
      "source": {"channel": "sqs|api|s3-manifest|s3-drop", ...}   # where the job came from (optional)
    }

Subscribe to all of them with one rule: ``{"source": ["mediagen"]}``. The JSON Schema is
``docs/events.schema.json`` (documented in ``docs/events.md``).
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from mediagen.records import JobStatus
from mediagen.redact import redact

DETAIL_TYPES: dict[str, str] = {
    JobStatus.SUCCEEDED: "Job Succeeded",
    JobStatus.REJECTED: "Job Rejected",
    JobStatus.FAILED: "Job Failed",
    JobStatus.PIPELINE_FAILED: "Job Pipeline Failed",
    JobStatus.TIMED_OUT: "Job Timed Out",
    JobStatus.OUTCOME_UNKNOWN: "Job Outcome Unknown",
    JobStatus.CANCELLED: "Job Cancelled",
    JobStatus.EXPIRED: "Job Expired",
}

#: EventBridge refuses an entry over 256 KiB; a detail above this many bytes carries a pointer to
#: ``result.json`` instead of its outputs (``outputs_truncated``, ``output_count``, ``manifest_uri``).
MAX_DETAIL_BYTES = 200 * 1024


def job_event_detail(record: dict[str, Any], *, max_bytes: int = MAX_DETAIL_BYTES) -> dict[str, Any]:
    """The event ``detail`` for a terminal job record (secrets redacted). When it would exceed ``max_bytes``
    of JSON (e.g. a zip of 1,000 members), ``outputs`` is emptied and ``outputs_truncated: true`` and
    ``output_count`` say so: every output is listed in ``manifest_uri`` (``result.json``)."""
    detail = _detail(record)
    if len(json.dumps(detail).encode()) > max_bytes:
        detail = {**detail, "outputs": [], "outputs_truncated": True, "output_count": len(record.get("outputs") or [])}
    return detail


def _detail(record: dict[str, Any]) -> dict[str, Any]:
    status = record.get("status", "")
    return redact({
        "version": "1",
        "job_id": record["job_id"],
        "status": status,
        "model": record.get("model", ""),
        "modality": record.get("modality"),
        "provider": record.get("provider") or "cliprise",
        "provider_task_id": record.get("provider_task_id"),
        "outputs": record.get("outputs", []),
        "manifest_uri": record.get("manifest_uri"),
        "error": record.get("error"),
        "credits_estimate": record.get("credits_estimate"),
        "polls": record.get("polls", 0),
        "callbacks": record.get("callbacks", 0),
        "detection_lag_ms": record.get("detection_lag_ms"),
        "created_at": record.get("created_at"),
        "finished_at": record.get("transitions", {}).get(status) or record.get("updated_at"),
        "metadata": record.get("metadata", {}),
        **({"source": record["source"]} if record.get("source") else {}),
    })


class EventPublisher(Protocol):
    def publish_job_event(self, record: dict[str, Any]) -> None: ...


class EventBridgePublisher:
    """``EventPublisher`` on an EventBridge bus.

    Raises:
        mediagen.errors.MediagenError: EventBridge reported the entry as failed.
    """

    def __init__(self, bus_name: str, source: str = "mediagen", events_client: Any | None = None) -> None:
        if events_client is None:
            from mediagen import aws

            events_client = aws.client("events")
        self._events = events_client
        self._bus = bus_name
        self._source = source

    def publish_job_event(self, record: dict[str, Any]) -> None:
        detail = job_event_detail(record)
        entry = {"Source": self._source, "DetailType": DETAIL_TYPES.get(detail["status"], "Job Updated"),
                 "Detail": json.dumps(detail), "EventBusName": self._bus, "Resources": []}
        response = self._events.put_events(Entries=[entry])
        if response.get("FailedEntryCount"):
            from mediagen.errors import MediagenError

            code = response["Entries"][0].get("ErrorCode", "unknown")
            raise MediagenError(f"EventBridge refused the event for {record['job_id']}: {code}", code="event_failed")
