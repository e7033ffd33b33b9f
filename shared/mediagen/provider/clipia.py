"""The Clipia adapter of the provider port, on the official SDK (``clipia`` on PyPI).

Endpoints (base ``https://api.clipia.ai``, paths under ``/v1``, [004:111-119]):

- submit ``POST /v1/models/{slug}`` with ``{"input": {...}, "webhook_url"?}`` and ``Idempotency-Key``
  -> ``request_id``, ``status``, ``queue_position``, ``cost`` ([004:111-115], [004:165]);
- status ``GET /v1/requests/{id}/status`` -> ``IN_QUEUE`` | ``IN_PROGRESS`` | ``COMPLETED`` | ``FAILED`` |
  ``CANCELED``, ``queue_position``, ``progress`` (status page; SDK ``StatusResponse``);
- result ``GET /v1/requests/{id}`` -> 202 while not terminal, else ``output`` (``images[]``, ``video``,
  ``audio``/``audios[]``...), ``error``, ``cost`` ([004:117-119]; SDK ``ResultResponse``);
- estimate ``POST /v1/models/{slug}/estimate`` -> ``{"credits"}`` (models page);
- cancel ``POST /v1/requests/{id}/cancel`` (listed by the OpenAPI document; the overview page says the
  public API has no cancel endpoint, so a 404/405 becomes ``CapabilityNotSupported``).

What the SDK does here: submit, status, result and estimate go through ``clipia.Clipia`` (its
``httpx.Client`` runs on our transport). What it cannot do, and is done here instead:

- the ``Key`` authorization scheme ([004:136-141]; the SDK always sends ``Bearer``): our transport sets
  ``Authorization`` to the configured scheme -- and only towards the API's own origin;
- retries: the SDK's submit retries sleep with ``time.sleep`` and ignore ``RateLimit-*``; it is built with
  ``max_retries=0`` and this adapter retries (injectable sleep and clock, bounded attempts and total wait,
  ``Retry-After`` then ``RateLimit-Reset`` honoured), reusing the same ``Idempotency-Key``;
- cancel (no SDK method) and result downloads (plain GETs that must not carry the key to the media CDN):
  a second ``httpx.Client`` on the same transport;
- typed errors: every ``clipia.ClipiaApiError`` / ``httpx`` failure is mapped to the
  :mod:`mediagen.provider.errors` hierarchy, per the error table [004:148-161];
- webhook verification with typed errors and several secrets: :mod:`mediagen.provider.clipia_webhooks`.

Secrets: the key is registered for redaction by value (:func:`mediagen.redact.register_secret`), every
error message is redacted, and no SDK exception (whose request carries the ``Authorization`` header) is
chained to ours.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field

from mediagen import __version__
from mediagen.errors import ConfigurationError
from mediagen.provider.clipia_webhooks import _int_or_none
from mediagen.provider.download import Download, DownloadContext, origin
from mediagen.provider.errors import (
    NOT_SENT_ERRORS,
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
    decode_json,
    parse_retry_after,
)
from mediagen.provider.port import (
    Cancelled,
    Failed,
    JobState,
    Queued,
    ResultOutput,
    Running,
    Submitted,
    Succeeded,
    WebhookEvent,
)
from mediagen.redact import redact_text, register_secret
from mediagen.settings import CLIPIA_BASE_URL, Settings

_log = logging.getLogger(__name__)


AuthScheme = Literal["Key", "Bearer"]
"""``Authorization`` schemes the API accepts: ``Key`` ([004:136-141], OpenAPI) and ``Bearer`` (SDK,
authentication page)."""

DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=5.0)

_T = TypeVar("_T")
Operation = Literal["submit", "status", "result", "estimate", "cancel"]

# Error codes of the error table [004:148-161] and the idempotency page.
_IDEMPOTENCY_KEY_REUSE = "idempotency_key_reuse"
_REQUEST_IN_PROGRESS = "request_in_progress"
_STATUS_CODES = {400: "invalid_request", 401: "invalid_api_key", 402: "insufficient_credits",
                 403: "insufficient_scope", 404: "not_found", 422: "model_input_invalid",
                 429: "rate_limit_exceeded"}


# --------------------------------------------------------------------------------------------------
# Configuration.


class ClipiaSettings(BaseModel):
    """Clipia configuration, taken from :class:`mediagen.settings.Settings` (the one place that reads the
    environment: ``CLIPIA_API_KEY``, ``MEDIAGEN_CLIPIA_API_KEY_SECRET_ID``, ``CLIPIA_WEBHOOK_SECRETS``,
    ``MEDIAGEN_CLIPIA_WEBHOOK_SECRET_ID``, ``MEDIAGEN_CLIPIA_BASE_URL``, ``MEDIAGEN_CLIPIA_AUTH_SCHEME``,
    ``MEDIAGEN_CLIPIA_ATTEMPTS``, ``MEDIAGEN_CLIPIA_RETRY_BUDGET_SECONDS`` and the HTTP timeouts)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str = CLIPIA_BASE_URL
    #: A key given directly (local runs, CLI); wins over the secret.
    api_key: str = Field("", repr=False)
    #: Secrets Manager secret (name or ARN) whose SecretString is the Clipia API key.
    api_key_secret_id: str = ""
    auth_scheme: AuthScheme = "Key"
    #: Webhook signing secrets given directly, comma-separated (two during a rotation).
    webhook_secrets: str = Field("", repr=False)
    #: Secrets Manager secret holding the signing secret, or a JSON array of them (rotation).
    webhook_secret_id: str = ""
    attempts: int = Field(4, ge=1, le=10)
    retry_budget_seconds: float = Field(20.0, ge=0, le=600)
    connect_timeout_seconds: float = Field(5.0, gt=0)
    read_timeout_seconds: float = Field(30.0, gt=0)

    @classmethod
    def from_settings(cls, settings: Settings) -> ClipiaSettings:
        """The Clipia fields of ``settings``."""
        return cls(base_url=settings.clipia_base_url, api_key=settings.clipia_api_key,
                   api_key_secret_id=settings.clipia_api_key_secret_id, auth_scheme=settings.clipia_auth_scheme,
                   webhook_secrets=settings.clipia_webhook_secrets,
                   webhook_secret_id=settings.clipia_webhook_secret_id, attempts=settings.clipia_attempts,
                   retry_budget_seconds=settings.clipia_retry_budget_seconds,
                   connect_timeout_seconds=settings.connect_timeout_seconds,
                   read_timeout_seconds=settings.read_timeout_seconds)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ClipiaSettings:
        """``from_settings(Settings.from_env(environ))`` (default ``os.environ``).

        Raises:
            pydantic.ValidationError: a variable is present but malformed (names the variable).
        """
        return cls.from_settings(Settings.from_env(environ))


