"""Typed errors of the Cliprise transport, and the one place that builds them.

Every HTTP response that is not a documented success, and every ``httpx`` transport failure, is turned
into exactly one of the classes below by :func:`error_from_response` or :func:`error_from_transport_error`.
Callers decide what to do from the *class* alone:

=========================  ===========================================================================
class                      meaning for the caller
=========================  ===========================================================================
``ProviderRejected``       definitive refusal, no credits spent: do not retry the same request
``ProviderAuthError``      ... because the API key is missing or invalid
``InsufficientCredits``    ... because the account has no credits left (``action_url`` = top-up page)
``RateLimited``            not processed; retry after ``retry_after`` seconds (or a backoff)
``ProviderUnavailable``    certainly not processed (or a read that is safe to repeat): retry
``AmbiguousSubmit``        generate only: may or may not have been accepted -- a retry can charge twice
``UnexpectedResponse``     a status answer none of the documents describe
``DownloadFailed``         fetching the result failed definitively (4xx, 3xx, bad URL)
``DownloadUnavailable``    fetching the result failed in a way that is safe to repeat (network, 5xx, 429)
``IdempotencyKeyReuse``    (a ``ProviderRejected``) the idempotency key was already used with other parameters
``RequestInProgress``      (a ``ProviderUnavailable``) the first request with this idempotency key is still
                           being processed: submit again later with the same key, it returns that request
``ResultNotReady``         a result was asked for a request that has not completed (``state`` says where it is)
``CapabilityNotSupported`` the provider has no such operation (e.g. cancel)
=========================  ===========================================================================

The last four serve providers with native idempotency (Clipia, [004:96-98], [004:158]).

Every message is redacted (``mediagen.redact.redact_text``) when the error is built, so neither
``str(error)`` nor ``repr(error)`` can carry the API key, even when the provider echoes a URL.

Provider facts used here:

- "Error Reference" [002:198-208] -- generate errors: wrong Host -> HTTP 400 with an empty body;
  ``{"msg":"invalid_api_key"}``; ``{"msg":"invalid_model_id"}``; insufficient credits -> HTTP 200 with
  ``insufficient_credits`` + ``action_url``; missing field -> HTTP 200 ``{"code":400,"msg":...,"data":null}``.
- "Authentication" [002:115-132] and "Base URL and host" [003:10-13] -- Host gate: HTTP 400 with an empty body
  or ``{"msg":"method_not_allowed"}``.
- "Status & Download" [002:164-187] -- ``{"msg":"invalid_api_key"}`` / ``{"msg":"invalid_taskId"}`` (HTTP 400).
- "Authentication" [000:53-64] -- 401 ``{"code":401,"error":{"code":"invalid_api_key","message":...}}``;
  402 = no credits; "Credits & Pricing" [000:132-141] -- 429
  ``{"code":429,"error":{"code":"rate_limit_exceeded","message":...}}``; "Errors" [000:170-177] -- 400
  ``{"msg":"reason for failure"}``.
- "FAQ" [002:1209-1244] -- requests rejected before queueing do not consume credits; credits are deducted
  when a task is accepted.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, Literal

import httpx

from mediagen.errors import MediagenError
from mediagen.redact import redact_text
from mediagen.settings import CLIPRISE_HOST

Operation = Literal["generate", "status", "download"]
"""Which call produced a response: the same HTTP answer means different things for each."""

#: How much of an error body is kept for parsing (error bodies are small JSON documents).
ERROR_BODY_LIMIT = 64 * 1024
#: How many characters of a provider message end up in an error message.
_DETAIL_LIMIT = 300

# Documented provider error tokens (lower-cased). See the module docstring for sources.
_INSUFFICIENT_CREDITS = "insufficient_credits"
_INVALID_API_KEY = "invalid_api_key"
_RATE_LIMIT = "rate_limit_exceeded"
_INVALID_MODEL_ID = "invalid_model_id"
_INVALID_TASK_ID = "invalid_taskid"
_METHOD_NOT_ALLOWED = "method_not_allowed"
_REFUSAL_TOKENS = (_INVALID_MODEL_ID, _INVALID_TASK_ID, _METHOD_NOT_ALLOWED)



def _wrong_host_hint(sent: str) -> str:
    hint = f"the provider answers this when the Host header is not exactly {CLIPRISE_HOST!r}"
    if sent != CLIPRISE_HOST:
        hint += f" (this client sent {sent!r})"
    return hint + " ('Authentication' [002:115-132], Host gate)"


class ProviderError(MediagenError):
    """Base class of every error the Cliprise transport raises.

    Attributes:
        http_status: the HTTP status of the provider's answer; ``None`` when no answer arrived.
        provider_code: the provider's own error token when it sent one (``"invalid_api_key"``,
            ``"rate_limit_exceeded"``, ``"invalid_taskId"`` ...), else ``None``.
        retry_after: seconds the provider asked us to wait (``Retry-After`` header), else ``None``.
        message: human-readable, redacted (never carries the API key).
    """

    code = "provider_error"

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        provider_code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(redact_text(message))
        self.http_status = http_status
        self.provider_code = redact_text(provider_code) if provider_code is not None else None
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, http_status={self.http_status!r}, "
            f"provider_code={self.provider_code!r})"
        )


class ProviderRejected(ProviderError):
    """The provider definitively refused the request; no credits were spent. Do not retry it unchanged.

    Raised for HTTP 400 with a JSON body, HTTP 400 with an empty body (wrong Host header), HTTP 200
    carrying ``{"code":400,"msg":...}``, ``invalid_model_id``, ``method_not_allowed``,
    ``invalid_taskId`` and other 4xx answers ("Error Reference" [002:198-208]).
    """

    code = "provider_rejected"


class ProviderAuthError(ProviderRejected):
    """The API key is missing or invalid: HTTP 401 ``{"code":401,"error":{"code":"invalid_api_key"}}``
    ("Authentication" [000:53-64]) or HTTP 400 ``{"msg":"invalid_api_key"}`` ("Error Reference" [002:198-208]).
    """

    code = "provider_auth_error"


class InsufficientCredits(ProviderRejected):
    """The account has no API credits left: HTTP 402 ("Authentication" [000:53-64]) or HTTP 200 with
    ``insufficient_credits`` and an ``action_url`` ("Error Reference" [002:198-208]).

    Attributes:
        action_url: the provider's top-up / pricing link when it sent one, else ``None``.
    """

    code = "insufficient_credits"

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        provider_code: str | None = None,
        retry_after: float | None = None,
        action_url: str | None = None,
    ) -> None:
        super().__init__(message, http_status=http_status, provider_code=provider_code,
                         retry_after=retry_after)
        self.action_url = redact_text(action_url) if action_url is not None else None


class RateLimited(ProviderError):
    """HTTP 429 ``{"code":429,"error":{"code":"rate_limit_exceeded",...}}`` ("Credits & Pricing" [000:132-141]:
    plan limits on requests/min, concurrent jobs and queue depth). The request was not processed.

    ``retry_after`` holds the ``Retry-After`` header in seconds (``None`` when absent): wait at least
    that long before trying again.
    """

    code = "rate_limited"


class ProviderUnavailable(ProviderError):
    """The request certainly was not processed, or it is safe to repeat (a read, or a submit carrying an
    idempotency key the provider honours).

    Raised for connect errors, connect and pool timeouts (every operation), and for ``status`` also for
    read timeouts, broken connections and HTTP 5xx. Retrying is safe.
    """

    code = "provider_unavailable"


class AmbiguousSubmit(ProviderError):
    """Generate only: the request may have reached the provider and we do not know the outcome.

    Raised for a read/write timeout or a broken connection after the request was sent, HTTP 5xx, an
    HTTP 2xx whose body does not carry a task id, and other unexplained answers to ``POST /generate``.

    The provider has no idempotency key ("Generate Endpoint" [002:133-163] lists no such header; credits are
    deducted when a task is accepted, "FAQ" [002:1209-1244]): **retrying the POST can create a second task and
    charge twice.** Callers must not retry blindly; treat the job as needing attention.
    """

    code = "ambiguous_submit"


class IdempotencyKeyReuse(ProviderRejected):
    """HTTP 409 ``idempotency_key_reuse``: the idempotency key was already used for a request with other
    parameters ([004:158]; Clipia idempotency page: "same key + different parameters"). Nothing new was
    created or charged; repeating the same submit will be refused again, so the job is rejected."""

    code = "idempotency_key_reuse"


class RequestInProgress(ProviderUnavailable):
    """HTTP 409 ``request_in_progress``: a request with this idempotency key is still being processed
    (Clipia idempotency page: "Retry while the first request is still processing"). Submit the same
    body with the same key later: the provider then returns that request's id, without a second charge.
    ``retry_after`` holds the provider's ``Retry-After`` in seconds when it sent one."""

    code = "request_in_progress"


