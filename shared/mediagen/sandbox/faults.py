"""Fault tokens: words in a job's prompt that make the sandbox emulator misbehave on purpose.

A token is ``[sandbox:NAME]`` or ``[sandbox:NAME=VALUE]`` anywhere in the prompt/text of a request
(case-insensitive name; several tokens may be combined). Tokens select behaviour for *that job only*,
so one emulator can serve a happy path and a failure path side by side. Unknown names and malformed
values are ignored (and reported in :attr:`Faults.ignored`), never an error: a real prompt that happens
to contain brackets must still work. A token whose table row has a default (:attr:`TokenSpec.default`)
may be written without its value.

The same tokens can also apply to *every* job (:func:`parse_callback_mode`, the emulator's
``callback_mode``) or to a random share of jobs (:func:`parse_fault_rate`, :func:`draw_faults`, the
emulator's ``fault_rates``). ``docs/sandbox.md`` describes each token with the pipeline stage it affects.

=================================  ===========  ==================================================
token                              stage        effect
=================================  ===========  ==================================================
``fail``                           status       the task fails: status answers HTTP 400
                                                ``{"status":"fail","failMsg":FAIL_MESSAGE}``
``slow=SECONDS``                   status       processing time of this job
``generate-500``                   generate     the task is created (and charged) but generate
                                                answers HTTP 500: outcome unknown to the client
``generate-timeout``               generate     the task is created, the answer stalls
                                                (``stall_seconds``, 60 s by default)
``429=N``                          generate     the first N generate requests with this prompt
                                                text answer 429 ``rate_limit_exceeded``
``code400``                        generate     HTTP 200 ``{"code":400,"msg":"This field is
                                                required","data":null}``; no task
``empty-400``                      generate     HTTP 400 with an empty body; no task
``status-500=N``                   status       the first N polls of the task answer HTTP 500
``download-truncate[=N]``          download     full ``Content-Length``, connection closed after
                                                about half the bytes (every download, or the
                                                first N)
``download-404``                   download     404 ``{"msg":"file_not_found"}`` (expired URL)
``size=BYTES``                     download     the file is exactly BYTES long (suffixes ``K``,
                                                ``M``, ``G`` = 10^3.., ``KiB``, ``MiB``, ``GiB``
                                                = 2^10..), streamed, generated on the fly
``zip``                            download     a ``.zip`` of 2-4 files of the job's kind
``no-callback``                    callback     never send the completion callback
``callback-delay=SECONDS``         callback     send it SECONDS after completion
``callback-duplicate=N``           callback     send it N times in total (at once)
``callback-late=SECONDS``          callback     one more copy SECONDS after the first
``callback-early``                 callback     a genuine-URL callback claiming success while the
                                                task is still processing
``callback-forged``                callback     a forged success callback to a wrong URL (last
                                                path segment replaced) before completion
=================================  ===========  ==================================================

Adding a token is one row in :data:`TOKENS` (name -> attribute of :class:`Faults`, value parser,
optional default) plus the field on :class:`Faults` and its behaviour in the server.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

#: ``failMsg`` of a task failed by ``[sandbox:fail]``.
FAIL_MESSAGE = "Sandbox: generation failed as requested ([sandbox:fail])"
#: Upper bound of every SECONDS value (one day); larger values are ignored.
MAX_SLOW_SECONDS = 86_400.0
#: Upper bound of every count value (``429=N``, ``status-500=N``, ``download-truncate=N``).
MAX_COUNT = 1_000_000
#: Upper bound of ``callback-duplicate=N``.
MAX_DUPLICATES = 100
#: Upper bound of ``size=BYTES`` (1 TiB).
MAX_SIZE = 1 << 40
#: ``download_truncate`` of a bare ``[sandbox:download-truncate]``: every download is truncated.
ALWAYS = MAX_COUNT

_TOKEN = re.compile(r"\[sandbox:(?P<name>[A-Za-z0-9_-]+)(?:=(?P<value>[^\]\s]*))?\]", re.IGNORECASE)
_SIZE = re.compile(r"^(?P<number>\d+(?:\.\d+)?)(?P<unit>[KMG](?:i?B)?)?$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "kb": 10**3, "mb": 10**6, "gb": 10**9,
               "kib": 2**10, "mib": 2**20, "gib": 2**30}


@dataclass(frozen=True)
class Faults:
    """The behaviour selected by the fault tokens of one job. The default instance means "behave".

    Attributes:
        fail: end the task in failure (``fail``).
        slow_seconds: processing time in seconds, or ``None`` for the emulator default (``slow``).
        no_callback: never send the completion callback (``no-callback``).
        callback_delay: seconds between completion and the completion callback (``callback-delay``).
        callback_duplicate: how many copies of the completion callback to send, or ``None`` for one
            (``callback-duplicate``).
        callback_late: seconds after the first completion callback at which one more copy is sent
            (``callback-late``).
        callback_early: send a success callback while still processing (``callback-early``).
        callback_forged: send a forged success callback to a wrong URL (``callback-forged``).
        size: exact byte size of the result file, or ``None`` (``size``).
        zip: the result is a zip of several files (``zip``).
        generate_500: create the task but answer generate with HTTP 500 (``generate-500``).
        generate_timeout: create the task but stall the generate answer (``generate-timeout``).
        generate_delay: seconds the generate answer takes, like a slow provider (``generate-delay``).
        rate_limit: how many generate requests with this prompt text answer 429 (``429``).
        code400: generate answers HTTP 200 with an application error ``code`` 400 (``code400``).
        empty_400: generate answers HTTP 400 with an empty body (``empty-400``).
        no_credits: generate answers HTTP 200 with ``insufficient_credits`` and an ``action_url``; no task,
            nothing charged (``no-credits``, "Error Reference" [002:198-208]).
        status_500: how many polls of the task answer HTTP 500 (``status-500``).
        download_truncate: how many downloads are cut short, counting from the first
            (``download-truncate``; :data:`ALWAYS` when written without a value).
        download_404: every download answers 404 ``file_not_found`` (``download-404``).
        tokens: the recognised tokens, normalised (``"fail"``, ``"slow=5"``), in application order.
        ignored: tokens that were not applied (unknown name, missing or malformed value), as written.
    """

    fail: bool = False
    slow_seconds: float | None = None
    no_callback: bool = False
    callback_delay: float | None = None
    callback_duplicate: int | None = None
    callback_late: float | None = None
    callback_early: bool = False
    callback_forged: bool = False
    size: int | None = None
    zip: bool = False
    generate_500: bool = False
    generate_timeout: bool = False
    generate_delay: float = 0.0
    rate_limit: int = 0
    code400: bool = False
    empty_400: bool = False
    no_credits: bool = False
    status_500: int = 0
    download_truncate: int = 0
    download_404: bool = False
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


def _counter(upper: int) -> Callable[[str | None], int]:
    def parse(value: str | None) -> int:
        if value is None or not value.isdigit():
            raise ValueError("needs =N (a whole number)")
        count = int(value)
        if not 1 <= count <= upper:
            raise ValueError("out of range")
        return count

    parse.__doc__ = f"A whole number from 1 to {upper}."
    return parse


def parse_size(value: str | None) -> int:
    """A byte count: digits with an optional suffix ``K``/``M``/``G`` (also ``KB``...: powers of 1000)
    or ``KiB``/``MiB``/``GiB`` (powers of 1024), case-insensitive; a decimal number is allowed with a
    suffix (``1.5M`` = 1 500 000; fractions of a byte are dropped). At most :data:`MAX_SIZE`.

    >>> parse_size("64MiB"), parse_size("2K"), parse_size("1234")
    (67108864, 2000, 1234)

    Raises:
        ValueError: missing or malformed value, or out of range.
    """
    match = _SIZE.match(value or "")
    if match is None:
        raise ValueError("needs =BYTES (e.g. 5000000, 64MiB, 1G)")
    try:
        number = Decimal(match.group("number"))
    except InvalidOperation as exc:  # pragma: no cover -- the regex admits only decimals
        raise ValueError("malformed size") from exc
    unit = (match.group("unit") or "").lower()
    if not unit and number != number.to_integral_value():
        raise ValueError("a fraction of a byte")
    size = int(number * _SIZE_UNITS[unit])
    if not 0 <= size <= MAX_SIZE:
        raise ValueError("out of range")
    return size


def _optional_count(value: str | None) -> int:
    """No value: :data:`ALWAYS`; else a whole number from 1 to :data:`MAX_COUNT`."""
    return ALWAYS if value is None else _counter(MAX_COUNT)(value)


@dataclass(frozen=True)
class TokenSpec:
    """One row of the token table: the :class:`Faults` attribute it sets and how to parse its value.

    ``parse`` receives the text after ``=`` (``None`` when absent) and raises ``ValueError`` when the
    value is malformed. ``default`` is the value used when a value-taking token is written without
    one (``None``: the value is required).
    """

    attribute: str
    parse: Callable[[str | None], Any]
    default: str | None = None


#: The token table: lower-case token name -> what it sets.
TOKENS: dict[str, TokenSpec] = {
    "fail": TokenSpec("fail", _flag),
    "slow": TokenSpec("slow_seconds", _seconds),
    "no-callback": TokenSpec("no_callback", _flag),
    "callback-delay": TokenSpec("callback_delay", _seconds, "5"),
    "callback-duplicate": TokenSpec("callback_duplicate", _counter(MAX_DUPLICATES), "2"),
    "callback-late": TokenSpec("callback_late", _seconds, "5"),
    "callback-early": TokenSpec("callback_early", _flag),
    "callback-forged": TokenSpec("callback_forged", _flag),
    "size": TokenSpec("size", parse_size),
    "zip": TokenSpec("zip", _flag),
    "generate-500": TokenSpec("generate_500", _flag),
    "generate-timeout": TokenSpec("generate_timeout", _flag),
    "generate-delay": TokenSpec("generate_delay", _seconds),
    "429": TokenSpec("rate_limit", _counter(MAX_COUNT), "1"),
    "code400": TokenSpec("code400", _flag),
    "empty-400": TokenSpec("empty_400", _flag),
    "no-credits": TokenSpec("no_credits", _flag),
    "status-500": TokenSpec("status_500", _counter(MAX_COUNT), "1"),
    "download-truncate": TokenSpec("download_truncate", _optional_count),
    "download-404": TokenSpec("download_404", _flag),
}


#: Parses one token (lower-case name, raw value or None): ``({attribute: value, ...}, normalised token)``.
#: Raises ``KeyError`` for an unknown name and ``ValueError`` for a malformed value.
TokenParser = Callable[[str, "str | None"], tuple[dict[str, Any], str]]


def _apply(name: str, raw: str | None) -> tuple[dict[str, Any], str]:
    """The Cliprise emulator's :data:`TokenParser` (:data:`TOKENS`)."""
    spec = TOKENS[name]
    if raw is None and spec.default is not None:
        raw = spec.default
    value = spec.parse(raw)
    return {spec.attribute: value}, name if raw is None else f"{name}={raw}"


