"""`mediagen run-local`: one JSON line per job with its final task record, then a summary line."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from mediagen.local.runner import run_local


def job_for(token: str, n: int) -> dict:
    return {"job_id": f"fault-{n:02d}",
            "request": {"model": "nano-banana", "input": {"prompt": f"a red kite {token}", "output_format": "png"}}}


def test_run_local_prints_one_json_line_per_job_and_a_summary(tmp_path: Path, synthesized_template: Path) -> None:
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("\n".join(json.dumps(job_for(t, n)) for n, t in enumerate(["[sandbox:fail]", ""])) + "\nnot json\n")
    out = io.StringIO()
    assert run_local(job_files=[jobs], template_path=synthesized_template, processing_seconds=0.3, out=out) == 0
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    *per_job, summary = lines
    assert len(per_job) == 3
    by_id = {r["job_id"]: r for r in per_job}
    assert by_id["fault-00"]["status"] == "FAILED" and by_id["fault-01"]["status"] == "SUCCEEDED"
    assert by_id["fault-01"]["generate_calls"] == 1 and by_id["fault-01"]["outputs"][0]["sha256"]
    assert summary["summary"]["jobs"] == 3 and summary["summary"]["by_status"]["REJECTED"] == 1
    assert summary["summary"]["max_generate_accepted_per_job"] == 1


def test_run_local_under_aws_faults_still_ends_every_job_once_and_counts_the_faults(
        tmp_path: Path, synthesized_template: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MEDIAGEN_LOCAL_FAULTS: EventBridge and DynamoDB throttle, SQS batches fail; botocore's retries absorb it."""
    monkeypatch.setenv("MEDIAGEN_LOCAL_FAULTS", "events:PutEvents=throttle@0.5,dynamodb:UpdateItem=throttle@0.05,"
                                                "sqs:SendMessageBatch=error@0.1")
    monkeypatch.setenv("MEDIAGEN_LOCAL_FAULTS_SEED", "3")
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("\n".join(json.dumps(job_for(f"run {n}", n)) for n in range(6)) + "\n")
    out = io.StringIO()
    assert run_local(job_files=[jobs], template_path=synthesized_template, processing_seconds=0.3, out=out) == 0
    *per_job, summary = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["status"] for r in per_job] == ["SUCCEEDED"] * 6
    assert summary["summary"]["max_generate_accepted_per_job"] == 1
    assert summary["summary"]["fault_seed"] == 3
    # Which calls draw a fault depends on how the worker threads interleave; that some did, and were absorbed,
    # does not (tests/unit/test_local_faults.py checks each kind on its own).
    injected = summary["summary"]["injected_faults"]
    assert sum(n for kinds in injected.values() for n in kinds.values()) >= 1, summary


def test_a_sentinel_api_key_never_appears_in_run_local_output(tmp_path: Path, synthesized_template: Path) -> None:
    """Secret hygiene as a user sees it: the whole CLI run (stdout, stderr) with failures that carry URLs."""
    import os
    import subprocess
    import sys

    sentinel = "sk-SENTINEL-run-local-0b7e61d2"
    tokens = ["", "[sandbox:download-404]", "[sandbox:fail]", "[sandbox:code400]", "[sandbox:download-truncate]"]
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("\n".join(json.dumps(job_for(t, n)) for n, t in enumerate(tokens)) + "\n")
    cdk_out = synthesized_template.parent
    env = {**os.environ, "MEDIAGEN_LOCAL_API_KEY": sentinel, "PYTHONWARNINGS": "ignore"}
    script = ("import sys; from pathlib import Path; from mediagen.local.runner import run_local; "
              f"sys.exit(run_local(job_files=[Path({str(jobs)!r})], template_path=Path({str(synthesized_template)!r}),"
              " processing_seconds=0.3))")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300,
                          cwd=cdk_out)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(done.stdout.splitlines()) == len(tokens) + 1
    assert sentinel not in done.stdout and sentinel not in done.stderr
    assert '"result_expired"' in done.stdout and '"download_failed"' in done.stdout  # failures with URLs behind them
