"""Step ``cancel`` (the HTTP API's ``POST /jobs/{job_id}/cancel``): record CANCELLED, stop polling."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mediagen.errors import MediagenError, StatusConflict
from mediagen.records import TERMINAL, JobStatus
from mediagen.steps.core import (
    Ports,
    _log,
    _move,
    _publish,
)


class NotCancellable(MediagenError):
    """The job cannot be cancelled now (HTTP 409): it has ended, or it is between two steps that must not
    be interrupted (being sent to the provider, or being stored). Attributes: ``status``, ``retry``."""

    code = "not_cancellable"

    def __init__(self, message: str, *, status: str, retry: bool, job_id: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.retry = retry
        self.job_id = job_id


#: What a cancelled job's record says, by the status it was cancelled in.
CANCEL_MESSAGES = {
    JobStatus.RECEIVED: "cancelled before it was sent to the provider; no credits were spent",
    JobStatus.SUBMITTED: "cancelled while the provider was generating. Cliprise has no cancel operation: the "
                          "generation continues at the provider and its credits are spent; mediagen stopped "
                          "polling and will not store the result",
}
#: Providers whose adapter can cancel a request (:class:`mediagen.provider.port.SupportsCancel`): Clipia's
#: ``POST /v1/requests/{id}/cancel`` refunds the credits it reserved. Named here so the API (which holds no
#: provider key) can say what happens to the credits; the poll step makes the call.
CANCELLING_PROVIDERS: frozenset[str] = frozenset({"clipia"})
#: :data:`CANCEL_MESSAGES` ``[SUBMITTED]`` for a job at a provider in :data:`CANCELLING_PROVIDERS`.
PROVIDER_CANCEL_MESSAGE = ("cancelled while the provider was generating; mediagen asks {provider} to cancel the "
                           "request, which refunds its credits if it has not finished (the record's "
                           "provider_cancel says what {provider} answered); mediagen stopped polling and will not "
                           "store the result")
#: :data:`CANCEL_MESSAGES` ``[SUBMITTED]`` for a job its provider was seen finishing (before it was stored).
FINISHED_CANCEL_MESSAGE = ("cancelled after the provider had finished the generation: its credits are spent; "
                           "mediagen will not store the result")


def provider_may_refund(record: dict[str, Any]) -> bool:
    """Whether cancelling this SUBMITTED job asks its provider to cancel it: the provider of its current attempt
    can cancel (:data:`CANCELLING_PROVIDERS`) and has not been seen finishing (``provider_completed_at``)."""
    return (str(record.get("provider") or "cliprise") in CANCELLING_PROVIDERS
            and not record.get("provider_completed_at"))


def credits_at_risk(record: dict[str, Any]) -> int:
    """Credits of earlier attempts that may have reached the provider (outcome ``in_progress``: the provider
    said it holds the request; ``unknown``: an ambiguous submit retried as ``retry_unknown_outcome`` asks). A
    job back in RECEIVED after such an attempt may be charged although mediagen never had its request id."""
    return sum(int(a.get("credits") or 0) for a in record.get("attempts") or []
               if a.get("outcome") in ("in_progress", "unknown"))


def cancel_message(status: JobStatus, record: dict[str, Any]) -> str:
    """What the record of a job cancelled in ``status`` says about its credits."""
    if status == JobStatus.RECEIVED and credits_at_risk(record):
        return (f"cancelled before it was sent again; an earlier attempt may have reached the provider and been "
                f"charged ({credits_at_risk(record)} credits stay counted in the daily budget)")
    if status == JobStatus.SUBMITTED and provider_may_refund(record):
        return PROVIDER_CANCEL_MESSAGE.format(provider=str(record["provider"]).title())
    if status == JobStatus.SUBMITTED and record.get("provider_completed_at"):
        return FINISHED_CANCEL_MESSAGE
    return CANCEL_MESSAGES[status]


def cancel_credits(status: str, record: dict[str, Any]) -> str:
    """The short answer on the credits of a job cancelled in ``status`` (the HTTP API's ``credits``); the same
    cases as :func:`cancel_message`."""
    if status == JobStatus.RECEIVED:
        return ("may be spent: an earlier attempt may have reached the provider" if credits_at_risk(record)
                else "none spent: the job was never sent")
    if provider_may_refund(record):
        return (f"refunded by {str(record['provider']).title()} if it had not finished: mediagen asks it to cancel "
                "the request")
    return "spent: the provider has no cancel, or has already finished the generation"


def cancel_job(job_id: str, ports: Ports, *, reason: str = "",
               may_cancel: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
    """Cancel a job: record CANCELLED (and announce it), stop its polling, free its in-flight slot.

    A job still in the queue (RECEIVED) is never sent. A job at the provider (SUBMITTED): its execution is woken
    and ends at its next step without storing anything. At Cliprise it keeps running -- Cliprise has no cancel
    ([002:17] documents only generate and status) -- so its credits are spent; at a provider in
    :data:`CANCELLING_PROVIDERS` (Clipia) that step also asks the provider to cancel it, which refunds its
    credits if it has not finished (:func:`mediagen.steps.poll.cancel_at_provider`).

    Args:
        may_cancel: whether the caller may cancel this job record (the HTTP API: its owner or an operator,
            :func:`mediagen.principals.may_see`); a job it refuses is :class:`JobNotFound`, as a missing one.

    Returns:
        the CANCELLED job record.

    Raises:
        JobNotFound: no such job (or none the caller may cancel).
        NotCancellable: the job has ended, or is being submitted or stored right now (``retry`` says whether
            asking again shortly may succeed).
    """
    from mediagen.errors import JobNotFound

    for _ in range(3):  # the status may move between the read and the conditional write
        record = ports.jobs.get(job_id)
        if record is None or (may_cancel is not None and not may_cancel(record)):
            raise JobNotFound(f"no job {job_id}")
        status = JobStatus(record.get("status", JobStatus.RECEIVED))
        if status in TERMINAL:
            raise NotCancellable(f"job {job_id} has already ended ({status})", status=status, retry=False,
                                 job_id=job_id)
        if status not in CANCEL_MESSAGES:
            what = "being sent to the provider" if status == JobStatus.SUBMITTING else "being stored in S3"
            raise NotCancellable(f"job {job_id} is {what} right now; ask again in a few seconds",
                                 status=status, retry=True, job_id=job_id)
        message = cancel_message(status, record) + (f" ({reason[:200]})" if reason else "")
        try:
            # the message is built from the record as read (attempts, provider_completed_at): so the write is
            # conditional on the record being unchanged since (a change moves updated_at, to the millisecond)
            done = _move(job_id, JobStatus.CANCELLED, ports, expect={status},
                         set_fields={"error": {"code": "cancelled", "message": message},
                                     "cancelled_from": str(status)},
                         if_fields={"updated_at": record.get("updated_at"),
                                    "provider_completed_at": record.get("provider_completed_at")})
        except StatusConflict:
            continue
        _log().warning("job cancelled", job_id=job_id, was=str(status))
        _publish(done, ports)
        if status == JobStatus.SUBMITTED and ports.waker is not None:
            from mediagen.completion import wake_execution

            wake_execution(job_id, ports.jobs, ports.waker, reason="cancel")
        return ports.jobs.get(job_id) or done
    raise NotCancellable(f"job {job_id} keeps changing status; ask again", status="", retry=True, job_id=job_id)

