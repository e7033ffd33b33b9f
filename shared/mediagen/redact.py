"""Secret hygiene: redact secrets by their VALUE wherever they appear -- in URLs, text and nested structures.

The Cliprise status endpoint carries the API key in its query string
(``GET /app/cliprise/status?apiKey=KEY&taskId=ID``; [002:164-174]), and the ``fileURL``
it returns points at that same endpoint. Any URL may therefore carry the key: every URL, message and
payload that reaches a log, a trace, a job record or an event goes through :func:`redact` first.

What is a secret is decided by the value, never by the name of the field holding it (an output's S3
``key``, a ``token_count``, a ``password_hint`` stay as they are):

- the secret values registered with :func:`register_secret` (the API key read from Secrets Manager) and
  those passed as ``secrets``;
- values of secret query parameters (``apiKey=``, ``token=``, ...) and the credentials of presigned URLs
  (``X-Amz-Signature``, ``X-Amz-Credential``, ``X-Amz-Security-Token``, ``Signature``, ``AWSAccessKeyId``,
  the ``X-Goog-`` equivalents, Azure's ``sig``); the URL itself stays, so it can still be told apart;
- ``Credential=`` / ``Signature=`` of a SigV4 ``Authorization`` header and ``Bearer`` tokens;
- the secret path segment of a callback URL (``/callbacks/<token>``);
- the password of ``user:password@`` in a URL.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

REDACTED = "***"

#: Query parameters whose values are secrets, compared case-insensitively.
SECRET_PARAMS: frozenset[str] = frozenset(
    {"apikey", "api_key", "key", "token", "access_token", "x-amz-signature", "x-amz-security-token",
     "x-amz-credential", "awsaccesskeyid", "signature", "x-goog-signature", "x-goog-credential", "sig",
     "authorization", "password", "secret", "client_secret"}
)

_QUERY_SECRET = re.compile(
    r"(?P<name>[?&;](?:" + "|".join(re.escape(p) for p in sorted(SECRET_PARAMS)) + r"))=(?P<value>[^&#\s\"']*)",
    re.IGNORECASE,
)
# The two secret parts of a SigV4 Authorization header (``AWS4-HMAC-SHA256 Credential=..., Signature=...``).
_SIGV4_HEADER = re.compile(r"(?P<name>\b(?:Credential|Signature))=(?P<value>[^,\s&\"']+)")
_BEARER = re.compile(r"(?P<scheme>Bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
# A callback URL's last segment is its secret (``<base64 job id>.<token>``; mediagen.completion).
_CALLBACK = re.compile(r"(?P<path>/callbacks/)[A-Za-z0-9_=-]+\.[A-Za-z0-9_-]{16,}")
# user:password@ in an authority.
_USERINFO = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^/@\s:\"']*):[^/@\s\"']*@", re.IGNORECASE)

_known_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret value (e.g. the API key read from Secrets Manager) so that
    :func:`redact` removes it wherever it appears, not only in the places a pattern finds it.

    Values shorter than 6 characters are ignored (they would redact ordinary words).
    """
    if value and len(value) >= 6:
        _known_secrets.add(value)


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Return ``text`` with every secret listed in the module docstring replaced by ``***`` (the names
    around it -- ``apiKey=``, ``Bearer``, ``/callbacks/`` -- stay, so a reader sees what was removed)."""
    out = _QUERY_SECRET.sub(lambda m: f"{m.group('name')}={REDACTED}", text)
    out = _SIGV4_HEADER.sub(lambda m: f"{m.group('name')}={REDACTED}", out)
    out = _BEARER.sub(lambda m: f"{m.group('scheme')}{REDACTED}", out)
    out = _CALLBACK.sub(lambda m: f"{m.group('path')}{REDACTED}", out)
    out = _USERINFO.sub(lambda m: f"{m.group('head')}:{REDACTED}@", out)
    for secret in (*_known_secrets, *secrets):
        if secret and secret in out:
            out = out.replace(secret, REDACTED)
    return out


def redact(value: Any, secrets: Iterable[str] = ()) -> Any:
    """Deep-redact every string inside dicts, lists and tuples (dict keys included) with
    :func:`redact_text`; other values are returned unchanged.

    Redaction is by value: a field is never blanked for its name, so ``{"key": "jobs/j-1/output.png"}``
    keeps its S3 key and a presigned URL keeps its host and path while losing its signature.
    """
    secrets = tuple(secrets)
    if isinstance(value, str):
        return redact_text(value, secrets)
    if isinstance(value, dict):
        return {(redact_text(k, secrets) if isinstance(k, str) else k): redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact(v, secrets) for v in value)
    return value


class RedactingFilter(logging.Filter):
    """A ``logging.Filter`` that redacts every record's message and arguments.

    Installed on the Powertools logger by :func:`mediagen.observability.get_logger` and on the
    root logger by the CLI, so that even third-party log lines (httpx logs request URLs at INFO)
    cannot carry the API key.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, dict | list) and not record.args:  # Powertools structured messages
            record.msg = redact(record.msg)
            return True
        # Format first: arguments may be objects (httpx passes ``httpx.URL``) whose text carries the key.
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        record.msg = redact_text(message)
        record.args = None
        for key, val in list(record.__dict__.items()):
            if key not in _STANDARD_ATTRS and isinstance(val, str | dict | list | tuple):
                record.__dict__[key] = redact(val)
        return True


_STANDARD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
