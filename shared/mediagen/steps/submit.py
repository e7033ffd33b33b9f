"""Step ``submit`` (function ``submit``): one job from the jobs queue to a running execution.

:func:`submit_job` validates and records the job, claims it (RECEIVED -> SUBMITTING, a conditional write),
applies the spend guards, calls generate exactly once and starts the job's execution with this state::

    {"job_id": str, "provider_task_id": str, "model": str, "modality": str, "deadline": epoch s,
     "wait_seconds": int, "polls": 0}

Nothing in the state ever carries a URL or a key. See docs/reliability.md for the table of outcomes.
"""

from __future__ import annotations

from typing import Any

from mediagen.errors import InvalidJob, MediagenError, StatusConflict
from mediagen.jobs import Job, check_job, execution_name
from mediagen.records import TERMINAL, JobStatus
from mediagen.steps.core import (
    Ports,
    RetryLater,
    _log,
    _new_record,
    _note_error,
    _publish,
    _reject,
    _terminal,
)
from mediagen.steps.poll import first_wait_seconds


def submit_job(body: str | bytes | dict[str, Any], *, delivery_id: str, ports: Ports,
               fallback_job_id: str | None = None) -> dict[str, Any]:
    """Take one job from a channel to a running execution.

    Args:
        body: the job document (JSON text or decoded).
        delivery_id: a channel-stable id for this message (SQS ``messageId``); ``msg-<delivery_id>`` is the job
            id when the job has none, so that a redelivery maps to the same job record.
        fallback_job_id: the job id to use when the job has none, instead of ``msg-<delivery_id>``.

    Returns:
        the job record as it stands after this call.

    Raises:
        RetryLater: nothing was sent and nothing spent; deliver the message again later.
    """
    checked = check_job(body, fallback_job_id=fallback_job_id or f"msg-{delivery_id}", catalog=ports.catalog())
    if checked.error is not None or checked.job is None:
        return _reject(checked, ports=ports)
    job = checked.job
    record = _new_record(checked, ports, None)
    existing = ports.jobs.create(record)
    try:
        if existing is not None:
            return _resume(job, existing, ports)
        _log().info("job recorded", job_id=job.job_id, model=job.model, credits_estimate=checked.estimate)
        return _send(job, record, ports)
    except Exception as exc:  # noqa: BLE001 - recorded, then re-raised for the queue's retry / DLQ
        _note_error(job.job_id, exc, ports)
        raise



def _resume(job: Job, existing: dict[str, Any], ports: Ports) -> dict[str, Any]:
    """A second delivery of a job id that is already recorded."""
    log = _log()
    if existing.get("request_hash") != job.request_hash:
        log.warning("job id reused with a different request; ignored", job_id=job.job_id,
                    status=existing.get("status"))
        return {**existing, "conflict": True}
    status = existing.get("status")
    if status == JobStatus.RECEIVED:
        return _send(job, existing, ports)
    if status == JobStatus.SUBMITTING:
        claimed = existing.get("transitions", {}).get(str(JobStatus.SUBMITTING), "")
        if claimed and _age_seconds(claimed) < ports.settings.submit_lease_seconds:
            # Another worker holds the claim and may be waiting for generate right now: leave it alone.
            log.info("duplicate delivery while another worker submits; ignored", job_id=job.job_id)
            return existing
        # The claim outlived any worker: the attempt died while generate was in flight. It may have been
        # accepted and charged, so it is not sent again.
        return _terminal(job.job_id, JobStatus.OUTCOME_UNKNOWN, ports, expect={JobStatus.SUBMITTING}, error={
            "code": "generate_outcome_unknown",
            "message": "a previous attempt stopped while the generate request was in flight; the provider may "
                       "have charged for it, so it was not sent again"})
    if status == JobStatus.SUBMITTED and not existing.get("execution_arn"):
        return _start_execution(existing, ports)
    if status in TERMINAL and not existing.get("event_published"):
        return _publish(existing, ports)
    log.info("duplicate delivery ignored", job_id=job.job_id, status=status)
    return existing


