"""The sandbox emulator answers as the documents say Cliprise answers (documents 000, 002, 003).

Everything runs over loopback with httpx; waits are bounded polling loops, never fixed sleeps.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import wave
import zlib
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import httpx
import pytest

from mediagen.sandbox import FAIL_MESSAGE, PUBLIC_HOST, Emulator, default_modality_of, parse_faults
from mediagen.sandbox.media import png_bytes

KEY = "sk-sandbox-test-0123456789"
OTHER_KEY = "sk-sandbox-other-9876543210"
PROCESSING = 0.2
#: Where the processing time does not matter to a test, the job asks for less with a fault token.
FAST = "[sandbox:slow=0.01]"
TIMEOUT = 5.0
T = TypeVar("T")


# ------------------------------------------------------------------------------------ helpers


def wait_for(predicate: Callable[[], T], timeout: float = TIMEOUT, interval: float = 0.01) -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(interval)


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(api_keys=[KEY, OTHER_KEY], processing_seconds=PROCESSING,
                  callback_retry_base_seconds=0.02) as emu:
        yield emu


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, headers={"Host": PUBLIC_HOST}, timeout=TIMEOUT) as c:
        yield c


def generate(client: httpx.Client, emu: Emulator, body: Any, key: str | None = KEY) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(f"{emu.base_url}/generate", content=content,
                       headers={**headers, "Content-Type": "application/json"})


def submit(client: httpx.Client, emu: Emulator, body: dict[str, Any], key: str = KEY) -> str:
    response = generate(client, emu, body, key)
    assert response.status_code == 200, response.text
    return str(response.json()[0]["taskId"])


def status(client: httpx.Client, emu: Emulator, task_id: str, key: str = KEY,
           download: bool = False) -> httpx.Response:
    params = {"apiKey": key, "taskId": task_id}
    if download:
        params["download"] = "true"
    return client.get(f"{emu.base_url}/status", params=params)


def wait_done(client: httpx.Client, emu: Emulator, task_id: str) -> httpx.Response:
    """Poll status (bounded) until it is no longer HTTP 300 processing."""
    def check() -> httpx.Response | None:
        response = status(client, emu, task_id)
        return None if response.status_code == 300 else response
    done = wait_for(check)
    assert done is not None
    return done


def download(client: httpx.Client, emu: Emulator, body: dict[str, Any]) -> httpx.Response:
    task_id = submit(client, emu, body)
    done = wait_done(client, emu, task_id)
    assert done.status_code == 200, done.text
    response = client.get(done.json()[0]["fileURL"])
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(response.content))
    return response


def image_job(prompt: str, **extra: Any) -> dict[str, Any]:
    return {"model": "nano-banana", "input": {"prompt": prompt}, **extra}


class Receiver:
    """A tiny callback endpoint: records JSON payloads, answers with scripted status codes (then 200)."""

    def __init__(self, answers: list[int] | None = None) -> None:
        self.payloads: list[dict[str, Any]] = []
        self.answers = list(answers or [])
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.payloads.append(json.loads(data))
                    code = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/callbacks/tok-abc"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def received(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.payloads)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def sent_for(emu: Emulator, task_id: str) -> list[dict[str, Any]]:
    return [c for c in emu.callbacks_sent() if c["task_id"] == task_id]


# ------------------------------------------------------------------------------------ host + auth


def test_wrong_host_gets_400_with_empty_body_on_both_endpoints(emulator: Emulator) -> None:
    with httpx.Client(trust_env=False, timeout=TIMEOUT) as plain:  # Host: 127.0.0.1:<port>
        gen = plain.post(f"{emulator.base_url}/generate", json=image_job("x"),
                         headers={"Authorization": f"Bearer {KEY}"})
        stat = plain.get(f"{emulator.base_url}/status", params={"apiKey": KEY, "taskId": "0" * 32})
    for response in (gen, stat):
        assert response.status_code == 400
        assert response.content == b""
    assert emulator.generate_calls() == []


def test_rejected_body_does_not_poison_the_kept_alive_connection(emulator: Emulator,
                                                                 client: httpx.Client) -> None:
    wrong = client.post(f"{emulator.base_url}/generate", json=image_job("x" * 5000),
                        headers={"Host": "example.com", "Authorization": f"Bearer {KEY}"})
    assert wrong.status_code == 400
    assert generate(client, emulator, image_job("after")).status_code == 200


@pytest.mark.parametrize("key", [None, "sk-wrong-key-000000"])
def test_generate_without_a_valid_bearer_key_is_401(emulator: Emulator, client: httpx.Client,
                                                    key: str | None) -> None:
    response = generate(client, emulator, image_job("a cat"), key=key)
    assert response.status_code == 401
    assert response.json() == {
        "code": 401, "error": {"code": "invalid_api_key", "message": "Missing or invalid API key."}
    }
    assert emulator.generate_calls() == []


def test_status_checks_key_and_task(emulator: Emulator, client: httpx.Client) -> None:
    task_id = submit(client, emulator, image_job("a cat"))
    wrong_key = status(client, emulator, task_id, key="sk-wrong-key-000000")
    assert (wrong_key.status_code, wrong_key.json()) == (400, {"msg": "invalid_api_key"})
    no_key = client.get(f"{emulator.base_url}/status", params={"taskId": task_id})
    assert (no_key.status_code, no_key.json()) == (400, {"msg": "invalid_api_key"})
    unknown = status(client, emulator, "f" * 32)
    assert (unknown.status_code, unknown.json()) == (400, {"msg": "invalid_taskId"})
    # A valid key cannot read another key's task.
    foreign = status(client, emulator, task_id, key=OTHER_KEY)
    assert (foreign.status_code, foreign.json()) == (400, {"msg": "invalid_taskId"})


# ------------------------------------------------------------------------------------ generate


def test_accepted_generate_returns_documented_array_and_is_recorded(emulator: Emulator,
                                                                    client: httpx.Client) -> None:
    body = image_job("a lighthouse", callBackUrl="http://127.0.0.1:9/cb")
    response = generate(client, emulator, body)
    assert response.status_code == 200
    payload = response.json()
    assert isinstance(payload, list) and len(payload) == 1
    assert payload[0]["code"] == 200
    assert re.fullmatch(r"[0-9a-f]{32}", payload[0]["taskId"])

    calls = emulator.generate_calls()
    assert [(c["task_id"], c["model"], c["body"], c["answered"], c["faults"]) for c in calls] == [
        (payload[0]["taskId"], "nano-banana", body, 200, [])
    ]
    assert calls[0]["received_at"].endswith("Z")
    second = submit(client, emulator, image_job("another"))
    assert second != payload[0]["taskId"]
    assert len(emulator.generate_calls()) == 2


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"{not json", {"code": 400, "msg": "invalid JSON body", "data": None}),
        (b'["model", "nano-banana"]', {"code": 400, "msg": "invalid JSON body", "data": None}),
        (b'{"input": {"prompt": "x"}}', {"code": 400, "msg": "This field is required", "data": None}),
        (b'{"model": "", "input": {}}', {"code": 400, "msg": "This field is required", "data": None}),
    ],
)
def test_application_errors_come_with_http_200(emulator: Emulator, client: httpx.Client, content: bytes,
                                               expected: dict[str, Any]) -> None:
    response = generate(client, emulator, content)
    assert response.status_code == 200
    assert response.json() == expected
    # The call is on record (it reached the provider), but no task was created.
    [call] = emulator.generate_calls()
    assert (call["task_id"], call["answered"], call["faults"]) == (None, 200, [])


def test_unknown_model_is_invalid_model_id(client: httpx.Client) -> None:
    catalog = {"nano-banana": "image"}
    with Emulator(api_keys=[KEY], modality_of=catalog.get) as emu:
        response = generate(client, emu, {"model": "nano-banana-9000", "input": {"prompt": "x"}})
        assert (response.status_code, response.json()) == (400, {"msg": "invalid_model_id"})
        assert generate(client, emu, image_job("x")).status_code == 200
        calls = emu.generate_calls()
        assert [(c["model"], c["answered"]) for c in calls] == [("nano-banana-9000", 400), ("nano-banana", 200)]
        assert calls[0]["task_id"] is None and calls[1]["task_id"]


@pytest.mark.parametrize(
    ("model", "modality"),
    [
        ("elevenlabs-v3-dialogue", "audio"),
        ("kling-3", "video"),
        ("wan-2-6", "video"),
        ("veo-3-fast", "video"),
        ("grok-imagine-video", "video"),
        ("grok-imagine", "image"),
        ("flux-kontext-pro", "image"),
        ("Not A Model!", None),
    ],
)
def test_default_modality_heuristic(model: str, modality: str | None) -> None:
    assert default_modality_of(model) == modality


# ------------------------------------------------------------------------------------ status lifecycle


def test_task_stays_processing_until_its_time_also_for_download(emulator: Emulator,
                                                                 client: httpx.Client) -> None:
    task_id = submit(client, emulator, image_job("slow one [sandbox:slow=30]"))
    for download_flag in (False, True):
        response = status(client, emulator, task_id, download=download_flag)
        assert response.status_code == 300
        assert response.json() == [{"status": "processing"}]
    assert emulator.task_state(task_id) == "processing"


def test_processing_then_success_with_documented_file_url(emulator: Emulator, client: httpx.Client) -> None:
    started = time.monotonic()
    task_id = submit(client, emulator, image_job("a cat"))
    done = wait_done(client, emulator, task_id)
    assert time.monotonic() - started >= PROCESSING
    assert done.status_code == 200
    assert done.json() == [{
        "status": "success",
        "fileURL": f"{emulator.base_url}/status?apiKey={KEY}&taskId={task_id}&download=true",
    }]
    assert emulator.status_calls(task_id) >= 1
    assert emulator.download_calls(task_id) == 0


def test_fail_token_ends_the_task_with_failmsg(emulator: Emulator, client: httpx.Client) -> None:
    task_id = submit(client, emulator, image_job("a cat [sandbox:fail]"))
    done = wait_done(client, emulator, task_id)
    assert (done.status_code, done.json()) == (400, {"status": "fail", "failMsg": FAIL_MESSAGE})
    again = status(client, emulator, task_id, download=True)
    assert (again.status_code, again.json()) == (400, {"status": "fail", "failMsg": FAIL_MESSAGE})


@pytest.mark.parametrize(
    "body",
    [
        # root-only model: prompt at the body root ("Input Types" [002:45-62])
        {"model": "gpt-image-1", "prompt": "poster [sandbox:fail]"},
        # dialogue model: texts in input.dialogue[*].text ("Elevenlabs V3 Dialogue" [000:11214])
        {"model": "elevenlabs-v3-dialogue",
         "input": {"dialogue": [{"text": "Hello", "voice": "Adam"},
                                {"text": "[sandbox:fail]", "voice": "Brian"}]}},
        # text models: input.text
        {"model": "elevenlabs-tts", "input": {"text": "say it [sandbox:fail]", "voice": "Rachel"}},
    ],
)
def test_fault_tokens_are_read_wherever_the_model_puts_its_text(emulator: Emulator, client: httpx.Client,
                                                                body: dict[str, Any]) -> None:
    task_id = submit(client, emulator, body)
    assert wait_done(client, emulator, task_id).json()["failMsg"] == FAIL_MESSAGE


# ------------------------------------------------------------------------------------ media


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, payload = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + payload)
        chunks.append((kind, payload))
        pos += 12 + length
    return chunks


def test_image_download_is_a_decodable_png_that_differs_per_prompt(emulator: Emulator,
                                                                   client: httpx.Client) -> None:
    response = download(client, emulator, image_job(f"a red fox {FAST}"))
    assert response.headers["content-type"] == "image/png"
    assert re.fullmatch(r'attachment; filename="[0-9a-f]{32}\.png"', response.headers["content-disposition"])
    chunks = png_chunks(response.content)
    kinds = [k for k, _ in chunks]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (width, height, depth, colour, interlace) == (256, 256, 8, 2, 0)
    pixels = zlib.decompress(b"".join(p for k, p in chunks if k == b"IDAT"))
    assert len(pixels) == height * (1 + width * 3)
    assert png_bytes(f"a red fox {FAST}") == response.content
    assert png_bytes("a blue whale") != response.content


def mp4_boxes(data: bytes) -> list[tuple[int, bytes]]:
    boxes, pos = [], 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if size == 1:
            (size,) = struct.unpack(">Q", data[pos + 8:pos + 16])
        assert size >= 8
        boxes.append((pos, kind))
        pos += size
    assert pos == len(data)
    return boxes


def test_video_download_is_an_mp4_with_ftyp_and_moov(emulator: Emulator, client: httpx.Client) -> None:
    response = download(client, emulator, {"model": "kling-3", "input": {"prompt": f"waves {FAST}"}})
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["content-disposition"].endswith('.mp4"')
    data = response.content
    assert data[4:8] == b"ftyp"
    kinds = [k for _, k in mp4_boxes(data)]
    assert b"moov" in kinds and b"mdat" in kinds
    assert kinds.index(b"moov") < kinds.index(b"mdat")  # faststart: playable while streaming
    assert b"avc1" in data  # H.264 sample entry


def test_audio_download_is_a_wav_whose_pitch_depends_on_the_text(emulator: Emulator,
                                                                 client: httpx.Client) -> None:
    first = download(client, emulator, {"model": "elevenlabs-tts", "input": {"text": f"Hello {FAST}"}})
    assert first.headers["content-type"] == "audio/wav"
    assert first.headers["content-disposition"].endswith('.wav"')
    with wave.open(io.BytesIO(first.content)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth()) == (1, 2)
        seconds = wav.getnframes() / wav.getframerate()
        frames = wav.readframes(wav.getnframes())
    assert 1.0 <= seconds <= 2.0
    assert any(frames)  # not silence
    second = download(client, emulator, {"model": "elevenlabs-tts", "input": {"text": f"Goodbye {FAST}"}})
    assert second.content != first.content


def test_audio_asking_for_mp3_gets_an_mp3(emulator: Emulator, client: httpx.Client) -> None:
    response = download(client, emulator, {"model": "elevenlabs-tts",
                                           "input": {"text": FAST, "output_format": "mp3_44100_128"}})
    assert response.headers["content-type"] == "audio/mpeg"
    assert response.headers["content-disposition"].endswith('.mp3"')
    data = response.content
    assert data[:3] == b"ID3" or (data[0] == 0xFF and data[1] & 0xE0 == 0xE0)


def test_downloads_are_counted_apart_from_polls(emulator: Emulator, client: httpx.Client) -> None:
    task_id = submit(client, emulator, image_job(f"count me {FAST}"))
    wait_done(client, emulator, task_id)
    polls = emulator.status_calls(task_id)
    status(client, emulator, task_id, download=True)
    assert (emulator.status_calls(task_id), emulator.download_calls(task_id)) == (polls, 1)


# ------------------------------------------------------------------------------------ callbacks


def test_success_callback_fires_once_without_any_polling(emulator: Emulator, client: httpx.Client,
                                                         receiver: Receiver) -> None:
    task_id = submit(client, emulator, image_job(f"a cat {FAST}", callBackUrl=receiver.url))
    wait_for(lambda: sent_for(emulator, task_id))  # delivery finished (2xx, so no retry follows)
    payloads = receiver.received()
    assert len(payloads) == 1
    payload = payloads[0]
    assert set(payload) == {"taskId", "status", "model", "fileURL", "createdAt", "completedAt"}
    assert (payload["taskId"], payload["status"], payload["model"]) == (task_id, "success", "nano-banana")
    for stamp in (payload["createdAt"], payload["completedAt"]):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp)
    assert payload["createdAt"] <= payload["completedAt"]
    # The callback's fileURL is the status endpoint's, and it downloads the result.
    assert payload["fileURL"] == status(client, emulator, task_id).json()[0]["fileURL"]
    assert client.get(payload["fileURL"]).headers["content-type"] == "image/png"
    assert emulator.status_calls(task_id) == 1  # the one poll above, after the callback
    [record] = sent_for(emulator, task_id)
    assert (record["status_code"], record["attempt"], record["url"]) == (200, 1, receiver.url)
    assert "error" not in record


def test_failure_callback_carries_the_documented_error(emulator: Emulator, client: httpx.Client,
                                                       receiver: Receiver) -> None:
    task_id = submit(client, emulator, image_job(f"[sandbox:fail] {FAST}", callBackUrl=receiver.url))
    wait_for(lambda: sent_for(emulator, task_id))
    assert receiver.received() == [{
        "taskId": task_id, "status": "failure",
        "error": {"code": "provider_error", "message": FAIL_MESSAGE},
    }]


def test_no_callback_token_suppresses_the_callback(emulator: Emulator, client: httpx.Client,
                                                   receiver: Receiver) -> None:
    silent = submit(client, emulator, image_job(f"quiet [sandbox:no-callback] {FAST}",
                                               callBackUrl=receiver.url))
    loud = submit(client, emulator, image_job("loud", callBackUrl=receiver.url))
    # The silent task ends first; once the later task's callback is delivered, the silent one would be too.
    wait_for(lambda: sent_for(emulator, loud))
    assert emulator.task_state(silent) == "success"
    assert [p["taskId"] for p in receiver.received()] == [loud]
    assert sent_for(emulator, silent) == []


def test_disabled_callbacks_are_never_sent(client: httpx.Client, receiver: Receiver) -> None:
    with Emulator(api_keys=[KEY], processing_seconds=0.0, send_callbacks=False) as emu:
        task_id = submit(client, emu, image_job("x", callBackUrl=receiver.url))
        assert wait_done(client, emu, task_id).status_code == 200
        wait_for(lambda: emu.task_state(task_id) == "success")
    assert emu.callbacks_sent() == []
    assert receiver.received() == []


def test_callback_is_retried_after_a_non_2xx_answer(emulator: Emulator, client: httpx.Client) -> None:
    flaky = Receiver(answers=[503])
    try:
        task_id = submit(client, emulator, image_job(f"retry me {FAST}", callBackUrl=flaky.url))
        wait_for(lambda: len(sent_for(emulator, task_id)) == 2)
        attempts = sent_for(emulator, task_id)
        assert [(a["attempt"], a["status_code"]) for a in attempts] == [(1, 503), (2, 200)]
        assert "error" in attempts[0] and "error" not in attempts[1]
        assert [p["taskId"] for p in flaky.received()] == [task_id, task_id]
    finally:
        flaky.close()


def test_unreachable_callback_gives_up_after_three_retries(emulator: Emulator, client: httpx.Client) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{sock.getsockname()[1]}/cb"
    task_id = submit(client, emulator, image_job(f"nobody home {FAST}", callBackUrl=dead_url))
    wait_for(lambda: len(sent_for(emulator, task_id)) >= 4)
    wait_for(lambda: not [t for t in threading.enumerate() if t.name.startswith("sandbox-callback")])
    attempts = sent_for(emulator, task_id)
    assert [a["attempt"] for a in attempts] == [1, 2, 3, 4]  # 1 try + 3 retries, then it gives up
    assert all(a["status_code"] is None and a["error"] for a in attempts)


# ------------------------------------------------------------------------------------ secrets, lifecycle


def test_api_key_never_appears_in_request_log_callback_records_or_repr(emulator: Emulator,
                                                                       client: httpx.Client,
                                                                       receiver: Receiver) -> None:
    task_id = submit(client, emulator, image_job(f"x {FAST}", callBackUrl=receiver.url))
    wait_done(client, emulator, task_id)
    wait_for(lambda: sent_for(emulator, task_id))
    # a request is logged once its answer is written, so the last one may land a moment after the client has it
    wait_for(lambda: ("GET", 200) in {(r["method"], r["status"]) for r in emulator.requests()})
    log = emulator.requests()
    assert {(r["method"], r["status"]) for r in log} >= {("POST", 200), ("GET", 200)}
    assert all(r["task_id"] == task_id for r in log)
    assert "apiKey=***" in log[-1]["path"]
    everything = json.dumps([log, emulator.callbacks_sent(), emulator.generate_calls()]) + repr(emulator)
    assert KEY not in everything


def test_stop_releases_the_port_and_its_threads(client: httpx.Client, receiver: Receiver) -> None:
    emu = Emulator(api_keys=[KEY], processing_seconds=60).start()
    submit(client, emu, image_job("pending", callBackUrl=receiver.url))
    url = emu.base_url
    emu.stop()
    emu.stop()  # idempotent
    with pytest.raises(httpx.ConnectError):
        client.get(f"{url}/status", params={"apiKey": KEY, "taskId": "0" * 32})
    assert not [t for t in threading.enumerate() if t.name.startswith("sandbox-")]


def test_serve_prints_base_url_and_redacted_request_lines() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    code = ("import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "  # Ctrl-C works even if
            "from mediagen.sandbox import serve; "  # the test runner was started with SIGINT ignored
            f"serve(host='127.0.0.1', port=0, processing_seconds=0.1, api_key={KEY!r})")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        base_url = re.search(r"http://127\.0\.0\.1:\d+/app/cliprise", banner)
        assert base_url, banner
        with httpx.Client(trust_env=False, headers={"Host": PUBLIC_HOST}, timeout=TIMEOUT) as c:
            c.get(f"{base_url.group(0)}/status", params={"apiKey": KEY, "taskId": "f" * 32})
        line = proc.stdout.readline()
        assert line.startswith("GET /app/cliprise/status?apiKey=***&taskId=") and "-> 400" in line
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)  # a fresh interpreter on a loaded machine: be patient
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert KEY not in banner + line + out + err


# ------------------------------------------------------------------------------------ fault parser


def test_fault_parser_combines_tokens_and_ignores_what_it_does_not_know() -> None:
    faults = parse_faults("a cat [SANDBOX:Slow=1.5] [sandbox:no-callback] [sandbox:bogus] [sandbox:slow=-1]")
    assert (faults.fail, faults.slow_seconds, faults.no_callback) == (False, 1.5, True)
    assert faults.tokens == ("slow=1.5", "no-callback")
    assert faults.ignored == ("[sandbox:bogus]", "[sandbox:slow=-1]")
    assert parse_faults("plain [brackets] and [sandbox:fail=yes]").fail is False
    assert parse_faults("[sandbox:fail]").fail is True