class ResultNotReady(ProviderError):
    """``result`` was called for a request that has not completed (HTTP 202 from Clipia's
    ``GET /v1/requests/{id}``, [004:117-119]), or that ended without outputs (failed, cancelled).

    Attributes:
        state: what the provider says about the request (a :mod:`mediagen.provider.port` state), or
            ``None`` when unknown.
    """

    code = "result_not_ready"

    def __init__(self, message: str, *, state: object = None, http_status: int | None = None) -> None:
        super().__init__(message, http_status=http_status)
        self.state = state


class CapabilityNotSupported(ProviderError):
    """The provider has no such operation (e.g. ``cancel`` on a provider without a cancel endpoint).
    Nothing was sent."""

    code = "capability_not_supported"


class UnexpectedResponse(ProviderError):
    """The status endpoint answered with a shape none of the documents describe (
    "Status & Download" [002:164-187], "Polling status" [000:275-292]). Nothing is inferred from it."""

    code = "unexpected_response"


class DownloadFailed(ProviderError):
    """Fetching a result failed: every non-2xx answer to a download, and every transport failure
    while streaming it. ``http_status``/``provider_code`` say why (e.g. HTTP 300 = task still processing,
    403 = an expired CDN link, ``invalid_taskId``)."""

    code = "download_failed"


