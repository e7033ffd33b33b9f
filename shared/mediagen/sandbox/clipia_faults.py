"""Fault tokens of the Clipia emulator: ``[sandbox:NAME]`` / ``[sandbox:NAME=VALUE]`` in a request's
``input.prompt`` (or ``input.text``), the same convention as the Cliprise sandbox (``docs/sandbox.md``):
case-insensitive names, several tokens combine, unknown names and malformed values are ignored
(listed in :attr:`ClipiaFaults.ignored`), tokens with a default may omit the value.

=================================  ==========  =====================================================
token                              stage       effect
=================================  ==========  =====================================================
``429=N`` (default 1)              submit      the first N submits with this prompt text answer 429
                                               ``rate_limit_exceeded`` (``Retry-After``); no request
``402``                            submit      402 ``insufficient_credits``; no request
``422``                            submit      422 ``model_input_invalid``; no request
``500=N`` (default 1)              submit      the first N submits with this prompt text answer 500
                                               ``internal_error``; no request (safe to retry)
``submit-drop``                    submit      the request is created and charged, then the
                                               connection is closed without an answer
``submit-timeout[=SECONDS]``       submit      the request is created and charged, the answer is
                                               held SECONDS (default: the emulator's
                                               ``stall_seconds``); meanwhile the same
                                               ``Idempotency-Key`` answers 409 ``request_in_progress``
``status-500=N`` (default 1)       status      the first N status/result calls of the request
                                               answer 500 ``internal_error``
``slow=SECONDS``                   processing  processing time of this request
``fail``                           processing  ends ``FAILED`` (``GENERATION_FAILED``), refunded
``canceled``                       processing  ends ``CANCELED`` (as if canceled outside the API),
                                               refunded
``no-webhook``                     webhook     never deliver the webhook
``webhook-delay=SECONDS`` (5)      webhook     deliver SECONDS after completion
``webhook-duplicate=N`` (2)        webhook     deliver the same event N times (same webhook id)
``webhook-early``                  webhook     a correctly signed ``OK`` delivery half-way through
                                               processing, while the request is still running
``webhook-bad-signature``          webhook     every delivery signed with a wrong secret
``size=BYTES``                     media       each output file is exactly BYTES long
=================================  ==========  =====================================================
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mediagen.sandbox.faults import (
    MAX_COUNT,
    MAX_DUPLICATES,
    TokenSpec,
    _counter,
    _flag,
    _seconds,
    normalise_with,
    parse_size,
    read_tokens,
)


def _optional_seconds(value: str | None) -> float | None:
    """No value: ``None`` (the emulator's default); else SECONDS as for ``slow``."""
    return None if value is None else _seconds(value)


@dataclass(frozen=True)
class ClipiaFaults:
    """What the tokens of one request select; the default instance means "behave"."""

    rate_limit: int = 0
    insufficient_credits: bool = False
    input_invalid: bool = False
    submit_500: int = 0
    submit_drop: bool = False
    submit_timeout: bool = False
    submit_timeout_seconds: float | None = None
    status_500: int = 0
    slow_seconds: float | None = None
    fail: bool = False
    canceled: bool = False
    no_webhook: bool = False
    webhook_delay: float | None = None
    webhook_duplicate: int | None = None
    webhook_early: bool = False
    webhook_bad_signature: bool = False
    size: int | None = None
    tokens: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()


def _timeout(value: str | None) -> tuple[bool, float | None]:
    return True, _optional_seconds(value)


#: The token table: lower-case name -> the :class:`ClipiaFaults` attribute and its parser.
TOKENS: dict[str, TokenSpec] = {
    "429": TokenSpec("rate_limit", _counter(MAX_COUNT), "1"),
    "402": TokenSpec("insufficient_credits", _flag),
    "422": TokenSpec("input_invalid", _flag),
    "500": TokenSpec("submit_500", _counter(MAX_COUNT), "1"),
    "submit-drop": TokenSpec("submit_drop", _flag),
    "submit-timeout": TokenSpec("submit_timeout", _timeout),
    "status-500": TokenSpec("status_500", _counter(MAX_COUNT), "1"),
    "slow": TokenSpec("slow_seconds", _seconds),
    "fail": TokenSpec("fail", _flag),
    "canceled": TokenSpec("canceled", _flag),
    "no-webhook": TokenSpec("no_webhook", _flag),
    "webhook-delay": TokenSpec("webhook_delay", _seconds, "5"),
    "webhook-duplicate": TokenSpec("webhook_duplicate", _counter(MAX_DUPLICATES), "2"),
    "webhook-early": TokenSpec("webhook_early", _flag),
    "webhook-bad-signature": TokenSpec("webhook_bad_signature", _flag),
    "size": TokenSpec("size", parse_size),
}


def _apply(name: str, raw: str | None) -> tuple[dict[str, Any], str]:
    spec = TOKENS[name]
    if raw is None and spec.default is not None:
        raw = spec.default
    value = spec.parse(raw)
    if spec.attribute == "submit_timeout":
        changes = {"submit_timeout": True, "submit_timeout_seconds": value[1]}
    else:
        changes = {spec.attribute: value}
    return changes, name if raw is None else f"{name}={raw}"


def parse_clipia_faults(text: str, base: Iterable[str] = ()) -> ClipiaFaults:
    """Every ``[sandbox:…]`` token of ``text``; ``base`` tokens (written without brackets, e.g. from
    ``--fault``) apply first, so the prompt wins. Never raises for ``text``.

    Raises:
        ValueError: an invalid ``base`` token.
    """
    changes, tokens, ignored = read_tokens(text, base, _apply, label="Clipia sandbox", known=TOKENS)
    if not (changes or ignored):
        return ClipiaFaults()
    return dataclasses.replace(ClipiaFaults(), **changes, tokens=tokens, ignored=ignored)


def normalise_clipia_token(spec: str) -> str:
    """``NAME``, ``NAME=VALUE`` or ``NAME:VALUE`` as the canonical token (``"429"`` -> ``"429=1"``).

    Raises:
        ValueError: unknown name or malformed value.
    """
    return normalise_with(spec, _apply, label="Clipia sandbox", known=TOKENS)