def _split(token: str) -> tuple[str, str | None]:
    """``NAME``, ``NAME=VALUE`` or ``NAME:VALUE`` (written without brackets) as (lower-case name, value or None)."""
    name, sep, raw = token.strip().replace(":", "=", 1).partition("=")
    return name.lower(), raw if sep else None


def read_tokens(text: str, base: Iterable[str], parse: TokenParser, *, label: str,
                known: Iterable[str]) -> tuple[dict[str, Any], tuple[str, ...], tuple[str, ...]]:
    """The attribute changes, normalised tokens and ignored ``[sandbox:…]`` tokens of ``base`` (written without
    brackets, applied first) then ``text`` (so the prompt wins). Shared by both emulators' fault parsers.

    Raises:
        ValueError: an invalid ``base`` token (``text`` never raises: its bad tokens are ignored).
    """
    changes: dict[str, Any] = {}
    tokens: list[str] = []
    ignored: list[str] = []
    for token in base:
        try:
            found, normalised = parse(*_split(token))
        except (KeyError, ValueError) as exc:
            raise ValueError(f"invalid {label} token {token!r} (known: {', '.join(sorted(known))})") from exc
        changes.update(found)
        tokens.append(normalised)
    for match in _TOKEN.finditer(text):
        try:
            found, normalised = parse(match.group("name").lower(), match.group("value"))
        except (KeyError, ValueError):
            ignored.append(match.group(0))
            continue
        changes.update(found)
        tokens.append(normalised)
    return changes, tuple(tokens), tuple(ignored)


