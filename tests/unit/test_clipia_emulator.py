"""The Clipia emulator, driven with the official SDK (``clipia``) and with plain httpx."""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from clipia import Clipia, ClipiaApiError
from clipia.webhooks import verify_signature

from mediagen.catalog.clipia import get_clipia_catalog
from mediagen.sandbox.clipia import ClipiaEmulator

LIVE = "clipia_live_unit_key"
TEST = "clipia_test_unit_key"
SECRET = "whsec_unit_secret"
NANO = "nano-banana-2"
I2V = "seedance-2-fast-i2v"
IMAGE_URL = "https://example.com/first-frame.png"
#: One client for the whole module: an httpx.Client is costly to make (its TLS context), and reuse
#: exercises the emulator's keep-alive connections.
HTTP = httpx.Client(timeout=10, trust_env=False)


class Receiver:
    """A webhook endpoint on loopback that records each delivery (headers and raw body) and answers
    ``fail_first`` deliveries with HTTP 500 before answering 204."""

    def __init__(self, fail_first: int = 0) -> None:
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        self.fail_first = fail_first
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 -- stdlib name
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.arrived:
                    receiver.deliveries.append(({k: v for k, v in self.headers.items()}, raw))
                    failing = len(receiver.deliveries) <= receiver.fail_first
                    receiver.arrived.notify_all()
                self.send_response(500 if failing else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/clipia"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[tuple[dict[str, str], bytes]]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.deliveries) >= count, timeout), self.deliveries
            return list(self.deliveries)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def emu() -> Iterator[ClipiaEmulator]:
    with ClipiaEmulator(api_keys=[LIVE, TEST], processing_seconds=0.2, webhook_secret=SECRET, credits=10_000,
                        webhook_retry_base_seconds=0.02, stall_seconds=30) as emulator:
        yield emulator


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def sdk(emu: ClipiaEmulator, key: str = LIVE) -> Clipia:
    return Clipia(api_key=key, base_url=emu.base_url, timeout=10)


def post(emu: ClipiaEmulator, slug: str, body: Any, *, key: str = LIVE, idem: str | None = None,
         timeout: float = 10.0, scheme: str = "Key") -> httpx.Response:
    headers = {"Authorization": f"{scheme} {key}"}
    if idem:
        headers["Idempotency-Key"] = idem
    return HTTP.post(f"{emu.base_url}/v1/models/{slug}", json=body, headers=headers, timeout=timeout)


def get(emu: ClipiaEmulator, path: str, key: str = LIVE) -> httpx.Response:
    return HTTP.get(f"{emu.base_url}{path}", headers={"Authorization": f"Key {key}"}, timeout=10)


def wait_terminal(emu: ClipiaEmulator, request_id: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = get(emu, f"/v1/requests/{request_id}")
        if answer.status_code == 200:
            return dict(answer.json())
        assert answer.status_code == 202
        time.sleep(0.02)
    raise AssertionError(f"{request_id} did not end")


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    chunks, offset = {}, 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset:offset + 4])
        kind = data[offset + 4:offset + 8]
        payload = data[offset + 8:offset + 8 + length]
        assert struct.unpack(">I", data[offset + 8 + length:offset + 12 + length])[0] == zlib.crc32(kind + payload)
        chunks[kind] = chunks.get(kind, b"") + payload
        offset += 12 + length
    assert len(zlib.decompress(chunks[b"IDAT"])) == height * (1 + 3 * width)  # the pixels decode
    return width, height


def own_hmac_ok(headers: dict[str, str], raw: bytes, secret: str = SECRET) -> bool:
    parts = dict(p.split("=", 1) for p in headers["X-Clipia-Signature"].split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + raw, hashlib.sha256).hexdigest()
    return parts["t"] == headers["X-Clipia-Timestamp"] and hmac.compare_digest(parts["v1"], expected)


# ------------------------------------------------------------------------------------------ the SDK


