"""What every step shares: the ports, the job checks, terminal transitions and publishing.

- :class:`Ports` -- what the steps talk to (production wiring in :mod:`mediagen.wiring`; tests pass fakes).
- :class:`RetryLater` -- nothing was sent or spent; the channel delivers the job again later.
- :func:`reject_job` -- record a job REJECTED (nothing sent, nothing spent) and announce it.
- :func:`_terminal` -- move a job to a terminal status, giving back its slot in the same transaction; publish.
- :func:`_publish` -- announce a terminal job (outbox: ``event_published`` unset = to publish); never raises.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mediagen.completion import new_callback_token
from mediagen.errors import MediagenError, StatusConflict
from mediagen.jobs import CheckedJob
from mediagen.observability import MetricsSink, NullMetrics
from mediagen.principals import channel_owner
from mediagen.records import TERMINAL, JobStatus
from mediagen.redact import redact, redact_text
from mediagen.settings import Settings

if TYPE_CHECKING:
    from mediagen.budget import CounterChange
    from mediagen.catalog import Catalog, ProviderCatalog
    from mediagen.completion import TaskWaker
    from mediagen.events import EventPublisher
    from mediagen.executions import ExecutionStarter
    from mediagen.inputs import InputResolver
    from mediagen.provider import ClipriseClient
    from mediagen.provider.port import Provider
    from mediagen.queue import JobQueue
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
        delay_seconds: how long to wait (``Retry-After``), None for the deployment's requeue delay.
    """

    code = "retry_later"

    def __init__(self, message: str, *, code: str | None = None, resend: bool = False,
                 job_document: dict[str, Any] | None = None, delay_seconds: int | None = None) -> None:
        super().__init__(message, code=code)
        self.resend = resend
        self.job_document = job_document
        #: Seconds before the next delivery (the provider's ``Retry-After``, at most 900); None: the default.
        self.delay_seconds = delay_seconds


@dataclass
class Ports:
    """What the logic talks to. Production wiring is in :mod:`mediagen.wiring`; tests pass fakes.

    ``provider``, ``providers`` and ``catalog`` are factories so that a step that does not need them never
    pays for them (no secret read, no catalog load).

    ``providers(name)`` is the provider port (:class:`mediagen.provider.port.Provider`) of ``"cliprise"`` or
    ``"clipia"`` (a job's top-level ``provider``); the steps move to it from ``provider`` (the Cliprise client),
    which goes once every step uses the port.
    """

    settings: Settings
    jobs: JobRepository
    events: EventPublisher
    provider: Callable[[], ClipriseClient]
    catalog: Callable[[], Catalog] = field(default=lambda: _default_catalog())
    executions: ExecutionStarter | None = None
    outputs: OutputStore | None = None
    metrics: MetricsSink = field(default_factory=lambda: NullMetrics())
    clock: Callable[[], float] = time.time
    #: Turns ``s3://`` inputs into URLs the provider can fetch (submit); None: such inputs are refused.
    inputs: InputResolver | None = None
    #: Where the HTTP API and the S3 intake put accepted jobs (the jobs queue).
    jobs_queue: JobQueue | None = None
    #: Ends an execution's wait early (cancel).
    waker: TaskWaker | None = None
    #: The provider port by name (``"cliprise"`` | ``"clipia"``); raises ``ConfigurationError`` for a provider
    #: this deployment has no key for.
    providers: Callable[[str], Provider] | None = None



def provider_catalog(ports: Ports, provider: str) -> ProviderCatalog:
    """The catalog of ``provider``; Cliprise's is ``ports.catalog()`` (tests may pass their own)."""
    from mediagen.catalog import ProviderCatalog, catalog_for

    if provider == "cliprise":
        return ProviderCatalog("cliprise", ports.catalog())
    return catalog_for(provider)


