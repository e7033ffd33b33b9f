"""The submit handler on a real SQS batch: records run concurrently and partial batch failures still name
exactly the records that must come back."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from mediagen.local import EmbeddedStack

REPO = Path(__file__).resolve().parents[2]


def sqs_event(bodies: list[str], queue_arn: str) -> dict:
    template = json.loads((REPO / "events" / "aws" / "sqs-submit-job.json").read_text())["Records"][0]
    return {"Records": [{**template, "messageId": f"msg-{i:02d}", "receiptHandle": f"rh-{i}", "body": body,
                         "eventSourceARN": queue_arn} for i, body in enumerate(bodies)]}


def job(job_id: str, prompt: str) -> str:
    return json.dumps({"job_id": job_id, "request": {"model": "nano-banana", "input": {"prompt": prompt}}})


@pytest.fixture(scope="module")
def stack(synthesized_template: Path):
    with EmbeddedStack(template_path=synthesized_template, processing_seconds=0.2) as local:
        yield local


def test_a_batch_with_some_failing_records_reports_exactly_those(stack: EmbeddedStack) -> None:
    retried = json.dumps({"job_id": "batch-retry", "retry_unknown_outcome": True,
                          "request": {"model": "nano-banana", "input": {"prompt": "a kite [sandbox:generate-500]"}}})
    bodies = [job(f"batch-ok-{i}", "a kite") for i in range(7)]
    bodies += [retried]                                    # outcome unknown, user opted into retry: fails, retried
    bodies += [job("batch-429", "a kite [sandbox:429=9]")]  # rate limited: waits as a new delayed message
    bodies += ["{broken json"]                             # rejected: consumed
    depth_before = stack.queue_depth()
    response = stack.invoke("submit", sqs_event(bodies, stack.queue_arn))
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == ["msg-07"]
    for i in range(7):
        assert stack.record(f"batch-ok-{i}")["provider_task_id"]  # accepted (it may be further along by now)
    assert stack.record("batch-retry")["status"] == "RECEIVED" and stack.record("batch-retry")["unknown_outcomes"] == 1
    assert stack.record("batch-429")["status"] == "RECEIVED"
    assert stack.record("batch-429")["last_error"]["code"] == "rate_limited"
    assert stack.queue_depth() == depth_before + 1  # the rate-limited job, re-sent with its job id
    assert stack.record("msg-msg-09")["status"] == "REJECTED"


def test_records_of_a_batch_are_submitted_concurrently(stack: EmbeddedStack) -> None:
    """Each generate takes 1 s at the provider ([sandbox:generate-delay=1]): one after another, ten records
    would take at least 10 s. (The benchmark, `make bench`, reports the 10-vs-1 ratio.)"""
    bodies = [job(f"concurrent-{i}", "a kite [sandbox:generate-delay=1]") for i in range(10)]
    start = time.monotonic()
    response = stack.invoke("submit", sqs_event(bodies, stack.queue_arn))
    elapsed = time.monotonic() - start
    failed = [stack.record(f"concurrent-{int(f['itemIdentifier'][4:])}") for f in response["batchItemFailures"]]
    assert failed == [], [r and r.get("last_error") for r in failed]
    assert all(stack.record(f"concurrent-{i}")["provider_task_id"] for i in range(10))
    assert elapsed < 5.0, f"10 records took {elapsed:.2f}s: not concurrent"


@pytest.fixture(scope="module", autouse=True)
def _drain(stack: EmbeddedStack):
    yield
    deadline = time.monotonic() + 60  # let the executions these tests started finish before teardown
    while any(e["status"] == "RUNNING" for e in stack.executions()) and time.monotonic() < deadline:
        time.sleep(0.2)