def test_sdk_subscribe_gets_several_real_pngs(emu: ClipiaEmulator) -> None:
    with sdk(emu) as client:
        result = client.subscribe(NANO, input={"prompt": "three cats", "num_images": 3}, poll_interval=0.02)
    assert result.status == "COMPLETED" and result.model == NANO and result.cost == 36
    images = result.output["images"]
    assert len(images) == 3
    bodies = []
    for image in images:
        assert image["content_type"] == "image/png"
        data = HTTP.get(image["url"]).content
        assert png_size(data) == (256, 256) and len(data) == image["file_size"]
        bodies.append(data)
    assert len(set(bodies)) == 3  # distinct outputs
    assert emu.balance == 10_000 - 36


def test_sdk_reads_models_estimate_and_account(emu: ClipiaEmulator) -> None:
    catalog = get_clipia_catalog()
    with sdk(emu) as client:
        listing = client.models.list()
        assert [m["slug"] for m in listing["data"]] == [m.slug for m in catalog.models()]
        assert client.models.get(I2V)["type"] == "video"
        est = client.models.estimate(NANO, {"prompt": "x", "num_images": 2, "resolution": "4K"})
        assert est.credits == catalog.estimate({"model": NANO, "input": {"prompt": "x", "num_images": 2,
                                                                         "resolution": "4K"}}) == 48
        client.submit(NANO, input={"prompt": "x"})
        account = client.account.get()
    assert account["balance"]["credits"] == 10_000 - 12
    assert account["usage_30d"] == {"requests": 1, "credits_spent": 12}


def test_status_goes_from_queue_to_progress_to_completed_and_result_is_202_meanwhile(emu: ClipiaEmulator) -> None:
    with sdk(emu) as client:
        job = client.submit(NANO, input={"prompt": "slow cat [sandbox:slow=1]"})
        assert job.status == "IN_QUEUE" and job.cost == 12
        assert job.data["cancel_url"].endswith(f"/v1/requests/{job.request_id}/cancel")
        assert client.result(job.request_id).pending is True
        seen: list[tuple[str, int | None]] = []
        while not seen or seen[-1][0] != "COMPLETED":
            status = client.status(job.request_id)
            seen.append((status.status, status.progress))
            time.sleep(0.02)
        result = client.result(job.request_id)
    states = [s for s, _ in seen]
    assert states[0] == "IN_QUEUE" and "IN_PROGRESS" in states and states[-1] == "COMPLETED"
    assert states == sorted(states, key=["IN_QUEUE", "IN_PROGRESS", "COMPLETED"].index)
    progress = [p for s, p in seen if s == "IN_PROGRESS"]
    assert all(0 <= p <= 99 for p in progress) and progress == sorted(progress)
    assert result.pending is False and result.created_at and result.completed_at
    assert emu.status_calls(job.request_id) == len(seen) and emu.result_calls(job.request_id) == 2


def test_a_video_model_serves_a_real_mp4(emu: ClipiaEmulator) -> None:
    answer = post(emu, I2V, {"input": {"prompt": "waves", "image_url": IMAGE_URL, "duration": 10}})
    assert answer.status_code == 200 and answer.json()["cost"] == 120
    result = wait_terminal(emu, answer.json()["request_id"])
    video = result["output"]["video"]
    data = HTTP.get(video["url"]).content
    assert data[4:8] == b"ftyp" and b"moov" in data and video["content_type"] == "video/mp4"


# ---------------------------------------------------------------------------------------- auth, limits


def test_both_auth_schemes_work_and_anything_else_is_401_invalid_api_key(emu: ClipiaEmulator) -> None:
    assert get(emu, "/v1/account").status_code == 200
    bearer = HTTP.get(f"{emu.base_url}/v1/account", headers={"Authorization": f"Bearer {LIVE}"})
    assert bearer.status_code == 200
    for header in ({}, {"Authorization": "Key nope"}, {"Authorization": f"Basic {LIVE}"}, {"Authorization": LIVE}):
        answer = HTTP.get(f"{emu.base_url}/v1/account", headers=header)
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "invalid_api_key"
        assert answer.headers["RateLimit-Limit"] == "600"
    with Clipia(api_key="clipia_live_wrong", base_url=emu.base_url) as client, pytest.raises(ClipiaApiError) as raised:
        client.account.get()
    assert (raised.value.status, raised.value.code) == (401, "invalid_api_key")
    assert LIVE not in json.dumps(emu.requests())