def normalise_with(spec: str, parse: TokenParser, *, label: str, known: Iterable[str]) -> str:
    """``spec`` (``NAME``, ``NAME=VALUE`` or ``NAME:VALUE``) as its canonical token, by ``parse``.

    Raises:
        ValueError: unknown name, or a missing or malformed value.
    """
    name, raw = _split(spec)
    try:
        return parse(name, raw)[1]
    except KeyError:
        raise ValueError(f"unknown {label} token {name!r} (known: {', '.join(sorted(known))})") from None
    except ValueError as exc:
        raise ValueError(f"{label} token {spec!r}: {exc}") from None


def parse_faults(text: str, base: Iterable[str] = ()) -> Faults:
    """Parse every ``[sandbox:…]`` token in ``text`` (a prompt, or several joined by newlines).

    ``base`` are tokens applied first, written without brackets (``"callback-delay=2"``), e.g. the
    emulator's callback mode and randomly drawn faults; they must be valid (see
    :func:`normalise_token`). Later tokens override earlier ones for the same attribute, so the prompt
    wins. Never raises for ``text``: unknown or malformed tokens end up in :attr:`Faults.ignored`.

    >>> parse_faults("a cat [sandbox:slow=0.5] [sandbox:fail]").fail
    True

    Raises:
        ValueError: an invalid ``base`` token.
    """
    changes, tokens, ignored = read_tokens(text, base, _apply, label="sandbox", known=TOKENS)
    if not (changes or ignored):
        return Faults()
    return dataclasses.replace(Faults(), **changes, tokens=tokens, ignored=ignored)


