"""Jobs belong to their caller (issue 13, finding 7) and every body is read safely (finding 14), on the embedded
stack: the real ``api`` handler behind the local API Gateway, which names the caller as API Gateway's IAM
authorizer does (``requestContext.authorizer.iam``; locally from a header, so one test acts as two callers)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mediagen.local.gateway import DEFAULT_LOCAL_PRINCIPAL, PRINCIPAL_HEADER
from mediagen.local.stack import EmbeddedStack

pytestmark = pytest.mark.slow

ALICE = {PRINCIPAL_HEADER: "arn:aws:sts::123456789012:assumed-role/TeamA/alice-session"}
MALLORY = {PRINCIPAL_HEADER: "arn:aws:iam::123456789012:user/mallory"}


def job(job_id: str, prompt: str = "a lighthouse at dawn") -> dict[str, Any]:
    return {"job_id": job_id, "request": {"model": "nano-banana", "input": {
        "prompt": prompt, "output_format": "png", "image_size": "1:1"}}, "metadata": {"customer": "acme"}}


@pytest.fixture(scope="module")
def stack(synthesized_template: Any) -> Iterator[EmbeddedStack]:
    with EmbeddedStack(template_path=synthesized_template, processing_seconds=0.2) as local:
        yield local


def test_finding_07_another_caller_cannot_see_cancel_or_take_over_a_job_through_the_gateway(
        stack: EmbeddedStack) -> None:
    api = stack.api_url
    accepted = httpx.post(f"{api}/jobs", json=job("owned-1"), headers=ALICE)
    assert accepted.status_code == 202
    stack.run_until_done(timeout=120)

    mine = httpx.get(f"{api}/jobs/owned-1", headers=ALICE)
    assert mine.status_code == 200 and mine.json()["status"] == "SUCCEEDED"
    assert mine.json()["owner"] == "arn:aws:iam::123456789012:role/TeamA" and mine.json()["outputs"][0]["url"]

    missing = httpx.get(f"{api}/jobs/owned-nope", headers=MALLORY)
    theirs = httpx.get(f"{api}/jobs/owned-1", headers=MALLORY)
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == {**missing.json(), "message": "no job 'owned-1'", "job_id": "owned-1"}
    assert "acme" not in theirs.text and "s3" not in theirs.text
    cancel = httpx.post(f"{api}/jobs/owned-1/cancel", headers=MALLORY)
    assert cancel.status_code == 404 and cancel.json()["code"] == "not_found"
    # The same id again, by the other caller: nothing about the job, nothing queued.
    reused = httpx.post(f"{api}/jobs", json=job("owned-1", "something else"), headers=MALLORY)
    assert reused.status_code == 409 and reused.json() == {
        "code": "job_id_unavailable", "job_id": "owned-1",
        "message": "job id 'owned-1' cannot be used; choose another job_id"}
    record = stack.record("owned-1")
    assert record is not None and record["owner"] == "arn:aws:iam::123456789012:role/TeamA"
    # Without the header the gateway's default principal calls: not the owner either.
    assert httpx.get(f"{api}/jobs/owned-1").status_code == 404
    assert DEFAULT_LOCAL_PRINCIPAL.endswith(":user/local")


def test_finding_14_api_a_100000_deep_body_through_the_gateway_is_a_400(stack: EmbeddedStack) -> None:
    response = httpx.post(f"{stack.api_url}/jobs", content=b"[" * 100_000 + b"]" * 100_000,
                          headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["code"] == "invalid_request"
    assert "levels" in response.json()["message"]


def test_the_scheduled_sweep_sends_a_job_the_queue_refused_and_it_runs_once(stack: EmbeddedStack) -> None:
    with stack.faults_injected("sqs:SendMessageBatch=error@1,sqs:SendMessage=error@1", seed=1):
        refused = httpx.post(f"{stack.api_url}/jobs", json=job("swept-1", "a kite"), headers=ALICE)
    assert refused.status_code == 503 and (stack.record("swept-1") or {})["status"] == "RECEIVED"
    # What the schedule sends (infra/mediagen_infra/sweeper.py); 0 s: the job is old enough at once.
    assert stack.invoke("sweep", {"older_than_seconds": 0}) == {"re_enqueued": 1}
    stack.run_until_done(timeout=120)
    record = stack.record("swept-1") or {}
    assert record["status"] == "SUCCEEDED" and record.get("swept_at")
    assert record["owner"] == "arn:aws:iam::123456789012:role/TeamA"  # still its caller's
    assert stack.invoke("sweep", {"older_than_seconds": 0}) == {"re_enqueued": 0}  # nothing left behind