def _read_secret(secret_id: str) -> str:
    from aws_lambda_powertools.utilities import parameters

    from mediagen.apikey import SECRET_MAX_AGE_SECONDS

    return str(parameters.get_secret(secret_id, max_age=SECRET_MAX_AGE_SECONDS) or "").strip()


def get_clipia_api_key(settings: ClipiaSettings, *, read_secret: Callable[[str], str] = _read_secret) -> str:
    """The Clipia API key, registered for redaction: ``CLIPIA_API_KEY`` when set, else the secret
    ``MEDIAGEN_CLIPIA_API_KEY_SECRET_ID`` (Powertools Parameters, cached like the Cliprise key).

    Raises:
        ConfigurationError: neither is configured, or the secret holds no key yet.
    """
    from mediagen.apikey import PLACEHOLDER_PREFIX

    key = settings.api_key.strip()
    if not key:
        if not settings.api_key_secret_id:
            raise ConfigurationError("no Clipia API key: set CLIPIA_API_KEY or MEDIAGEN_CLIPIA_API_KEY_SECRET_ID")
        key = read_secret(settings.api_key_secret_id)
        if not key or key.startswith(PLACEHOLDER_PREFIX):
            raise ConfigurationError(
                f"the Clipia API key secret {settings.api_key_secret_id} holds no key yet: put the key in it")
    register_secret(key)
    return key