def _send(job: Job, record: dict[str, Any], ports: Ports) -> dict[str, Any]:
    """Guards, claim, generate. Only this function calls generate, and only after winning the claim
    RECEIVED -> SUBMITTING (a conditional write), so a job id is sent at most once whatever the deliveries.
    See docs/reliability.md for the table of outcomes."""
    from mediagen.budget import OverBudget, today
    from mediagen.provider import AmbiguousSubmit, ProviderError, ProviderRejected, ProviderUnavailable, RateLimited

    log, settings = _log(), ports.settings
    callback_url = None
    if settings.callback_base_url:
        callback_url = f"{settings.callback_base_url.rstrip('/')}/{record['callback_token']}"
    request = job.request
    from mediagen.inputs import s3_references

    references = s3_references(request)
    if references:
        try:
            if ports.inputs is None:
                raise InvalidJob([{"field": f, "message": "s3:// inputs are not enabled in this deployment"}
                                  for f, _ in references])
            request = ports.inputs.resolve(request)
        except InvalidJob as exc:  # checked before any guard or claim: nothing spent
            return _terminal(job.job_id, JobStatus.REJECTED, ports, expect={JobStatus.RECEIVED},
                             error=exc.to_dict())
    body = ports.catalog().encode(request, callback_url=callback_url, allow_unknown_fields=job.allow_unknown_fields)
    client = ports.provider()  # before the claim: a configuration error must not look like a sent request

    # Spend guards, before anything is sent.
    slot = False
    if settings.max_in_flight and ports.guard is not None:
        if not ports.guard.acquire_slot(limit=settings.max_in_flight):
            log.info("no free in-flight slot; the job waits in the queue", job_id=job.job_id,
                     max_in_flight=settings.max_in_flight)
            raise RetryLater(f"{settings.max_in_flight} jobs already in flight", code="in_flight_limit",
                             resend=True, job_document=job.document())
        slot = True
    charged, day = 0, today()
    estimate = record.get("credits_estimate") or 0
    if settings.daily_credit_budget and ports.guard is not None and estimate:
        try:
            total = ports.guard.charge(estimate, limit=settings.daily_credit_budget, day=day)
        except OverBudget as exc:
            _give_back(ports, slot=slot)
            return _terminal(job.job_id, JobStatus.REJECTED, ports, expect={JobStatus.RECEIVED},
                             error=exc.to_dict())
        charged = estimate
        ports.metrics.count("DailyCreditsSpent", total)

    def undo() -> None:
        _give_back(ports, slot=slot, credits=charged, day=day)

    try:
        ports.jobs.transition(job.job_id, JobStatus.SUBMITTING, expect={JobStatus.RECEIVED},
                               set_fields={"holds_slot": slot, "credits_charged": charged, "charged_day": day})
    except StatusConflict:
        undo()
        log.info("another worker is submitting this job", job_id=job.job_id)
        return ports.jobs.get(job.job_id) or record

    try:
        accepted = client.generate(body)
    except (RateLimited, ProviderUnavailable) as exc:
        undo()
        ports.jobs.transition(job.job_id, JobStatus.RECEIVED, expect={JobStatus.SUBMITTING},
                               set_fields={"last_error": exc.to_dict(), "holds_slot": False, "credits_charged": 0})
        log.warning("generate not accepted now; the job goes back to the queue", job_id=job.job_id,
                    error_code=exc.code)
        limited = isinstance(exc, RateLimited)
        raise RetryLater(f"generate for {job.job_id} not sent: {exc.message}",
                         code="rate_limited" if limited else "provider_unavailable",
                         resend=limited, job_document=job.document()) from exc
    except ProviderRejected as exc:  # definitive: nothing was spent
        _give_back(ports, credits=charged, day=day)
        return _terminal(job.job_id, JobStatus.REJECTED, ports, expect={JobStatus.SUBMITTING},
                         error=exc.to_dict(), set_fields={"credits_charged": 0})
    except (AmbiguousSubmit, ProviderError) as exc:
        if job.retry_unknown_outcome:  # the user accepted paying twice rather than losing the job
            undo()
            ports.jobs.transition(job.job_id, JobStatus.RECEIVED, expect={JobStatus.SUBMITTING}, set_fields={
                "last_error": exc.to_dict(), "holds_slot": False, "credits_charged": 0}, add={"unknown_outcomes": 1})
            log.warning("generate outcome unknown; retrying as the job asks (retry_unknown_outcome)",
                        job_id=job.job_id, error_code=exc.code)
            raise RetryLater(f"generate outcome unknown for {job.job_id}; retrying by request",
                             code="outcome_unknown_retry") from exc
        return _terminal(job.job_id, JobStatus.OUTCOME_UNKNOWN, ports, expect={JobStatus.SUBMITTING},
                         error={"code": "generate_outcome_unknown",
                                "message": f"{exc.message}; the provider may have accepted (and charged for) "
                                           "the request, so it was not sent again (set retry_unknown_outcome "
                                           "to retry such jobs)"})
    deadline = int(ports.clock()) + settings.deadline_seconds(record.get("modality", "video"))
    try:
        updated = ports.jobs.transition(
            job.job_id, JobStatus.SUBMITTED, expect={JobStatus.SUBMITTING},
            set_fields={"provider_task_id": accepted.task_id, "deadline": deadline},
        )
    except StatusConflict:
        # Only possible if this worker outlived its claim's lease: keep the money trail on the record.
        ports.jobs.transition(job.job_id, None, set_fields={"orphan_provider_task_id": accepted.task_id})
        log.error("generate accepted after the claim expired; provider task recorded as orphan",
                  job_id=job.job_id, provider_task_id=accepted.task_id)
        raise
    ports.metrics.count("JobsSubmitted")
    if estimate:
        ports.metrics.count("CreditsSpent", estimate)
    log.info("job submitted", job_id=job.job_id, model=job.model, provider_task_id=accepted.task_id)
    return _start_execution(updated, ports)


def _age_seconds(iso: str) -> float:
    from datetime import UTC, datetime

    try:
        then = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return float("inf")
    return (datetime.now(UTC) - then).total_seconds()


def _give_back(ports: Ports, *, slot: bool = False, credits: int = 0, day: str = "") -> None:
    if ports.guard is None:
        return
    if slot:
        ports.guard.release_slot()
    if credits:
        ports.guard.refund(credits, day=day)


def _start_execution(record: dict[str, Any], ports: Ports) -> dict[str, Any]:
    if ports.executions is None:
        raise MediagenError("no state machine configured (MEDIAGEN_STATE_MACHINE_ARN)", code="configuration_error")
    state = {
        "job_id": record["job_id"], "provider_task_id": record["provider_task_id"], "model": record.get("model", ""),
        "modality": record.get("modality", "video"), "deadline": int(record["deadline"]),
        "wait_seconds": first_wait_seconds(record, ports.settings), "polls": 0,
    }
    arn = ports.executions.start(execution_name(record["job_id"]), state)
    return ports.jobs.transition(record["job_id"], None, set_fields={"execution_arn": arn})


