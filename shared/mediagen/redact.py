"""Secret hygiene: redact API keys from URLs, text and nested structures.

The Cliprise status endpoint carries the API key in its query string
(``GET /app/cliprise/status?apiKey=KEY&taskId=ID``; seeds/002 "Status & Download"), and the ``fileURL``
it returns points at that same endpoint. Any URL may therefore carry the key: every URL, message and
payload that reaches a log, a trace, a job record or an event goes through :func:`redact` first.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

REDACTED = "***"

# Query parameters (and JSON-ish keys) whose values are secrets, compared case-insensitively.
SECRET_PARAMS: frozenset[str] = frozenset(
    {"apikey", "api_key", "key", "token", "access_token", "x-amz-signature", "x-amz-security-token",
     "signature", "authorization", "password", "secret"}
)

_QUERY_SECRET = re.compile(
    r"(?P<name>[?&;](?:" + "|".join(re.escape(p) for p in sorted(SECRET_PARAMS)) + r"))=(?P<value>[^&#\s\"']*)",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?P<scheme>Bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)

_known_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret value (e.g. the API key read from Secrets Manager) so that
    :func:`redact` removes it wherever it appears, not only in the places a pattern finds it.

    Values shorter than 6 characters are ignored (they would redact ordinary words).
    """
    if value and len(value) >= 6:
        _known_secrets.add(value)


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Return ``text`` with secret query parameters, Bearer tokens and known secret values replaced
    by ``***``."""
    out = _QUERY_SECRET.sub(lambda m: f"{m.group('name')}={REDACTED}", text)
    out = _BEARER.sub(lambda m: f"{m.group('scheme')}{REDACTED}", out)
    for secret in (*_known_secrets, *secrets):
        if secret and secret in out:
            out = out.replace(secret, REDACTED)
    return out


def redact(value: Any, secrets: Iterable[str] = ()) -> Any:
    """Deep-redact strings inside dicts, lists and tuples; other values are returned unchanged.

    Dict values under a key named like a secret (``apiKey``, ``Authorization``, ...) are replaced
    whole.
    """
    secrets = tuple(secrets)
    if isinstance(value, str):
        return redact_text(value, secrets)
    if isinstance(value, dict):
        return {
            k: (REDACTED if isinstance(k, str) and k.lower() in SECRET_PARAMS and v else redact(v, secrets))
            for k, v in value.items()
        }
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