def get_webhook_secrets(settings: ClipiaSettings, *,
                        read_secret: Callable[[str], str] = _read_secret) -> tuple[str, ...]:
    """The webhook signing secrets to accept (several during a rotation), registered for redaction.

    ``CLIPIA_WEBHOOK_SECRETS`` (comma-separated) when set, else the secret
    ``MEDIAGEN_CLIPIA_WEBHOOK_SECRET_ID`` (one secret, or a JSON array of secrets).

    Raises:
        ConfigurationError: none configured (a ``REPLACE_ME...`` placeholder does not count).
    """
    raw = settings.webhook_secrets
    secrets: list[str] = [s.strip() for s in raw.split(",") if s.strip()]
    if not secrets and settings.webhook_secret_id:
        value = read_secret(settings.webhook_secret_id)
        try:
            parsed = json.loads(value) if value.startswith("[") else value
        except ValueError:
            parsed = value
        items = parsed if isinstance(parsed, list) else [parsed]
        secrets = [str(s).strip() for s in items if str(s).strip()]
    from mediagen.apikey import PLACEHOLDER_PREFIX

    # A placeholder anyone can read (in a template, in the docs) must never verify a delivery.
    secrets = [s for s in secrets if not s.startswith(PLACEHOLDER_PREFIX)]
    if not secrets:
        raise ConfigurationError(
            "no Clipia webhook signing secret: set CLIPIA_WEBHOOK_SECRETS or MEDIAGEN_CLIPIA_WEBHOOK_SECRET_ID")
    for secret in secrets:
        register_secret(secret)
    return tuple(secrets)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded retries of one call.

    Attributes:
        attempts: calls at most (1 = no retry).
        base_delay: seconds before the 2nd attempt when the provider gave no hint; doubles each time.
        max_delay: longest single wait; a provider hint above it ends the retries at once.
        budget: total seconds of waiting per call.
    """

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 10.0
    budget: float = 20.0


# --------------------------------------------------------------------------------------------------
# Transport: the authorization scheme and the rate-limit headers.


class _ClipiaTransport(httpx.BaseTransport):
    """Sets ``Authorization: <scheme> <key>`` on requests to the API origin (and strips it from every
    other request), and remembers the last answer's ``Retry-After``/``RateLimit*`` headers per thread."""

    def __init__(self, inner: httpx.BaseTransport, api_origin: tuple[str, str, int | None],
                 authorization: str) -> None:
        self._inner = inner
        self._api_origin = api_origin
        self._authorization = authorization
        self._local = threading.local()
        self._closed = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if origin(request.url) == self._api_origin:
            request.headers["Authorization"] = self._authorization
        else:
            request.headers.pop("Authorization", None)
        self._local.headers = {}
        response = self._inner.handle_request(request)
        self._local.headers = {k.lower(): v for k, v in response.headers.items()
                               if k.lower() == "retry-after" or k.lower().startswith("ratelimit")}
        return response

    def rate_headers(self) -> dict[str, str]:
        """``Retry-After``/``RateLimit*`` headers of this thread's last answer (lower-case names)."""
        return dict(getattr(self._local, "headers", {}))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._inner.close()


def rate_limit_reset(headers: Mapping[str, str]) -> float | None:
    """Seconds until the rate-limit window resets, from ``RateLimit-Reset: <seconds>`` or the structured
    ``RateLimit: ...;t=<seconds>`` (IETF httpapi-ratelimit-headers); ``None`` when absent or malformed."""
    value = headers.get("ratelimit-reset")
    if value is None and headers.get("ratelimit"):
        for part in headers["ratelimit"].replace(",", ";").split(";"):
            key, _, val = part.strip().partition("=")
            if key == "t":
                value = val
    try:
        seconds = float(value) if value is not None else math.nan
    except ValueError:
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


# --------------------------------------------------------------------------------------------------
# Outputs.

_OUTPUT_KINDS = {"images": "image", "image": "image", "videos": "video", "video": "video",
                 "audios": "audio", "audio": "audio"}


def outputs_from(output: Mapping[str, Any]) -> list[ResultOutput]:
    """Every file in a Clipia ``output`` object, in the provider's order, each URL once.

    Shapes (SDK ``ResultResponse``, webhooks page): ``images: [{url, width?, height?}]``,
    ``video: {url, ...}``, ``audio: {url}`` plus ``audios: [{url}, ...]`` (the first equals ``audio``);
    any other key holding an object with a ``url`` (or a list of them) counts too. ``kind`` comes from the
    key (``images`` -> ``image``); ``content_type`` from the item's ``content_type``/``mime_type``.
    """
    found: list[ResultOutput] = []
    seen: set[str] = set()
    for key, value in output.items():
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, str) and item.startswith(("https://", "http://")):
                item = {"url": item}
            if not isinstance(item, Mapping) or not isinstance(item.get("url"), str):
                continue
            url = item["url"].strip()
            if not url or url in seen:
                continue
            seen.add(url)
            content_type = item.get("content_type") or item.get("mime_type")
            found.append(ResultOutput(
                url=url,
                content_type=content_type if isinstance(content_type, str) else None,
                kind=_OUTPUT_KINDS.get(str(key), str(key)),
                index=len(found),
                metadata={k: v for k, v in item.items()
                          if k not in ("url", "content_type", "mime_type") and isinstance(v, str | int | float)},
            ))
    return found


# --------------------------------------------------------------------------------------------------
# The adapter.


