"""The Cliprise transport: every documented response shape -> a typed result or a typed error.

Shapes come from document 000 ("Authentication", "Credits & Pricing", "Webhooks", "Errors" [000:53-177],
per-model "Response codes"/"Polling status" [000:265-292]), 002 ("Generate Endpoint", "Status & Download",
"Error Reference", "Authentication" [002:115-208]) and 003 (docs/sources.md). Most tests use ``httpx.MockTransport``; two use a real
loopback server so that httpx/httpcore run their real network code and loggers.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from mediagen import __version__
from mediagen.errors import ConfigurationError, MediagenError
from mediagen.provider import (
    AmbiguousSubmit,
    ClipriseClient,
    DownloadFailed,
    DownloadUnavailable,
    Failed,
    GenerateAccepted,
    InsufficientCredits,
    Processing,
    ProviderAuthError,
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
    RateLimited,
    Succeeded,
    UnexpectedResponse,
)
from mediagen.settings import CLIPRISE_BASE_URL, CLIPRISE_HOST, Settings

KEY = "sk-live-SENTINEL-9f2c41d7e0ab"
TASK = "f11021d5b56bc19932b336ac0dbf413f"
HOST = CLIPRISE_HOST
STATUS_URL = f"{CLIPRISE_BASE_URL}/status"
FILE_URL = f"{STATUS_URL}?apiKey={KEY}&taskId={TASK}&download=true"  # "Polling status" [000:275-292]
GENERATE_BODY: dict[str, Any] = {
    "model": "seedance-v1-pro",
    "callBackUrl": "https://hooks.example.com/cb/tok-1",
    "options": "{\"aspectRatio\":2,\"duration\":0,\"resolution\":1}",
    "imageURLList": "[\"https://example.com/ref.jpg\"]",
    "input": {"prompt": "Vagues sur la côte — 海", "image_url": "https://example.com/ref.jpg", "duration": 5},
}


class Provider:
    """A scripted provider for ``httpx.MockTransport``: records requests, answers from a list."""

    def __init__(self, *answers: httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer) and not isinstance(answer, httpx.Response):
            return answer(request)
        return answer

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


def client_for(provider: Provider, **kw: Any) -> ClipriseClient:
    return ClipriseClient(KEY, transport=httpx.MockTransport(provider), **kw)


def raw(status: int, body: bytes | str = b"", headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, content=body.encode() if isinstance(body, str) else body, headers=headers)


def as_json(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return raw(status, json.dumps(body), {"Content-Type": "application/json", **(headers or {})})


# ---------------------------------------------------------------------------------------------- generate


def test_generate_sends_bearer_host_user_agent_and_the_body_unchanged() -> None:
    provider = Provider(as_json(200, [{"code": 200, "taskId": TASK}]))
    with client_for(provider) as client:
        assert client.generate(GENERATE_BODY) == GenerateAccepted(task_id=TASK)

    sent = provider.last
    assert sent.method == "POST"
    assert str(sent.url) == f"{CLIPRISE_BASE_URL}/generate"
    assert sent.headers["Authorization"] == f"Bearer {KEY}"
    assert sent.headers["Host"] == HOST
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["User-Agent"] == f"mediagen/{__version__}"
    assert json.loads(sent.content) == GENERATE_BODY  # stringified options stay strings
    assert sent.extensions["timeout"] == {"connect": 5.0, "read": 30.0, "write": 30.0, "pool": 5.0}


@pytest.mark.parametrize(
    "body",
    [
        [{"code": 200, "taskId": TASK}],  # "Success response" [002:152-157]
        {"code": 200, "taskId": TASK},  # bare object (document 001, "Success response")
        {"taskId": TASK},
        [{"code": "200", "taskId": TASK}],
    ],
    ids=["array", "object", "object-without-code", "string-code"],
)
def test_generate_accepts_array_and_bare_object(body: Any) -> None:
    with client_for(Provider(as_json(200, body))) as client:
        assert client.generate({"model": "m"}).task_id == TASK


ACTION_URL = "https://www.cliprise.app/pricing"


@pytest.mark.parametrize(
    ("answer", "error", "provider_code", "in_message"),
    [
        # "Application-level error (still HTTP 200)" [002:158-161]
        (as_json(200, {"code": 400, "msg": "This field is required", "data": None}), ProviderRejected, None,
         "This field is required"),
        # "Error Reference" [002:198-208]: wrong Host -> 400 with an empty body
        (raw(400), ProviderRejected, None, "Host header is not exactly 'business.api.cliprise.app'"),
        # "Base URL and host" [003:10-13]: or {"msg":"method_not_allowed"}
        (as_json(400, {"msg": "method_not_allowed"}), ProviderRejected, "method_not_allowed", "Host header"),
        (as_json(400, {"msg": "invalid_model_id"}), ProviderRejected, "invalid_model_id", "invalid_model_id"),
        (as_json(400, {"msg": "invalid_api_key"}), ProviderAuthError, "invalid_api_key", "invalid API key"),
        # "Authentication" [000:53-64]
        (as_json(401, {"code": 401,
                       "error": {"code": "invalid_api_key", "message": "Missing or invalid API key."}}),
         ProviderAuthError, "invalid_api_key", "Missing or invalid API key."),
        (as_json(400, {"msg": "reason for failure"}), ProviderRejected, None, "reason for failure"),
        (as_json(422, {"detail": "nope"}), ProviderRejected, None, "HTTP 422"),
        # "Errors" [000:170-177] -> 5xx is not documented: the task may exist
        (raw(500, "Internal Server Error"), AmbiguousSubmit, None, "charge twice"),
        (raw(502), AmbiguousSubmit, None, "HTTP 502"),
        (as_json(503, {"msg": "maintenance"}), AmbiguousSubmit, None, "maintenance"),
        # a 2xx we cannot read: accepted or not, we cannot tell
        (raw(200), AmbiguousSubmit, None, "empty body"),
        (raw(200, "<html>gateway</html>"), AmbiguousSubmit, None, "<html>gateway</html>"),
        (as_json(200, [{"code": 200}]), AmbiguousSubmit, None, "without a task id"),
        (as_json(200, []), AmbiguousSubmit, None, "without a task id"),
    ],
    ids=["200-code-400", "400-empty-wrong-host", "method-not-allowed", "invalid-model-id",
         "400-invalid-api-key", "401-invalid-api-key", "400-msg", "422", "500", "502-empty", "503-json",
         "200-empty", "200-html", "200-no-task-id", "200-empty-array"],
)
def test_generate_maps_each_documented_error(
    answer: httpx.Response, error: type[ProviderError], provider_code: str | None, in_message: str
) -> None:
    with client_for(Provider(answer)) as client, pytest.raises(ProviderError) as caught:
        client.generate({"model": "m"})
    assert type(caught.value) is error
    assert caught.value.http_status == answer.status_code
    assert caught.value.provider_code == provider_code
    assert in_message in caught.value.message


@pytest.mark.parametrize(
    ("answer", "action_url"),
    [
        # "Error Reference" [002:198-208]: HTTP 200, insufficient_credits + action_url
        (as_json(200, {"msg": "insufficient_credits", "action_url": ACTION_URL}), ACTION_URL),
        (as_json(200, [{"code": 400, "msg": "insufficient_credits", "action_url": ACTION_URL}]), ACTION_URL),
        # "Authentication" [000:53-64]: 402, in the documented 401/429 error shape
        (as_json(402, {"code": 402, "error": {"code": "insufficient_credits", "message": "Top up.",
                                              "action_url": ACTION_URL}}), ACTION_URL),
        (raw(200, f"insufficient_credits {ACTION_URL}"), None),
        (raw(402), None),
    ],
    ids=["200-msg", "200-array-code-400", "402-error-object", "200-plain-text", "402-empty"],
)
def test_generate_insufficient_credits_keeps_the_top_up_link(
    answer: httpx.Response, action_url: str | None
) -> None:
    with client_for(Provider(answer)) as client, pytest.raises(InsufficientCredits) as caught:
        client.generate({"model": "m"})
    assert isinstance(caught.value, ProviderRejected)  # no credits spent, do not retry
    assert caught.value.http_status == answer.status_code
    assert caught.value.provider_code == "insufficient_credits"
    assert caught.value.action_url == action_url


def test_generate_429_carries_retry_after_seconds() -> None:
    answer = as_json(
        429,
        {"code": 429, "error": {"code": "rate_limit_exceeded", "message": "Too many requests."}},
        {"Retry-After": "7"},
    )
    with client_for(Provider(answer)) as client, pytest.raises(RateLimited) as caught:
        client.generate({"model": "m"})
    assert caught.value.retry_after == 7.0
    assert caught.value.provider_code == "rate_limit_exceeded"
    assert not isinstance(caught.value, ProviderRejected)  # retryable later, unlike a refusal


def test_retry_after_as_http_date_becomes_seconds_from_now() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    with client_for(Provider(raw(429, headers={"Retry-After": when}))) as client, \
            pytest.raises(RateLimited) as caught:
        client.status(TASK)
    assert caught.value.retry_after is not None
    assert 100 <= caught.value.retry_after <= 121


def _fail_with(exc_type: type[httpx.TransportError]) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc_type(f"boom while talking to {request.url}", request=request)

    return handler


@pytest.mark.parametrize(
    ("exc_type", "error"),
    [
        (httpx.ConnectError, ProviderUnavailable),
        (httpx.ConnectTimeout, ProviderUnavailable),
        (httpx.PoolTimeout, ProviderUnavailable),
        (httpx.ReadTimeout, AmbiguousSubmit),
        (httpx.WriteTimeout, AmbiguousSubmit),
        (httpx.ReadError, AmbiguousSubmit),  # connection reset after sending
        (httpx.RemoteProtocolError, AmbiguousSubmit),  # server closed without answering
    ],
)
def test_generate_transport_failures_split_not_sent_from_ambiguous(
    exc_type: type[httpx.TransportError], error: type[ProviderError]
) -> None:
    with client_for(Provider(_fail_with(exc_type))) as client, pytest.raises(ProviderError) as caught:
        client.generate({"model": "m"})
    assert type(caught.value) is error
    assert caught.value.http_status is None
    assert exc_type.__name__ in caught.value.message


def test_generate_rejects_a_non_json_body_before_sending() -> None:
    provider = Provider(as_json(200, [{"code": 200, "taskId": TASK}]))
    with client_for(provider) as client, pytest.raises(ValueError):
        client.generate({"model": "m", "input": {"seed": float("nan")}})
    assert provider.requests == []


# ---------------------------------------------------------------------------------------------- status


def test_status_sends_key_and_task_in_the_query_with_host_and_no_bearer() -> None:
    provider = Provider(as_json(300, [{"status": "processing"}]))
    with client_for(provider) as client:
        client.status(TASK)
    sent = provider.last
    assert sent.method == "GET"
    assert sent.url.path == "/app/cliprise/status"
    assert dict(sent.url.params) == {"apiKey": KEY, "taskId": TASK}
    assert sent.headers["Host"] == HOST
    assert "Authorization" not in sent.headers


@pytest.mark.parametrize(
    ("answer", "state"),
    [
        (as_json(300, [{"status": "processing"}]), Processing()),  # "Polling status" [000:275-292]
        (as_json(300, {"status": "processing"}), Processing()),  # "Status & Download" [002:164-187]
        (raw(300), Processing()),
        (as_json(200, [{"status": "success", "fileURL": FILE_URL}]), Succeeded(file_url=FILE_URL)),
        (as_json(200, {"status": "success", "fileURL": "https://cdn.example.net/a.png"}),
         Succeeded(file_url="https://cdn.example.net/a.png")),
        (as_json(200, [{"status": "success"}]), Succeeded(file_url=None)),
        (as_json(400, {"status": "fail", "failMsg": "content policy violation"}),
         Failed(message="content policy violation")),
        (as_json(400, [{"status": "fail", "msg": "timeout upstream"}]), Failed(message="timeout upstream")),
        # "Webhooks" [000:142-169] failure payload
        (as_json(200, {"status": "failure",
                       "error": {"code": "provider_error", "message": "The provider failed."}}),
         Failed(message="The provider failed.", code="provider_error")),
    ],
    ids=["300-array", "300-object", "300-empty", "200-success-array", "200-success-object",
         "200-success-no-url", "400-fail-failMsg", "400-fail-msg", "failure-webhook-shape"],
)
def test_status_parses_each_documented_state(answer: httpx.Response, state: object) -> None:
    with client_for(Provider(answer)) as client:
        assert client.status(TASK) == state


def test_status_300_is_processing_not_a_redirect() -> None:
    provider = Provider(as_json(300, [{"status": "processing"}], {"Location": "https://elsewhere.example/"}))
    with client_for(provider) as client:
        assert client.status(TASK) == Processing()
    assert len(provider.requests) == 1


@pytest.mark.parametrize(
    ("answer", "error", "provider_code"),
    [
        (as_json(400, {"msg": "invalid_taskId"}), ProviderRejected, "invalid_taskId"),  # [002:186]
        (as_json(400, {"msg": "invalid_api_key"}), ProviderAuthError, "invalid_api_key"),
        (as_json(400, {"msg": "method_not_allowed"}), ProviderRejected, "method_not_allowed"),  # document 001
        (raw(400), ProviderRejected, None),
        (as_json(429, {"code": 429, "error": {"code": "rate_limit_exceeded", "message": "slow"}}),
         RateLimited, "rate_limit_exceeded"),
        (raw(503), ProviderUnavailable, None),
        (as_json(500, {"status": "processing"}), ProviderUnavailable, None),
        (as_json(200, {"foo": "bar"}), UnexpectedResponse, None),
        (as_json(200, [{"status": "exploded"}]), UnexpectedResponse, None),
        (raw(200, "PK\x03\x04 binary"), UnexpectedResponse, None),
        (raw(200), UnexpectedResponse, None),
        (as_json(302, {"status": "moved"}), UnexpectedResponse, None),
    ],
    ids=["invalid-taskId", "invalid-api-key", "method-not-allowed", "400-empty", "429", "503",
         "500-with-status", "unknown-object", "unknown-status", "binary", "200-empty", "302"],
)
def test_status_maps_each_error(answer: httpx.Response, error: type[ProviderError], provider_code: str | None
                                ) -> None:
    with client_for(Provider(answer)) as client, pytest.raises(ProviderError) as caught:
        client.status(TASK)
    assert type(caught.value) is error
    assert caught.value.http_status == answer.status_code
    assert caught.value.provider_code == provider_code


@pytest.mark.parametrize("exc_type", [httpx.ConnectError, httpx.ReadTimeout, httpx.RemoteProtocolError])
def test_status_transport_failures_are_safe_to_repeat(exc_type: type[httpx.TransportError]) -> None:
    with client_for(Provider(_fail_with(exc_type))) as client, pytest.raises(ProviderUnavailable):
        client.status(TASK)


@pytest.mark.parametrize("task_id", ["", "   ", "a b"])
def test_status_refuses_a_blank_task_id_without_calling(task_id: str) -> None:
    provider = Provider(raw(300))
    with client_for(provider) as client, pytest.raises(ValueError):
        client.status(task_id)
    assert provider.requests == []


# ---------------------------------------------------------------------------------------------- download


def _streamed(chunks: list[bytes], produced: list[int], headers: dict[str, str]) -> httpx.Response:
    def body() -> Iterator[bytes]:
        for chunk in chunks:
            produced.append(len(chunk))
            yield chunk

    return httpx.Response(200, content=body(), headers=headers)


def test_download_streams_the_status_endpoint_with_download_true() -> None:
    produced: list[int] = []
    chunks = [b"\x00" * 1000, b"\x01" * 1000, b"\x02" * 500]
    provider = Provider(_streamed(chunks, produced, {
        "Content-Type": "video/mp4",
        "Content-Length": "2500",
        "Content-Disposition": 'attachment; filename="result.mp4"',
    }))
    with client_for(provider) as client, client.open_download(TASK) as download:
        assert produced == []  # nothing consumed before the caller iterates
        assert (download.content_type, download.content_length, download.filename) == \
            ("video/mp4", 2500, "result.mp4")
        received = list(download.iter_bytes(chunk_size=1000))

    assert b"".join(received) == b"".join(chunks)
    assert len(received) > 1
    assert download.bytes_read == 2500
    sent = provider.last
    assert sent.url.path == "/app/cliprise/status"
    assert dict(sent.url.params) == {"apiKey": KEY, "taskId": TASK, "download": "true"}
    assert sent.headers["Host"] == HOST
    assert "Authorization" not in sent.headers


def test_download_of_the_provider_file_url_keeps_the_provider_host() -> None:
    provider = Provider(raw(200, b"PK\x03\x04zip", {"Content-Type": "application/zip"}))
    with client_for(provider) as client, client.open_download(TASK, FILE_URL) as download:
        assert b"".join(download.iter_bytes()) == b"PK\x03\x04zip"
    assert str(provider.last.url) == FILE_URL
    assert provider.last.headers["Host"] == HOST


def test_a_provider_status_url_without_key_or_download_flag_gets_both() -> None:
    provider = Provider(raw(200, b"x"))
    with client_for(provider) as client, client.open_download(TASK, f"{STATUS_URL}?taskId={TASK}"):
        pass
    assert dict(provider.last.url.params) == {"taskId": TASK, "apiKey": KEY, "download": "true"}
    assert provider.last.headers["Host"] == HOST


def test_sandbox_file_url_on_loopback_is_the_provider_and_gets_the_provider_host() -> None:
    base = "http://127.0.0.1:8765/app/cliprise"
    file_url = f"{base}/status?apiKey={KEY}&taskId={TASK}&download=true"
    provider = Provider(raw(200, b"img", {"Content-Type": "image/png"}))
    with client_for(provider, base_url=base) as client, client.open_download(TASK, file_url) as download:
        assert b"".join(download.iter_bytes()) == b"img"
    assert str(provider.last.url) == file_url
    assert provider.last.headers["Host"] == HOST


@pytest.mark.parametrize(
    "file_url",
    ["https://cdn.example.net/out/clip.mp4?sig=abc", "https://business.api.cliprise.app:8443/app/cliprise/x"],
    ids=["cdn", "same-host-other-port"],
)
def test_download_of_a_foreign_url_sends_no_provider_host_and_no_credentials(file_url: str) -> None:
    provider = Provider(raw(200, b"data", {"Content-Type": "video/mp4"}))
    with client_for(provider) as client, client.open_download(TASK, file_url) as download:
        assert b"".join(download.iter_bytes()) == b"data"
    sent = provider.last
    assert str(sent.url) == file_url
    assert sent.headers["Host"] == httpx.URL(file_url).netloc.decode()
    assert "Authorization" not in sent.headers
    assert KEY not in str(sent.url)


def test_download_follows_a_redirect_to_a_cdn_without_the_provider_host() -> None:
    cdn = "https://cdn.example.net/out/clip.mp4"
    provider = Provider(raw(302, headers={"Location": cdn}),
                        raw(200, b"movie", {"Content-Type": "video/mp4"}))
    with client_for(provider) as client, client.open_download(TASK) as download:
        assert b"".join(download.iter_bytes()) == b"movie"
    assert [str(r.url) for r in provider.requests][1] == cdn
    assert provider.requests[1].headers["Host"] == "cdn.example.net"


@pytest.mark.parametrize(
    ("answer", "error", "in_message"),
    [
        (as_json(300, [{"status": "processing"}]), DownloadFailed, "still processing"),
        (as_json(400, {"msg": "invalid_taskId"}), DownloadFailed, "invalid_taskId"),
        (raw(403, "<Error>AccessDenied: Request has expired</Error>"), DownloadFailed, "expired"),
        (raw(503), DownloadUnavailable, "HTTP 503"),
        (raw(429, headers={"Retry-After": "3"}), DownloadUnavailable, "HTTP 429"),
    ],
    ids=["300-processing", "invalid-taskId", "403-expired", "503", "429"],
)
def test_download_non_2xx_is_download_failed(
    answer: httpx.Response, error: type[DownloadFailed], in_message: str
) -> None:
    with client_for(Provider(answer)) as client, pytest.raises(DownloadFailed) as caught, \
            client.open_download(TASK):
        pass
    assert type(caught.value) is error
    assert caught.value.http_status == answer.status_code
    assert in_message in caught.value.message
    assert isinstance(caught.value, ProviderUnavailable) is (error is DownloadUnavailable)


def test_download_interrupted_mid_stream_is_safe_to_repeat() -> None:
    def body() -> Iterator[bytes]:
        yield b"first"
        raise httpx.ReadTimeout("stalled")

    provider = Provider(httpx.Response(200, content=body(), headers={"Content-Type": "video/mp4"}))
    with client_for(provider) as client, client.open_download(TASK) as download:
        received = []
        with pytest.raises(DownloadUnavailable):
            for chunk in download.iter_bytes(chunk_size=5):
                received.append(chunk)
    assert received == [b"first"]


def test_download_shorter_than_content_length_is_reported() -> None:
    provider = Provider(httpx.Response(200, content=iter([b"12345"]), headers={"Content-Length": "10"}))
    with client_for(provider) as client, client.open_download(TASK) as download, \
            pytest.raises(DownloadUnavailable, match="5 of 10 bytes"):
        list(download.iter_bytes())


def test_download_connect_error_is_download_unavailable() -> None:
    with client_for(Provider(_fail_with(httpx.ConnectError))) as client, \
            pytest.raises(DownloadUnavailable), client.open_download(TASK):
        pass


@pytest.mark.parametrize(
    ("disposition", "filename"),
    [
        ("attachment; filename=grok-imagine.zip", "grok-imagine.zip"),
        ("attachment; filename*=UTF-8''na%C3%AFve%20clip.mp4; filename=\"fallback.mp4\"", "naïve clip.mp4"),
        ('attachment; filename="../../etc/passwd"', "passwd"),
        ("inline", None),
    ],
)
def test_download_filename_comes_from_content_disposition(disposition: str, filename: str | None) -> None:
    provider = Provider(raw(200, b"x", {"Content-Disposition": disposition}))
    with client_for(provider) as client, client.open_download(TASK) as download:
        assert download.filename == filename


# ---------------------------------------------------------------------------------------------- config


def test_from_settings_uses_base_url_host_and_timeouts() -> None:
    settings = Settings.model_validate({
        "MEDIAGEN_CLIPRISE_BASE_URL": "http://127.0.0.1:9999/app/cliprise/",
        "MEDIAGEN_CLIPRISE_HOST": "sandbox.cliprise.test",
        "MEDIAGEN_CONNECT_TIMEOUT_SECONDS": "2",
        "MEDIAGEN_READ_TIMEOUT_SECONDS": "11",
    })
    provider = Provider(as_json(200, {"code": 200, "taskId": TASK}))
    with ClipriseClient.from_settings(settings, KEY, transport=httpx.MockTransport(provider)) as client:
        client.generate({"model": "m"})
    sent = provider.last
    assert str(sent.url) == "http://127.0.0.1:9999/app/cliprise/generate"
    assert sent.headers["Host"] == "sandbox.cliprise.test"
    assert sent.extensions["timeout"] == {"connect": 2.0, "read": 11.0, "write": 11.0, "pool": 2.0}


@pytest.mark.parametrize(
    ("key", "base_url"),
    [("", CLIPRISE_BASE_URL), ("  ", CLIPRISE_BASE_URL), ("ab cd-efgh", CLIPRISE_BASE_URL),
     (KEY, "ftp://business.api.cliprise.app/app"), (KEY, f"{CLIPRISE_BASE_URL}?apiKey={KEY}")],
    ids=["empty", "blank", "inner-space", "ftp", "query"],
)
def test_bad_configuration_is_refused_without_echoing_the_key(key: str, base_url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ClipriseClient(key, base_url=base_url)
    assert KEY not in str(caught.value)


# ---------------------------------------------------------------------------------------------- secrets


def _assert_clean(text: str) -> None:
    assert KEY not in text, text


def test_the_api_key_never_reaches_logs_errors_or_reprs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    provider = Provider(
        as_json(200, [{"code": 200, "taskId": TASK}]),
        as_json(300, [{"status": "processing"}]),
        as_json(200, [{"status": "success", "fileURL": FILE_URL}]),
        raw(200, b"bytes", {"Content-Type": "image/png"}),
        # the provider echoing the key back, in every shape an error could carry it
        as_json(400, {"msg": f"invalid_api_key {KEY}"}),
        as_json(200, {"status": "fail", "failMsg": f"could not fetch {FILE_URL}"}),
        raw(500, f"upstream error for {FILE_URL}"),
        as_json(200, {"foo": FILE_URL}),
        as_json(402, {"msg": "insufficient_credits", "action_url": f"https://x.example/?apiKey={KEY}"}),
        _fail_with(httpx.ReadTimeout),
        _fail_with(httpx.ConnectError),
    )
    raised: list[MediagenError] = []
    shown: list[str] = []
    with client_for(provider) as client:
        shown.append(repr(client))
        task = client.generate(GENERATE_BODY)
        assert client.status(task.task_id) == Processing()
        done = client.status(task.task_id)
        assert isinstance(done, Succeeded) and done.file_url == FILE_URL
        shown.append(repr(done))
        with client.open_download(task.task_id, done.file_url) as download:
            assert b"".join(download.iter_bytes()) == b"bytes"
            shown.append(repr(download))
        calls: list[Callable[[], object]] = [
            lambda: client.status(TASK),
            lambda: client.status(TASK),
            lambda: client.generate({"model": "m"}),
            lambda: client.status(TASK),
            lambda: client.generate({"model": "m"}),
            lambda: client.status(TASK),
            lambda: client.generate({"model": "m"}),
        ]
        for call in calls:
            try:
                outcome = call()
            except MediagenError as exc:
                raised.append(exc)
            else:
                shown.append(repr(outcome))  # the Failed state
    assert [type(e) for e in raised] == [ProviderAuthError, AmbiguousSubmit, UnexpectedResponse,
                                         InsufficientCredits, ProviderUnavailable, ProviderUnavailable]

    http_lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert any("HTTP Request: GET" in line and "apiKey=***" in line for line in http_lines)
    for record in caplog.records:
        _assert_clean(record.getMessage())
    _assert_clean(caplog.text)
    for error in raised:
        _assert_clean(str(error))
        _assert_clean(repr(error))
        _assert_clean(repr(vars(error)))
        _assert_clean(json.dumps(error.to_dict()))
        _assert_clean("".join(traceback.format_exception(error)))
    for text in shown:
        _assert_clean(text)


# ---------------------------------------------------------------------------------------------- loopback


class _Emulator(BaseHTTPRequestHandler):
    """Just enough of the provider on 127.0.0.1 to drive httpx's real transport (and httpcore's logs)."""

    hosts: list[str] = []
    release = threading.Event()
    base = ""

    def log_message(self, format: str, *args: Any) -> None:  # keep the test output quiet
        return

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.hosts.append(self.headers["Host"])
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.headers["Host"] != HOST:
            self._send(400, b"")
        elif body["model"] == "answer-after-release":
            self.release.wait(timeout=10)
        else:
            self._send(200, json.dumps([{"code": 200, "taskId": TASK}]).encode())

    def do_GET(self) -> None:
        self.hosts.append(self.headers["Host"])
        query = parse_qs(urlsplit(self.path).query)
        if query.get("download") == ["true"]:
            self._send(200, b"\x89PNG" + b"\x00" * 4096, "image/png")
        else:
            file_url = f"{self.base}/status?apiKey={query['apiKey'][0]}&taskId={TASK}&download=true"
            self._send(200, json.dumps([{"status": "success", "fileURL": file_url}]).encode())


@pytest.fixture
def emulator() -> Iterator[str]:
    _Emulator.hosts = []
    _Emulator.release = threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Emulator)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    _Emulator.base = f"http://127.0.0.1:{server.server_port}/app/cliprise"
    try:
        yield _Emulator.base
    finally:
        _Emulator.release.set()
        server.shutdown()
        server.server_close()
        thread.join()


def test_real_transport_on_loopback_sends_the_host_and_logs_no_key(
    emulator: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    with ClipriseClient(KEY, base_url=emulator) as client:
        task = client.generate(GENERATE_BODY)
        done = client.status(task.task_id)
        assert isinstance(done, Succeeded)
        with client.open_download(task.task_id, done.file_url) as download:
            body = b"".join(download.iter_bytes())
    assert body.startswith(b"\x89PNG") and len(body) == download.content_length == 4100
    assert _Emulator.hosts == [HOST, HOST, HOST]
    assert any(r.name.startswith("httpcore") for r in caplog.records)  # the real stack did log
    for record in caplog.records:
        _assert_clean(record.getMessage())


def test_real_read_timeout_on_generate_is_ambiguous(emulator: str) -> None:
    timeout = httpx.Timeout(connect=2.0, read=0.2, write=2.0, pool=2.0)
    with ClipriseClient(KEY, base_url=emulator, timeout=timeout) as client, \
            pytest.raises(AmbiguousSubmit, match="ReadTimeout"):
        client.generate({"model": "answer-after-release"})


def test_real_connection_refused_is_provider_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again on exit: nothing listens there
    with ClipriseClient(KEY, base_url=f"http://127.0.0.1:{port}/app/cliprise") as client:
        with pytest.raises(ProviderUnavailable, match="ConnectError"):
            client.generate({"model": "m"})
        with pytest.raises(ProviderUnavailable):
            client.status(TASK)
