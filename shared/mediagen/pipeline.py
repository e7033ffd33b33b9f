"""The orchestration: what each step of a job does, behind ports.

Handlers in ``functions/`` are thin: they parse the AWS event and call one function here.

- :func:`submit_job` -- SQS record body -> validated, recorded, sent to Cliprise, execution started.
- :func:`check_status` -- one status check; returns the state machine's next move and wait.
- :func:`persist_result` -- stream the result into S3, write ``result.json``, record outputs, publish.
- :func:`record_failure` -- the state machine's catch-all: record PIPELINE_FAILED, publish.

State passed between Step Functions states (execution input, written by submit)::

    {"job_id": str, "provider_task_id": str, "model": str, "modality": str, "deadline": epoch s,
     "wait_seconds": int, "polls": int}

:func:`check_status` adds ``phase``: ``processing`` (wait ``wait_seconds`` and check again), ``ready``
(persist), ``ended`` (a terminal status was recorded). Nothing in the state ever carries a URL or a key.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from mediagen.completion import new_callback_token
from mediagen.errors import InvalidJob, MediagenError, StatusConflict, StorageError
from mediagen.jobs import Job, execution_name, parse_job
from mediagen.observability import MetricsSink, NullMetrics
from mediagen.records import TERMINAL, JobStatus, utcnow
from mediagen.redact import redact, redact_text
from mediagen.settings import Settings

if TYPE_CHECKING:
    from mediagen.budget import SpendGuard
    from mediagen.catalog import Catalog
    from mediagen.completion import TaskWaker
    from mediagen.events import EventPublisher
    from mediagen.executions import ExecutionStarter
    from mediagen.inputs import InputResolver
    from mediagen.provider import ClipriseClient
    from mediagen.records import JobRepository
    from mediagen.storage import OutputStore


class RetryLater(MediagenError):
    """The job could not be sent now but nothing was spent (rate limited, provider unreachable, no free
    in-flight slot): the message goes back to the queue and is delivered again after a delay.

    Attributes:
        resend: the job is *waiting*, not failing (rate limited, no free slot): the channel should put it back
            as a new delayed message (:attr:`job_document`), so waiting never counts towards the dead-letter
            queue's receive limit. Otherwise (provider unreachable) the same message is retried and, if it
            keeps failing, ends in the DLQ with ``last_error`` on its job record.
        job_document: the job, with its job id made explicit, for the re-sent message.
    """

    code = "retry_later"

    def __init__(self, message: str, *, code: str | None = None, resend: bool = False,
                 job_document: dict[str, Any] | None = None) -> None:
        super().__init__(message, code=code)
        self.resend = resend
        self.job_document = job_document


@dataclass
class Ports:
    """What the logic talks to. Production wiring is in :mod:`mediagen.wiring`; tests pass fakes.

    ``provider`` and ``catalog`` are factories so that a step that does not need them never pays for
    them (no secret read, no catalog load).
    """

    settings: Settings
    jobs: JobRepository
    events: EventPublisher
    provider: Callable[[], ClipriseClient]
    catalog: Callable[[], Catalog] = field(default=lambda: _default_catalog())
    executions: ExecutionStarter | None = None
    outputs: OutputStore | None = None
    guard: SpendGuard | None = None
    metrics: MetricsSink = field(default_factory=lambda: NullMetrics())
    clock: Callable[[], float] = time.time
    #: Turns ``s3://`` inputs into URLs the provider can fetch (submit); None: such inputs are refused.
    inputs: InputResolver | None = None
    #: Where the HTTP API and the S3 intake put accepted jobs (the jobs queue).
    jobs_queue: JobQueue | None = None
    #: Ends an execution's wait early (cancel).
    waker: TaskWaker | None = None


class JobQueue(Protocol):
    """The jobs queue, as the channels that accept jobs for later submission see it."""

    def send(self, documents: list[dict[str, Any]]) -> None:
        """Enqueue job documents (each with its ``job_id``).

        Raises:
            MediagenError: some could not be enqueued (nothing is known about which; sending again is safe:
                submit is idempotent on the job id).
        """
        ...


def _default_catalog() -> Catalog:
    from mediagen.catalog import get_catalog

    return get_catalog()


def _log() -> Any:
    from mediagen.observability import get_logger

    return get_logger()


# --------------------------------------------------------------------------------------------- submit


@dataclass
class CheckedJob:
    """A job document after every check that needs no AWS call: the envelope, the catalog, ``max_credits``.

    ``job`` is None, or ``error`` is set, when the job must be refused (``error`` is what is recorded).
    """

    job_id: str
    model: str
    metadata: dict[str, Any]
    job: Job | None
    error: dict[str, Any] | None = None
    estimate: int | None = None

    @property
    def request_hash(self) -> str:
        return self.job.request_hash if self.job is not None else ""


def check_job(body: str | bytes | dict[str, Any], *, fallback_job_id: str, ports: Ports) -> CheckedJob:
    """Validate a job document (envelope, request against the catalog, estimate vs ``max_credits``).

    Never raises for bad input: the problems are in ``error`` (``{"code", "message", "problems"?}``).
    """
    parsed = parse_job(body, fallback_job_id=fallback_job_id)
    if parsed.job is None:
        return CheckedJob(parsed.job_id, parsed.model, parsed.metadata, None, InvalidJob(parsed.problems).to_dict())
    job = parsed.job
    catalog = ports.catalog()
    problems = [p.to_dict() for p in catalog.validate(job.request, allow_unknown_fields=job.allow_unknown_fields)]
    if problems:
        return CheckedJob(job.job_id, job.model, job.metadata, job, InvalidJob(problems).to_dict())
    estimate = catalog.estimate(job.request)
    if job.max_credits is not None and estimate is not None and estimate > job.max_credits:
        return CheckedJob(job.job_id, job.model, job.metadata, job, {
            "code": "over_budget", "message": f"estimated {estimate} credits exceeds max_credits {job.max_credits}"},
            estimate=estimate)
    return CheckedJob(job.job_id, job.model, job.metadata, job, estimate=estimate)


def _new_record(checked: CheckedJob, ports: Ports, source: dict[str, Any] | None) -> dict[str, Any]:
    job = checked.job
    assert job is not None
    record = {
        "job_id": job.job_id, "status": str(JobStatus.RECEIVED), "model": job.model,
        "modality": ports.catalog().modality(job.model) or "video",
        "request": redact(job.request), "request_hash": job.request_hash, "output_prefix": job.output_prefix,
        "metadata": job.metadata, "credits_estimate": checked.estimate, "max_credits": job.max_credits,
        "allow_unknown_fields": job.allow_unknown_fields, "callback_token": new_callback_token(job.job_id),
    }
    if source:
        record["source"] = source
    return record


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
    checked = check_job(body, fallback_job_id=fallback_job_id or f"msg-{delivery_id}", ports=ports)
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


# --------------------------------------------------------------------------------------------- accept


class JobConflict(MediagenError):
    """The job id is already taken by a different request (HTTP 409). Attributes: ``record`` (the existing)."""

    code = "job_id_conflict"

    def __init__(self, message: str, record: dict[str, Any]) -> None:
        super().__init__(message)
        self.record = record


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
               prefix_base: str = "") -> Accepted:
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

    Raises:
        JobRefused: invalid (only without ``record_rejection``); nothing was recorded or sent.
        JobConflict: the job id exists with a different request; nothing was changed.
    """
    checked = check_job(body, fallback_job_id=fallback_job_id, ports=ports)
    if checked.job is not None and prefix_base:
        checked.job = _with_prefix(checked.job, prefix_base)
    if checked.error is not None or checked.job is None:
        if not record_rejection:
            raise JobRefused(checked.error or {"code": "invalid_request", "message": "invalid job"})
        return Accepted(_reject(checked, ports=ports, source=source), created=False, enqueue=False)
    record = _new_record(checked, ports, source)
    existing = ports.jobs.create(record)
    document = checked.job.document()
    if existing is None:
        _log().info("job recorded", job_id=checked.job_id, model=checked.model, channel=(source or {}).get("channel"))
        return Accepted(record, created=True, enqueue=True, document=document)
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


