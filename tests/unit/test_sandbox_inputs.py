"""The sandbox emulator fetches the input media URLs of accepted jobs, like the provider does.

A tiny loopback HTTP server plays the media host (an S3 bucket behind presigned URLs); jobs go through
the emulator's HTTP API with httpx. Waits are bounded polling loops, never fixed sleeps.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from mediagen.sandbox import PUBLIC_HOST, Emulator, serve
from mediagen.sandbox.inputs import FetchError, HttpFetcher, input_urls, redact_url
from mediagen.sandbox.media import png_bytes
from tests.unit.test_sandbox import FAST, KEY, TIMEOUT, image_job, status, submit, wait_done, wait_for

IMAGE = png_bytes("a reference image")
IMAGE_SHA = hashlib.sha256(IMAGE).hexdigest()
PRESIGNED = "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE7%2F20250101%2Fus-east-1%2Fs3" \
            "&X-Amz-Signature=secret123&X-Amz-Expires=900"
UNRESOLVABLE = "https://media.unreachable.invalid/ref.png"


class MediaHost:
    """A loopback media server: ``/ref.png`` (the PNG), ``/moved`` (302 to it), ``/big`` (64 KiB),
    ``/unsized`` (64 KiB without ``Content-Length``), anything else 404. Records each request's path and
    Host header."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []
        self.lock = threading.Lock()
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with host.lock:
                    host.seen.append((self.path, self.headers.get("Host")))
                path = self.path.split("?")[0]
                if path == "/moved":
                    self.send_response(302)
                    self.send_header("Location", "/ref.png")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body, code = {"/ref.png": (IMAGE, 200), "/big": (b"x" * 65536, 200),
                              "/unsized": (b"y" * 65536, 200)}.get(path, (b"nope", 404))
                self.send_response(code)
                self.send_header("Content-Type", "image/png" if code == 200 else "text/plain")
                if path == "/unsized":
                    self.close_connection = True  # HTTP/1.0: the body ends when the connection closes
                else:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def paths(self) -> list[str]:
        with self.lock:
            return [path.split("?")[0] for path, _ in self.seen]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def media() -> Iterator[MediaHost]:
    host = MediaHost()
    yield host
    host.close()


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, headers={"Host": PUBLIC_HOST}, timeout=TIMEOUT) as c:
        yield c


def make_emulator(**options: Any) -> Emulator:
    return Emulator(api_keys=[KEY], processing_seconds=0.05, callback_retry_base_seconds=0.02, **options)


def fetched_for(emu: Emulator, task_id: str) -> list[dict[str, Any]]:
    return [entry for entry in emu.fetched_inputs() if entry["task_id"] == task_id]


# ------------------------------------------------------------------------------------ fetching


def test_accepted_job_input_is_fetched_before_success_and_recorded_redacted(media: MediaHost,
                                                                             client: httpx.Client) -> None:
    url = f"{media.base}/ref.png{PRESIGNED}"
    with make_emulator(fetch_inputs=True) as emu:
        task_id = submit(client, emu, {"model": "nano-banana-edit",
                                       "input": {"prompt": f"edit {FAST}", "image": url}})
        done = wait_done(client, emu, task_id)
        assert done.status_code == 200, done.text
        entries = fetched_for(emu, task_id)  # recorded before the task could succeed
        everything = json.dumps([emu.fetched_inputs(), emu.requests()])
    assert entries == [{"task_id": task_id, "field": "input.image", "url": entries[0]["url"], "ok": True,
                        "bytes": len(IMAGE), "sha256": IMAGE_SHA, "content_type": "image/png", "error": None}]
    assert entries[0]["url"].startswith(f"{media.base}/ref.png?")
    assert "X-Amz-Signature=***" in entries[0]["url"] and "X-Amz-Credential=***" in entries[0]["url"]
    assert "secret123" not in everything and "AKIAEXAMPLE7" not in everything and KEY not in everything
    assert media.paths() == ["/ref.png"]


