"""The Clipia adapter (official SDK underneath) and its signed webhooks, against ``httpx.MockTransport``.

Provider facts: the error table [004:148-161], idempotency [004:96-98] and the idempotency page
(``request_in_progress``), auth [004:136-141], submit/result [004:111-119], webhooks [004:92-94],
[004:163-173] and the webhooks page. No network, no emulator, no real sleeps.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import traceback
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from mediagen.errors import ConfigurationError
from mediagen.provider import (
    AmbiguousSubmit,
    CapabilityNotSupported,
    DownloadFailed,
    IdempotencyKeyReuse,
    InsufficientCredits,
    ProviderAuthError,
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
    RateLimited,
    RequestInProgress,
    ResultNotReady,
    UnexpectedResponse,
)
from mediagen.provider.clipia import (
    ClipiaProvider,
    ClipiaSettings,
    RetryPolicy,
    get_clipia_api_key,
    get_webhook_secrets,
    rate_limit_reset,
)
from mediagen.provider.clipia_webhooks import (
    MalformedPayload,
    MalformedSignatureHeader,
    SignatureMismatch,
    TimestampOutOfTolerance,
    verify_delivery,
)
from mediagen.provider.port import (
    Cancelled,
    Failed,
    Queued,
    ResultOutput,
    Running,
    Submitted,
    Succeeded,
    idempotency_key,
)

KEY = "clipia_test_SENTINEL0c4f9a27e1d3"
BASE = "https://api.clipia.ai"
RID = "764cabcf-b745-4b3e-ae38-1200304cf45b"
JOB_KEY = idempotency_key("clipia", "job-0001")
BODY: dict[str, Any] = {"model": "nano-banana-2", "input": {"prompt": "a sunset over mountains, cinematic"}}
ACCEPTED = {"request_id": RID, "status": "IN_QUEUE", "queue_position": 3,
            "status_url": f"{BASE}/v1/requests/{RID}/status", "response_url": f"{BASE}/v1/requests/{RID}",
            "cost": 12}

Answer = httpx.Response | type[Exception] | Callable[[httpx.Request], httpx.Response]


class Script:
    """A scripted Clipia for ``httpx.MockTransport``: records every request, answers from a list (the
    last answer repeats)."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, httpx.Response):
            return answer
        if isinstance(answer, type):
            raise answer("simulated", request=request)
        return answer(request)

    def json_bodies(self) -> list[Any]:
        return [json.loads(r.content) for r in self.requests]


