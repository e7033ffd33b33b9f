"""A typed, single-shot HTTP client for the two Cliprise Business API endpoints.

- ``POST {base_url}/generate`` -- ``Authorization: Bearer KEY``, JSON body ("Generate Endpoint" [002:133-163]).
- ``GET {base_url}/status?apiKey=KEY&taskId=ID[&download=true]`` -- the key travels in the query string,
  no Bearer header ("Status & Download" [002:164-187]; "Authentication" [000:53-64]: "Header Auth required for
  /generate and Query Auth required for /status").

Every request to the provider carries ``Host: <host>`` explicitly: the provider answers any other Host
with HTTP 400 and an empty body ("Authentication" [002:115-132], Host gate), and the sandbox emulator on
127.0.0.1 checks it the same way. HTTP 300 is the *processing* state, not a redirect (
"Status & Download" [002:164-187]), so redirects are never followed for generate/status.

The client never retries: generate has no idempotency key (a repeated POST can charge twice), and
whether to repeat a status call is the caller's decision (in the pipeline, Step Functions'). Every
failure is raised as a :class:`~mediagen.provider.errors.ProviderError` subclass built in
:mod:`mediagen.provider.errors`.

Secrets: the API key is registered with :func:`mediagen.redact.register_secret`, every error message is
redacted, ``repr`` of the client and of :class:`Succeeded` hide it, and importing this module installs a
redacting filter on the ``httpx``/``httpcore`` loggers (httpx logs every request URL at INFO, and status
URLs carry ``apiKey``).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, TypeAlias

import httpx

from mediagen import __version__
from mediagen.errors import ConfigurationError
from mediagen.provider.download import Download, DownloadContext, origin
from mediagen.provider.errors import (
    NOT_JSON,
    DownloadFailed,
    ResultNotReady,
    body_code,
    decode_json,
    error_from_response,
    error_from_transport_error,
    first_object,
)
from mediagen.provider.port import Failed as PortFailed
from mediagen.provider.port import JobState, ResultOutput, Running, Submitted
from mediagen.provider.port import Succeeded as PortSucceeded
from mediagen.redact import RedactingFilter, redact_text, register_secret
from mediagen.settings import CLIPRISE_BASE_URL, CLIPRISE_HOST, Settings

DEFAULT_USER_AGENT = f"mediagen/{__version__}"
#: connect 5 s, read 30 s, write 30 s, pool 5 s.
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=5.0)

# --------------------------------------------------------------------------------------------------
# Log hygiene for the HTTP stack.

_HTTP_LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)


class _HttpLogRedactor(RedactingFilter):
    """Render a record's message with its arguments, then redact it.

    httpx logs ``'HTTP Request: %s %s ...'`` with the URL as an ``httpx.URL`` object, which
    :class:`~mediagen.redact.RedactingFilter` (it redacts only str/dict/list arguments) would pass
    through untouched; rendering first makes the ``apiKey`` query parameter visible to the redactor.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            try:
                record.msg = record.getMessage()
            except (TypeError, ValueError, KeyError):
                record.msg = f"{record.msg} {record.args!r}"
            record.args = None
        return super().filter(record)


def install_log_redaction() -> None:
    """Attach the redacting filter to the ``httpx`` and ``httpcore`` loggers (idempotent).

    Logger filters are not inherited by child loggers, so each httpcore logger gets its own. Called on
    import of this module.
    """
    for name in _HTTP_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _HttpLogRedactor) for f in logger.filters):
            logger.addFilter(_HttpLogRedactor())


install_log_redaction()

# --------------------------------------------------------------------------------------------------
# Results.


@dataclass(frozen=True, slots=True)
class GenerateAccepted:
    """``POST /generate`` accepted the job: ``[{"code":200,"taskId":"..."}]`` or the bare object
    ("Generate Endpoint" [002:133-163], "Success response" [002:152-157]). Credits are deducted from here on
    ("FAQ" [002:1209-1244])."""

    task_id: str


@dataclass(frozen=True, slots=True)
class Processing:
    """The task is still running: HTTP 300 ``[{"status":"processing"}]`` ("Polling status" [000:275-292],
    "Status & Download" [002:164-187]). Poll again later."""


