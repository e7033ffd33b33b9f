"""Input media fetching: the emulator downloads a job's input URLs the way the provider does.

The provider fetches every reference image, video or audio URL of an accepted job itself (
"Input Types" [002:45-62]: public http(s) URLs it can download). With ``Emulator(fetch_inputs=True)`` the sandbox
does the same, in the background, before the task can succeed, and records what it got
(:meth:`mediagen.sandbox.Emulator.fetched_inputs`): a URL the provider could not have fetched
(expired presigned URL, private address, wrong content) shows up locally.

This module holds the pieces: :func:`input_urls` (which values of a generate body are input URLs),
:func:`redact_url` (masking of presigned-URL credentials on top of :func:`mediagen.redact.redact_text`),
and :class:`HttpFetcher` (the default fetcher). httpx is imported only when a fetch happens.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from mediagen.redact import REDACTED, redact_text

#: Default fetcher limits: per request timeout (connect, read, write, pool) and the largest body read.
FETCH_TIMEOUT_SECONDS = 10.0
FETCH_MAX_BYTES = 50 * 1024 * 1024
#: How long the default fetcher waits for a host name to resolve, and how long it remembers that a
#: name did not (so that jobs pointing at ``example.com`` on a machine without network fail at once).
RESOLVE_TIMEOUT_SECONDS = 2.0
UNRESOLVABLE_TTL_SECONDS = 60.0
#: At most this many distinct URLs are fetched per task; further ones are recorded as failed.
MAX_INPUT_URLS = 32
#: Root fields of a generate body that are never input media (``callBackUrl`` is where the emulator
#: posts, not something the model reads; ``model`` is the model id).
NOT_INPUTS: frozenset[str] = frozenset({"callBackUrl", "model"})

# Credentials of presigned URLs that mediagen.redact does not know as secrets (it masks X-Amz-Signature,
# X-Amz-Security-Token and Signature already): the access key id of SigV4 / SigV2 URLs, the GCS
# equivalents, Azure SAS signatures.
_EXTRA_SECRET_PARAMS = ("x-amz-credential", "awsaccesskeyid", "x-goog-credential", "x-goog-signature", "sig")
_EXTRA_SECRET = re.compile(
    r"(?P<name>[?&;](?:" + "|".join(re.escape(p) for p in _EXTRA_SECRET_PARAMS) + r"))=(?P<value>[^&#\s\"']*)",
    re.IGNORECASE,
)
# user:password@ in an authority.
_USERINFO = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^/@\s:\"']*):[^/@\s\"']*@", re.IGNORECASE)
_SCHEMES = ("http://", "https://")


def redact_url(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` (a URL, or a message that may quote one) with its secrets masked: what
    :func:`~mediagen.redact.redact_text` masks (``apiKey``, ``X-Amz-Signature``, ``Signature``, ...,
    and ``secrets``), plus ``X-Amz-Credential``, ``AWSAccessKeyId``, ``X-Goog-Credential``,
    ``X-Goog-Signature``, ``sig`` and the password of ``user:password@``."""
    out = redact_text(text, secrets)
    out = _EXTRA_SECRET.sub(lambda m: f"{m.group('name')}={REDACTED}", out)
    return _USERINFO.sub(lambda m: f"{m.group('head')}:{REDACTED}@", out)


def _is_url(value: str) -> bool:
    return value[:8].lower().startswith(_SCHEMES)