# --------------------------------------------------------------------------------------------- cancel


class NotCancellable(MediagenError):
    """The job cannot be cancelled now (HTTP 409): it has ended, or it is between two steps that must not
    be interrupted (being sent to the provider, or being stored). Attributes: ``status``, ``retry``."""

    code = "not_cancellable"

    def __init__(self, message: str, *, status: str, retry: bool) -> None:
        super().__init__(message)
        self.status = status
        self.retry = retry


#: What a cancelled job's record says, by the status it was cancelled in.
CANCEL_MESSAGES = {
    JobStatus.RECEIVED: "cancelled before it was sent to the provider; no credits were spent",
    JobStatus.SUBMITTED: "cancelled while the provider was generating. Cliprise has no cancel operation: the "
                          "generation continues at the provider and its credits are spent; mediagen stopped "
                          "polling and will not store the result",
}


def cancel_job(job_id: str, ports: Ports, *, reason: str = "") -> dict[str, Any]:
    """Cancel a job: record CANCELLED (and announce it), stop its polling, free its in-flight slot.

    A job still in the queue (RECEIVED) is never sent. A job at the provider (SUBMITTED) keeps running there --
    the provider has no cancel (seeds/002 documents only generate and status) -- so its credits are spent;
    its execution is woken and ends at its next step without storing anything.

    Returns:
        the CANCELLED job record.

    Raises:
        JobNotFound: no such job.
        NotCancellable: the job has ended, or is being submitted or stored right now (``retry`` says whether
            asking again shortly may succeed).
    """
    from mediagen.errors import JobNotFound

    for _ in range(3):  # the status may move between the read and the conditional write
        record = ports.jobs.get(job_id)
        if record is None:
            raise JobNotFound(f"no job {job_id}")
        status = JobStatus(record.get("status", JobStatus.RECEIVED))
        if status in TERMINAL:
            raise NotCancellable(f"job {job_id} has already ended ({status})", status=status, retry=False)
        if status not in CANCEL_MESSAGES:
            what = "being sent to the provider" if status == JobStatus.SUBMITTING else "being stored in S3"
            raise NotCancellable(f"job {job_id} is {what} right now; ask again in a few seconds",
                                 status=status, retry=True)
        message = CANCEL_MESSAGES[status] + (f" ({reason[:200]})" if reason else "")
        try:
            done = ports.jobs.transition(job_id, JobStatus.CANCELLED, expect={status},
                                          set_fields={"error": {"code": "cancelled", "message": message},
                                                      "cancelled_from": str(status)})
        except StatusConflict:
            continue
        _log().warning("job cancelled", job_id=job_id, was=str(status))
        _publish(done, ports)
        if status == JobStatus.SUBMITTED and ports.waker is not None:
            from mediagen.completion import wake_execution

            wake_execution(job_id, ports.jobs, ports.waker, reason="cancel")
        return ports.jobs.get(job_id) or done
    raise NotCancellable(f"job {job_id} keeps changing status; ask again", status="", retry=True)


