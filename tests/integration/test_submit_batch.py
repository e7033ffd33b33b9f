"""The submit handler on a real SQS batch: records run concurrently and partial batch failures still name
exactly the records that must come back."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from mediagen.local import LocalStack

REPO = Path(__file__).resolve().parents[2]


def sqs_event(bodies: list[str]) -> dict:
    template = json.loads((REPO / "events" / "aws" / "sqs-submit-job.json").read_text())["Records"][0]
    return {"Records": [{**template, "messageId": f"msg-{i:02d}", "receiptHandle": f"rh-{i}", "body": body}
                        for i, body in enumerate(bodies)]}


def job(job_id: str, prompt: str) -> str:
    return json.dumps({"job_id": job_id, "request": {"model": "nano-banana", "input": {"prompt": prompt}}})


@pytest.fixture(scope="module")
def stack(synthesized_template: Path):
    with LocalStack(template_path=synthesized_template, processing_seconds=0.2) as local:
        yield local


def test_a_batch_with_some_failing_records_reports_exactly_those(stack: LocalStack) -> None:
    bodies = [job(f"batch-ok-{i}", "a kite") for i in range(7)]
    bodies += [job(f"batch-429-{i}", "a kite [sandbox:429=9]") for i in range(2)]   # rate limited: retry later
    bodies += ["{broken json"]                                                      # rejected: consumed
    response = stack.invoke("submit", sqs_event(bodies))
    failed = sorted(f["itemIdentifier"] for f in response["batchItemFailures"])
    assert failed == ["msg-07", "msg-08"]
    for i in range(7):
        assert stack.task(f"batch-ok-{i}")["provider_task_id"]  # accepted (it may be further along by now)
    assert stack.task("batch-429-0")["status"] == "RECEIVED"
    assert stack.task("batch-429-0")["last_error"]["code"] == "rate_limited"
    assert stack.task("msg-msg-09")["status"] == "REJECTED"


def test_records_of_a_batch_are_submitted_concurrently(stack: LocalStack) -> None:
    """Each generate waits ~0.3 s at the provider ([sandbox:generate-delay]); ten in sequence would take 3 s."""
    slow = "a kite [sandbox:generate-delay=0.3]"
    bodies = [job(f"concurrent-{i}", slow) for i in range(10)]
    start = time.monotonic()
    response = stack.invoke("submit", sqs_event(bodies))
    elapsed = time.monotonic() - start
    assert response["batchItemFailures"] == []
    assert all(stack.task(f"concurrent-{i}")["provider_task_id"] for i in range(10))
    assert elapsed < 2.0, f"10 records took {elapsed:.2f}s: not concurrent"


@pytest.fixture(scope="module", autouse=True)
def _drain(stack: LocalStack):
    yield
    deadline = time.monotonic() + 60  # let the executions these tests started finish before teardown
    while any(e["status"] == "RUNNING" for e in stack.executions()) and time.monotonic() < deadline:
        time.sleep(0.2)
