"""The steps on fakes for every port: what a user sees of accept, cancel, persist (zip, expired URL, truncated
download), and that every field the steps write is declared in ``JobRecord``."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest

from mediagen.completion import arm_wakeup, receive_callback
from mediagen.errors import JobNotFound
from mediagen.provider import (
    AmbiguousSubmit,
    DownloadFailed,
    Failed,
    GenerateAccepted,
    Processing,
    RateLimited,
    Succeeded,
)
from mediagen.provider.cliprise import ClipriseProvider
from mediagen.records import JOB_RECORD_FIELDS
from mediagen.settings import Settings
from mediagen.steps.accept import JobConflict, JobRefused, accept_job, enqueue
from mediagen.steps.cancel import NotCancellable, cancel_job
from mediagen.steps.core import Ports, RetryLater
from mediagen.steps.finalize import record_failure
from mediagen.steps.persist import ResultExpired, persist_result
from mediagen.steps.phases import Phase
from mediagen.steps.poll import check_status
from mediagen.steps.submit import submit_job
from tests.fakes import (
    InMemoryJobs,
    MemoryOutputStore,
    RecordingEvents,
    RecordingQueue,
    RecordingStarter,
    RecordingWaker,
    ScriptedProvider,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200


def job(job_id: str = "job-1", **extra: Any) -> dict[str, Any]:
    return {"job_id": job_id, "request": {"model": "nano-banana", "input": {"prompt": "a fox", "output_format": "png",
                                                                          "image_size": "1:1"}}, **extra}


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_ports(provider: ScriptedProvider | None = None, *, jobs: InMemoryJobs | None = None,
               clock: Clock | None = None, **settings: Any) -> Ports:
    scripted = provider or ScriptedProvider(generate=[GenerateAccepted("t-1")], status=[Processing()])
    return Ports(settings=Settings(**settings), jobs=jobs or InMemoryJobs(), events=RecordingEvents(),
                 provider=lambda: scripted, providers=lambda name: ClipriseProvider(scripted),  # type: ignore[arg-type]
                 executions=RecordingStarter(), outputs=MemoryOutputStore(),
                 jobs_queue=RecordingQueue(), waker=RecordingWaker(),
                 clock=clock or Clock())


def submitted(ports: Ports, job_id: str = "job-1") -> dict[str, Any]:
    record = submit_job(json.dumps(job(job_id)), delivery_id=f"m-{job_id}", ports=ports)
    assert record["status"] == "SUBMITTED"
    return record


def state_of(ports: Ports, job_id: str = "job-1") -> dict[str, Any]:
    starter = ports.executions
    assert isinstance(starter, RecordingStarter)
    return next(s for s in starter.started.values() if s["job_id"] == job_id)


# ------------------------------------------------------------------------------------------------ JobRecord


def test_every_field_the_steps_write_is_declared_in_job_record() -> None:
    jobs = InMemoryJobs()
    clock = Clock()
    settings = {"MEDIAGEN_DAILY_CREDIT_BUDGET": 10_000, "MEDIAGEN_MAX_IN_FLIGHT": 5,
                "MEDIAGEN_CALLBACK_BASE_URL": "https://hooks.example.com/cb"}
    # submit -> callback -> arm -> poll (processing, ready) -> persist: SUCCEEDED
    ok = ScriptedProvider(generate=[GenerateAccepted("t-1")], status=[Processing(), Succeeded("https://cdn.example/x.png")],
                          downloads=[[PNG]])
    ports = make_ports(ok, jobs=jobs, clock=clock, **settings)
    record = submitted(ports)
    assert receive_callback(record["callback_token"], '{"status": "success"}', jobs=jobs, waker=ports.waker) == "pending"
    arm_wakeup({"job_id": "job-1", "task_token": "sfn-1", "wait_seconds": 2}, jobs=jobs, waker=ports.waker)
    state = check_status(state_of(ports), ports)
    state = check_status(state, ports)
    assert state["phase"] == Phase.READY
    persist_result(state, ports)
    # rate limited (back to RECEIVED), then an ambiguous failure retried by request, then a rejected request
    for script, doc in (([RateLimited("slow down")], job("job-2")),
                        ([AmbiguousSubmit("timed out")], job("job-3", retry_unknown_outcome=True))):
        with pytest.raises(RetryLater):
            submit_job(json.dumps(doc), delivery_id="m", ports=make_ports(ScriptedProvider(generate=script),
                                                                         jobs=jobs, **settings))
    submit_job(json.dumps({"job_id": "bad", "request": {"model": "nope"}}), delivery_id="m", ports=ports)
    # failed at the provider, timed out, cancelled, a step that raised, an invalid provider id
    for job_id, status in (("job-4", Failed("x", "boom")), ("job-5", Processing())):
        p = make_ports(ScriptedProvider(generate=[GenerateAccepted(job_id)], status=[status]), jobs=jobs, clock=clock)
        submitted(p, job_id)
        clock.now += 10_000 if job_id == "job-5" else 0
        check_status(state_of(p, job_id), p)
    cancel_job(submitted(make_ports(jobs=jobs), "job-6")["job_id"], make_ports(jobs=jobs), reason="test")
    p7 = make_ports(jobs=jobs)
    record_failure({**state_of(p7, submitted(p7, "job-7")["job_id"]),
                    "error": {"Error": "ResultExpired", "Cause": "{}"}}, p7)
    accept_job(job("job-8"), fallback_job_id="x", ports=make_ports(jobs=jobs), source={"channel": "api"})

    undeclared = jobs.written_keys - JOB_RECORD_FIELDS
    assert undeclared == set(), f"written but not declared in JobRecord: {sorted(undeclared)}"
    # and the flows above did exercise most of the record
    assert len(jobs.written_keys) >= 30


# ------------------------------------------------------------------------------------------------ accept


def test_accept_records_received_and_queues_the_job_once() -> None:
    ports = make_ports()
    accepted = accept_job(job(), fallback_job_id="api-1", ports=ports, source={"channel": "api"})
    assert accepted.created and accepted.record["status"] == "RECEIVED"
    enqueue(accepted, ports)
    again = accept_job(job(), fallback_job_id="api-2", ports=ports, source={"channel": "api"})
    assert not again.created and again.enqueue  # still RECEIVED: queued again is safe (submit is idempotent)
    assert isinstance(ports.jobs_queue, RecordingQueue)
    assert [d["job_id"] for d in ports.jobs_queue.sent] == ["job-1"]
    assert ports.jobs.get("job-1")["source"] == {"channel": "api"}


def test_accept_refuses_an_invalid_job_without_recording_it_and_a_reused_id_is_a_conflict() -> None:
    ports = make_ports()
    with pytest.raises(JobRefused) as refused:
        accept_job({"job_id": "j", "request": {"model": "nano-banana", "input": {"image_size": "7:3"}}},
                   fallback_job_id="x", ports=ports)
    assert {p["field"] for p in refused.value.error["problems"]} >= {"input.prompt", "input.image_size"}
    assert ports.jobs.get("j") is None
    accept_job(job("taken"), fallback_job_id="x", ports=ports)
    other = job("taken")
    other["request"]["input"]["prompt"] = "a different fox"
    with pytest.raises(JobConflict):
        accept_job(other, fallback_job_id="x", ports=ports)


def test_a_refused_enqueue_leaves_the_job_received_to_be_sent_again() -> None:
    ports = make_ports()
    assert isinstance(ports.jobs_queue, RecordingQueue)
    ports.jobs_queue.fail = True
    accepted = accept_job(job(), fallback_job_id="x", ports=ports)
    with pytest.raises(Exception, match="refused"):
        enqueue(accepted, ports)
    assert ports.jobs.get("job-1")["status"] == "RECEIVED"


# ------------------------------------------------------------------------------------------------ cancel


def test_cancel_before_submit_spends_nothing_and_the_job_is_never_sent() -> None:
    provider = ScriptedProvider(generate=[GenerateAccepted("t-1")])
    ports = make_ports(provider)
    accept_job(job(), fallback_job_id="x", ports=ports)
    record = cancel_job("job-1", ports, reason="changed my mind")
    assert record["status"] == "CANCELLED" and record["cancelled_from"] == "RECEIVED"
    assert "no credits were spent" in record["error"]["message"]
    submit_job(json.dumps(job()), delivery_id="m", ports=ports)
    assert provider.generate_bodies == []
    assert [e["status"] for e in ports.events.published] == ["CANCELLED"]  # type: ignore[attr-defined]


def test_cancel_while_generating_wakes_the_execution_which_then_stops() -> None:
    ports = make_ports()
    submitted(ports)
    arm_wakeup({"job_id": "job-1", "task_token": "sfn-1", "wait_seconds": 8}, jobs=ports.jobs, waker=ports.waker)
    record = cancel_job("job-1", ports)
    assert "credits are spent" in record["error"]["message"]
    assert ports.waker.woken == ["sfn-1"]  # type: ignore[union-attr]
    assert check_status(state_of(ports), ports)["phase"] == Phase.ENDED


def test_cancel_refuses_an_ended_job_and_a_missing_one() -> None:
    ports = make_ports()
    accept_job(job(), fallback_job_id="x", ports=ports)
    cancel_job("job-1", ports)
    with pytest.raises(NotCancellable) as ended:
        cancel_job("job-1", ports)
    assert not ended.value.retry
    with pytest.raises(JobNotFound):
        cancel_job("nobody", ports)


# ------------------------------------------------------------------------------------------------ persist


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _ready(provider: ScriptedProvider) -> tuple[Ports, dict[str, Any]]:
    ports = make_ports(provider)
    submitted(ports)
    return ports, {**state_of(ports), "phase": "ready"}


def test_persist_stores_a_zip_and_each_of_its_files_and_records_succeeded() -> None:
    archive = _zip({"a.png": PNG, "../../etc/b.png": PNG})
    provider = ScriptedProvider(generate=[GenerateAccepted("t-1")], status=[Succeeded("https://cdn.example/r.zip")],
                                downloads=[[archive]], download_type="application/zip")
    ports, state = _ready(provider)
    assert persist_result(state, ports)["phase"] == Phase.SUCCEEDED
    record = ports.jobs.get("job-1")
    assert record["status"] == "SUCCEEDED"
    keys = [o["key"] for o in record["outputs"]]
    assert keys == ["job-1/output.zip", "job-1/files/a.png", "job-1/files/b.png"]
    assert all(o["unpacked_from"] == "job-1/output.zip" for o in record["outputs"][1:])
    assert isinstance(ports.outputs, MemoryOutputStore)
    manifest = json.loads(ports.outputs.objects["job-1/result.json"])
    assert manifest["provider_task_id"] == "t-1" and len(manifest["outputs"]) == 3


def test_an_expired_result_url_is_not_retried_and_nothing_is_stored() -> None:
    provider = ScriptedProvider(generate=[GenerateAccepted("t-1")], status=[Succeeded("https://cdn.example/r.png")],
                                downloads=[DownloadFailed("gone", http_status=410)])
    ports, state = _ready(provider)
    with pytest.raises(ResultExpired):
        persist_result(state, ports)
    assert provider.status_calls == 1
    assert isinstance(ports.outputs, MemoryOutputStore) and ports.outputs.objects == {}


def test_a_truncated_download_is_retried_and_never_stored_truncated(monkeypatch: pytest.MonkeyPatch) -> None:
    import mediagen.steps.persist as persist

    monkeypatch.setattr(persist.time, "sleep", lambda s: None)
    provider = ScriptedProvider(generate=[GenerateAccepted("t-1")], status=[Succeeded("https://cdn.example/r.png")],
                                downloads=[[PNG[:50]], [PNG]], download_length=len(PNG))
    ports, state = _ready(provider)
    persist_result(state, ports)
    (output,) = ports.jobs.get("job-1")["outputs"]
    assert output["bytes"] == len(PNG)
    assert isinstance(ports.outputs, MemoryOutputStore)
    assert ports.outputs.objects["job-1/output.png"] == PNG


def test_a_download_truncated_every_time_fails_the_job_with_the_reason() -> None:
    from mediagen.steps.persist import DOWNLOAD_ATTEMPTS, ResultDownloadFailed

    provider = ScriptedProvider(generate=[GenerateAccepted("t-1")], status=[Succeeded("https://cdn.example/r.png")],
                                downloads=[[PNG[:50]]], download_length=len(PNG))
    ports, state = _ready(provider)
    with pytest.MonkeyPatch.context() as patch:
        import mediagen.steps.persist as persist

        patch.setattr(persist.time, "sleep", lambda s: None)
        with pytest.raises(ResultDownloadFailed, match=f"{DOWNLOAD_ATTEMPTS} times"):
            persist_result(state, ports)
    assert isinstance(ports.outputs, MemoryOutputStore) and ports.outputs.objects == {}


# ------------------------------------------------------------------------------------------------ manifests


def test_a_manifest_report_lists_every_line_and_is_completed_when_the_last_job_ends() -> None:
    from mediagen.events import job_event_detail
    from mediagen.intake import job_ended, process_manifest
    from tests.fakes import MemoryLedger, MemoryObjects

    ports = make_ports()
    lines = [json.dumps(job("m-1")), json.dumps({"job_id": "m-bad", "request": {"model": "no-such-model"}}),
             json.dumps(job("m-2"))]
    objects = MemoryObjects({("intake", "jobs/team/batch.jsonl"): "\n".join(lines).encode()})
    ledger = MemoryLedger()
    report = process_manifest("intake", "jobs/team/batch.jsonl", "v1", None, ports=ports, objects=objects,
                              ledger=ledger)  # type: ignore[arg-type]
    assert not report["complete"] and report["counts"] == {"RECEIVED": 2, "REJECTED": 1}
    assert [(line["line"], line["job_id"]) for line in report["lines"]] == [(1, "m-1"), (2, "m-bad"), (3, "m-2")]
    assert isinstance(ports.jobs_queue, RecordingQueue)
    assert [d["job_id"] for d in ports.jobs_queue.sent] == ["m-1", "m-2"]
    assert ports.jobs.get("m-1")["output_prefix"] == "results/jobs/team/batch/"  # where the intake never reads

    for job_id in ("m-1", "m-2"):
        record = cancel_job(job_id, ports)
        finished = job_ended(job_event_detail(record), ports=ports, ledger=ledger)  # type: ignore[arg-type]
    assert finished  # the last line's end finished the report
    assert isinstance(ports.outputs, MemoryOutputStore)
    final = json.loads(ports.outputs.objects["reports/jobs/team/batch/report.json"])
    assert final["complete"] and final["counts"] == {"CANCELLED": 2, "REJECTED": 1}


def test_a_job_naming_a_provider_the_deployment_does_not_offer_is_refused_before_anything_is_recorded_or_sent() -> None:
    """MEDIAGEN_PROVIDERS (set by the construct) says which providers exist here: a Clipia job -- or a Cliprise job
    with a Clipia fallback -- on a Cliprise-only deployment is refused at accept (400, nothing recorded) and at
    submit (REJECTED provider_not_configured, no provider call)."""
    from mediagen.steps.accept import JobRefused, accept_job

    fallback = {**job("fb-1"), "fallbacks": [{"provider": "clipia", "request": {
        "model": "nano-banana-2", "input": {"prompt": "a lighthouse"}}}]}
    ports = make_ports(MEDIAGEN_PROVIDERS="cliprise")
    with pytest.raises(JobRefused) as refused:
        accept_job(json.dumps(fallback), fallback_job_id="x", ports=ports, source={"channel": "api"})
    assert refused.value.error["code"] == "provider_not_configured"
    assert refused.value.error["problems"][0]["field"] == "fallbacks[0].provider"
    assert ports.jobs.get("fb-1") is None  # type: ignore[union-attr]

    record = submit_job(json.dumps(fallback), delivery_id="m-fb", ports=ports)
    assert record["status"] == "REJECTED" and record["error"]["code"] == "provider_not_configured"
    assert ports.executions.started == {}  # type: ignore[union-attr]

    offered = make_ports(MEDIAGEN_PROVIDERS="cliprise,clipia")
    assert submit_job(json.dumps(fallback), delivery_id="m-fb", ports=offered)["status"] == "SUBMITTED"
