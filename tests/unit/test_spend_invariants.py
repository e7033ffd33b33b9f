"""Spend invariants under any interleaving (docs/reliability.md):

- I1: ``#in-flight:<provider>`` == the number of jobs whose ``holds_slot`` is that provider;
- I2: ``#budget:<provider>:<day>`` == the credits of the attempts charged at that provider on that day
  (and the job records' ``credits_charged`` add up to the same total);
- I3: once the queue and the executions are drained, every job is terminal and no slot is held.

A hypothesis state machine interleaves jobs (priced, unpriced, over the budget, with fallbacks, opting into
retries), duplicate deliveries, provider faults (429 with Retry-After, 5xx, ambiguous, insufficient credits)
and repository / event-bus faults (a write or a publish raising at random, errors the code was not designed
for), and checks I1 and I2 after every step.
"""

from __future__ import annotations

import contextlib
import copy
import json
import time
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from mediagen.budget import budget_key, in_flight_key
from mediagen.errors import MediagenError, StatusConflict
from mediagen.provider import AmbiguousSubmit, InsufficientCredits, ProviderUnavailable, RateLimited
from mediagen.provider.port import Submitted
from mediagen.records import TERMINAL, JobStatus
from mediagen.settings import Settings
from mediagen.steps.cancel import cancel_job
from mediagen.steps.core import Ports, RetryLater, _terminal
from mediagen.steps.reconcile import reconcile
from mediagen.steps.submit import submit_job
from tests.fakes import InMemoryJobs, PortProvider, RecordingEvents, RecordingStarter

PRICED = {"model": "seedance-v1-pro", "input": {"prompt": "a fox", "duration": "5", "resolution": "720p",
                                                "aspect_ratio": "16:9"}}  # 81 credits
UNPRICED = {"model": "kling-3", "input": {"prompt": "a fox", "mode": "4K", "duration": "15", "sound": True}}
CLIPIA = {"model": "nano-banana-2", "input": {"prompt": "a fox"}}  # 12 credits at Clipia

KINDS = {
    "priced": {"request": PRICED},
    "capped": {"request": PRICED, "max_credits": 100},
    "unpriced": {"request": UNPRICED, "max_credits": 10},                # REJECTED price_unknown
    "unpriced-allowed": {"request": UNPRICED, "allow_unpriced": True},
    "fallback": {"request": PRICED, "fallbacks": [{"provider": "clipia", "request": CLIPIA}]},
    "retry": {"request": PRICED, "retry_unknown_outcome": True},
    "clipia": {"provider": "clipia", "request": CLIPIA},
}
OUTCOMES = ["ok", "ok", "ok", "429", "5xx", "ambiguous", "no-credits"]


class Fault(Exception):
    """An error nobody designed for (a throttle, a network error)."""


class FlakyEvents(RecordingEvents):
    fail_next = False

    def publish_job_event(self, record: dict[str, Any]) -> None:
        if self.fail_next:
            self.fail_next = False
            raise Fault("PutEvents throttled")
        super().publish_job_event(record)


def outcome(name: str) -> Any:
    return {"ok": Submitted("ptask"), "429": RateLimited("slow down", retry_after=7),
            "5xx": ProviderUnavailable("503"), "ambiguous": AmbiguousSubmit("read timeout"),
            "no-credits": InsufficientCredits("no credits", http_status=402)}[name]


