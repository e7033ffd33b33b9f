"""What ``run-local`` counts per job: on the emulators, what each received (Cliprise generates, Clipia submits by
the job's Idempotency-Key, a replay creating nothing); with ``--real``, the requests the pipeline sent (it used
to count only the sandbox's, so a real run reported 0). And ``demo --real`` names the base URLs it uses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from mediagen.local.runner import provider_calls_by_job, real_api_description
from mediagen.local.stack import EmbeddedStack
from mediagen.provider.port import idempotency_key


@dataclass
class FakeClipia:
    calls: list[dict[str, Any]]

    def submit_calls(self) -> list[dict[str, Any]]:
        return self.calls


@dataclass
class FakeStack:
    real_api: bool = False
    emulator: Any = None
    clipia: Any = None
    sent: list[dict[str, Any]] = field(default_factory=list)

    provider_requests = EmbeddedStack.provider_requests


def test_a_real_run_counts_the_requests_it_sent_per_job_and_provider() -> None:
    key = idempotency_key("clipia", "job-b")
    sent = [
        {"provider": "clipia", "method": "POST", "path": "/v1/models/nano-banana-2", "body": {}, "idempotency_key": key,
         "status": None},  # the answer was lost
        {"provider": "clipia", "method": "POST", "path": "/v1/models/nano-banana-2", "body": {}, "idempotency_key": key,
         "status": 200},
        {"provider": "clipia", "method": "GET", "path": "/v1/requests/r-1/status", "body": None,
         "idempotency_key": None, "status": 200},
        {"provider": "cliprise", "method": "POST", "path": "/app/cliprise/generate",
         "body": {"callBackUrl": "https://cb.example/not-a-token"}, "idempotency_key": None, "status": 200},
    ]
    received, accepted = provider_calls_by_job(FakeStack(real_api=True, sent=sent), ["job-a", "job-b"])  # type: ignore[arg-type]
    assert received == {"job-b": 2} and accepted == {"job-b": 1}


def test_on_the_emulators_a_clipia_replay_is_received_but_not_accepted() -> None:
    key = idempotency_key("clipia", "job-c")
    calls = [{"idempotency_key": key, "request_id": "r-1", "replay": False},
             {"idempotency_key": key, "request_id": "r-1", "replay": True},
             {"idempotency_key": idempotency_key("clipia", "other"), "request_id": "r-2", "replay": False}]
    received, accepted = provider_calls_by_job(FakeStack(clipia=FakeClipia(calls)), ["job-c"])  # type: ignore[arg-type]
    assert received == {"job-c": 2} and accepted == {"job-c": 1}


def test_demo_real_names_the_base_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIAGEN_CLIPRISE_BASE_URL", "https://cliprise.staging.example/app/cliprise")
    monkeypatch.delenv("CLIPIA_API_KEY", raising=False)
    assert real_api_description() == ("the real provider APIs: Cliprise at https://cliprise.staging.example/app/cliprise, "
                                      "Clipia off (no CLIPIA_API_KEY)")
    monkeypatch.setenv("CLIPIA_API_KEY", "clipia_live_x")
    monkeypatch.setenv("MEDIAGEN_CLIPIA_BASE_URL", "https://clipia.staging.example")
    assert "Clipia at https://clipia.staging.example" in real_api_description()
    assert "clipia_live_x" not in real_api_description()


def test_base_url_flags_point_a_real_run_at_the_named_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--cliprise-base-url`` / ``--clipia-base-url`` set the variables a deployment gets from the construct."""
    from mediagen.cli import _base_urls, build_parser

    monkeypatch.delenv("MEDIAGEN_CLIPRISE_BASE_URL", raising=False)
    monkeypatch.delenv("MEDIAGEN_CLIPIA_BASE_URL", raising=False)
    args = build_parser().parse_args(["run-local", "jobs.jsonl", "--real", "--cliprise-base-url",
                                      "https://cliprise.example/app", "--clipia-base-url", "https://clipia.example"])
    _base_urls(args)
    import os

    assert os.environ["MEDIAGEN_CLIPRISE_BASE_URL"] == "https://cliprise.example/app"
    assert os.environ["MEDIAGEN_CLIPIA_BASE_URL"] == "https://clipia.example"