def test_root_lists_and_nested_urls_are_all_fetched_each_distinct_url_once(media: MediaHost,
                                                                           client: httpx.Client) -> None:
    ref, moved, missing = f"{media.base}/ref.png", f"{media.base}/moved", f"{media.base}/missing.png"
    body = {
        "model": "flux-kontext-pro",  # root-only: the URLs sit at the body root
        "prompt": f"edit {FAST}",
        "callBackUrl": f"{media.base}/callback-is-not-an-input",
        "imageURLList": json.dumps([ref, moved]),  # the documented JSON-string encoding
        "inputImage": ref,  # a documented mirror of imageURLList[0]
        "videoURLList": f"{missing},{ref}",  # comma-separated string form
        "elements": [{"element_input_urls": [moved]}],
    }
    with make_emulator(fetch_inputs=True) as emu:
        task_id = submit(client, emu, body)
        done = wait_done(client, emu, task_id)
        entries = fetched_for(emu, task_id)
    assert done.status_code == 200, done.text  # a failed fetch is recorded, the task still succeeds
    by_field = {e["field"]: e for e in entries}
    assert list(by_field) == ["imageURLList[0]", "imageURLList[1]", "inputImage", "videoURLList[0]",
                              "videoURLList[1]", "elements[0].element_input_urls[0]"]
    assert {f for f, e in by_field.items() if e["ok"]} == set(by_field) - {"videoURLList[0]"}
    assert by_field["imageURLList[1]"]["sha256"] == IMAGE_SHA  # the redirect was followed
    failed = by_field["videoURLList[0]"]
    assert (failed["bytes"], failed["sha256"], failed["error"]) == (0, None, "HTTP 404")
    # each distinct URL once (ref.png a second time behind the redirect); the callBackUrl is not an input
    assert sorted(media.paths()) == ["/missing.png", "/moved", "/ref.png", "/ref.png"]


def test_custom_fetcher_is_used(client: httpx.Client) -> None:
    asked: list[str] = []

    def fetcher(url: str) -> bytes:
        asked.append(url)
        return b"abc"

    with make_emulator(fetch_inputs=True, fetcher=fetcher) as emu:
        task_id = submit(client, emu, {"model": "nano-banana-edit",
                                       "input": {"prompt": f"x {FAST}", "image_urls": [UNRESOLVABLE]}})
        assert wait_done(client, emu, task_id).status_code == 200
        entries = fetched_for(emu, task_id)
    assert asked == [UNRESOLVABLE]
    assert entries == [{"task_id": task_id, "field": "input.image_urls[0]", "url": UNRESOLVABLE, "ok": True,
                        "bytes": 3, "sha256": hashlib.sha256(b"abc").hexdigest(), "error": None}]


def test_task_does_not_succeed_before_its_fetches_end_and_generate_does_not_wait(client: httpx.Client) -> None:
    started, release = threading.Event(), threading.Event()

    def fetcher(url: str) -> bytes:
        started.set()
        release.wait(TIMEOUT)
        return b"late"

    with make_emulator(fetch_inputs=True, fetcher=fetcher) as emu:
        before = time.monotonic()
        task_id = submit(client, emu, {"model": "nano-banana-edit",
                                       "input": {"prompt": f"x {FAST}", "image": "https://h/a.png"}})
        wait_for(started.is_set)
        wait_for(lambda: time.monotonic() > before + 0.05)  # the task is long due (slow=0.01)...
        assert status(client, emu, task_id).status_code == 300  # ...but its fetch is still running
        assert emu.task_state(task_id) == "processing"
        release.set()
        assert wait_done(client, emu, task_id).status_code == 200
        assert fetched_for(emu, task_id)[0]["bytes"] == 4


def test_fail_on_input_error_fails_the_task_naming_the_field(client: httpx.Client) -> None:
    with make_emulator(fetch_inputs=True, fail_on_input_error=True) as emu:
        started = time.monotonic()
        task_id = submit(client, emu, {"model": "kling-2-6-image-to-video",
                                       "input": {"prompt": f"x {FAST}", "image_urls": [UNRESOLVABLE]}})
        done = wait_done(client, emu, task_id)
        elapsed = time.monotonic() - started
        entries = fetched_for(emu, task_id)
    assert done.status_code == 400
    body = done.json()
    assert body["status"] == "fail"
    assert body["failMsg"].startswith("could not fetch input input.image_urls[0]: cannot resolve host")
    assert entries[0]["ok"] is False and "media.unreachable.invalid" in entries[0]["error"]
    assert elapsed < 3  # unresolvable names fail fast, no DNS wait


def test_fail_on_input_error_failure_message_is_redacted(media: MediaHost, client: httpx.Client) -> None:
    def fetcher(url: str) -> bytes:
        raise RuntimeError(f"denied for {url}")

    with make_emulator(fetch_inputs=True, fail_on_input_error=True, fetcher=fetcher) as emu:
        task_id = submit(client, emu, {"model": "nano-banana-edit",
                                       "input": {"prompt": f"x {FAST}", "image": f"{media.base}/a{PRESIGNED}"}})
        done = wait_done(client, emu, task_id)
        recorded = json.dumps(emu.fetched_inputs())
    assert done.status_code == 400
    fail_msg = done.json()["failMsg"]
    assert fail_msg.startswith("could not fetch input input.image: RuntimeError: denied for ")
    assert "secret123" not in fail_msg + recorded and "AKIAEXAMPLE7" not in fail_msg + recorded