class Sleeps(list[float]):
    """A fake ``time.sleep`` that records the waits."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def ok(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def err(status: int, code: str, message: str = "", headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json={"error": {"type": "api_error", "code": code,
                                                  "message": message or code}}, headers=headers)


def make(script: Script, sleeps: Sleeps | None = None, **kw: Any) -> ClipiaProvider:
    return ClipiaProvider(KEY, transport=httpx.MockTransport(script), sleep=sleeps if sleeps is not None else Sleeps(),
                          **kw)


def submit(provider: ClipiaProvider, **kw: Any) -> Submitted:
    return provider.submit(BODY, idempotency_key=JOB_KEY, **kw)


# ------------------------------------------------------------------------------------------ submit


def test_submit_posts_the_input_with_key_scheme_and_the_jobs_idempotency_key() -> None:
    script = Script(ok(ACCEPTED))
    submitted = submit(make(script), webhook_url="https://hooks.example.com/clipia/tok-1")
    assert submitted == Submitted(provider_task_id=RID, cost=12, queue_position=3)
    (request,) = script.requests
    assert request.method == "POST"
    assert str(request.url) == f"{BASE}/v1/models/nano-banana-2"
    assert request.headers["Authorization"] == f"Key {KEY}"  # [004:136-141]
    assert request.headers["Idempotency-Key"] == JOB_KEY
    assert json.loads(request.content) == {"input": BODY["input"],
                                           "webhook_url": "https://hooks.example.com/clipia/tok-1"}


def test_bearer_scheme_when_configured() -> None:
    script = Script(ok(ACCEPTED))
    submit(make(script, auth_scheme="Bearer"))
    assert script.requests[0].headers["Authorization"] == f"Bearer {KEY}"


def test_idempotency_key_is_a_deterministic_uuid5_per_provider_and_job() -> None:
    assert idempotency_key("clipia", "job-0001") == idempotency_key("clipia", "job-0001")
    assert idempotency_key("clipia", "job-0001") != idempotency_key("clipia", "job-0002")
    assert idempotency_key("clipia", "job-0001") != idempotency_key("cliprise", "job-0001")
    assert uuid.UUID(JOB_KEY).version == 5


@pytest.mark.parametrize("first", [httpx.ReadTimeout, httpx.RemoteProtocolError,
                                   err(500, "internal_error"), err(503, "internal_error")])
def test_an_unclear_submit_is_retried_with_the_same_key_and_ends_in_one_request(first: Answer) -> None:
    script, sleeps = Script(first, ok(ACCEPTED)), Sleeps()
    submitted = submit(make(script, sleeps))
    assert submitted.provider_task_id == RID
    assert len(script.requests) == 2
    assert {r.headers["Idempotency-Key"] for r in script.requests} == {JOB_KEY}
    assert script.json_bodies()[0] == script.json_bodies()[1]
    assert sleeps == [0.5]


def test_each_retry_is_logged_with_the_error_code(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="mediagen.provider.clipia")
    submit(make(Script(err(503, "internal_error", f"upstream saw {KEY}"), ok(ACCEPTED))))
    (record,) = [r for r in caplog.records if r.name == "mediagen.provider.clipia"]
    assert "attempt 1 of 4" in record.getMessage() and "ambiguous_submit" in record.getMessage()
    assert KEY not in record.getMessage()


def test_when_every_attempt_is_unclear_the_outcome_is_ambiguous() -> None:
    script, sleeps = Script(httpx.ReadTimeout), Sleeps()
    with pytest.raises(AmbiguousSubmit) as caught:
        submit(make(script, sleeps, retry=RetryPolicy(attempts=3)))
    assert len(script.requests) == 3
    assert {r.headers["Idempotency-Key"] for r in script.requests} == {JOB_KEY}
    assert sleeps == [0.5, 1.0]  # exponential backoff without a provider hint
    assert "same Idempotency-Key" in caught.value.message


def test_a_connect_failure_on_every_attempt_is_unavailable_not_ambiguous() -> None:
    script = Script(httpx.ConnectError)
    with pytest.raises(ProviderUnavailable) as caught:
        submit(make(script, retry=RetryPolicy(attempts=2)))
    assert not isinstance(caught.value, AmbiguousSubmit)
    assert len(script.requests) == 2


def test_a_2xx_without_request_id_is_retried_with_the_same_key() -> None:
    script = Script(ok({"status": "IN_QUEUE"}), ok(ACCEPTED))
    assert submit(make(script)).provider_task_id == RID
    assert len(script.requests) == 2


# One row per line of the error table [004:148-161]: never retried, code and message kept.
@pytest.mark.parametrize(("status", "code", "error"), [
    (400, "invalid_request", ProviderRejected),
    (401, "invalid_api_key", ProviderAuthError),
    (402, "insufficient_credits", InsufficientCredits),
    (403, "insufficient_scope", ProviderAuthError),
    (404, "not_found", ProviderRejected),
    (409, "idempotency_key_reuse", IdempotencyKeyReuse),
    (422, "model_input_invalid", ProviderRejected),
])
def test_error_table_definitive_refusals_are_not_retried(status: int, code: str, error: type[ProviderError]) -> None:
    script, sleeps = Script(err(status, code, f"explanation for {code}")), Sleeps()
    with pytest.raises(error) as caught:
        submit(make(script, sleeps))
    assert isinstance(caught.value, ProviderRejected)  # the job is REJECTED, nothing spent
    assert len(script.requests) == 1 and sleeps == []
    assert caught.value.http_status == status
    assert caught.value.provider_code == code
    assert f"explanation for {code}" in caught.value.message


def test_insufficient_credits_is_a_rejection_with_nothing_spent() -> None:
    assert issubclass(InsufficientCredits, ProviderRejected)


def test_409_request_in_progress_waits_and_then_gets_the_same_request() -> None:
    script, sleeps = Script(err(409, "request_in_progress", headers={"Retry-After": "2"}), ok(ACCEPTED)), Sleeps()
    assert submit(make(script, sleeps)).provider_task_id == RID
    assert sleeps == [2.0]
    assert {r.headers["Idempotency-Key"] for r in script.requests} == {JOB_KEY}


def test_409_request_in_progress_until_the_end_is_retry_later_not_ambiguous() -> None:
    script = Script(httpx.ReadTimeout, err(409, "request_in_progress"))
    with pytest.raises(RequestInProgress) as caught:
        submit(make(script, retry=RetryPolicy(attempts=3)))
    assert isinstance(caught.value, ProviderUnavailable)  # orchestration: retry later, same key
    assert not isinstance(caught.value, ProviderRejected)
    assert len(script.requests) == 3


def test_a_409_request_in_progress_followed_by_429s_still_says_the_request_exists() -> None:
    # Ending on RateLimited would let the pipeline refund the job and fall back to another provider while the
    # first request runs and is charged.
    script = Script(err(409, "request_in_progress", headers={"Retry-After": "1"}),
                    err(429, "rate_limit_exceeded", headers={"Retry-After": "5"}))
    with pytest.raises(RequestInProgress) as caught:
        submit(make(script, retry=RetryPolicy(attempts=3)))
    assert not isinstance(caught.value, RateLimited)
    assert caught.value.retry_after == 5.0
    assert len(script.requests) == 3


def test_429_honours_retry_after() -> None:
    script, sleeps = Script(err(429, "rate_limit_exceeded", headers={"Retry-After": "7"}), ok(ACCEPTED)), Sleeps()
    submit(make(script, sleeps))
    assert sleeps == [7.0]


def test_429_without_retry_after_honours_ratelimit_reset() -> None:
    headers = {"RateLimit-Limit": "120", "RateLimit-Remaining": "0", "RateLimit-Reset": "3"}
    script, sleeps = Script(err(429, "rate_limit_exceeded", headers=headers), ok(ACCEPTED)), Sleeps()
    submit(make(script, sleeps))
    assert sleeps == [3.0]


def test_ratelimit_reset_in_the_structured_header() -> None:
    assert rate_limit_reset({"ratelimit": '"default";r=0;t=9'}) == 9.0
    assert rate_limit_reset({"ratelimit-reset": "x"}) is None
    assert rate_limit_reset({}) is None


def test_429_asking_for_more_than_the_longest_wait_is_handed_back_at_once() -> None:
    script, sleeps = Script(err(429, "rate_limit_exceeded", headers={"Retry-After": "120"})), Sleeps()
    with pytest.raises(RateLimited) as caught:
        submit(make(script, sleeps))
    assert caught.value.retry_after == 120.0
    assert len(script.requests) == 1 and sleeps == []


def test_waits_stay_within_the_budget() -> None:
    script, sleeps = Script(err(503, "internal_error", headers={"Retry-After": "4"})), Sleeps()
    with pytest.raises(AmbiguousSubmit):
        submit(make(script, sleeps, retry=RetryPolicy(attempts=10, budget=10.0)))
    assert sleeps == [4.0, 4.0]
    assert len(script.requests) == 3


def test_submit_refuses_a_body_it_cannot_send_before_sending() -> None:
    script = Script(ok(ACCEPTED))
    provider = make(script)
    with pytest.raises(ValueError, match="model"):
        provider.submit({"input": {}}, idempotency_key=JOB_KEY)
    with pytest.raises(ValueError, match="allows only"):
        provider.submit({**BODY, "callBackUrl": "x"}, idempotency_key=JOB_KEY)
    with pytest.raises(ValueError, match="UUID"):
        provider.submit(BODY, idempotency_key="job-0001")
    assert script.requests == []


# ------------------------------------------------------------------------------------ status/result


@pytest.mark.parametrize(("answer", "state"), [
    ({"request_id": RID, "status": "IN_QUEUE", "queue_position": 4}, Queued(queue_position=4)),
    ({"request_id": RID, "status": "IN_PROGRESS", "progress": 40}, Running(progress=40)),
    ({"request_id": RID, "status": "COMPLETED"}, Succeeded()),
    ({"request_id": RID, "status": "CANCELED"}, Cancelled(refunded=True)),
])
def test_status_maps_each_state(answer: dict[str, Any], state: object) -> None:
    script = Script(ok(answer))
    assert make(script).status(RID) == state
    assert str(script.requests[0].url) == f"{BASE}/v1/requests/{RID}/status"


def test_failed_status_carries_the_results_error_and_is_refunded() -> None:
    script = Script(ok({"request_id": RID, "status": "FAILED"}),
                    ok({"request_id": RID, "status": "FAILED", "error": {"code": "GENERATION_FAILED",
                                                                        "message": "nsfw filter"}, "cost": 0}))
    assert make(script).status(RID) == Failed(message="nsfw filter", code="GENERATION_FAILED", refunded=True)
    assert [r.url.path for r in script.requests] == [f"/v1/requests/{RID}/status", f"/v1/requests/{RID}"]


def test_unknown_status_is_unexpected() -> None:
    with pytest.raises(UnexpectedResponse):
        make(Script(ok({"request_id": RID, "status": "EXPLODED"}))).status(RID)


def test_status_404_is_a_rejection_and_5xx_is_retried() -> None:
    with pytest.raises(ProviderRejected):
        make(Script(err(404, "not_found"))).status(RID)
    script = Script(err(502, "internal_error"), ok({"request_id": RID, "status": "IN_QUEUE"}))
    assert make(script).status(RID) == Queued()
    with pytest.raises(ProviderUnavailable):
        make(Script(err(503, "internal_error")), retry=RetryPolicy(attempts=2)).status(RID)


def test_result_returns_every_output() -> None:
    output = {
        "images": [{"url": "https://media.clipia.ai/a.png", "width": 1024, "height": 1024},
                   {"url": "https://media.clipia.ai/b.png", "content_type": "image/png"}],
        "video": {"url": "https://media.clipia.ai/c.mp4", "duration": 5},
        "audio": {"url": "https://media.clipia.ai/d.mp3"},
        "audios": [{"url": "https://media.clipia.ai/d.mp3"}, {"url": "https://media.clipia.ai/e.mp3"}],
    }
    script = Script(ok({"request_id": RID, "status": "COMPLETED", "output": output, "cost": 12}))
    outputs = make(script).result(RID)
    assert [(o.url, o.kind, o.index) for o in outputs] == [
        ("https://media.clipia.ai/a.png", "image", 0), ("https://media.clipia.ai/b.png", "image", 1),
        ("https://media.clipia.ai/c.mp4", "video", 2), ("https://media.clipia.ai/d.mp3", "audio", 3),
        ("https://media.clipia.ai/e.mp3", "audio", 4)]
    assert outputs[1].content_type == "image/png"
    assert outputs[0].metadata == {"width": 1024, "height": 1024}


def test_result_while_running_is_not_ready() -> None:
    script = Script(ok({"request_id": RID, "status": "IN_PROGRESS", "progress": 10}, status=202))
    with pytest.raises(ResultNotReady) as caught:
        make(script).result(RID)
    assert caught.value.state == Running(progress=10)


def test_result_of_a_failed_request_is_not_ready_with_the_failure() -> None:
    script = Script(ok({"request_id": RID, "status": "FAILED", "error": {"code": "X", "message": "boom"}}))
    with pytest.raises(ResultNotReady) as caught:
        make(script).result(RID)
    assert caught.value.state == Failed(message="boom", code="X", refunded=True)


def test_completed_without_outputs_is_unexpected() -> None:
    with pytest.raises(UnexpectedResponse):
        make(Script(ok({"request_id": RID, "status": "COMPLETED", "output": {}}))).result(RID)


# ------------------------------------------------------------------------------------ download etc.


def test_download_from_the_cdn_carries_no_key_and_streams_the_bytes() -> None:
    script = Script(httpx.Response(200, content=b"PNGDATA", headers={"Content-Type": "image/png"}))
    provider = make(script)
    with provider.open_download(RID, ResultOutput(url="https://media.clipia.ai/a.png")) as download:
        assert b"".join(download.iter_bytes()) == b"PNGDATA"
        assert download.content_type == "image/png"
    assert "Authorization" not in script.requests[0].headers


def test_download_from_the_api_origin_carries_the_key() -> None:
    script = Script(httpx.Response(200, content=b"x"))
    with make(script).open_download(RID, ResultOutput(url=f"{BASE}/v1/files/a.png")) as download:
        b"".join(download.iter_bytes())
    assert script.requests[0].headers["Authorization"] == f"Key {KEY}"


def test_download_of_an_expired_link_fails_definitively() -> None:
    with pytest.raises(DownloadFailed) as caught, \
            make(Script(httpx.Response(403))).open_download(RID, ResultOutput(url="https://media.clipia.ai/a.png")):
        pass
    assert caught.value.http_status == 403
    with pytest.raises(DownloadFailed):
        make(Script(ok({}))).open_download(RID, ResultOutput(url=None))


def test_cancel_posts_and_a_missing_route_is_not_supported() -> None:
    script = Script(ok({"request_id": RID, "status": "CANCELED"}))
    make(script).cancel(RID)
    assert (script.requests[0].method, script.requests[0].url.path) == ("POST", f"/v1/requests/{RID}/cancel")
    with pytest.raises(CapabilityNotSupported):
        make(Script(httpx.Response(404, text="Not Found"))).cancel(RID)
    with pytest.raises(ProviderRejected):
        make(Script(err(404, "not_found"))).cancel(RID)


def test_estimate_returns_credits() -> None:
    script = Script(ok({"credits": 24}))
    assert make(script).estimate(BODY) == 24
    assert script.requests[0].url.path == "/v1/models/nano-banana-2/estimate"
    assert json.loads(script.requests[0].content) == {"input": BODY["input"]}


# ------------------------------------------------------------------------------------ configuration


@pytest.mark.parametrize(("key", "base_url"), [
    ("", BASE), ("clipia test key", BASE), (KEY, "http://api.clipia.ai"), (KEY, "ftp://x"),
])
def test_bad_configuration_is_refused_without_echoing_the_key(key: str, base_url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ClipiaProvider(key, base_url=base_url, transport=httpx.MockTransport(Script(ok({}))))
    assert KEY not in str(caught.value)


def test_loopback_http_is_allowed_for_the_emulator() -> None:
    script = Script(ok(ACCEPTED))
    provider = make(script, base_url="http://127.0.0.1:8123")
    submit(provider)
    assert str(script.requests[0].url) == "http://127.0.0.1:8123/v1/models/nano-banana-2"


def test_settings_and_key_lookup() -> None:
    settings = ClipiaSettings.from_env({"MEDIAGEN_CLIPIA_BASE_URL": "http://localhost:9000",
                                        "MEDIAGEN_CLIPIA_AUTH_SCHEME": "Bearer",
                                        "MEDIAGEN_CLIPIA_API_KEY_SECRET_ID": "clipia/key"})
    assert settings.base_url == "http://localhost:9000" and settings.auth_scheme == "Bearer"
    assert ClipiaSettings.from_env({}).base_url == BASE and ClipiaSettings.from_env({}).auth_scheme == "Key"
    assert get_clipia_api_key(settings, read_secret=lambda _id: KEY) == KEY
    with pytest.raises(ConfigurationError, match="holds no key"):
        get_clipia_api_key(settings, read_secret=lambda _id: "REPLACE_ME please")
    with pytest.raises(ConfigurationError):
        get_clipia_api_key(ClipiaSettings.from_env({}))
    assert get_clipia_api_key(ClipiaSettings.from_env({"CLIPIA_API_KEY": f" {KEY} "})) == KEY
    provider = ClipiaProvider.from_settings(settings, KEY, transport=httpx.MockTransport(Script(ok(ACCEPTED))))
    assert provider.base_url == "http://localhost:9000" and provider.auth_scheme == "Bearer"


def test_webhook_secrets_from_env_or_a_json_array_secret() -> None:
    assert get_webhook_secrets(ClipiaSettings.from_env({"CLIPIA_WEBHOOK_SECRETS": "whsec_new_123, whsec_old_456"})) == (
        "whsec_new_123", "whsec_old_456")
    from_secret = ClipiaSettings.from_env({"MEDIAGEN_CLIPIA_WEBHOOK_SECRET_ID": "clipia/webhook"})
    assert get_webhook_secrets(from_secret, read_secret=lambda _id: '["whsec_a_123", "whsec_b_456"]') == (
        "whsec_a_123", "whsec_b_456")
    assert get_webhook_secrets(from_secret, read_secret=lambda _id: "whsec_single_1") == ("whsec_single_1",)
    with pytest.raises(ConfigurationError):
        get_webhook_secrets(ClipiaSettings.from_env({}))


def test_the_key_never_reaches_errors_reprs_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    echo = Script(
        err(401, "invalid_api_key", f"key {KEY} is revoked (Authorization: Key {KEY})"),
    )
    provider = make(echo)
    texts: list[str] = [repr(provider), str(provider)]
    for action in (lambda: submit(provider), lambda: provider.status(RID)):
        with pytest.raises(ProviderError) as caught:
            action()
        texts += [str(caught.value), repr(caught.value), caught.value.message, str(caught.value.to_dict()),
                  "".join(traceback.format_exception(caught.value))]  # no chained SDK/httpx exception
    timeout = make(Script(httpx.ReadTimeout), retry=RetryPolicy(attempts=1))
    with pytest.raises(ProviderError) as caught:
        submit(timeout)
    texts += [str(caught.value), "".join(traceback.format_exception(caught.value))]
    texts += [r.getMessage() for r in caplog.records]
    assert all(KEY not in text for text in texts)
    assert any("***" in text for text in texts)


# ------------------------------------------------------------------------------------ webhooks

SECRET = "whsec_current_5c1e0f7a"
OLD_SECRET = "whsec_previous_99b2d3c4"
NOW = 1_717_243_200
DELIVERY = json.dumps({"request_id": RID, "status": "OK", "payload": {
    "model": "nano-banana-2", "output": {"images": [{"url": "https://media.clipia.ai/works/result.png"}]},
    "cost": 12}}).encode()


def signed(body: bytes, secret: str = SECRET, t: int = NOW) -> dict[str, str]:
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Clipia-Webhook-Id": "1f2e3d4c", "X-Clipia-Timestamp": str(t),
            "X-Clipia-Signature": f"t={t},v1={digest}"}


def test_a_valid_delivery_is_verified_and_parsed() -> None:
    event = verify_delivery(signed(DELIVERY), DELIVERY, [SECRET], now=NOW + 10)
    assert event.provider_task_id == RID
    assert event.state == Succeeded(cost=12) and event.cost == 12
    assert [o.url for o in event.outputs] == ["https://media.clipia.ai/works/result.png"]
    assert event.delivery_id == "1f2e3d4c"


def test_header_names_are_case_insensitive() -> None:
    headers = {k.lower(): v for k, v in signed(DELIVERY).items()}
    assert verify_delivery(headers, DELIVERY, [SECRET], now=NOW).provider_task_id == RID


def test_an_error_delivery_is_a_refunded_failure() -> None:
    body = json.dumps({"request_id": RID, "status": "ERROR",
                       "error": {"code": "GENERATION_FAILED", "message": "upstream error"}}).encode()
    event = verify_delivery(signed(body), body, [SECRET], now=NOW)
    assert event.state == Failed(message="upstream error", code="GENERATION_FAILED", refunded=True)


def test_a_delivery_signed_with_the_previous_secret_is_accepted_during_rotation() -> None:
    assert verify_delivery(signed(DELIVERY, OLD_SECRET), DELIVERY, [SECRET, OLD_SECRET], now=NOW).provider_task_id
    with pytest.raises(SignatureMismatch):
        verify_delivery(signed(DELIVERY, OLD_SECRET), DELIVERY, [SECRET], now=NOW)


def test_a_tampered_body_or_a_wrong_secret_fails() -> None:
    with pytest.raises(SignatureMismatch) as caught:
        verify_delivery(signed(DELIVERY), DELIVERY.replace(b"12", b"1"), [SECRET], now=NOW)
    with pytest.raises(SignatureMismatch):
        verify_delivery(signed(DELIVERY, "whsec_attacker_0000"), DELIVERY, [SECRET], now=NOW)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(("now", "sign"), [(NOW + 301, "old"), (NOW - 301, "in the future")])
def test_stale_and_future_timestamps_fail(now: int, sign: str) -> None:
    with pytest.raises(TimestampOutOfTolerance, match=sign) as caught:
        verify_delivery(signed(DELIVERY), DELIVERY, [SECRET], now=now)
    assert (caught.value.skew_seconds > 0) == (sign == "old")
    assert verify_delivery(signed(DELIVERY), DELIVERY, [SECRET], now=NOW + 300).provider_task_id == RID


def test_the_unsigned_timestamp_header_is_not_trusted() -> None:
    headers = {**signed(DELIVERY, t=NOW - 3600), "X-Clipia-Timestamp": str(NOW)}
    with pytest.raises(TimestampOutOfTolerance):
        verify_delivery(headers, DELIVERY, [SECRET], now=NOW)


@pytest.mark.parametrize("header", [
    None, "", "v1=" + "a" * 64, f"t={NOW}", f"t=abc,v1={'a' * 64}", f"t={NOW},v1=zz", f"t={NOW},t={NOW},v1={'a' * 64}",
])
def test_malformed_signature_headers_fail(header: str | None) -> None:
    headers = {} if header is None else {"X-Clipia-Signature": header}
    with pytest.raises(MalformedSignatureHeader):
        verify_delivery(headers, DELIVERY, [SECRET], now=NOW)


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"status": "OK"}', b'{"request_id": "r", "status": "MAYBE"}',
                                  b'{"request_id": "r", "status": "OK"}'])
def test_a_signed_but_malformed_payload_fails(body: bytes) -> None:
    with pytest.raises(MalformedPayload):
        verify_delivery(signed(body), body, [SECRET], now=NOW)


def test_no_secret_configured_refuses_every_delivery() -> None:
    with pytest.raises(ConfigurationError):
        verify_delivery(signed(DELIVERY), DELIVERY, [], now=NOW)


def test_the_adapter_verifies_with_its_secrets_and_clock() -> None:
    provider = make(Script(ok({})), webhook_secrets=(SECRET, OLD_SECRET), clock=lambda: float(NOW))
    assert provider.verify_webhook(signed(DELIVERY, OLD_SECRET), DELIVERY).provider_task_id == RID
    late = make(Script(ok({})), webhook_secrets=(SECRET,), clock=lambda: float(NOW + 600))
    with pytest.raises(TimestampOutOfTolerance):
        late.verify_webhook(signed(DELIVERY), DELIVERY)