def test_ratelimit_headers_on_every_answer_and_429_past_the_limit() -> None:
    with ClipiaEmulator(api_keys=[LIVE], rate_limit_per_minute=3) as emu:
        remaining = []
        for _ in range(3):
            answer = get(emu, "/v1/models")
            assert answer.status_code == 200
            remaining.append(int(answer.headers["RateLimit-Remaining"]))
            assert answer.headers["RateLimit-Limit"] == "3" and 0 < int(answer.headers["RateLimit-Reset"]) <= 60
        refused = get(emu, "/v1/account")
    assert remaining == [2, 1, 0]
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert 0 < int(refused.headers["Retry-After"]) <= 60


def test_concurrent_generations_past_the_limit_are_429_until_one_ends() -> None:
    with ClipiaEmulator(api_keys=[LIVE], max_concurrent=1) as emu:
        first = post(emu, NANO, {"input": {"prompt": "x [sandbox:slow=30]"}}).json()["request_id"]
        refused = post(emu, NANO, {"input": {"prompt": "y"}})
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limit_exceeded"
        assert HTTP.post(f"{emu.base_url}/v1/requests/{first}/cancel",
                         headers={"Authorization": f"Key {LIVE}"}).status_code == 200
        assert post(emu, NANO, {"input": {"prompt": "y"}}).status_code == 200


# --------------------------------------------------------------------------------------- idempotency


def test_same_key_same_body_is_the_same_request_charged_once(emu: ClipiaEmulator) -> None:
    body = {"input": {"prompt": "a cat"}}
    first = post(emu, NANO, body, idem="k-1")
    again = post(emu, NANO, body, idem="k-1")
    assert first.status_code == again.status_code == 200
    assert first.json()["request_id"] == again.json()["request_id"]
    assert len(emu.accepted_requests()) == 1 and emu.charges("k-1") == 1 and emu.balance == 10_000 - 12
    assert [c["replay"] for c in emu.submit_calls()] == [False, True]
    other = post(emu, NANO, {"input": {"prompt": "a dog"}}, idem="k-1")
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reuse"
    with sdk(emu) as client:  # the SDK sends the key it is given, Bearer-authenticated
        assert client.submit(NANO, input={"prompt": "a cat"}, idempotency_key="k-1").request_id == \
            first.json()["request_id"]
    assert emu.charges("k-1") == 1


def test_a_timed_out_submit_retried_with_its_key_makes_exactly_one_request(emu: ClipiaEmulator) -> None:
    body = {"input": {"prompt": "a cat [sandbox:submit-timeout=2]"}}
    with pytest.raises(httpx.ReadTimeout):
        post(emu, NANO, body, idem="k-timeout", timeout=0.2)
    busy = post(emu, NANO, body, idem="k-timeout")  # the first call is still being answered
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "request_in_progress"
    deadline = time.monotonic() + 10
    while (answer := post(emu, NANO, body, idem="k-timeout")).status_code == 409:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert answer.status_code == 200
    assert emu.accepted_requests() == [answer.json()["request_id"]]
    assert emu.charges("k-timeout") == 1


def test_a_dropped_submit_retried_with_its_key_makes_exactly_one_request(emu: ClipiaEmulator) -> None:
    body = {"input": {"prompt": "a cat [sandbox:submit-drop]"}}
    with pytest.raises(httpx.TransportError):
        post(emu, NANO, body, idem="k-drop")
    answer = post(emu, NANO, body, idem="k-drop")
    assert answer.status_code == 200
    assert emu.accepted_requests() == [answer.json()["request_id"]] and emu.charges("k-drop") == 1
    assert [c["answered"] for c in emu.submit_calls()] == [None, 200]


# -------------------------------------------------------------------------------------------- errors