class DownloadUnavailable(DownloadFailed, ProviderUnavailable):
    """A download failed in a way that is safe to repeat: network error or timeout (also mid-stream),
    an incomplete body, HTTP 5xx, 408 or 429. It is both a :class:`DownloadFailed` and a
    :class:`ProviderUnavailable`."""

    code = "download_unavailable"


# --------------------------------------------------------------------------------------------------
# Body inspection, shared with the client (success parsing) so both read bodies the same way.

NOT_JSON: Any = object()
"""Sentinel returned by :func:`decode_json` for bodies that are empty or not JSON."""
_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+")


def decode_json(raw: bytes) -> Any:
    """Decode a response body; return the sentinel :data:`NOT_JSON` for empty or non-JSON bodies.

    Never raises.
    """
    if not raw.strip():
        return NOT_JSON
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return NOT_JSON


def first_object(payload: Any) -> dict[str, Any] | None:
    """The object a Cliprise body describes: the body itself, or ``body[0]`` when it is an array.

    "Generate Endpoint" [002:133-163]: "Handle both Array[0].taskId and .taskId"; status bodies come in both
    forms too ("Polling status" [000:275-292]: ``[{"status":"processing"}]`` vs ``{"status":"fail",...}``).
    """
    if isinstance(payload, list) and payload:
        payload = payload[0]
    return payload if isinstance(payload, dict) else None


def body_code(entry: Mapping[str, Any] | None) -> int | None:
    """The body-level ``code`` as an int (``200``, ``400``, ``"402"`` -> 402), else ``None``."""
    if entry is None:
        return None
    value = entry.get("code")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _provider_message(entry: Mapping[str, Any] | None) -> str | None:
    if entry is None:
        return None
    err = entry.get("error")
    if isinstance(err, Mapping) and isinstance(err.get("message"), str):
        return str(err["message"])
    for key in ("msg", "message", "failMsg"):
        if isinstance(entry.get(key), str) and entry[key].strip():
            return str(entry[key])
    if isinstance(err, str) and err.strip():
        return err
    return None


def _provider_token(entry: Mapping[str, Any] | None) -> str | None:
    """A machine-readable error token from the documented shapes: ``error.code``, ``msg``, ``error``."""
    if entry is None:
        return None
    err = entry.get("error")
    candidates = [
        err.get("code") if isinstance(err, Mapping) else err,
        entry.get("msg"),
        entry.get("code"),
    ]
    for value in candidates:
        if isinstance(value, str) and _TOKEN.fullmatch(value.strip()):
            return value.strip()
    return None


def _action_url(payload: Any) -> str | None:
    items = payload if isinstance(payload, list) else [payload]
    for item in items:
        if not isinstance(item, Mapping):
            continue
        for holder in (item, item.get("error"), item.get("data")):
            if isinstance(holder, Mapping):
                for key in ("action_url", "actionUrl", "actionURL"):
                    if isinstance(holder.get(key), str):
                        return str(holder[key])
    return None


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP-date, RFC 9110 10.2.3); ``None`` if absent
    or malformed; never negative."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        from datetime import UTC, datetime
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - datetime.now(UTC)).total_seconds())
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _snippet(raw: bytes) -> str:
    text = " ".join(raw[: _DETAIL_LIMIT * 4].decode("utf-8", errors="replace").split())
    return text[:_DETAIL_LIMIT] + ("..." if len(text) > _DETAIL_LIMIT else "")


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text[:_DETAIL_LIMIT] + ("..." if len(text) > _DETAIL_LIMIT else "")


