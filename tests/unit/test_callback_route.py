"""The callback route (functions/callback): 200 to everything it accepts, the same answer for forged and
genuine tokens, 401 (no detail) for a signed webhook that does not verify; the raw body is what is verified."""

from __future__ import annotations

import base64
import copy
import importlib.util
import json
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from mediagen.completion import arm_wakeup, new_callback_token
from mediagen.local.patches import FakeContext
from mediagen.provider.clipia import ClipiaProvider
from mediagen.provider.clipia_webhooks import signature
from tests.fakes import InMemoryJobs, RecordingWaker

SECRET = "whsec_route_0123456789abcdef"


@pytest.fixture
def route(monkeypatch: pytest.MonkeyPatch) -> tuple[ModuleType, InMemoryJobs, RecordingWaker]:
    path = Path(__file__).resolve().parents[2] / "functions" / "callback" / "app.py"
    spec = importlib.util.spec_from_file_location("callback_app_under_test", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    jobs, waker = InMemoryJobs(), RecordingWaker()
    monkeypatch.setattr(module, "completion_ports", lambda function=None: (jobs, waker))
    verifier = ClipiaProvider("clipia_live_route", base_url="http://127.0.0.1:9", webhook_secrets=(SECRET,))
    monkeypatch.setattr(module, "webhook_verifier", lambda name: verifier if name == "clipia" else None)
    return module, jobs, waker


def call(module: ModuleType, token: str, body: bytes, headers: dict[str, str] | None = None,
         *, base64_body: bool = False) -> dict[str, Any]:
    event = {"version": "2.0", "routeKey": "POST /callbacks/{token}", "pathParameters": {"token": token},
             "headers": headers or {"content-type": "application/json"},
             "body": base64.b64encode(body).decode() if base64_body else body.decode(),
             "isBase64Encoded": base64_body}
    return module.lambda_handler(event, FakeContext(function_name="callback"))


def test_genuine_forged_and_unknown_callbacks_get_the_same_200(route: Any) -> None:
    module, jobs, waker = route
    token = new_callback_token("c-1")
    jobs.create({"job_id": "c-1", "status": "SUBMITTED", "callback_token": token})
    arm_wakeup({"job_id": "c-1", "task_token": "wait-1", "wait_seconds": 20}, jobs=jobs, waker=waker)
    genuine = call(module, token, b'{"status":"success"}')
    forged = call(module, token.split(".")[0] + ".forged-secret-0123456789abcdef", b"{}")
    unknown = call(module, "bm9ib2R5.aaaaaaaaaaaaaaaaaaaaaaaa", b"{}")
    assert genuine == forged == unknown and genuine["statusCode"] == 200
    assert waker.woken == ["wait-1"]


def test_a_signed_webhook_is_verified_on_the_raw_body(route: Any) -> None:
    module, jobs, waker = route
    token = new_callback_token("c-2")
    jobs.create({"job_id": "c-2", "status": "SUBMITTED", "callback_token": token, "provider": "clipia",
                 "provider_task_id": "req-9"})
    arm_wakeup({"job_id": "c-2", "task_token": "wait-1", "wait_seconds": 20}, jobs=jobs, waker=waker)
    raw = json.dumps({"request_id": "req-9", "status": "OK", "payload": {"output": {}, "cost": 1}},
                     indent=3).encode()  # formatting is part of what is signed
    t = int(time.time())
    good = {"x-clipia-signature": f"t={t},v1={signature(SECRET, t, raw)}", "x-clipia-webhook-id": "wh-9"}
    before = copy.deepcopy(jobs.items)
    refused = call(module, token, json.dumps(json.loads(raw)).encode(), good)  # same JSON, other bytes
    assert refused["statusCode"] == 401 and "signature" not in refused["body"]
    assert jobs.items == before and waker.woken == []
    assert call(module, token, raw, good, base64_body=True)["statusCode"] == 200
    assert waker.woken == ["wait-1"]