def test_fault_tokens_give_each_documented_error_in_the_one_shape(emu: ClipiaEmulator) -> None:
    def error(answer: httpx.Response) -> tuple[int, str]:
        assert set(answer.json()) == {"error"} and {"type", "code", "message"} <= set(answer.json()["error"])
        return answer.status_code, answer.json()["error"]["code"]

    twice = {"input": {"prompt": "x [sandbox:429=2]"}}
    assert error(post(emu, NANO, twice)) == (429, "rate_limit_exceeded")
    limited = post(emu, NANO, twice)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "1"
    assert post(emu, NANO, twice).status_code == 200
    assert error(post(emu, NANO, {"input": {"prompt": "x [sandbox:402]"}})) == (402, "insufficient_credits")
    assert error(post(emu, NANO, {"input": {"prompt": "x [sandbox:422]"}})) == (422, "model_input_invalid")
    assert error(post(emu, NANO, {"input": {"prompt": "x [sandbox:500]"}})) == (500, "internal_error")
    assert post(emu, NANO, {"input": {"prompt": "x [sandbox:500]"}}).status_code == 200
    assert error(post(emu, "nano-banana", {"input": {"prompt": "x"}})) == (404, "not_found")
    assert error(post(emu, NANO, {"prompt": "x"})) == (400, "invalid_request")
    assert error(get(emu, "/v1/requests/nope/status")) == (404, "not_found")
    assert len(emu.accepted_requests()) == 2  # only the two accepted submits created requests


def test_an_input_breaking_the_schema_is_422_naming_the_field(emu: ClipiaEmulator) -> None:
    answer = post(emu, NANO, {"input": {"prompt": "x", "resolution": "8K"}})
    assert answer.status_code == 422
    assert answer.json()["error"]["details"] == [
        {"field": "input.resolution", "message": "'8K' is not allowed; allowed: 1K, 2K, 4K"}]
    assert emu.accepted_requests() == []


def test_undeclared_input_keys_are_accepted_with_a_warning(emu: ClipiaEmulator) -> None:
    with sdk(emu) as client:
        job = client.submit(NANO, input={"prompt": "x", "seed": 7})
        est = client.models.estimate(NANO, {"prompt": "x", "seed": 7})
    assert [(w.code, w.parameter) for w in job.warnings] == [("unknown_parameter", "seed")]
    assert [w.parameter for w in est.warnings] == ["seed"] and est.credits == 12


def test_a_submit_dearer_than_the_balance_is_402() -> None:
    with ClipiaEmulator(api_keys=[LIVE], credits=20) as emu:
        assert post(emu, NANO, {"input": {"prompt": "x"}}).status_code == 200
        refused = post(emu, NANO, {"input": {"prompt": "x"}})
    assert refused.status_code == 402 and "balance is 8" in refused.json()["error"]["message"]


def test_status_500_then_the_truth(emu: ClipiaEmulator) -> None:
    rid = post(emu, NANO, {"input": {"prompt": "x [sandbox:status-500=2]"}}).json()["request_id"]
    assert get(emu, f"/v1/requests/{rid}/status").status_code == 500
    assert get(emu, f"/v1/requests/{rid}").status_code == 500
    assert get(emu, f"/v1/requests/{rid}/status").status_code == 200


def test_failed_and_canceled_requests_are_refunded(emu: ClipiaEmulator) -> None:
    failed = post(emu, NANO, {"input": {"prompt": "x [sandbox:fail]"}}, idem="k-fail").json()["request_id"]
    canceled = post(emu, NANO, {"input": {"prompt": "x [sandbox:canceled]"}}).json()["request_id"]
    result = wait_terminal(emu, failed)
    assert result["status"] == "FAILED" and result["output"] is None
    assert result["error"]["code"] == "GENERATION_FAILED" and result["cost"] == 0  # nothing charged in the end
    assert wait_terminal(emu, canceled)["status"] == "CANCELED"
    assert emu.balance == 10_000
    assert [e["kind"] for e in emu.ledger() if e["request_id"] == failed] == ["charge", "refund"]


def test_cancel_refunds_a_running_request_and_refuses_a_finished_one(emu: ClipiaEmulator) -> None:
    rid = post(emu, NANO, {"input": {"prompt": "x [sandbox:slow=30]"}}).json()["request_id"]
    cancel = HTTP.post(f"{emu.base_url}/v1/requests/{rid}/cancel", headers={"Authorization": f"Key {LIVE}"})
    assert cancel.status_code == 200 and cancel.json()["status"] == "CANCELED"
    assert emu.request_status(rid) == "CANCELED" and emu.balance == 10_000
    again = HTTP.post(f"{emu.base_url}/v1/requests/{rid}/cancel", headers={"Authorization": f"Key {LIVE}"})
    assert again.status_code == 400 and again.json()["error"]["code"] == "invalid_request"
    other_key = get(emu, f"/v1/requests/{rid}", key=TEST)
    assert other_key.status_code == 404  # another key's request does not exist for it