class ClipiaProvider:
    """Clipia behind the provider port (:class:`mediagen.provider.port.Provider`), with the
    :class:`~mediagen.provider.port.SupportsCancel`, :class:`~mediagen.provider.port.SupportsEstimate`
    and :class:`~mediagen.provider.port.SupportsWebhooks` capabilities.

    Args:
        api_key: ``clipia_live_…`` or ``clipia_test_…`` ([004:88-90]).
        base_url: ``https://api.clipia.ai`` by default; ``http://`` only for localhost/127.0.0.1 (SDK rule).
        auth_scheme: ``"Key"`` (default, [004:136-141]) or ``"Bearer"``.
        timeout: ``httpx`` timeouts (default connect 5 s, read 30 s).
        transport: an ``httpx`` transport (tests: ``httpx.MockTransport``).
        retry: :class:`RetryPolicy`.
        webhook_secrets: signing secrets accepted by :meth:`verify_webhook`.
        sleep, clock: injectable ``time.sleep`` and ``time.time`` (tests never really sleep).

    Raises:
        ConfigurationError: empty key, whitespace in the key, unknown scheme, or a base URL the SDK refuses.
    """

    name: Literal["clipia"] = "clipia"
    #: Same key + same parameters -> same request_id, no second charge, for 24 h ([004:96-98]).
    native_idempotency: bool = True

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = CLIPIA_BASE_URL,
        auth_scheme: AuthScheme = "Key",
        timeout: httpx.Timeout | None = None,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
        webhook_secrets: tuple[str, ...] = (),
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        import clipia

        from mediagen.provider.cliprise import install_log_redaction

        install_log_redaction()  # httpx logs every request URL at INFO
        key = api_key.strip() if isinstance(api_key, str) else ""
        if not key:
            raise ConfigurationError("the Clipia API key is empty")
        if any(c.isspace() or not c.isprintable() for c in key):
            raise ConfigurationError("the Clipia API key contains whitespace or control characters")
        if auth_scheme not in ("Key", "Bearer"):
            raise ConfigurationError(f"auth_scheme must be one of 'Key', 'Bearer', got {auth_scheme!r}")
        register_secret(key)
        for secret in webhook_secrets:
            register_secret(secret)
        try:
            base = httpx.URL(base_url.rstrip("/"))
        except httpx.InvalidURL as exc:
            raise ConfigurationError(f"invalid Clipia base URL: {redact_text(str(exc))}") from None
        if base.scheme not in ("http", "https") or not base.host or base.query:
            raise ConfigurationError(f"the Clipia base URL must be http(s)://host without a query, got "
                                     f"{redact_text(base_url)!r}")
        self._base = base
        self._auth_scheme = auth_scheme
        self._transport = _ClipiaTransport(transport or httpx.HTTPTransport(), origin(base), f"{auth_scheme} {key}")
        timeout = timeout if timeout is not None else DEFAULT_TIMEOUT
        try:
            self._sdk = clipia.Clipia(key, base_url=str(base), timeout=timeout, transport=self._transport,
                                      max_retries=0)
        except ValueError as exc:
            raise ConfigurationError(f"Clipia base URL refused: {redact_text(str(exc))}") from None
        self._http = httpx.Client(transport=self._transport, timeout=timeout, follow_redirects=True,
                                  headers={"User-Agent": f"mediagen/{__version__}"})
        self._retry = retry or RetryPolicy()
        self._webhook_secrets = tuple(webhook_secrets)
        self._sleep = sleep
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: ClipiaSettings, api_key: str, **kw: Any) -> ClipiaProvider:
        """Build from :class:`ClipiaSettings` (base URL, scheme, timeouts, retry policy); keyword arguments
        override (``transport=``, ``webhook_secrets=`` ...)."""
        kw.setdefault("base_url", settings.base_url)
        kw.setdefault("auth_scheme", settings.auth_scheme)
        kw.setdefault("timeout", httpx.Timeout(connect=settings.connect_timeout_seconds,
                                               read=settings.read_timeout_seconds,
                                               write=settings.read_timeout_seconds,
                                               pool=settings.connect_timeout_seconds))
        kw.setdefault("retry", RetryPolicy(attempts=settings.attempts, budget=settings.retry_budget_seconds))
        return cls(api_key, **kw)

    @property
    def base_url(self) -> str:
        """The API base URL, without a trailing slash."""
        return str(self._base)

    @property
    def auth_scheme(self) -> AuthScheme:
        """The ``Authorization`` scheme sent."""
        return self._auth_scheme

    def __repr__(self) -> str:
        return f"ClipiaProvider(base_url={redact_text(str(self._base))!r}, auth_scheme={self._auth_scheme!r})"

    # -- submit ------------------------------------------------------------------------------------

    def submit(self, body: Mapping[str, Any], *, idempotency_key: str,
               webhook_url: str | None = None) -> Submitted:
        """Queue one generation: ``POST /v1/models/{body["model"]}`` with ``{"input": body["input"],
        "webhook_url"?}`` and ``Idempotency-Key: idempotency_key``.

        ``body`` is ``{"model": slug, "input": {...}}`` (``webhook_url`` may be in it or given here). A
        timeout, a broken connection, 429, 5xx or ``409 request_in_progress`` is retried here with the
        **same** key (the provider then answers with the same ``request_id``, [004:96-98]), up to
        :attr:`RetryPolicy.attempts`, waiting ``Retry-After`` (else ``RateLimit-Reset`` on 429, else
        exponential backoff) within :attr:`RetryPolicy.budget`.

        Returns:
            :class:`~mediagen.provider.port.Submitted` with ``request_id``, ``cost`` (credits) and
            ``queue_position``.

        Raises:
            ValueError: ``body`` lacks ``model``/``input``, carries other fields, or the key is not a UUID
                (nothing sent).
            ProviderRejected: 400 ``invalid_request``, 404 ``not_found``, 422 ``model_input_invalid``;
                ProviderAuthError (401 ``invalid_api_key``, 403 ``insufficient_scope``); InsufficientCredits
                (402, nothing spent); IdempotencyKeyReuse (409 ``idempotency_key_reuse``) -- never retried
                ([004:148-161]).
            RateLimited: still 429 when attempts or budget ran out (nothing was created).
            RequestInProgress: still ``409 request_in_progress`` at the end: submit again later, same key.
            ProviderUnavailable: the provider was never reached.
            AmbiguousSubmit: every attempt that reached the provider ended without an answer (timeout,
                5xx): the request may exist; a later submit with the same key and body is still safe.
        """
        slug, payload, hook = _split_body(body, webhook_url)
        key = _check_uuid(idempotency_key)

        def call() -> Submitted:
            try:
                response = self._sdk.submit(slug, payload, webhook_url=hook, idempotency_key=key)
            except (KeyError, TypeError, ValueError) as exc:  # a 2xx without a request_id
                raise AmbiguousSubmit(f"Clipia submit answered without a request_id ({type(exc).__name__}); "
                                      "the request may exist") from None
            request_id = response.request_id if isinstance(response.request_id, str) else ""
            if not request_id.strip():
                raise AmbiguousSubmit("Clipia submit answered without a request_id; the request may exist")
            return Submitted(provider_task_id=request_id.strip(), cost=_int_or_none(response.cost),
                             queue_position=_int_or_none(response.queue_position))

        return self._with_retries(call, "submit")

    # -- status / result ---------------------------------------------------------------------------

    def status(self, provider_task_id: str) -> JobState:
        """``GET /v1/requests/{id}/status`` -> :class:`~mediagen.provider.port.Queued` (``IN_QUEUE``),
        :class:`~mediagen.provider.port.Running` (``IN_PROGRESS``, ``progress`` 0-100),
        :class:`~mediagen.provider.port.Succeeded` (``COMPLETED``), :class:`~mediagen.provider.port.Failed`
        (``FAILED``: code and message from the result's ``error``; refunded, overview page),
        :class:`~mediagen.provider.port.Cancelled` (``CANCELED``).

        429/5xx/network failures are retried (a read is safe to repeat).

        Raises:
            ValueError: empty id. ProviderRejected (404 ``not_found``), ProviderAuthError, RateLimited,
            ProviderUnavailable, UnexpectedResponse (an unknown status or shape).
        """
        rid = _check_id(provider_task_id)

        def call() -> JobState:
            try:
                answer = self._sdk.status(rid)
            except (KeyError, TypeError) as exc:
                raise UnexpectedResponse(f"Clipia status: undocumented answer ({type(exc).__name__})") from None
            return _state(answer.status, answer.queue_position, answer.progress, answer.data)

        state = self._with_retries(call, "status")
        if isinstance(state, Failed) and state.code is None:
            with contextlib.suppress(ProviderError):
                detailed = self._result_answer(rid)
                if isinstance(detailed, Failed):
                    state = detailed
        return state

    def result(self, provider_task_id: str) -> list[ResultOutput]:
        """``GET /v1/requests/{id}``: every output of a ``COMPLETED`` request (:func:`outputs_from`).

        Raises:
            ResultNotReady: 202 (``state`` = Queued/Running) or a FAILED/CANCELED request (``state`` =
                Failed/Cancelled).
            UnexpectedResponse: ``COMPLETED`` without any output URL.
            and the errors of :meth:`status`.
        """
        answer = self._result_answer(_check_id(provider_task_id))
        if isinstance(answer, list):
            return answer
        raise ResultNotReady(f"Clipia request has no result: it is {type(answer).__name__.lower()}", state=answer)

    def _result_answer(self, rid: str) -> list[ResultOutput] | JobState:
        def call() -> list[ResultOutput] | JobState:
            try:
                answer = self._sdk.result(rid)
            except (KeyError, TypeError) as exc:
                raise UnexpectedResponse(f"Clipia result: undocumented answer ({type(exc).__name__})") from None
            if answer.pending or answer.status != "COMPLETED":
                return _state(answer.status, answer.data.get("queue_position"), answer.data.get("progress"),
                              answer.data, completed_ok=answer.pending)
            outputs = outputs_from(answer.output or {})
            if not outputs:
                raise UnexpectedResponse("Clipia result: COMPLETED without any output URL")
            return outputs

        return self._with_retries(call, "result")

    # -- download ----------------------------------------------------------------------------------

    def open_download(self, provider_task_id: str,
                      output: ResultOutput) -> contextlib.AbstractContextManager[Download]:
        """Stream one output (``media.clipia.ai`` URLs, overview page). The key is sent only when the URL
        is on the API's own origin; redirects are followed (``Authorization`` dropped off-origin).

        Raises (on ``__enter__``): DownloadFailed (no or invalid URL, 4xx), DownloadUnavailable (network,
        5xx, 408, 429: safe to repeat).
        """
        if not output.url:
            raise DownloadFailed("Clipia download failed: the output has no URL")
        try:
            request = self._http.build_request("GET", output.url, headers={"Accept-Encoding": "identity"})
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, TypeError) as exc:
            raise DownloadFailed(f"Clipia download failed: invalid output URL: {exc}") from None
        return DownloadContext(self._http, request, host=self._base.host, provider="Clipia")

    # -- capabilities ------------------------------------------------------------------------------

    def cancel(self, provider_task_id: str) -> None:
        """``POST /v1/requests/{id}/cancel`` (OpenAPI; refunds the reserved credits).

        Raises:
            CapabilityNotSupported: 404 or 405 on the cancel route (the overview page says the public API
                has none), plus the errors of :meth:`status`.
        """
        rid = _check_id(provider_task_id)
        url = self._base.copy_with(path=self._base.path.rstrip("/") + f"/v1/requests/{_quote(rid)}/cancel")

        def call() -> None:
            response = self._http.post(url, headers={"Accept": "application/json"})
            if response.is_success:
                return
            doc = decode_json(response.content[:65536])
            err: dict[str, Any] = (doc["error"] if isinstance(doc, dict) and isinstance(doc.get("error"), dict)
                                   else {})
            code, message = str(err.get("code") or ""), str(err.get("message") or "")
            if response.status_code == 405 or (response.status_code == 404 and code != "not_found"):
                raise CapabilityNotSupported(f"Clipia has no cancel endpoint here (HTTP {response.status_code})",
                                             http_status=response.status_code, provider_code=code or None)
            raise self._api_error(response.status_code, code, message,
                                  parse_retry_after(response.headers.get("retry-after")), "cancel")

        self._with_retries(call, "cancel")

    def estimate(self, body: Mapping[str, Any]) -> int:
        """``POST /v1/models/{slug}/estimate`` -> credits for ``body`` (``{"model", "input"}``); charges
        nothing. Raises the errors of :meth:`submit` (except AmbiguousSubmit: safe to repeat)."""
        slug, payload, _ = _split_body(body, None)

        def call() -> int:
            try:
                answer = self._sdk.models.estimate(slug, payload)
            except (KeyError, TypeError) as exc:
                raise UnexpectedResponse(f"Clipia estimate: undocumented answer ({type(exc).__name__})") from None
            credits = _int_or_none(answer.credits)
            if credits is None or credits < 0:
                raise UnexpectedResponse("Clipia estimate: credits is not a non-negative integer")
            return credits

        return self._with_retries(call, "estimate")

    def verify_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> WebhookEvent:
        """Verify and parse a webhook delivery with the configured secrets
        (:func:`mediagen.provider.clipia_webhooks.verify_delivery`, 300 s tolerance)."""
        from mediagen.provider.clipia_webhooks import verify_delivery

        return verify_delivery(headers, raw_body, self._webhook_secrets, now=self._clock())

    # -- lifecycle ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Close both HTTP clients (and the transport once)."""
        self._sdk.close()
        self._http.close()

    def __enter__(self) -> ClipiaProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- retries and error mapping -----------------------------------------------------------------

    def _with_retries(self, call: Callable[[], _T], operation: Operation) -> _T:
        import clipia

        policy = self._retry
        waited = 0.0
        ambiguous = False
        in_progress: RequestInProgress | None = None  # a request under this key exists: it will be charged
        error: ProviderError | None = None
        for attempt in range(1, policy.attempts + 1):
            try:
                return call()
            except clipia.ClipiaApiError as exc:
                error = self._api_error(exc.status, exc.code, exc.message, exc.retry_after, operation)
            except httpx.RequestError as exc:
                error = _transport_error(exc, operation)
            except (AmbiguousSubmit, RateLimited, ProviderUnavailable) as exc:
                error = exc
            if not isinstance(error, AmbiguousSubmit | RateLimited | ProviderUnavailable):
                raise error
            ambiguous = ambiguous or isinstance(error, AmbiguousSubmit)
            if isinstance(error, RequestInProgress):
                in_progress = error
            delay = self._delay(error, attempt)
            if attempt == policy.attempts or delay is None or waited + delay > policy.budget:
                break
            _log.warning("Clipia %s attempt %d of %d failed (%s); retrying in %.1f s", operation, attempt,
                         policy.attempts, error.code, delay)
            self._sleep(delay)
            waited += delay
        assert error is not None
        if in_progress is not None and not isinstance(error, RequestInProgress):
            # A later 429 or 5xx does not undo what the 409 told: the first request exists and will be charged.
            raise RequestInProgress(
                f"Clipia {operation}: a request with this Idempotency-Key is still being processed (last answer: "
                f"{error.message})", http_status=in_progress.http_status, provider_code=in_progress.provider_code,
                retry_after=error.retry_after if error.retry_after is not None else in_progress.retry_after)
        if ambiguous and not isinstance(error, RequestInProgress):
            raise AmbiguousSubmit(
                f"Clipia {operation} outcome unknown after {attempt} attempt(s) with the same Idempotency-Key "
                f"(last: {error.message}); a later submit with the same key and body returns the request "
                "if it exists", http_status=error.http_status, provider_code=error.provider_code,
                retry_after=error.retry_after)
        raise error

    def _delay(self, error: ProviderError, attempt: int) -> float | None:
        """Seconds before the next attempt; ``None`` when the provider asks for more than ``max_delay``."""
        policy = self._retry
        if error.retry_after is not None:
            return error.retry_after if error.retry_after <= policy.max_delay else None
        return min(policy.base_delay * 2 ** (attempt - 1), policy.max_delay)

    def _api_error(self, status: int, code: str, message: str, retry_after: float | None,
                   operation: Operation) -> ProviderError:
        """The error table [004:148-161] (plus the idempotency page's ``request_in_progress``)."""
        headers = self._transport.rate_headers()
        if retry_after is None:
            retry_after = parse_retry_after(headers.get("retry-after"))
        if retry_after is None and status == 429:
            retry_after = rate_limit_reset(headers)
        code = (code or "").strip() or _STATUS_CODES.get(status, "")
        detail = f": {' '.join(message.split())[:300]}" if message and message != code else ""
        what = f"Clipia {operation}"
        text = f"(HTTP {status}{' ' + code if code else ''}){detail}"
        kw: dict[str, Any] = {"http_status": status, "provider_code": code or None, "retry_after": retry_after}
        if status == 409 and code == _REQUEST_IN_PROGRESS:
            return RequestInProgress(f"{what}: the first request with this Idempotency-Key is still in progress "
                                     f"{text}; submit again later with the same key", **kw)
        if status == 409 and code == _IDEMPOTENCY_KEY_REUSE:
            return IdempotencyKeyReuse(f"{what} refused: the Idempotency-Key was used with other parameters {text}",
                                       **kw)
        if status == 402:
            return InsufficientCredits(f"{what} refused: insufficient credits, nothing was charged {text}", **kw)
        if status in (401, 403):
            return ProviderAuthError(f"{what} refused: the API key is invalid or lacks the scope {text}", **kw)
        if status == 429:
            wait = f"; retry after {retry_after:g} s" if retry_after is not None else ""
            return RateLimited(f"{what} rate limited {text}{wait}", **kw)
        if status >= 500 or status == 408:
            if operation == "submit":
                return AmbiguousSubmit(f"{what} outcome unknown {text}", **kw)
            return ProviderUnavailable(f"{what} unavailable {text}", **kw)
        if 400 <= status < 500:
            return ProviderRejected(f"{what} refused {text}", **kw)
        if operation == "submit":
            return AmbiguousSubmit(f"{what} outcome unknown: undocumented answer {text}", **kw)
        return UnexpectedResponse(f"{what}: undocumented answer {text}", **kw)