def provider_port(state: Mapping[str, Any], ports: Ports) -> Provider:
    """The port of the job's provider (``state["provider"]``, Cliprise when absent). Without
    ``Ports.providers`` (older wiring, tests on the client), the Cliprise client behind its adapter."""
    name = str(state.get("provider") or "cliprise")
    if ports.providers is not None:
        return ports.providers(name)
    if name != "cliprise":
        from mediagen.errors import ConfigurationError

        raise ConfigurationError(f"no port for provider {name} in this deployment")
    from mediagen.provider.cliprise import ClipriseProvider

    return ClipriseProvider(ports.provider())


def offered_providers(settings: Settings) -> frozenset[str] | None:
    """The providers a job may name in this deployment (``MEDIAGEN_PROVIDERS``, which the construct sets on every
    function that accepts jobs), or None when the variable is unset (then the step does not check; a provider
    without a key fails when its port is built)."""
    if not settings.providers.strip():
        return None
    from mediagen.wiring import configured_providers

    return configured_providers(settings)


def _default_catalog() -> Catalog:
    from mediagen.catalog import get_catalog

    return get_catalog()


def _log() -> Any:
    from mediagen.observability import get_logger

    return get_logger()


# --------------------------------------------------------------------------------------------- submit


def _new_record(checked: CheckedJob, ports: Ports, source: dict[str, Any] | None) -> dict[str, Any]:
    job = checked.job
    assert job is not None
    record = {
        "job_id": job.job_id, "status": str(JobStatus.RECEIVED), "model": job.model,
        "modality": provider_catalog(ports, job.provider).modality(job.model) or "video",
        "request": redact(job.request), "request_hash": job.request_hash, "output_prefix": job.output_prefix,
        "metadata": job.metadata, "credits_estimate": checked.estimate, "max_credits": job.max_credits,
        "allow_unknown_fields": job.allow_unknown_fields, "callback_token": new_callback_token(job.job_id),
        "provider": job.provider, "attempt": 0,
    }
    if job.fallbacks:
        record["fallbacks"] = redact(job.fallbacks)
    if job.allow_unpriced:
        record["allow_unpriced"] = True
    if job.retry_unknown_outcome:  # so that a job the sweeper sends again keeps it
        record["retry_unknown_outcome"] = True
    if source:
        record["source"] = source
    record["owner"] = channel_owner(source)  # the channel's (finding 7); accept_job gives the API caller's
    return record


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


# --------------------------------------------------------------------------------------------- common


def _terminal(job_id: str, status: JobStatus, ports: Ports, *, expect: set[JobStatus] | None = None,
              error: dict[str, Any] | None = None, add: dict[str, int] | None = None,
              set_fields: dict[str, Any] | None = None, counters: Sequence[CounterChange] = ()) -> dict[str, Any]:
    """Move a job to a terminal status -- giving back its in-flight slot in the same transaction (I1) -- and
    publish its event (after the commit; a failed publish leaves ``event_published`` unset, to be published
    by a redelivery or the reconciler). A job already terminal (or not in ``expect``) is left alone."""
    fields = dict(set_fields or {})
    if error is not None:
        fields["error"] = redact(error)
    try:
        record = _move(job_id, status, ports, expect=expect, set_fields=fields, add=add, counters=counters)
    except StatusConflict:
        current = ports.jobs.get(job_id) or {"job_id": job_id}
        _log().info("job already moved on; terminal status not recorded again", job_id=job_id,
                    status=current.get("status"), wanted=str(status))
        return current
    level = "info" if status == JobStatus.SUCCEEDED else "warning"
    getattr(_log(), level)("job ended", job_id=job_id, status=str(status), error=fields.get("error"))
    return _publish(record, ports)


