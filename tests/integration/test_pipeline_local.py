"""The pipeline end to end on the local stack: SQS -> submit -> Step Functions (the synthesized definition)
-> poll -> persist -> S3 + DynamoDB + EventBridge, with the sandbox emulator playing Cliprise."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from mediagen.local import EmbeddedStack

REPO = Path(__file__).resolve().parents[2]
SENTINEL_KEY = "sk-live-SENTINEL-7f3a9c2e1b"


def sample(name: str) -> dict:
    return json.loads((REPO / "events" / "jobs" / name).read_text())


@pytest.fixture(scope="module")
def stack(synthesized_template: Path):
    with EmbeddedStack(template_path=synthesized_template, api_key=SENTINEL_KEY, processing_seconds=0.5,
                       poll_initial_seconds=1) as local:
        yield local


def run(stack: EmbeddedStack, *jobs: dict | str) -> list[dict]:
    stack.send_jobs(jobs)
    return stack.run_until_done(timeout=90)


def test_sqs_job_runs_to_succeeded_with_the_object_in_s3_and_a_complete_task_record(stack: EmbeddedStack) -> None:
    job = sample("04-video-seedance-v1-pro.json")
    run(stack, job)

    record = stack.record(job["job_id"])
    assert record["status"] == "SUCCEEDED"
    assert set(record["transitions"]) >= {"RECEIVED", "SUBMITTING", "SUBMITTED", "PERSISTING", "SUCCEEDED"}
    assert record["provider_task_id"] and record["polls"] >= 1
    assert record["model"] == "seedance-v1-pro" and record["modality"] == "video"
    assert record["metadata"] == job["metadata"]
    (output,) = record["outputs"]
    assert output["key"] == f"demo/{job['job_id']}/output.mp4"
    assert output["content_type"] == "video/mp4"
    body = stack.read_object(output["key"])
    assert len(body) == output["bytes"] and hashlib.sha256(body).hexdigest() == output["sha256"]
    assert body[4:8] == b"ftyp"
    manifest = json.loads(stack.read_object(f"demo/{job['job_id']}/result.json"))
    assert manifest["outputs"] == record["outputs"] and manifest["metadata"] == job["metadata"]
    # exactly one generate call reached the provider, with the wire body the documents show
    (call,) = [c for c in stack.emulator.generate_calls() if c["task_id"] == record["provider_task_id"]]
    assert call["body"]["model"] == "seedance-v1-pro" and call["body"]["input"]["duration"] in ("5", 5)
    assert call["body"]["callBackUrl"].startswith(stack.callbacks.base_url)


def test_root_only_model_is_sent_without_an_input_object(stack: EmbeddedStack) -> None:
    job = sample("03-root-only-flux-kontext-pro.json")
    run(stack, job)
    record = stack.record(job["job_id"])
    assert record["status"] == "SUCCEEDED"
    assert record["outputs"][0]["content_type"] == "image/png"
    (call,) = [c for c in stack.emulator.generate_calls() if c["task_id"] == record["provider_task_id"]]
    assert "input" not in call["body"] and call["body"]["prompt"] == job["request"]["prompt"]


def test_provider_failure_ends_failed_with_the_providers_message(stack: EmbeddedStack) -> None:
    job = sample("01-text-to-image-nano-banana.json")
    job["job_id"] = "fails-at-provider"
    job["request"]["input"]["prompt"] = "a cat [sandbox:fail]"
    run(stack, job)
    record = stack.record("fails-at-provider")
    assert record["status"] == "FAILED"
    assert "generation failed as requested" in record["error"]["message"]
    assert not record.get("outputs")
    events = [e for e in stack.events() if e["detail"]["job_id"] == "fails-at-provider"]
    assert [e["detail-type"] for e in events] == ["Job Failed"]


def test_invalid_job_is_rejected_with_field_errors_and_no_generate_call(stack: EmbeddedStack) -> None:
    before = len(stack.emulator.generate_calls())
    bad = {"job_id": "bad-model", "request": {"model": "nano-bananna", "input": {"prompt": "x"}}}
    not_json = "{this is not json"
    run(stack, bad, not_json)
    record = stack.record("bad-model")
    assert record["status"] == "REJECTED"
    assert any(p["field"] == "model" for p in record["error"]["problems"])
    garbage = [r for r in stack.records() if r["job_id"].startswith("msg-")]
    assert garbage and garbage[0]["status"] == "REJECTED"
    assert garbage[0]["error"]["problems"][0]["field"] == "body"
    assert len(stack.emulator.generate_calls()) == before


def test_the_state_machine_run_is_the_one_cdk_synth_wrote(stack: EmbeddedStack, synthesized_template: Path) -> None:
    """The definition moto executes is the synthesized text with only the function ARNs filled in."""
    template = json.loads(synthesized_template.read_text())
    (machine,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"]
    separator, parts = machine["Properties"]["DefinitionString"]["Fn::Join"]
    lam = stack.session.client("lambda")

    def fill(part: str | dict) -> str:
        if isinstance(part, str):
            return part
        if part == {"Ref": "AWS::Partition"}:
            return "aws"
        return lam.get_function(FunctionName=part["Fn::GetAtt"][0])["Configuration"]["FunctionArn"]

    text = separator.join(fill(part) for part in parts)
    running = json.loads(stack.session.client("stepfunctions").describe_state_machine(
        stateMachineArn=stack.state_machine_arn)["definition"])
    assert running == json.loads(text)
    assert running["StartAt"] == "WaitForResult"


def test_the_api_key_never_reaches_logs_records_events_or_objects(stack: EmbeddedStack) -> None:
    run(stack, sample("05-text-to-speech-elevenlabs.json"))
    assert stack.record("demo-elevenlabs-tts")["status"] == "SUCCEEDED"
    haystacks = [stack.logs(), json.dumps(stack.records()), json.dumps(stack.events()),
                 json.dumps(stack.executions(), default=str)]
    s3 = stack.session.client("s3")
    for obj in s3.list_objects_v2(Bucket="mediagen-outputs-local").get("Contents", []):
        haystacks.append(stack.read_object(obj["Key"]).decode("latin-1"))
        haystacks.append(json.dumps(s3.head_object(Bucket="mediagen-outputs-local", Key=obj["Key"]), default=str))
    sfn = stack.session.client("stepfunctions")
    for execution in stack.executions():
        haystacks.append(json.dumps(sfn.get_execution_history(executionArn=execution["executionArn"]), default=str))
    assert stack.logs(), "the handlers logged nothing: the scan would prove nothing"
    for text in haystacks:
        assert SENTINEL_KEY not in text


def test_every_published_event_matches_the_documented_schema(stack: EmbeddedStack) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((REPO / "docs" / "events.schema.json").read_text())
    good = sample("01-text-to-image-nano-banana.json") | {"job_id": "schema-ok"}
    bad = {"job_id": "schema-rejected", "request": {"model": "nano-banana", "input": {"prompt": 5}}}
    stack.events()  # drain what earlier tests published
    run(stack, good, bad)
    events = stack.events()
    assert sorted(e["detail-type"] for e in events) == ["Job Rejected", "Job Succeeded"]
    for event in events:
        jsonschema.validate(event, schema)
    ok = next(e for e in events if e["detail"]["job_id"] == "schema-ok")
    assert ok["detail"]["outputs"][0]["uri"].startswith("s3://mediagen-outputs-local/demo/schema-ok/")