# --------------------------------------------------------------------------------------------------
# The one place that maps answers and failures to errors.


def error_from_response(
    response: httpx.Response,
    operation: Operation,
    *,
    body: bytes | None = None,
    host: str = CLIPRISE_HOST,
    provider: str = "Cliprise",
) -> ProviderError:
    """Map a provider answer that is not a documented success to the matching :class:`ProviderError`.

    Args:
        response: the answer (its body must have been read, unless ``body`` is given).
        operation: ``"generate"``, ``"status"`` or ``"download"`` -- decides what 5xx and unexplained
            answers mean (ambiguous for generate, repeatable for the reads).
        body: the body bytes to inspect, for streamed responses whose body was only partly read.
        host: the Host header that was sent, named in the wrong-Host hint when it is not the provider's.
        provider: the provider's display name at the start of the message.

    Returns:
        the error to raise (never raises itself). Rules, in order:

        1. ``insufficient_credits`` anywhere in the body, or HTTP/body code 402 ->
           :class:`InsufficientCredits`; ``invalid_api_key`` or 401 -> :class:`ProviderAuthError`;
           ``rate_limit_exceeded`` or 429 -> :class:`RateLimited`. Documented errors win over the HTTP
           status because HTTP 200 carries them too.
        2. HTTP 5xx / 408 -> :class:`AmbiguousSubmit` (generate) or :class:`ProviderUnavailable` (status).
        3. ``invalid_model_id`` / ``invalid_taskId`` / ``method_not_allowed``, any other 4xx (an empty
           400 names the wrong-Host cause), or a 2xx whose body ``code`` is >= 400 ->
           :class:`ProviderRejected`.
        4. Anything else -> :class:`AmbiguousSubmit` (generate) or :class:`UnexpectedResponse` (status).

        For ``download`` every case becomes :class:`DownloadFailed`, or :class:`DownloadUnavailable`
        when repeating is safe (5xx, 408, 429), keeping ``http_status`` and ``provider_code``.
    """
    raw = response.content if body is None else body
    raw = raw[:ERROR_BODY_LIMIT]
    payload = decode_json(raw)
    entry = first_object(payload)
    code = body_code(entry)
    token = _provider_token(entry)
    detail = _provider_message(entry)
    if detail is None and raw.strip():
        detail = _snippet(raw)
    lowered = raw.decode("utf-8", errors="replace").lower()
    status = response.status_code
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    prefix = f"{provider} {operation}"

    def found(tok: str) -> bool:
        return tok in lowered

    def with_detail(text: str) -> str:
        return f"{text}: {_clip(detail)}" if detail else text

    def kw(provider_code: str | None = token) -> dict[str, Any]:
        return {"http_status": status, "provider_code": provider_code, "retry_after": retry_after}

    if operation == "download":
        return _download_error(status, detail, token, retry_after, prefix, found)

    if found(_INSUFFICIENT_CREDITS) or status == 402 or code == 402:
        return InsufficientCredits(
            with_detail(f"{prefix} refused: insufficient API credits (HTTP {status})"),
            action_url=_action_url(payload), **kw(token or _INSUFFICIENT_CREDITS),
        )
    if found(_INVALID_API_KEY) or status == 401 or code == 401:
        return ProviderAuthError(
            with_detail(f"{prefix} refused: missing or invalid API key (HTTP {status})"),
            **kw(token or _INVALID_API_KEY),
        )
    if found(_RATE_LIMIT) or status == 429 or code == 429:
        wait = f"; retry after {retry_after:g} s" if retry_after is not None else ""
        return RateLimited(
            with_detail(f"{prefix} rate limited (HTTP {status}{wait})"), **kw(token or _RATE_LIMIT)
        )
    if status >= 500 or status == 408:
        if operation == "generate":
            return AmbiguousSubmit(
                with_detail(
                    f"{prefix} outcome unknown: HTTP {status} after the request was sent; the task may "
                    "exist and a retry could charge twice"
                ),
                **kw(),
            )
        return ProviderUnavailable(with_detail(f"{prefix} unavailable (HTTP {status})"), **kw())
    refusal = next((t for t in _REFUSAL_TOKENS if found(t)), None)
    if refusal is not None:
        message = with_detail(f"{prefix} refused (HTTP {status})")
        if refusal == _METHOD_NOT_ALLOWED:
            message += "; " + _wrong_host_hint(host)
        return ProviderRejected(message, **kw(token or refusal))
    if 400 <= status < 500:
        if not raw.strip():
            return ProviderRejected(
                f"{prefix} refused: HTTP {status} with an empty body; " + _wrong_host_hint(host),
                **kw(None),
            )
        return ProviderRejected(with_detail(f"{prefix} refused (HTTP {status})"), **kw())
    if 200 <= status < 300 and code is not None and code >= 400:
        return ProviderRejected(
            with_detail(f"{prefix} refused: HTTP {status} carrying application error code {code}"), **kw()
        )
    if operation == "generate":
        shape = "an empty body" if not raw.strip() else "a body without a task id"
        return AmbiguousSubmit(
            with_detail(
                f"{prefix} outcome unknown: HTTP {status} with {shape}; the task may exist and a retry "
                "could charge twice"
            ),
            **kw(),
        )
    return UnexpectedResponse(
        f"{prefix}: undocumented response (HTTP {status}): {_clip(detail) if detail else 'empty body'}",
        **kw(),
    )


