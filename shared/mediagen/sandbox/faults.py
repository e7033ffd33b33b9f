"""Fault tokens: words in a job's prompt that make the sandbox emulator misbehave on purpose.

A token is ``[sandbox:NAME]`` or ``[sandbox:NAME=VALUE]`` anywhere in the prompt/text of a request
(case-insensitive name; several tokens may be combined). Tokens select behaviour for *that job only*,
so one emulator can serve a happy path and a failure path side by side. Unknown names and malformed
values are ignored (and reported in :attr:`Faults.ignored`), never an error: a real prompt that happens
to contain brackets must still work.

Tokens implemented today:

=============================  ===================================================================
token                          effect
=============================  ===================================================================
``[sandbox:fail]``             the task ends in failure: status answers HTTP 400
                               ``{"status":"fail","failMsg":FAIL_MESSAGE}`` (seeds/002 "Status &
                               Download", Failed) and the callback carries the failure payload
                               (seeds/000 "Webhooks", Failure payload).
``[sandbox:slow=SECONDS]``     processing time of this job in seconds (a non-negative number,
                               at most :data:`MAX_SLOW_SECONDS`), instead of the emulator's
                               ``processing_seconds``.
``[sandbox:no-callback]``      never send the callback for this job, even when ``callBackUrl`` is
                               set (seeds/002 "Callback & Polling": delivery is not guaranteed).
=============================  ===================================================================

Adding a token is one row in :data:`TOKENS` (name -> attribute of :class:`Faults` and a value parser)
plus the field on :class:`Faults`.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: ``failMsg`` of a task failed by ``[sandbox:fail]``.
FAIL_MESSAGE = "Sandbox: generation failed as requested ([sandbox:fail])"
#: Upper bound of ``[sandbox:slow=SECONDS]`` (one day); larger values are ignored.
MAX_SLOW_SECONDS = 86_400.0

_TOKEN = re.compile(r"\[sandbox:(?P<name>[A-Za-z0-9_-]+)(?:=(?P<value>[^\]\s]*))?\]", re.IGNORECASE)


@dataclass(frozen=True)
class Faults:
    """The behaviour selected by the fault tokens of one job. The default instance means "behave".

    Attributes:
        fail: end the task in failure (``[sandbox:fail]``).
        slow_seconds: processing time of this job in seconds, or ``None`` for the emulator default
            (``[sandbox:slow=SECONDS]``).
        no_callback: never send the callback (``[sandbox:no-callback]``).
        tokens: the recognised tokens, normalised (``"fail"``, ``"slow=5"``), in prompt order.
        ignored: tokens that were not applied (unknown name, missing or malformed value), as written.
    """

    fail: bool = False
    slow_seconds: float | None = None
    no_callback: bool = False
    tokens: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()


def _flag(value: str | None) -> bool:
    """A token without a value; ``[sandbox:fail=x]`` is malformed."""
    if value is not None:
        raise ValueError("takes no value")
    return True


def _seconds(value: str | None) -> float:
    """A non-negative, finite number of seconds up to :data:`MAX_SLOW_SECONDS`."""
    if value is None:
        raise ValueError("needs =SECONDS")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0 or seconds > MAX_SLOW_SECONDS:
        raise ValueError("out of range")
    return seconds


@dataclass(frozen=True)
class TokenSpec:
    """One row of the token table: the :class:`Faults` attribute it sets and how to parse its value.

    ``parse`` receives the text after ``=`` (``None`` when absent) and raises ``ValueError`` when the
    value is malformed.
    """

    attribute: str
    parse: Callable[[str | None], Any]


#: The token table: lower-case token name -> what it sets.
TOKENS: dict[str, TokenSpec] = {
    "fail": TokenSpec("fail", _flag),
    "slow": TokenSpec("slow_seconds", _seconds),
    "no-callback": TokenSpec("no_callback", _flag),
}


def parse_faults(text: str) -> Faults:
    """Parse every ``[sandbox:…]`` token in ``text`` (a prompt, or several joined by newlines).

    Later tokens override earlier ones for the same attribute. Never raises: unknown or malformed
    tokens end up in :attr:`Faults.ignored`.

    >>> parse_faults("a cat [sandbox:slow=0.5] [sandbox:fail]").fail
    True
    """
    changes: dict[str, Any] = {}
    tokens: list[str] = []
    ignored: list[str] = []
    for match in _TOKEN.finditer(text):
        name = match.group("name").lower()
        raw = match.group("value")
        spec = TOKENS.get(name)
        if spec is None:
            ignored.append(match.group(0))
            continue
        try:
            changes[spec.attribute] = spec.parse(raw)
        except ValueError:
            ignored.append(match.group(0))
            continue
        tokens.append(name if raw is None else f"{name}={raw}")
    if not (changes or ignored):
        return Faults()
    return dataclasses.replace(Faults(), **changes, tokens=tuple(tokens), ignored=tuple(ignored))
