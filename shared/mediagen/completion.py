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

Each callback that arrives before completion can end a wait, at most once per wait (the stored task token is
taken atomically); one that finds no wait armed -- between two checks, or before the job is even recorded
SUBMITTED -- is remembered (``wake_pending_at``) and ends the next wait at once unless a status check started
after it (``last_check_at``, written by :mod:`mediagen.steps.poll`). ``callback_received_at`` is the latest
such callback, so ``detection_lag_ms`` measures from it.

Providers that sign their webhooks (:class:`~mediagen.provider.port.SupportsWebhooks`: Clipia, [004:92-94],
[004:163-173]) use the same URL shape; their deliveries are verified on the raw body before anything
changes, and a delivery id already seen changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import secrets
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from mediagen.errors import MediagenError, StatusConflict
from mediagen.records import JobRepository, JobStatus, utcnow

if TYPE_CHECKING:
    from mediagen.provider.port import SupportsWebhooks


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


#: Statuses in which a callback is still worth remembering: the provider may not have finished, or the
#: execution has not checked since. A callback that arrives before the job is recorded SUBMITTED (the provider
#: can answer generate and call back before our write lands) is kept and used by the first wait.
WAITING: frozenset[JobStatus] = frozenset({JobStatus.RECEIVED, JobStatus.SUBMITTING, JobStatus.SUBMITTED})
#: Delivery ids of signed webhooks remembered per job (a replayed id changes nothing).
MAX_REMEMBERED_DELIVERIES = 20
#: Largest callback body looked at (a Cliprise callback is a few hundred bytes; Clipia's is checked by
#: the adapter with its own limit).
MAX_CALLBACK_BYTES = 64 * 1024
#: Deepest callback body looked at ([000:142-169]: two levels).
MAX_CALLBACK_DEPTH = 8


class WebhookRefused(MediagenError):
    """A signed-webhook delivery did not verify (bad or missing signature, stale or future timestamp, no
    secret configured): nothing was changed. The route answers 401 so that the provider retries with a fresh
    signature. The message is the reason's code only (never a secret or a signature)."""

    code = "webhook_refused"


WebhookVerifiers = Callable[[str], "SupportsWebhooks | None"]
"""``provider name -> the port that verifies its webhooks``, or None for a provider that does not sign
its callbacks (Cliprise, [000:142-169])."""


def receive_callback(token: str, payload: bytes | str | None, *, jobs: JobRepository, waker: TaskWaker,
                     headers: Mapping[str, str] | None = None,
                     verifiers: WebhookVerifiers | None = None) -> str:
    """Handle one provider callback. Never says whether a job exists.

    Args:
        token: the last path segment of the callback URL.
        payload: the raw body, exactly as received (a signature covers these bytes).
        headers: the request headers (a signed webhook's signature is in them).
        verifiers: the webhook verifier of a provider (see :data:`WebhookVerifiers`); None: no provider
            signs its callbacks in this deployment.

    A callback of a job whose provider signs its webhooks (:class:`~mediagen.provider.port.SupportsWebhooks`,
    Clipia) is verified on the raw body *before* anything is read from it or written; a delivery id already
    seen changes nothing. An accepted callback is remembered (``callback_received_at``, ``wake_pending_at``)
    and ends the armed wait, once per wait: the stored task token is taken atomically, so of several
    callbacks racing for one wait only one sends ``SendTaskSuccess``; a callback that finds no wait armed
    ends the next one at once (see :func:`arm_wakeup`).

    Returns:
        what happened, for logs and metrics: ``woken``, ``pending`` (no wait armed now; the next one ends at
        once), ``replayed`` (a signed delivery id already seen), ``mismatch`` (a verified delivery about
        another request), ``unreadable`` (correctly signed, but not the documented payload: ignored),
        ``late`` (the job no longer waits), ``forged``.

    Raises:
        WebhookRefused: a signed-webhook delivery did not verify; nothing changed.
    """
    job_id = job_id_from_token(token)
    record = jobs.get(job_id) if job_id else None
    if record is None or not hmac.compare_digest(str(record.get("callback_token", "")), token):
        return "forged"
    raw = payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else (payload or b"")
    fields: dict[str, Any] = {}
    from mediagen.errors import ConfigurationError

    try:
        verifier = verifiers(str(record.get("provider") or "cliprise")) if verifiers is not None else None
    except ConfigurationError:  # no signing secret here: refuse, the provider retries once it is configured
        raise WebhookRefused("webhook_unconfigured") from None
    if verifier is not None:
        from mediagen.provider.clipia_webhooks import MalformedPayload, WebhookVerificationError

        try:
            delivery = verifier.verify_webhook(dict(headers or {}), raw)
        except MalformedPayload:  # correctly signed but not the documented shape: a retry would not help
            return "unreadable"
        except (WebhookVerificationError, ConfigurationError) as exc:
            raise WebhookRefused(getattr(exc, "code", "webhook_invalid")) from None
        task_id = record.get("provider_task_id")
        if task_id and delivery.provider_task_id != task_id:
            return "mismatch"
        delivery_id = delivery.delivery_id or f"{delivery.provider_task_id}:{type(delivery.state).__name__}"
        seen = [str(d) for d in record.get("webhook_deliveries") or []]
        if delivery_id in seen:
            return "replayed"
        fields["webhook_deliveries"] = (seen + [delivery_id])[-MAX_REMEMBERED_DELIVERIES:]
        fields["provider_reported"] = {"status": type(delivery.state).__name__.lower()}
    else:
        reported = _reported_completion(raw)
        if reported:
            fields["provider_reported"] = reported
    if record.get("status") not in WAITING:
        return "late"
    now = utcnow()
    fields |= {"callback_received_at": now, "wake_pending_at": now}
    try:
        updated = jobs.transition(record["job_id"], None, expect=WAITING, set_fields=fields, add={"callbacks": 1})
    except StatusConflict:
        return "late"
    if updated.get("status") != JobStatus.SUBMITTED:
        return "pending"  # not submitted yet: the first wait ends at once
    return wake_execution(record["job_id"], jobs, waker, reason="callback")