# ------------------------------------------------------------------------------------------ test keys


def test_a_test_key_completes_at_once_with_a_fixed_result_and_charges_nothing(emu: ClipiaEmulator) -> None:
    first = post(emu, NANO, {"input": {"prompt": "a cat"}}, key=TEST, idem="k-test").json()
    second = post(emu, NANO, {"input": {"prompt": "a dog", "num_images": 2}}, key=TEST).json()
    assert first["status"] == "COMPLETED" and first["cost"] == 12 and second["cost"] == 24
    assert emu.balance == 10_000 and emu.charges("k-test") == 0
    one = get(emu, f"/v1/requests/{first['request_id']}", key=TEST).json()["output"]["images"]
    two = get(emu, f"/v1/requests/{second['request_id']}", key=TEST).json()["output"]["images"]
    files = [HTTP.get(i["url"]).content for i in (*one, *two)]
    assert len(files) == 3 and len(set(files)) == 1 and png_size(files[0]) == (256, 256)


# ------------------------------------------------------------------------------------------- webhooks


def test_webhooks_are_signed_with_the_secret(emu: ClipiaEmulator, receiver: Receiver) -> None:
    rid = post(emu, NANO, {"input": {"prompt": "a cat"}, "webhook_url": receiver.url}).json()["request_id"]
    headers, raw = receiver.wait_for(1)[0]
    assert own_hmac_ok(headers, raw)
    assert verify_signature(SECRET, headers, raw)
    assert not own_hmac_ok(headers, raw, secret="whsec_other")
    assert headers["X-Clipia-Webhook-Id"]
    payload = json.loads(raw)
    assert payload["request_id"] == rid and payload["status"] == "OK"
    assert payload["payload"]["model"] == NANO and payload["payload"]["cost"] == 12
    assert png_size(HTTP.get(payload["payload"]["output"]["images"][0]["url"]).content) == (256, 256)


def test_a_failed_request_sends_a_signed_error_webhook(emu: ClipiaEmulator, receiver: Receiver) -> None:
    rid = post(emu, NANO, {"input": {"prompt": "x [sandbox:fail]"}, "webhook_url": receiver.url}).json()["request_id"]
    headers, raw = receiver.wait_for(1)[0]
    assert own_hmac_ok(headers, raw)
    assert json.loads(raw) == {"request_id": rid, "status": "ERROR",
                               "error": {"code": "GENERATION_FAILED", "message": json.loads(raw)["error"]["message"]}}


def test_a_failing_receiver_gets_retries_of_the_same_event_freshly_signed(emu: ClipiaEmulator) -> None:
    receiver = Receiver(fail_first=2)
    try:
        post(emu, NANO, {"input": {"prompt": "a cat"}, "webhook_url": receiver.url})
        deliveries = receiver.wait_for(3)
    finally:
        receiver.close()
    assert len({h["X-Clipia-Webhook-Id"] for h, _ in deliveries}) == 1
    assert all(own_hmac_ok(h, raw) for h, raw in deliveries)
    deadline = time.monotonic() + 10  # the emulator records an attempt once the receiver's answer is in
    while len(emu.webhooks_sent()) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert [w["status_code"] for w in emu.webhooks_sent()] == [500, 500, 204]


