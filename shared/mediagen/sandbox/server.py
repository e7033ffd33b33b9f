"""The sandbox emulator: a loopback HTTP server that behaves as the documents say Cliprise behaves.

It lets the whole pipeline (and its tests) run with no network and no account. It speaks the two
documented endpoints under ``/app/cliprise`` (seeds/000 "Quickstart"; seeds/002 "Generate Endpoint",
"Status & Download", "Error Reference"; seeds/003). Every request, whatever its path (the ``fileURL``
download too), must carry ``Host: business.api.cliprise.app`` exactly, or it gets HTTP 400 with an
empty body (seeds/002 "Authentication", Host gate): point a client at :attr:`Emulator.base_url` and set
that header, as the pipeline does for the real API.

``POST /app/cliprise/generate`` (``Authorization: Bearer KEY``)
    ==============================================  ====  ==============================================
    situation                                       HTTP  body
    ==============================================  ====  ==============================================
    ``Host`` is not ``business.api.cliprise.app``   400   empty (seeds/002 "Authentication", Host gate)
    missing/wrong bearer key                        401   ``{"code":401,"error":{"code":"invalid_api_key",
                                                          "message":"Missing or invalid API key."}}``
                                                          (seeds/000 "Authentication")
    body is not a JSON object                       200   ``{"code":400,"msg":"invalid JSON body",
                                                          "data":null}``
    ``model`` missing or empty                      200   ``{"code":400,"msg":"This field is required",
                                                          "data":null}`` (seeds/002 "Error Reference")
    unknown model (``modality_of`` → ``None``)      400   ``{"msg":"invalid_model_id"}``
    accepted                                        200   ``[{"code":200,"taskId":"<32 hex>"}]``
    ==============================================  ====  ==============================================

``GET /app/cliprise/status?apiKey=KEY&taskId=ID[&download=true]``
    ==============================================  ====  ==============================================
    missing/wrong ``apiKey``                        400   ``{"msg":"invalid_api_key"}``
    unknown ``taskId`` (or another key's task)      400   ``{"msg":"invalid_taskId"}``
    processing                                      300   ``[{"status":"processing"}]``
    succeeded                                       200   ``[{"status":"success","fileURL":
                                                          "<base_url>/status?apiKey=KEY&taskId=ID&download=true"}]``
    failed                                          400   ``{"status":"fail","failMsg":"…"}``
    succeeded, ``download=true``                    200   the file's bytes, with ``Content-Type``,
                                                          ``Content-Length`` and ``Content-Disposition:
                                                          attachment; filename="<taskId>.<ext>"``
    ==============================================  ====  ==============================================

The ``fileURL`` carries the API key in its query string exactly like the documents show (seeds/000
"Quickstart", Result ready): whoever logs it must redact it. The emulator's own request log
(:meth:`Emulator.requests`, :func:`serve`) redacts it.

A task finishes ``processing_seconds`` after it was accepted (or as the job's fault tokens say, see
:mod:`mediagen.sandbox.faults`). Completion is driven by a scheduler thread, so the callback fires on
time even when nobody polls. When the request had ``callBackUrl``, the emulator then POSTs the
documented payload to it (seeds/000 "Webhooks": 10 s timeout, up to 3 retries with exponential backoff
on non-2xx or error):

- success: ``{"taskId","status":"success","model","fileURL","createdAt","completedAt"}`` (ISO-8601 Z);
- failure: ``{"taskId","status":"failure","error":{"code":"provider_error","message":…}}``.

Result media are real files of the model's kind (see :mod:`mediagen.sandbox.media`).

The module imports only the standard library (``urllib.request`` lazily, for callbacks), so starting
an emulator costs a few milliseconds.
"""

from __future__ import annotations

import contextlib
import copy
import heapq
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from mediagen.redact import redact_text
from mediagen.sandbox.faults import FAIL_MESSAGE, Faults, parse_faults
from mediagen.sandbox.media import Media, render_media

