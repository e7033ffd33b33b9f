"""`mediagen submit --wait --local` on the sample jobs: live progress, then the files on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mediagen.cli import main
from mediagen.local.runner import sample_job_files

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("via", ["queue", "api"])
def test_submit_wait_local_shows_progress_and_ends_with_the_files_on_disk(
        via: str, synthesized_template: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(p) for p in sample_job_files()]
    code = main(["submit", *files, "--wait", "--local", "--via", via, "--output-dir", str(tmp_path),
                 "--template", str(synthesized_template), "--processing-seconds", "0.5"])
    out = capsys.readouterr().out

    assert code == 0, out
    job_ids = [json.loads(Path(f).read_text())["job_id"] for f in files]
    moving = 0
    for job_id in job_ids:
        progress = [line for line in out.splitlines() if job_id in line and line.lstrip().startswith("[")]
        assert progress and progress[-1].split()[3] == "SUCCEEDED", out  # "[ 1.2s] <job> <status> ..."
        moving += len(progress) >= 2
        outputs = [p for p in (tmp_path / job_id).iterdir() if p.name.startswith("output")]  # output[-n].<ext>
        assert outputs and outputs[0].stat().st_size > 0
        manifest = json.loads((tmp_path / job_id / "result.json").read_text())
        assert manifest["status"] == "SUCCEEDED" and manifest["job_id"] == job_id
    # Jobs are seen moving, not only at the end (a job faster than one progress tick may show only its end).
    assert moving >= len(job_ids) // 2, out
    assert f"outputs downloaded to {tmp_path}/" in out


def test_submit_reports_invalid_jobs_per_field_and_sends_nothing(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"request": {"model": "nano-banan", "input": {"prompt": "x"}}}) + "\n")
    code = main(["submit", str(bad), "--stack", "does-not-matter"])
    out = capsys.readouterr().out
    assert code == 1
    assert "model: unknown model 'nano-banan'; did you mean 'nano-banana'" in out
    assert "1 invalid job(s) not sent" in out
