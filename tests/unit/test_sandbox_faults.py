"""The sandbox emulator's fault tokens, callback behaviours, sized and zip results (issues 4 and 5).

Each test drives the emulator over loopback with httpx and checks what a client of the provider would
see. Waits are bounded polling loops; the few timing assertions have wide margins.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import struct
import subprocess
import sys
import threading
import time
import tracemalloc
import wave
import zipfile
import zlib
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from mediagen.sandbox import (
    PUBLIC_HOST,
    TOKENS,
    Emulator,
    parse_callback_mode,
    parse_fault_rate,
    parse_fault_rates,
    parse_faults,
)
from mediagen.sandbox.faults import ALWAYS, draw_faults, parse_size
from mediagen.sandbox.media import (
    PNG_PAD_CHUNK,
    render_media,
    sized_mp4,
    sized_png,
    sized_wav,
    wav_bytes,
)
from mediagen.sandbox.server import forged_callback_url
from tests.unit.test_sandbox import (
    FAST,
    KEY,
    TIMEOUT,
    download,
    generate,
    image_job,
    mp4_boxes,
    png_chunks,
    status,
    submit,
    wait_done,
    wait_for,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "sandbox.md"


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(api_keys=[KEY], processing_seconds=0.2, callback_retry_base_seconds=0.02) as emu:
        yield emu


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, headers={"Host": PUBLIC_HOST}, timeout=TIMEOUT) as c:
        yield c


def calls_for(emu: Emulator, marker: str) -> list[dict[str, Any]]:
    """The generate calls whose prompt contains ``marker`` (how a caller maps calls to its job)."""
    return [c for c in emu.generate_calls() if marker in json.dumps(c["body"])]


def file_url(client: httpx.Client, emu: Emulator, task_id: str) -> str:
    done = wait_done(client, emu, task_id)
    assert done.status_code == 200, done.text
    return str(done.json()[0]["fileURL"])


# ------------------------------------------------------------------------------------ token parsing


def test_every_token_parses_and_bad_values_are_ignored_not_fatal() -> None:
    faults = parse_faults(
        "x [sandbox:callback-delay=1.5] [sandbox:callback-duplicate=3] [sandbox:callback-late=2]"
        " [sandbox:callback-early] [sandbox:callback-forged] [sandbox:size=64MiB] [sandbox:zip]"
        " [sandbox:generate-500] [sandbox:generate-timeout] [sandbox:429=2] [sandbox:code400]"
        " [sandbox:empty-400] [sandbox:status-500=4] [sandbox:download-truncate] [sandbox:download-404]"
    )
    assert faults.ignored == ()
    assert (faults.callback_delay, faults.callback_duplicate, faults.callback_late) == (1.5, 3, 2.0)
    assert faults.callback_early and faults.callback_forged and faults.zip
    assert faults.size == 64 * 2**20
    assert faults.generate_500 and faults.generate_timeout and faults.code400 and faults.empty_400
    assert (faults.rate_limit, faults.status_500, faults.download_truncate) == (2, 4, ALWAYS)
    assert faults.download_404
    # Defaults fill in optional values; malformed ones are ignored (a prompt must never break).
    lenient = parse_faults("[sandbox:429] [sandbox:status-500=0] [sandbox:size=lots] [sandbox:zip=1]"
                           " [sandbox:download-truncate=2] [sandbox:callback-duplicate=1000]")
    assert (lenient.rate_limit, lenient.status_500, lenient.size, lenient.zip) == (1, 0, None, False)
    assert lenient.download_truncate == 2
    assert lenient.tokens == ("429=1", "download-truncate=2")
    assert len(lenient.ignored) == 4


@pytest.mark.parametrize(
    ("text", "size"),
    [("1234", 1234), ("2K", 2000), ("2k", 2000), ("3M", 3_000_000), ("1G", 10**9), ("1.5M", 1_500_000),
     ("5KiB", 5120), ("64MiB", 64 * 2**20), ("1GiB", 2**30), ("2MB", 2_000_000), ("0", 0)],
)
def test_size_accepts_decimal_and_binary_suffixes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", [None, "", "-1", "1.5", "12X", "1TiB5", "2TiB", "99999999999999999"])
def test_size_rejects_malformed_or_huge_values(text: str | None) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


def test_fault_rate_specs_and_callback_modes_are_normalised_or_refused() -> None:
    assert parse_fault_rate("fail=0.05") == ("fail", 0.05)
    assert parse_fault_rate("status-500:2=0.1") == ("status-500=2", 0.1)
    assert parse_fault_rate("429=1") == ("429=1", 1.0)  # the default count, rate 1
    assert parse_fault_rates({"Slow:30": 0.2, "generate-500": 0}) == {"slow=30": 0.2, "generate-500": 0.0}
    assert parse_fault_rates(["fail=0.5", "zip=1"]) == {"fail": 0.5, "zip": 1.0}
    for bad in ("fail", "fail=2", "fail=nan", "bogus=0.1", "slow=0.1", "size:huge=0.1", "=0.1"):
        with pytest.raises(ValueError):
            parse_fault_rate(bad)
    assert parse_callback_mode("normal") == ()
    assert parse_callback_mode("delay:2, duplicate:3") == ("callback-delay=2", "callback-duplicate=3")
    assert parse_callback_mode("none") == ("no-callback",)
    assert parse_callback_mode("late:1,early,forged") == ("callback-late=1", "callback-early", "callback-forged")
    for bad in ("sometimes", "delay:soon", "duplicate:0", ""):
        with pytest.raises(ValueError):
            parse_callback_mode(bad)
    with pytest.raises(ValueError):
        Emulator(api_keys=[KEY], callback_mode="loud")
    with pytest.raises(ValueError):
        Emulator(api_keys=[KEY], fault_rates={"fail": 1.5})


def test_fault_draws_are_deterministic_per_seed_and_follow_the_rate() -> None:
    rates = {"fail": 0.3, "status-500=1": 0.0, "zip": 1.0}
    draws = [draw_faults(rates, 42, f"prompt {i}") for i in range(2000)]
    assert draws == [draw_faults(rates, 42, f"prompt {i}") for i in range(2000)]
    assert draws != [draw_faults(rates, 43, f"prompt {i}") for i in range(2000)]
    failed = sum("fail" in d for d in draws)
    assert 480 <= failed <= 720  # 600 expected; far outside this only if the draw is broken
    assert all("zip" in d and "status-500=1" not in d for d in draws)


def test_docs_describe_every_token() -> None:
    text = DOCS.read_text()
    for name in TOKENS:
        assert f"[sandbox:{name}" in text, name
    assert "--fault" in text and "--callback-mode" in text


# ------------------------------------------------------------------------------------ generate faults


def test_429_token_refuses_the_first_n_requests_with_that_text(emulator: Emulator, client: httpx.Client) -> None:
    job = image_job(f"busy [sandbox:429=2] {FAST}")
    first, second, third = (generate(client, emulator, job) for _ in range(3))
    for refused in (first, second):
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "1"
        assert refused.json() == {"code": 429, "error": {"code": "rate_limit_exceeded",
                                                         "message": "Too many requests. Retry after cooldown."}}
    assert third.status_code == 200 and third.json()[0]["code"] == 200
    # Another prompt with the same token has its own count.
    assert generate(client, emulator, image_job("other [sandbox:429=1]")).status_code == 429
    calls = calls_for(emulator, "busy")
    assert [(c["answered"], c["faults"], c["task_id"] is None) for c in calls] == [
        (429, ["429=2", "slow=0.01"], True), (429, ["429=2", "slow=0.01"], True),
        (200, ["429=2", "slow=0.01"], False),
    ]
    assert all(c["body"] == job for c in calls)


def test_code400_and_empty_400_refuse_without_creating_a_task(emulator: Emulator, client: httpx.Client) -> None:
    app_error = generate(client, emulator, image_job("[sandbox:code400]"))
    assert app_error.status_code == 200
    assert app_error.json() == {"code": 400, "msg": "This field is required", "data": None}
    empty = generate(client, emulator, image_job("[sandbox:empty-400]"))
    assert (empty.status_code, empty.content) == (400, b"")
    calls = emulator.generate_calls()
    assert [(c["answered"], c["faults"], c["task_id"]) for c in calls] == [
        (200, ["code400"], None), (400, ["empty-400"], None),
    ]


def test_generate_500_creates_the_task_but_answers_500(emulator: Emulator, client: httpx.Client) -> None:
    response = generate(client, emulator, image_job(f"[sandbox:generate-500] {FAST}"))
    assert response.status_code == 500
    assert response.json() == {"code": 500, "error": {"code": "internal_error", "message": "Internal server error."}}
    [call] = emulator.generate_calls()
    assert call["answered"] == 500 and call["faults"] == ["generate-500", "slow=0.01"]
    # Outcome unknown to the client, but the task exists, runs and succeeds (and was charged).
    assert wait_done(client, emulator, call["task_id"]).status_code == 200


def test_generate_timeout_stalls_the_answer_but_never_blocks_stop(client: httpx.Client) -> None:
    emu = Emulator(api_keys=[KEY], processing_seconds=0.01).start()
    try:
        with pytest.raises(httpx.ReadTimeout):
            client.post(f"{emu.base_url}/generate", json=image_job("[sandbox:generate-timeout]"),
                        headers={"Authorization": f"Bearer {KEY}"}, timeout=0.3)
        [call] = emu.generate_calls()
        assert call["answered"] is None and call["faults"] == ["generate-timeout"]
        assert wait_done(client, emu, call["task_id"]).status_code == 200  # the task was created and ran
    finally:
        started = time.monotonic()
        emu.stop()
        assert time.monotonic() - started < 2.0  # the 60 s stall did not hold stop() up
    assert emu.generate_calls()[0]["answered"] is None
    [stalled] = [r for r in emu.requests() if r["path"].endswith("/generate")]
    assert stalled["status"] is None  # hung up without an answer


def test_generate_timeout_answers_after_the_stall(client: httpx.Client) -> None:
    with Emulator(api_keys=[KEY], processing_seconds=0.01, stall_seconds=0.3) as emu:
        started = time.monotonic()
        response = generate(client, emu, image_job("[sandbox:generate-timeout]"))
        assert time.monotonic() - started >= 0.3
        assert response.status_code == 200
        [call] = emu.generate_calls()
        assert (call["answered"], call["task_id"]) == (200, response.json()[0]["taskId"])


# ------------------------------------------------------------------------------------ status + download faults


def test_status_500_answers_the_first_n_polls_then_the_truth(emulator: Emulator, client: httpx.Client) -> None:
    task_id = submit(client, emulator, image_job(f"[sandbox:status-500=2] {FAST}"))
    answers = [status(client, emulator, task_id) for _ in range(2)]
    assert [(r.status_code, r.json()) for r in answers] == [(500, {"msg": "internal_server_error"})] * 2
    assert wait_done(client, emulator, task_id).status_code == 200
    assert emulator.status_calls(task_id) >= 3


def test_download_404_looks_like_an_expired_file_url(emulator: Emulator, client: httpx.Client) -> None:
    task_id = submit(client, emulator, image_job(f"[sandbox:download-404] {FAST}"))
    url = file_url(client, emulator, task_id)  # status still says success
    for _ in range(2):
        response = client.get(url)
        assert (response.status_code, response.json()) == (404, {"msg": "file_not_found"})


def test_download_truncate_promises_everything_and_hangs_up_half_way(emulator: Emulator,
                                                                     client: httpx.Client) -> None:
    task_id = submit(client, emulator, image_job(f"[sandbox:download-truncate=1] [sandbox:size=1MiB] {FAST}"))
    url = file_url(client, emulator, task_id)
    received = 0
    with pytest.raises(httpx.RemoteProtocolError), client.stream("GET", url) as response:
        assert response.headers["content-length"] == str(2**20)
        for piece in response.iter_raw():
            received += len(piece)
    assert received == 2**19
    assert emulator.requests()[-1]["bytes"] == 2**19
    # Only the first download was cut short: the retry gets the whole file.
    again = client.get(url)
    assert len(again.content) == 2**20 == int(again.headers["content-length"])


def test_bare_download_truncate_cuts_every_download(emulator: Emulator, client: httpx.Client) -> None:
    task_id = submit(client, emulator, image_job(f"[sandbox:download-truncate] {FAST}"))
    url = file_url(client, emulator, task_id)
    for _ in range(2):
        with pytest.raises(httpx.RemoteProtocolError):
            client.get(url)


# ------------------------------------------------------------------------------------ zip results


def check_png(data: bytes) -> tuple[int, int]:
    chunks = png_chunks(data)
    kinds = [k for k, _ in chunks]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND"
    width, height = struct.unpack(">II", chunks[0][1][:8])
    pixels = zlib.decompress(b"".join(p for k, p in chunks if k == b"IDAT"))
    assert len(pixels) == height * (1 + 3 * width)
    return width, height


def test_grok_imagine_returns_a_zip_of_distinct_pngs(emulator: Emulator, client: httpx.Client) -> None:
    response = download(client, emulator, {"model": "grok-imagine", "input": {"prompt": f"a fox {FAST}"}})
    assert response.headers["content-type"] == "application/zip"
    assert re.fullmatch(r'attachment; filename="[0-9a-f]{32}\.zip"', response.headers["content-disposition"])
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert archive.testzip() is None
        names = archive.namelist()
        members = [archive.read(n) for n in names]
    assert 2 <= len(names) <= 4
    assert names == [f"image_{i}.png" for i in range(1, len(names) + 1)]
    assert len(set(members)) == len(members)
    assert all(check_png(m) == (256, 256) for m in members)


@pytest.mark.parametrize(("model", "extension"), [("kling-3", "mp4"), ("elevenlabs-tts", "wav")])
def test_zip_token_zips_files_of_the_jobs_kind(emulator: Emulator, client: httpx.Client, model: str,
                                               extension: str) -> None:
    body = {"model": model, "input": {"prompt": f"[sandbox:zip] {FAST}", "text": "[sandbox:zip]"}}
    response = download(client, emulator, body)
    assert response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    assert len(members) >= 2 and all(n.endswith(f".{extension}") for n in members)
    assert len(set(members.values())) == len(members)
    for data in members.values():
        if extension == "mp4":
            assert b"moov" in [k for _, k in mp4_boxes(data)]
        else:
            with wave.open(io.BytesIO(data)) as wav:
                assert wav.getnframes() > 0


# ------------------------------------------------------------------------------------ sized results


def walk_png(data: bytes) -> list[bytes]:
    kinds = [k for k, _ in png_chunks(data)]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds
    return kinds


def collect(media: Any) -> bytes:
    return b"".join(bytes(p) for p in media.chunks())


@pytest.mark.parametrize("size", [79, 91, 46_060, 46_061, 300_001, 3_000_000])
def test_sized_png_is_exact_and_valid(size: int) -> None:
    media = sized_png("a cat", size)
    assert media is not None and media.length == size
    data = collect(media)
    assert len(data) == size
    kinds = walk_png(data)
    assert kinds.index(b"IDAT") < len(kinds) - 1
    check_png(data)


def test_sized_png_splits_padding_into_chunks_that_each_fit() -> None:
    media = sized_png("split", 200_000, max_chunk=30_000)
    assert media is not None
    data = collect(media)
    kinds = walk_png(data)  # every chunk's CRC checks out
    assert len(data) == 200_000 and kinds.count(PNG_PAD_CHUNK) >= 5


@pytest.mark.parametrize("size", [5303, 40_000, 2_500_001])
def test_sized_mp4_boxes_add_up_to_the_file_size(size: int) -> None:
    media = sized_mp4("waves", size)
    assert media is not None
    data = collect(media)
    assert len(data) == size
    kinds = [k for _, k in mp4_boxes(data)]  # asserts the boxes add up exactly
    assert kinds[0] == b"ftyp" and kinds.index(b"moov") < kinds.index(b"mdat") and kinds[-1] == b"free"


def test_sized_mp4_above_4_gib_uses_a_64_bit_free_box() -> None:
    size = 5 * 2**30
    media = sized_mp4("huge", size)
    assert media is not None and media.length == size
    pieces = media.chunks()
    clip, header = bytes(next(pieces)), bytes(next(pieces))
    assert struct.unpack(">I4sQ", header) == (1, b"free", size - len(clip))


@pytest.mark.parametrize("size", [44, 45, 1000, 1001, 2_000_000])
def test_sized_wav_is_exact_and_readable(size: int) -> None:
    media = sized_wav("hello", size)
    assert media is not None
    data = collect(media)
    assert len(data) == size
    with wave.open(io.BytesIO(data)) as wav:
        width = wav.getsampwidth()
        assert wav.getnchannels() == 1 and width == (2 if size % 2 == 0 else 1)
        assert wav.getnframes() * width == size - 44
    assert struct.unpack("<I", data[4:8])[0] == size - 8


def test_sizes_that_cannot_be_made_fall_back_to_the_ordinary_file() -> None:
    assert sized_png("x", 50) is None and sized_wav("x", 43) is None and sized_wav("x", 5 * 2**30) is None
    assert sized_mp4("x", 100) is None
    fallback = render_media("audio", "x", {}, size=43)
    assert collect(fallback) == wav_bytes("x")


@pytest.mark.parametrize(("model", "kind"), [("nano-banana", "png"), ("kling-3", "mp4"), ("elevenlabs-tts", "wav")])
def test_size_token_over_http_gives_exact_content_length(emulator: Emulator, client: httpx.Client, model: str,
                                                         kind: str) -> None:
    response = download(client, emulator, {"model": model,
                                           "input": {"prompt": f"[sandbox:size=1.5M] {FAST}",
                                                     "text": f"[sandbox:size=1.5M] {FAST}"}})
    assert len(response.content) == 1_500_000
    assert response.headers["content-disposition"].endswith(f'.{kind}"')
    if kind == "png":
        walk_png(response.content)
    elif kind == "mp4":
        assert [k for _, k in mp4_boxes(response.content)][-1] == b"free"
    else:
        with wave.open(io.BytesIO(response.content)) as wav:
            assert wav.getnframes() == (1_500_000 - 44) // 2


class PngStreamChecker:
    """Walks a PNG as it streams by, verifying every chunk's length and CRC, keeping O(1) state."""

    def __init__(self) -> None:
        self.total = 0
        self.pending = b""  # bytes of a header/CRC still being assembled
        self.state = "signature"
        self.left = 8
        self.kind = b""
        self.crc = 0
        self.kinds: list[bytes] = []

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        view = memoryview(data)
        while view:
            if self.state == "payload":
                take = view[: self.left]
                self.crc = zlib.crc32(take, self.crc)
                self.left -= len(take)
                view = view[len(take):]
                if not self.left:
                    self.state, self.left = "crc", 4
                continue
            take = view[: self.left]
            self.pending += bytes(take)
            self.left -= len(take)
            view = view[len(take):]
            if self.left:
                continue
            if self.state == "signature":
                assert self.pending == b"\x89PNG\r\n\x1a\n"
                self.state, self.left = "header", 8
            elif self.state == "header":
                length, self.kind = struct.unpack(">I4s", self.pending)
                self.kinds.append(self.kind)
                self.crc = zlib.crc32(self.kind)
                self.state, self.left = ("payload", length) if length else ("crc", 4)
            else:
                assert struct.unpack(">I", self.pending)[0] == self.crc, self.kind
                self.state, self.left = "header", 8
            self.pending = b""

    def done(self) -> list[bytes]:
        assert self.state == "header" and self.left == 8 and not self.pending  # ended on a chunk boundary
        return self.kinds


