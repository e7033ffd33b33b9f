"""The Clipia emulator: a loopback HTTP server that behaves as the public reference says the Clipia API
behaves, so the Clipia adapter, the pipeline and their tests run with no network and no account.

Base URL :attr:`ClipiaEmulator.base_url` (``http://127.0.0.1:<port>``, paths under ``/v1`` like
``https://api.clipia.ai/v1``, [004:111-119]); point ``MEDIAGEN_CLIPIA_BASE_URL`` (or the official
SDK's ``base_url``) at it. Every ``/v1`` call needs ``Authorization: Key <key>`` ([004:136-141]) or
``Authorization: Bearer <key>`` (what the SDKs and the MCP examples send, [004:182]).

=========================================  ===============================================================
endpoint                                   answer
=========================================  ===============================================================
``POST /v1/models/{slug}``                 ``{"input": {...}, "webhook_url"?}`` -> 200 ``{request_id, status,
                                           queue_position, status_url, response_url, cancel_url, cost}``
                                           ([004:111-115]; Clipia "submit" page). ``Idempotency-Key``: same
                                           key + same body -> the same ``request_id``, no second charge;
                                           other body -> 409 ``idempotency_key_reuse``; while the first
                                           call with the key is still being answered -> 409
                                           ``request_in_progress`` (Clipia "idempotency" page; [004:96-98])
``GET /v1/requests/{id}/status``           ``{request_id, status, queue_position, progress, logs}``:
                                           ``IN_QUEUE`` -> ``IN_PROGRESS`` (progress 0-100) ->
                                           ``COMPLETED`` / ``FAILED`` / ``CANCELED`` (Clipia "overview").
                                           Undeclared ``input`` keys are accepted with ``warnings``
                                           ``[{code: "unknown_parameter", parameter, message}]`` (SDK
                                           1.5.0 ``InputWarning``)
``GET /v1/requests/{id}``                  202 ``{request_id, status, queue_position}`` while not
                                           terminal; 200 ``{request_id, status, model, output, error,
                                           cost, created_at, started_at, completed_at}`` ([004:117-119]);
                                           ``cost`` is what was charged: 0 once ``FAILED`` / ``CANCELED``
                                           (SDK 1.5.0 ``ResultResponse``)
``POST /v1/requests/{id}/cancel``          cancels a request not yet terminal and refunds it (OpenAPI
                                           ``clipia-v1.json``); 400 ``invalid_request`` once terminal
``GET /v1/models``, ``/v1/models/{slug}``  the snapshot ``catalog/clipia_models.json`` (Clipia "models")
``POST /v1/models/{slug}/estimate``        ``{"credits": n}`` (SDK ``EstimateResponse``)
``GET /v1/account``                        ``{account_id, balance: {credits}, usage_30d: {requests,
                                           credits_spent}}`` (SDK ``Account``)
``GET /media/{id}/{n}.{ext}``              the output file (no key, like ``media.clipia.ai``)
=========================================  ===============================================================

Errors are one JSON shape, ``{"error": {"type", "code", "message"}}`` (+ ``details`` on 422, the
problems found), with the codes of [004:148-161]: 400 ``invalid_request``, 401 ``invalid_api_key``, 402
``insufficient_credits``, 404 ``not_found``, 409 ``idempotency_key_reuse`` / ``request_in_progress``, 422
``model_input_invalid``, 429 ``rate_limit_exceeded`` (with ``Retry-After``), 500 ``internal_error``. Every
``/v1`` answer carries ``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset`` ([004:100-102]):
``rate_limit_per_minute`` requests per key per 60-second window.

Outputs are real files (:mod:`mediagen.sandbox.media`): ``output.images`` (``num_images`` of them, PNG),
``output.video`` (H.264 MP4) or ``output.audio`` (WAV). Keys starting ``clipia_test_`` are sandbox keys
([004:88-90, 203]): the request is ``COMPLETED`` at once with a fixed result, nothing is charged, ``cost``
is still shown and webhooks are still signed.

With ``webhook_url``, the terminal outcome is POSTed there, signed ([004:92-94, 163-173]; Clipia "webhooks"):
``X-Clipia-Webhook-Id``, ``X-Clipia-Timestamp`` and ``X-Clipia-Signature: t=<unix>,v1=<hex>``, the hex
HMAC-SHA256 of ``"{t}.{raw_body}"`` under :attr:`ClipiaEmulator.webhook_secret`; payload ``{request_id,
status: "OK", payload: {model, output, cost}}`` or ``{request_id, status: "ERROR", error: {code,
message}}``; a non-2xx answer or an error is retried :data:`WEBHOOK_RETRIES` times with a doubling
back-off. Fault tokens in the prompt (:mod:`mediagen.sandbox.clipia_faults`) misbehave on purpose.

Only the standard library is imported at module level (the catalog, for models, prices and input
validation, is imported on first use).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import heapq
import hmac
import itertools
import json
import math
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

from mediagen.redact import redact_text
from mediagen.sandbox.clipia_faults import ClipiaFaults, normalise_clipia_token, parse_clipia_faults
from mediagen.sandbox.faults import draw_faults
from mediagen.sandbox.loopback import LoopbackServer
from mediagen.sandbox.media import Result, render_media

#: Prefix of sandbox keys ([004:88-90, 203]).
TEST_KEY_PREFIX = "clipia_test_"
#: Webhook retries after the first attempt (Clipia "webhooks": "retried up to 6 times with exponential
#: backoff"; the "best practices" page says "up to 6 attempts").
WEBHOOK_RETRIES = 6
#: Time a webhook receiver has to answer ([004:173]: "Respond with 2xx within 10 seconds").
WEBHOOK_TIMEOUT_SECONDS = 10.0
#: ``error.code`` of a failed / canceled request (Clipia "webhooks" payload example: ``GENERATION_FAILED``).
FAILED_CODE = "GENERATION_FAILED"
CANCELED_CODE = "GENERATION_CANCELED"
FAIL_MESSAGE = "Sandbox: generation failed as requested ([sandbox:fail]); credits refunded"
#: How long ``[sandbox:submit-timeout]`` holds its answer by default.
STALL_SECONDS = 60.0
#: Share of the processing time a request spends ``IN_QUEUE`` before ``IN_PROGRESS``.
QUEUE_SHARE = 0.25
TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELED"})

#: HTTP status -> ``error.type`` (the SDK's tests show ``invalid_request_error`` for a 401; the rest is ours).
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
                403: "permission_error", 404: "invalid_request_error", 409: "invalid_request_error",
                422: "invalid_request_error", 429: "rate_limit_error", 500: "api_error"}
_MAX_BODY_BYTES = 1 << 20
_MEDIA_FACTS = {"image": ("image/png", "png"), "video": ("video/mp4", "mp4"), "audio": ("audio/wav", "wav")}
_FIXED_SEED = "clipia-sandbox-fixed-result"


def _now_iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _same(a: str, b: str) -> bool:
    return secrets.compare_digest(a.encode("utf-8", "surrogateescape"), b.encode("utf-8", "surrogateescape"))


def sign(secret: str, timestamp: int, raw_body: bytes) -> str:
    """The ``X-Clipia-Signature`` value: ``t=<timestamp>,v1=<hex HMAC-SHA256(secret, "{t}.{raw_body}")>``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + raw_body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def error_body(status: int, code: str, message: str, details: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """The one error shape: ``{"error": {"type", "code", "message"[, "details"]}}`` ([004:148-161])."""
    error: dict[str, Any] = {"type": _ERROR_TYPES.get(status, "api_error"), "code": code, "message": message}
    if details:
        error["details"] = details
    return {"error": error}


def _prompt_text(input_obj: Any) -> str:
    if not isinstance(input_obj, Mapping):
        return ""
    return "\n".join(input_obj[k] for k in ("prompt", "text", "negative_prompt") if isinstance(input_obj.get(k), str))


def _warnings(model: Any, input_obj: Mapping[str, Any]) -> list[dict[str, str]]:
    """``input`` keys the model does not declare: accepted with a warning, not refused (SDK 1.5.0
    ``InputWarning``: code ``unknown_parameter``)."""
    known = model.schema.get("properties") or {}
    return [{"code": "unknown_parameter", "parameter": key,
             "message": f"'{key}' is not a parameter of {model.slug}; it is ignored"}
            for key in input_obj if key not in known]


def _fingerprint(slug: str, body: Any) -> str:
    return hashlib.sha256(json.dumps([slug, body], sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass
class _Request:
    request_id: str
    slug: str
    modality: str
    input: dict[str, Any]
    webhook_url: str | None = field(repr=False)
    api_key: str = field(repr=False)
    test_key: bool
    faults: ClipiaFaults
    cost: int
    charged: int
    idempotency_key: str | None
    created_at: float
    started: float  # monotonic: IN_QUEUE -> IN_PROGRESS
    due: float  # monotonic: terminal
    status: str = "IN_QUEUE"
    started_at: float | None = None
    completed_at: float | None = None
    error: dict[str, str] | None = None
    media: dict[int, Result] = field(default_factory=dict, repr=False)
    status_calls: int = 0
    result_calls: int = 0
    status_500_left: int = 0

    @property
    def outputs(self) -> int:
        if self.modality != "image":
            return 1
        count = self.input.get("num_images", 1)
        return count if isinstance(count, int) and not isinstance(count, bool) and 1 <= count <= 16 else 1


@dataclass
class _Key:
    """One ``Idempotency-Key`` of one API key."""

    fingerprint: str
    request_id: str | None = None
    in_progress: bool = True
    expires: float = 0.0


@dataclass
class _Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    request_id: str | None = None
    drop: bool = False
    stall: float = 0.0
    release_key: tuple[str, str] | None = None  # (api key, idempotency key) to mark done once answered
    call: dict[str, Any] | None = None  # the submit_calls() entry


class ClipiaEmulator:
    """The Clipia API on loopback. Thread-safe; a context manager (or :meth:`start` / :meth:`stop`).

    Args:
        api_keys: the keys it accepts (``clipia_live_…`` or ``clipia_test_…``; never shown or logged).
        host, port: where to listen (``port=0``: a free port, see :attr:`base_url`).
        processing_seconds: how long a live-key request runs (a quarter ``IN_QUEUE``, the rest
            ``IN_PROGRESS``) unless ``[sandbox:slow=S]``.
        credits: the account's starting balance (credits); a submit dearer than the balance is 402.
        webhook_secret: the account's webhook signing secret (default: random, see :attr:`webhook_secret`).
        rate_limit_per_minute: requests per API key per 60-second window before 429.
        max_concurrent: generations a key may have running (``IN_QUEUE``/``IN_PROGRESS``); a submit past
            it is 429 ``rate_limit_exceeded`` ([004:100-102]: "concurrent generations"). None: no limit.
        models: the ``GET /v1/models`` snapshot to serve (default: the packaged one).
        validate_inputs: answer 422 ``model_input_invalid`` when an input breaks its model's schema.
        webhook_retry_base_seconds: first back-off between webhook attempts (doubled each retry).
        stall_seconds: default hold of ``[sandbox:submit-timeout]`` (:meth:`stop` cuts it short).
        fault_rates: ``{token: probability}`` applied to a random share of submits (``--fault``), drawn
            deterministically from ``seed``, the model and the prompt's occurrence.
        on_request: called with each :meth:`requests` entry.

    Raises:
        ValueError: no usable key, a negative duration or an invalid fault rate.
    """

    def __init__(
        self,
        *,
        api_keys: Iterable[str],
        host: str = "127.0.0.1",
        port: int = 0,
        processing_seconds: float = 2.0,
        credits: int = 100_000,
        webhook_secret: str | None = None,
        rate_limit_per_minute: int = 600,
        max_concurrent: int | None = None,
        models: Mapping[str, Any] | None = None,
        validate_inputs: bool = True,
        webhook_retry_base_seconds: float = 1.0,
        webhook_timeout_seconds: float = WEBHOOK_TIMEOUT_SECONDS,
        stall_seconds: float = STALL_SECONDS,
        fault_rates: Mapping[str, float] | None = None,
        seed: int | None = None,
        on_request: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self._keys = frozenset(k for k in api_keys if k)
        if not self._keys:
            raise ValueError("the emulator needs at least one non-empty API key")
        if min(processing_seconds, webhook_retry_base_seconds, stall_seconds) < 0 or rate_limit_per_minute < 1:
            raise ValueError("durations must be non-negative and the rate limit at least 1 per minute")
        self.host, self.port = host, port
        self.processing_seconds = processing_seconds
        self.webhook_secret = webhook_secret or "whsec_" + secrets.token_hex(24)
        self.rate_limit_per_minute = rate_limit_per_minute
        if max_concurrent is not None and max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1 (or None)")
        self.max_concurrent = max_concurrent
        self.validate_inputs = validate_inputs
        self.webhook_retry_base_seconds = webhook_retry_base_seconds
        self.webhook_timeout_seconds = webhook_timeout_seconds
        self.stall_seconds = stall_seconds
        self.fault_rates = {normalise_clipia_token(t): float(r) for t, r in (fault_rates or {}).items()}
        if any(not 0.0 <= r <= 1.0 for r in self.fault_rates.values()):
            raise ValueError("fault rates are probabilities from 0 to 1")
        self.seed: int = seed if seed is not None else secrets.randbits(32)
        self._on_request = on_request
        self._balance = credits
        self._spent = 0
        self._catalog: Any = None
        self._models_data = models

        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._requests: dict[str, _Request] = {}
        self._order: list[str] = []
        self._idem: dict[tuple[str, str], _Key] = {}
        self._windows: dict[str, tuple[float, int]] = {}
        self._fault_counts: dict[tuple[str, str], int] = {}
        self._occurrences: dict[tuple[str, str], int] = {}
        self._submits: list[dict[str, Any]] = []
        self._log: list[dict[str, Any]] = []
        self._ledger: list[dict[str, Any]] = []
        self._webhooks: list[dict[str, Any]] = []
        self._schedule: list[tuple[float, int, str, Any]] = []
        self._sequence = itertools.count()
        self._threads: list[threading.Thread] = []
        self._workers: set[threading.Thread] = set()
        self._server: LoopbackServer[ClipiaEmulator] | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> ClipiaEmulator:
        """Bind and serve in background threads; returns ``self``.

        Raises:
            RuntimeError: already started.
            OSError: the address cannot be bound.
        """
        if self._server is not None:
            raise RuntimeError("emulator already started")
        _ = self.catalog  # load (and check) the models before the first request
        self._stopping.clear()
        server = LoopbackServer((self.host, self.port), _Handler, self)
        self._server, self.port = server, server.port
        scheduler = threading.Thread(target=self._run_scheduler, name="clipia-sandbox-scheduler", daemon=True)
        scheduler.start()
        self._threads = [server.serve_in_thread("clipia-sandbox-http"), scheduler]
        return self

    def stop(self) -> None:
        """Stop serving; abandon pending webhooks and held answers. Idempotent."""
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
            workers = list(self._workers)
        deadline = time.monotonic() + 1.0
        for thread in workers:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> ClipiaEmulator:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"{self.host}:{self.port}" if self.port else "not started"
        return f"<ClipiaEmulator {where} keys={len(self._keys)} processing_seconds={self.processing_seconds}>"

    @property
    def base_url(self) -> str:
        """``http://<host>:<port>`` -- ``MEDIAGEN_CLIPIA_BASE_URL`` / the SDK's ``base_url`` (paths add ``/v1``).

        Raises:
            RuntimeError: not started and no fixed port.
        """
        if not self.port:
            raise RuntimeError("start the emulator first: the port is chosen when it binds")
        return f"http://{self.host}:{self.port}"

    @property
    def catalog(self) -> Any:
        """The :class:`~mediagen.catalog.clipia.ClipiaCatalog` it serves (models, prices, validation)."""
        if self._catalog is None:
            from mediagen.catalog.clipia import ClipiaCatalog, get_clipia_catalog

            self._catalog = ClipiaCatalog(self._models_data) if self._models_data is not None else get_clipia_catalog()
        return self._catalog

    # ------------------------------------------------------------------ introspection (tests)

    @property
    def balance(self) -> int:
        """Credits left on the account."""
        with self._lock:
            return self._balance

    def submit_calls(self) -> list[dict[str, Any]]:
        """One entry per authorised ``POST /v1/models/{slug}``, oldest first: ``{"request_id"`` (None when
        no request was created), ``"model"``, ``"body"``, ``"idempotency_key"``, ``"received_at"``,
        ``"faults"`` (tokens applied), ``"replay"`` (True when an ``Idempotency-Key`` replay answered),
        ``"answered"`` (HTTP status; None while held or when the answer was dropped)``}``."""
        with self._lock:
            return copy.deepcopy(self._submits)

    def accepted_requests(self) -> list[str]:
        """The request ids created, in order (one per generation started, replays excluded)."""
        with self._lock:
            return list(self._order)

    def charges(self, idempotency_key: str) -> int:
        """How many times a request submitted with ``idempotency_key`` was charged (test keys: 0)."""
        with self._lock:
            return sum(1 for e in self._ledger if e["kind"] == "charge" and e["idempotency_key"] == idempotency_key)

    def ledger(self) -> list[dict[str, Any]]:
        """Every credit movement: ``{"request_id", "idempotency_key", "kind": "charge"|"refund", "credits"}``."""
        with self._lock:
            return copy.deepcopy(self._ledger)

    def status_calls(self, request_id: str) -> int:
        """Authorised ``GET /v1/requests/{id}/status`` calls for the request (0 if unknown)."""
        with self._lock:
            found = self._requests.get(request_id)
            return found.status_calls if found else 0

    def result_calls(self, request_id: str) -> int:
        """Authorised ``GET /v1/requests/{id}`` calls for the request (0 if unknown)."""
        with self._lock:
            found = self._requests.get(request_id)
            return found.result_calls if found else 0

    def request_status(self, request_id: str) -> str | None:
        """The request's status now (``IN_QUEUE`` … ``CANCELED``), None if unknown."""
        with self._lock:
            found = self._requests.get(request_id)
            if found is None:
                return None
            self._advance(found)
            return found.status

    def webhooks_sent(self) -> list[dict[str, Any]]:
        """One entry per webhook attempt: ``{"request_id", "kind"`` (completion | duplicate | early)``,
        "url", "attempt", "webhook_id", "timestamp", "signature", "signed_with_secret"`` (False for
        ``webhook-bad-signature``)``, "body"`` (the raw JSON text sent)``, "status_code", "error"}``."""
        with self._lock:
            return copy.deepcopy(self._webhooks)

    def requests(self) -> list[dict[str, Any]]:
        """Every HTTP request: ``{"method", "path", "status"}`` (+ ``"request_id"``), oldest first."""
        with self._lock:
            return copy.deepcopy(self._log)

    # ------------------------------------------------------------------ request handling

    def _record(self, entry: dict[str, Any]) -> None:
        entry["path"] = redact_text(entry["path"], self._keys)
        with self._lock:
            self._log.append(entry)
        if self._on_request is not None:
            self._on_request(dict(entry))

    def _key_of(self, header: str | None) -> str | None:
        scheme, _, key = (header or "").strip().partition(" ")
        key = key.strip()
        if scheme.lower() not in ("key", "bearer") or not key:
            return None
        return next((k for k in self._keys if _same(key, k)), None)

    def _rate(self, api_key: str | None) -> tuple[bool, dict[str, str]]:
        """Count one request against the key's window: ``(allowed, RateLimit-* headers)``."""
        limit = self.rate_limit_per_minute
        now = time.monotonic()
        if api_key is None:
            return True, {"RateLimit-Limit": str(limit), "RateLimit-Remaining": str(limit), "RateLimit-Reset": "60"}
        with self._lock:
            start, used = self._windows.get(api_key, (now, 0))
            if now - start >= 60.0:
                start, used = now, 0
            allowed = used < limit
            used += 1 if allowed else 0
            self._windows[api_key] = (start, used)
        reset = max(1, math.ceil(60.0 - (now - start)))
        headers = {"RateLimit-Limit": str(limit), "RateLimit-Remaining": str(max(0, limit - used)),
                   "RateLimit-Reset": str(reset)}
        if not allowed:
            headers["Retry-After"] = str(reset)
        return allowed, headers

    def _submit(self, slug: str, raw: bytes, api_key: str, idempotency_key: str | None) -> _Answer:
        received = time.time()
        call: dict[str, Any] = {"request_id": None, "model": slug, "body": None, "idempotency_key": idempotency_key,
                                "received_at": _now_iso(received), "faults": [], "replay": False, "answered": None}
        with self._lock:
            self._submits.append(call)
        answer = self._decide(slug, raw, api_key, idempotency_key, call)
        if not call["replay"]:
            call["request_id"] = answer.request_id
        if not (answer.drop or answer.stall):
            self._answered(call, answer.status)
        answer.call = call
        return answer

    def _answered(self, call: dict[str, Any], status: int | None) -> None:
        with self._lock:
            call["answered"] = status

    def _release(self, slot: tuple[str, str] | None) -> None:
        """A held submit answer is over: its ``Idempotency-Key`` now replays instead of 409."""
        if slot is None:
            return
        with self._lock:
            held = self._idem.get(slot)
            if held is not None:
                held.in_progress = False

    def _decide(self, slug: str, raw: bytes, api_key: str, idem: str | None, call: dict[str, Any]) -> _Answer:
        model = self.catalog.resolve(slug)
        if model is None or model.modality is None:
            hints = self.catalog.suggest(slug)
            hint = f"; did you mean {', '.join(hints)}?" if hints else ""
            return _Answer(404, error_body(404, "not_found", f"unknown model '{slug}'{hint}"))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        call["body"] = copy.deepcopy(body)
        if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
            return _Answer(400, error_body(400, "invalid_request", 'the body must be {"input": {...}, "webhook_url"?}'))
        webhook_url = body.get("webhook_url")
        if webhook_url is not None and not (isinstance(webhook_url, str) and webhook_url.startswith(("http://",
                                                                                                    "https://"))):
            return _Answer(400, error_body(400, "invalid_request", "webhook_url must be an http(s) URL"))
        slot = (api_key, idem) if idem else None
        if slot is not None:
            fingerprint = _fingerprint(slug, body)
            with self._lock:
                held = self._idem.get(slot)
                if held is not None and held.expires > time.monotonic():
                    if held.fingerprint != fingerprint:
                        return _Answer(409, error_body(409, "idempotency_key_reuse",
                                                       "this Idempotency-Key was used with other parameters"))
                    if held.in_progress or held.request_id is None:
                        return _Answer(409, error_body(409, "request_in_progress",
                                                       "the first request with this Idempotency-Key is still "
                                                       "being processed; retry later"))
                    found = self._requests[held.request_id]
                    self._advance(found)
                    call["replay"], call["request_id"] = True, found.request_id
                    return _Answer(200, self._submit_body(found), request_id=found.request_id)
                self._idem[slot] = _Key(fingerprint, expires=time.monotonic() + 24 * 3600)
        answer = self._create(slug, model, body, api_key, idem, call)
        if slot is not None:
            with self._lock:
                if answer.request_id is None:
                    self._idem.pop(slot, None)  # nothing was created: the key is free for a retry
                else:
                    self._idem[slot].request_id = answer.request_id
                    if answer.stall:
                        answer.release_key = slot
                    else:
                        self._idem[slot].in_progress = False
        return answer

    def _draw(self, slug: str, text: str) -> tuple[str, ...]:
        if not self.fault_rates:
            return ()
        with self._lock:
            occurrence = self._occurrences.get((slug, text), 0)
            self._occurrences[(slug, text)] = occurrence + 1
        return draw_faults(self.fault_rates, self.seed, f"{slug}\x00{text}\x00{occurrence}")

    def _counted(self, kind: str, text: str, limit: int) -> bool:
        """True while fewer than ``limit`` answers of ``kind`` were given for this prompt text."""
        with self._lock:
            given = self._fault_counts.get((kind, text), 0)
            if given >= limit:
                return False
            self._fault_counts[(kind, text)] = given + 1
            return True

    def _create(self, slug: str, model: Any, body: dict[str, Any], api_key: str, idem: str | None,
                call: dict[str, Any]) -> _Answer:
        input_obj: dict[str, Any] = body["input"]
        text = _prompt_text(input_obj)
        faults = parse_clipia_faults(text, base=self._draw(slug, text))
        call["faults"] = list(faults.tokens)
        if faults.rate_limit and self._counted("429", text, faults.rate_limit):
            return _Answer(429, error_body(429, "rate_limit_exceeded", "Too many requests; retry after a pause"),
                           headers={"Retry-After": "1"})
        if faults.submit_500 and self._counted("500", text, faults.submit_500):
            return _Answer(500, error_body(500, "internal_error", "Internal error; retry with backoff"))
        if faults.insufficient_credits:
            return _Answer(402, error_body(402, "insufficient_credits", "Not enough credits on the balance"))
        problems: list[dict[str, str]] = []
        if faults.input_invalid:
            problems = [{"field": "input", "message": "refused by [sandbox:422]"}]
        elif self.validate_inputs:
            problems = [p.to_dict() for p in self.catalog.validate_input(slug, input_obj, allow_unknown_fields=True)]
        if problems:
            return _Answer(422, error_body(422, "model_input_invalid", "Parameters do not match the model",
                                           details=problems))
        from mediagen.catalog.clipia import price

        cost = price(model.pricing, model.schema, input_obj)
        if cost is None:
            cost = price(model.pricing, model.schema, input_obj, dearest_when_absent=True) or 0
        test_key = api_key.startswith(TEST_KEY_PREFIX)
        with self._wakeup:
            if self.max_concurrent is not None:
                running = [r for r in self._requests.values() if r.api_key == api_key and r.status not in TERMINAL]
                for other in running:
                    self._advance(other)
                if sum(1 for r in running if r.status not in TERMINAL) >= self.max_concurrent:
                    return _Answer(429, error_body(429, "rate_limit_exceeded", f"{self.max_concurrent} concurrent "
                                                   "generations are running for this key; retry when one ends"),
                                   headers={"Retry-After": "1"})
            if not test_key and cost > self._balance:
                return _Answer(402, error_body(402, "insufficient_credits",
                                               f"this request costs {cost} credits; the balance is {self._balance}"))
            now, clock = time.time(), time.monotonic()
            seconds = 0.0 if test_key else (self.processing_seconds if faults.slow_seconds is None
                                            else faults.slow_seconds)
            request = _Request(
                request_id=str(uuid.uuid4()), slug=slug, modality=model.modality, input=copy.deepcopy(input_obj),
                webhook_url=body.get("webhook_url"), api_key=api_key, test_key=test_key, faults=faults, cost=cost,
                charged=0 if test_key else cost, idempotency_key=idem, created_at=now,
                started=clock + seconds * QUEUE_SHARE, due=clock + seconds, status_500_left=faults.status_500,
            )
            self._requests[request.request_id] = request
            self._order.append(request.request_id)
            if request.charged:
                self._balance -= request.charged
                self._spent += request.charged
                self._ledger.append({"request_id": request.request_id, "idempotency_key": idem, "kind": "charge",
                                     "credits": request.charged})
            if test_key:
                self._finish_locked(request)
            else:
                if faults.webhook_early and request.webhook_url and not faults.no_webhook:
                    self._push(clock + seconds / 2, "early", request.request_id)
                self._push(request.due, "finish", request.request_id)
            answer_body = self._submit_body(request)
        warnings = _warnings(model, input_obj)
        if warnings:
            answer_body["warnings"] = warnings
        stall = 0.0
        if faults.submit_timeout:
            stall = self.stall_seconds if faults.submit_timeout_seconds is None else faults.submit_timeout_seconds
        return _Answer(200, answer_body, request_id=request.request_id, drop=faults.submit_drop, stall=stall)

    def _urls(self, request_id: str) -> dict[str, str]:
        base = f"{self.base_url}/v1/requests/{request_id}"
        return {"status_url": f"{base}/status", "response_url": base, "cancel_url": f"{base}/cancel"}

    def _queue_position(self, request: _Request) -> int | None:
        if request.status != "IN_QUEUE":
            return None
        return sum(1 for rid in self._order
                   if rid != request.request_id and self._requests[rid].status == "IN_QUEUE"
                   and self._requests[rid].created_at <= request.created_at)

    def _submit_body(self, request: _Request) -> dict[str, Any]:
        return {"request_id": request.request_id, "status": request.status,
                "queue_position": self._queue_position(request), **self._urls(request.request_id),
                "cost": request.cost}

    def _advance(self, request: _Request) -> None:
        """Bring a request's status up to date (caller holds the lock)."""
        if request.status in TERMINAL:
            return
        clock = time.monotonic()
        if clock >= request.due:
            self._finish_locked(request)
        elif clock >= request.started and request.status == "IN_QUEUE":
            request.status, request.started_at = "IN_PROGRESS", time.time()

    def _progress(self, request: _Request) -> int | None:
        if request.status == "COMPLETED":
            return 100
        if request.status != "IN_PROGRESS":
            return None
        span = request.due - request.started
        return 0 if span <= 0 else max(0, min(99, int(100 * (time.monotonic() - request.started) / span)))

    def _finish_locked(self, request: _Request, *, canceled: bool = False) -> None:
        """End a request (caller holds the lock): COMPLETED, FAILED or CANCELED (refunded); schedule its webhook."""
        if request.status in TERMINAL:
            return
        now = time.time()
        request.started_at = request.started_at or now
        request.completed_at = now
        if canceled or (request.faults.canceled and not request.test_key):
            request.status = "CANCELED"
            request.error = {"code": CANCELED_CODE, "message": "The generation was canceled; credits refunded"}
        elif request.faults.fail and not request.test_key:
            request.status, request.error = "FAILED", {"code": FAILED_CODE, "message": FAIL_MESSAGE}
        else:
            request.status = "COMPLETED"
        if request.status != "COMPLETED" and request.charged:
            self._balance += request.charged
            self._spent -= request.charged
            self._ledger.append({"request_id": request.request_id, "idempotency_key": request.idempotency_key,
                                 "kind": "refund", "credits": request.charged})
        if request.webhook_url and not request.faults.no_webhook:
            first = time.monotonic() + (request.faults.webhook_delay or 0.0)
            for copy_number in range(request.faults.webhook_duplicate or 1):
                kind = "completion" if copy_number == 0 else "duplicate"
                self._push(first, kind, request.request_id)

    def _output(self, request: _Request) -> dict[str, Any]:
        content_type, extension = _MEDIA_FACTS[request.modality]
        files = []
        for index in range(request.outputs):
            media = self._media(request, index)
            files.append({"url": f"{self.base_url}/media/{request.request_id}/{index}.{media.extension}",
                          "content_type": media.content_type, "file_name": f"{request.request_id}-{index}.{extension}",
                          "file_size": media.length})
        if request.modality == "image":
            for entry in files:
                entry.update(width=256, height=256)
            return {"images": files}
        if request.modality == "video":
            return {"video": {**files[0], "width": 320, "height": 180, "duration": 2}}
        return {"audio": files[0]}

    def _media(self, request: _Request, index: int) -> Result:
        media = request.media.get(index)
        if media is None:
            seed = _FIXED_SEED if request.test_key else f"{_prompt_text(request.input) or request.request_id}#{index}"
            media = render_media(request.modality, seed, {"input": request.input}, size=request.faults.size)
            request.media[index] = media
        return media

    def _result_body(self, request: _Request) -> dict[str, Any]:
        body: dict[str, Any] = {"request_id": request.request_id, "status": request.status}
        if request.status not in TERMINAL:
            body["queue_position"] = self._queue_position(request)
            return body
        body.update(model=request.slug, output=self._output(request) if request.status == "COMPLETED" else None,
                    error=request.error, cost=request.cost if request.status == "COMPLETED" else 0,
                    created_at=_now_iso(request.created_at),
                    started_at=_now_iso(request.started_at), completed_at=_now_iso(request.completed_at))
        return body

    def _find(self, request_id: str, api_key: str) -> _Request | None:
        found = self._requests.get(request_id)
        return found if found is not None and _same(found.api_key, api_key) else None

    def _read(self, request_id: str, api_key: str, *, result: bool) -> _Request | _Answer:
        """The request a status or result read names, counted and advanced to now; or the answer that ends the
        read instead (404 unknown to this key, a ``[sandbox:status-500=N]`` 500). Call holding the lock."""
        request = self._find(request_id, api_key)
        if request is None:
            return _Answer(404, error_body(404, "not_found", f"unknown request_id '{request_id}'"))
        if result:
            request.result_calls += 1
        else:
            request.status_calls += 1
        if request.status_500_left > 0:
            request.status_500_left -= 1
            return _Answer(500, error_body(500, "internal_error", "Internal error; retry with backoff"),
                           request_id=request_id)
        self._advance(request)
        return request

    def _status(self, request_id: str, api_key: str) -> _Answer:
        with self._lock:
            request = self._read(request_id, api_key, result=False)
            if isinstance(request, _Answer):
                return request
            return _Answer(200, {"request_id": request_id, "status": request.status,
                                 "queue_position": self._queue_position(request), "progress": self._progress(request),
                                 "logs": []}, request_id=request_id)

    def _result(self, request_id: str, api_key: str) -> _Answer:
        with self._lock:
            request = self._read(request_id, api_key, result=True)
            if isinstance(request, _Answer):
                return request
            status = 200 if request.status in TERMINAL else 202
            return _Answer(status, self._result_body(request), request_id=request_id)

    def _cancel(self, request_id: str, api_key: str) -> _Answer:
        with self._wakeup:
            request = self._find(request_id, api_key)
            if request is None:
                return _Answer(404, error_body(404, "not_found", f"unknown request_id '{request_id}'"))
            self._advance(request)
            if request.status in TERMINAL:
                return _Answer(400, error_body(400, "invalid_request", f"the request is {request.status}; only "
                                               "IN_QUEUE or IN_PROGRESS requests can be canceled"),
                               request_id=request_id)
            self._finish_locked(request, canceled=True)
            self._wakeup.notify_all()
            return _Answer(200, {"request_id": request_id, "status": request.status, "refunded": request.charged},
                           request_id=request_id)

    def _estimate(self, slug: str, raw: bytes) -> _Answer:
        model = self.catalog.resolve(slug)
        if model is None:
            return _Answer(404, error_body(404, "not_found", f"unknown model '{slug}'"))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
            return _Answer(400, error_body(400, "invalid_request", 'the body must be {"input": {...}}'))
        problems = [p.to_dict() for p in self.catalog.validate_input(slug, body["input"], allow_unknown_fields=True)]
        if problems:
            return _Answer(422, error_body(422, "model_input_invalid", "Parameters do not match the model",
                                           details=problems))
        from mediagen.catalog.clipia import price

        credits = price(model.pricing, model.schema, body["input"])
        if credits is None:
            credits = price(model.pricing, model.schema, body["input"], dearest_when_absent=True)
        answer: dict[str, Any] = {"credits": credits}
        warnings = _warnings(model, body["input"])
        if warnings:
            answer["warnings"] = warnings
        return _Answer(200, answer)

    def _account(self) -> _Answer:
        with self._lock:
            return _Answer(200, {"account_id": "acct_sandbox", "balance": {"credits": self._balance},
                                 "usage_30d": {"requests": len(self._order), "credits_spent": self._spent}})

    def _media_file(self, request_id: str, name: str) -> tuple[Result | None, str | None]:
        index_text, _, _ = name.partition(".")
        with self._lock:
            request = self._requests.get(request_id)
            if request is None or not index_text.isdigit():
                return None, None
            self._advance(request)
            if request.status != "COMPLETED" or int(index_text) >= request.outputs:
                return None, None
            return self._media(request, int(index_text)), request_id

    # ------------------------------------------------------------------ completion and webhooks

    def _push(self, due: float, kind: str, item: Any) -> None:
        heapq.heappush(self._schedule, (due, next(self._sequence), kind, item))
        self._wakeup.notify_all()

    def _run_scheduler(self) -> None:
        while not self._stopping.is_set():
            deliveries: list[tuple[str, str]] = []
            with self._wakeup:
                while self._schedule and self._schedule[0][0] <= time.monotonic():
                    _, _, kind, request_id = heapq.heappop(self._schedule)
                    if kind == "finish":
                        self._advance(self._requests[request_id])
                    else:
                        deliveries.append((kind, request_id))
                if not deliveries and not self._stopping.is_set():
                    timeout = self._schedule[0][0] - time.monotonic() if self._schedule else None
                    self._wakeup.wait(timeout)
            for kind, request_id in deliveries:
                self._start_delivery(kind, request_id)

    def _webhook_payload(self, request: _Request, *, early: bool) -> dict[str, Any]:
        """Clipia "webhooks" page: ``OK`` with ``payload {model, output, cost}``, or ``ERROR`` with ``error``."""
        if early or request.status == "COMPLETED":
            return {"request_id": request.request_id, "status": "OK",
                    "payload": {"model": request.slug, "output": self._output(request), "cost": request.cost}}
        return {"request_id": request.request_id, "status": "ERROR", "error": dict(request.error or {})}

    def _start_delivery(self, kind: str, request_id: str) -> None:
        with self._lock:
            request = self._requests[request_id]
            url = request.webhook_url
            payload = self._webhook_payload(request, early=kind == "early")
            bad = request.faults.webhook_bad_signature
            webhook_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{request_id}/{kind == 'early'}"))
        if url is None:
            return
        thread = threading.Thread(target=self._deliver, args=(kind, request_id, url, payload, webhook_id, bad),
                                  name=f"clipia-webhook-{request_id[:8]}", daemon=True)
        with self._lock:
            if self._stopping.is_set():
                return
            self._workers.add(thread)
        thread.start()

    def _deliver(self, kind: str, request_id: str, url: str, payload: dict[str, Any], webhook_id: str,
                 bad_signature: bool) -> None:
        """POST one event: up to ``1 + WEBHOOK_RETRIES`` attempts, each freshly timestamped and signed."""
        raw = json.dumps(payload, separators=(",", ":")).encode()
        secret = ("forged-" + self.webhook_secret) if bad_signature else self.webhook_secret
        try:
            for attempt in range(1, WEBHOOK_RETRIES + 2):
                timestamp = int(time.time())
                signature = sign(secret, timestamp, raw)
                headers = {"Content-Type": "application/json", "User-Agent": "clipia-sandbox-webhooks",
                           "X-Clipia-Webhook-Id": webhook_id, "X-Clipia-Timestamp": str(timestamp),
                           "X-Clipia-Signature": signature}
                status, error = _post(url, raw, headers, self.webhook_timeout_seconds)
                with self._lock:
                    self._webhooks.append({"request_id": request_id, "kind": kind, "url": redact_text(url, self._keys),
                                           "attempt": attempt, "webhook_id": webhook_id, "timestamp": timestamp,
                                           "signature": signature, "signed_with_secret": not bad_signature,
                                           "body": raw.decode(), "status_code": status, "error": error})
                if error is None:
                    return
                if attempt <= WEBHOOK_RETRIES and self._stopping.wait(
                        self.webhook_retry_base_seconds * 2 ** (attempt - 1)):
                    return
        finally:
            with self._lock:
                self._workers.discard(threading.current_thread())


def _post(url: str, raw: bytes, headers: Mapping[str, str], timeout: float) -> tuple[int | None, str | None]:
    """POST ``raw``; ``(status, error)`` with ``error`` None for a 2xx. No proxies, no redirects."""
    import urllib.error
    import urllib.request

    if urlsplit(url).scheme not in ("http", "https"):
        return None, "unsupported webhook_url scheme"

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())
    request = urllib.request.Request(url, data=raw, method="POST", headers=dict(headers))  # noqa: S310 -- http(s) only
    try:
        with opener.open(request, timeout=timeout) as response:
            status = int(response.status)
            response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    return (status, None) if 200 <= status < 300 else (status, f"HTTP {status}")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "clipia-sandbox"
    sys_version = ""
    timeout = 30
    server: LoopbackServer[ClipiaEmulator]

    def setup(self) -> None:
        super().setup()
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 -- stdlib signature
        """Quiet: :func:`serve_clipia` prints its own line per request."""

    def _send(self, status: int | None, body: bytes, headers: Mapping[str, str], request_id: str | None) -> bool:
        # Recorded before the answer goes out: a client that has read it must find it in requests().
        entry: dict[str, Any] = {"method": self.command, "path": self.path, "status": status}
        if request_id:
            entry["request_id"] = request_id
        self.server.owner._record(entry)
        delivered = True
        if status is not None:
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if body and self.command != "HEAD":
                    self.wfile.write(body)
            except OSError:
                self.close_connection, delivered = True, False
        return delivered

    def _json(self, answer: _Answer, extra: Mapping[str, str]) -> bool:
        headers = {"Content-Type": "application/json", **extra, **answer.headers}
        return self._send(answer.status, json.dumps(answer.body).encode(), headers, answer.request_id)

    def _dispatch(self) -> None:
        emulator = self.server.owner
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > _MAX_BODY_BYTES:
            self.close_connection = True
            self._json(_Answer(400, error_body(400, "invalid_request", "body too large")), {})
            return
        raw = self.rfile.read(length) if length else b""
        path = urlsplit(self.path).path.rstrip("/")
        parts = [unquote(p) for p in path.split("/")[1:]]
        if parts[:1] == ["media"] and len(parts) == 3 and self.command in ("GET", "HEAD"):
            self._media(parts[1], parts[2])
            return
        if parts[:1] != ["v1"]:
            self._json(_Answer(404, error_body(404, "not_found", f"no route {path or '/'}")), {})
            return
        api_key = emulator._key_of(self.headers.get("Authorization"))
        allowed, limits = emulator._rate(api_key)
        if api_key is None:
            self._json(_Answer(401, error_body(401, "invalid_api_key", "Key missing, invalid, or revoked")), limits)
            return
        if not allowed:
            self._json(_Answer(429, error_body(429, "rate_limit_exceeded", "Rate limit exceeded")), limits)
            return
        answer = self._route(emulator, parts[1:], raw, api_key)
        if answer is None:
            self._json(_Answer(404, error_body(404, "not_found", f"no route {self.command} {path}")), limits)
            return
        call = answer.call
        if answer.drop:
            self.close_connection = True
            self._send(None, b"", {}, answer.request_id)
            return
        if answer.stall:
            if emulator._stopping.wait(answer.stall):
                self.close_connection = True
                self._send(None, b"", {}, answer.request_id)
                emulator._release(answer.release_key)
                return
            if call is not None:
                emulator._answered(call, answer.status)
        delivered = self._json(answer, limits)
        if answer.stall:
            emulator._release(answer.release_key)
            if call is not None and not delivered:
                emulator._answered(call, None)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def _route(self, emulator: ClipiaEmulator, parts: list[str], raw: bytes, api_key: str) -> _Answer | None:
        method = self.command
        if parts == ["models"] and method == "GET":
            return _Answer(200, {"data": [dict(m.raw) for m in emulator.catalog.models()]})
        if len(parts) == 2 and parts[0] == "models":
            if method == "GET":
                model = emulator.catalog.resolve(parts[1])
                return (_Answer(200, dict(model.raw)) if model is not None
                        else _Answer(404, error_body(404, "not_found", f"unknown model '{parts[1]}'")))
            if method == "POST":
                return emulator._submit(parts[1], raw, api_key, self.headers.get("Idempotency-Key"))
        if len(parts) == 3 and parts[0] == "models" and parts[2] == "estimate" and method == "POST":
            return emulator._estimate(parts[1], raw)
        if parts == ["account"] and method == "GET":
            return emulator._account()
        if len(parts) >= 2 and parts[0] == "requests":
            if len(parts) == 2 and method == "GET":
                return emulator._result(parts[1], api_key)
            if len(parts) == 3 and parts[2] == "status" and method == "GET":
                return emulator._status(parts[1], api_key)
            if len(parts) == 3 and parts[2] == "cancel" and method == "POST":
                return emulator._cancel(parts[1], api_key)
        return None

    def _media(self, request_id: str, name: str) -> None:
        media, found = self.server.owner._media_file(request_id, name)
        if media is None:
            self._json(_Answer(404, error_body(404, "not_found", "no such file")), {})
            return
        self.server.owner._record({"method": self.command, "path": self.path, "status": 200, "request_id": found})
        try:
            self.send_response(200)
            self.send_header("Content-Type", media.content_type)
            self.send_header("Content-Length", str(media.length))
            self.end_headers()
            if self.command != "HEAD":
                for piece in media.chunks():
                    self.wfile.write(piece)
        except OSError:
            self.close_connection = True


def serve_clipia(*, host: str, port: int, processing_seconds: float, api_keys: Iterable[str],
                 webhook_secret: str | None = None, faults: Iterable[str] = (), seed: int | None = None) -> None:
    """Run a Clipia emulator in the foreground until Ctrl-C (``mediagen emulator --provider clipia``).

    Prints the base URL and the webhook signing secret's source, then one line per request. ``faults``
    are ``--fault TOKEN=RATE`` specs (``fail=0.05``, ``status-500:2=0.1``).

    Raises:
        ValueError: no key, or an invalid fault spec.
        OSError: the address cannot be bound.
    """
    rates: dict[str, float] = {}
    for spec in faults:
        token, sep, rate = spec.rpartition("=")
        if not sep or not token:
            raise ValueError(f"fault spec {spec!r}: expected TOKEN=RATE, e.g. fail=0.05")
        rates[token] = float(rate)

    def show(entry: dict[str, Any]) -> None:
        rid = f" request={entry['request_id']}" if entry.get("request_id") else ""
        print(f"{entry['method']} {entry['path']} -> {entry['status']}{rid}", flush=True)

    emulator = ClipiaEmulator(api_keys=list(api_keys), host=host, port=port, processing_seconds=processing_seconds,
                              webhook_secret=webhook_secret, fault_rates=rates, seed=seed, on_request=show)
    with emulator:
        try:
            print(f"Clipia sandbox emulator on {emulator.base_url} (paths under /v1); Ctrl-C stops.", flush=True)
            origin = "given" if webhook_secret else "random (pass --webhook-secret or CLIPIA_WEBHOOK_SECRET to fix it)"
            print(f"webhook signing secret: {origin}", flush=True)
            if emulator.fault_rates:
                print(f"fault rates: {emulator.fault_rates} --fault-seed {emulator.seed}", flush=True)
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopping", flush=True)