@dataclass(frozen=True, slots=True, repr=False)
class Succeeded:
    """The task finished: HTTP 200 ``[{"status":"success","fileURL":"..."}]`` ("Polling status" [000:275-292]).

    Attributes:
        file_url: the raw ``fileURL``, or ``None`` when the answer had none (download with
            ``download=true`` then). It is temporary ("Status & Download" [002:164-187]) and usually points
            at the status endpoint *with ``apiKey`` in its query*: never log or store it unredacted
            (``repr`` redacts it; use :func:`mediagen.redact.redact_text` elsewhere).
    """

    file_url: str | None

    def __repr__(self) -> str:
        shown = redact_text(self.file_url) if self.file_url is not None else None
        return f"Succeeded(file_url={shown!r})"


@dataclass(frozen=True, slots=True)
class Failed:
    """The provider reports the task failed: HTTP 400 ``{"status":"fail","failMsg":"..."}`` (
    "Polling status" [000:275-292]), or the webhook-style ``{"status":"failure","error":{"code","message"}}`` (
    "Webhooks" [000:142-169]). Credits may have been spent ("FAQ" [002:1209-1244]).

    Attributes:
        message: the provider's reason (``failMsg``, ``msg`` or ``error.message``), redacted.
        code: ``error.code`` when the provider sent one, else ``None``.
    """

    message: str
    code: str | None = None


TaskState: TypeAlias = Processing | Succeeded | Failed
"""What ``GET /status`` says about a task."""


# --------------------------------------------------------------------------------------------------
# The client.


