"""`mediagen local up` in one process; `submit`, `status`, `jobs`, `redrive` with `--local` from another, as a
team would use them against a deployed stack."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mediagen.cli import main

pytestmark = pytest.mark.slow
SAMPLE = Path(__file__).resolve().parents[2] / "events" / "jobs" / "01-text-to-image-nano-banana.json"


def test_local_commands_work_against_a_running_local_stack(synthesized_template: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "local.json"
    server = subprocess.Popen(
        [sys.executable, "-m", "mediagen.cli", "local", "up", "--state-file", str(state), "--template",
         str(synthesized_template), "--processing-seconds", "0.5"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(SAMPLE.parents[2]), str(SAMPLE.parents[2] / "shared")])})
    try:
        deadline = time.monotonic() + 120
        while not state.exists():
            assert server.poll() is None, server.stdout.read() if server.stdout else ""
            assert time.monotonic() < deadline, "local stack did not come up"
            time.sleep(0.2)
        flags = ["--local", "--state-file", str(state)]

        assert main(["submit", str(SAMPLE), *flags, "--wait", "--output-dir", str(tmp_path / "out")]) == 0
        out = capsys.readouterr().out
        assert "demo-nano-banana-t2i" in out and "SUCCEEDED" in out
        assert (tmp_path / "out" / "demo-nano-banana-t2i" / "result.json").exists()

        assert main(["status", "demo-nano-banana-t2i", *flags, "--json"]) == 0
        record = json.loads(capsys.readouterr().out)
        assert record["status"] == "SUCCEEDED" and record["outputs"][0]["url"].startswith("http")
        assert "callback_token" not in record

        assert main(["jobs", *flags, "--status", "SUCCEEDED"]) == 0
        assert "demo-nano-banana-t2i" in capsys.readouterr().out

        assert main(["redrive", *flags]) == 0
        assert "0 message(s) moved" in capsys.readouterr().out
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert not state.exists()  # removed on the way out


def test_local_commands_without_a_running_local_stack_say_how_to_start_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "x", "--local", "--state-file", str(tmp_path / "none.json")]) == 2
    assert "mediagen local up" in capsys.readouterr().err
