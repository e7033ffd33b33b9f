"""The one safe JSON decoder: every body mediagen reads from outside goes through :func:`decode_json`.

Python's ``json.loads`` alone is not safe on hostile input: nesting a few thousand levels deep raises
``RecursionError`` (not a ``ValueError``, so callers that catch ``ValueError`` crash), ``NaN`` and
``Infinity`` are read as floats that no record or event can hold, a 5,000-digit integer raises past
Python's integer-string limit, and an escaped lone surrogate (``"\\ud800"``) decodes to a string that
cannot be encoded again. :func:`decode_json` checks, in this order and before anything is built:

1. **size**: at most ``max_bytes`` bytes of UTF-8;
2. **encoding**: UTF-8 only (invalid bytes, raw lone surrogates and UTF-16/UTF-32 byte order marks are
   refused; one leading UTF-8 byte order mark is ignored, as RFC 8259 section 8.1 allows);
3. **depth**: counted iteratively over the text, *before* ``json.loads`` runs, so no nesting can reach
   the parser's recursion (``max_depth`` is capped well below Python's recursion limit);
4. **syntax** (``json.loads``), refusing ``NaN``, ``Infinity`` and ``-Infinity`` (not JSON), float
   literals that overflow to infinity and integer literals of more than :data:`MAX_NUMBER_CHARS`
   characters;
5. **values**: strings and keys that are not valid Unicode (escaped lone surrogates), integers of more
   than ``max_digits`` digits and floats outside what a DynamoDB number holds -- each named by its path
   (``metadata.n``, ``request.input.prompt``), at most :data:`MAX_VALUE_PROBLEMS` of them.

Every refusal is one :class:`UnreadableBody` whose message names the limit. For the value checks the
decoded document is attached (``document``), so a caller can still read, e.g., the job id to record the
refusal under.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, NoReturn

from mediagen.errors import MediagenError

#: The deepest nesting a caller may allow. ``json.loads`` recurses once per level; this stays far below
#: Python's default recursion limit (1000) whatever the caller's own stack depth.
MAX_DEPTH_CAP = 200
#: Longest integer literal read at all, in characters (Python refuses to convert more than 4,300 digits).
MAX_NUMBER_CHARS = 400
#: DynamoDB numbers: at most 38 significant digits, magnitude between 1e-130 and 1e126.
DYNAMODB_DIGITS = 38
_FLOAT_MAX = 9.9999999999999999e125
_FLOAT_MIN = 1e-130
#: Largest file a CLI command reads as JSON (a job file, or a JSON Lines manifest of many jobs), in bytes.
MAX_FILE_BYTES = 64 * 1024 * 1024
#: At most this many value problems are collected before the walk stops.
MAX_VALUE_PROBLEMS = 20

_BOMS = ((b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe\x00\x00", "UTF-32"), (b"\xfe\xff", "UTF-16"),
         (b"\xff\xfe", "UTF-16"))
_UTF8_BOM = b"\xef\xbb\xbf"
# A whole string literal (unrolled loop: fast on long strings and many escapes; an unclosed one runs to the end).
# Works on UTF-8 bytes: no byte of a multi-byte character is ASCII, so quotes and brackets are what they seem.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_AS_PARENS = bytes.maketrans(b"[{]}", b"(())")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# The JSON escape of a UTF-16 surrogate: the only way a decoded string can hold a lone one.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class UnreadableBody(MediagenError):
    """A body (JSON text) that mediagen does not read: too big, not UTF-8, nested too deeply, not JSON, or
    holding values no record can keep.

    Attributes:
        what: what was being read (``"body"``, ``"job"``, a file name).
        limit: which check refused it: ``max_bytes``, ``encoding``, ``max_depth``, ``syntax``, ``numbers``
            or ``values``.
        problems: ``[{"field": path, "message": text}]``; ``field`` is ``"body"`` unless one value is to
            blame (then its path, e.g. ``metadata.n``).
        document: the decoded document when only value checks failed (``limit == "values"``), else None.
    """

    code = "unreadable_body"

    def __init__(self, message: str, *, what: str, limit: str, problems: list[dict[str, str]] | None = None,
                 document: Any = None) -> None:
        super().__init__(message)
        self.what = what
        self.limit = limit
        self.problems = problems or [{"field": "body", "message": message}]
        self.document = document


def decode_json(raw: bytes | str, *, max_bytes: int, max_depth: int, what: str = "body",
                max_digits: int = DYNAMODB_DIGITS) -> Any:
    """Decode one JSON document from untrusted text, refusing anything unsafe to hold or store.

    Args:
        raw: the JSON text, as bytes (must be UTF-8) or str (must encode to UTF-8).
        max_bytes: the largest accepted size, in bytes of UTF-8.
        max_depth: the deepest accepted nesting of arrays and objects (``{}`` is 1, ``{"a": [1]}`` is 2);
            at most :data:`MAX_DEPTH_CAP`.
        what: how messages name the input (``"job"`` -> "job is nested 40 levels deep; ...").
        max_digits: the most digits an integer may have (default 38, what a DynamoDB number holds).

    Returns:
        The decoded value (dict, list, str, int, float, bool or None).

    Raises:
        UnreadableBody: one of the checks above failed; the message names the limit.
        ValueError: ``max_depth`` is not between 1 and :data:`MAX_DEPTH_CAP` (a programming error).
    """
    if not 1 <= max_depth <= MAX_DEPTH_CAP:
        raise ValueError(f"max_depth must be between 1 and {MAX_DEPTH_CAP}, got {max_depth}")
    data = _utf8(raw, what=what, max_bytes=max_bytes)
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM):]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        _refuse(f"{what} is not valid UTF-8 (byte {exc.start}: {exc.reason})", what, "encoding")
    _check_depth(data, max_depth, what)
    numbers = _Numbers(max_digits)
    try:
        document = json.loads(text, parse_constant=_refuse_constant, parse_int=numbers.parse_int,
                              parse_float=numbers.parse_float)
    except _NumberRefused as exc:
        _refuse(f"{what} is not usable JSON: {exc}", what, "numbers")
    except RecursionError:  # unreachable after the depth check; kept so no input can ever raise it
        _refuse(f"{what} is nested too deeply; the limit is {max_depth} levels (max_depth)", what, "max_depth")
    except ValueError as exc:
        _refuse(f"{what} is not valid JSON ({exc.__class__.__name__}: {str(exc)[:120]})", what, "syntax")
    # The walk runs only when a value may be unusable (it costs far more than the parse on big documents).
    problems = value_problems(document, max_digits=max_digits) \
        if numbers.suspect or _SURROGATE_ESCAPE.search(text) else []
    if problems:
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:3])
        raise UnreadableBody(f"{what} holds values no record can keep: {summary}", what=what, limit="values",
                             problems=problems, document=document)
    return document


def value_problems(document: Any, *, max_digits: int = DYNAMODB_DIGITS,
                   max_depth: int | None = None) -> list[dict[str, str]]:
    """Values of an already-decoded document that no record or event can hold: strings or keys with
    unpaired surrogates, integers of more than ``max_digits`` digits, floats that are not finite or outside
    a DynamoDB number's range, and (with ``max_depth``) arrays or objects nested deeper than that. Each is
    ``{"field": path, "message": text}`` (``body`` for the root).

    Iterative (no recursion, whatever the nesting); stops after :data:`MAX_VALUE_PROBLEMS` problems.
    """
    problems: list[dict[str, str]] = []
    stack: list[tuple[str, Any, int]] = [("", document, 0)]
    while stack and len(problems) < MAX_VALUE_PROBLEMS:
        path, value, depth = stack.pop()
        where = path or "body"
        if isinstance(value, dict | list | tuple):
            depth += 1
            if max_depth is not None and depth > max_depth:
                problems.append({"field": where, "message": f"nested more than {max_depth} levels deep"})
                continue
        if isinstance(value, str):
            if not _is_unicode(value):
                problems.append({"field": where, "message": "contains an unpaired surrogate (not valid Unicode text)"})
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int):
            digits = len(str(abs(value))) if abs(value) < 10 ** MAX_NUMBER_CHARS else MAX_NUMBER_CHARS + 1
            if digits > max_digits:
                problems.append({"field": where, "message": f"number has more than {max_digits} digits"})
        elif isinstance(value, float):
            if not math.isfinite(value):
                problems.append({"field": where, "message": "must be a finite number"})
            elif value and not _FLOAT_MIN <= abs(value) <= _FLOAT_MAX:
                problems.append({"field": where, "message": "number is outside 1e-130 to 1e126 in magnitude"})
        elif isinstance(value, dict):
            for key, item in reversed(value.items()):
                if not _is_unicode(str(key)):
                    problems.append({"field": where, "message": "has a key with an unpaired surrogate"})
                    continue
                stack.append((f"{path}.{key}" if path else str(key), item, depth))
        elif isinstance(value, list | tuple):
            stack.extend((f"{where}[{i}]", item, depth) for i, item in reversed(list(enumerate(value))))
    return problems


def _utf8(raw: bytes | str, *, what: str, max_bytes: int) -> bytes:
    if isinstance(raw, str):
        if len(raw) > max_bytes:  # every character is at least one byte: too big without encoding it
            _refuse(f"{what} is at least {len(raw)} bytes; the limit is {max_bytes} bytes (max_bytes)", what,
                    "max_bytes")
        try:
            data = raw.encode("utf-8")
        except UnicodeEncodeError as exc:
            _refuse(f"{what} is not valid Unicode text (an unpaired surrogate at character {exc.start})", what,
                    "encoding")
    elif isinstance(raw, bytes | bytearray | memoryview):
        data = bytes(raw)
    else:
        raise TypeError(f"decode_json reads bytes or str, not {type(raw).__name__}")
    if len(data) > max_bytes:
        _refuse(f"{what} is {len(data)} bytes; the limit is {max_bytes} bytes (max_bytes)", what, "max_bytes")
    for bom, name in _BOMS:
        if data.startswith(bom):
            _refuse(f"{what} is {name} (byte order mark); send UTF-8 JSON", what, "encoding")
    return data


def _check_depth(data: bytes, max_depth: int, what: str) -> None:
    """Refuse ``data`` (UTF-8 JSON text) when its brackets (outside string literals) nest deeper than ``max_depth``.

    No recursion and no per-character Python loop: string literals are cut out (by the regex engine) and
    everything but brackets dropped (``bytes.translate``), then each pass of ``bytes.replace`` removes the
    innermost level of matched pairs -- a document ``D`` levels deep needs ``D`` passes, so at most
    ``max_depth + 1`` passes run. Brackets left unmatched (a truncated or broken document) count as open
    levels too, so ``"[" * 100_000`` is refused here rather than handed to the parser.
    """
    brackets = _STRING.sub(b"", data).translate(_AS_PARENS, _NOT_BRACKETS)
    passes = 0
    while b"()" in brackets:
        passes += 1
        if passes > max_depth:
            break
        brackets = brackets.replace(b"()", b"")
    if passes + brackets.count(b"(") > max_depth:
        _refuse(f"{what} is nested more than {max_depth} levels deep; the limit is {max_depth} levels "
                f"(max_depth)", what, "max_depth")


class _NumberRefused(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NumberRefused(f"{name} is not a JSON number")


class _Numbers:
    """``json.loads`` hooks for number literals: refuse what cannot be converted sensibly, and note whether
    any literal may be unusable (so the value walk is needed)."""

    def __init__(self, max_digits: int) -> None:
        self.max_digits = max_digits
        self.suspect = False

    def parse_int(self, literal: str) -> int:
        if len(literal) > MAX_NUMBER_CHARS:
            raise _NumberRefused(f"an integer of {len(literal)} characters (the limit is {MAX_NUMBER_CHARS})")
        if len(literal) > self.max_digits:
            self.suspect = True
        return int(literal)

    def parse_float(self, literal: str) -> float:
        if len(literal) > MAX_NUMBER_CHARS:
            raise _NumberRefused(f"a number of {len(literal)} characters (the limit is {MAX_NUMBER_CHARS})")
        value = float(literal)
        if not math.isfinite(value):
            raise _NumberRefused(f"{literal[:40]} overflows to infinity")
        if value and not _FLOAT_MIN <= abs(value) <= _FLOAT_MAX:
            self.suspect = True
        return value


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _refuse(message: str, what: str, limit: str) -> NoReturn:
    raise UnreadableBody(message, what=what, limit=limit)


def refuse_http_body(event: dict[str, Any], *, max_bytes: int, max_depth: int,
                     what: str = "body") -> UnreadableBody | None:
    """Check the body of an API Gateway proxy event (HTTP API v2 or REST v1) with :func:`decode_json`
    *before* anything else parses it (Powertools' validation calls ``json.loads`` itself, which a deeply
    nested body turns into a ``RecursionError``).

    Returns:
        None when there is no body, or it decodes (a body whose only fault is a value no record keeps also
        passes: the job's own check names that value); else the :class:`UnreadableBody` to answer 400 with.
    """
    import base64
    import binascii

    body = event.get("body")
    if not body:
        return None
    raw: bytes | str = body
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return UnreadableBody(f"{what} is not valid base64", what=what, limit="encoding")
    try:
        decode_json(raw, max_bytes=max_bytes, max_depth=max_depth, what=what)
    except UnreadableBody as exc:
        return None if exc.limit == "values" else exc
    return None
