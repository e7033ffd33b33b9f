"""Spend invariants on the embedded stack (moto + the Cliprise emulator): the findings of the review that
need the whole pipeline -- a 429 that never ends, and a mixed run under AWS-side faults."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest

from mediagen.local.runner import run_local

REPO = Path(__file__).resolve().parents[2]


def test_finding_03_a_429_forever_ends_expired_within_two_minutes(
        tmp_path: Path, synthesized_template: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIAGEN_MAX_WAIT_SECONDS", "20")
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(json.dumps({"job_id": "limited", "request": {"model": "nano-banana", "input": {
        "prompt": "a red kite [sandbox:429=1000000]", "output_format": "png"}}}) + "\n")
    out = io.StringIO()
    started = time.monotonic()
    assert run_local(job_files=[jobs], template_path=synthesized_template, processing_seconds=0.3, out=out,
                     timeout=120) == 0
    assert time.monotonic() - started < 120
    record, summary = [json.loads(line) for line in out.getvalue().splitlines()]
    assert record["status"] == "EXPIRED" and record["error"]["code"] == "waited_too_long"
    assert record["generate_accepted"] == 0 and record["generate_calls"] >= 2  # Retry-After: 1 s between tries
    assert summary["summary"]["in_flight"] == 0 and summary["summary"]["credits_charged"] == 0


def test_mixed_jobs_under_aws_faults_all_end_terminal_with_no_slot_held(
        synthesized_template: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The review's stall: PutEvents throttled 30 % of the time and two slots; every job must still end."""
    monkeypatch.setenv("MEDIAGEN_LOCAL_FAULTS", "events:PutEvents=throttle@0.3,dynamodb:UpdateItem=throttle@0.05,"
                                                "dynamodb:TransactWriteItems=throttle@0.05")
    monkeypatch.setenv("MEDIAGEN_LOCAL_FAULTS_SEED", "7")
    monkeypatch.setenv("MEDIAGEN_MAX_IN_FLIGHT", "2")
    out = io.StringIO()
    assert run_local(job_files=[REPO / "events" / "jobs" / "mixed-40.jsonl"], template_path=synthesized_template,
                     processing_seconds=0.3, out=out) == 0
    *per_job, summary = [json.loads(line) for line in out.getvalue().splitlines()]
    terminal = {"SUCCEEDED", "REJECTED", "FAILED", "PIPELINE_FAILED", "TIMED_OUT", "OUTCOME_UNKNOWN", "CANCELLED",
                "EXPIRED"}
    assert len(per_job) == 31 and all(r["status"] in terminal for r in per_job)
    assert summary["summary"]["in_flight"] == 0
    assert summary["summary"]["max_generate_accepted_per_job"] == 1
    by_id = {r["job_id"]: r for r in per_job}
    assert by_id["mix-28"]["error"]["code"] == "price_unknown" and by_id["mix-28"]["generate_calls"] == 0