def arm_wakeup(event: dict[str, Any], *, jobs: JobRepository, waker: TaskWaker) -> dict[str, Any]:
    """``WaitForResult``: remember the execution's task token so a callback can end the wait.

    Args:
        event: ``{"job_id": str, "task_token": str, "wait_seconds": int}``.

    The wait is ended at once when a callback arrived that no status check has looked at yet
    (``wake_pending_at`` not before ``last_check_at``, or no check yet: e.g. a callback before the job was
    recorded SUBMITTED), or when the job is no longer waiting for the provider.

    Returns:
        ``{"armed": bool, "woken": bool}``.
    """
    job_id, token = event["job_id"], event["task_token"]
    try:
        record = jobs.transition(job_id, None, expect={JobStatus.SUBMITTED}, set_fields={"wake_token": token})
    except StatusConflict:  # finished or cancelled meanwhile: no reason to wait
        waker.wake(token, {"woken_by": "not-waiting"})
        return {"armed": False, "woken": True}
    if callback_unseen(record):
        return {"armed": True, "woken": wake_execution(job_id, jobs, waker, reason="pending-callback") == "woken"}
    return {"armed": True, "woken": False}


def callback_unseen(record: Mapping[str, Any]) -> bool:
    """True when the record holds a callback that arrived after the last status check started (or before
    any check): the next wait should end at once. Times are ``utcnow()`` strings, which sort by time."""
    pending = str(record.get("wake_pending_at") or "")
    return bool(pending) and pending >= str(record.get("last_check_at") or "")


def wake_execution(job_id: str, jobs: JobRepository, waker: TaskWaker, *, reason: str) -> str:
    """End the job's armed wait now (``"woken"``); else (``"pending"``) the next wait ends at once, as long as
    ``wake_pending_at`` is set (see :func:`callback_unseen`).

    The token is taken (removed atomically) before it is used: one wait is ended at most once, however many
    callbacks race for it."""
    token = jobs.take(job_id, "wake_token")
    if token and waker.wake(str(token), {"woken_by": reason}):
        return "woken"
    # No wait is armed right now (the execution is between checks, or the stored token went stale: its wait
    # timed out and a check is on its way): ``wake_pending_at`` makes the next WaitForResult end at once when
    # the check missed this callback.
    return "pending"


def _reported_completion(payload: bytes) -> dict[str, Any] | None:
    """What an unsigned payload claims (status, completedAt), kept for diagnosis; never acted upon."""
    if not payload:
        return None
    from mediagen.decode import UnreadableBody, decode_json

    try:
        body = decode_json(payload, max_bytes=MAX_CALLBACK_BYTES, max_depth=MAX_CALLBACK_DEPTH, what="callback")
    except UnreadableBody:
        return None
    if isinstance(body, list) and body:
        body = body[0]
    if not isinstance(body, dict):
        return None
    out = {k: str(body[k])[:64] for k in ("status", "completedAt", "createdAt") if k in body}
    return out or None