def _walk(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")
    elif isinstance(value, str):
        text = value.strip()
        if _is_url(text):
            parts = [part.strip() for part in text.split(",")]
            if len(parts) > 1 and all(_is_url(part) for part in parts):  # "https://a,https://b"
                for index, part in enumerate(parts):
                    yield f"{path}[{index}]", part
            else:
                yield path, text
        elif text[:1] in ("[", "{") and "://" in text:  # documented JSON strings: imageURLList, options
            try:
                decoded = json.loads(text)
            except ValueError:
                return
            if isinstance(decoded, list | dict):
                yield from _walk(decoded, path)


def input_urls(body: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The http(s) URLs among a generate body's input values, as ``(field, url)`` in body order.

    Looks at every string, list item and nested object of the body (``input`` and the root fields of
    root-only models) except ``callBackUrl`` and ``model``. A string is a URL when it starts with
    ``http://`` or ``https://`` (case-insensitive); a string of comma-separated URLs
    (``"https://a,https://b"``) and a JSON-array or JSON-object string (the documented
    ``imageURLList`` / ``videoURLList`` / ``options`` encoding, "Key Concepts" [002:28-43]) give one
    entry per URL. ``field`` is the dotted path with list indexes: ``"input.image"``,
    ``"input.image_urls[1]"``, ``"imageURLList[0]"``, ``"input.kling_elements[0].element_input_urls[0]"``.
    """
    found: list[tuple[str, str]] = []
    for key, value in body.items():
        if key not in NOT_INPUTS:
            found.extend(_walk(value, str(key)))
    return found


class FetchError(Exception):
    """A fetch failed; the message never carries the URL (callers redact anyway)."""


class Fetched(bytes):
    """The bytes the default fetcher got, with the response's ``Content-Type`` (None when absent)."""

    content_type: str | None

    def __new__(cls, data: bytes, content_type: str | None = None) -> Fetched:
        self = super().__new__(cls, data)
        self.content_type = content_type
        return self


class HttpFetcher:
    """The default fetcher: ``GET url`` with httpx, following redirects; returns the body as
    :class:`Fetched` bytes (with ``content_type``). No environment proxies (like the callbacks).

    Args:
        timeout: httpx timeout in seconds (connect, read, write, pool).
        max_bytes: the largest body accepted (checked against ``Content-Length`` and while reading).
        resolve_timeout: a host name must resolve within this many seconds, or the fetch fails at once
            (the system resolver can hang for 10 s and more on a machine without network). A name that
            did not resolve fails immediately for ``UNRESOLVABLE_TTL_SECONDS``; ``.invalid`` names
            (RFC 6761) always do.
        host_headers: ``{"host:port": Host header}`` for URLs of that authority (the emulator passes its
            own address and ``business.api.cliprise.app``, so a job can use another job's ``fileURL``).
        should_stop: polled between body chunks; when it returns True the fetch is abandoned.

    Raises (from ``__call__``):
        FetchError: unresolvable host, non-2xx answer, body too large, stopped, or any transport error.
    """

    def __init__(
        self,
        *,
        timeout: float = FETCH_TIMEOUT_SECONDS,
        max_bytes: int = FETCH_MAX_BYTES,
        resolve_timeout: float = RESOLVE_TIMEOUT_SECONDS,
        host_headers: Mapping[str, str] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.resolve_timeout = resolve_timeout
        self.host_headers = dict(host_headers or {})
        self._should_stop = should_stop or (lambda: False)
        self._unresolvable: dict[str, float] = {}  # host -> monotonic time until which it is known bad
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<HttpFetcher timeout={self.timeout} max_bytes={self.max_bytes}>"

    def __call__(self, url: str) -> bytes:
        import httpx

        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise FetchError("not an http(s) URL with a host")
        self._check_resolvable(parts.hostname)
        headers = {"User-Agent": "mediagen-sandbox"}
        if parts.netloc in self.host_headers:
            headers["Host"] = self.host_headers[parts.netloc]
        try:
            with httpx.Client(follow_redirects=True, timeout=self.timeout, trust_env=False) as client, \
                    client.stream("GET", url, headers=headers) as response:
                if not 200 <= response.status_code < 300:
                    raise FetchError(f"HTTP {response.status_code}")
                declared = response.headers.get("Content-Length")
                if declared and declared.isdigit() and int(declared) > self.max_bytes:
                    raise FetchError(f"body of {int(declared)} bytes exceeds the {self.max_bytes}-byte limit")
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    if self._should_stop():
                        raise FetchError("abandoned: the emulator stopped")
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise FetchError(f"body exceeds the {self.max_bytes}-byte limit")
                    chunks.append(chunk)
                return Fetched(b"".join(chunks), response.headers.get("Content-Type"))
        except httpx.HTTPError as exc:
            # httpx messages may quote the URL: name the error class, keep the text (callers redact it).
            raise FetchError(f"{type(exc).__name__}: {exc}") from None

    def _check_resolvable(self, host: str) -> None:
        """Fail fast for a host name that does not resolve (IP literals are not looked up)."""
        with contextlib.suppress(ValueError):
            ipaddress.ip_address(host.strip("[]"))
            return
        name = host.lower().rstrip(".")
        if name == "invalid" or name.endswith(".invalid"):
            raise FetchError(f"cannot resolve host {host!r}")
        now = time.monotonic()
        with self._lock:
            if self._unresolvable.get(name, 0.0) > now:
                raise FetchError(f"cannot resolve host {host!r} (failed recently)")
        outcome: list[BaseException | None] = []

        def resolve() -> None:
            try:
                socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
                outcome.append(None)
            except (OSError, UnicodeError) as exc:
                outcome.append(exc)

        # getaddrinfo cannot be interrupted: ask in a daemon thread and stop waiting after the timeout.
        resolver = threading.Thread(target=resolve, name="sandbox-resolve", daemon=True)
        resolver.start()
        resolver.join(self.resolve_timeout)
        if outcome and outcome[0] is None:
            return
        reason = "timed out" if not outcome else str(outcome[0])
        with self._lock:
            self._unresolvable[name] = time.monotonic() + UNRESOLVABLE_TTL_SECONDS
        raise FetchError(f"cannot resolve host {host!r}: {reason}")


def digest(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()