def _note_error(job_id: str, exc: Exception, ports: Ports) -> None:
    """Keep why a delivery failed on the job record (the message may end in the DLQ)."""
    error = exc.to_dict() if isinstance(exc, MediagenError) else {"code": type(exc).__name__,
                                                                   "message": redact_text(str(exc))[:500]}
    try:
        ports.jobs.transition(job_id, None, set_fields={"last_error": error}, add={"failed_deliveries": 1})
    except Exception:  # noqa: BLE001 - best effort: the original error matters more
        _log().exception("could not record the delivery failure", job_id=job_id)


def reject_job(job_id: str, error: dict[str, Any], *, ports: Ports, model: str = "",
               metadata: dict[str, Any] | None = None, source: dict[str, Any] | None = None) -> dict[str, Any]:
    """Record a job REJECTED (nothing sent, nothing spent) and announce it; a job id already recorded is left
    as it is. ``error`` is ``{"code", "message", "problems"?}``. Returns the job record."""
    return _reject(CheckedJob(job_id, model, metadata or {}, None, error), ports=ports, source=source)


def _reject(checked: CheckedJob, *, ports: Ports, source: dict[str, Any] | None = None) -> dict[str, Any]:
    error = checked.error or {"code": "invalid_request", "message": "invalid job"}
    record = {"job_id": checked.job_id, "status": str(JobStatus.REJECTED), "model": checked.model,
              "metadata": checked.metadata, "error": redact(error), "request_hash": checked.request_hash,
              "credits_estimate": checked.estimate}
    if source:
        record["source"] = source
    existing = ports.jobs.create(record)
    if existing is not None:
        if existing.get("status") in TERMINAL and not existing.get("event_published"):
            _publish(existing, ports)
        _log().info("duplicate delivery of a finished job ignored", job_id=checked.job_id,
                    status=existing.get("status"))
        return existing
    _log().warning("job rejected", job_id=checked.job_id, model=checked.model, error_code=error.get("code"),
                   problems=error.get("problems"))
    return _publish(ports.jobs.get(checked.job_id) or record, ports)


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
        "wait_seconds": ports.settings.poll_initial_seconds, "polls": 0,
    }
    arn = ports.executions.start(execution_name(record["job_id"]), state)
    return ports.jobs.transition(record["job_id"], None, set_fields={"execution_arn": arn})