def _download_error(
    status: int,
    detail: str | None,
    token: str | None,
    retry_after: float | None,
    prefix: str,
    found: Callable[[str], bool],
) -> DownloadFailed:
    text = f"{prefix} failed (HTTP {status})"
    if status == 300 or found('"processing"'):
        text += ": the task is still processing"
    if detail:
        text += f": {_clip(detail)}"
    cls = DownloadUnavailable if status >= 500 or status in (408, 429) else DownloadFailed
    return cls(text, http_status=status, provider_code=token, retry_after=retry_after)


# Transport failures that prove the request never left this process / never reached the server.
_NOT_SENT: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
)
#: ``httpx`` failures that prove the request never reached the provider (safe to repeat any call).
NOT_SENT_ERRORS = _NOT_SENT


def error_from_transport_error(exc: Exception, operation: Operation, *, provider: str = "Cliprise") -> ProviderError:
    """Map an ``httpx`` failure (no usable answer) to the matching :class:`ProviderError`.

    - connect error, connect/pool timeout, proxy error, local protocol error: the request never reached
      the provider -> :class:`ProviderUnavailable` (:class:`DownloadUnavailable` for downloads);
    - anything else (read/write timeout, connection reset or closed after sending, decoding errors):
      :class:`AmbiguousSubmit` for generate, :class:`ProviderUnavailable` for status,
      :class:`DownloadUnavailable` for download.

    The message names the exception class and its redacted text; the original exception is not kept
    (its request object carries the URL, which carries the API key for status calls).
    """
    what = type(exc).__name__
    reason = str(exc).strip()
    detail = f"{what}: {_clip(reason)}" if reason else what
    prefix = f"{provider} {operation}"
    if operation == "download":
        if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL | httpx.TooManyRedirects):
            return DownloadFailed(f"{prefix} failed: {detail}")
        return DownloadUnavailable(f"{prefix} failed, safe to repeat: {detail}")
    if isinstance(exc, _NOT_SENT):
        return ProviderUnavailable(f"{prefix} not sent, the provider was not reached: {detail}")
    if operation == "generate":
        return AmbiguousSubmit(
            f"{prefix} outcome unknown: {detail} after the request was sent; the task may exist and a "
            "retry could charge twice"
        )
    return ProviderUnavailable(f"{prefix} unavailable: {detail}")


__all__ = [
    "ERROR_BODY_LIMIT",
    "NOT_JSON",
    "NOT_SENT_ERRORS",
    "AmbiguousSubmit",
    "DownloadFailed",
    "CapabilityNotSupported",
    "DownloadUnavailable",
    "IdempotencyKeyReuse",
    "InsufficientCredits",
    "Operation",
    "ProviderAuthError",
    "ProviderError",
    "ProviderRejected",
    "ProviderUnavailable",
    "RateLimited",
    "RequestInProgress",
    "ResultNotReady",
    "UnexpectedResponse",
    "body_code",
    "decode_json",
    "error_from_response",
    "error_from_transport_error",
    "first_object",
    "parse_retry_after",
]
