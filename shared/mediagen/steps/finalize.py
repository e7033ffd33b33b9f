"""Step ``finalize`` (function ``finalize``, state ``RecordFailure`` and the backstop rule): record
PIPELINE_FAILED (or TIMED_OUT) for a job whose step raised or whose execution ended outside the workflow."""

from __future__ import annotations

import json
from typing import Any

from mediagen.errors import MediagenError
from mediagen.records import JobStatus
from mediagen.redact import redact_text
from mediagen.steps.core import (
    Ports,
    _log,
    _terminal,
)
from mediagen.steps.phases import Phase

#: Step Functions execution statuses that end a job outside the workflow's own paths -> what is recorded.
EXECUTION_END_STATUS = {"TIMED_OUT": JobStatus.TIMED_OUT, "FAILED": JobStatus.PIPELINE_FAILED,
                        "ABORTED": JobStatus.PIPELINE_FAILED}


def record_execution_end(event: dict[str, Any], ports: Ports) -> dict[str, Any]:
    """The backstop: a "Step Functions Execution Status Change" event (EventBridge, default bus) for an
    execution that ended FAILED, TIMED_OUT or ABORTED. Records TIMED_OUT or PIPELINE_FAILED for its job unless
    the job is already terminal (the usual case: the workflow's own failure path got there first)."""
    detail = event.get("detail") or {}
    try:
        state = json.loads(detail.get("input") or "{}")
    except ValueError:
        state = {}
    status = str(detail.get("status", ""))
    if not isinstance(state, dict) or "job_id" not in state or status not in EXECUTION_END_STATUS:
        _log().warning("execution end event without a job", status=status, execution=detail.get("name"))
        return {"phase": Phase.IGNORED}
    to = EXECUTION_END_STATUS[status]
    message = (f"the workflow execution ended {status} before the job finished"
               + (f": {redact_text(str(detail['cause']))[:500]}" if detail.get("cause") else ""))
    record = _terminal(state["job_id"], to, ports, expect={JobStatus.RECEIVED, JobStatus.SUBMITTING,
                                                           JobStatus.SUBMITTED, JobStatus.PERSISTING},
                       error={"code": f"execution_{status.lower()}", "message": message})
    return {"job_id": state["job_id"], "phase": Phase.ENDED, "status": record.get("status")}


def record_failure(state: dict[str, Any], ports: Ports) -> dict[str, Any]:
    """Record PIPELINE_FAILED for a job whose step raised (the state machine's Catch), unless it is already
    terminal. ``state["error"]`` is Step Functions' ``{"Error": name, "Cause": text}``. An EventBridge
    execution-status event (the backstop rule) goes to :func:`record_execution_end`."""
    if event_is_execution_end(state):
        return record_execution_end(state, ports)
    job_id = state["job_id"]
    error = state.get("error") or {}
    cause = error.get("Cause") or ""
    message, code = cause, error.get("Error") or "pipeline_error"
    try:
        parsed = json.loads(cause)
        if isinstance(parsed, dict):
            message = parsed.get("errorMessage") or message
            code = parsed.get("errorType") or code
    except (TypeError, ValueError):
        pass
    code = _error_codes().get(code, _snake(code))
    record = _terminal(job_id, JobStatus.PIPELINE_FAILED, ports,
                       expect={JobStatus.SUBMITTED, JobStatus.PERSISTING},
                       error={"code": _snake(code), "message": redact_text(str(message))[:1000]})
    return {"job_id": job_id, "phase": Phase.ENDED, "status": record.get("status")}


def event_is_execution_end(event: dict[str, Any]) -> bool:
    return event.get("source") == "aws.states" and "detail" in event


def _error_codes() -> dict[str, str]:
    """Exception class name (Lambda's ``errorType``) -> mediagen error code, for every MediagenError subclass."""
    import mediagen.provider  # noqa: F401 - registers the provider's error classes

    codes, todo = {}, [MediagenError]
    while todo:
        cls = todo.pop()
        codes[cls.__name__] = cls.code
        todo.extend(cls.__subclasses__())
    return codes


def _snake(name: str) -> str:
    out = "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
    return out.replace(".", "_")

