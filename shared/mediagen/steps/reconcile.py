"""Step ``reconcile`` (function ``reconcile``, every 5 minutes): the outbox and the spend counters.

- Gives back the slot of a terminal job that still holds one (a terminal write outside ``_move``).
- Ends ``EXPIRED`` a job still RECEIVED well past ``MEDIAGEN_MAX_WAIT_SECONDS`` (its message was lost, e.g.
  in the dead-letter queue): every job ends terminal (I3).
- Ends ``OUTCOME_UNKNOWN`` a job still SUBMITTING well past its claim's lease whose message is gone (the worker
  died while generate was in flight, and no delivery came back to end it): the charge stays, the slot is freed.
- Starts the execution of a job SUBMITTED well past its lease without one (the provider accepted it, but every
  ``StartExecution`` of its deliveries failed and its message is gone): the accepted, paid task is then polled
  and persisted like any other. The execution name is the job's, so a start that raced a redelivery's is one
  execution.
- Publishes the event of every terminal job whose ``event_published`` is unset (a publish that failed after
  the terminal write: the outbox, see docs/reliability.md).
- Recomputes the spend counters from the job records (invariants I1 and I2) and, where a counter drifted,
  logs it, counts ``CounterDrift`` and writes the recomputed value. A counter that changed while the records
  were read (its version moved: a transaction committed in between, even one that took and gave back) is left
  for the next run, and the write is conditional on the version read, so it never overwrites a change.

Reads the whole job table (``JobRepository.scan``): the reconciler is the one scheduled reader.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from mediagen.records import TERMINAL, JobStatus
from mediagen.steps.core import Ports, _log, _move, _publish
from mediagen.steps.submit import (
    _end_abandoned_claim,
    _expire,
    _seconds_in,
    _start_execution,
    _waited_seconds,
)

#: A RECEIVED job is expired by the reconciler only this long after its wait ran out (its own deliveries
#: normally end it first).
_GRACE_SECONDS = 900


def expected_counters(records: list[dict[str, Any]], providers: tuple[str, ...]) -> dict[str, int]:
    """What every spend counter must hold given ``records``: ``#in-flight:<p>`` = jobs whose ``holds_slot`` is
    ``p`` (I1); ``#budget:<p>:<day>`` = the credits of their attempts at ``p`` on ``day`` (I2)."""
    from mediagen.budget import budget_key, in_flight_key

    counts: Counter[str] = Counter({in_flight_key(p): 0 for p in providers})
    for record in records:
        held = record.get("holds_slot")
        if held:
            counts[in_flight_key(held if isinstance(held, str) else "cliprise")] += 1
        for attempt in record.get("attempts") or []:
            if attempt.get("provider") and attempt.get("day"):
                counts[budget_key(attempt["provider"], attempt["day"])] += int(attempt.get("credits") or 0)
    return dict(counts)


def reconcile(ports: Ports) -> dict[str, Any]:
    """One pass. Returns ``{"republished", "released", "expired", "abandoned", "started": int,
    "drifted": {key: [was, now]}, "jobs"}``. A failure to start one execution is logged and left for the next
    run (the others still run)."""
    from mediagen.catalog import PROVIDERS

    log = _log()
    records = ports.jobs.scan()
    republished = released = 0
    for record in records:
        if record.get("status") in TERMINAL and record.get("holds_slot"):
            record = _move(record["job_id"], None, ports, expect=set(TERMINAL))  # a slot a terminal job holds
            released += 1
        if record.get("status") in TERMINAL and not record.get("event_published") \
                and _publish(record, ports).get("event_published"):
            republished += 1
    expired = abandoned = started = 0
    for record in records:  # I3: a job whose message was lost (e.g. in the DLQ) must not wait for ever
        if record.get("status") == JobStatus.RECEIVED and _waited_seconds(record, ports) > \
                ports.settings.max_wait_seconds + _GRACE_SECONDS:
            _expire(record["job_id"], _waited_seconds(record, ports), ports, record.get("attempts") or [])
            expired += 1
        elif record.get("status") == JobStatus.SUBMITTING and _seconds_in(record, JobStatus.SUBMITTING, ports) > \
                ports.settings.submit_lease_seconds + _GRACE_SECONDS:
            _end_abandoned_claim(record["job_id"], ports)
            abandoned += 1
        elif record.get("status") == JobStatus.SUBMITTED and not record.get("execution_arn") and \
                _seconds_in(record, JobStatus.SUBMITTED, ports) > ports.settings.submit_lease_seconds + _GRACE_SECONDS:
            started += _start_lost_execution(record, ports)
    if released:
        log.warning("slots of terminal jobs given back", count=released)
    if started:
        log.warning("executions of submitted jobs started", count=started)
        ports.metrics.count("ExecutionsRestarted", started)
    if republished:
        log.warning("terminal events re-published", count=republished)
        ports.metrics.count("EventsRepublished", republished)
    before = {key: ports.jobs.counter_state(key) for key in expected_counters(records, PROVIDERS)}
    records = ports.jobs.scan()
    expected = expected_counters(records, PROVIDERS)
    drifted: dict[str, list[int]] = {}
    for key, want in sorted(expected.items()):
        now, version = ports.jobs.counter_state(key)
        if now == want:
            continue
        if before.get(key, (None, None))[1] != version:
            continue  # changed (or first seen) while we read: a transaction committed in between; next run
        if not ports.jobs.set_counter(key, want, version=version):
            continue  # a transaction committed just now: next run
        drifted[key] = [now, want]
        log.error("spend counter drifted from the job records; recomputed", counter=key, was=now, recomputed=want)
        ports.metrics.count("CounterDrift", dimensions={"counter": key.split(":")[0]})
    return {"republished": republished, "released": released, "expired": expired, "abandoned": abandoned,
            "started": started, "drifted": drifted, "jobs": len(records)}


def _start_lost_execution(record: dict[str, Any], ports: Ports) -> int:
    """Start the execution of a SUBMITTED job that has none; 1 if started, 0 if it could not be (logged)."""
    if ports.executions is None:
        _log().error("a submitted job has no execution and no state machine is configured "
                     "(MEDIAGEN_STATE_MACHINE_ARN)", job_id=record["job_id"])
        return 0
    try:
        _start_execution(record, ports)
    except Exception as exc:  # noqa: BLE001 -- one job's failure must not stop the pass; the next run retries
        _log().error("could not start the execution of a submitted job; the next run retries",
                     job_id=record["job_id"], error=type(exc).__name__)
        return 0
    return 1
