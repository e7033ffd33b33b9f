"""Fault matrix (issue 5): every sandbox fault token, at the stage it applies to, ends in its documented
terminal status; no job is left non-terminal; no job id gets more than one accepted generate call."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediagen.local import EmbeddedStack
from mediagen.local.runner import generate_calls_by_job

# token -> (expected status, expected error code or None). See docs/reliability.md and docs/sandbox.md.
MATRIX = {
    "[sandbox:fail]": ("FAILED", None),                               # provider: task fails
    "[sandbox:generate-500]": ("OUTCOME_UNKNOWN", "generate_outcome_unknown"),   # generate: 5xx after send
    "[sandbox:generate-timeout]": ("OUTCOME_UNKNOWN", "generate_outcome_unknown"),  # generate: read timeout
    "[sandbox:429=2]": ("SUCCEEDED", None),                           # generate: rate limited twice, requeued
    "[sandbox:code400]": ("REJECTED", None),                          # generate: HTTP 200 carrying code 400
    "[sandbox:empty-400]": ("REJECTED", None),                        # generate: 400 with empty body
    "[sandbox:no-callback]": ("SUCCEEDED", None),                     # completion: polling alone
    "[sandbox:slow=3]": ("SUCCEEDED", None),                          # completion: longer processing
    "[sandbox:status-500=2]": ("SUCCEEDED", None),                    # status: transient 5xx
    "[sandbox:download-truncate]": ("PIPELINE_FAILED", "download_failed"),  # persist: body cut short, 3 tries
    "[sandbox:download-404]": ("PIPELINE_FAILED", "result_expired"),  # persist: temporary URL expired
    "[sandbox:zip]": ("SUCCEEDED", None),                             # persist: zip unpacked
}


def job_for(token: str, n: int) -> dict:
    return {"job_id": f"fault-{n:02d}", "metadata": {"token": token},
            "request": {"model": "nano-banana", "input": {"prompt": f"a red kite {token}", "output_format": "png"}}}


@pytest.fixture(scope="module")
def results(synthesized_template: Path):
    env = {"MEDIAGEN_READ_TIMEOUT_SECONDS": "2", "MEDIAGEN_POLL_JITTER": "0"}
    with EmbeddedStack(template_path=synthesized_template, processing_seconds=0.5, poll_initial_seconds=1,
                       poll_max_seconds=4, extra_env=env) as stack:
        stack.send_jobs([job_for(token, n) for n, token in enumerate(MATRIX)])
        records = {r["job_id"]: r for r in stack.run_until_done(timeout=120)}
        received, accepted = generate_calls_by_job(stack.emulator)
        yield records, received, accepted


@pytest.mark.parametrize(("n", "token"), list(enumerate(MATRIX)), ids=list(MATRIX))
def test_each_fault_ends_in_its_documented_terminal_status(results, n: int, token: str) -> None:
    records, received, accepted = results
    record = records[f"fault-{n:02d}"]
    status, code = MATRIX[token]
    assert record["status"] == status, record.get("error")
    if code:
        assert record["error"]["code"] == code
    assert accepted.get(record["job_id"], 0) <= 1


def test_no_job_is_left_running_and_none_was_charged_twice(results) -> None:
    records, received, accepted = results
    assert len(records) == len(MATRIX)
    assert {r["status"] for r in records.values()} <= {"SUCCEEDED", "REJECTED", "FAILED", "PIPELINE_FAILED",
                                                        "TIMED_OUT", "OUTCOME_UNKNOWN"}
    assert max(accepted.values()) == 1
    rate_limited = f"fault-{list(MATRIX).index('[sandbox:429=2]'):02d}"
    assert received[rate_limited] == 3 and accepted[rate_limited] == 1  # two 429s, then accepted once