def test_webhook_faults_duplicate_bad_signature_and_early(emu: ClipiaEmulator, receiver: Receiver) -> None:
    post(emu, NANO, {"input": {"prompt": "dup [sandbox:webhook-duplicate=2]"}, "webhook_url": receiver.url})
    dup = receiver.wait_for(2)
    assert dup[0][1] == dup[1][1] and dup[0][0]["X-Clipia-Webhook-Id"] == dup[1][0]["X-Clipia-Webhook-Id"]
    post(emu, NANO, {"input": {"prompt": "forged [sandbox:webhook-bad-signature]"}, "webhook_url": receiver.url})
    headers, raw = receiver.wait_for(3)[2]
    assert not own_hmac_ok(headers, raw) and not verify_signature(SECRET, headers, raw)
    rid = post(emu, NANO, {"input": {"prompt": "early [sandbox:slow=2] [sandbox:webhook-early]"},
                           "webhook_url": receiver.url}).json()["request_id"]
    headers, raw = receiver.wait_for(4)[3]
    assert own_hmac_ok(headers, raw) and json.loads(raw)["status"] == "OK"
    assert emu.request_status(rid) in ("IN_QUEUE", "IN_PROGRESS")  # the signed claim came before the end
    assert get(emu, f"/v1/requests/{rid}").status_code == 202


def test_a_test_key_still_sends_a_signed_webhook(emu: ClipiaEmulator, receiver: Receiver) -> None:
    post(emu, NANO, {"input": {"prompt": "a cat"}, "webhook_url": receiver.url}, key=TEST)
    headers, raw = receiver.wait_for(1)[0]
    assert own_hmac_ok(headers, raw) and json.loads(raw)["status"] == "OK"


# ------------------------------------------------------------------------------- random faults, stop


def test_fault_rates_hit_a_replayable_share_of_submits() -> None:
    def failed(seed: int) -> set[str]:
        with ClipiaEmulator(api_keys=[LIVE], processing_seconds=0, fault_rates={"fail": 0.5}, seed=seed) as emu:
            ids = {f"job {n}": post(emu, NANO, {"input": {"prompt": f"job {n}"}}).json()["request_id"]
                   for n in range(16)}
            ends = {prompt: get(emu, f"/v1/requests/{rid}/status").json()["status"] for prompt, rid in ids.items()}
        assert set(ends.values()) <= {"COMPLETED", "FAILED"}  # no processing time: each ended when polled
        return {prompt for prompt, status in ends.items() if status == "FAILED"}

    first = failed(7)
    assert 0 < len(first) < 16
    assert failed(7) == first
    with pytest.raises(ValueError, match="unknown Clipia sandbox token"):
        ClipiaEmulator(api_keys=[LIVE], fault_rates={"generate-500": 0.1})


def test_stop_cuts_a_held_submit_answer_short() -> None:
    emu = ClipiaEmulator(api_keys=[LIVE], stall_seconds=60).start()
    outcome: list[BaseException | int] = []

    def submit() -> None:
        try:
            outcome.append(post(emu, NANO, {"input": {"prompt": "x [sandbox:submit-timeout]"}}, timeout=20).status_code)
        except httpx.HTTPError as exc:
            outcome.append(exc)

    client = threading.Thread(target=submit)
    client.start()
    deadline = time.monotonic() + 10
    while not emu.accepted_requests():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    started = time.monotonic()
    emu.stop()
    client.join(timeout=10)
    assert time.monotonic() - started < 5
    assert len(outcome) == 1 and isinstance(outcome[0], httpx.TransportError)
    assert emu.submit_calls()[0]["answered"] is None


def test_a_model_list_in_the_parameters_shape_serves_a_speech_model_with_real_wav() -> None:
    listing = {"data": [{"slug": "tts-1", "type": "speech", "name": "TTS", "capabilities": ["text-to-speech"],
                         "pricing": {"credits": 3},
                         "input_schema": {"parameters": [{"name": "prompt", "type": "string", "required": True,
                                                          "maxLength": 50}]}}]}
    with ClipiaEmulator(api_keys=[LIVE], processing_seconds=0, models=listing) as emu, sdk(emu) as client:
        assert client.models.get("tts-1")["input_schema"] == listing["data"][0]["input_schema"]  # served as given
        with pytest.raises(ClipiaApiError) as raised:
            client.submit("tts-1", input={"prompt": "x" * 51})
        assert raised.value.code == "model_input_invalid"
        result = client.subscribe("tts-1", input={"prompt": "hello"}, poll_interval=0.02)
        audio = result.output["audio"]
        data = HTTP.get(audio["url"]).content
    assert result.cost == 3 and audio["content_type"] == "audio/wav"
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
