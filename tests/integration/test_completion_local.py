"""Completion on the local stack: callbacks wake the execution early (and make polling cheap: the first status
check comes near the expected completion time), polling alone still finishes every job, an early callback does
not use up the wake-up of the real one, and duplicate, forged and late callbacks change nothing (issues 4, 15)."""

from __future__ import annotations

import copy
import hashlib
import json
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from mediagen.local import EmbeddedStack
from mediagen.settings import Settings
from mediagen.steps.poll import EXPECTED_SECONDS, backoff_seconds

REPO = Path(__file__).resolve().parents[2]


def image_job(job_id: str, prompt: str) -> dict:
    return {"job_id": job_id, "request": {"model": "nano-banana", "input": {"prompt": prompt, "output_format": "png"}}}


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def local(synthesized_template: Path):
    with EmbeddedStack(template_path=synthesized_template, processing_seconds=1.0, poll_initial_seconds=1,
                       poll_max_seconds=8, extra_env={"MEDIAGEN_POLL_JITTER": "0"}) as stack:
        yield stack


@pytest.fixture
def slow_polling(local: EmbeddedStack):
    """First status check 20 s after submit: anything faster than that was a callback's doing."""
    with local.configured(MEDIAGEN_POLL_INITIAL_SECONDS="20", MEDIAGEN_POLL_MAX_SECONDS="20") as stack:
        yield stack


@pytest.fixture
def fast_polling(local: EmbeddedStack):
    return local


@pytest.fixture
def without_callbacks(local: EmbeddedStack):
    """A deployment that sends no callback URL (``MEDIAGEN_CALLBACK_BASE_URL`` empty): polling alone."""
    with local.configured(MEDIAGEN_CALLBACK_BASE_URL="") as stack:
        yield stack


@pytest.mark.parametrize("prompt", ["a slow render [sandbox:slow=8]", "a slow courier [sandbox:callback-delay=7]"],
                         ids=["job-takes-8s", "callback-delayed-to-8s"])
def test_a_callback_after_8_seconds_costs_at_most_two_status_calls(fast_polling: EmbeddedStack, prompt: str) -> None:
    stack = fast_polling
    job_id = "cb-8s-" + ("slow" if "slow=" in prompt else "delay")
    assert EXPECTED_SECONDS["image"] > 8  # the first check is planned after the callback
    stack.send_jobs([image_job(job_id, prompt)])
    stack.run_until_done(timeout=40)
    record = stack.record(job_id)
    assert record["status"] == "SUCCEEDED" and record["callbacks"] == 1
    submitted_at, callback_at = epoch(record["transitions"]["SUBMITTED"]), epoch(record["callback_received_at"])
    assert callback_at - submitted_at >= 7.5
    assert epoch(record["transitions"]["PERSISTING"]) - callback_at < 2.0
    # one check when the callback woke the wait, plus persist's own
    assert stack.emulator.status_calls(record["provider_task_id"]) <= 2 and record["polls"] == 1


def test_an_early_callback_does_not_delay_the_real_one(fast_polling: EmbeddedStack) -> None:
    stack = fast_polling
    stack.send_jobs([image_job("cb-early", "a tide [sandbox:callback-early] [sandbox:slow=6]")])
    stack.run_until_done(timeout=40)
    record = stack.record("cb-early")
    assert record["status"] == "SUCCEEDED" and record["callbacks"] == 2  # the early one and the real one
    submitted_at, last_callback = epoch(record["transitions"]["SUBMITTED"]), epoch(record["callback_received_at"])
    assert last_callback - submitted_at >= 5.5  # callback_received_at is the real (last) callback
    assert epoch(record["transitions"]["PERSISTING"]) - last_callback < 2.0
    assert record["detection_lag_ms"] is not None and record["detection_lag_ms"] < 2000
    # the early callback's check, the real one's, persist's
    assert stack.emulator.status_calls(record["provider_task_id"]) <= 3


def test_a_callback_gets_completion_detected_within_two_seconds_with_at_most_two_status_calls(
        slow_polling: EmbeddedStack) -> None:
    stack = slow_polling
    stack.send_jobs([image_job("cb-fast", "a lighthouse at dusk")])
    records = stack.run_until_done(timeout=30)
    record = next(r for r in records if r["job_id"] == "cb-fast")
    assert record["status"] == "SUCCEEDED" and record["callbacks"] == 1
    callback_at = epoch(record["callback_received_at"])
    assert epoch(record["transitions"]["PERSISTING"]) - callback_at < 2.0
    assert stack.emulator.status_calls(record["provider_task_id"]) <= 2
    assert record["detection_lag_ms"] is not None and record["detection_lag_ms"] < 2000