#: The Host header the provider requires, exactly (seeds/002 "Authentication": Host gate; seeds/003
#: "Base URL and host"). Same value as ``mediagen.settings.CLIPRISE_HOST``; repeated here so that the
#: emulator does not import pydantic.
PUBLIC_HOST = "business.api.cliprise.app"
#: Path prefix of both endpoints (seeds/000: base URL ``https://business.api.cliprise.app/app/cliprise``).
API_PREFIX = "/app/cliprise"

#: seeds/000 "Authentication": "Missing key → 401 Returned with invalid_api_key error code".
UNAUTHORIZED_BODY: dict[str, Any] = {
    "code": 401,
    "error": {"code": "invalid_api_key", "message": "Missing or invalid API key."},
}
#: seeds/000 "Webhooks": "Timeout 10 seconds"; "Up to 3 retries with exponential backoff".
CALLBACK_TIMEOUT_SECONDS = 10.0
CALLBACK_RETRIES = 3

_MAX_BODY_BYTES = 1 << 20
_MODEL_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_VIDEO_PREFIXES = (
    "grok-imagine-video", "veo", "sora", "kling", "hailuo", "seedance", "wan", "runway", "vidu", "happyhorse",
)
# List fields whose items carry text (elevenlabs-v3-dialogue ``dialogue``; Kling multi-shot prompts).
_TEXT_LISTS = ("dialogue", "multi_prompt", "shots")


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
    (root-only models, seeds/002 "Input Types") and under ``input`` (standard models), plus the
    ``text``/``prompt`` of each item of ``dialogue``, ``multi_prompt`` and ``shots`` lists
    (e.g. ``input.dialogue[*].text`` of elevenlabs-v3-dialogue, seeds/000 "Elevenlabs V3 Dialogue")."""
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


def _same(a: str, b: str) -> bool:
    """Constant-time comparison of two keys (any characters)."""
    return secrets.compare_digest(a.encode("utf-8", "surrogateescape"), b.encode("utf-8", "surrogateescape"))


def _first(query: Mapping[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
    media: Media | None = None
    status_calls: int = 0
    download_calls: int = 0


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        self.emulator = emulator
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Hang up kept-alive client connections (their handler threads then end)."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: a client hanging up mid-response is not worth a traceback on stderr."""


