"""The sandbox emulator: a loopback HTTP server that behaves as the documents say Cliprise behaves.

It lets the whole pipeline (and its tests) run with no network and no account. It speaks the two
documented endpoints under ``/app/cliprise`` ("Quickstart" [000:25-52]; "Generate Endpoint" [002:133-163],
"Status & Download" [002:164-187], "Error Reference" [002:198-208]; [003:10-70]). Every request,
whatever its path (the ``fileURL`` download too), must carry ``Host: business.api.cliprise.app`` exactly, or
it gets HTTP 400 with an empty body ("Authentication" [002:115-132], Host gate): point a client at
:attr:`Emulator.base_url` and set that header, as the pipeline does for the real API.

``POST /app/cliprise/generate`` (``Authorization: Bearer KEY``)
    ==============================================  ====  ==============================================
    situation                                       HTTP  body
    ==============================================  ====  ==============================================
    ``Host`` is not ``business.api.cliprise.app``   400   empty ("Authentication" [002:115-132], Host gate)
    missing/wrong bearer key                        401   ``{"code":401,"error":{"code":"invalid_api_key",
                                                          "message":"Missing or invalid API key."}}``
                                                          ("Authentication" [000:53-64])
    body is not a JSON object                       200   ``{"code":400,"msg":"invalid JSON body",
                                                          "data":null}``
    ``model`` missing or empty                      200   ``{"code":400,"msg":"This field is required",
                                                          "data":null}`` ("Error Reference" [002:198-208])
    unknown model (``modality_of`` → ``None``)      400   ``{"msg":"invalid_model_id"}``
    ``[sandbox:429=N]``, first N with that text     429   ``{"code":429,"error":{"code":
                                                          "rate_limit_exceeded",...}}`` +
                                                          ``Retry-After: 1`` ("Rate limits" [000:139])
    ``[sandbox:empty-400]``                         400   empty
    ``[sandbox:code400]``                           200   ``{"code":400,"msg":"This field is required",
                                                          "data":null}``
    ``[sandbox:no-credits]``                        200   ``{"code":402,"msg":"insufficient_credits",
                                                          "action_url":...}`` (no task)
    ``[sandbox:generate-500]`` (task created)       500   ``{"code":500,"error":{"code":"internal_error",
                                                          "message":"Internal server error."}}``
    ``[sandbox:generate-timeout]`` (task created)   200   after ``stall_seconds`` (or never, on stop)
    accepted                                        200   ``[{"code":200,"taskId":"<32 hex>"}]``
    ==============================================  ====  ==============================================

``GET /app/cliprise/status?apiKey=KEY&taskId=ID[&download=true]``
    ==============================================  ====  ==============================================
    missing/wrong ``apiKey``                        400   ``{"msg":"invalid_api_key"}``
    unknown ``taskId`` (or another key's task)      400   ``{"msg":"invalid_taskId"}``
    ``[sandbox:status-500=N]``, first N polls       500   ``{"msg":"internal_server_error"}``
    processing                                      300   ``[{"status":"processing"}]``
    succeeded                                       200   ``[{"status":"success","fileURL":
                                                          "<base_url>/status?apiKey=KEY&taskId=ID&download=true"}]``
    failed                                          400   ``{"status":"fail","failMsg":"…"}``
    succeeded, ``download=true``                    200   the file's bytes, with ``Content-Type``,
                                                          ``Content-Length`` and ``Content-Disposition:
                                                          attachment; filename="<taskId>.<ext>"``
    ``[sandbox:download-404]``, ``download=true``   404   ``{"msg":"file_not_found"}``
    ==============================================  ====  ==============================================

The ``fileURL`` carries the API key in its query string exactly like the documents show (
"Quickstart" [000:25-52], Result ready): whoever logs it must redact it. The emulator's own request log
(:meth:`Emulator.requests`, :func:`serve`) redacts it.

A task finishes ``processing_seconds`` after it was accepted (or as the job's fault tokens say, see
:mod:`mediagen.sandbox.faults`). Completion and callbacks are driven by a scheduler thread, so the
callback fires on time even when nobody polls. When the request had ``callBackUrl``, the emulator then
POSTs the documented payload to it ("Webhooks" [000:142-169]: 10 s timeout, up to 3 retries with
exponential backoff on non-2xx or error):

- success: ``{"taskId","status":"success","model","fileURL","createdAt","completedAt"}`` (ISO-8601 Z);
- failure: ``{"taskId","status":"failure","error":{"code":"provider_error","message":…}}``.

Callback tokens (and the global ``callback_mode``) delay it, repeat it, withhold it, send one claiming
success too early, or have a forger send one to a wrong URL (see :class:`Emulator` and
``docs/sandbox.md``). Callbacks are neither signed nor guaranteed: the status endpoint is the truth.

Result media are real files of the model's kind (see :mod:`mediagen.sandbox.media`): zips for
``grok-imagine`` ("Status & Download" [002:164-187]) and ``[sandbox:zip]``, files of an exact size streamed
on the fly for ``[sandbox:size=BYTES]``.

With ``fetch_inputs=True`` the emulator also downloads each accepted job's input media URLs, like the
provider (see :mod:`mediagen.sandbox.inputs`): in a background thread per task, started when the task
is created (the generate answer does not wait), and the task cannot leave ``processing`` before every
fetch has ended. :meth:`Emulator.fetched_inputs` records each one (URL redacted). A failed fetch is only
recorded, unless ``fail_on_input_error=True``: the task then fails (status 400
``{"status":"fail","failMsg":"could not fetch input <field>: <error>"}``, failure callback).

The module imports only the standard library (``urllib.request`` lazily, for callbacks; httpx lazily,
for input fetches), so starting an emulator costs a few milliseconds.
"""

from __future__ import annotations

import contextlib
import copy
import heapq
import itertools
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qs, quote, urlsplit, urlunsplit

from mediagen.redact import redact_text
from mediagen.sandbox.faults import (
    FAIL_MESSAGE,
    Faults,
    draw_faults,
    parse_callback_mode,
    parse_fault_rates,
    parse_faults,
)
from mediagen.sandbox.inputs import MAX_INPUT_URLS, FetchError, HttpFetcher, digest, input_urls, redact_url
from mediagen.sandbox.loopback import LoopbackServer
from mediagen.sandbox.media import Result, render_media