class SpendMachine(RuleBasedStateMachine):
    @initialize()
    def setup(self) -> None:
        self.jobs = InMemoryJobs()
        self.events = FlakyEvents()
        self.now = time.time()
        self.ports_by = {"cliprise": PortProvider("cliprise"), "clipia": PortProvider("clipia", native_idempotency=True)}
        # Each provider has its own limits (never the other's): both at 2 slots and 400 credits a day.
        self.ports = Ports(settings=Settings(MEDIAGEN_MAX_IN_FLIGHT=2, MEDIAGEN_DAILY_CREDIT_BUDGET=400,
                                             MEDIAGEN_CLIPIA_MAX_IN_FLIGHT=2, MEDIAGEN_CLIPIA_DAILY_CREDIT_BUDGET=400,
                                             MEDIAGEN_MAX_WAIT_SECONDS=3600),
                           jobs=self.jobs, events=self.events, provider=lambda: None,  # type: ignore[arg-type,return-value]
                           providers=lambda name: self.ports_by[name], executions=RecordingStarter(),
                           clock=lambda: self.now)
        self.queue: list[tuple[str, str]] = []  # (body, delivery id)
        self.docs: dict[str, str] = {}
        self.faults = 0

    # --------------------------------------------------------------------------- faults

    def _arm(self, writes: int | None, after: bool = False) -> None:
        """Make the ``writes``-th repository write from now raise (None: no fault): before it is applied (a
        throttle), or with ``after`` once it is applied (the answer is lost)."""
        self.jobs.fault = self.jobs.fault_after = None
        if writes is None:
            return
        left = [writes]

        def fault(operation: str, job_id: str) -> None:
            left[0] -= 1
            if left[0] == 0:
                raise Fault(f"{operation} throttled for {job_id}")

        if after:
            self.jobs.fault_after = fault
        else:
            self.jobs.fault = fault

    # --------------------------------------------------------------------------- rules

    @rule(kind=st.sampled_from(sorted(KINDS)))
    def add_job(self, kind: str) -> None:
        job_id = f"j{len(self.docs)}-{kind}"
        body = json.dumps({"job_id": job_id, **copy.deepcopy(KINDS[kind])})
        self.docs[job_id] = body
        self.queue.append((body, f"m-{job_id}"))

    @precondition(lambda self: self.docs)
    @rule(data=st.data())
    def duplicate(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(sorted(self.docs)))
        self.queue.append((self.docs[job_id], f"dup-{job_id}"))

    @precondition(lambda self: self.queue)
    @rule(data=st.data(), first=st.sampled_from(OUTCOMES), then=st.sampled_from(OUTCOMES),
          fault=st.one_of(st.none(), st.integers(1, 4)), after=st.booleans(), publish_fails=st.booleans())
    def deliver(self, data: st.DataObject, first: str, then: str, fault: int | None, after: bool,
                publish_fails: bool) -> None:
        body, delivery = self.queue.pop(data.draw(st.integers(0, len(self.queue) - 1)))
        self.ports_by["cliprise"].submit_script = [outcome(first), Submitted("ptask")]
        self.ports_by["clipia"].submit_script = [outcome(then), Submitted("ptask")]
        self.events.fail_next = publish_fails
        self._arm(fault, after)
        try:
            submit_job(body, delivery_id=delivery, ports=self.ports)
        except RetryLater:
            self.queue.append((body, delivery))  # resent or retried
        except (Fault, MediagenError):
            self.queue.append((body, delivery))  # the message comes back (SQS visibility timeout)
        finally:
            self._arm(None)
            self.events.fail_next = False

    @rule(seconds=st.sampled_from([10, 200, 1000]))
    def time_passes(self, seconds: int) -> None:
        self.now += seconds

    @precondition(lambda self: self.jobs.items)
    @rule(data=st.data(), status=st.sampled_from([JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.TIMED_OUT,
                                                  JobStatus.PIPELINE_FAILED]),
          fault=st.one_of(st.none(), st.integers(1, 3)), after=st.booleans(), publish_fails=st.booleans())
    def execution_ends(self, data: st.DataObject, status: JobStatus, fault: int | None, after: bool,
                       publish_fails: bool) -> None:
        job_id = data.draw(st.sampled_from(sorted(self.jobs.items)))
        self.events.fail_next = publish_fails
        self._arm(fault, after)
        try:
            _terminal(job_id, status, self.ports, expect={JobStatus.SUBMITTED},
                      error=None if status == JobStatus.SUCCEEDED else {"code": "x", "message": "y"})
        except (Fault, StatusConflict):
            pass  # the state machine retries the step, then the backstop records it (see drain)
        finally:
            self._arm(None)
            self.events.fail_next = False

    @precondition(lambda self: self.jobs.items)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        with contextlib.suppress(MediagenError):
            cancel_job(data.draw(st.sampled_from(sorted(self.jobs.items))), self.ports)

    @rule()
    def reconciler_runs(self) -> None:
        result = reconcile(self.ports)
        assert result["drifted"] == {}, result  # the counters never drift: they change with the status

    # --------------------------------------------------------------------------- invariants

    @invariant()
    def slots_and_charges_match_the_records(self) -> None:
        if not hasattr(self, "jobs"):
            return
        records = list(self.jobs.items.values())
        for provider in ("cliprise", "clipia"):
            holding = sum(1 for r in records if r.get("holds_slot") == provider)
            assert self.jobs.counter(in_flight_key(provider)) == holding, (provider, holding, self.jobs.counters)
            assert holding <= 2
        budget: dict[str, int] = {}
        for r in records:
            for a in r.get("attempts") or []:
                key = budget_key(a["provider"], a["day"])
                budget[key] = budget.get(key, 0) + a["credits"]
        for key, value in self.jobs.counters.items():
            if key.startswith("#budget:"):
                assert value == budget.get(key, 0), (key, value, budget)
                assert value <= 400
        assert sum(r.get("credits_charged", 0) for r in records) == sum(budget.values())

    def teardown(self) -> None:
        if not hasattr(self, "jobs"):
            return
        # Drain: no more faults, the providers accept, the queue runs dry, every execution ends.
        for name in ("cliprise", "clipia"):
            self.ports_by[name].submit_script = [Submitted("ptask")]
        for _ in range(500):
            running = [j for j, r in self.jobs.items.items() if r["status"] == JobStatus.SUBMITTED]
            for job_id in running:  # executions end, freeing slots for the waiting jobs
                _terminal(job_id, JobStatus.SUCCEEDED, self.ports, expect={JobStatus.SUBMITTED})
            if not self.queue:
                break
            self.now += 1000  # past any Retry-After and the submit lease
            body, delivery = self.queue.pop(0)
            try:
                submit_job(body, delivery_id=delivery, ports=self.ports)
            except RetryLater:
                self.queue.append((body, delivery))
        reconcile(self.ports)
        records = list(self.jobs.items.values())
        assert not self.queue
        assert all(r["status"] in TERMINAL for r in records), [(r["job_id"], r["status"]) for r in records]
        assert all(r.get("event_published") for r in records)
        assert self.jobs.counter(in_flight_key("cliprise")) == self.jobs.counter(in_flight_key("clipia")) == 0
        self.slots_and_charges_match_the_records()


SpendMachine.TestCase.settings = settings(max_examples=120, stateful_step_count=40, deadline=None,
                                          suppress_health_check=[HealthCheck.too_slow])
test_spend_invariants = SpendMachine.TestCase
