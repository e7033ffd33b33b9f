"""Submit / poll / failure logic against fakes: what happens to a job (and to the user's credits) on each
provider answer."""

from __future__ import annotations

import json

import pytest

from mediagen.provider import (
    AmbiguousSubmit,
    Failed,
    GenerateAccepted,
    Processing,
    ProviderRejected,
    ProviderUnavailable,
    RateLimited,
    Succeeded,
)
from mediagen.settings import Settings
from mediagen.steps.core import Ports, RetryLater
from mediagen.steps.finalize import record_failure
from mediagen.steps.poll import backoff_seconds, check_status
from mediagen.steps.submit import submit_job
from tests.fakes import InMemoryJobs, RecordingEvents, RecordingStarter, ScriptedProvider

JOB = {
    "job_id": "job-1",
    "request": {"model": "seedance-v1-pro",
                "input": {"prompt": "a fox", "duration": "5", "resolution": "720p", "aspect_ratio": "16:9"}},
    "metadata": {"team": "ads"},
}


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_ports(provider: ScriptedProvider, clock: Clock | None = None, **settings: object) -> Ports:
    return Ports(settings=Settings(**settings), jobs=InMemoryJobs(), events=RecordingEvents(),
                 provider=lambda: provider, executions=RecordingStarter(), clock=clock or Clock())


def test_accepted_job_is_recorded_submitted_and_one_execution_starts() -> None:
    provider = ScriptedProvider(generate=[GenerateAccepted("t-1")])
    ports = make_ports(provider, MEDIAGEN_CALLBACK_BASE_URL="https://hooks.example.com/callbacks")
    record = submit_job(json.dumps(JOB), delivery_id="m-1", ports=ports)
    assert record["status"] == "SUBMITTED" and record["provider_task_id"] == "t-1"
    assert record["execution_arn"].endswith(next(iter(ports.executions.started)))
    (state,) = ports.executions.started.values()
    assert state == {"job_id": "job-1", "provider": "cliprise", "provider_task_id": "t-1", "model": "seedance-v1-pro",
                     "modality": "video", "deadline": 1_000_000 + 3600, "wait_seconds": 180,
                     "polls": 0}  # callbacks on: video 180 s
    (body,) = provider.generate_bodies
    assert body["callBackUrl"] == f"https://hooks.example.com/callbacks/{record['callback_token']}"
    assert len(record["callback_token"]) >= 32


def test_redelivered_message_does_not_call_generate_twice() -> None:
    provider = ScriptedProvider(generate=[GenerateAccepted("t-1")])
    ports = make_ports(provider)
    submit_job(json.dumps(JOB), delivery_id="m-1", ports=ports)
    again = submit_job(json.dumps(JOB), delivery_id="m-2", ports=ports)
    assert len(provider.generate_bodies) == 1
    assert again["status"] == "SUBMITTED" and len(ports.executions.started) == 1


def test_same_job_id_with_a_different_request_is_a_conflict_and_changes_nothing() -> None:
    provider = ScriptedProvider(generate=[GenerateAccepted("t-1")])
    ports = make_ports(provider)
    submit_job(json.dumps(JOB), delivery_id="m-1", ports=ports)
    other = json.loads(json.dumps(JOB))
    other["request"]["input"]["prompt"] = "a different fox"
    result = submit_job(json.dumps(other), delivery_id="m-2", ports=ports)
    assert result["conflict"] is True
    assert len(provider.generate_bodies) == 1
    assert ports.jobs.get("job-1")["request"]["input"]["prompt"] == "a fox"


@pytest.mark.parametrize("error", [RateLimited("slow down", http_status=429), ProviderUnavailable("connect refused")])
def test_not_sent_or_rate_limited_goes_back_to_the_queue_and_can_be_sent_later(error: Exception) -> None:
    provider = ScriptedProvider(generate=[error, GenerateAccepted("t-9")])
    ports = make_ports(provider)
    with pytest.raises(RetryLater):
        submit_job(json.dumps(JOB), delivery_id="m-1", ports=ports)
    assert ports.jobs.get("job-1")["status"] == "RECEIVED"
    record = submit_job(json.dumps(JOB), delivery_id="m-1", ports=ports)
    assert record["status"] == "SUBMITTED" and len(provider.generate_bodies) == 2


