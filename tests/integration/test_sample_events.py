"""Every sample in events/ goes through the handler of its channel on the local stack and does what it says."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mediagen.local.stack import INTAKE_BUCKET, EmbeddedStack

pytestmark = pytest.mark.slow
EVENTS = Path(__file__).resolve().parents[2] / "events"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def sample(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / "aws" / name).read_text())


def for_local(event: dict[str, Any]) -> dict[str, Any]:
    """The sample with the example bucket replaced by the local intake bucket."""
    return json.loads(json.dumps(event).replace("mediagen-intake-example", INTAKE_BUCKET))


@pytest.fixture(scope="module")
def stack(synthesized_template: Any) -> Iterator[EmbeddedStack]:
    with EmbeddedStack(template_path=synthesized_template, processing_seconds=0.3) as local:
        yield local


def test_every_aws_sample_is_used_by_a_channel() -> None:
    names = {p.name for p in (EVENTS / "aws").glob("*.json")}
    assert {"sqs-submit-job.json", "apigateway-http-post-job.json", "apigateway-http-get-job.json",
            "apigateway-http-cancel-job.json", "apigateway-http-get-model.json", "sqs-intake-s3-manifest.json",
            "sqs-intake-s3-drop.json", "sqs-intake-job-event.json", "s3-put-job-manifest.json",
            "s3-put-media-drop.json", "eventbridge-job-succeeded.json"} <= names


def test_api_samples_create_read_and_cancel_a_job(stack: EmbeddedStack) -> None:
    created = stack.invoke("api", sample("apigateway-http-post-job.json"))
    assert created["statusCode"] == 202, created
    job_id = json.loads(created["body"])["job_id"]
    got = stack.invoke("api", sample("apigateway-http-get-job.json"))
    assert got["statusCode"] == 200 and json.loads(got["body"])["job_id"] == job_id == "demo-nano-banana-t2i"
    assert stack.invoke("api", sample("apigateway-http-get-model.json"))["statusCode"] == 200
    cancelled = stack.invoke("api", sample("apigateway-http-cancel-job.json"))
    assert cancelled["statusCode"] == 200 and json.loads(cancelled["body"])["status"] == "CANCELLED"


def test_sqs_submit_sample_runs_a_job(stack: EmbeddedStack) -> None:
    event = sample("sqs-submit-job.json")
    response = stack.invoke("submit", event)
    assert response["batchItemFailures"] == []
    job_id = json.loads(event["Records"][0]["body"]).get("job_id") or f"msg-{event['Records'][0]['messageId']}"
    stack.run_until_done(timeout=120)
    assert job_id == "demo-seedance-v1-pro" and stack.record(job_id)["status"] == "SUCCEEDED"


def test_intake_samples_run_the_sample_manifest_and_a_drop(stack: EmbeddedStack) -> None:
    manifest = for_local(sample("sqs-intake-s3-manifest.json"))
    body = json.loads(manifest["Records"][0]["body"])
    s3 = stack.session.client("s3")
    key = body["Records"][0]["s3"]["object"]["key"]
    put = s3.put_object(Bucket=INTAKE_BUCKET, Key=key, Body=(EVENTS / "manifests" / "catalog-batch.jsonl").read_bytes())
    body["Records"][0]["s3"]["object"]["versionId"] = put["VersionId"]
    manifest["Records"][0]["body"] = json.dumps(body)
    assert stack.invoke("intake", manifest)["batchItemFailures"] == []

    drop = for_local(sample("sqs-intake-s3-drop.json"))
    drop_body = json.loads(drop["Records"][0]["body"])
    drop_key = drop_body["Records"][0]["s3"]["object"]["key"]
    put = s3.put_object(Bucket=INTAKE_BUCKET, Key=drop_key, Body=PNG)
    drop_body["Records"][0]["s3"]["object"]["versionId"] = put["VersionId"]
    drop["Records"][0]["body"] = json.dumps(drop_body)
    assert stack.invoke("intake", drop)["batchItemFailures"] == []
    stack.run_until_done(timeout=120)

    report = json.loads(stack.read_object("reports/jobs/catalog-batch/report.json"))
    assert report["complete"] is True and report["counts"] == {"SUCCEEDED": 3}
    drops = [r for r in stack.records() if (r.get("source") or {}).get("key") == drop_key]
    assert [d["status"] for d in drops] == ["SUCCEEDED"]


def test_intake_job_event_sample_for_an_unknown_manifest_is_a_no_op(stack: EmbeddedStack) -> None:
    assert stack.invoke("intake", sample("sqs-intake-job-event.json"))["batchItemFailures"] == []
