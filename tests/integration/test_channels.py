"""Every way in, on the local stack: the SQS queue, the jobs HTTP API, S3 manifests and media drops.

One local stack for the module (moto's state is process-wide); each test uses its own job ids.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mediagen.local.runner import generate_calls_by_job
from mediagen.local.stack import INTAKE_BUCKET, OUTPUTS_BUCKET, EmbeddedStack

pytestmark = pytest.mark.slow

PNG = b"\x89PNG\r\n\x1a\n" + hashlib.sha256(b"cat").digest() * 40


def job(job_id: str | None = None, prompt: str = "a red bicycle in the rain") -> dict[str, Any]:
    doc: dict[str, Any] = {"request": {"model": "nano-banana", "input": {
        "prompt": prompt, "output_format": "png", "image_size": "1:1"}}}
    if job_id:
        doc["job_id"] = job_id
    return doc


@pytest.fixture(scope="module")
def stack(synthesized_template: Any) -> Iterator[EmbeddedStack]:
    with EmbeddedStack(template_path=synthesized_template, processing_seconds=0.5) as local:
        yield local


def generates(stack: EmbeddedStack, job_id: str) -> int:
    return generate_calls_by_job(stack.emulator)[0].get(job_id, 0)


def put_manifest(stack: EmbeddedStack, key: str, lines: list[Any]) -> str | None:
    body = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
    return stack.put_object(key, body.encode(), content_type="application/x-ndjson")


def redeliver_last_s3_event(stack: EmbeddedStack, key: str) -> None:
    """Send the intake queue the S3 notification of ``key`` again (S3 delivers at least once)."""
    s3 = stack.session.client("s3")
    head = s3.head_object(Bucket=INTAKE_BUCKET, Key=key)
    record = {"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
              "s3": {"bucket": {"name": INTAKE_BUCKET},
                     "object": {"key": key, "size": head["ContentLength"], "eTag": head["ETag"].strip('"'),
                                **({"versionId": head["VersionId"]} if head.get("VersionId") else {})}}}
    stack.session.client("sqs").send_message(QueueUrl=stack.intake_queue_url,
                                             MessageBody=json.dumps({"Records": [record]}))


def test_the_same_job_through_sqs_the_api_and_a_manifest_is_one_task_and_one_generate(stack: EmbeddedStack) -> None:
    same = job("channels-same-1")
    stack.send_jobs([same, same])
    stack.run_until_done(timeout=120)
    # The job belongs to the queue (owner "sqs", finding 7): the API and a manifest may not take its id over,
    # and learn nothing about it.
    first = httpx.post(f"{stack.api_url}/jobs", json=same)
    again = httpx.post(f"{stack.api_url}/jobs", json=same)
    put_manifest(stack, "jobs/channels/same.jsonl", [same])
    redeliver_last_s3_event(stack, "jobs/channels/same.jsonl")
    stack.run_until_done(timeout=120)
    redeliver_last_s3_event(stack, "jobs/channels/same.jsonl")
    stack.send_jobs([same])
    stack.run_until_done(timeout=120)

    assert first.status_code == again.status_code == 409
    assert first.json() == again.json() == {"code": "job_id_unavailable", "job_id": "channels-same-1",
                                            "message": "job id 'channels-same-1' cannot be used; choose another "
                                                       "job_id"}
    records = [r for r in stack.records() if r["job_id"] == "channels-same-1"]
    assert len(records) == 1 and records[0]["status"] == "SUCCEEDED" and records[0]["owner"] == "sqs"
    assert generates(stack, "channels-same-1") == 1
    report = json.loads(stack.read_object("reports/jobs/channels/same/report.json"))
    assert report["complete"] is True
    assert [(line["job_id"], line["status"], line["error"]["code"]) for line in report["lines"]] == [
        ("channels-same-1", "CONFLICT", "job_id_unavailable")]
    assert "SUCCEEDED" not in json.dumps(report)


def test_a_manifest_makes_one_job_per_line_with_results_under_its_prefix_and_a_report(stack: EmbeddedStack) -> None:
    lines: list[Any] = [job(prompt="line one"), "", job(prompt="line three"), "{not json",
                        {"request": {"model": "nano-banana", "input": {"prompt": "x", "image_size": "2:9"}}}]
    put_manifest(stack, "jobs/team-a/batch-7.jsonl", lines)
    stack.run_until_done(timeout=120)
    redeliver_last_s3_event(stack, "jobs/team-a/batch-7.jsonl")  # a duplicate S3 event changes nothing
    stack.run_until_done(timeout=120)

    report = json.loads(stack.read_object("reports/jobs/team-a/batch-7/report.json"))
    assert report["complete"] is True and report["manifest"]["key"] == "jobs/team-a/batch-7.jsonl"
    by_line = {line["line"]: line for line in report["lines"]}
    assert sorted(by_line) == [1, 3, 4, 5]  # blank line 2 is not a job
    assert by_line[1]["status"] == by_line[3]["status"] == "SUCCEEDED"
    assert by_line[4]["status"] == "REJECTED" and by_line[4]["error"]["problems"][0]["field"] == "body"
    assert by_line[5]["status"] == "REJECTED"
    assert any(p["field"] == "input.image_size" for p in by_line[5]["error"]["problems"])
    for line in (1, 3):
        job_id = by_line[line]["job_id"]
        assert job_id.endswith(f"-{line}") and generates(stack, job_id) == 1
        assert all(uri.startswith(f"s3://mediagen-outputs-local/results/jobs/team-a/batch-7/{job_id}/")
                   for uri in by_line[line]["outputs"])
    assert len([r for r in stack.records() if (r.get("source") or {}).get("key") == "jobs/team-a/batch-7.jsonl"]) == 4


def test_finding_05_a_notification_on_the_results_cannot_start_a_loop(stack: EmbeddedStack) -> None:
    """An operator points every object created in the outputs bucket at the intake queue: results, result.json
    and report.json reach the intake, which ignores them; the manifest makes its two jobs and no more."""
    s3 = stack.session.client("s3")
    s3.put_bucket_notification_configuration(Bucket=OUTPUTS_BUCKET, NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": stack.intake_queue_arn, "Events": ["s3:ObjectCreated:*"]}]})
    try:
        put_manifest(stack, "jobs/loop/pair.jsonl", [job(prompt="loop one"), job(prompt="loop two")])
        stack.run_until_done(timeout=120)
        stack.run_until_done(timeout=120)  # whatever the writes notified has been handled too
    finally:
        s3.put_bucket_notification_configuration(Bucket=OUTPUTS_BUCKET, NotificationConfiguration={})

    from_manifest = [r for r in stack.records() if (r.get("source") or {}).get("key", "").startswith(
        ("jobs/loop/", "results/", "reports/"))]
    assert sorted((r["source"]["key"], r["status"]) for r in from_manifest) == [
        ("jobs/loop/pair.jsonl", "SUCCEEDED"), ("jobs/loop/pair.jsonl", "SUCCEEDED")]
    assert not [r for r in stack.records() if (r.get("source") or {}).get("bucket") == OUTPUTS_BUCKET]
    report = json.loads(stack.read_object("reports/jobs/loop/pair/report.json"))
    assert report["complete"] is True and report["counts"] == {"SUCCEEDED": 2}


def test_finding_06_a_manifest_of_large_lines_is_queued_and_reported(stack: EmbeddedStack) -> None:
    big = [{**job(prompt=f"large {i}"), "allow_unknown_fields": True} for i in range(10)]
    for i, doc in enumerate(big):
        doc["request"]["input"]["notes"] = f"{i}" * (110 * 1024)  # ten ~110 KB lines: > 1 MiB together
    put_manifest(stack, "jobs/large/ten.jsonl", big)
    stack.run_until_done(timeout=180)
    report = json.loads(stack.read_object("reports/jobs/large/ten/report.json"))
    assert report["complete"] is True and report["lines_total"] == 10 and "error" not in report
    assert set(report["counts"]) <= {"SUCCEEDED", "REJECTED"} and sum(report["counts"].values()) == 10
    assert all(generates(stack, line["job_id"]) <= 1 for line in report["lines"])


def test_a_media_drop_runs_the_rules_model_on_the_object_handed_over_as_a_presigned_url(stack: EmbeddedStack) -> None:
    stack.put_object("inbox/upscale/holiday/cat photo.png", PNG, content_type="image/png")
    records = stack.run_until_done(timeout=120)

    drops = [r for r in records if (r.get("source") or {}).get("key") == "inbox/upscale/holiday/cat photo.png"]
    assert len(drops) == 1
    record = drops[0]
    assert record["status"] == "SUCCEEDED" and record["model"] == "recraft-upscaler"
    assert record["outputs"][0]["key"].startswith(f"results/inbox/upscale/{record['job_id']}/output.")
    assert stack.read_object(record["outputs"][0]["key"])  # the model's output is in S3
    # The provider (emulator) fetched the original bytes through the presigned URL it was given ...
    fetched = [f for f in stack.emulator.fetched_inputs() if f["task_id"] == record["provider_task_id"]]
    assert fetched and fetched[0]["field"] == "input.image" and fetched[0]["ok"]
    assert fetched[0]["sha256"] == hashlib.sha256(PNG).hexdigest()
    assert "X-Amz-Signature=***" in fetched[0]["url"] or "Signature=***" in fetched[0]["url"]
    # ... and the job itself keeps the s3:// URI: no signature in the record.
    assert record["request"]["input"]["image"].startswith(f"s3://{INTAKE_BUCKET}/inbox/upscale/holiday/cat%20photo.png")
    assert "Signature" not in json.dumps(record)


def test_a_media_drop_missing_the_metadata_its_rule_needs_is_rejected_naming_it(stack: EmbeddedStack) -> None:
    stack.put_object("inbox/animate/no-prompt.png", PNG, content_type="image/png")
    stack.put_object("inbox/animate/with-prompt.png", PNG, content_type="image/png", metadata={"prompt": "it waves"})
    records = {(r.get("source") or {}).get("key"): r for r in stack.run_until_done(timeout=180)}

    rejected = records["inbox/animate/no-prompt.png"]
    assert rejected["status"] == "REJECTED" and generates(stack, rejected["job_id"]) == 0
    assert "x-amz-meta-prompt" in rejected["error"]["problems"][0]["message"]
    animated = records["inbox/animate/with-prompt.png"]
    assert animated["status"] == "SUCCEEDED" and animated["request"]["input"]["prompt"] == "it waves"


def test_the_api_refuses_invalid_jobs_with_every_problem_and_records_nothing(stack: EmbeddedStack) -> None:
    bad = {"job_id": "api-bad-1", "request": {"model": "nano-banana", "input": {"image_size": "2:9"}},
           "max_credits": -1}
    response = httpx.post(f"{stack.api_url}/jobs", json=bad)
    assert response.status_code == 400
    fields = {p["field"] for p in response.json()["problems"]}
    assert "max_credits" in fields
    not_json = httpx.post(f"{stack.api_url}/jobs", content=b"{nope", headers={"content-type": "application/json"})
    assert not_json.status_code == 400 and not_json.json()["problems"][0]["field"] == "body"
    assert httpx.get(f"{stack.api_url}/jobs/api-bad-1").status_code == 404
    assert stack.record("api-bad-1") is None


def test_the_api_answers_409_for_a_job_id_reused_with_a_different_request(stack: EmbeddedStack) -> None:
    assert httpx.post(f"{stack.api_url}/jobs", json=job("api-conflict-1", "first")).status_code == 202
    response = httpx.post(f"{stack.api_url}/jobs", json=job("api-conflict-1", "second"))
    assert response.status_code == 409 and response.json()["code"] == "job_id_conflict"
    stack.run_until_done(timeout=120)
    assert stack.record("api-conflict-1")["request"]["input"]["prompt"] == "first"


def test_get_job_gives_status_timestamps_and_downloadable_outputs(stack: EmbeddedStack) -> None:
    accepted = httpx.post(f"{stack.api_url}/jobs", json=job("api-get-1")).json()
    assert accepted["status_url"].endswith("/jobs/api-get-1")
    stack.run_until_done(timeout=120)
    view = httpx.get(accepted["status_url"]).json()
    assert view["status"] == "SUCCEEDED" and view["terminal"] is True
    assert {"RECEIVED", "SUBMITTED", "SUCCEEDED"} <= set(view["transitions"])
    output = view["outputs"][0]
    assert output["uri"].startswith("s3://") and output["url_expires_in"] == 900
    import requests  # moto serves presigned S3 URLs through requests

    assert requests.get(output["url"], timeout=10).content == stack.read_object(output["key"])
    assert "callback_token" not in view and "wake_token" not in view


def test_cancel_before_submit_means_never_sent(stack: EmbeddedStack) -> None:
    httpx.post(f"{stack.api_url}/jobs", json=job("api-cancel-queued"))
    response = httpx.post(f"{stack.api_url}/jobs/api-cancel-queued/cancel")
    assert response.status_code == 200 and response.json()["cancelled_from"] == "RECEIVED"
    stack.run_until_done(timeout=60)
    assert stack.record("api-cancel-queued")["status"] == "CANCELLED"
    assert generates(stack, "api-cancel-queued") == 0
    again = httpx.post(f"{stack.api_url}/jobs/api-cancel-queued/cancel")
    assert again.status_code == 409 and again.json()["status"] == "CANCELLED"


def test_cancel_while_generating_stops_polling_and_says_the_credits_are_spent(stack: EmbeddedStack) -> None:
    httpx.post(f"{stack.api_url}/jobs", json=job("api-cancel-running", "a slow one [sandbox:slow=30] [sandbox:no-callback]"))
    stack.pump_queue()
    assert stack.record("api-cancel-running")["status"] == "SUBMITTED"
    response = httpx.post(f"{stack.api_url}/jobs/api-cancel-running/cancel")
    assert response.status_code == 200
    body = response.json()
    assert body["cancelled_from"] == "SUBMITTED" and "no cancel" in body["credits"]
    stack.run_until_done(timeout=30)  # the execution ends now, not after the 30 s generation
    record = stack.record("api-cancel-running")
    assert record["status"] == "CANCELLED" and not record.get("outputs")
    events = [e for e in stack.events() if e["detail"]["job_id"] == "api-cancel-running"]
    assert [e["detail-type"] for e in events] == ["Job Cancelled"]


def test_unknown_jobs_and_models_are_404(stack: EmbeddedStack) -> None:
    assert httpx.get(f"{stack.api_url}/jobs/no-such-job").status_code == 404
    assert httpx.post(f"{stack.api_url}/jobs/no-such-job/cancel").status_code == 404
    missing = httpx.get(f"{stack.api_url}/models/nano-banan")
    assert missing.status_code == 404 and "nano-banana" in missing.json()["message"]
    models = httpx.get(f"{stack.api_url}/models").json()
    assert any(m["id"] == "recraft-upscaler" for m in models)
    detail = httpx.get(f"{stack.api_url}/models/wan-2-5").json()
    assert detail["modality"] == "video" and "oneOf" in detail["request_schema"]