# --------------------------------------------------------------------------------------------- poll


def backoff_seconds(polls: int, settings: Settings) -> int:
    """Wait before status check number ``polls + 1``: ``initial * factor**polls`` capped at the maximum
    (seeds/002 "Callback & Polling": 2 s, 4 s, 8 s, 16 s, … up to e.g. 60 s)."""
    wait = settings.poll_initial_seconds * (settings.poll_factor ** polls)
    return int(min(wait, settings.poll_max_seconds))


def check_status(state: dict[str, Any], ports: Ports) -> dict[str, Any]:
    """One status check for the job in ``state`` (see module docstring for the shape).

    Returns:
        ``state`` with ``phase`` (processing | ready | ended), ``polls`` and ``wait_seconds`` updated.
        When the provider reports failure, or the deadline passes, the terminal status is recorded here
        and ``phase`` is ``ended``.
    """
    from mediagen.provider import Failed, ProviderError, ProviderRejected, Succeeded

    job_id, polls = state["job_id"], int(state.get("polls", 0)) + 1
    log = _log()
    try:
        result = ports.provider().status(state["provider_task_id"])
    except ProviderRejected as exc:  # invalid_taskId / invalid key: asking again will not help
        _terminal(job_id, JobStatus.PIPELINE_FAILED, ports, error=exc.to_dict(), add={"polls": 1},
                  expect={JobStatus.SUBMITTED})
        return {**state, "phase": "ended", "polls": polls}
    except ProviderError as exc:  # transient: counts as a check that saw nothing new
        log.warning("status check failed; will check again", job_id=job_id, error_code=exc.code)
        result = None
    if isinstance(result, Failed):
        _terminal(job_id, JobStatus.FAILED, ports, expect={JobStatus.SUBMITTED}, add={"polls": 1},
                  error={"code": result.code or "provider_failed", "message": result.message},
                  set_fields={"provider_completed_at": utcnow()})
        return {**state, "phase": "ended", "polls": polls}
    if isinstance(result, Succeeded):
        try:
            ports.jobs.transition(job_id, None, expect={JobStatus.SUBMITTED}, add={"polls": 1},
                                   set_fields={"provider_completed_at": utcnow()})
        except StatusConflict:
            return {**state, "phase": "ended", "polls": polls}
        log.info("provider finished", job_id=job_id, provider_task_id=state["provider_task_id"], polls=polls)
        return {**state, "phase": "ready", "polls": polls}

    now = ports.clock()
    remaining = int(state["deadline"] - now)
    if remaining <= 0:
        _terminal(job_id, JobStatus.TIMED_OUT, ports, expect={JobStatus.SUBMITTED}, add={"polls": 1}, error={
            "code": "deadline_exceeded",
            "message": f"the provider did not finish before the {state.get('modality', '')} deadline "
                       f"(after {polls} status checks)"})
        return {**state, "phase": "ended", "polls": polls}
    try:
        # A wake-up that arrived before this check is used up by it.
        ports.jobs.transition(job_id, None, expect={JobStatus.SUBMITTED}, add={"polls": 1}, remove=("wake_pending",))
    except StatusConflict:  # finished elsewhere (e.g. cancelled): stop polling
        return {**state, "phase": "ended", "polls": polls}
    wait = backoff_seconds(polls, ports.settings)
    wait -= int(wait * ports.settings.poll_jitter * random.random())
    return {**state, "phase": "processing", "polls": polls, "wait_seconds": max(1, min(wait, remaining))}


# --------------------------------------------------------------------------------------------- persist


#: Attempts at fetching a result whose download failed in a way that is safe to repeat.
DOWNLOAD_ATTEMPTS = 3


class ResultDownloadFailed(MediagenError):
    """The result could not be downloaded completely after :data:`DOWNLOAD_ATTEMPTS` attempts."""

    code = "download_failed"