class Emulator:
    """The sandbox Cliprise API on loopback. Thread-safe; use as a context manager or
    :meth:`start`/:meth:`stop`.

    Args:
        api_keys: the keys it accepts (at least one non-empty key; never shown in reprs or logs).
        host, port: where to listen; ``port=0`` picks a free port (see :attr:`base_url` after start).
        processing_seconds: how long a task stays ``processing`` after it was accepted.
        send_callbacks: POST to ``callBackUrl`` when a task ends.
        modality_of: ``model -> "image"|"video"|"audio"|None``; ``None`` means unknown model
            (``invalid_model_id``). Default :func:`default_modality_of`.
        callback_retry_base_seconds: first back-off between callback attempts, doubled each retry.
        callback_timeout_seconds: timeout of one callback attempt (seeds/000 "Webhooks": 10 s).
        on_request: called after every answered request with the same dict :meth:`requests` records.

    Raises:
        ValueError: no usable API key, or a negative duration.
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
    ) -> None:
        self._keys = frozenset(k for k in api_keys if k)
        if not self._keys:
            raise ValueError("the emulator needs at least one non-empty API key")
        if processing_seconds < 0 or callback_retry_base_seconds < 0 or callback_timeout_seconds <= 0:
            raise ValueError("durations must be non-negative (the callback timeout positive)")
        self.host = host
        self.port = port
        self.processing_seconds = processing_seconds
        self.send_callbacks = send_callbacks
        self.modality_of = modality_of or default_modality_of
        self.callback_retry_base_seconds = callback_retry_base_seconds
        self.callback_timeout_seconds = callback_timeout_seconds
        self._on_request = on_request

        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._tasks: dict[str, _Task] = {}
        self._schedule: list[tuple[float, str]] = []  # heap of (due, task_id)
        self._generate_calls: list[dict[str, Any]] = []
        self._requests: list[dict[str, Any]] = []
        self._callbacks: list[dict[str, Any]] = []
        self._callback_threads: set[threading.Thread] = set()
        self._server: _Server | None = None
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
        server = _Server((self.host, self.port), self)
        self._server = server
        self.port = server.server_address[1]
        self._threads = [
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                             name="sandbox-http", daemon=True),
            threading.Thread(target=self._run_scheduler, name="sandbox-scheduler", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, stop the scheduler and abandon pending callback retries. Idempotent.

        Waits briefly for in-flight callback attempts; they are daemon threads either way.
        """
        server, self._server = self._server, None
        self._stopping.set()
        with self._wakeup:
            self._wakeup.notify_all()
        if server is not None:
            server.shutdown()
            server.server_close()
            server.close_connections()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []
        with self._lock:
            pending = list(self._callback_threads)
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

    # ------------------------------------------------------------------ introspection

    def generate_calls(self) -> list[dict[str, Any]]:
        """One entry per *accepted* ``POST /generate``, oldest first:
        ``{"task_id", "model", "body" (the parsed JSON, a copy), "received_at" (ISO-8601 Z)}``."""
        with self._lock:
            return copy.deepcopy(self._generate_calls)

    def requests(self) -> list[dict[str, Any]]:
        """Every answered request, oldest first: ``{"method", "path" (query redacted), "status" (HTTP
        status answered)}`` plus ``"task_id"`` when the request named or created a task."""
        with self._lock:
            return copy.deepcopy(self._requests)

    def status_calls(self, task_id: str) -> int:
        """Authorised ``GET /status`` calls for ``task_id`` without ``download=true`` (0 if unknown)."""
        with self._lock:
            task = self._tasks.get(task_id)
            return task.status_calls if task else 0

    def download_calls(self, task_id: str) -> int:
        """Authorised ``GET /status?download=true`` calls for ``task_id`` (0 if unknown)."""
        with self._lock:
            task = self._tasks.get(task_id)
            return task.download_calls if task else 0

    def callbacks_sent(self) -> list[dict[str, Any]]:
        """One entry per callback *attempt*, in order: ``{"task_id", "url", "attempt" (1-based),
        "status_code" (int, or None when no HTTP answer), "error" (only on failure), "payload"}``."""
        with self._lock:
            return copy.deepcopy(self._callbacks)

    def task_state(self, task_id: str) -> str | None:
        """``"processing"|"success"|"fail"``, or ``None`` for an unknown task."""
        with self._lock:
            task = self._tasks.get(task_id)
            return task.state if task else None

    # ------------------------------------------------------------------ request handling (internal)

    def _authorised(self, key: str | None) -> bool:
        return key is not None and any(_same(key, k) for k in self._keys)

    def _record(self, entry: dict[str, Any]) -> None:
        entry["path"] = redact_text(entry["path"], self._keys)
        with self._lock:
            self._requests.append(entry)
        if self._on_request is not None:
            self._on_request(dict(entry))

    def _accept(self, model: str, modality: str, body: dict[str, Any], api_key: str) -> str:
        text = request_text(body)
        faults = parse_faults(text)
        seconds = self.processing_seconds if faults.slow_seconds is None else faults.slow_seconds
        now = time.time()
        task = _Task(
            task_id=secrets.token_hex(16), model=model, modality=modality, body=body, text=text,
            faults=faults, api_key=api_key, created_at=now, due=time.monotonic() + seconds,
        )
        with self._wakeup:
            self._tasks[task.task_id] = task
            self._generate_calls.append({
                "task_id": task.task_id, "model": model, "body": copy.deepcopy(body),
                "received_at": datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")
                .replace("+00:00", "Z"),
            })
            heapq.heappush(self._schedule, (task.due, task.task_id))
            self._wakeup.notify_all()
        return task.task_id

    def _lookup(self, task_id: str, api_key: str, *, download: bool) -> _Task | None:
        """The task (finished first if it is due), counting the call; None if unknown to this key."""
        finished = None
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None or not _same(task.api_key, api_key):
                return None
            if download:
                task.download_calls += 1
            else:
                task.status_calls += 1
            if task.state == "processing" and time.monotonic() >= task.due:
                finished = self._finish_locked(task)
        if finished is not None:
            self._dispatch_callback(finished)
        return task

    def _media(self, task: _Task) -> Media:
        if task.media is None:
            media = render_media(task.modality, task.text or task.task_id, task.body)
            with self._lock:
                if task.media is None:
                    task.media = media
        assert task.media is not None
        return task.media

    def file_url(self, task_id: str, api_key: str) -> str:
        """The documented ``fileURL`` of a task: ``<base_url>/status?apiKey=KEY&taskId=ID&download=true``
        (seeds/000 "Quickstart"). It carries the key: redact before logging."""
        return f"{self.base_url}/status?apiKey={quote(api_key, safe='')}&taskId={task_id}&download=true"

    # ------------------------------------------------------------------ completion and callbacks

    def _finish_locked(self, task: _Task) -> _Task | None:
        """Move a processing task to its end state (caller holds the lock). Returns the task when a
        callback is due, else None."""
        if task.state != "processing":
            return None
        task.completed_at = time.time()
        if task.faults.fail:
            task.state, task.fail_msg = "fail", FAIL_MESSAGE
        else:
            task.state = "success"
        wants = self.send_callbacks and not task.faults.no_callback and bool(task.body.get("callBackUrl"))
        return task if wants else None

    def _run_scheduler(self) -> None:
        while not self._stopping.is_set():
            due_tasks: list[_Task] = []
            with self._wakeup:
                now = time.monotonic()
                while self._schedule and self._schedule[0][0] <= now:
                    _, task_id = heapq.heappop(self._schedule)
                    finished = self._finish_locked(self._tasks[task_id])
                    if finished is not None:
                        due_tasks.append(finished)
                if not due_tasks and not self._stopping.is_set():
                    timeout = self._schedule[0][0] - now if self._schedule else None
                    self._wakeup.wait(timeout)
            for task in due_tasks:
                self._dispatch_callback(task)

    def _callback_payload(self, task: _Task) -> dict[str, Any]:
        """seeds/000 "Webhooks": Success payload / Failure payload."""
        if task.state == "success":
            return {
                "taskId": task.task_id,
                "status": "success",
                "model": task.model,
                "fileURL": self.file_url(task.task_id, task.api_key),
                "createdAt": _iso(task.created_at),
                "completedAt": _iso(task.completed_at or task.created_at),
            }
        return {
            "taskId": task.task_id,
            "status": "failure",
            "error": {"code": "provider_error", "message": task.fail_msg},
        }

    def _dispatch_callback(self, task: _Task) -> None:
        url = str(task.body["callBackUrl"])
        payload = self._callback_payload(task)
        thread = threading.Thread(target=self._deliver, args=(task.task_id, url, payload),
                                  name=f"sandbox-callback-{task.task_id[:8]}", daemon=True)
        with self._lock:
            if self._stopping.is_set():
                return
            self._callback_threads.add(thread)
        thread.start()

    def _deliver(self, task_id: str, url: str, payload: dict[str, Any]) -> None:
        """Send one callback: up to 1 + CALLBACK_RETRIES attempts, back-off doubling from
        ``callback_retry_base_seconds``; recorded per attempt; abandoned when the emulator stops."""
        safe_url = redact_text(url, self._keys)
        safe_payload = json.loads(redact_text(json.dumps(payload), self._keys))
        scheme = urlsplit(url).scheme
        try:
            for attempt in range(1, CALLBACK_RETRIES + 2):
                status: int | None = None
                error: str | None = f"unsupported callBackUrl scheme {scheme!r}"
                if scheme in ("http", "https"):
                    status, error = _post_json(url, payload, self.callback_timeout_seconds)
                entry: dict[str, Any] = {"task_id": task_id, "url": safe_url, "attempt": attempt,
                                         "status_code": status, "payload": safe_payload}
                if error is not None:
                    entry["error"] = redact_text(error, self._keys)
                with self._lock:
                    self._callbacks.append(entry)
                if error is None or scheme not in ("http", "https"):
                    return
                if attempt <= CALLBACK_RETRIES and self._stopping.wait(
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
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 -- stdlib signature
        """Quiet by default: :func:`serve` prints its own (redacted) line per request."""

    @property
    def emulator(self) -> Emulator:
        return self.server.emulator

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

    def _send(self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None,
              task_id: str | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)
        entry: dict[str, Any] = {"method": self.command, "path": self.path, "status": status}
        if task_id is not None:
            entry["task_id"] = task_id
        self.emulator._record(entry)

    def _json(self, status: int, obj: Any, task_id: str | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), {"Content-Type": "application/json"}, task_id)

    def _dispatch(self) -> None:
        body = self._read_body()
        if self.headers.get("Host") != PUBLIC_HOST:
            self._send(400)  # seeds/002 "Authentication": Host gate -> 400, empty body
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
        """seeds/000 "Authentication", "Errors"; seeds/002 "Generate Endpoint", "Error Reference"."""
        emulator = self.emulator
        scheme, _, key = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not emulator._authorised(key.strip()):
            self._json(401, UNAUTHORIZED_BODY)
            return
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self._json(200, {"code": 400, "msg": "invalid JSON body", "data": None})
            return
        model = body.get("model")
        if model is None or model == "":
            self._json(200, {"code": 400, "msg": "This field is required", "data": None})
            return
        modality = emulator.modality_of(model) if isinstance(model, str) else None
        if not isinstance(model, str) or modality is None or modality not in ("image", "video", "audio"):
            self._json(400, {"msg": "invalid_model_id"})
            return
        task_id = emulator._accept(model, modality, body, key.strip())
        self._json(200, [{"code": 200, "taskId": task_id}], task_id)

    def _status(self) -> None:
        """seeds/002 "Status & Download" (response states); seeds/000 "Polling status"."""
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
        with emulator._lock:
            state, fail_msg = task.state, task.fail_msg
        if state == "processing":
            self._json(300, [{"status": "processing"}], task.task_id)
        elif state == "fail":
            self._json(400, {"status": "fail", "failMsg": fail_msg}, task.task_id)
        elif download:
            media = emulator._media(task)
            self._send(200, media.data, {
                "Content-Type": media.content_type,
                "Content-Disposition": f'attachment; filename="{task.task_id}.{media.extension}"',
            }, task.task_id)
        else:
            self._json(200, [{"status": "success", "fileURL": emulator.file_url(task.task_id, key)}],
                       task.task_id)


def serve(
    *, host: str, port: int, processing_seconds: float, api_key: str, send_callbacks: bool = True
) -> None:
    """Run an emulator in the foreground until Ctrl-C (``mediagen emulator`` calls this).

    Prints the base URL, then one line per request (method, path with the ``apiKey`` redacted, HTTP
    status, task id). Point the pipeline at it with ``MEDIAGEN_CLIPRISE_BASE_URL=<base URL>``.

    Raises:
        ValueError: empty ``api_key``.
        OSError: the address cannot be bound.
    """

    def show(entry: dict[str, Any]) -> None:
        task = f" task={entry['task_id']}" if entry.get("task_id") else ""
        print(f"{entry['method']} {entry['path']} -> {entry['status']}{task}", flush=True)

    emulator = Emulator(api_keys=[api_key], host=host, port=port, processing_seconds=processing_seconds,
                        send_callbacks=send_callbacks, on_request=show)
    with emulator:
        print(f"Cliprise sandbox emulator on {emulator.base_url} (Host: {PUBLIC_HOST}); Ctrl-C stops.",
              flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopping", flush=True)
