"""Both providers through the whole embedded stack (moto, the real handlers, the Cliprise and Clipia
emulators): a Clipia submit whose answer is lost ends with one request, and a fallback is taken only after a
refusal that spent nothing (issue 14's acceptance)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from mediagen.local.runner import run_local

pytestmark = pytest.mark.slow


def run(tmp_path: Path, template: Path, jobs: list[dict]) -> dict[str, dict]:
    path = tmp_path / "jobs.jsonl"
    path.write_text("".join(json.dumps(j) + "\n" for j in jobs))
    out = io.StringIO()
    run_local(job_files=[path], template_path=template, processing_seconds=0.3, out=out, timeout=180)
    *per_job, summary = [json.loads(line) for line in out.getvalue().splitlines()]
    assert summary["summary"]["in_flight"] == 0
    return {r["job_id"]: r for r in per_job}


def clipia_image(prompt: str) -> dict:
    return {"model": "nano-banana-2", "input": {"prompt": prompt}}


def test_a_clipia_job_whose_first_submit_answer_is_lost_ends_succeeded_with_one_request_at_the_emulator(
        tmp_path: Path, synthesized_template: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The emulator creates (and charges) the request, then the answer is lost: dropped, or later than the read
    timeout. The adapter retries with the job's Idempotency-Key and gets the same request back, so the job ends
    SUCCEEDED -- not OUTCOME_UNKNOWN -- and the emulator accepted exactly one request."""
    monkeypatch.setenv("MEDIAGEN_READ_TIMEOUT_SECONDS", "1")
    records = run(tmp_path, synthesized_template, [
        {"job_id": "clipia-drop", "provider": "clipia", "request": clipia_image("a kite [sandbox:submit-drop]")},
        {"job_id": "clipia-slow", "provider": "clipia",
         "request": clipia_image("a kite [sandbox:submit-timeout=3]")},
    ])
    for job_id in ("clipia-drop", "clipia-slow"):
        record = records[job_id]
        assert record["status"] == "SUCCEEDED", record
        assert record["provider"] == "clipia"
        assert record["generate_accepted"] == 1 and record["generate_calls"] >= 2  # retried, one request made


def test_a_fallback_is_taken_after_insufficient_credits_and_never_after_an_ambiguous_submit(
        tmp_path: Path, synthesized_template: Path) -> None:
    fallback = [{"provider": "clipia", "request": clipia_image("a lighthouse at dusk")}]
    records = run(tmp_path, synthesized_template, [
        {"job_id": "fb-no-credits", "fallbacks": fallback, "request": {"model": "nano-banana", "input": {
            "prompt": "a lighthouse at dusk [sandbox:no-credits]", "output_format": "png"}}},
        {"job_id": "fb-ambiguous", "fallbacks": fallback, "request": {"model": "nano-banana", "input": {
            "prompt": "a lighthouse at dusk [sandbox:generate-500]", "output_format": "png"}}},
    ])
    refused = records["fb-no-credits"]
    assert refused["status"] == "SUCCEEDED" and refused["provider"] == "clipia", refused
    ambiguous = records["fb-ambiguous"]
    assert ambiguous["status"] == "OUTCOME_UNKNOWN", ambiguous
    assert ambiguous["provider"] == "cliprise"  # the Clipia fallback was never sent
