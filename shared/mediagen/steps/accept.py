"""Step ``accept`` (the HTTP API's ``POST /jobs`` and the S3 intake): check a job, record it RECEIVED and put
it on the jobs queue; submit then picks it up like any other job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mediagen.errors import MediagenError
from mediagen.jobs import Job, check_job
from mediagen.records import JobStatus
from mediagen.steps.core import (
    Ports,
    _log,
    _new_record,
    _reject,
    offered_providers,
)


class JobConflict(MediagenError):
    """The job id is already taken by a different request (HTTP 409). Attributes: ``record`` (the existing)."""

    code = "job_id_conflict"

    def __init__(self, message: str, record: dict[str, Any]) -> None:
        super().__init__(message)
        self.record = record


class JobIdTaken(JobConflict):
    """The job id belongs to a job of another owner (HTTP 409 with a generic message): nothing about that job
    -- status, request, owner -- is revealed, and nothing is recorded or queued. Attributes: ``record`` (only
    ``{"job_id"}``)."""

    code = "job_id_unavailable"

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job id {job_id!r} cannot be used; choose another job_id", {"job_id": job_id})


class JobRefused(MediagenError):
    """The job failed validation and was not recorded (HTTP 400). Attributes: ``error`` (``code``,
    ``message``, ``problems``: one per field)."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(str(error.get("message", "invalid job")), code=str(error.get("code", "invalid_request")))
        self.error = error


@dataclass
class Accepted:
    """Outcome of :func:`accept_job`: the job record, and whether this call created it."""

    record: dict[str, Any]
    created: bool
    #: The job must (still) go to the jobs queue: new, or recorded but never submitted.
    enqueue: bool
    document: dict[str, Any] | None = None


def accept_job(body: str | bytes | dict[str, Any], *, fallback_job_id: str, ports: Ports,
               source: dict[str, Any] | None = None, record_rejection: bool = False,
               prefix_base: str = "", owner: str | None = None) -> Accepted:
    """Check a job and record it RECEIVED, for a channel that answers before submitting (HTTP API, S3 intake).

    The caller then puts :attr:`Accepted.document` on the jobs queue when :attr:`Accepted.enqueue` is set;
    submit picks the recorded job up like any other, so every channel runs the same submit logic and a job id
    is generated at most once whichever channels it arrived through.

    Args:
        fallback_job_id: the job id when the document has none.
        source: where the job came from (``{"channel": "api"|"s3-manifest"|"s3-drop", …}``), kept on the record.
        record_rejection: record an invalid job as REJECTED (and announce it) instead of raising
            :class:`JobRefused` -- for channels with no caller to answer (S3).
        prefix_base: prepended to the job's ``output.prefix`` (an S3 manifest's results go under its prefix).
        owner: who the job belongs to (:mod:`mediagen.principals`): the API caller's principal; default the
            owner ``source``'s channel implies (``s3:<bucket>``, ``sqs``). A job id already recorded for another
            owner is :class:`JobIdTaken`, whatever its request.

    Raises:
        JobRefused: invalid (only without ``record_rejection``); nothing was recorded or sent.
        JobConflict: the job id exists with a different request; nothing was changed.
        JobIdTaken: the job id exists and belongs to another owner; nothing was changed or revealed.
    """
    from mediagen.principals import channel_owner, owner_of

    checked = check_job(body, fallback_job_id=fallback_job_id, catalog=ports.catalog(),
                        budget_set=lambda provider: bool(ports.settings.daily_budget_for(provider)),
                        providers=offered_providers(ports.settings))
    if checked.job is not None and prefix_base:
        checked.job = _with_prefix(checked.job, prefix_base)
    if checked.error is not None or checked.job is None:
        if not record_rejection:
            raise JobRefused(checked.error or {"code": "invalid_request", "message": "invalid job"})
        return Accepted(_reject(checked, ports=ports, source=source), created=False, enqueue=False)
    record = {**_new_record(checked, ports, source), "owner": owner or channel_owner(source)}
    existing = ports.jobs.create(record)
    document = checked.job.document()
    if existing is None:
        _log().info("job recorded", job_id=checked.job_id, model=checked.model, channel=(source or {}).get("channel"))
        return Accepted(record, created=True, enqueue=True, document=document)
    if owner_of(existing) != record["owner"]:  # before anything else is compared: nothing may leak
        _log().warning("job id of another owner refused", job_id=checked.job_id)
        raise JobIdTaken(checked.job_id)
    if existing.get("request_hash") != checked.request_hash:
        raise JobConflict(f"job id {checked.job_id!r} is already used by a different request "
                          f"(status {existing.get('status')}); choose another job_id", existing)
    return Accepted(existing, created=False, enqueue=existing.get("status") == JobStatus.RECEIVED,
                    document=document)


def _with_prefix(job: Job, base: str) -> Job:
    from dataclasses import replace

    return replace(job, output_prefix=f"{base}{job.output_prefix}")


def enqueue(accepted: Accepted, ports: Ports) -> None:
    """Put an accepted job on the jobs queue (when it needs to go there).

    Raises:
        MediagenError: the queue refused it (the job record stays RECEIVED; sending again is safe).
    """
    if not accepted.enqueue or accepted.document is None:
        return
    if ports.jobs_queue is None:
        raise MediagenError("no jobs queue configured (MEDIAGEN_JOBS_QUEUE_URL)", code="configuration_error")
    ports.jobs_queue.send([accepted.document])

