"""Spend counters: in-flight slots and the daily credit budget, per provider, changed in the same
transaction as the job's status (see docs/reliability.md, invariants I1 and I2).

Counters are items of the job table under reserved keys that no job id can take (job ids never contain
``#``), each holding ``n``:

- ``#in-flight:<provider>`` -- jobs holding a slot at that provider (a slot is taken by the claim
  RECEIVED -> SUBMITTING and given back by the transition that ends the job or returns it to RECEIVED).
- ``#budget:<provider>:<YYYY-MM-DD>`` -- credits charged that UTC day at that provider (credits of
  different providers are not comparable, so each has its own counter).

Counters are always kept, limits or not (so they can be watched); a limit applies only when set. A
:class:`CounterChange` travels with a status change (:meth:`mediagen.records.JobRepository.transition`,
``counters=``): both commit, or neither. The provider's own concurrent-job limit answers 429
([000:132-139]: "Plan limits control requests/min, concurrent jobs, and queue depth. Exceeded -> 429");
holding jobs in the queue instead avoids collecting those 429s.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from mediagen.errors import MediagenError

BUDGET_KEY_PREFIX = "#budget:"
IN_FLIGHT_KEY = "#in-flight"


class CounterLimitReached(MediagenError):
    """A counter change would pass its limit; nothing of the transaction was written.

    Attributes:
        key: the counter's reserved key (``#in-flight:<provider>`` or ``#budget:<provider>:<day>``).
    """

    code = "counter_limit"

    def __init__(self, key: str, message: str | None = None) -> None:
        super().__init__(message or f"counter {key} is at its limit")
        self.key = key


@dataclass(frozen=True)
class CounterChange:
    """Add ``amount`` to the counter ``key``; with ``limit``, only if the result stays <= ``limit``."""

    key: str
    amount: int
    limit: int | None = None


def today() -> str:
    """The current UTC day, ``YYYY-MM-DD``."""
    return datetime.now(UTC).strftime("%Y-%m-%d")


def in_flight_key(provider: str) -> str:
    """``#in-flight:<provider>``."""
    return f"{IN_FLIGHT_KEY}:{provider}"


def budget_key(provider: str, day: str) -> str:
    """``#budget:<provider>:<day>``."""
    return f"{BUDGET_KEY_PREFIX}{provider}:{day}"


def take_slot(provider: str, limit: int) -> CounterChange:
    """One more job in flight at ``provider`` (``limit`` 0 = unlimited)."""
    return CounterChange(in_flight_key(provider), 1, limit or None)


def release_slot(provider: str) -> CounterChange:
    return CounterChange(in_flight_key(provider), -1)


def charge(provider: str, day: str, credits: int, limit: int) -> CounterChange:
    """Charge ``credits`` to ``provider``'s budget of ``day`` (``limit`` 0 = unlimited)."""
    return CounterChange(budget_key(provider, day), credits, limit or None)


def refund(provider: str, day: str, credits: int) -> CounterChange:
    return CounterChange(budget_key(provider, day), -credits)
