"""Completion that converges: provider callbacks wake the waiting execution early; polling stays the truth.

The state machine waits in ``WaitForResult`` (``lambda:invoke.waitForTaskToken`` with a timeout from the
backoff schedule). :func:`arm_wakeup` runs there and stores the execution's task token in the job record;
:func:`receive_callback` (``POST /callbacks/{token}``) uses that token once to end the wait, so the next
status check happens at once instead of at the end of the backoff interval. Nothing in a callback payload is
trusted ([000:142-151]: delivery not guaranteed, signing only on request; [002:191]: "Always implement status
polling as your primary completion mechanism"): a callback only says
"look now", and the status endpoint decides.

Callback URL token: ``<base64url(job_id)>.<random secret>`` -- the job id lets the receiver find the record
without an index; the secret (compared in constant time) makes the URL unguessable. Forged, unknown, late
and duplicate callbacks are answered exactly like genuine ones and change nothing.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import secrets
from typing import Any, Protocol

from mediagen.errors import StatusConflict
from mediagen.records import JobRepository, JobStatus, utcnow


class TaskWaker(Protocol):
    def wake(self, task_token: str, output: dict[str, Any]) -> bool:
        """End a ``.waitForTaskToken`` wait. Returns False when the token is no longer valid (the wait
        already ended by timeout or by another wake-up)."""
        ...


class StepFunctionsWaker:
    """``TaskWaker`` on Step Functions ``SendTaskSuccess``."""

    def __init__(self, sfn_client: Any | None = None) -> None:
        if sfn_client is None:
            from mediagen import aws

            sfn_client = aws.client("stepfunctions")
        self._sfn = sfn_client

    def wake(self, task_token: str, output: dict[str, Any]) -> bool:
        try:
            self._sfn.send_task_success(taskToken=task_token, output=json.dumps(output))
        except (self._sfn.exceptions.TaskTimedOut, self._sfn.exceptions.InvalidToken,
                self._sfn.exceptions.TaskDoesNotExist):
            return False
        return True


def new_callback_token(job_id: str) -> str:
    """A fresh callback token for ``job_id`` (URL-safe, ~200 bits of secret)."""
    encoded = base64.urlsafe_b64encode(job_id.encode()).decode().rstrip("=")
    return f"{encoded}.{secrets.token_urlsafe(32)}"


def job_id_from_token(token: str) -> str | None:
    """The job id a callback token names, or None when the token is malformed."""
    encoded, dot, secret = token.partition(".")
    if not dot or not encoded or len(secret) < 16 or len(token) > 512:
        return None
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def receive_callback(token: str, payload: str | None, *, jobs: JobRepository, waker: TaskWaker) -> str:
    """Handle one provider callback. Never raises for bad input and never says whether a job exists.

    Args:
        token: the last path segment of the callback URL.
        payload: the raw body (informational only; see module docstring).

    Returns:
        what happened, for logs and metrics only: ``woken``, ``pending`` (no wait armed yet; the next one
        ends at once), ``duplicate``, ``late``, ``forged``.
    """
    job_id = job_id_from_token(token)
    record = jobs.get(job_id) if job_id else None
    if record is None or not hmac.compare_digest(str(record.get("callback_token", "")), token):
        return "forged"
    if record.get("status") != JobStatus.SUBMITTED:
        return "late"
    fields: dict[str, Any] = {"callback_received_at": utcnow()}
    reported = _reported_completion(payload)
    if reported:
        fields["provider_reported"] = reported
    try:
        jobs.transition(record["job_id"], None, expect={JobStatus.SUBMITTED}, set_fields=fields,
                         add={"callbacks": 1}, unless_set="callback_received_at")
    except StatusConflict:
        return "duplicate"
    return wake_execution(record["job_id"], jobs, waker, reason="callback")


def arm_wakeup(event: dict[str, Any], *, jobs: JobRepository, waker: TaskWaker) -> dict[str, Any]:
    """``WaitForResult``: remember the execution's task token so a callback can end the wait.

    Args:
        event: ``{"job_id": str, "task_token": str, "wait_seconds": int}``.

    When a callback already arrived (``wake_pending``), or the job is no longer waiting for the provider,
    the wait is ended at once.
    """
    job_id, token = event["job_id"], event["task_token"]
    try:
        record = jobs.transition(job_id, None, expect={JobStatus.SUBMITTED}, set_fields={"wake_token": token})
    except StatusConflict:  # finished or cancelled meanwhile: no reason to wait
        waker.wake(token, {"woken_by": "not-waiting"})
        return {"armed": False}
    if record.get("wake_pending"):
        wake_execution(job_id, jobs, waker, reason="pending-callback")
    return {"armed": True}


def wake_execution(job_id: str, jobs: JobRepository, waker: TaskWaker, *, reason: str) -> str:
    """End the job's armed wait now (``"woken"``), or make its next wait end at once (``"pending"``)."""
    token = jobs.take(job_id, "wake_token")
    if token and waker.wake(str(token), {"woken_by": reason}):
        jobs.transition(job_id, None, remove=("wake_pending",))
        return "woken"
    # No wait is armed right now (the execution is between checks, or the stored token went stale):
    # the next WaitForResult ends immediately.
    jobs.transition(job_id, None, set_fields={"wake_pending": True})
    return "pending"


def _reported_completion(payload: str | None) -> dict[str, Any] | None:
    """What the payload claims (status, completedAt), kept for diagnosis; never acted upon."""
    if not payload:
        return None
    try:
        body = json.loads(payload)
    except ValueError:
        return None
    if isinstance(body, list) and body:
        body = body[0]
    if not isinstance(body, dict):
        return None
    out = {k: str(body[k])[:64] for k in ("status", "completedAt", "createdAt") if k in body}
    return out or None