def normalise_token(spec: str) -> str:
    """A token written without brackets, ``NAME``, ``NAME=VALUE`` or ``NAME:VALUE``, as the canonical
    ``name`` / ``name=value`` (defaults filled in), e.g. ``"Status-500:3"`` -> ``"status-500=3"``,
    ``"429"`` -> ``"429=1"``.

    Raises:
        ValueError: unknown name, or a missing or malformed value.
    """
    return normalise_with(spec, _apply, label="sandbox", known=TOKENS)


def parse_fault_rate(spec: str) -> tuple[str, float]:
    """One ``--fault`` flag: ``TOKEN=RATE`` where TOKEN is ``NAME`` or ``NAME:VALUE`` and RATE a
    probability from 0 to 1, e.g. ``"fail=0.05"``, ``"status-500:2=0.1"``, ``"slow:30=0.2"``.
    Returns ``(normalised token, rate)``: ``("status-500=2", 0.1)``.

    Raises:
        ValueError: no ``=RATE``, a rate outside [0, 1], or an invalid token (see :func:`normalise_token`).
    """
    token, sep, rate_text = spec.rpartition("=")
    if not sep or not token:
        raise ValueError(f"fault spec {spec!r}: expected TOKEN=RATE, e.g. fail=0.05 or status-500:2=0.1")
    try:
        rate = float(rate_text)
    except ValueError:
        raise ValueError(f"fault spec {spec!r}: rate {rate_text!r} is not a number") from None
    if not (math.isfinite(rate) and 0.0 <= rate <= 1.0):
        raise ValueError(f"fault spec {spec!r}: rate must be between 0 and 1")
    return normalise_token(token), rate


def parse_fault_rates(rates: Mapping[str, float] | Iterable[str] | None) -> dict[str, float]:
    """The emulator's ``fault_rates`` normalised: a mapping ``{TOKEN: RATE}`` (TOKEN as in
    :func:`normalise_token`) or an iterable of ``--fault`` specs (:func:`parse_fault_rate`).

    >>> parse_fault_rates({"fail": 0.05, "status-500:2": 0.1})
    {'fail': 0.05, 'status-500=2': 0.1}

    Raises:
        ValueError: an invalid token or rate.
    """
    if rates is None:
        return {}
    if isinstance(rates, Mapping):
        out: dict[str, float] = {}
        for token, rate in rates.items():
            out.update([parse_fault_rate(f"{token}={rate}")])
        return out
    return dict(parse_fault_rate(spec) for spec in rates)


def draw_faults(rates: Mapping[str, float], seed: int, key: str) -> tuple[str, ...]:
    """The tokens of ``rates`` (normalised, see :func:`parse_fault_rates`) that apply to the request
    identified by ``key``, in sorted order.

    Each token is an independent draw: ``sha256(seed, key, token)`` mapped to [0, 1) is compared with
    its rate. The same seed and key always give the same answer, whatever the order in which
    requests arrive.
    """
    drawn = []
    for token in sorted(rates):
        digest = hashlib.sha256(f"{seed}\x00{key}\x00{token}".encode("utf-8", "surrogatepass")).digest()
        if int.from_bytes(digest[:8], "big") / 2**64 < rates[token]:
            drawn.append(token)
    return tuple(drawn)


#: ``callback_mode`` words -> the token they stand for.
CALLBACK_MODES: dict[str, str] = {
    "none": "no-callback",
    "delay": "callback-delay",
    "duplicate": "callback-duplicate",
    "late": "callback-late",
    "early": "callback-early",
    "forged": "callback-forged",
}


def parse_callback_mode(mode: str) -> tuple[str, ...]:
    """The emulator's global ``callback_mode`` as tokens applied to every job.

    ``"normal"`` (no tokens), or a comma-separated combination of ``none``, ``delay:SECONDS``,
    ``duplicate:N``, ``late:SECONDS``, ``early``, ``forged``; e.g. ``"delay:2,duplicate:3"`` ->
    ``("callback-delay=2", "callback-duplicate=3")``.

    Raises:
        ValueError: an unknown word or a malformed value.
    """
    tokens: list[str] = []
    for part in (p.strip() for p in mode.split(",")):
        word, sep, value = part.partition(":")
        if word.lower() == "normal" and not sep:
            continue
        name = CALLBACK_MODES.get(word.lower())
        if name is None:
            raise ValueError(f"callback mode {part!r}: expected normal, {', '.join(CALLBACK_MODES)}")
        tokens.append(normalise_token(f"{name}={value}" if sep else name))
    return tuple(tokens)