class ClipriseClient:
    """Typed client for ``POST /generate`` and ``GET /status`` of the Cliprise Business API.

    Single-shot: no retries. Thread-safe as far as ``httpx.Client`` is. Use as a context manager or call
    :meth:`close`.

    Args:
        api_key: the Cliprise API key (surrounding whitespace is stripped).
        base_url: ``https://business.api.cliprise.app/app/cliprise`` ("Base URL" [000:8]); the sandbox
            emulator's loopback URL in local runs.
        host: the ``Host`` header sent to the provider, exactly ``business.api.cliprise.app``
            ("Authentication" [002:115-132], Host gate).
        timeout: defaults to :data:`DEFAULT_TIMEOUT` (connect 5 s, read 30 s, write 30 s, pool 5 s).
        transport: an ``httpx`` transport (tests pass ``httpx.MockTransport``).
        user_agent: the ``User-Agent`` header.

    Raises:
        ConfigurationError: empty key or a key with inner whitespace/control characters; a base URL
            that is not ``http(s)://host/...`` or that carries a query string.
    """

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = CLIPRISE_BASE_URL,
        host: str = CLIPRISE_HOST,
        timeout: httpx.Timeout | None = None,
        transport: httpx.BaseTransport | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
    ) -> None:
        key = api_key.strip() if isinstance(api_key, str) else ""
        if not key:
            raise ConfigurationError("the Cliprise API key is empty")
        if any(c.isspace() or not c.isprintable() for c in key):
            raise ConfigurationError("the Cliprise API key contains whitespace or control characters")
        register_secret(key)
        self._api_key = key
        try:
            base = httpx.URL(base_url.rstrip("/"))
        except httpx.InvalidURL as exc:
            raise ConfigurationError(f"invalid Cliprise base URL: {exc}") from None
        if base.scheme not in ("http", "https") or not base.host or base.query:
            raise ConfigurationError(
                f"the Cliprise base URL must be http(s)://host/path without a query, got "
                f"{redact_text(base_url)!r}"
            )
        if not host or any(c.isspace() for c in host):
            raise ConfigurationError(f"invalid Cliprise Host header {host!r}")
        self._base = base
        self._host = host
        path = base.path.rstrip("/")
        self._generate_url = base.copy_with(path=path + "/generate")
        self._status_url = base.copy_with(path=path + "/status")
        self._http = httpx.Client(
            transport=transport,
            timeout=timeout if timeout is not None else DEFAULT_TIMEOUT,
            follow_redirects=False,
            headers={"User-Agent": user_agent},
        )

    @classmethod
    def from_settings(cls, settings: Settings, api_key: str, **kw: Any) -> ClipriseClient:
        """Build a client from :class:`~mediagen.settings.Settings`: base URL, Host header, and timeouts
        (connect and pool = ``connect_timeout_seconds``; read and write = ``read_timeout_seconds``).
        Keyword arguments override them (``transport=...`` in tests)."""
        kw.setdefault("base_url", settings.cliprise_base_url)
        kw.setdefault("host", settings.cliprise_host)
        kw.setdefault(
            "timeout",
            httpx.Timeout(
                connect=settings.connect_timeout_seconds,
                read=settings.read_timeout_seconds,
                write=settings.read_timeout_seconds,
                pool=settings.connect_timeout_seconds,
            ),
        )
        return cls(api_key, **kw)

    @property
    def base_url(self) -> str:
        """The base URL, without a trailing slash."""
        return str(self._base)

    @property
    def host(self) -> str:
        """The ``Host`` header sent to the provider."""
        return self._host

    def __repr__(self) -> str:
        return f"ClipriseClient(base_url={redact_text(str(self._base))!r}, host={self._host!r})"

    # -- generate ----------------------------------------------------------------------------------

    def generate(self, body: dict[str, Any]) -> GenerateAccepted:
        """Submit one job: ``POST {base_url}/generate`` with ``body`` as JSON, unchanged.

        ``body`` is a complete wire body (``model``, ``input`` or root fields, ``callBackUrl``...): this
        method does not validate or encode it.

        Returns:
            the accepted task id ("Generate Endpoint" [002:133-163]: ``[{"code":200,"taskId":"..."}]`` or the
            bare object).

        Raises:
            ProviderRejected: definitive refusal, no credits spent (HTTP 400 JSON, HTTP 200 with body
                ``code`` 400, empty-body 400 = wrong Host, ``invalid_model_id``, ``method_not_allowed``);
                its subclasses ProviderAuthError (``invalid_api_key``, 401) and InsufficientCredits
                (``insufficient_credits``, 402; ``action_url``).
            RateLimited: HTTP 429 (``retry_after`` from ``Retry-After``).
            ProviderUnavailable: connect error / connect or pool timeout: the request was not sent.
            AmbiguousSubmit: the request may have been processed (timeout or broken connection after
                sending, 5xx, a 2xx without a task id). Do not retry blindly: it may charge twice.
            TypeError, ValueError: ``body`` is not JSON-serializable (nothing was sent).
        """
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
        headers = {
            "Host": self._host,
            "Authorization": f"Bearer {self._api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        try:
            response = self._http.post(self._generate_url, content=content, headers=headers)
        except httpx.RequestError as exc:
            raise error_from_transport_error(exc, "generate") from None
        accepted = _accepted(response)
        if accepted is None:
            raise error_from_response(response, "generate", host=self._host)
        return accepted

    # -- status ------------------------------------------------------------------------------------

    def status(self, task_id: str) -> TaskState:
        """Ask for a task's state: ``GET {base_url}/status?apiKey=KEY&taskId=ID`` (no Bearer header).

        Bodies may be arrays or bare objects; the body's ``status`` decides ("Polling status" [000:275-292],
        "Status & Download" [002:164-187]): ``processing`` (HTTP 300) -> :class:`Processing`; ``success``
        (HTTP 200) -> :class:`Succeeded`; ``fail``/``failure`` (HTTP 400, or the webhook shape of
        "Webhooks" [000:142-169]) -> :class:`Failed`. An HTTP 300 with an empty body is also processing.

        Raises:
            ValueError: ``task_id`` is empty or contains whitespace (nothing was sent).
            ProviderRejected: ``invalid_taskId``, ``method_not_allowed``, empty-body 400 (wrong Host),
                other 4xx; ProviderAuthError for ``invalid_api_key``.
            RateLimited: HTTP 429.
            ProviderUnavailable: network error, any timeout, HTTP 5xx -- safe to repeat.
            UnexpectedResponse: a shape none of the documents describe.
        """
        tid = _check_task_id(task_id)
        try:
            response = self._http.get(
                self._status_url,
                params={"apiKey": self._api_key, "taskId": tid},
                headers={"Host": self._host, "Accept": "application/json"},
            )
        except httpx.RequestError as exc:
            raise error_from_transport_error(exc, "status") from None
        state = _task_state(response)
        if state is None:
            raise error_from_response(response, "status", host=self._host)
        return state

    # -- download ----------------------------------------------------------------------------------

    def open_download(
        self, task_id: str, file_url: str | None = None
    ) -> contextlib.AbstractContextManager[Download]:
        """Open a streaming download of a task's result; use as ``with client.open_download(...) as d``.

        - ``file_url`` is ``None``: ``GET {base_url}/status?apiKey&taskId&download=true`` (
          "Status & Download" [002:164-187]: ``download=true`` returns the bytes; a zip for some models).
        - ``file_url`` has the base URL's scheme, host and port (the provider's own status endpoint, as in
          the documented ``fileURL`` ``.../status?apiKey=...&taskId=...&download=true``): requested with the
          provider Host header; ``apiKey`` and ``download=true`` are added when a status URL lacks them.
        - any other ``file_url`` (a CDN): a plain GET, without our Host header and without credentials.

        Downloads follow HTTP redirects (to a CDN); httpx drops ``Authorization`` and resets ``Host`` when
        a redirect leaves the origin. ``Accept-Encoding: identity`` is requested so that
        ``content_length`` counts the bytes yielded. The request is sent on ``__enter__``.

        Raises (on ``__enter__``):
            ValueError: ``file_url`` is ``None`` and ``task_id`` is empty.
            DownloadFailed: a non-2xx answer (HTTP 300 = still processing, 4xx, expired link), an invalid
                ``file_url``; DownloadUnavailable (a DownloadFailed and a ProviderUnavailable) for network
                errors, timeouts, 5xx, 408 and 429 -- safe to repeat.
        """
        headers = {"Accept-Encoding": "identity"}
        if file_url is None:
            url = self._status_url.copy_merge_params(
                {"apiKey": self._api_key, "taskId": _check_task_id(task_id), "download": "true"}
            )
            headers["Host"] = self._host
        else:
            try:
                url = httpx.URL(file_url)
            except (httpx.InvalidURL, TypeError) as exc:
                raise DownloadFailed(f"Cliprise download failed: invalid file URL: {exc}") from None
            if origin(url) == origin(self._base):
                headers["Host"] = self._host
                if url.path == self._status_url.path:
                    if "apiKey" not in url.params:
                        url = url.copy_add_param("apiKey", self._api_key)
                    if "download" not in url.params:
                        url = url.copy_add_param("download", "true")
        try:
            request = self._http.build_request("GET", url, headers=headers)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise DownloadFailed(f"Cliprise download failed: invalid file URL: {exc}") from None
        return DownloadContext(self._http, request, self._host)

    # -- lifecycle ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> ClipriseClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# --------------------------------------------------------------------------------------------------
# Parsing helpers.

_PROCESSING = frozenset({"processing"})
_SUCCESS = frozenset({"success"})
_FAILED = frozenset({"fail", "failure"})  # "fail": polling [000:288-292]; "failure": webhook [000:161-169]
_MESSAGE_LIMIT = 1000


def _check_task_id(task_id: str) -> str:
    if not isinstance(task_id, str) or not task_id.strip():
        raise ValueError("task_id is empty")
    task_id = task_id.strip()
    if any(c.isspace() or not c.isprintable() for c in task_id):
        raise ValueError("task_id contains whitespace or control characters")
    return task_id


def _accepted(response: httpx.Response) -> GenerateAccepted | None:
    """A 2xx whose (first) object has a non-empty ``taskId`` and a body ``code`` of 200 or none."""
    if not response.is_success:
        return None
    entry = first_object(decode_json(response.content))
    if entry is None or (entry.get("code") is not None and body_code(entry) != 200):
        return None
    task_id = entry.get("taskId")
    if isinstance(task_id, int) and not isinstance(task_id, bool):
        task_id = str(task_id)
    if not isinstance(task_id, str):
        return None
    task_id = task_id.strip()
    if not task_id or len(task_id) > 256 or any(c.isspace() or not c.isprintable() for c in task_id):
        return None
    return GenerateAccepted(task_id=task_id)


def _task_state(response: httpx.Response) -> TaskState | None:
    """The documented status answers; ``None`` for everything else (mapped to an error)."""
    if response.status_code >= 500 or response.status_code == 429:
        return None
    payload = decode_json(response.content)
    entry = first_object(payload)
    status = entry.get("status") if entry is not None else None
    if isinstance(status, str):
        value = status.strip().lower()
        if value in _PROCESSING:
            return Processing()
        if value in _SUCCESS and entry is not None:
            return Succeeded(file_url=_file_url(entry))
        if value in _FAILED and entry is not None:
            return _failed(entry)
        return None
    if response.status_code == 300 and payload is NOT_JSON and not response.content.strip():
        return Processing()  # "Status & Download" [002:164-187]: HTTP 300 = processing
    return None


def _file_url(entry: dict[str, Any]) -> str | None:
    for key in ("fileURL", "fileUrl", "file_url"):
        value = entry.get(key)
        if isinstance(value, list):
            value = next((v for v in value if isinstance(v, str) and v.strip()), None)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _failed(entry: dict[str, Any]) -> Failed:
    err = entry.get("error")
    message: str | None = None
    for value in (
        entry.get("failMsg"),
        entry.get("msg"),
        err.get("message") if isinstance(err, dict) else err,
        entry.get("message"),
    ):
        if isinstance(value, str) and value.strip():
            message = value.strip()
            break
    code = err.get("code") if isinstance(err, dict) else None
    text = message or "the provider reported a failure without a reason"
    return Failed(
        message=redact_text(text[:_MESSAGE_LIMIT]),
        code=redact_text(code) if isinstance(code, str) and code else None,
    )


# --------------------------------------------------------------------------------------------------
# The provider port (mediagen.provider.port) over the client.


class ClipriseProvider:
    """The Cliprise adapter of the provider port (:class:`mediagen.provider.port.Provider`).

    Wraps a :class:`ClipriseClient`; adds no retries (generate has no idempotency key, so an unclear
    submit stays :class:`~mediagen.provider.errors.AmbiguousSubmit`). One output per task (``fileURL``,
    "Status & Download" [002:164-187]). No cancel, estimate or signed webhooks.

    Args:
        client: the transport; closed by :meth:`close`.
    """

    name: Literal["cliprise"] = "cliprise"
    #: "Generate Endpoint" [002] lists no idempotency header: a repeated POST can charge twice.
    native_idempotency: bool = False

    def __init__(self, client: ClipriseClient) -> None:
        self.client = client

    def __repr__(self) -> str:
        return f"ClipriseProvider({self.client!r})"

    def submit(self, body: Mapping[str, Any], *, idempotency_key: str,
               webhook_url: str | None = None) -> Submitted:
        """``POST /generate`` with ``body`` (plus ``callBackUrl`` = ``webhook_url`` when given).

        ``idempotency_key`` is not sent: Cliprise has none. Raises what :meth:`ClipriseClient.generate`
        raises.
        """
        wire = dict(body)
        if webhook_url is not None:
            wire["callBackUrl"] = webhook_url
        return Submitted(provider_task_id=self.client.generate(wire).task_id)

    def status(self, provider_task_id: str) -> JobState:
        """``GET /status`` mapped to the port: processing -> :class:`Running` (Cliprise reports neither
        progress nor queue position), success -> :class:`~mediagen.provider.port.Succeeded`, fail ->
        :class:`~mediagen.provider.port.Failed` with ``refunded=None`` ("FAQ" [002]: credits may have
        been spent). Raises what :meth:`ClipriseClient.status` raises."""
        state = self.client.status(provider_task_id)
        if isinstance(state, Succeeded):
            return PortSucceeded()
        if isinstance(state, Failed):
            return PortFailed(message=state.message, code=state.code, refunded=None)
        return Running()

    def result(self, provider_task_id: str) -> list[ResultOutput]:
        """The task's one output: its ``fileURL`` (``None`` when the answer had none; the download then
        uses ``download=true``).

        Raises:
            ResultNotReady: the task is still processing or failed (``state`` says which).
            and what :meth:`ClipriseClient.status` raises.
        """
        state = self.client.status(provider_task_id)
        if isinstance(state, Succeeded):
            return [ResultOutput(url=state.file_url, index=0)]
        port_state: JobState = (PortFailed(message=state.message, code=state.code)
                                if isinstance(state, Failed) else Running())
        raise ResultNotReady(f"Cliprise task has no result: it is {type(port_state).__name__.lower()}",
                             state=port_state)

    def open_download(self, provider_task_id: str,
                      output: ResultOutput) -> contextlib.AbstractContextManager[Download]:
        """:meth:`ClipriseClient.open_download` of the output's URL (see there for Host and key handling)."""
        return self.client.open_download(provider_task_id, output.url)

    def close(self) -> None:
        """Close the client."""
        self.client.close()


__all__ = [
    "DEFAULT_TIMEOUT",
    "DEFAULT_USER_AGENT",
    "ClipriseClient",
    "ClipriseProvider",
    "Download",
    "Failed",
    "GenerateAccepted",
    "Processing",
    "Succeeded",
    "TaskState",
    "install_log_redaction",
]