class ResultExpired(MediagenError):
    """The provider's temporary result URL no longer serves the file (seeds/003 "Result URLs": treat
    ``fileURL`` as temporary)."""

    code = "result_expired"


def persist_result(state: dict[str, Any], ports: Ports) -> dict[str, Any]:
    """Copy the provider's result into S3 and finish the job.

    Writes ``<prefix><job_id>/output.<ext>`` (real content type, SHA-256) -- and, for a zip result, each
    member as ``<prefix><job_id>/files/<name>`` -- plus ``<prefix><job_id>/result.json``; records SUCCEEDED with
    the outputs and the detection lag; publishes "Job Succeeded". Transient download failures are retried
    (:data:`DOWNLOAD_ATTEMPTS`, jittered backoff); an expired result URL is not.

    Raises:
        ResultExpired: the provider no longer serves the result.
        MediagenError: the result could not be fetched or stored. Either way the state machine records
            PIPELINE_FAILED through :func:`record_failure`, with this message.
    """
    from mediagen.provider import DownloadFailed, DownloadUnavailable, ProviderUnavailable

    assert ports.outputs is not None, "persist needs an output store"
    job_id = state["job_id"]
    record = ports.jobs.transition(job_id, JobStatus.PERSISTING,
                                    expect={JobStatus.SUBMITTED, JobStatus.PERSISTING})
    started = utcnow()
    base = f"{record.get('output_prefix', '')}{job_id}/"
    for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
        try:
            outputs, source_url = _fetch_and_store(state["provider_task_id"], base, ports)
            break
        except (DownloadUnavailable, ProviderUnavailable) as exc:
            retryable: MediagenError = exc
        except DownloadFailed as exc:
            if exc.http_status in (403, 404, 410):
                raise ResultExpired(f"the provider's result URL no longer serves the file (HTTP {exc.http_status}); "
                                    "the result could not be fetched before it expired") from exc
            raise
        except StorageError as exc:
            if exc.code != "download_incomplete":
                raise
            retryable = exc
        if attempt == DOWNLOAD_ATTEMPTS:
            raise ResultDownloadFailed(f"result download failed {DOWNLOAD_ATTEMPTS} times: {retryable.message}") \
                from retryable
        _log().warning("result download failed; retrying", job_id=job_id, attempt=attempt, error=retryable.message)
        time.sleep(random.uniform(0.5, 1.0) * 2 ** (attempt - 1))

    signal = record.get("callback_received_at") or record.get("provider_completed_at")
    lag_ms = _ms_between(signal, started) if signal else None
    manifest = {
        "job_id": job_id, "model": record.get("model"), "provider_task_id": state["provider_task_id"],
        "status": str(JobStatus.SUCCEEDED), "outputs": outputs, "metadata": record.get("metadata", {}),
        "created_at": record.get("created_at"), "completed_at": utcnow(), "source_url": source_url,
    }
    manifest_obj = ports.outputs.put_json(base + "result.json", manifest)
    done = ports.jobs.transition(job_id, JobStatus.SUCCEEDED, expect={JobStatus.PERSISTING}, set_fields={
        "outputs": outputs, "manifest_uri": manifest_obj.uri, "persist_started_at": started,
        "detection_lag_ms": lag_ms})
    _log().info("job succeeded", job_id=job_id, outputs=len(outputs), bytes=outputs[0]["bytes"],
                detection_lag_ms=lag_ms)
    ports.metrics.count("BytesPersisted", sum(int(o["bytes"]) for o in outputs), unit="Bytes")
    if lag_ms is not None:
        ports.metrics.count("DetectionLagMs", lag_ms, unit="Milliseconds")
    _publish(done, ports)
    return {"job_id": job_id, "phase": "succeeded", "outputs": len(outputs)}


