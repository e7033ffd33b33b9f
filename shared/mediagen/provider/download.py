"""Streaming a result file from a provider or its CDN: one shape for every adapter.

:class:`Download` is what ``open_download`` of every provider adapter yields (see
:mod:`mediagen.provider.port`); :class:`DownloadContext` sends the request on ``__enter__`` and closes the
streamed response on ``__exit__``. Failures are the typed :class:`~mediagen.provider.errors.DownloadFailed`
(definitive) and :class:`~mediagen.provider.errors.DownloadUnavailable` (safe to repeat).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType
from urllib.parse import unquote

import httpx

from mediagen.provider.errors import (
    ERROR_BODY_LIMIT,
    DownloadUnavailable,
    error_from_response,
    error_from_transport_error,
)
from mediagen.settings import CLIPRISE_HOST


@dataclass
class Download:
    """A result being streamed from the provider or its CDN. Valid only inside the ``with`` block of the
    adapter's ``open_download``.

    Attributes:
        content_type: the ``Content-Type`` header as sent (e.g. ``"video/mp4"``, ``"application/zip"``
            for grok-imagine, "Status & Download" [002:164-187]), or ``None``.
        content_length: body size in bytes from ``Content-Length``; ``None`` when absent or when the body
            is content-encoded (the bytes yielded are decoded, so the header would not match).
        filename: the file name from ``Content-Disposition`` (``filename*`` preferred), reduced to its
            last path component; ``None`` when absent.
        bytes_read: bytes yielded so far by :meth:`iter_bytes`.
        provider: the provider's display name, used in error messages (``"Cliprise"``, ``"Clipia"``).
    """

    content_type: str | None
    content_length: int | None
    filename: str | None
    _response: httpx.Response = field(repr=False, compare=False)
    bytes_read: int = 0
    provider: str = "Cliprise"

    def iter_bytes(self, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Yield the body in chunks of about ``chunk_size`` bytes, never holding the whole body.

        Raises:
            DownloadUnavailable: the connection failed or timed out mid-stream, or fewer/more bytes
                arrived than ``content_length`` announced (safe to repeat the download).
        """
        try:
            for chunk in self._response.iter_bytes(chunk_size):
                self.bytes_read += len(chunk)
                yield chunk
        except httpx.RequestError as exc:
            raise error_from_transport_error(exc, "download", provider=self.provider) from None
        if self.content_length is not None and self.bytes_read != self.content_length:
            raise DownloadUnavailable(
                f"{self.provider} download incomplete: received {self.bytes_read} of {self.content_length} bytes"
            )


class DownloadContext(contextlib.AbstractContextManager[Download]):
    """Sends the download request on enter (following redirects), closes the streamed response on exit.

    Args:
        client: the ``httpx.Client`` to send with (its default headers go with the request: give CDN
            downloads a client without credentials).
        request: the built GET request.
        host: the Host header named in a wrong-Host hint (Cliprise only).
        provider: the provider's display name for error messages.
    """

    def __init__(self, client: httpx.Client, request: httpx.Request, host: str = CLIPRISE_HOST,
                 provider: str = "Cliprise") -> None:
        self._client = client
        self._request = request
        self._host = host
        self._provider = provider
        self._response: httpx.Response | None = None

    def __enter__(self) -> Download:
        try:
            response = self._client.send(self._request, stream=True, follow_redirects=True)
        except (httpx.RequestError, httpx.TooManyRedirects) as exc:
            raise error_from_transport_error(exc, "download", provider=self._provider) from None
        if not response.is_success:
            try:
                body = read_prefix(response, ERROR_BODY_LIMIT)
            except httpx.RequestError:
                body = b""
            finally:
                response.close()
            raise error_from_response(response, "download", body=body, host=self._host, provider=self._provider)
        self._response = response
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        return Download(
            content_type=response.headers.get("content-type"),
            content_length=int_header(response.headers.get("content-length"))
            if encoding in ("", "identity") else None,
            filename=filename_from_disposition(response.headers.get("content-disposition")),
            _response=response,
            provider=self._provider,
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._response is not None:
            self._response.close()
            self._response = None


def origin(url: httpx.URL) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` of ``url``, the port filled in for http/https: both adapters send their API key
    only to the API's own origin (never to a redirect or a media host)."""
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host.lower(), url.port if url.port is not None else default


def read_prefix(response: httpx.Response, limit: int) -> bytes:
    """At most ``limit`` bytes of a streamed body."""
    buf = bytearray()
    for chunk in response.iter_bytes():
        buf += chunk
        if len(buf) >= limit:
            break
    return bytes(buf[:limit])


def int_header(value: str | None) -> int | None:
    """A non-negative integer header value, else ``None``."""
    if value is None or not value.strip().isdigit():
        return None
    return int(value.strip())


_FILENAME_EXT = re.compile(r"filename\*\s*=\s*([A-Za-z0-9_-]*)'[^']*'([^;]+)", re.IGNORECASE)
_FILENAME = re.compile(r'filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))', re.IGNORECASE)


def filename_from_disposition(disposition: str | None) -> str | None:
    """File name from ``Content-Disposition`` (RFC 6266: ``filename*`` over ``filename``), last path
    component only."""
    if not disposition:
        return None
    name: str | None = None
    ext = _FILENAME_EXT.search(disposition)
    if ext:
        quoted = ext.group(2).strip().strip('"')
        try:
            name = unquote(quoted, encoding=ext.group(1) or "utf-8", errors="replace")
        except LookupError:
            name = unquote(quoted)
    if name is None:
        plain = _FILENAME.search(disposition)
        if plain:
            name = re.sub(r"\\(.)", r"\1", plain.group(1)) if plain.group(1) is not None else plain.group(2)
    if name is None:
        return None
    name = "".join(c for c in name.replace("\\", "/").rsplit("/", 1)[-1] if c.isprintable()).strip()
    return name if name not in ("", ".", "..") else None


__all__ = ["Download", "DownloadContext", "filename_from_disposition", "int_header", "read_prefix"]
