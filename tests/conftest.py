"""Shared fixtures: the synthesized template (one synth per test session), AWS test credentials and AWS-side
fault injection."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from mediagen.local.faults import FaultInjector, installed

REPO = Path(__file__).resolve().parents[1]
STACK = "MediaGen-dev"


@pytest.fixture(autouse=True)
def _aws_test_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never let a test reach a real AWS account."""
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("CLIPRISE_API_KEY", raising=False)


@pytest.fixture(scope="session")
def synthesized_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthesize the CDK app (bundling skipped) into a temporary cdk.out; return the stack's template path.

    The local stack executes the state machine definition in this file, so tests run what `cdk synth` writes.
    """
    outdir = tmp_path_factory.mktemp("cdk.out")
    env = {**os.environ, "MEDIAGEN_SKIP_BUNDLING": "1", "CDK_OUTDIR": str(outdir),
           "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    subprocess.run([sys.executable, str(REPO / "infra" / "app.py")], cwd=REPO, env=env, check=True,
                   capture_output=True, timeout=300)
    path = outdir / f"{STACK}.template.json"
    assert path.exists(), f"synth wrote no {path.name}"
    return path


@pytest.fixture
def aws_faults() -> Iterator[Callable[..., FaultInjector]]:
    """Inject AWS-side faults for one test: ``aws_faults("sqs:SendMessage=throttle@0.5", seed=1)`` returns the
    injector (``injected()`` counts what it did). moto must be running (``mock_aws`` or an ``EmbeddedStack``); the
    faults end with the test. (``MEDIAGEN_LOCAL_FAULTS`` applies to every embedded stack a test starts.)"""
    with ExitStack() as stack:

        def inject(spec: str, *, seed: int = 0) -> FaultInjector:
            return stack.enter_context(installed(FaultInjector.from_spec(spec, seed=seed)))

        yield inject