#: The Host header the provider requires, exactly ("Authentication" [002:115-132]: Host gate; [003:10-13]
#: "Base URL and host"). Same value as ``mediagen.settings.CLIPRISE_HOST``; repeated here so that the
#: emulator does not import pydantic.
PUBLIC_HOST = "business.api.cliprise.app"
#: Path prefix of both endpoints ([000:8]: base URL ``https://business.api.cliprise.app/app/cliprise``).
API_PREFIX = "/app/cliprise"

#: "Authentication" [000:53-64]: "Missing key → 401 Returned with invalid_api_key error code".
UNAUTHORIZED_BODY: dict[str, Any] = {
    "code": 401,
    "error": {"code": "invalid_api_key", "message": "Missing or invalid API key."},
}
#: "Credits & Pricing" [000:132-141], "429 — rate limit" [000:140-141].
RATE_LIMITED_BODY: dict[str, Any] = {
    "code": 429,
    "error": {"code": "rate_limit_exceeded", "message": "Too many requests. Retry after cooldown."},
}
#: ``Retry-After`` of a 429 answer, in seconds.
RETRY_AFTER_SECONDS = 1
#: Generate's answer under ``[sandbox:generate-500]`` (shaped like the documented 401/402/429 errors).
#: Generate's answer under ``[sandbox:no-credits]``: "Insufficient credits -- 200 -- insufficient_credits +
#: action_url (app pricing link)" ("Error Reference" [002:198-208]); no task, nothing charged.
NO_CREDITS_BODY: dict[str, Any] = {"code": 402, "msg": "insufficient_credits",
                                   "action_url": "https://www.cliprise.app/pricing", "data": None}
GENERATE_500_BODY: dict[str, Any] = {
    "code": 500,
    "error": {"code": "internal_error", "message": "Internal server error."},
}
#: Status's answer under ``[sandbox:status-500=N]`` (shaped like the other status errors).
STATUS_500_BODY: dict[str, Any] = {"msg": "internal_server_error"}
#: The download's answer under ``[sandbox:download-404]`` (a temporary URL that has expired).
FILE_NOT_FOUND_BODY: dict[str, Any] = {"msg": "file_not_found"}
#: "Error Reference" [002:198-208]: the HTTP-200 application error.
FIELD_REQUIRED_BODY: dict[str, Any] = {"code": 400, "msg": "This field is required", "data": None}
#: Models whose result is a zip of several files ("Status & Download" [002:164-187]: "grok-imagine may
#: return a .zip").
ZIP_MODELS: frozenset[str] = frozenset({"grok-imagine"})
#: "Webhooks" [000:142-169]: "Timeout 10 seconds"; "Up to 3 retries with exponential backoff".
CALLBACK_TIMEOUT_SECONDS = 10.0
CALLBACK_RETRIES = 3
#: How long ``[sandbox:generate-timeout]`` stalls the generate answer by default (longer than any sane
#: client read timeout).
STALL_SECONDS = 60.0
#: Host of the ``fileURL`` in forged callbacks (``.invalid`` never resolves: following it fails safely).
FORGED_FILE_HOST = "files.forged.invalid"

_MAX_BODY_BYTES = 1 << 20
_MODEL_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_VIDEO_PREFIXES = (
    "grok-imagine-video", "veo", "sora", "kling", "hailuo", "seedance", "wan", "runway", "vidu", "happyhorse",
)
# List fields whose items carry text (elevenlabs-v3-dialogue ``dialogue``; Kling multi-shot prompts).
_TEXT_LISTS = ("dialogue", "multi_prompt", "shots")
_EXTENSIONS = {"image": "png", "video": "mp4", "audio": "wav"}


def default_modality_of(model: str) -> str | None:
    """The built-in guess of a model's modality from its name (used when no catalog is given).

    ``elevenlabs*`` -> ``"audio"``; names starting with a video family (``veo``, ``sora``, ``kling``,
    ``hailuo``, ``seedance``, ``wan``, ``runway``, ``vidu``, ``happyhorse``, ``grok-imagine-video``)
    -> ``"video"``; any other plausible model id (lower-case letters, digits, ``.``, ``_``, ``-``;
    at most 64 characters) -> ``"image"``; anything else -> ``None`` (unknown model).
    """
    if not _MODEL_ID.match(model):
        return None
    if model.startswith("elevenlabs"):
        return "audio"
    if model.startswith(_VIDEO_PREFIXES):
        return "video"
    return "image"


def request_text(body: Mapping[str, Any]) -> str:
    """The prompt-like text of a generate body, joined by newlines: ``prompt`` and ``text`` at the root
    (root-only models, "Input Types" [002:45-62]) and under ``input`` (standard models), plus the
    ``text``/``prompt`` of each item of ``dialogue``, ``multi_prompt`` and ``shots`` lists
    (e.g. ``input.dialogue[*].text`` of elevenlabs-v3-dialogue, "Elevenlabs V3 Dialogue" [000:11214])."""
    parts: list[str] = []
    places: list[Mapping[str, Any]] = [body]
    if isinstance(body.get("input"), Mapping):
        places.append(body["input"])
    for place in places:
        for key in ("prompt", "text"):
            if isinstance(place.get(key), str):
                parts.append(place[key])
        for key in _TEXT_LISTS:
            items = place.get(key)
            if isinstance(items, list):
                for item in items:
                    if isinstance(item, Mapping):
                        parts.extend(item[k] for k in ("text", "prompt") if isinstance(item.get(k), str))
    return "\n".join(parts)


def forged_callback_url(url: str) -> str:
    """``url`` with its last non-empty path segment replaced by a random 32-hex token (query kept),
    e.g. ``https://h/callbacks/tok-1`` -> ``https://h/callbacks/9f…``: where a forger who knows the
    pipeline's callback route, but not a job's token, would post."""
    parts = urlsplit(url)
    segments = parts.path.split("/")
    for index in range(len(segments) - 1, -1, -1):
        if segments[index]:
            segments[index] = secrets.token_hex(16)
            break
    else:
        segments = ["", secrets.token_hex(16)]
    return urlunsplit(parts._replace(path="/".join(segments)))


def _same(a: str, b: str) -> bool:
    """Constant-time comparison of two keys (any characters)."""
    return secrets.compare_digest(a.encode("utf-8", "surrogateescape"), b.encode("utf-8", "surrogateescape"))