def test_duplicate_and_forged_callbacks_change_nothing(slow_polling: EmbeddedStack) -> None:
    stack = slow_polling
    stack.send_jobs([image_job("cb-dup", "a harbour [sandbox:callback-duplicate=3] [sandbox:callback-forged]")])
    stack.run_until_done(timeout=30)
    record = stack.record("cb-dup")
    assert record["status"] == "SUCCEEDED" and 1 <= record["callbacks"] <= 3
    # three concurrent copies end one wait: one status check, plus persist's own
    assert stack.emulator.status_calls(record["provider_task_id"]) <= 2
    accepted = [c["task_id"] for c in stack.emulator.generate_calls() if c["task_id"]]
    assert len(accepted) == len(set(accepted))
    # A forged callback to a real-looking URL is answered exactly like a genuine one and changes nothing.
    before = copy.deepcopy(stack.records())
    forged_token = record["callback_token"].split(".")[0] + ".forged-secret-0123456789abcdef"
    genuine = httpx.post(f"{stack.callbacks.base_url}/{record['callback_token']}", json={"status": "success"})
    forged = httpx.post(f"{stack.callbacks.base_url}/{forged_token}", json={"status": "success"})
    unknown = httpx.post(f"{stack.callbacks.base_url}/bm9ib2R5.aaaaaaaaaaaaaaaaaaaaaaaa", json={})
    assert genuine.status_code == forged.status_code == unknown.status_code == 200
    assert genuine.text == forged.text == unknown.text
    assert stack.records() == before


def test_a_late_callback_after_the_job_ended_changes_nothing(slow_polling: EmbeddedStack) -> None:
    stack = slow_polling
    stack.send_jobs([image_job("cb-late", "a canal [sandbox:callback-late=1]")])
    stack.run_until_done(timeout=30)
    before = copy.deepcopy(stack.record("cb-late"))
    task_id = before["provider_task_id"]
    wait_for(lambda: len([c for c in stack.emulator.callbacks_sent() if c["task_id"] == task_id
                          and c.get("status_code")]) >= 2)
    assert stack.record("cb-late") == before


def test_without_callbacks_every_job_completes_on_the_documented_backoff_schedule(
        without_callbacks: EmbeddedStack) -> None:
    stack = without_callbacks
    settings = Settings(MEDIAGEN_POLL_INITIAL_SECONDS=1, MEDIAGEN_POLL_MAX_SECONDS=8)
    jobs = {f"nocb-{s}": s for s in (2, 5)}
    stack.send_jobs([image_job(job_id, f"a forest [sandbox:slow={s}]") for job_id, s in jobs.items()])
    records = {r["job_id"]: r for r in stack.run_until_done(timeout=60)}
    for job_id, seconds in jobs.items():
        record = records[job_id]
        assert record["status"] == "SUCCEEDED" and record["callbacks"] == 0
        # status checks happen at 1, 1+2, 1+2+4, ... s; the first at or after `seconds` sees the result
        elapsed, expected = 0, 0
        while elapsed < seconds:
            elapsed += backoff_seconds(expected, settings)
            expected += 1
        assert record["polls"] == expected
        assert stack.emulator.status_calls(record["provider_task_id"]) == expected + 1  # + persist's own check


def test_a_zip_result_lands_as_its_members_plus_the_original(fast_polling: EmbeddedStack) -> None:
    stack = fast_polling
    stack.send_jobs([image_job("zipped", "a set of icons [sandbox:zip]")])
    stack.run_until_done(timeout=30)
    record = stack.record("zipped")
    assert record["status"] == "SUCCEEDED"
    original, *members = record["outputs"]
    assert original["content_type"] == "application/zip" and original["key"] == "zipped/output.zip"
    assert len(members) >= 2
    for member in members:
        body = stack.read_object(member["key"])
        assert member["unpacked_from"] == original["key"] and member["key"].startswith("zipped/files/")
        assert member["content_type"] == "image/png" and body[:8] == b"\x89PNG\r\n\x1a\n"
        assert hashlib.sha256(body).hexdigest() == member["sha256"] and len(body) == member["bytes"]
    manifest = json.loads(stack.read_object("zipped/result.json"))
    assert manifest["outputs"] == record["outputs"]


def test_a_result_that_expired_before_it_was_fetched_ends_in_a_failure_that_says_so(fast_polling: EmbeddedStack) -> None:
    stack = fast_polling
    stack.send_jobs([image_job("expired", "a bridge [sandbox:download-404]")])
    stack.run_until_done(timeout=30)
    record = stack.record("expired")
    assert record["status"] == "PIPELINE_FAILED"
    assert record["error"]["code"] == "result_expired" and "expired" in record["error"]["message"]