# --------------------------------------------------------------------------------------------------
# Helpers.

_STATUS_TO_STATE = {"IN_QUEUE", "IN_PROGRESS", "COMPLETED", "FAILED", "CANCELED"}


def _state(status: Any, queue_position: Any, progress: Any, data: Mapping[str, Any],
           *, completed_ok: bool = False) -> JobState:
    value = status.strip().upper() if isinstance(status, str) else ""
    if value == "IN_QUEUE":
        return Queued(queue_position=_int_or_none(queue_position))
    if value == "IN_PROGRESS" or (completed_ok and value == "COMPLETED"):
        pct = _int_or_none(progress)
        return Running(progress=max(0, min(100, pct)) if pct is not None else None,
                       queue_position=_int_or_none(queue_position))
    if value == "COMPLETED":
        return Succeeded(cost=_int_or_none(data.get("cost")))
    if value == "FAILED":
        raw_error = data.get("error")
        error: dict[str, Any] = raw_error if isinstance(raw_error, dict) else {}
        code = error.get("code") if isinstance(error.get("code"), str) and error.get("code") else None
        message = error.get("message") if isinstance(error.get("message"), str) else None
        return Failed(message=redact_text((message or "Clipia reported the request FAILED")[:1000]),
                      code=redact_text(code) if code else None, refunded=True)
    if value == "CANCELED":
        return Cancelled(refunded=True)
    raise UnexpectedResponse(f"Clipia status must be one of {', '.join(sorted(_STATUS_TO_STATE))}, "
                             f"got {str(status)[:40]!r}")


