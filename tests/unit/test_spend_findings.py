"""Regression tests named after the adversarial review's findings on the spend guards, and the fallback.

Run on the fakes (the provider port, the in-memory repository with the same transaction semantics as
DynamoDB's TransactWriteItems; tests/unit/test_reliability.py runs the counters on moto).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from mediagen.budget import budget_key, in_flight_key, today
from mediagen.catalog import catalog_for
from mediagen.events import job_event_detail
from mediagen.inputs import s3_references
from mediagen.jobs import execution_name
from mediagen.provider import (
    AmbiguousSubmit,
    CapabilityNotSupported,
    IdempotencyKeyReuse,
    InsufficientCredits,
    ProviderRejected,
    ProviderUnavailable,
    RateLimited,
    RequestInProgress,
)
from mediagen.provider.port import Submitted, idempotency_key
from mediagen.records import JobStatus
from mediagen.settings import Settings
from mediagen.steps.core import Ports, RetryLater, _terminal
from mediagen.steps.reconcile import reconcile
from mediagen.steps.submit import submit_job
from tests.fakes import InMemoryJobs, MapInputs, PortProvider, RecordingEvents, RecordingStarter, ScriptedProvider

PRICED = {"model": "seedance-v1-pro", "input": {"prompt": "a fox", "duration": "5", "resolution": "720p",
                                                "aspect_ratio": "16:9"}}
PRICE = 81  # seedance-v1-pro 720p 5 s, the documents' pricing
KLING_4K = {"model": "kling-3", "input": {"prompt": "a fox", "mode": "4K", "duration": "15", "sound": True}}
CLIPIA = {"model": "nano-banana-2", "input": {"prompt": "a fox"}}


@dataclass
class Metrics:
    counts: dict[str, float] = field(default_factory=dict)
    #: (name, dimensions) -> the last value (gauges such as DailyCreditsSpent).
    last: dict[tuple[str, str], float] = field(default_factory=dict)

    def count(self, name: str, value: float = 1, *, unit: str = "Count",
              dimensions: dict[str, str] | None = None) -> None:
        self.counts[name] = self.counts.get(name, 0) + value
        self.last[(name, json.dumps(dimensions, sort_keys=True))] = value


class FailingEvents(RecordingEvents):
    """PutEvents refuses while ``failing`` (a throttle, an entry over 256 KiB)."""

    failing = True

    def publish_job_event(self, record: dict[str, Any]) -> None:
        if self.failing:
            raise RuntimeError("ThrottlingException: Rate exceeded")
        super().publish_job_event(record)


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def make(cliprise: PortProvider | None = None, clipia: PortProvider | None = None, events: Any = None,
         **env: object) -> Ports:
    by_name = {"cliprise": cliprise or PortProvider("cliprise"),
               "clipia": clipia or PortProvider("clipia", native_idempotency=True)}
    return Ports(settings=Settings(**env), jobs=InMemoryJobs(), events=events or RecordingEvents(),
                 provider=lambda: None,  # type: ignore[arg-type,return-value]
                 providers=lambda name: by_name[name], executions=RecordingStarter(), metrics=Metrics(),
                 clock=Clock())


def job(job_id: str, request: dict[str, Any] = PRICED, **extra: Any) -> str:
    return json.dumps({"job_id": job_id, "request": request, **extra})


def counters(ports: Ports, provider: str = "cliprise") -> tuple[int, int]:
    return ports.jobs.counter(in_flight_key(provider)), ports.jobs.counter(budget_key(provider, today()))


def test_finding_01_a_failed_publish_never_keeps_a_slot_and_the_next_job_is_sent() -> None:
    events = FailingEvents()
    ports = make(events=events, MEDIAGEN_MAX_IN_FLIGHT=1)
    assert submit_job(job("a"), delivery_id="m-a", ports=ports)["status"] == "SUBMITTED"
    with pytest.raises(RetryLater, match="in flight"):
        submit_job(job("b"), delivery_id="m-b", ports=ports)
    ended = _terminal("a", JobStatus.FAILED, ports, expect={JobStatus.SUBMITTED}, error={"code": "x", "message": "y"})
    assert ended["status"] == "FAILED" and not ended.get("event_published")  # to publish (the outbox)
    assert counters(ports)[0] == 0  # the slot went back with the status, before any publish
    assert submit_job(job("b"), delivery_id="m-b", ports=ports)["status"] == "SUBMITTED"
    # the reconciler publishes what was left unpublished once EventBridge answers again
    events.failing = False
    assert reconcile(ports)["republished"] == 1
    assert [e["job_id"] for e in events.published] == ["a"] and ports.jobs.get("a")["event_published"]


def test_finding_01_an_event_of_1000_outputs_points_to_result_json_and_fits_in_eventbridge() -> None:
    outputs = [{"uri": f"s3://out/jobs/z/member-{i:04d}.png", "key": f"jobs/z/member-{i:04d}.png", "bytes": 10,
                "content_type": "image/png", "sha256": "0" * 64, "unpacked_from": "archive.zip"} for i in range(1000)]
    record = {"job_id": "z", "status": "SUCCEEDED", "outputs": outputs, "manifest_uri": "s3://out/jobs/z/result.json"}
    detail = job_event_detail(record)
    assert len(json.dumps(detail).encode()) < 256 * 1024
    assert detail["outputs"] == [] and detail["outputs_truncated"] is True and detail["output_count"] == 1000
    assert detail["manifest_uri"] == "s3://out/jobs/z/result.json"
    small = job_event_detail({**record, "outputs": outputs[:2]})
    assert len(small["outputs"]) == 2 and "outputs_truncated" not in small


def test_finding_02_kling_3_4k_without_a_price_is_rejected_price_unknown_and_never_sent() -> None:
    cliprise = PortProvider("cliprise")
    ports = make(cliprise, MEDIAGEN_DAILY_CREDIT_BUDGET=500)
    record = submit_job(job("k", KLING_4K, max_credits=10), delivery_id="m", ports=ports)
    assert record["status"] == "REJECTED" and record["error"]["code"] == "price_unknown"
    assert "allow_unpriced" in record["error"]["message"]
    assert cliprise.submits == [] and counters(ports) == (0, 0)
    # the daily budget alone needs a bound too
    assert submit_job(job("k2", KLING_4K), delivery_id="m2", ports=ports)["error"]["code"] == "price_unknown"
    # a job that allows it is sent, counted, charged 0 (nothing known) and its slot is counted
    allowed = submit_job(job("k3", KLING_4K, allow_unpriced=True), delivery_id="m3", ports=ports)
    assert allowed["status"] == "SUBMITTED" and len(cliprise.submits) == 1
    assert ports.metrics.counts["UnpricedJobsAllowed"] == 1 and counters(ports) == (1, 0)


def test_finding_02_an_absent_pricing_field_is_bounded_by_its_dearest_setting() -> None:
    cliprise = PortProvider("cliprise")
    ports = make(cliprise, MEDIAGEN_DAILY_CREDIT_BUDGET=5000)
    bounded = {"model": "kling-3", "input": {"prompt": "a fox", "duration": "15"}}  # mode and sound left out
    record = submit_job(job("b", bounded, max_credits=1000), delivery_id="m", ports=ports)
    assert record["status"] == "REJECTED" and record["error"]["code"] == "over_budget"
    assert "up to 1200" in record["error"]["message"] and cliprise.submits == []
    sent = submit_job(job("c", bounded, max_credits=1200), delivery_id="m2", ports=ports)
    assert sent["status"] == "SUBMITTED" and counters(ports) == (1, 1200)  # charged its bound


def test_finding_03_a_provider_429_forever_ends_expired_honouring_retry_after() -> None:
    cliprise = PortProvider("cliprise", submit=[RateLimited("slow down", retry_after=7)])
    ports = make(cliprise, MEDIAGEN_MAX_WAIT_SECONDS=20, MEDIAGEN_MAX_IN_FLIGHT=2)
    delays = []
    for _ in range(10):
        try:
            record = submit_job(job("r"), delivery_id="m", ports=ports)
            break
        except RetryLater as exc:
            assert exc.resend and exc.code == "rate_limited"
            delays.append(exc.delay_seconds)
            ports.clock.now += exc.delay_seconds  # type: ignore[attr-defined]
    assert delays == [7, 7] and record["status"] == "EXPIRED"  # the third 429 would wait past 20 s
    assert record["error"]["code"] == "waited_too_long" and counters(ports) == (0, 0)
    assert len(cliprise.submits) == 3


def test_finding_04_every_retried_attempt_is_charged_and_the_budget_applies_to_it() -> None:
    cliprise = PortProvider("cliprise", submit=[AmbiguousSubmit("read timeout"), Submitted("t-2")])
    ports = make(cliprise, MEDIAGEN_DAILY_CREDIT_BUDGET=2 * PRICE)
    with pytest.raises(RetryLater):
        submit_job(job("u", retry_unknown_outcome=True), delivery_id="m", ports=ports)
    assert counters(ports) == (0, PRICE)  # the ambiguous attempt stays charged; its slot went back
    record = submit_job(job("u", retry_unknown_outcome=True), delivery_id="m", ports=ports)
    assert record["status"] == "SUBMITTED" and record["credits_charged"] == 2 * PRICE == counters(ports)[1]
    assert [a["outcome"] for a in record["attempts"]] == ["unknown", "accepted"]
    # the budget is now spent: a third attempt of another job is refused before anything is sent
    cliprise.submit_script = [AmbiguousSubmit("read timeout")]
    over = submit_job(job("v"), delivery_id="m2", ports=ports)
    assert over["error"]["code"] == "over_daily_budget" and len(cliprise.submits) == 2


def test_a_job_refused_for_insufficient_credits_falls_back_to_clipia_with_its_own_key_and_counters() -> None:
    cliprise = PortProvider("cliprise", submit=[InsufficientCredits("no credits", http_status=402)])
    clipia = PortProvider("clipia", native_idempotency=True, submit=[Submitted("req-9", cost=12)])
    ports = make(cliprise, clipia, MEDIAGEN_MAX_IN_FLIGHT=1)
    record = submit_job(job("f", fallbacks=[{"provider": "clipia", "request": CLIPIA}]), delivery_id="m", ports=ports)
    assert record["status"] == "SUBMITTED" and record["provider"] == "clipia" and record["provider_task_id"] == "req-9"
    assert [(a["provider"], a["outcome"], a["credits"]) for a in record["attempts"]] == [
        ("cliprise", "refused", 0), ("clipia", "accepted", 12)]
    (body, key, _), = clipia.submits
    assert body == CLIPIA and key == idempotency_key("clipia", "f")
    assert counters(ports) == (0, 0) and counters(ports, "clipia") == (1, 12)
    (state,) = ports.executions.started.values()  # type: ignore[union-attr]
    assert state["provider"] == "clipia" and state["provider_task_id"] == "req-9"
    ended = _terminal("f", JobStatus.SUCCEEDED, ports, expect={JobStatus.SUBMITTED})
    assert ended["event_published"] and ports.events.published[-1]["provider"] == "clipia"  # type: ignore[attr-defined]


def test_an_ambiguous_submit_never_falls_back() -> None:
    cliprise = PortProvider("cliprise", submit=[AmbiguousSubmit("read timeout")])
    clipia = PortProvider("clipia", native_idempotency=True)
    ports = make(cliprise, clipia)
    record = submit_job(job("g", fallbacks=[{"provider": "clipia", "request": CLIPIA}]), delivery_id="m", ports=ports)
    assert record["status"] == "OUTCOME_UNKNOWN" and clipia.submits == []
    assert counters(ports) == (0, PRICE)  # may have been charged: the charge stays


def _clipia_first(job_id: str) -> str:
    return job(job_id, CLIPIA, provider="clipia", fallbacks=[{"provider": "cliprise", "request": PRICED}])


def test_a_request_the_provider_is_still_processing_stays_charged_once_and_is_not_charged_again() -> None:
    clipia = PortProvider("clipia", native_idempotency=True,
                          submit=[RequestInProgress("still processing", retry_after=3), Submitted("req-1")])
    ports = make(clipia=clipia)
    with pytest.raises(RetryLater) as waiting:
        submit_job(_clipia_first("p"), delivery_id="m", ports=ports)
    assert waiting.value.resend and waiting.value.delay_seconds == 3
    slots, charged = counters(ports, "clipia")
    assert slots == 0 and charged > 0  # the provider holds a request it will charge: the charge stays
    record = submit_job(_clipia_first("p"), delivery_id="m", ports=ports)
    assert record["status"] == "SUBMITTED" and record["provider_task_id"] == "req-1"
    assert [(a["outcome"], a["credits"]) for a in record["attempts"]] == [("in_progress", charged),
                                                                          ("accepted", 0)]
    assert counters(ports, "clipia") == (1, charged)  # one request, one charge
    assert {key for _, key, _ in clipia.submits} == {idempotency_key("clipia", "p")}


def test_a_job_whose_request_the_provider_holds_never_falls_back_and_expires_saying_what_was_charged() -> None:
    clipia = PortProvider("clipia", native_idempotency=True,
                          submit=[RequestInProgress("still processing"), RateLimited("slow down", retry_after=60)])
    cliprise = PortProvider("cliprise")
    ports = make(cliprise, clipia, MEDIAGEN_MAX_WAIT_SECONDS=20)
    with pytest.raises(RetryLater):
        submit_job(_clipia_first("q"), delivery_id="m", ports=ports)
    charged = counters(ports, "clipia")[1]
    record = submit_job(_clipia_first("q"), delivery_id="m", ports=ports)  # the 429 would wait past 20 s
    assert record["status"] == "EXPIRED" and cliprise.submits == []  # a fallback would pay a second time
    assert f"{charged} credits stay charged" in record["error"]["message"]
    assert counters(ports, "clipia") == (0, charged) and counters(ports) == (0, 0)


def test_a_refusal_after_the_provider_said_it_holds_the_request_is_an_unknown_outcome_not_a_refund() -> None:
    # A retry whose body differs (an s3:// input presigned again) gets 409 idempotency_key_reuse: the first
    # request may still run and be charged, so the charge stays and nothing else is tried.
    clipia = PortProvider("clipia", native_idempotency=True,
                          submit=[RequestInProgress("still processing"), IdempotencyKeyReuse("other body", http_status=409)])
    cliprise = PortProvider("cliprise")
    ports = make(cliprise, clipia)
    with pytest.raises(RetryLater):
        submit_job(_clipia_first("r"), delivery_id="m", ports=ports)
    charged = counters(ports, "clipia")[1]
    record = submit_job(_clipia_first("r"), delivery_id="m", ports=ports)
    assert record["status"] == "OUTCOME_UNKNOWN" and cliprise.submits == []
    assert counters(ports, "clipia") == (0, charged) and charged > 0


def test_each_providers_spend_metric_is_its_own_series_for_its_own_budget_alarm() -> None:
    ports = make(MEDIAGEN_DAILY_CREDIT_BUDGET=1000, MEDIAGEN_CLIPIA_DAILY_CREDIT_BUDGET=1000)
    submit_job(job("c1"), delivery_id="m1", ports=ports)
    submit_job(job("c2", CLIPIA, provider="clipia"), delivery_id="m2", ports=ports)
    last = ports.metrics.last  # type: ignore[attr-defined]
    assert last[("DailyCreditsSpent", "null")] == PRICE == counters(ports)[1]  # Cliprise's alone, as the alarm
    assert last[("DailyCreditsSpent", '{"provider": "clipia"}')] == counters(ports, "clipia")[1]


def test_a_record_left_by_version_one_with_holds_slot_false_is_still_claimed() -> None:
    ports = make(PortProvider("cliprise", submit=[RateLimited("slow down", retry_after=1), Submitted("t-1")]))
    with pytest.raises(RetryLater):
        submit_job(job("old"), delivery_id="m", ports=ports)  # recorded, back to RECEIVED
    ports.jobs.transition("old", None, set_fields={"holds_slot": False})  # how version one put a job back
    record = submit_job(job("old"), delivery_id="m", ports=ports)
    assert record["status"] == "SUBMITTED" and counters(ports) == (1, PRICE)


def test_an_s3_input_of_a_clipia_media_field_is_resolved_before_it_is_sent() -> None:
    request = {"model": "seedance-2-fast-i2v",
               "input": {"prompt": "see s3://my-bucket/inbox/p.txt", "image_url": "s3://my-bucket/inbox/first.png"}}
    assert s3_references(request, catalog_for("clipia")) == [("input.image_url", "s3://my-bucket/inbox/first.png")]
    clipia = PortProvider("clipia", native_idempotency=True)
    ports = make(clipia=clipia)
    ports.inputs = MapInputs()
    record = submit_job(job("s", request, provider="clipia"), delivery_id="m", ports=ports)
    assert record["status"] == "SUBMITTED"
    ((body, _, _),) = clipia.submits
    assert body["input"]["image_url"] == "https://inputs.example/my-bucket/inbox/first.png"  # never a raw s3://


def test_a_fallback_request_is_checked_with_its_providers_catalog_when_the_job_is_accepted() -> None:
    ports = make()
    bad = {"model": "nano-banana-2", "input": {}}
    record = submit_job(job("h", fallbacks=[{"provider": "clipia", "request": bad}]), delivery_id="m", ports=ports)
    assert record["status"] == "REJECTED" and record["error"]["code"] == "invalid_request"
    assert any(p["field"].startswith("fallbacks[0].request.") for p in record["error"]["problems"])


def test_the_reconciler_corrects_a_drifted_counter_and_expires_a_job_whose_message_was_lost() -> None:
    ports = make(MEDIAGEN_MAX_WAIT_SECONDS=60)
    assert submit_job(job("a"), delivery_id="m", ports=ports)["status"] == "SUBMITTED"
    ports.jobs.set_counter(in_flight_key("cliprise"), 5)  # e.g. a hand edit, or a bug: the records disagree
    ports.jobs.create({"job_id": "lost", "status": "RECEIVED", "model": "nano-banana"})  # its message is gone
    ports.clock.now += 60 + 900 + 1  # type: ignore[attr-defined]
    result = reconcile(ports)
    assert result["drifted"] == {in_flight_key("cliprise"): [5, 1]} and counters(ports)[0] == 1
    assert result["expired"] == 1 and ports.jobs.get("lost")["status"] == "EXPIRED"
    assert ports.metrics.counts["CounterDrift"] == 1
    assert reconcile(ports)["drifted"] == {}  # once corrected it stays so


def test_the_reconciler_ends_a_claim_no_worker_and_no_delivery_came_back_to_as_outcome_unknown() -> None:
    cliprise = PortProvider("cliprise", submit=[RuntimeError("Lambda timed out while generate was in flight")])
    ports = make(cliprise, MEDIAGEN_SUBMIT_LEASE_SECONDS=180)
    with pytest.raises(RuntimeError):
        submit_job(job("died"), delivery_id="m", ports=ports)  # the message then went to the dead-letter queue
    assert ports.jobs.get("died")["status"] == "SUBMITTING" and counters(ports) == (1, PRICE)
    ports.clock.now += 180  # type: ignore[attr-defined]
    assert reconcile(ports)["abandoned"] == 0  # a worker may still be submitting: its redelivery ends it
    ports.clock.now += 900 + 1  # type: ignore[attr-defined]
    assert reconcile(ports)["abandoned"] == 1
    record = ports.jobs.get("died")
    assert record["status"] == "OUTCOME_UNKNOWN" and record["error"]["code"] == "generate_outcome_unknown"
    assert counters(ports) == (0, PRICE) and len(cliprise.submits) == 1  # slot freed, charge kept, never resent


@dataclass
class FailingStarter(RecordingStarter):
    """StartExecution refuses while ``failing`` (a throttle, an execution limit)."""

    failing: bool = True

    def start(self, name: str, state: dict[str, Any]) -> str:
        if self.failing:
            raise RuntimeError("ExecutionLimitExceeded")
        return super().start(name, state)


def test_the_reconciler_starts_the_execution_a_submitted_job_lost_and_never_sends_it_again() -> None:
    cliprise = PortProvider("cliprise")
    ports = make(cliprise, MEDIAGEN_SUBMIT_LEASE_SECONDS=180)
    ports.executions = starter = FailingStarter()
    for delivery in ("m-1", "m-2"):  # every delivery's StartExecution fails; then the message is dead-lettered
        with pytest.raises(RuntimeError, match="ExecutionLimitExceeded"):
            submit_job(job("lost-run"), delivery_id=delivery, ports=ports)
    record = ports.jobs.get("lost-run")
    assert record["status"] == "SUBMITTED" and not record.get("execution_arn") and len(cliprise.submits) == 1
    ports.clock.now += 180 + 900 + 1  # type: ignore[attr-defined]
    assert reconcile(ports)["started"] == 0  # still refused: logged, left for the next run, the pass goes on
    starter.failing = False
    assert reconcile(ports)["started"] == 1
    record = ports.jobs.get("lost-run")
    assert record["status"] == "SUBMITTED" and record["execution_arn"].endswith(":" + execution_name("lost-run"))
    (state,) = starter.started.values()
    assert state["job_id"] == "lost-run" and state["provider_task_id"] == record["provider_task_id"]
    assert len(cliprise.submits) == 1 and counters(ports) == (1, PRICE)  # never sent or charged again
    assert reconcile(ports)["started"] == 0 and ports.metrics.counts["ExecutionsRestarted"] == 1


class CancellingProvider(PortProvider):
    """A provider port with the cancel capability (as Clipia's adapter): ``cancel`` answers from a script."""

    def __init__(self, *args: Any, cancel: list[Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cancel_script = list(cancel or [None])
        self.cancels: list[str] = []

    def cancel(self, provider_task_id: str) -> None:
        self.cancels.append(provider_task_id)
        ScriptedProvider._next(self.cancel_script)


def test_a_clipia_job_cancelled_while_generating_is_cancelled_at_clipia_once_and_cliprise_is_never_asked() -> None:
    from mediagen.provider.port import Running
    from mediagen.steps.cancel import cancel_job
    from mediagen.steps.poll import check_status

    clipia = CancellingProvider("clipia", native_idempotency=True, submit=[Submitted("req-5", cost=12)],
                                status=[Running(progress=0.4)])
    cliprise = CancellingProvider("cliprise", status=[Running()])  # even with a cancel, Cliprise has none
    ports = make(cliprise, clipia)
    for job_id, document in (("at-clipia", job("at-clipia", CLIPIA, provider="clipia")), ("at-cliprise", job("at-cliprise"))):
        assert submit_job(document, delivery_id=job_id, ports=ports)["status"] == "SUBMITTED"
        cancelled = cancel_job(job_id, ports)
        assert cancelled["status"] == "CANCELLED" and cancelled["cancelled_from"] == "SUBMITTED"
    assert "asks Clipia to cancel" in ports.jobs.get("at-clipia")["error"]["message"]
    assert "Cliprise has no cancel operation" in ports.jobs.get("at-cliprise")["error"]["message"]

    started = ports.executions.started.values()  # type: ignore[union-attr]
    for state in started:  # the woken executions' next status check ends them
        assert check_status(dict(state), ports)["phase"] == "ended"
        assert check_status(dict(state), ports)["phase"] == "ended"  # a Step Functions retry asks nothing again
    assert clipia.cancels == ["req-5"] and cliprise.cancels == []
    assert clipia.status_calls == cliprise.status_calls == 0  # an ended job gets no status call
    assert ports.jobs.get("at-clipia")["provider_cancel"] == {"outcome": "requested"}
    assert "provider_cancel" not in ports.jobs.get("at-cliprise")
    assert counters(ports, "clipia") == (0, 12)  # the slot is free; the refund is Clipia's to make and say


REJECTED_CANCEL = ProviderRejected("Clipia cancel refused (HTTP 400 invalid_request): the request is COMPLETED",
                                   http_status=400, provider_code="invalid_request")


@pytest.mark.parametrize(("answer", "recorded"), [
    (REJECTED_CANCEL, {"outcome": "failed", "code": "provider_rejected", "message": REJECTED_CANCEL.message}),
    (CapabilityNotSupported("Clipia has no cancel endpoint here (HTTP 405)", http_status=405),
     {"outcome": "not_supported"}),
    (ProviderUnavailable("Clipia cancel unavailable (HTTP 503)"),  # after the adapter's own retries
     {"outcome": "failed", "code": "provider_unavailable", "message": "Clipia cancel unavailable (HTTP 503)"}),
    (RuntimeError("connection pool is closed"),  # not a provider error: still never fails the job
     {"outcome": "failed", "code": "RuntimeError", "message": "the cancel request failed"}),
], ids=["refused", "no-route", "unavailable", "unexpected-exception"])
def test_a_provider_cancel_that_fails_is_recorded_and_the_job_still_ends(answer: Exception,
                                                                        recorded: dict[str, Any]) -> None:
    from mediagen.provider.port import Queued
    from mediagen.steps.cancel import cancel_job
    from mediagen.steps.poll import check_status

    clipia = CancellingProvider("clipia", native_idempotency=True, submit=[Submitted("req-c")],
                                status=[Queued(queue_position=3)], cancel=[answer])
    ports = make(clipia=clipia)
    submit_job(job("c", CLIPIA, provider="clipia"), delivery_id="m", ports=ports)
    cancel_job("c", ports)
    (state,) = ports.executions.started.values()  # type: ignore[union-attr]
    assert check_status(dict(state), ports)["phase"] == "ended"
    assert check_status(dict(state), ports)["phase"] == "ended" and len(clipia.cancels) == 1  # asked once
    record = ports.jobs.get("c")
    assert record["status"] == "CANCELLED" and record["provider_cancel"] == recorded


def test_a_cancel_that_lands_while_the_last_check_times_the_job_out_still_cancels_at_clipia() -> None:
    from mediagen.provider.port import Running
    from mediagen.steps.cancel import cancel_job
    from mediagen.steps.poll import check_status

    clipia = CancellingProvider("clipia", native_idempotency=True, submit=[Submitted("req-t")], status=[Running()])
    ports = make(clipia=clipia)
    submit_job(job("t", CLIPIA, provider="clipia"), delivery_id="m", ports=ports)
    (state,) = ports.executions.started.values()  # type: ignore[union-attr]
    ports.clock.now = state["deadline"] + 1  # type: ignore[attr-defined]
    real_get = ports.jobs.get

    def read_then_cancel(job_id: str) -> Any:  # the user cancels right after the check read the job
        found = real_get(job_id)
        ports.jobs.get = real_get  # type: ignore[method-assign]
        cancel_job(job_id, ports)
        return found

    ports.jobs.get = read_then_cancel  # type: ignore[method-assign]
    assert check_status(dict(state), ports)["phase"] == "ended"
    record = ports.jobs.get("t")
    assert record["status"] == "CANCELLED" and record["provider_cancel"] == {"outcome": "requested"}
    assert clipia.cancels == ["req-t"]


def test_a_clipia_job_past_its_deadline_is_cancelled_at_clipia_so_a_result_never_stored_is_not_paid_for() -> None:
    from mediagen.provider.port import Running
    from mediagen.steps.poll import check_status

    clipia = CancellingProvider("clipia", native_idempotency=True, submit=[Submitted("req-late")],
                                status=[Running(progress=0.9)])
    cliprise = CancellingProvider("cliprise", status=[Running()])  # Cliprise has no cancel: never asked
    ports = make(cliprise, clipia)
    submit_job(job("late-clipia", CLIPIA, provider="clipia"), delivery_id="m-1", ports=ports)
    submit_job(job("late-cliprise"), delivery_id="m-2", ports=ports)
    states = list(ports.executions.started.values())  # type: ignore[union-attr]
    ports.clock.now = max(s["deadline"] for s in states) + 1  # type: ignore[attr-defined]
    for state in states:
        assert check_status(dict(state), ports)["phase"] == "ended"
    late = ports.jobs.get("late-clipia")
    assert late["status"] == "TIMED_OUT" and late["provider_cancel"] == {"outcome": "requested"}
    assert clipia.cancels == ["req-late"] and cliprise.cancels == []
    assert ports.jobs.get("late-cliprise")["status"] == "TIMED_OUT" and "provider_cancel" not in ports.jobs.get(
        "late-cliprise")


def test_a_job_the_provider_was_seen_finishing_is_not_promised_a_refund_nor_cancelled_there() -> None:
    from mediagen.provider.port import Succeeded
    from mediagen.steps.cancel import cancel_job
    from mediagen.steps.poll import check_status

    clipia = CancellingProvider("clipia", native_idempotency=True, submit=[Submitted("req-d")],
                                status=[Succeeded()])
    ports = make(clipia=clipia)
    submit_job(job("d", CLIPIA, provider="clipia"), delivery_id="m", ports=ports)
    (state,) = ports.executions.started.values()  # type: ignore[union-attr]
    assert check_status(dict(state), ports)["phase"] == "ready"  # persist comes next...
    cancelled = cancel_job("d", ports)  # ... but the user cancels first
    assert cancelled["error"]["message"].startswith("cancelled after the provider had finished the generation: "
                                                    "its credits are spent")
    assert check_status(dict(state), ports)["phase"] == "ended" and clipia.cancels == []


def test_a_cancel_racing_the_check_that_saw_the_provider_finish_says_what_really_happens() -> None:
    from mediagen.records import utcnow
    from mediagen.steps.cancel import cancel_job

    clipia = CancellingProvider("clipia", native_idempotency=True, submit=[Submitted("req-r")])
    ports = make(clipia=clipia)
    submit_job(job("r", CLIPIA, provider="clipia"), delivery_id="m", ports=ports)
    real_get = ports.jobs.get

    def read_then_finish(job_id: str) -> Any:  # the status check records the provider's finish just after
        found = real_get(job_id)
        ports.jobs.get = real_get  # type: ignore[method-assign]
        ports.jobs.transition(job_id, None, set_fields={"provider_completed_at": utcnow()})
        return found

    ports.jobs.get = read_then_finish  # type: ignore[method-assign]
    record = cancel_job("r", ports)
    assert record["status"] == "CANCELLED" and "its credits are spent" in record["error"]["message"]
    assert "asks Clipia" not in record["error"]["message"]


def test_a_job_cancelled_while_the_provider_holds_an_earlier_attempt_is_not_told_nothing_was_spent() -> None:
    from mediagen.steps.cancel import cancel_job

    clipia = PortProvider("clipia", native_idempotency=True, submit=[RequestInProgress("still processing")])
    ports = make(clipia=clipia)
    with pytest.raises(RetryLater):
        submit_job(_clipia_first("held"), delivery_id="m", ports=ports)  # back to RECEIVED, the charge kept
    charged = counters(ports, "clipia")[1]
    record = cancel_job("held", ports)
    assert record["status"] == "CANCELLED" and record["cancelled_from"] == "RECEIVED"
    assert f"may have reached the provider and been charged ({charged} credits" in record["error"]["message"]
    assert "no credits were spent" not in record["error"]["message"]


def test_each_provider_has_its_own_daily_budget_and_in_flight_limit() -> None:
    """Credits are not comparable between providers: Cliprise's limits (MEDIAGEN_DAILY_CREDIT_BUDGET,
    MEDIAGEN_MAX_IN_FLIGHT) never apply to Clipia, whose own are MEDIAGEN_CLIPIA_*: a Clipia job over Clipia's
    budget is refused while Cliprise's budget has room, and Cliprise's single slot does not hold Clipia back."""
    clipia = PortProvider("clipia", native_idempotency=True, submit=[Submitted("req-1", cost=12)])
    ports = make(clipia=clipia, MEDIAGEN_DAILY_CREDIT_BUDGET=100_000, MEDIAGEN_MAX_IN_FLIGHT=1,
                 MEDIAGEN_CLIPIA_DAILY_CREDIT_BUDGET=1_000_000, MEDIAGEN_CLIPIA_MAX_IN_FLIGHT=5)
    assert submit_job(job("cr-1"), delivery_id="m1", ports=ports)["status"] == "SUBMITTED"  # Cliprise's only slot
    clipia_job = json.dumps({"job_id": "cl-1", "provider": "clipia", "request": CLIPIA})
    assert submit_job(clipia_job, delivery_id="m2", ports=ports)["status"] == "SUBMITTED"  # Clipia has its own
    assert counters(ports)[0] == 1 and counters(ports, "clipia")[0] == 1

    tight = make(clipia=PortProvider("clipia", native_idempotency=True), MEDIAGEN_DAILY_CREDIT_BUDGET=100_000,
                 MEDIAGEN_CLIPIA_DAILY_CREDIT_BUDGET=1)
    refused = submit_job(clipia_job, delivery_id="m3", ports=tight)
    assert refused["status"] == "REJECTED" and refused["error"]["code"] == "over_daily_budget"
    assert counters(tight, "clipia") == (0, 0)