def test_nothing_is_fetched_when_fetch_inputs_is_off(media: MediaHost, client: httpx.Client) -> None:
    with make_emulator(fail_on_input_error=True) as emu:
        task_id = submit(client, emu, {"model": "nano-banana-edit",
                                       "input": {"prompt": f"x {FAST}", "image": f"{media.base}/ref.png"}})
        assert wait_done(client, emu, task_id).status_code == 200
        assert emu.fetched_inputs() == []
    assert media.paths() == []


def test_a_jobs_file_url_can_be_another_jobs_input(client: httpx.Client) -> None:
    with make_emulator(fetch_inputs=True) as emu:
        first = submit(client, emu, image_job(f"source {FAST}"))
        file_url = wait_done(client, emu, first).json()[0]["fileURL"]
        source = client.get(file_url).content
        second = submit(client, emu, {"model": "kling-2-6-image-to-video",
                                      "input": {"prompt": f"animate {FAST}", "image_urls": [file_url]}})
        assert wait_done(client, emu, second).status_code == 200
        entries = fetched_for(emu, second)
        recorded = json.dumps(emu.fetched_inputs())
    assert entries[0]["ok"] is True and entries[0]["sha256"] == hashlib.sha256(source).hexdigest()
    assert "apiKey=***" in entries[0]["url"] and KEY not in recorded


# ------------------------------------------------------------------------------------ pieces


def test_input_urls_skip_callback_model_and_text_that_merely_mentions_a_url() -> None:
    body = {"model": "x", "callBackUrl": "https://cb/t", "input": {"prompt": "like https://a/b.png",
                                                                   "n": 3, "image": " HTTPS://a/c.png "}}
    assert input_urls(body) == [("input.image", "HTTPS://a/c.png")]
    assert input_urls({"options": json.dumps({"ref": "https://a/d.png"})}) == [("options.ref", "https://a/d.png")]


def test_redact_url_masks_presigned_credentials_and_passwords() -> None:
    url = ("https://u:pw@b.s3.amazonaws.com/k?AWSAccessKeyId=AKIA1&Signature=s1&Expires=9"
           "&X-Amz-Credential=AKIA2%2Fx&X-Amz-Signature=s2&X-Amz-Security-Token=t3")
    out = redact_url(url)
    for secret in ("pw", "AKIA1", "s1", "AKIA2", "s2", "t3"):
        assert f"={secret}" not in out and f":{secret}@" not in out
    assert out.startswith("https://u:***@b.s3.amazonaws.com/k?") and "Expires=9" in out


def test_default_fetcher_limits(media: MediaHost) -> None:
    fetcher = HttpFetcher(max_bytes=len(IMAGE))
    got = fetcher(f"{media.base}/moved")
    assert got == IMAGE and getattr(got, "content_type", None) == "image/png"
    with pytest.raises(FetchError, match=f"body of 65536 bytes exceeds the {len(IMAGE)}-byte limit"):
        fetcher(f"{media.base}/big")
    with pytest.raises(FetchError, match=f"body exceeds the {len(IMAGE)}-byte limit"):
        fetcher(f"{media.base}/unsized")
    with pytest.raises(FetchError, match="HTTP 404"):
        fetcher(f"{media.base}/gone")
    with pytest.raises(FetchError, match="not an http"):
        fetcher("ftp://h/x")


def test_default_fetcher_remembers_hosts_that_did_not_resolve(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    lookups: list[str] = []

    def fake_getaddrinfo(host: str, *args: Any, **kwargs: Any) -> Any:
        lookups.append(host)
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    fetcher = HttpFetcher()
    for _ in range(2):
        with pytest.raises(FetchError, match="cannot resolve host 'example.com'"):
            fetcher("https://example.com/a.png")
    assert lookups == ["example.com"]


def test_default_fetcher_stops_waiting_for_a_hanging_resolver(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    unblock = threading.Event()

    def hanging_getaddrinfo(host: str, *args: Any, **kwargs: Any) -> Any:
        unblock.wait(TIMEOUT)
        raise socket.gaierror(-3, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", hanging_getaddrinfo)
    started = time.monotonic()
    try:
        with pytest.raises(FetchError, match="cannot resolve host 'slow.example': timed out"):
            HttpFetcher(resolve_timeout=0.1)("https://slow.example/a.png")
        assert time.monotonic() - started < 2
    finally:
        unblock.set()


def test_serve_accepts_the_input_fetching_options() -> None:
    parameters = inspect.signature(serve).parameters
    assert parameters["fetch_inputs"].default is False
    assert parameters["fail_on_input_error"].default is False
