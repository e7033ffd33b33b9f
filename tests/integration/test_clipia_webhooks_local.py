"""Clipia's signed webhooks on the callback route, end to end on loopback: the Clipia emulator signs and
delivers to the real ``callback`` handler (behind an HTTP API stand-in that passes headers and the raw body);
the job record and the wake-ups are fakes (the embedded stack does not run Clipia jobs yet).

A verified delivery wakes the armed wait within 2 s of the emulator's completion; a delivery signed with a
wrong secret changes nothing and is answered 401, so the emulator retries it; a replayed delivery id changes
nothing."""

from __future__ import annotations

import copy
import importlib.util
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from mediagen.completion import arm_wakeup, new_callback_token
from mediagen.local.gateway import http_api_event
from mediagen.local.patches import FakeContext
from mediagen.provider.clipia import ClipiaProvider
from mediagen.sandbox.clipia import ClipiaEmulator
from tests.fakes import InMemoryJobs

KEY = "clipia_live_webhook_test"
NANO = "nano-banana-2"


class TimedWaker:
    """``TaskWaker`` that records when each wait was ended."""

    def __init__(self) -> None:
        self.woken: list[tuple[str, float]] = []

    def wake(self, task_token: str, output: dict[str, Any]) -> bool:
        self.woken.append((task_token, time.time()))
        return True


class Route:
    """``POST /callbacks/{token}`` on loopback -> functions/callback (headers and raw body passed through)."""

    def __init__(self, handler: ModuleType) -> None:
        self.answers: list[int] = []
        route = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                token = self.path.rstrip("/").rsplit("/", 1)[-1]
                event = http_api_event("POST", self.path, {"token": token}, raw.decode("utf-8"),
                                        route="POST /callbacks/{token}",
                                        headers={k.lower(): v for k, v in self.headers.items()})
                answer = handler.lambda_handler(event, FakeContext(function_name="callback"))
                route.answers.append(answer["statusCode"])
                data = answer["body"].encode()
                self.send_response(answer["statusCode"])
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/callbacks"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def setup(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ClipiaEmulator, Route, InMemoryJobs, TimedWaker]]:
    path = Path(__file__).resolve().parents[2] / "functions" / "callback" / "app.py"
    spec = importlib.util.spec_from_file_location("callback_app_clipia", path)
    assert spec and spec.loader
    handler = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(handler)
    jobs, waker = InMemoryJobs(), TimedWaker()
    with ClipiaEmulator(api_keys=[KEY], processing_seconds=1.0, webhook_secret="whsec_loopback_0123456789",
                        webhook_retry_base_seconds=0.2) as emulator:
        verifier = ClipiaProvider(KEY, base_url=emulator.base_url, webhook_secrets=(emulator.webhook_secret,))
        monkeypatch.setattr(handler, "completion_ports", lambda function=None: (jobs, waker))
        monkeypatch.setattr(handler, "webhook_verifier", lambda name: verifier if name == "clipia" else None)
        route = Route(handler)
        try:
            yield emulator, route, jobs, waker
        finally:
            route.close()
            verifier.close()


def submit(emulator: ClipiaEmulator, route: Route, jobs: InMemoryJobs, job_id: str, prompt: str) -> str:
    token = new_callback_token(job_id)
    jobs.create({"job_id": job_id, "status": "SUBMITTING", "callback_token": token, "provider": "clipia"})
    answer = httpx.post(f"{emulator.base_url}/v1/models/{NANO}", headers={"Authorization": f"Key {KEY}"},
                        json={"input": {"prompt": prompt}, "webhook_url": f"{route.base_url}/{token}"}, timeout=10)
    request_id = answer.json()["request_id"]
    jobs.transition(job_id, None, set_fields={"status": "SUBMITTED", "provider_task_id": request_id})
    return request_id


def wait_for(predicate: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_a_verified_webhook_wakes_the_waiting_job_within_two_seconds(setup: Any) -> None:
    emulator, route, jobs, waker = setup
    request_id = submit(emulator, route, jobs, "clip-ok", "a lighthouse [sandbox:webhook-duplicate=2]")
    arm_wakeup({"job_id": "clip-ok", "task_token": "wait-1", "wait_seconds": 20}, jobs=jobs, waker=waker)
    wait_for(lambda: emulator.request_status(request_id) == "COMPLETED" and waker.woken)
    wait_for(lambda: len([w for w in emulator.webhooks_sent() if w.get("status_code")]) >= 2)
    completed = [w for w in emulator.webhooks_sent() if w["kind"] == "completion"][0]
    (token, woken_at) = waker.woken[0]
    assert token == "wait-1" and woken_at - completed["timestamp"] < 2.0
    record = jobs.get("clip-ok")
    # the duplicate (same webhook id) changed nothing: one delivery remembered, counted once
    assert record["callbacks"] == 1 and len(record["webhook_deliveries"]) == 1 and route.answers == [200, 200]


def test_a_badly_signed_webhook_changes_nothing_and_is_retried(setup: Any) -> None:
    emulator, route, jobs, waker = setup
    submit(emulator, route, jobs, "clip-bad", "a harbour [sandbox:webhook-bad-signature]")
    arm_wakeup({"job_id": "clip-bad", "task_token": "wait-1", "wait_seconds": 20}, jobs=jobs, waker=waker)
    before = copy.deepcopy(jobs.items)
    wait_for(lambda: len(route.answers) >= 2)  # refused, then the emulator's retry
    assert set(route.answers) == {401} and waker.woken == [] and jobs.items == before