def _transport_error(exc: httpx.RequestError, operation: Operation) -> ProviderError:
    reason = " ".join(str(exc).split())[:300]
    detail = f"{type(exc).__name__}: {reason}" if reason else type(exc).__name__
    if isinstance(exc, NOT_SENT_ERRORS):
        return ProviderUnavailable(f"Clipia {operation} not sent, the provider was not reached: {detail}")
    if operation == "submit":
        return AmbiguousSubmit(f"Clipia submit outcome unknown: {detail} after the request was sent")
    return ProviderUnavailable(f"Clipia {operation} unavailable: {detail}")


def _split_body(body: Mapping[str, Any], webhook_url: str | None) -> tuple[str, dict[str, Any], str | None]:
    if not isinstance(body, Mapping):
        raise ValueError("the Clipia body must be an object {'model': slug, 'input': {...}}")
    extra = sorted(set(body) - {"model", "input", "webhook_url"})
    if extra:
        raise ValueError(f"the Clipia body allows only 'model', 'input', 'webhook_url'; got also {extra}")
    slug = body.get("model")
    if not isinstance(slug, str) or not slug.strip() or any(c.isspace() or c == "/" for c in slug.strip()):
        raise ValueError("the Clipia body needs 'model': a model slug such as 'nano-banana-2'")
    payload = body.get("input")
    if not isinstance(payload, dict):
        raise ValueError("the Clipia body needs 'input': an object of model parameters")
    hook = webhook_url if webhook_url is not None else body.get("webhook_url")
    if hook is not None and not isinstance(hook, str):
        raise ValueError("webhook_url must be a string URL")
    return slug.strip(), payload, hook


def _check_uuid(value: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise ValueError("idempotency_key must be a UUID (see mediagen.provider.port.idempotency_key)") from None


def _check_id(value: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("provider_task_id is empty")
    value = value.strip()
    if len(value) > 256 or any(c.isspace() or not c.isprintable() for c in value):
        raise ValueError("provider_task_id contains whitespace or control characters")
    return value


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


__all__ = [
    "CLIPIA_BASE_URL",
    "DEFAULT_TIMEOUT",
    "AuthScheme",
    "ClipiaProvider",
    "ClipiaSettings",
    "RetryPolicy",
    "get_clipia_api_key",
    "get_webhook_secrets",
    "outputs_from",
    "rate_limit_reset",
]