def _fetch_and_store(provider_task_id: str, base: str, ports: Ports) -> tuple[list[dict[str, Any]], str]:
    """One attempt: status -> fileURL -> stream into S3 (and unpack a zip). Returns (outputs, redacted URL)."""
    import tempfile

    from mediagen.provider import Succeeded
    from mediagen.storage import unpack_zip

    assert ports.outputs is not None
    client = ports.provider()
    result = client.status(provider_task_id)
    if not isinstance(result, Succeeded):
        raise MediagenError(f"status changed after success: {type(result).__name__}", code="result_unavailable")
    with tempfile.TemporaryFile() as spool, client.open_download(provider_task_id, result.file_url) as download:
        chunks = download.iter_bytes()
        first = next(chunks, b"")
        is_zip = first.startswith(b"PK\x03\x04")
        stored = ports.outputs.put_stream(base + "output", _prepend(first, chunks), declared_type=download.content_type,
                                          expected_bytes=download.content_length, tee=spool if is_zip else None)
        outputs = [stored.to_dict()]
        if is_zip:
            spool.seek(0)
            outputs += [{**m.to_dict(), "unpacked_from": stored.key}
                        for m in unpack_zip(ports.outputs, spool, base + "files/")]
    return outputs, redact_text(result.file_url or "")


def _prepend(first: bytes, rest: Any) -> Any:
    yield first
    yield from rest


def _ms_between(start_iso: str, end_iso: str) -> int | None:
    from datetime import datetime

    try:
        a = datetime.fromisoformat(start_iso.replace("Z", "+00:00"))
        b = datetime.fromisoformat(end_iso.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0, int((b - a).total_seconds() * 1000))


# --------------------------------------------------------------------------------------------- failure


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
        return {"phase": "ignored"}
    to = EXECUTION_END_STATUS[status]
    message = (f"the workflow execution ended {status} before the job finished"
               + (f": {redact_text(str(detail['cause']))[:500]}" if detail.get("cause") else ""))
    record = _terminal(state["job_id"], to, ports, expect={JobStatus.RECEIVED, JobStatus.SUBMITTING,
                                                           JobStatus.SUBMITTED, JobStatus.PERSISTING},
                       error={"code": f"execution_{status.lower()}", "message": message})
    return {"job_id": state["job_id"], "phase": "ended", "status": record.get("status")}


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
    return {"job_id": job_id, "phase": "ended", "status": record.get("status")}


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


# --------------------------------------------------------------------------------------------- common


def _terminal(job_id: str, status: JobStatus, ports: Ports, *, expect: set[JobStatus] | None = None,
              error: dict[str, Any] | None = None, add: dict[str, int] | None = None,
              set_fields: dict[str, Any] | None = None) -> dict[str, Any]:
    """Move a job to a terminal status and publish its event. A job already terminal is left alone."""
    fields = dict(set_fields or {})
    if error is not None:
        fields["error"] = redact(error)
    try:
        record = ports.jobs.transition(job_id, status, expect=expect, set_fields=fields, add=add)
    except StatusConflict:
        current = ports.jobs.get(job_id) or {"job_id": job_id}
        _log().info("job already moved on; terminal status not recorded again", job_id=job_id,
                    status=current.get("status"), wanted=str(status))
        return current
    level = "info" if status == JobStatus.SUCCEEDED else "warning"
    getattr(_log(), level)("job ended", job_id=job_id, status=str(status), error=fields.get("error"))
    return _publish(record, ports)


def _publish(record: dict[str, Any], ports: Ports) -> dict[str, Any]:
    """A job has ended: announce it once (claimed with a conditional write, so concurrent deliveries of one
    job cannot both publish), give back its in-flight slot, count it."""
    job_id = record["job_id"]
    try:
        claimed = ports.jobs.transition(job_id, None, set_fields={"event_published": True},
                                         unless_set="event_published")
    except StatusConflict:
        return ports.jobs.get(job_id) or record
    try:
        ports.events.publish_job_event(record)
    except Exception:
        ports.jobs.transition(job_id, None, remove=("event_published",))  # let a redelivery announce it
        raise
    if record.get("holds_slot") and ports.jobs.take(job_id, "holds_slot") and ports.guard is not None:
        ports.guard.release_slot()
    status = str(record.get("status", ""))
    metric = {"SUCCEEDED": "JobsSucceeded", "REJECTED": "JobsRejected", "FAILED": "JobsFailed",
              "PIPELINE_FAILED": "JobsPipelineFailed", "TIMED_OUT": "JobsTimedOut",
              "OUTCOME_UNKNOWN": "JobsOutcomeUnknown", "CANCELLED": "JobsCancelled"}.get(status)
    if metric:
        reason = (record.get("error") or {}).get("code")
        ports.metrics.count(metric, dimensions={"reason": reason} if metric == "JobsRejected" and reason else None)
    if record.get("provider_task_id"):
        ports.metrics.count("PollsPerJob", record.get("polls", 0))
    return claimed