def _first(query: Mapping[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj).encode()


@dataclass
class _Task:
    task_id: str
    model: str
    modality: str
    body: dict[str, Any]
    text: str
    faults: Faults
    api_key: str = field(repr=False)
    created_at: float  # epoch seconds
    due: float  # time.monotonic() at which processing ends
    state: str = "processing"  # processing | success | fail
    fail_msg: str = ""
    completed_at: float | None = None
    media: Result | None = None
    status_calls: int = 0
    download_calls: int = 0
    status_500_left: int = 0
    truncate_left: int = 0
    inputs_pending: bool = False  # input fetches still running: the task cannot finish yet
    input_error: str | None = None  # set (fail_on_input_error) when an input could not be fetched

    @property
    def callback_url(self) -> str | None:
        url = self.body.get("callBackUrl")
        return url if isinstance(url, str) and url else None


@dataclass(frozen=True)
class _Delivery:
    """One callback to send: ``kind`` is completion | duplicate | late | early | forged."""

    task_id: str
    url: str = field(repr=False)
    payload: dict[str, Any] = field(repr=False)
    kind: str
    retries: int


@dataclass
class _Answer:
    """What the generate endpoint answers; ``call`` is the :meth:`Emulator.generate_calls` entry."""

    status: int
    body: bytes
    call: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    task_id: str | None = None
    stall: bool = False


class Emulator:
    """The sandbox Cliprise API on loopback. Thread-safe; use as a context manager or
    :meth:`start`/:meth:`stop`.

    Args:
        api_keys: the keys it accepts (at least one non-empty key; never shown in reprs or logs).
        host, port: where to listen; ``port=0`` picks a free port (see :attr:`base_url` after start).
        processing_seconds: how long a task stays ``processing`` after it was accepted.
        send_callbacks: POST to ``callBackUrl`` at all (``False``: no callback of any kind, forged and
            early ones included).
        modality_of: ``model -> "image"|"video"|"audio"|None``; ``None`` means unknown model
            (``invalid_model_id``). Default :func:`default_modality_of`.
        callback_retry_base_seconds: first back-off between callback attempts, doubled each retry.
        callback_timeout_seconds: timeout of one callback attempt ("Webhooks" [000:142-169]: 10 s).
        on_request: called for every request as it is answered, with the same dict :meth:`requests` records.
        callback_mode: callback behaviour of every job, as tokens applied before the prompt's own
            (:func:`~mediagen.sandbox.faults.parse_callback_mode`): ``"normal"``, or a comma-separated
            combination of ``none``, ``delay:SECONDS``, ``duplicate:N``, ``late:SECONDS``, ``early``,
            ``forged`` (e.g. ``"delay:2,duplicate:3"``).
        fault_rates: probability per generate request of applying a token, ``{TOKEN: RATE}`` (e.g.
            ``{"fail": 0.05, "status-500:2": 0.1}``) or ``--fault`` specs (``["fail=0.05"]``); see
            :func:`~mediagen.sandbox.faults.parse_fault_rates`. Drawn tokens apply after the callback
            mode and before the prompt's tokens.
        seed: makes the draws deterministic: the same seed, model, prompt text and occurrence of that
            text give the same faults, whatever the arrival order. Default: a random seed
            (see :attr:`seed`).
        stall_seconds: how long ``[sandbox:generate-timeout]`` stalls its answer (:meth:`stop` cuts
            it short).
        generate_latency_seconds: how long every accepted generate takes to answer (a slow provider);
            ``[sandbox:generate-delay=S]`` sets it per job.
        fetch_inputs: download the input media URLs of every accepted job (see
            :func:`~mediagen.sandbox.inputs.input_urls`), in the background, before its task can end;
            recorded in :meth:`fetched_inputs`.
        fetcher: ``url -> bytes``, raising on failure; default an
            :class:`~mediagen.sandbox.inputs.HttpFetcher` (httpx GET, redirects followed, 10 s timeout,
            at most 50 MB, non-2xx raises, unresolvable hosts fail fast). URLs of the emulator's own
            address are fetched with its ``Host`` header, so a job can use another job's ``fileURL``.
        fail_on_input_error: with ``fetch_inputs``, a task whose input could not be fetched fails
            (``failMsg`` ``"could not fetch input <field>: <error>"``) instead of succeeding anyway.
        on_input_fetched: called with each :meth:`fetched_inputs` entry as it is recorded.

    Raises:
        ValueError: no usable API key, a negative duration, an invalid callback mode or fault rate.
    """

    public_host: str = PUBLIC_HOST

    def __init__(
        self,
        *,
        api_keys: Iterable[str],
        host: str = "127.0.0.1",
        port: int = 0,
        processing_seconds: float = 2.0,
        send_callbacks: bool = True,
        modality_of: Callable[[str], str | None] | None = None,
        callback_retry_base_seconds: float = 1.0,
        callback_timeout_seconds: float = CALLBACK_TIMEOUT_SECONDS,
        on_request: Callable[[dict[str, Any]], None] | None = None,
        callback_mode: str = "normal",
        fault_rates: Mapping[str, float] | Iterable[str] | None = None,
        seed: int | None = None,
        stall_seconds: float = STALL_SECONDS,
        generate_latency_seconds: float = 0.0,
        fetch_inputs: bool = False,
        fetcher: Callable[[str], bytes] | None = None,
        fail_on_input_error: bool = False,
        on_input_fetched: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self._keys = frozenset(k for k in api_keys if k)
        if not self._keys:
            raise ValueError("the emulator needs at least one non-empty API key")
        if (processing_seconds < 0 or callback_retry_base_seconds < 0 or callback_timeout_seconds <= 0
                or stall_seconds < 0):
            raise ValueError("durations must be non-negative (the callback timeout positive)")
        self.host = host
        self.port = port
        self.processing_seconds = processing_seconds
        self.send_callbacks = send_callbacks
        self.modality_of = modality_of or default_modality_of
        self.callback_retry_base_seconds = callback_retry_base_seconds
        self.callback_timeout_seconds = callback_timeout_seconds
        self.stall_seconds = stall_seconds
        #: Every accepted generate answer takes this long (``[sandbox:generate-delay=S]`` per job).
        self.generate_latency_seconds = generate_latency_seconds
        self._on_request = on_request
        self.callback_mode = callback_mode
        self._mode_tokens = parse_callback_mode(callback_mode)
        self._fault_rates = parse_fault_rates(fault_rates)
        #: The seed of the random fault draws (given, or chosen at random): reuse it to replay a run.
        self.seed: int = seed if seed is not None else secrets.randbits(32)
        #: Download the input media URLs of accepted jobs (see :meth:`fetched_inputs`).
        self.fetch_inputs = fetch_inputs
        #: With :attr:`fetch_inputs`: a failed input fetch fails the task.
        self.fail_on_input_error = fail_on_input_error
        self._fetcher = fetcher
        self._default_fetcher: HttpFetcher | None = None  # made by start() (it needs the port)
        self._on_input_fetched = on_input_fetched

        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._tasks: dict[str, _Task] = {}
        self._sequence = itertools.count()
        self._schedule: list[tuple[float, int, str, Any]] = []  # heap of (due, seq, "finish"|"deliver", item)
        self._occurrences: dict[tuple[str, str], int] = {}  # (model, text) -> generate requests seen
        self._rate_limited: dict[str, int] = {}  # prompt text -> 429 answers given
        self._generate_calls: list[dict[str, Any]] = []
        self._requests: list[dict[str, Any]] = []
        self._callbacks: list[dict[str, Any]] = []
        self._callback_threads: set[threading.Thread] = set()
        self._fetched: list[dict[str, Any]] = []
        self._fetch_threads: set[threading.Thread] = set()
        self._stalled_threads: set[threading.Thread] = set()
        self._server: LoopbackServer[Emulator] | None = None
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Emulator:
        """Bind and start serving in background (daemon) threads; returns ``self``.

        Raises:
            RuntimeError: already started.
            OSError: the address cannot be bound.
        """
        if self._server is not None:
            raise RuntimeError("emulator already started")
        self._stopping.clear()
        server = LoopbackServer((self.host, self.port), _Handler, self)
        self._server, self.port = server, server.port
        if self._fetcher is None:
            self._default_fetcher = HttpFetcher(host_headers={f"{self.host}:{self.port}": PUBLIC_HOST},
                                                should_stop=self._stopping.is_set)
        scheduler = threading.Thread(target=self._run_scheduler, name="sandbox-scheduler", daemon=True)
        scheduler.start()
        self._threads = [server.serve_in_thread("sandbox-http"), scheduler]
        return self

    def stop(self) -> None:
        """Stop serving, stop the scheduler, abandon pending callbacks and stalled answers, hang up
        open connections (an unfinished download ends short). Idempotent.

        Waits briefly for in-flight callback attempts, input fetches (the default fetcher abandons a
        download in progress) and stalled generate answers; they are daemon threads either way.
        """
        server, self._server = self._server, None
        self._stopping.set()
        with self._wakeup:
            self._wakeup.notify_all()
        if server is not None:
            server.stop()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []
        with self._lock:
            pending = [*self._callback_threads, *self._fetch_threads, *self._stalled_threads]
        deadline = time.monotonic() + 1.0
        for thread in pending:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"{self.host}:{self.port}" if self.port else "not started"
        return f"<Emulator {where} keys={len(self._keys)} processing_seconds={self.processing_seconds}>"

    @property
    def base_url(self) -> str:
        """``http://<host>:<port>/app/cliprise`` -- the pipeline's ``MEDIAGEN_CLIPRISE_BASE_URL``.

        Raises:
            RuntimeError: ``port=0`` and the emulator has not been started yet.
        """
        if not self.port:
            raise RuntimeError("start the emulator first: the port is chosen when it binds")
        return f"http://{self.host}:{self.port}{API_PREFIX}"

    @property
    def fault_rates(self) -> dict[str, float]:
        """The normalised global fault rates, ``{"status-500=2": 0.1, ...}`` (a copy)."""
        return dict(self._fault_rates)

    # ------------------------------------------------------------------ introspection

    def generate_calls(self) -> list[dict[str, Any]]:
        """One entry per authorised ``POST /generate`` (right Host, valid key), oldest first, whatever
        was answered::

            {"task_id": "<32 hex>" or None (no task was created),
             "model": the body's "model" (None when absent or the body is not an object),
             "body": the parsed JSON body (a copy; None when it was not JSON),
             "received_at": ISO-8601 Z with milliseconds,
             "faults": tokens applied, normalised (["429=1"], ["generate-500", "slow=5"], ...),
             "random_faults": the subset drawn from ``fault_rates``,
             "answered": HTTP status sent (200, 429, 500, 400...), or None while a
                         ``generate-timeout`` answer is stalled (and for ever if it was abandoned)}

        A task exists (and, on the real API, was charged) exactly when ``task_id`` is set, whatever
        ``answered`` says: map entries to jobs by ``body`` (e.g. its ``callBackUrl``) to count the
        attempts of one job.
        """
        with self._lock:
            return copy.deepcopy(self._generate_calls)

    def fetched_inputs(self) -> list[dict[str, Any]]:
        """One entry per input URL fetched (``fetch_inputs=True``), in the order the fetches ended::

            {"task_id": the task whose input it is,
             "field": where the URL was in the body: "input.image", "input.image_urls[1]",
                      "imageURLList[0]" (JSON-string and comma-separated lists give one entry per URL),
             "url": the URL, redacted (API key, X-Amz-Signature, X-Amz-Credential, AWSAccessKeyId,
                    Signature, ... masked as ***),
             "ok": True when the fetch succeeded,
             "bytes": bytes received (0 on failure),
             "sha256": hex digest of the bytes, None on failure,
             "content_type": the response's Content-Type (only when the fetcher reports one),
             "error": None, or why it failed (redacted)}

        A URL repeated in one body (documented mirrors such as ``inputImage`` and ``imageURLList``) is
        fetched once and recorded for each field; at most ``MAX_INPUT_URLS`` (32) distinct URLs are
        fetched per task, further ones are recorded as failed without a request.
        """
        with self._lock:
            return copy.deepcopy(self._fetched)

    def requests(self) -> list[dict[str, Any]]:
        """Every request, oldest first: ``{"method", "path" (query redacted), "status" (HTTP status
        answered; None when a stalled answer was abandoned)}`` plus ``"task_id"`` when the request
        named or created a task, and ``"bytes"`` (body bytes actually sent) for downloads."""
        with self._lock:
            return copy.deepcopy(self._requests)

    def status_calls(self, task_id: str) -> int:
        """Authorised ``GET /status`` calls for ``task_id`` without ``download=true`` (0 if unknown),
        including those answered 500 by ``status-500``."""
        with self._lock:
            task = self._tasks.get(task_id)
            return task.status_calls if task else 0

    def download_calls(self, task_id: str) -> int:
        """Authorised ``GET /status?download=true`` calls for ``task_id`` (0 if unknown)."""
        with self._lock:
            task = self._tasks.get(task_id)
            return task.download_calls if task else 0

    def callbacks_sent(self) -> list[dict[str, Any]]:
        """One entry per callback *attempt*, in order: ``{"task_id", "kind", "url", "attempt"
        (1-based), "status_code" (int, or None when no HTTP answer), "error" (only on failure),
        "payload"}``. ``kind`` is ``completion`` (the genuine one), ``duplicate`` (copies 2..N of
        ``callback-duplicate``), ``late`` (``callback-late``), ``early`` (``callback-early``) or
        ``forged`` (``callback-forged``; ``url`` is then the wrong URL it went to). Keys redacted."""
        with self._lock:
            return copy.deepcopy(self._callbacks)

    def task_state(self, task_id: str) -> str | None:
        """``"processing"|"success"|"fail"``, or ``None`` for an unknown task."""
        with self._lock:
            task = self._tasks.get(task_id)
            return task.state if task else None

    def task_faults(self, task_id: str) -> Faults | None:
        """The faults that apply to a task (prompt tokens, callback mode, drawn rates), or ``None``."""
        with self._lock:
            task = self._tasks.get(task_id)
            return task.faults if task else None

    # ------------------------------------------------------------------ request handling (internal)

    def _authorised(self, key: str | None) -> bool:
        return key is not None and any(_same(key, k) for k in self._keys)

    def _record(self, entry: dict[str, Any]) -> None:
        entry["path"] = redact_text(entry["path"], self._keys)
        with self._lock:
            self._requests.append(entry)
        if self._on_request is not None:
            self._on_request(dict(entry))

    def _generate(self, body: Any, api_key: str) -> _Answer:
        """Decide the answer to an authorised generate request and record it (see the module table)."""
        now = time.time()
        call: dict[str, Any] = {
            "task_id": None,
            "model": body.get("model") if isinstance(body, dict) else None,
            "body": copy.deepcopy(body),
            "received_at": datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "faults": [],
            "random_faults": [],
            "answered": None,
        }
        answer = self._decide(body, api_key, call)
        call["answered"] = None if answer.stall else answer.status
        with self._lock:
            self._generate_calls.append(call)
        return answer

    def _decide(self, body: Any, api_key: str, call: dict[str, Any]) -> _Answer:
        if not isinstance(body, dict):
            return _Answer(200, _json_bytes({"code": 400, "msg": "invalid JSON body", "data": None}), call)
        model = body.get("model")
        if model is None or model == "":
            return _Answer(200, _json_bytes(FIELD_REQUIRED_BODY), call)
        modality = self.modality_of(model) if isinstance(model, str) else None
        if not isinstance(model, str) or modality not in ("image", "video", "audio"):
            return _Answer(400, _json_bytes({"msg": "invalid_model_id"}), call)
        assert modality is not None
        text = request_text(body)
        drawn: tuple[str, ...] = ()
        if self._fault_rates:
            with self._lock:
                occurrence = self._occurrences.get((model, text), 0)
                self._occurrences[(model, text)] = occurrence + 1
            drawn = draw_faults(self._fault_rates, self.seed, f"{model}\x00{text}\x00{occurrence}")
        faults = parse_faults(text, base=(*self._mode_tokens, *drawn))
        call["faults"], call["random_faults"] = list(faults.tokens), list(drawn)

        if faults.rate_limit:
            with self._lock:
                given = self._rate_limited.get(text, 0)
                limited = given < faults.rate_limit
                if limited:
                    self._rate_limited[text] = given + 1
            if limited:
                return _Answer(429, _json_bytes(RATE_LIMITED_BODY), call,
                               headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
        if faults.empty_400:
            return _Answer(400, b"", call)
        if faults.code400:
            return _Answer(200, _json_bytes(FIELD_REQUIRED_BODY), call)
        if faults.no_credits:
            return _Answer(200, _json_bytes(NO_CREDITS_BODY), call)

        delay = faults.generate_delay or self.generate_latency_seconds
        if delay:
            time.sleep(delay)
        task_id = self._accept(model, modality, body, text, faults, api_key)
        call["task_id"] = task_id
        if faults.generate_500:
            return _Answer(500, _json_bytes(GENERATE_500_BODY), call, task_id=task_id)
        accepted = _json_bytes([{"code": 200, "taskId": task_id}])
        return _Answer(200, accepted, call, task_id=task_id, stall=faults.generate_timeout)

    @contextlib.contextmanager
    def _stalling(self) -> Iterator[None]:
        """Mark the current handler thread as holding an answer back (:meth:`stop` waits briefly for it)."""
        me = threading.current_thread()
        with self._lock:
            self._stalled_threads.add(me)
        try:
            yield
        finally:
            with self._lock:
                self._stalled_threads.discard(me)

    def _answered(self, call: dict[str, Any], status: int | None) -> None:
        """A stalled generate answer is being sent (``status``), or could not be (``None``)."""
        with self._lock:
            call["answered"] = status

    def _accept(self, model: str, modality: str, body: dict[str, Any], text: str, faults: Faults,
                api_key: str) -> str:
        seconds = self.processing_seconds if faults.slow_seconds is None else faults.slow_seconds
        urls = input_urls(body) if self.fetch_inputs else []
        now, clock = time.time(), time.monotonic()
        task = _Task(
            task_id=secrets.token_hex(16), model=model, modality=modality, body=copy.deepcopy(body), text=text,
            faults=faults, api_key=api_key, created_at=now, due=clock + seconds,
            status_500_left=faults.status_500, truncate_left=faults.download_truncate,
            inputs_pending=bool(urls),  # set before the task is visible: it cannot finish before its fetches
        )
        with self._wakeup:
            self._tasks[task.task_id] = task
            url = task.callback_url if self.send_callbacks else None
            if url is not None:
                # Early and forged callbacks go out half-way through processing (before completion,
                # after the generate answer): pushed before "finish" so that they also precede it at 0 s.
                halfway, halfway_epoch = clock + seconds / 2, now + seconds / 2
                if faults.callback_early:
                    payload = self._success_payload(task, halfway_epoch)
                    self._push(halfway, "deliver", _Delivery(task.task_id, url, payload, "early", CALLBACK_RETRIES))
                if faults.callback_forged:
                    payload = self._success_payload(task, halfway_epoch, forged=True)
                    self._push(halfway, "deliver", _Delivery(task.task_id, forged_callback_url(url), payload,
                                                             "forged", 0))
            self._push(task.due, "finish", task.task_id)
        if urls:
            self._start_fetching(task, urls)
        return task.task_id

    # ------------------------------------------------------------------ input fetching

    def _start_fetching(self, task: _Task, urls: list[tuple[str, str]]) -> None:
        """Fetch the task's input URLs in a background thread (``task.inputs_pending`` is already set,
        so the task cannot finish meanwhile). Nothing starts once the emulator is stopping."""
        thread = threading.Thread(target=self._fetch_inputs, args=(task, urls),
                                  name=f"sandbox-inputs-{task.task_id[:8]}", daemon=True)
        with self._lock:
            if self._stopping.is_set():
                return
            self._fetch_threads.add(thread)
        thread.start()

    def _fetch_inputs(self, task: _Task, urls: list[tuple[str, str]]) -> None:
        """Fetch each distinct URL once, record one entry per field, then let the task finish (failed,
        under ``fail_on_input_error``, when a fetch failed)."""
        fetcher = self._fetcher or self._default_fetcher
        assert fetcher is not None
        results: dict[str, dict[str, Any]] = {}
        first_error: str | None = None
        try:
            for field_path, url in urls:
                if self._stopping.is_set():
                    return
                result = results.get(url)
                if result is None:
                    if len(results) >= MAX_INPUT_URLS:
                        result = {"ok": False, "bytes": 0, "sha256": None,
                                  "error": f"not fetched: more than {MAX_INPUT_URLS} input URLs"}
                    else:
                        result = self._fetch_one(fetcher, url)
                        results[url] = result
                entry = {"task_id": task.task_id, "field": field_path, "url": redact_url(url, self._keys),
                         **result}
                if not entry["ok"] and first_error is None:
                    first_error = f"could not fetch input {field_path}: {entry['error']}"
                with self._lock:
                    self._fetched.append(entry)
                if self._on_input_fetched is not None:
                    with contextlib.suppress(Exception):  # a failing observer must not stop the fetches
                        self._on_input_fetched(copy.deepcopy(entry))
        finally:
            with self._wakeup:
                self._fetch_threads.discard(threading.current_thread())
                task.inputs_pending = False
                if first_error is not None and self.fail_on_input_error:
                    task.input_error = first_error
                if task.state == "processing" and time.monotonic() >= task.due:
                    self._finish_locked(task)

    def _fetch_one(self, fetcher: Callable[[str], bytes], url: str) -> dict[str, Any]:
        """Fetch one URL: ``{"ok", "bytes", "sha256", "content_type"?, "error"}`` (error redacted)."""
        try:
            got = fetcher(url)
            if not isinstance(got, bytes | bytearray | memoryview):
                raise TypeError(f"the fetcher returned {type(got).__name__}, not bytes")
        except Exception as exc:  # noqa: BLE001 -- any fetcher failure is recorded, never raised
            message = str(exc) if isinstance(exc, FetchError) else f"{type(exc).__name__}: {exc}"
            return {"ok": False, "bytes": 0, "sha256": None, "error": redact_url(message, self._keys)[:500]}
        data = got if isinstance(got, bytes) else bytes(got)
        result: dict[str, Any] = {"ok": True, "bytes": len(data), "sha256": digest(data)}
        content_type = getattr(got, "content_type", None)
        if isinstance(content_type, str):
            result["content_type"] = content_type
        result["error"] = None
        return result

    def _push(self, due: float, kind: str, item: Any) -> None:
        """Schedule an event (caller holds the lock)."""
        heapq.heappush(self._schedule, (due, next(self._sequence), kind, item))
        self._wakeup.notify_all()

    def _lookup(self, task_id: str, api_key: str, *, download: bool) -> _Task | None:
        """The task (finished first if it is due), counting the call; None if unknown to this key."""
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None or not _same(task.api_key, api_key):
                return None
            if download:
                task.download_calls += 1
            else:
                task.status_calls += 1
            if task.state == "processing" and time.monotonic() >= task.due:
                self._finish_locked(task)
        return task

    def _take(self, task: _Task, counter: Literal["status_500_left", "truncate_left"]) -> bool:
        """Consume one unit of a task's ``status_500_left``/``truncate_left``; False when none is left."""
        with self._lock:
            left = getattr(task, counter)
            if left <= 0:
                return False
            setattr(task, counter, left - 1)
            return True

    def _media(self, task: _Task) -> Result:
        if task.media is None:
            media = render_media(task.modality, task.text or task.task_id, task.body, size=task.faults.size,
                                 as_zip=task.faults.zip or task.model in ZIP_MODELS)
            with self._lock:
                if task.media is None:
                    task.media = media
        assert task.media is not None
        return task.media

    def file_url(self, task_id: str, api_key: str) -> str:
        """The documented ``fileURL`` of a task: ``<base_url>/status?apiKey=KEY&taskId=ID&download=true``
        ("Quickstart" [000:25-52]). It carries the key: redact before logging."""
        return f"{self.base_url}/status?apiKey={quote(api_key, safe='')}&taskId={task_id}&download=true"

    # ------------------------------------------------------------------ completion and callbacks

    def _finish_locked(self, task: _Task) -> None:
        """Move a processing task to its end state and schedule its callbacks (caller holds the lock)."""
        if task.state != "processing":
            return
        if task.inputs_pending:
            return  # the input fetches end it (_fetch_inputs) when they are done
        task.completed_at = time.time()
        if task.input_error is not None:
            task.state, task.fail_msg = "fail", task.input_error
        elif task.faults.fail:
            task.state, task.fail_msg = "fail", FAIL_MESSAGE
        else:
            task.state = "success"
        url = task.callback_url
        if not self.send_callbacks or task.faults.no_callback or url is None:
            return
        payload = self._callback_payload(task)
        first = time.monotonic() + (task.faults.callback_delay or 0.0)
        for copy_number in range(task.faults.callback_duplicate or 1):
            kind = "completion" if copy_number == 0 else "duplicate"
            self._push(first, "deliver", _Delivery(task.task_id, url, payload, kind, CALLBACK_RETRIES))
        if task.faults.callback_late is not None:
            self._push(first + task.faults.callback_late, "deliver",
                       _Delivery(task.task_id, url, payload, "late", CALLBACK_RETRIES))

    def _run_scheduler(self) -> None:
        while not self._stopping.is_set():
            deliveries: list[_Delivery] = []
            with self._wakeup:
                while self._schedule and self._schedule[0][0] <= time.monotonic():
                    _, _, kind, item = heapq.heappop(self._schedule)
                    if kind == "finish":
                        self._finish_locked(self._tasks[item])
                    else:
                        deliveries.append(item)
                if not deliveries and not self._stopping.is_set():
                    timeout = self._schedule[0][0] - time.monotonic() if self._schedule else None
                    self._wakeup.wait(timeout)
            for delivery in deliveries:
                self._dispatch(delivery)

    def _success_payload(self, task: _Task, completed_at: float, *, forged: bool = False) -> dict[str, Any]:
        """"Webhooks" [000:142-169]: Success payload. A forged one points ``fileURL`` at a host that never
        resolves (a forger does not know the key)."""
        file_url = (f"https://{FORGED_FILE_HOST}/{task.task_id}.{_EXTENSIONS[task.modality]}" if forged
                    else self.file_url(task.task_id, task.api_key))
        return {
            "taskId": task.task_id,
            "status": "success",
            "model": task.model,
            "fileURL": file_url,
            "createdAt": _iso(task.created_at),
            "completedAt": _iso(completed_at),
        }

    def _callback_payload(self, task: _Task) -> dict[str, Any]:
        """"Webhooks" [000:142-169]: Success payload / Failure payload."""
        if task.state == "success":
            return self._success_payload(task, task.completed_at or task.created_at)
        return {
            "taskId": task.task_id,
            "status": "failure",
            "error": {"code": "provider_error", "message": task.fail_msg},
        }

    def _dispatch(self, delivery: _Delivery) -> None:
        thread = threading.Thread(target=self._deliver, args=(delivery,),
                                  name=f"sandbox-callback-{delivery.task_id[:8]}", daemon=True)
        with self._lock:
            if self._stopping.is_set():
                return
            self._callback_threads.add(thread)
        thread.start()

    def _deliver(self, delivery: _Delivery) -> None:
        """Send one callback: up to ``1 + delivery.retries`` attempts, back-off doubling from
        ``callback_retry_base_seconds``; recorded per attempt; abandoned when the emulator stops."""
        url, payload = delivery.url, delivery.payload
        safe_url = redact_text(url, self._keys)
        safe_payload = json.loads(redact_text(json.dumps(payload), self._keys))
        scheme = urlsplit(url).scheme
        try:
            for attempt in range(1, delivery.retries + 2):
                status: int | None = None
                error: str | None = f"unsupported callBackUrl scheme {scheme!r}"
                if scheme in ("http", "https"):
                    status, error = _post_json(url, payload, self.callback_timeout_seconds)
                entry: dict[str, Any] = {"task_id": delivery.task_id, "kind": delivery.kind, "url": safe_url,
                                         "attempt": attempt, "status_code": status, "payload": safe_payload}
                if error is not None:
                    entry["error"] = redact_text(error, self._keys)
                with self._lock:
                    self._callbacks.append(entry)
                if error is None or scheme not in ("http", "https"):
                    return
                if attempt <= delivery.retries and self._stopping.wait(
                    self.callback_retry_base_seconds * 2 ** (attempt - 1)
                ):
                    return
        finally:
            with self._lock:
                self._callback_threads.discard(threading.current_thread())


def _post_json(url: str, payload: dict[str, Any], timeout: float) -> tuple[int | None, str | None]:
    """POST ``payload`` as JSON; returns ``(status, error)`` where ``error`` is None for a 2xx answer.

    No proxies (environment settings ignored) and no redirects: a 3xx counts as a failed attempt.
    """
    import urllib.error
    import urllib.request

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())
    request = urllib.request.Request(  # noqa: S310 -- scheme checked by the caller (http/https only)
        url, data=json.dumps(payload).encode(), method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "mediagen-sandbox"},
    )
    try:
        with opener.open(request, timeout=timeout) as response:
            status = int(response.status)
            response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    if 200 <= status < 300:
        return status, None
    return status, f"HTTP {status}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mediagen-sandbox"
    sys_version = ""
    timeout = 30  # idle keep-alive connections are closed after this many seconds
    server: LoopbackServer[Emulator]

    def setup(self) -> None:
        """Disable Nagle: headers and body are separate writes, and Nagle plus the client's delayed ACK
        would add ~40 ms to every answer."""
        super().setup()
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 -- stdlib signature
        """Quiet by default: :func:`serve` prints its own (redacted) line per request."""

    @property
    def emulator(self) -> Emulator:
        return self.server.owner

    # -------------------------------------------------------------- plumbing

    def _read_body(self) -> bytes | None:
        """The request body (b"" when absent); None when too large (the connection is then closed)."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > _MAX_BODY_BYTES:
            self.close_connection = True
            return None
        return self.rfile.read(length) if length else b""

    def _log(self, status: int | None, task_id: str | None, sent: int | None = None) -> dict[str, Any]:
        entry: dict[str, Any] = {"method": self.command, "path": self.path, "status": status}
        if task_id is not None:
            entry["task_id"] = task_id
        if sent is not None:
            entry["bytes"] = sent
        self.emulator._record(entry)
        return entry

    def _send(self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None,
              task_id: str | None = None) -> bool:
        """Answer; returns False when the client was gone (the connection is then closed). The request is
        recorded before the answer goes out, so a client that has read it finds it in :meth:`Emulator.requests`."""
        self._log(status, task_id)
        try:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if body and self.command != "HEAD":
                self.wfile.write(body)
            delivered = True
        except OSError:
            self.close_connection = True
            delivered = False
        return delivered

    def _json(self, status: int, obj: Any, task_id: str | None = None) -> None:
        self._send(status, _json_bytes(obj), {"Content-Type": "application/json"}, task_id)

    def _stream(self, media: Result, task_id: str, *, truncate: bool) -> None:
        """Send a result file piece by piece with its exact ``Content-Length``; when ``truncate``, hang
        up after half of it (the header still promises everything). Recorded before the body goes out, with the
        bytes it will send (corrected if the client goes away first)."""
        limit = media.length // 2 if truncate else media.length
        sent = 0
        entry = self._log(200, task_id, limit)
        try:
            self.send_response(200)
            self.send_header("Content-Type", media.content_type)
            self.send_header("Content-Disposition", f'attachment; filename="{task_id}.{media.extension}"')
            self.send_header("Content-Length", str(media.length))
            self.end_headers()
            for piece in media.chunks():
                if sent >= limit:
                    break
                view = memoryview(piece)[: limit - sent]
                self.wfile.write(view)
                sent += view.nbytes
        except OSError:
            self.close_connection = True
            with self.emulator._lock:
                entry["bytes"] = sent
        if truncate:
            self.close_connection = True

    def _dispatch(self) -> None:
        body = self._read_body()
        if self.headers.get("Host") != PUBLIC_HOST:
            self._send(400)  # "Authentication" [002:115-132]: Host gate -> 400, empty body
            return
        if body is None:
            self._json(413, {"msg": "payload_too_large"})
            return
        path = urlsplit(self.path).path.rstrip("/")
        if path == f"{API_PREFIX}/generate":
            if self.command == "POST":
                self._generate(body)
            else:
                self._json(405, {"msg": "method_not_allowed"})
        elif path == f"{API_PREFIX}/status":
            if self.command == "GET":
                self._status()
            else:
                self._json(405, {"msg": "method_not_allowed"})
        else:
            self._json(404, {"msg": "not_found"})

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    # -------------------------------------------------------------- endpoints

    def _generate(self, raw: bytes) -> None:
        """``POST /generate`` as documented: "Authentication" [000:53-64], "Errors" [000:170-177]; "Generate
        Endpoint" [002:133-163], "Error Reference" [002:198-208]."""
        emulator = self.emulator
        scheme, _, key = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not emulator._authorised(key.strip()):
            self._json(401, UNAUTHORIZED_BODY)
            return
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        answer = emulator._generate(body, key.strip())
        if answer.stall:
            with emulator._stalling():
                if emulator._stopping.wait(emulator.stall_seconds):
                    self.close_connection = True  # stopped while stalling: hang up without an answer
                    self._log(None, answer.task_id)
                    return
        if answer.stall:  # recorded before the write, so a client that got the answer sees it on record
            emulator._answered(answer.call, answer.status)
        headers = {"Content-Type": "application/json"} if answer.body else {}
        delivered = self._send(answer.status, answer.body, {**headers, **answer.headers}, answer.task_id)
        if answer.stall and not delivered:
            emulator._answered(answer.call, None)

    def _status(self) -> None:
        """"Status & Download" [002:164-187] (response states); "Polling status" [000:275-292]."""
        emulator = self.emulator
        query = parse_qs(urlsplit(self.path).query)
        key = _first(query, "apiKey")
        task_id = _first(query, "taskId")
        if not emulator._authorised(key):
            self._json(400, {"msg": "invalid_api_key"}, task_id)
            return
        assert key is not None
        download = _first(query, "download") == "true"
        task = emulator._lookup(task_id, key, download=download) if task_id else None
        if task is None:
            self._json(400, {"msg": "invalid_taskId"}, task_id)
            return
        if not download and emulator._take(task, "status_500_left"):
            self._json(500, STATUS_500_BODY, task.task_id)
            return
        with emulator._lock:
            state, fail_msg = task.state, task.fail_msg
        if state == "processing":
            self._json(300, [{"status": "processing"}], task.task_id)
        elif state == "fail":
            self._json(400, {"status": "fail", "failMsg": fail_msg}, task.task_id)
        elif not download:
            self._json(200, [{"status": "success", "fileURL": emulator.file_url(task.task_id, key)}],
                       task.task_id)
        elif task.faults.download_404:
            self._json(404, FILE_NOT_FOUND_BODY, task.task_id)
        else:
            media = emulator._media(task)
            self._stream(media, task.task_id, truncate=emulator._take(task, "truncate_left"))


def serve(
    *,
    host: str,
    port: int,
    processing_seconds: float,
    api_key: str,
    send_callbacks: bool = True,
    callback_mode: str = "normal",
    faults: Iterable[str] = (),
    seed: int | None = None,
    fetch_inputs: bool = False,
    fail_on_input_error: bool = False,
) -> None:
    """Run an emulator in the foreground until Ctrl-C (``mediagen emulator`` calls this).

    Prints the base URL (and the callback mode, fault rates and seed, input fetching when set), then
    one line per request (method, path with the ``apiKey`` redacted, HTTP status, task id) and, with
    ``fetch_inputs``, one line per input fetched (field, redacted URL, bytes or error). Point the
    pipeline at it with ``MEDIAGEN_CLIPRISE_BASE_URL=<base URL>``.

    Args:
        callback_mode: see :class:`Emulator` (``--callback-mode``).
        faults: ``--fault`` specs, ``TOKEN=RATE`` (e.g. ``"fail=0.05"``, ``"status-500:2=0.1"``; see
            :func:`~mediagen.sandbox.faults.parse_fault_rate`).
        seed: seed of the random fault draws (``--fault-seed``); random when ``None`` (printed).
        fetch_inputs: download every accepted job's input URLs (``--fetch-inputs``), see :class:`Emulator`.
        fail_on_input_error: with ``fetch_inputs``, a failed input fetch fails the task.

    Raises:
        ValueError: empty ``api_key``, an invalid callback mode or fault spec.
        OSError: the address cannot be bound.
    """

    def show(entry: dict[str, Any]) -> None:
        task = f" task={entry['task_id']}" if entry.get("task_id") else ""
        print(f"{entry['method']} {entry['path']} -> {entry['status']}{task}", flush=True)

    def show_fetch(entry: dict[str, Any]) -> None:  # entries are redacted already
        outcome = (f"{entry['bytes']} bytes sha256={entry['sha256'][:12]}" if entry["ok"]
                   else f"failed: {entry['error']}")
        print(f"input task={entry['task_id']} {entry['field']} {entry['url']} -> {outcome}", flush=True)

    emulator = Emulator(api_keys=[api_key], host=host, port=port, processing_seconds=processing_seconds,
                        send_callbacks=send_callbacks, on_request=show, callback_mode=callback_mode,
                        fault_rates=list(faults), seed=seed, fetch_inputs=fetch_inputs,
                        fail_on_input_error=fail_on_input_error, on_input_fetched=show_fetch)
    with emulator:
        try:  # Ctrl-C right after the banner is printed must still stop cleanly
            print(f"Cliprise sandbox emulator on {emulator.base_url} (Host: {PUBLIC_HOST}); Ctrl-C stops.",
                  flush=True)
            if callback_mode != "normal":
                print(f"callback mode: {callback_mode}", flush=True)
            if emulator.fault_rates:
                rates = " ".join(f"--fault {token.replace('=', ':', 1)}={rate:g}"
                                 for token, rate in emulator.fault_rates.items())
                print(f"fault rates: {rates} --fault-seed {emulator.seed}", flush=True)
            if fetch_inputs:
                effect = "a failed fetch fails the task" if fail_on_input_error else "failures are only recorded"
                print(f"fetching input URLs ({effect})", flush=True)
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopping", flush=True)