def test_ambiguous_submit_is_never_retried_and_says_the_provider_may_have_charged() -> None:
    provider = ScriptedProvider(generate=[AmbiguousSubmit("read timeout after sending")])
    ports = make_ports(provider)
    record = submit_job(json.dumps(JOB), delivery_id="m-1", ports=ports)
    assert record["status"] == "OUTCOME_UNKNOWN"
    assert "may have" in record["error"]["message"]
    submit_job(json.dumps(JOB), delivery_id="m-1", ports=ports)
    assert len(provider.generate_bodies) == 1
    assert [e["status"] for e in ports.events.published] == ["OUTCOME_UNKNOWN"]


def test_provider_rejection_is_terminal_rejected_with_the_providers_reason() -> None:
    provider = ScriptedProvider(generate=[ProviderRejected("This field is required", http_status=200)])
    ports = make_ports(provider)
    record = submit_job(json.dumps(JOB), delivery_id="m-1", ports=ports)
    assert record["status"] == "REJECTED" and "required" in record["error"]["message"]


def test_invalid_request_is_rejected_before_any_provider_call() -> None:
    provider = ScriptedProvider(generate=[GenerateAccepted("never")])
    ports = make_ports(provider)
    bad = json.loads(json.dumps(JOB))
    bad["request"]["input"]["resolution"] = "4k"
    record = submit_job(json.dumps(bad), delivery_id="m-1", ports=ports)
    assert record["status"] == "REJECTED"
    assert [p["field"] for p in record["error"]["problems"]] == ["input.resolution"]
    assert provider.generate_bodies == []
    assert ports.events.published[0]["error"]["problems"][0]["field"] == "input.resolution"


def test_over_budget_job_is_rejected_with_the_figures() -> None:
    provider = ScriptedProvider(generate=[GenerateAccepted("never")])
    ports = make_ports(provider)
    job = {**JOB, "max_credits": 1}
    record = submit_job(json.dumps(job), delivery_id="m-1", ports=ports)
    assert record["status"] == "REJECTED" and record["error"]["code"] == "over_budget"
    assert "max_credits 1" in record["error"]["message"]
    assert provider.generate_bodies == []


def _submitted(provider: ScriptedProvider, clock: Clock, **settings: object) -> tuple[Ports, dict]:
    ports = make_ports(provider, clock, **settings)
    submit_job(json.dumps(JOB), delivery_id="m-1", ports=ports)
    return ports, next(iter(ports.executions.started.values()))


def test_poll_backs_off_exponentially_up_to_the_cap() -> None:
    settings = Settings()
    assert [backoff_seconds(n, settings) for n in range(7)] == [2, 4, 8, 16, 32, 60, 60]
    clock = Clock()
    provider = ScriptedProvider(generate=[GenerateAccepted("t-1")], status=[Processing()])
    ports, state = _submitted(provider, clock, MEDIAGEN_POLL_JITTER=0)
    waits = []
    for _ in range(4):
        state = check_status(state, ports)
        waits.append(state["wait_seconds"])
        clock.now += state["wait_seconds"]
    assert waits == [4, 8, 16, 32] and state["phase"] == "processing"
    assert ports.jobs.get("job-1")["polls"] == 4


def test_poll_reports_ready_then_provider_failure_is_recorded_failed() -> None:
    clock = Clock()
    provider = ScriptedProvider(generate=[GenerateAccepted("t-1")], status=[Succeeded("https://x/status?apiKey=k&taskId=t")])
    ports, state = _submitted(provider, clock)
    assert check_status(state, ports)["phase"] == "ready"

    provider2 = ScriptedProvider(generate=[GenerateAccepted("t-2")], status=[Failed("content policy")])
    ports2, state2 = _submitted(provider2, clock)
    assert check_status(state2, ports2)["phase"] == "ended"
    record = ports2.jobs.get("job-1")
    assert record["status"] == "FAILED" and record["error"]["message"] == "content policy"
    assert ports2.events.published[-1]["status"] == "FAILED"