def _move(job_id: str, to: JobStatus | None, ports: Ports, *, expect: set[JobStatus] | None = None,
          set_fields: dict[str, Any] | None = None, add: dict[str, int] | None = None,
          remove: tuple[str, ...] = (), counters: Sequence[CounterChange] = (),
          if_fields: dict[str, Any] | None = None) -> dict[str, Any]:
    """A status change that gives back the job's in-flight slot, if it holds one, in the same transaction.

    The slot is read first and the write is conditional on it (``if_fields``), so a slot is released
    exactly once; a concurrent change of the slot (rare) is retried on a fresh read. ``if_fields`` adds the
    caller's own conditions (attribute -> value, None: absent).

    Raises:
        StatusConflict: the job is not in ``expect``, or a field of ``if_fields`` differs.
        CounterLimitReached: an added counter is at its limit.
    """
    from mediagen.budget import release_slot

    for _ in range(5):
        current = ports.jobs.get(job_id)
        if current is None:
            from mediagen.errors import JobNotFound

            raise JobNotFound(f"no job {job_id}")
        if expect and current.get("status") not in {str(s) for s in expect}:
            raise StatusConflict(f"job {job_id} is {current.get('status')}")
        held = current.get("holds_slot") or None
        changes = list(counters)
        dropped = tuple(remove)
        if held:
            changes.append(release_slot(held if isinstance(held, str) else "cliprise"))
            dropped += ("holds_slot",)
        try:
            return ports.jobs.transition(job_id, to, expect=expect, set_fields=set_fields, add=add, remove=dropped,
                                         if_fields={**(if_fields or {}), "holds_slot": current.get("holds_slot")},
                                         counters=changes)
        except StatusConflict:
            again = ports.jobs.get(job_id) or {}
            if again.get("holds_slot") == current.get("holds_slot"):
                raise
    raise StatusConflict(f"job {job_id}: its in-flight slot kept changing")


_END_METRICS = {"SUCCEEDED": "JobsSucceeded", "REJECTED": "JobsRejected", "FAILED": "JobsFailed",
                "PIPELINE_FAILED": "JobsPipelineFailed", "TIMED_OUT": "JobsTimedOut",
                "OUTCOME_UNKNOWN": "JobsOutcomeUnknown", "CANCELLED": "JobsCancelled", "EXPIRED": "JobsExpired"}


def _count_end(record: dict[str, Any], ports: Ports) -> None:
    """Count a job that ended (when its event is published)."""
    metric = _END_METRICS.get(str(record.get("status", "")))
    if metric:
        reason = (record.get("error") or {}).get("code")
        ports.metrics.count(metric, dimensions={"reason": reason} if metric == "JobsRejected" and reason else None)
    if record.get("provider_task_id"):
        ports.metrics.count("PollsPerJob", record.get("polls", 0))


def _publish(record: dict[str, Any], ports: Ports) -> dict[str, Any]:
    """Announce a terminal job (the outbox): publish, then mark ``event_published``. Never raises and never
    holds anything: the slot was given back by the terminal write. A failure leaves ``event_published`` unset
    (a redelivery or the reconciler publishes it: at least once; consumers deduplicate on ``job_id``)."""
    job_id = record["job_id"]
    if record.get("event_published") or record.get("status") not in TERMINAL:
        return record
    if record.get("holds_slot"):  # a terminal write that did not go through _move: give the slot back first
        try:
            record = _move(job_id, None, ports, expect=set(TERMINAL))
        except Exception:  # noqa: BLE001 - the reconciler releases it
            _log().exception("terminal job still holds its slot; left for the reconciler", job_id=job_id)
    try:
        ports.events.publish_job_event(record)
    except Exception:  # noqa: BLE001 - the record says "to publish"; the reconciler retries
        _log().exception("event not published; left for a redelivery or the reconciler", job_id=job_id)
        ports.metrics.count("EventsUnpublished")
        return record
    _count_end(record, ports)
    try:
        return ports.jobs.transition(job_id, None, set_fields={"event_published": True})
    except Exception:  # noqa: BLE001 - published; at worst it is published again
        _log().exception("event published but not marked; it may be published again", job_id=job_id)
        return record