def test_64_mib_result_streams_exactly_with_flat_memory(emulator: Emulator, client: httpx.Client) -> None:
    size = 64 * 2**20
    task_id = submit(client, emulator, image_job(f"[sandbox:size=64MiB] {FAST}"))
    url = file_url(client, emulator, task_id)
    checker = PngStreamChecker()
    tracemalloc.start()
    try:
        with client.stream("GET", url) as response:
            assert response.headers["content-length"] == str(size)
            for piece in response.iter_raw(1 << 20):
                checker.feed(piece)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert checker.total == size
    kinds = checker.done()
    assert kinds[0] == b"IHDR" and kinds[-2:] == [PNG_PAD_CHUNK, b"IEND"]
    # Server and client together never held more than a few pieces: nothing near 64 MiB.
    assert peak < 12 * 2**20, peak


# ------------------------------------------------------------------------------------ callbacks


class Hook:
    """A callback endpoint: records ``(monotonic time, path, payload, observed)`` per POST and answers
    200 on its own path, 404 elsewhere (what a pipeline does with an unknown token). ``observe`` runs
    at receipt, e.g. to read the task's state at that very moment."""

    def __init__(self, observe: Callable[[dict[str, Any]], Any] | None = None) -> None:
        self.events: list[tuple[float, str, dict[str, Any], Any]] = []
        self.lock = threading.Lock()
        self.path = "/callbacks/tok-genuine"
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                seen = observe(payload) if observe else None
                with hook.lock:
                    hook.events.append((time.monotonic(), self.path, payload, seen))
                self.send_response(200 if self.path == hook.path else 404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{self.path}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def received(self) -> list[tuple[float, str, dict[str, Any], Any]]:
        with self.lock:
            return list(self.events)

    def wait(self, count: int) -> list[tuple[float, str, dict[str, Any], Any]]:
        """Wait (bounded) until ``count`` callbacks arrived; returns them, oldest first."""
        wait_for(lambda: len(self.received()) >= count)
        return self.received()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def hook(emulator: Emulator) -> Iterator[Hook]:
    h = Hook(observe=lambda payload: emulator.task_state(payload["taskId"]))
    yield h
    h.close()


def kinds_sent(emu: Emulator, task_id: str, count: int | None = None) -> list[str]:
    """The kinds of the callback attempts recorded for a task; with ``count``, wait until that many are
    recorded (an attempt is recorded once the receiver has answered, just after it saw the POST)."""
    def kinds() -> list[str]:
        return [c["kind"] for c in emu.callbacks_sent() if c["task_id"] == task_id]
    if count is not None:
        wait_for(lambda: len(kinds()) >= count)
    return kinds()


def test_callback_delay_holds_the_callback_back(emulator: Emulator, client: httpx.Client, hook: Hook) -> None:
    task_id = submit(client, emulator, image_job(f"[sandbox:callback-delay=0.5] {FAST}", callBackUrl=hook.url))
    wait_for(lambda: emulator.task_state(task_id) == "success")
    done_at = time.monotonic()
    assert hook.received() == []  # completed, callback not yet sent
    [(arrived, path, payload, _)] = hook.wait(1)
    assert arrived - done_at >= 0.4
    assert (path, payload["status"], payload["taskId"]) == (hook.path, "success", task_id)


def test_callback_duplicate_sends_the_same_payload_n_times(emulator: Emulator, client: httpx.Client,
                                                           hook: Hook) -> None:
    task_id = submit(client, emulator, image_job(f"[sandbox:callback-duplicate=3] {FAST}", callBackUrl=hook.url))
    events = hook.wait(3)
    assert len({json.dumps(p, sort_keys=True) for _, _, p, _ in events}) == 1
    assert sorted(kinds_sent(emulator, task_id, 3)) == ["completion", "duplicate", "duplicate"]


def test_callback_late_sends_one_more_copy_later(emulator: Emulator, client: httpx.Client, hook: Hook) -> None:
    task_id = submit(client, emulator, image_job(f"[sandbox:callback-late=0.4] {FAST}", callBackUrl=hook.url))
    events = hook.wait(2)
    (first, _, one, _), (second, _, two, _) = events
    assert one == two and second - first >= 0.3
    assert kinds_sent(emulator, task_id, 2) == ["completion", "late"]


def test_callback_early_claims_success_while_status_says_processing(emulator: Emulator, client: httpx.Client,
                                                                    hook: Hook) -> None:
    task_id = submit(client, emulator, image_job("[sandbox:callback-early] [sandbox:slow=0.6]",
                                                 callBackUrl=hook.url))
    _, path, payload, state_then = hook.wait(1)[0]
    assert (path, payload["status"], payload["taskId"], state_then) == (hook.path, "success", task_id, "processing")
    early_download = client.get(payload["fileURL"])  # the URL is genuine, the file is not there yet
    assert early_download.status_code == 300
    events = hook.wait(2)
    assert events[1][3] == "success"
    assert kinds_sent(emulator, task_id, 2) == ["early", "completion"]


def test_callback_forged_goes_to_a_wrong_url_before_completion(emulator: Emulator, client: httpx.Client,
                                                               hook: Hook) -> None:
    task_id = submit(client, emulator, image_job("[sandbox:callback-forged] [sandbox:slow=0.4]",
                                                 callBackUrl=hook.url))
    events = hook.wait(2)
    (_, forged_path, forged, state_then), (_, genuine_path, genuine, _) = events
    assert re.fullmatch(r"/callbacks/[0-9a-f]{32}", forged_path) and forged_path != hook.path
    assert state_then == "processing"
    assert (forged["status"], forged["taskId"]) == ("success", task_id)
    assert forged["fileURL"].startswith("https://files.forged.invalid/")
    assert genuine_path == hook.path and genuine["fileURL"] != forged["fileURL"]
    kinds_sent(emulator, task_id, 2)
    forged_attempts = [c for c in emulator.callbacks_sent() if c["kind"] == "forged"]
    assert [(c["attempt"], c["status_code"]) for c in forged_attempts] == [(1, 404)]  # a forger does not retry


def test_forged_url_replaces_only_the_last_path_segment() -> None:
    forged = forged_callback_url("https://api.example.com/prod/callbacks/tok-123/?x=1")
    assert re.fullmatch(r"https://api\.example\.com/prod/callbacks/[0-9a-f]{32}/\?x=1", forged)
    assert re.fullmatch(r"http://h/[0-9a-f]{32}", forged_callback_url("http://h"))


def test_callback_mode_applies_to_every_job_and_the_prompt_still_wins(client: httpx.Client) -> None:
    hook = Hook()
    try:
        with Emulator(api_keys=[KEY], processing_seconds=0.01, callback_mode="delay:0.1,duplicate:2") as emu:
            plain = submit(client, emu, image_job("plain", callBackUrl=hook.url))
            single = submit(client, emu, image_job("[sandbox:callback-duplicate=1]", callBackUrl=hook.url))
            hook.wait(3)
            assert sorted(kinds_sent(emu, plain, 2)) == ["completion", "duplicate"]
            assert kinds_sent(emu, single, 1) == ["completion"]
            assert emu.generate_calls()[0]["faults"] == ["callback-delay=0.1", "callback-duplicate=2"]
        with Emulator(api_keys=[KEY], processing_seconds=0.0, callback_mode="none") as emu:
            task_id = submit(client, emu, image_job("quiet", callBackUrl=hook.url))
            wait_done(client, emu, task_id)
            wait_for(lambda: emu.task_state(task_id) == "success")
        assert emu.callbacks_sent() == [] and len(hook.received()) == 3
    finally:
        hook.close()


def test_disabled_callbacks_silence_early_and_forged_too(client: httpx.Client) -> None:
    hook = Hook()
    try:
        with Emulator(api_keys=[KEY], processing_seconds=0.05, send_callbacks=False) as emu:
            task_id = submit(client, emu, image_job("[sandbox:callback-early] [sandbox:callback-forged]",
                                                    callBackUrl=hook.url))
            wait_done(client, emu, task_id)
        assert emu.callbacks_sent() == [] and hook.received() == []
    finally:
        hook.close()


# ------------------------------------------------------------------------------------ global fault rates


def run_rated(client: httpx.Client, seed: int) -> list[tuple[int, list[str]]]:
    with Emulator(api_keys=[KEY], processing_seconds=0.0, fault_rates={"code400": 0.5}, seed=seed) as emu:
        for i in range(30):
            generate(client, emu, image_job(f"job {i}"))
        return [(c["answered"], c["random_faults"]) for c in emu.generate_calls()]


def test_fault_rates_apply_per_request_reproducibly_with_a_seed(client: httpx.Client) -> None:
    outcomes = run_rated(client, seed=7)
    assert {answered for answered, _ in outcomes} == {200}  # code400 answers HTTP 200 too...
    drawn = [faults == ["code400"] for _, faults in outcomes]
    assert 5 <= sum(drawn) <= 25  # ...and about half of the jobs drew it
    assert run_rated(client, seed=7) == outcomes


def test_a_drawn_fault_behaves_like_its_token(client: httpx.Client) -> None:
    with Emulator(api_keys=[KEY], processing_seconds=0.0, fault_rates=["status-500=1"], seed=1) as emu:
        task_id = submit(client, emu, image_job("anything"))
        first = status(client, emu, task_id)
        assert (first.status_code, first.json()) == (500, {"msg": "internal_server_error"})
        assert status(client, emu, task_id).status_code == 200
        [call] = emu.generate_calls()
        assert call["random_faults"] == call["faults"] == ["status-500=1"]
        assert emu.fault_rates == {"status-500=1": 1.0}


def test_serve_announces_callback_mode_fault_rates_and_seed() -> None:
    code = ("import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "  # Ctrl-C works even if
            "from mediagen.sandbox import serve; "  # the test runner was started with SIGINT ignored
            f"serve(host='127.0.0.1', port=0, processing_seconds=0.1, api_key={KEY!r}, "
            "callback_mode='delay:1', faults=['fail=0.5', 'status-500:2=0.25'], seed=3)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)  # a fresh interpreter on a loaded machine: be patient
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Cliprise sandbox emulator on http://127.0.0.1:" in lines[0]
    assert lines[1:] == ["callback mode: delay:1\n",
                         "fault rates: --fault fail=0.5 --fault status-500:2=0.25 --fault-seed 3\n"]
    assert proc.returncode == 0, err


def test_serve_refuses_a_bad_fault_spec_before_listening() -> None:
    from mediagen.sandbox import serve

    with pytest.raises(ValueError, match="unknown sandbox token 'bogus'"):
        serve(host="127.0.0.1", port=0, processing_seconds=0, api_key=KEY, faults=["bogus=0.1"])


def test_no_credits_refuses_without_a_task_and_the_client_sees_insufficient_credits(emulator: Emulator) -> None:
    from mediagen.provider import ClipriseClient, InsufficientCredits

    job = image_job("[sandbox:no-credits]")
    with ClipriseClient(KEY, base_url=emulator.base_url) as cliprise, pytest.raises(InsufficientCredits):
        cliprise.generate(job)
    [call] = emulator.generate_calls()
    assert (call["answered"], call["faults"], call["task_id"]) == (200, ["no-credits"], None)