def test_a_job_still_processing_at_its_deadline_times_out() -> None:
    clock = Clock()
    provider = ScriptedProvider(generate=[GenerateAccepted("t-1")], status=[Processing()])
    ports, state = _submitted(provider, clock, MEDIAGEN_DEADLINE_VIDEO_SECONDS=10)
    state = check_status(state, ports)
    assert state["wait_seconds"] <= 10
    clock.now += 11
    state = check_status(state, ports)
    assert state["phase"] == "ended"
    record = ports.jobs.get("job-1")
    assert record["status"] == "TIMED_OUT" and record["error"]["code"] == "deadline_exceeded"


def test_transient_status_errors_count_as_a_check_and_polling_goes_on() -> None:
    clock = Clock()
    provider = ScriptedProvider(generate=[GenerateAccepted("t-1")], status=[ProviderUnavailable("503")])
    ports, state = _submitted(provider, clock)
    assert check_status(state, ports)["phase"] == "processing"


def test_record_failure_marks_pipeline_failed_once_and_redacts_the_cause() -> None:
    clock = Clock()
    provider = ScriptedProvider(generate=[GenerateAccepted("t-1")])
    ports, state = _submitted(provider, clock)
    cause = json.dumps({"errorType": "DownloadFailed",
                        "errorMessage": "GET https://p/status?apiKey=SECRET123456&taskId=t-1 -> 404"})
    out = record_failure({**state, "error": {"Error": "DownloadFailed", "Cause": cause}}, ports)
    record = ports.jobs.get("job-1")
    assert out["status"] == record["status"] == "PIPELINE_FAILED"
    assert record["error"]["code"] == "download_failed"
    assert "SECRET123456" not in json.dumps(record) and "apiKey=***" in record["error"]["message"]
    record_failure({**state, "error": {"Error": "X", "Cause": "again"}}, ports)
    assert len(ports.events.published) == 1


def test_jitter_only_ever_shortens_a_wait_and_by_at_most_the_configured_fraction() -> None:
    clock = Clock()
    provider = ScriptedProvider(generate=[GenerateAccepted("t-1")], status=[Processing()])
    ports, state = _submitted(provider, clock, MEDIAGEN_POLL_JITTER=0.25, MEDIAGEN_POLL_INITIAL_SECONDS=16)
    waits = set()
    for _ in range(40):
        waits.add(check_status({**state, "polls": 0}, ports)["wait_seconds"])
    assert waits <= set(range(24, 33)) and len(waits) > 1


def test_an_execution_that_ended_outside_the_workflow_still_gets_a_terminal_record() -> None:
    clock = Clock()
    provider = ScriptedProvider(generate=[GenerateAccepted("t-1")])
    ports, state = _submitted(provider, clock)
    event = {"source": "aws.states", "detail-type": "Step Functions Execution Status Change",
             "detail": {"status": "TIMED_OUT", "name": "job-1-x", "input": json.dumps(state)}}
    assert record_failure(event, ports)["status"] == "TIMED_OUT"
    record = ports.jobs.get("job-1")
    assert record["status"] == "TIMED_OUT" and record["error"]["code"] == "execution_timed_out"
    # the same event again, or the workflow's own failure path first: nothing changes twice
    failed = {**event, "detail": {**event["detail"], "status": "FAILED"}}
    assert record_failure(failed, ports)["status"] == "TIMED_OUT"
    assert len(ports.events.published) == 1
    assert record_failure({"source": "aws.states", "detail": {"status": "FAILED", "input": "{}"}}, ports) == {
        "phase": "ignored"}
