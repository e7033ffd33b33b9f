"""Verifying and parsing Clipia's signed webhook deliveries.

Provider facts ([004:92-94], [004:163-173]; Clipia webhooks page):

- each delivery is a ``POST`` of JSON signed with HMAC-SHA256 in ``X-Clipia-Signature: t=<unix>,v1=<hex>``;
  the signed string is ``"{t}.{raw_body}"`` and the key is the account's webhook signing secret;
- the signature must be checked over the raw body, before JSON parsing, with a constant-time comparison;
  deliveries older than 5 minutes are refused (replay);
- deliveries are retried (up to 6 times) and may repeat: handle them idempotently by ``request_id``;
- payload ``{"request_id", "status": "OK", "payload": {"model", "output", "cost"}}`` or
  ``{"request_id", "status": "ERROR", "error": {"code", "message"}}``.

The SDK's ``clipia.verify_signature`` answers only ``True``/``False`` for one secret; here the caller needs
to know *why* a delivery was refused (malformed header, bad signature, stale or future timestamp) and to
accept any of several secrets while one is being rotated, so the check is written out below. The unsigned
``X-Clipia-Timestamp`` header is never trusted: the timestamp is the signed ``t=``.

No error message carries a secret, the expected signature or the received one.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from mediagen.errors import ConfigurationError, MediagenError
from mediagen.provider.errors import NOT_JSON, decode_json
from mediagen.provider.port import Failed, Succeeded, WebhookEvent
from mediagen.redact import redact_text

SIGNATURE_HEADER = "X-Clipia-Signature"
WEBHOOK_ID_HEADER = "X-Clipia-Webhook-Id"
#: The provider's freshness window, seconds, either side of now ([004:163-173]: "5-minute window").
DEFAULT_TOLERANCE_SECONDS = 300
#: Largest body accepted for parsing (a delivery carries URLs, not media).
MAX_BODY_BYTES = 256 * 1024

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


class WebhookVerificationError(MediagenError):
    """A webhook delivery was refused; answer it with HTTP 401/400 and do not act on it."""

    code = "webhook_invalid"


class MalformedSignatureHeader(WebhookVerificationError):
    """``X-Clipia-Signature`` is missing or not ``t=<unix seconds>,v1=<64 hex digits>``."""

    code = "webhook_signature_malformed"


class SignatureMismatch(WebhookVerificationError):
    """No configured secret produces the delivered signature over ``"{t}.{raw_body}"``."""

    code = "webhook_signature_mismatch"


class TimestampOutOfTolerance(WebhookVerificationError):
    """The signed timestamp is further than the tolerance from now (a replay, or a skewed clock).

    Attributes:
        skew_seconds: now minus the signed timestamp: positive = stale, negative = from the future.
    """

    code = "webhook_timestamp_out_of_tolerance"

    def __init__(self, message: str, *, skew_seconds: float) -> None:
        super().__init__(message)
        self.skew_seconds = skew_seconds


class MalformedPayload(WebhookVerificationError):
    """The body (correctly signed) is not the documented payload shape."""

    code = "webhook_payload_malformed"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if str(key).lower() == wanted:
            return str(value)
    return None


def parse_signature_header(value: str | None) -> tuple[int, list[str]]:
    """``"t=1717243200,v1=<hex>[,v1=<hex>...]"`` -> ``(1717243200, ["<hex>", ...])``.

    Unknown fields are ignored (the provider may add schemes); several ``v1`` are all kept.

    Raises:
        MalformedSignatureHeader: missing header, no/duplicate/non-integer ``t``, no ``v1`` of 64 hex digits.
    """
    if value is None or not value.strip():
        raise MalformedSignatureHeader(f"missing {SIGNATURE_HEADER} header")
    timestamps: list[str] = []
    signatures: list[str] = []
    for part in value.split(","):
        key, sep, val = part.strip().partition("=")
        if not sep:
            continue
        key, val = key.strip(), val.strip()
        if key == "t":
            timestamps.append(val)
        elif key == "v1":
            signatures.append(val)
    if len(timestamps) != 1 or not timestamps[0].isdigit() or len(timestamps[0]) > 12:
        raise MalformedSignatureHeader(f"{SIGNATURE_HEADER} must carry exactly one t=<unix seconds>")
    valid = [s.lower() for s in signatures if _HEX64.fullmatch(s)]
    if not valid:
        raise MalformedSignatureHeader(f"{SIGNATURE_HEADER} must carry v1=<64 hex digits of HMAC-SHA256>")
    return int(timestamps[0]), valid


def signature(secret: str, timestamp: int, raw_body: bytes) -> str:
    """The ``v1`` value: hex HMAC-SHA256 of ``b"{timestamp}." + raw_body`` keyed with ``secret`` (UTF-8)."""
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + raw_body, hashlib.sha256).hexdigest()


def verify_signature(
    headers: Mapping[str, str],
    raw_body: bytes,
    secrets: Sequence[str],
    *,
    now: float | None = None,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
) -> int:
    """Check a delivery's signature; return the signed timestamp (unix seconds).

    Args:
        headers: the request headers (names compared case-insensitively).
        raw_body: the body bytes exactly as received (before any JSON parsing).
        secrets: the webhook signing secrets to accept -- during a rotation, the new and the old one.
        now: unix seconds (default ``time.time()``).
        tolerance_seconds: accepted distance between the signed timestamp and now, both directions.

    Raises:
        ConfigurationError: no secret configured.
        MalformedSignatureHeader, TimestampOutOfTolerance, SignatureMismatch: see the classes.
    """
    usable = [s for s in secrets if s]
    if not usable:
        raise ConfigurationError("no Clipia webhook signing secret is configured")
    timestamp, provided = parse_signature_header(_header(headers, SIGNATURE_HEADER))
    current = time.time() if now is None else now
    skew = current - timestamp
    if not math.isfinite(skew) or abs(skew) > tolerance_seconds:
        direction = "old" if skew > 0 else "in the future"
        raise TimestampOutOfTolerance(
            f"webhook timestamp is {abs(skew):.0f} s {direction} (tolerance {tolerance_seconds:g} s)",
            skew_seconds=skew)
    matched = False
    for secret in usable:  # every pair is compared, in constant time each
        expected = signature(secret, timestamp, raw_body)
        for candidate in provided:
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureMismatch("webhook signature does not match any configured signing secret")
    return timestamp


def parse_delivery(raw_body: bytes, *, delivery_id: str | None = None) -> WebhookEvent:
    """Parse a (verified) delivery body into a :class:`~mediagen.provider.port.WebhookEvent`.

    ``status: "OK"`` -> :class:`~mediagen.provider.port.Succeeded` with ``payload.output`` as outputs and
    ``payload.cost``; ``status: "ERROR"`` -> :class:`~mediagen.provider.port.Failed` with ``error.code`` /
    ``error.message`` (``refunded=True``: a failed generation is refunded, Clipia overview page).

    Raises:
        MalformedPayload: not a JSON object of that shape, or larger than :data:`MAX_BODY_BYTES`.
    """
    from mediagen.provider.clipia import outputs_from

    if len(raw_body) > MAX_BODY_BYTES:
        raise MalformedPayload(f"webhook body is larger than {MAX_BODY_BYTES} bytes")
    doc = decode_json(raw_body)
    if doc is NOT_JSON or not isinstance(doc, dict):
        raise MalformedPayload("webhook body is not a JSON object")
    request_id = doc.get("request_id")
    if not isinstance(request_id, str) or not request_id.strip():
        raise MalformedPayload("webhook body has no request_id")
    status = doc.get("status")
    if status == "OK":
        payload = doc.get("payload")
        if not isinstance(payload, dict):
            raise MalformedPayload("webhook status OK without a payload object")
        output = payload.get("output")
        if output is not None and not isinstance(output, dict):
            raise MalformedPayload("webhook payload.output is not an object")
        cost = _int_or_none(payload.get("cost"))
        return WebhookEvent(provider_task_id=request_id.strip(), state=Succeeded(cost=cost),
                            outputs=tuple(outputs_from(output or {})), cost=cost, delivery_id=delivery_id)
    if status == "ERROR":
        error = doc.get("error")
        error = error if isinstance(error, dict) else {}
        code = error.get("code") if isinstance(error.get("code"), str) else None
        message = error.get("message") if isinstance(error.get("message"), str) else None
        return WebhookEvent(
            provider_task_id=request_id.strip(),
            state=Failed(message=redact_text((message or "the provider reported an error")[:1000]),
                         code=redact_text(code) if code else None, refunded=True),
            delivery_id=delivery_id)
    raise MalformedPayload(f"webhook status must be one of 'OK', 'ERROR', got {str(status)[:40]!r}")


def verify_delivery(
    headers: Mapping[str, str],
    raw_body: bytes,
    secrets: Sequence[str],
    *,
    now: float | None = None,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
) -> WebhookEvent:
    """:func:`verify_signature`, then :func:`parse_delivery` (with ``X-Clipia-Webhook-Id`` as
    ``delivery_id``). Raises what those raise."""
    verify_signature(headers, raw_body, secrets, now=now, tolerance_seconds=tolerance_seconds)
    delivery_id = _header(headers, WEBHOOK_ID_HEADER)
    return parse_delivery(raw_body, delivery_id=delivery_id.strip()[:200] if delivery_id else None)


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


__all__ = [
    "DEFAULT_TOLERANCE_SECONDS",
    "MAX_BODY_BYTES",
    "SIGNATURE_HEADER",
    "WEBHOOK_ID_HEADER",
    "MalformedPayload",
    "MalformedSignatureHeader",
    "SignatureMismatch",
    "TimestampOutOfTolerance",
    "WebhookVerificationError",
    "parse_delivery",
    "parse_signature_header",
    "signature",
    "verify_delivery",
    "verify_signature",
]
