"""Step ``submit`` (function ``submit``): one job from the jobs queue to a running execution.

:func:`submit_job` validates and records the job, claims it (RECEIVED -> SUBMITTING, a conditional write),
bounds its cost, takes its in-flight slot and charges it in the same transaction, submits it once on the provider
port (then its fallbacks, after a refusal that spent nothing) and starts the job's execution with this state::

    {"job_id": str, "provider": "cliprise"|"clipia", "provider_task_id": str, "model": str, "modality": str,
     "deadline": epoch s, "wait_seconds": int, "polls": 0}

Nothing in the state ever carries a URL or a key. See docs/reliability.md for the table of outcomes.
"""

from __future__ import annotations

import math
from typing import Any

from mediagen.errors import InvalidJob, MediagenError, StatusConflict
from mediagen.jobs import Job, check_job, execution_name
from mediagen.records import TERMINAL, JobStatus
from mediagen.steps.core import (
    Ports,
    RetryLater,
    _log,
    _move,
    _new_record,
    _note_error,
    _publish,
    _reject,
    _terminal,
    offered_providers,
    provider_catalog,
    provider_port,
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
    checked = check_job(body, fallback_job_id=fallback_job_id or f"msg-{delivery_id}", catalog=ports.catalog(),
                        budget_set=lambda provider: bool(ports.settings.daily_budget_for(provider)),
                        providers=offered_providers(ports.settings))
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
        age = _seconds_in(existing, JobStatus.SUBMITTING, ports)
        if age < ports.settings.submit_lease_seconds:
            # Another worker holds the claim and may be waiting for submit right now: look again once the lease
            # is over (the message is kept: if that worker died, this delivery is what ends the job, I3).
            log.info("delivery while another worker submits; looked at again after the lease", job_id=job.job_id)
            raise RetryLater(f"job {job.job_id} is being submitted by another worker", code="claim_in_progress",
                             resend=True, job_document=job.document(),
                             delay_seconds=min(_CLAIM_RECHECK_SECONDS,
                                               int(ports.settings.submit_lease_seconds - age) + 1))
        return _end_abandoned_claim(job.job_id, ports)
    if status == JobStatus.SUBMITTED and not existing.get("execution_arn"):
        return _start_execution(existing, ports)
    if status in TERMINAL and not existing.get("event_published"):
        return _publish(existing, ports)
    log.info("duplicate delivery ignored", job_id=job.job_id, status=status)
    return existing


def _send(job: Job, record: dict[str, Any], ports: Ports) -> dict[str, Any]:
    """Bound the cost, claim (RECEIVED -> SUBMITTING with the slot and the charge, one transaction), submit.

    Only this function submits, and only after winning the claim (a conditional write), so an attempt is sent
    at most once whatever the deliveries. Every change of a spend counter commits with a status change
    (invariants I1, I2 in docs/reliability.md). See docs/reliability.md for the table of outcomes.
    """
    from mediagen.budget import CounterLimitReached, charge, in_flight_key, refund, take_slot, today
    from mediagen.inputs import s3_references
    from mediagen.jobs import price_problem
    from mediagen.provider import (
        AmbiguousSubmit,
        ProviderError,
        ProviderRejected,
        ProviderUnavailable,
        RateLimited,
        RequestInProgress,
    )
    from mediagen.provider.port import idempotency_key

    log, settings = _log(), ports.settings
    job_id = job.job_id
    index = int(record.get("attempt") or 0)
    provider_name, request = job.attempt(index)
    waited = _waited_seconds(record, ports)
    tried = [a for a in record.get("attempts") or [] if a.get("provider") == provider_name]
    # The provider already holds a request under this job's key (409 request_in_progress): it was charged then,
    # this claim charges nothing more, and the job may not move to another provider (it would pay twice).
    pending = bool(tried) and tried[-1].get("outcome") == "in_progress"
    if waited > settings.max_wait_seconds and (index == 0 or tried):  # a fresh fallback gets one try
        return _expire(job_id, waited, ports, record.get("attempts") or [])

    catalog = provider_catalog(ports, provider_name)
    estimate = catalog.estimate(request)
    bound = estimate if estimate is not None else catalog.upper_bound(request)
    budget, max_in_flight = settings.daily_budget_for(provider_name), settings.max_in_flight_for(provider_name)
    refusal = price_problem(bound, estimate, max_credits=job.max_credits,
                            budget_set=bool(budget), allow_unpriced=job.allow_unpriced)
    if refusal is not None:
        return _terminal(job_id, JobStatus.REJECTED, ports, expect={JobStatus.RECEIVED}, error=refusal)
    if bound is None and (job.max_credits is not None or budget):
        ports.metrics.count("UnpricedJobsAllowed")

    references = s3_references(request, catalog)
    if references:
        try:
            if ports.inputs is None:
                raise InvalidJob([{"field": f, "message": "s3:// inputs are not enabled in this deployment"}
                                  for f, _ in references])
            request = ports.inputs.resolve(request, catalog)
        except InvalidJob as exc:  # checked before any claim: nothing spent
            return _terminal(job_id, JobStatus.REJECTED, ports, expect={JobStatus.RECEIVED}, error=exc.to_dict())
    if provider_name == "cliprise":
        body = ports.catalog().encode(request, allow_unknown_fields=job.allow_unknown_fields)
    else:
        body = {"model": request["model"], "input": request.get("input") or {}}
    # Before the claim: a configuration error must not look like a sent request.
    port = provider_port({"provider": provider_name}, ports)
    webhook_url = None
    if settings.callback_base_url:
        webhook_url = f"{settings.callback_base_url.rstrip('/')}/{record['callback_token']}"

    # The claim: status, slot and charge together (I1, I2). Every attempt is charged its bound.
    credits, day = (0 if pending else bound or 0), today()
    attempts = [*list(record.get("attempts") or []),
                {"provider": provider_name, "day": day, "credits": credits, "outcome": "sending"}]
    counters = [take_slot(provider_name, max_in_flight), charge(provider_name, day, credits, budget)]
    try:
        # RECEIVED is enough: every way back to RECEIVED gives the slot back (``_move``). A record written by
        # version one may carry ``holds_slot: false``; it must still be claimable after an upgrade.
        ports.jobs.transition(job_id, JobStatus.SUBMITTING, expect={JobStatus.RECEIVED},
                              set_fields={"holds_slot": provider_name, "provider": provider_name, "charged_day": day,
                                          "attempts": attempts, "credits_bound": bound},
                              add={"credits_charged": credits}, counters=counters)
    except StatusConflict:
        log.info("another worker is submitting this job", job_id=job_id)
        return ports.jobs.get(job_id) or record
    except CounterLimitReached as exc:
        if exc.key == in_flight_key(provider_name):
            log.info("no free in-flight slot; the job waits in the queue", job_id=job_id, provider=provider_name,
                     max_in_flight=max_in_flight)
            raise RetryLater(f"{max_in_flight} jobs already in flight at {provider_name}",
                             code="in_flight_limit", resend=True, job_document=job.document(),
                             delay_seconds=settings.requeue_delay_seconds) from exc
        from mediagen.budget import budget_key

        spent = ports.jobs.counter(budget_key(provider_name, day))
        over = {"code": "over_daily_budget",
                "message": f"{credits} credits do not fit in today's budget at {provider_name}: {spent} of "
                           f"{budget} already charged on {day} (UTC)"}
        return _next_or_end(job, index, ports, JobStatus.REJECTED, over)

    if credits and budget:  # the budget alarm watches the day's counter, against that provider's own budget
        from mediagen.budget import budget_key

        # Cliprise's series has no dimension (the construct's DailyCreditBudgetNearlySpent alarm watches it);
        # another provider's is its own series, never added to Cliprise's.
        dimensions = None if provider_name == "cliprise" else {"provider": provider_name}
        ports.metrics.count("DailyCreditsSpent", ports.jobs.counter(budget_key(provider_name, day)),
                            dimensions=dimensions)

    def settle(outcome: str, **extra: Any) -> list[dict[str, Any]]:
        return [*attempts[:-1], {**attempts[-1], "outcome": outcome, **extra}]

    try:
        accepted = port.submit(body, idempotency_key=idempotency_key(provider_name, job_id), webhook_url=webhook_url)
    except RequestInProgress as exc:
        # The provider has a request under this key and will charge it: the charge stays, the slot is given back
        # while the job waits; the next submit with the same key and body returns that request.
        _move(job_id, JobStatus.RECEIVED, ports, expect={JobStatus.SUBMITTING},
              set_fields={"last_error": exc.to_dict(), "attempts": settle("in_progress", error=exc.to_dict())})
        log.warning("the provider is still processing this job's request; the job goes back to the queue",
                    job_id=job_id, retry_after=exc.retry_after)
        raise RetryLater(f"submit for {job_id}: the provider is still processing it", code=exc.code, resend=True,
                         job_document=job.document(), delay_seconds=_delay(exc, settings)) from exc
    except (RateLimited, ProviderUnavailable) as exc:
        # Not processed: nothing spent; back to the queue, refunded.
        limited = isinstance(exc, RateLimited)
        _move(job_id, JobStatus.RECEIVED, ports, expect={JobStatus.SUBMITTING}, add={"credits_charged": -credits},
              set_fields={"last_error": exc.to_dict(), "attempts": settle(exc.code, credits=0, error=exc.to_dict())},
              counters=[refund(provider_name, day, credits)])
        waited = _waited_seconds(record, ports)
        if limited and waited + _delay(exc, settings) > settings.max_wait_seconds:
            if index < len(job.fallbacks) and not pending:
                return _fall_back(job, index, ports, exc)
            return _expire(job_id, waited, ports, settle(exc.code, credits=0, error=exc.to_dict()))
        log.warning("submit not accepted now; the job goes back to the queue", job_id=job_id, error_code=exc.code,
                    retry_after=exc.retry_after)
        raise RetryLater(f"submit for {job_id} not sent: {exc.message}", code=exc.code, resend=limited,
                         job_document=job.document(), delay_seconds=_delay(exc, settings)) from exc
    except ProviderRejected as exc:  # definitive: nothing was spent -> refunded
        refused = {"code": exc.code, "message": exc.message}
        if pending:  # e.g. idempotency_key_reuse: the request it already holds under this key may be running
            return _terminal(job_id, JobStatus.OUTCOME_UNKNOWN, ports, expect={JobStatus.SUBMITTING},
                             set_fields={"attempts": settle("unknown", error=refused)},
                             error={"code": "generate_outcome_unknown",
                                    "message": f"{exc.message}; the provider already holds a request under this "
                                               "job's key (it answered request_in_progress before), which may run "
                                               "and be charged: the job is not sent again nor to a fallback"})
        _count_attempt(ports, provider_name, exc.code)
        if _may_fall_back(exc) and index < len(job.fallbacks):
            _move(job_id, JobStatus.RECEIVED, ports, expect={JobStatus.SUBMITTING}, add={"credits_charged": -credits},
                  set_fields={"attempts": settle("refused", credits=0, error=refused), "attempt": index + 1},
                  counters=[refund(provider_name, day, credits)])
            return _fall_back(job, index, ports, exc, moved=True)
        return _terminal(job_id, JobStatus.REJECTED, ports, expect={JobStatus.SUBMITTING}, error=exc.to_dict(),
                         add={"credits_charged": -credits},
                         set_fields={"attempts": settle("refused", credits=0, error=refused)},
                         counters=[refund(provider_name, day, credits)])
    except (AmbiguousSubmit, ProviderError) as exc:
        # May have been accepted (and charged): the charge stays, whatever happens next. Never a fallback.
        unknown = settle("unknown", error={"code": exc.code, "message": exc.message})
        if job.retry_unknown_outcome:  # the user accepted paying twice rather than losing the job
            _move(job_id, JobStatus.RECEIVED, ports, expect={JobStatus.SUBMITTING}, add={"unknown_outcomes": 1},
                  set_fields={"last_error": exc.to_dict(), "attempts": unknown})
            log.warning("submit outcome unknown; retrying as the job asks (retry_unknown_outcome)",
                        job_id=job_id, error_code=exc.code)
            raise RetryLater(f"submit outcome unknown for {job_id}; retrying by request",
                             code="outcome_unknown_retry") from exc
        return _terminal(job_id, JobStatus.OUTCOME_UNKNOWN, ports, expect={JobStatus.SUBMITTING},
                         set_fields={"attempts": unknown},
                         error={"code": "generate_outcome_unknown",
                                "message": f"{exc.message}; the provider may have accepted (and charged for) "
                                           "the request, so it was not sent again (set retry_unknown_outcome "
                                           "to retry such jobs)"})
    task_id = accepted.provider_task_id
    deadline = int(ports.clock()) + settings.deadline_seconds(record.get("modality", "video"))
    try:
        updated = ports.jobs.transition(
            job_id, JobStatus.SUBMITTED, expect={JobStatus.SUBMITTING},
            set_fields={"provider_task_id": task_id, "deadline": deadline,
                        "attempts": settle("accepted", provider_task_id=task_id)},
        )
    except StatusConflict:
        # Only possible if this worker outlived its claim's lease: keep the money trail on the record.
        ports.jobs.transition(job_id, None, set_fields={"orphan_provider_task_id": task_id})
        log.error("submit accepted after the claim expired; provider task recorded as orphan",
                  job_id=job_id, provider_task_id=task_id)
        raise
    ports.metrics.count("JobsSubmitted")
    if credits:
        ports.metrics.count("CreditsSpent", credits)
    log.info("job submitted", job_id=job_id, model=job.model, provider=provider_name, provider_task_id=task_id)
    return _start_execution(updated, ports)


#: How often a delivery that found a live claim looks again (the claim usually ends within seconds).
_CLAIM_RECHECK_SECONDS = 30


#: ``ProviderRejected`` provider codes that mean "this model is not available here" (a fallback may help).
_UNAVAILABLE_CODES = frozenset({"invalid_model_id", "model_unavailable", "model_not_found", "model_disabled"})


def _may_fall_back(exc: Exception) -> bool:
    """A refusal that spent nothing and that another provider may not share: no credits, model unavailable."""
    from mediagen.provider import InsufficientCredits

    if isinstance(exc, InsufficientCredits):
        return True
    code = str(getattr(exc, "provider_code", "") or "").lower()
    return code in _UNAVAILABLE_CODES or getattr(exc, "http_status", None) == 404


def _fall_back(job: Job, index: int, ports: Ports, exc: Exception, *, moved: bool = False) -> dict[str, Any]:
    """Try the next fallback now (the job is RECEIVED again; nothing was spent by the refused attempt)."""
    if not moved:
        ports.jobs.transition(job.job_id, None, expect={JobStatus.RECEIVED}, set_fields={"attempt": index + 1})
    nxt = job.attempt(index + 1)[0]
    _log().warning("attempt refused with nothing spent; trying the next fallback", job_id=job.job_id,
                   refused=getattr(exc, "code", type(exc).__name__), next_provider=nxt)
    ports.metrics.count("FallbacksTried", dimensions={"provider": nxt})
    current = ports.jobs.get(job.job_id) or {}
    return _send(job, current, ports)


def _next_or_end(job: Job, index: int, ports: Ports, status: JobStatus, error: dict[str, Any]) -> dict[str, Any]:
    """A refusal before sending (e.g. over a provider's budget): the next fallback, or the end."""
    if index < len(job.fallbacks):
        from mediagen.errors import MediagenError as _Err

        return _fall_back(job, index, ports, _Err(error["message"], code=error["code"]))
    return _terminal(job.job_id, status, ports, expect={JobStatus.RECEIVED}, error=error)


def _expire(job_id: str, waited: float, ports: Ports, attempts: list[dict[str, Any]]) -> dict[str, Any]:
    """End a job that waited too long (``EXPIRED``); the message says what its ``attempts`` were charged."""
    spent = sum(int(a.get("credits") or 0) for a in attempts)
    what = "nothing was spent" if not spent else f"{spent} credits stay charged for requests the provider received"
    return _terminal(job_id, JobStatus.EXPIRED, ports, expect={JobStatus.RECEIVED}, error={
        "code": "waited_too_long",
        "message": f"the job waited {int(waited)} s to be sent (rate limits, no free slot), more than "
                   f"MEDIAGEN_MAX_WAIT_SECONDS={ports.settings.max_wait_seconds}; {what}"})


def _delay(exc: Any, settings: Any) -> int:
    """Seconds before the next try: the provider's ``Retry-After`` when it gave one (SQS allows up to 900)."""
    after = getattr(exc, "retry_after", None)
    if after is None:
        return min(900, int(settings.requeue_delay_seconds))
    return max(0, min(900, math.ceil(after)))


def _count_attempt(ports: Ports, provider: str, code: str) -> None:
    ports.metrics.count("AttemptsRefused", dimensions={"provider": provider, "reason": code})


def _waited_seconds(record: dict[str, Any], ports: Ports) -> float:
    """Seconds since the job was recorded (``created_at``), on ``ports.clock``."""
    from datetime import datetime

    created = str(record.get("created_at") or "")
    try:
        then = datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0
    return max(0.0, _now(ports) - then)


def _now(ports: Ports) -> float:
    """Epoch seconds: the later of the wall clock and ``ports.clock`` (tests move the latter forward)."""
    import time

    return max(time.time(), ports.clock())


def _end_abandoned_claim(job_id: str, ports: Ports) -> dict[str, Any]:
    """The claim outlived any worker: the attempt died while generate was in flight. It may have been accepted
    and charged, so it is not sent again: ``OUTCOME_UNKNOWN``, the charge kept, the slot given back."""
    return _terminal(job_id, JobStatus.OUTCOME_UNKNOWN, ports, expect={JobStatus.SUBMITTING}, error={
        "code": "generate_outcome_unknown",
        "message": "a previous attempt stopped while the generate request was in flight; the provider may "
                   "have charged for it, so it was not sent again"})


def _seconds_in(record: dict[str, Any], status: JobStatus, ports: Ports) -> float:
    """Seconds since the job entered ``status`` (its ``transitions`` time; infinite when absent or unreadable):
    e.g. the age of a SUBMITTING claim."""
    from datetime import datetime

    entered = str((record.get("transitions") or {}).get(str(status)) or "")
    try:
        then = datetime.fromisoformat(entered.replace("Z", "+00:00"))
    except ValueError:
        return float("inf")
    return _now(ports) - then.timestamp()


def _start_execution(record: dict[str, Any], ports: Ports) -> dict[str, Any]:
    if ports.executions is None:
        raise MediagenError("no state machine configured (MEDIAGEN_STATE_MACHINE_ARN)", code="configuration_error")
    state = {
        "job_id": record["job_id"], "provider": record.get("provider") or "cliprise",
        "provider_task_id": record["provider_task_id"], "model": record.get("model", ""),
        "modality": record.get("modality", "video"), "deadline": int(record["deadline"]),
        "wait_seconds": first_wait_seconds(record, ports.settings), "polls": 0,
    }
    arn = ports.executions.start(execution_name(record["job_id"]), state)
    return ports.jobs.transition(record["job_id"], None, set_fields={"execution_arn": arn})


