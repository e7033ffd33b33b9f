"""Generate the bad-input corpus: ``events/bad-inputs/corpus.jsonl`` (issue 5, item 7).

    .venv/bin/python scripts/make_bad_inputs.py            # writes events/bad-inputs/corpus.jsonl
    .venv/bin/python scripts/make_bad_inputs.py --check    # fails when the committed file differs

Every line is one SQS message body mediagen must refuse, with what a reader (and
``tests/integration/test_bad_inputs.py``) needs to check the outcome::

    {"name": "wrong-type-nano-banana-input.prompt-number",   # unique
     "category": "wrong-type",                               # see events/bad-inputs/README.md
     "body": "<the raw SQS message body>",                   # or "body_parts" (below)
     "job_id": "bad-wrong-type-003",                         # the task record's id; null: msg-<SQS messageId>
     "field": "input.prompt",                                # a field the REJECTED record's problems name
     "message": "must be a string",                          # optional: text that problem's message contains
     "note": "...",                                          # optional: why this one is interesting
     "gap": "..."}                                           # optional: a known pipeline gap (see the README)

``body_parts`` keeps big bodies small on disk: a list of strings and ``[text, count]`` pairs, concatenated in
order (``["{\\"p\\": \\"", ["x", 300000], "\\"}"]``). :func:`expand_body` is the one definition of it.

Deterministic: the only inputs are the packaged catalog and a fixed seed. The script fails loudly when a
message it means to be bad is accepted by ``mediagen.jobs.parse_job`` + ``Catalog.validate`` (or is refused
for a different reason than the one the case is about), and when a body could not be sent to SQS as is
(characters outside XML 1.0 ``Char``, more than 1 MiB). Entries marked ``gap`` are exempt from the first
check: they are messages mediagen must reject but currently does not handle (see the README).
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import gzip
import json
import pickle
import random
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "shared"))

from mediagen.catalog import BlockInfo, ModelInfo, ParamInfo, get_catalog  # noqa: E402
from mediagen.catalog.examples import example_request, example_value  # noqa: E402
from mediagen.jobs import MAX_JOB_BYTES, parse_job  # noqa: E402

OUT = REPO / "events" / "bad-inputs" / "corpus.jsonl"
SEED = 20260521
#: SQS's largest message body (SendMessage: 1 MiB; moto's default queue MaximumMessageSize is the same).
SQS_MAX_BODY = 1_048_576
#: Bodies longer than this are written as ``body_parts``.
INLINE_LIMIT = 16 * 1024
_FALLBACK = "msg-FALLBACK"
CAT = get_catalog()


# ------------------------------------------------------------------------------------------- cases


@dataclasses.dataclass
class Case:
    """One corpus entry before verification."""

    name: str
    category: str
    body: str | list[Any]
    field: str
    message: str | None = None
    note: str | None = None
    gap: str | None = None
    job_id: str | None = dataclasses.field(default=None, init=False)

    def text(self) -> str:
        return expand_body(self.body) if isinstance(self.body, list) else self.body


def expand_body(parts: list[Any]) -> str:
    """The body a ``body_parts`` list stands for: strings as they are, ``[text, n]`` as ``text * n``."""
    return "".join(p if isinstance(p, str) else p[0] * p[1] for p in parts)


class Corpus:
    """Collects cases, numbering the job ids of each category."""

    def __init__(self) -> None:
        self.cases: list[Case] = []
        self._ids: dict[str, int] = {}

    def job_id(self, category: str) -> str:
        self._ids[category] = self._ids.get(category, 0) + 1
        return f"bad-{category}-{self._ids[category]:03d}"

    def add(self, case: Case) -> None:
        self.cases.append(case)


def dumps(doc: Any) -> str:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def envelope(request: Any, job_id: str | None, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {} if job_id is None else {"job_id": job_id}
    doc["request"] = request
    doc.update(extra)
    return doc


def sqs_text(data: bytes) -> str:
    """Bytes as the text an SQS body can carry: each byte as the code point of the same value (latin-1),
    characters outside XML 1.0 ``Char`` (C0 controls except tab, LF, CR) replaced by U+FFFD, as SQS does."""
    return "".join(c if c in "\t\n\r" or ord(c) >= 0x20 else "\ufffd" for c in data.decode("latin-1"))


def sqs_sendable(text: str) -> bool:
    """Whether SQS takes ``text`` as a body unchanged (XML 1.0 ``Char`` only, at most 1 MiB of UTF-8)."""
    for c in text:
        o = ord(c)
        if not (o in (0x9, 0xA, 0xD) or 0x20 <= o <= 0xD7FF or 0xE000 <= o <= 0xFFFD or 0x10000 <= o <= 0x10FFFF):
            return False
    return len(text.encode("utf-8")) <= SQS_MAX_BODY


NANO: dict[str, Any] = {"model": "nano-banana", "input": {"prompt": "a lighthouse at dawn"}}
SEEDANCE: dict[str, Any] = {"model": "seedance-v1-pro",
                            "input": {"prompt": "waves", "resolution": "720p", "duration": "5"}}


# ----------------------------------------------------------------------------------- catalog walks


def blocks() -> Iterator[tuple[ModelInfo, BlockInfo]]:
    """Every (model, block) in catalog order."""
    for model in CAT.models():
        for block in model.blocks:
            yield model, block


def first_blocks() -> Iterator[tuple[ModelInfo, BlockInfo]]:
    """The first block of every model, then the second blocks, ...: spreads cases across models."""
    rows = [list(m.blocks) for m in CAT.models()]
    models = CAT.models()
    for depth in range(max(len(r) for r in rows)):
        for model, row in zip(models, rows, strict=True):
            if depth < len(row):
                yield model, row[depth]


def spread_blocks(salt: int) -> list[tuple[ModelInfo, BlockInfo]]:
    """Every (model, block) in a fixed pseudo-random order (one order per ``salt``), so that a category
    capped at N cases samples the whole catalog instead of its first N models."""
    pairs = list(first_blocks())
    return random.Random(SEED + salt).sample(pairs, len(pairs))


def put(request: dict[str, Any], param: ParamInfo, value: Any) -> dict[str, Any]:
    """A copy of ``request`` with ``param`` set to ``value``."""
    out = json.loads(json.dumps(request))
    target = out if param.location == "root" else out.setdefault("input", {})
    target[param.name] = value
    return out


def drop(request: dict[str, Any], param: ParamInfo) -> dict[str, Any]:
    out = json.loads(json.dumps(request))
    target = out if param.location == "root" else out.get("input", {})
    target.pop(param.name, None)
    return out


def base_request(model: ModelInfo, block: BlockInfo) -> dict[str, Any]:
    return example_request(model, block)


def url_items(param: ParamInfo) -> bool:
    items = param.spec.get("items") or {}
    return param.type == "array" and items.get("format") == "url"


def url_params(block: BlockInfo) -> list[ParamInfo]:
    """The media URL parameters of a block: URL strings and arrays of URLs (not the JSON root helpers)."""
    return [p for p in block.params
            if (p.spec.get("format") == "url" or url_items(p)) and p.spec.get("encoding") != "json"]


def with_url(model: ModelInfo, block: BlockInfo, param: ParamInfo, url: str) -> dict[str, Any]:
    """``block``'s example request with ``url`` as the (first) value of ``param``."""
    request = base_request(model, block)
    value: Any
    if param.type == "array":
        current = example_value(param.spec)
        value = [url, *current[1:]] if current else [url]
    elif param.spec.get("min_items", 1) > 1:
        current = example_value(param.spec)
        value = [url, *current[1:]] if isinstance(current, list) else url
    else:
        value = url
    return put(request, param, value)


# --------------------------------------------------------------------------------------- categories


def not_json(c: Corpus) -> None:
    cat = "not-json"
    good = dumps(envelope(NANO, "bad-not-json-x"))
    bodies = [
        ("empty", "", "SQS itself refuses an empty body on send (minimum 1 character); moto accepts it"),
        ("space", " ", None),
        ("whitespace", "\n\t \r\n", None),
        ("truncated-half", good[: len(good) // 2], None),
        ("truncated-last-brace", good[:-1], None),
        ("trailing-garbage", good + "garbage", None),
        ("two-documents", good + good, "two jobs concatenated without a separator"),
        ("trailing-comma", good[:-1] + ",}", None),
        ("single-quotes", good.replace('"', "'"), "a Python dict repr"),
        ("unquoted-keys", '{job_id: "x", request: {model: "nano-banana"}}', None),
        ("comment", "// job\n" + good, None),
        ("nan-bare-word", "NaN", "not JSON (Python's reader accepts it unless told not to)"),
        ("yaml", "job_id: x\nrequest:\n  model: nano-banana\n", None),
        ("xml", "<job><model>nano-banana</model></job>", None),
        ("form-encoded", "job_id=x&request=%7B%22model%22%3A%22nano-banana%22%7D", None),
        ("raw-tab-in-string", good.replace("a lighthouse", "a\tlighthouse"),
         "a raw tab inside a string: SQS allows it, JSON forbids raw control characters"),
        ("bad-escape", good.replace("a lighthouse", "a \\q lighthouse"), None),
        ("ndjson-two-lines", good + "\n" + good, "JSON Lines belong in a manifest, not in one message"),
    ]
    for name, body, note in bodies:
        c.add(Case(f"{cat}-{name}", cat, body, "body", note=note))
    # NaN / Infinity inside a request are not JSON either: refused as not valid JSON.
    for name, value in (("nan", "NaN"), ("infinity", "Infinity")):
        body = dumps(envelope({"model": "seedance-v1-pro", "input": {"prompt": "waves", "resolution": "720p",
                                                                      "duration": "@@"}}, c.job_id(cat)))
        c.add(Case(f"{cat}-{name}-in-duration", cat, body.replace('"@@"', value), "body",
                   note="not JSON by the standard (Python's reader accepts it unless told not to)"))


def not_object(c: Corpus) -> None:
    cat = "not-object"
    good = envelope(NANO, "bad-not-object-x")
    bodies = [
        ("array-empty", "[]"), ("array-of-job", dumps([good])), ("array-of-null", "[null]"),
        ("string", '"nano-banana"'), ("double-encoded-job", json.dumps(dumps(good))),
        ("number", "42"), ("negative-float", "-1.5e3"), ("null", "null"), ("true", "true"), ("false", "false"),
    ]
    for name, body in bodies:
        c.add(Case(f"{cat}-{name}", cat, body, "body", message="must be a JSON object"))


def binary(c: Corpus) -> None:
    cat = "binary"
    good = dumps(envelope(NANO, "bad-binary-x")).encode()
    rng = random.Random(SEED)
    blobs = [
        ("png-header", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"),
        ("gzip-of-job", gzip.compress(good, mtime=0)),
        ("utf16-job", good.decode().encode("utf-16")),
        ("pickle-of-job", pickle.dumps(json.loads(good), protocol=4)),
        ("random-64", rng.randbytes(64)),
        ("c1-controls", bytes(range(0x80, 0xA0))),
    ]
    for name, blob in blobs:
        c.add(Case(f"{cat}-{name}", cat, sqs_text(blob), "body", message="not valid JSON",
                   note="bytes as latin-1 text, C0 controls replaced by U+FFFD (what an SQS body can hold)"))
    c.add(Case(f"{cat}-base64-of-job", cat, base64.b64encode(good).decode(), "body", message="not valid JSON",
               note="base64 text: the producer forgot to decode"))
    c.add(Case(f"{cat}-invalid-utf8-replaced-in-job-id", cat,
               dumps(envelope(NANO, "job-\ufffd\ufffd")), "job_id",
               note="invalid UTF-8 bytes after a lossy decode: U+FFFD in the job id"))
    c.add(Case(f"{cat}-escaped-nul-in-job-id", cat, dumps(envelope(NANO, "job\x00id")), "job_id",
               note="JSON escape \\u0000: fine for SQS, a NUL once decoded"))
    c.add(Case(f"{cat}-escaped-lone-surrogate-in-job-id", cat,
               '{"job_id":"job-\\ud800","request":' + dumps(NANO) + "}", "job_id",
               note="the escape \\ud800 decodes to a lone surrogate, which cannot be encoded as UTF-8"))
    c.add(Case(f"{cat}-replacement-chars-only", cat, "\ufffd" * 32, "body"))


def envelope_cases(c: Corpus) -> None:
    cat = "envelope"
    jid = lambda: c.job_id(cat)  # noqa: E731 - local shorthand
    rows: list[tuple[str, dict[str, Any], str, str | None]] = [
        ("missing-request", {"job_id": jid(), "output": {"prefix": "x/"}}, "request", "required"),
        ("request-null", {"job_id": jid(), "request": None}, "request", "required"),
        ("request-string", {"job_id": jid(), "request": dumps(NANO)}, "request", "must be an object"),
        ("request-array", {"job_id": jid(), "request": [NANO]}, "request", "must be an object"),
        ("request-number", {"job_id": jid(), "request": 1}, "request", "must be an object"),
        ("request-capitalised", {"job_id": jid(), "Request": NANO}, "request", "required"),
        ("unknown-top-level-priority", {"job_id": jid(), "request": NANO, "priority": 1}, "priority",
         "unknown job field"),
        ("unknown-top-level-callback", {"job_id": jid(), "request": NANO, "callback_url": "https://example.com/cb"},
         "callback_url", "unknown job field"),
        ("unknown-top-level-jobId", {"jobId": "orders-1", "request": NANO}, "jobId", "unknown job field"),
        ("output-string", {"job_id": jid(), "request": NANO, "output": "results/"}, "output", "must be an object"),
        ("prefix-dotdot", {"job_id": jid(), "request": NANO, "output": {"prefix": "../other-tenant/"}},
         "output.prefix", "no '..'"),
        ("prefix-dotdot-inside", {"job_id": jid(), "request": NANO, "output": {"prefix": "a/../../b/"}},
         "output.prefix", None),
        ("prefix-absolute", {"job_id": jid(), "request": NANO, "output": {"prefix": "/etc/"}}, "output.prefix", None),
        ("prefix-space", {"job_id": jid(), "request": NANO, "output": {"prefix": "my results/"}}, "output.prefix",
         None),
        ("prefix-unicode", {"job_id": jid(), "request": NANO, "output": {"prefix": "résultats/"}},
         "output.prefix", None),
        ("prefix-too-long", {"job_id": jid(), "request": NANO, "output": {"prefix": "a/" * 257}}, "output.prefix",
         None),
        ("prefix-number", {"job_id": jid(), "request": NANO, "output": {"prefix": 7}}, "output.prefix", None),
        ("prefix-s3-uri", {"job_id": jid(), "request": NANO, "output": {"prefix": "s3://bucket/key/"}},
         "output.prefix", None),
        ("metadata-list", {"job_id": jid(), "request": NANO, "metadata": ["order", 1]}, "metadata",
         "must be a JSON object"),
        ("metadata-string", {"job_id": jid(), "request": NANO, "metadata": "order=1"}, "metadata", None),
        ("metadata-oversize", {"job_id": jid(), "request": NANO, "metadata": {"notes": "n" * 9000}}, "metadata",
         "8 KiB"),
        ("metadata-oversize-many-keys", {"job_id": jid(), "request": NANO,
                                         "metadata": {f"k{i:04d}": i for i in range(900)}}, "metadata", "8 KiB"),
        ("max-credits-negative", {"job_id": jid(), "request": NANO, "max_credits": -1}, "max_credits",
         "non-negative integer"),
        ("max-credits-string", {"job_id": jid(), "request": NANO, "max_credits": "200"}, "max_credits", None),
        ("max-credits-float", {"job_id": jid(), "request": NANO, "max_credits": 12.5}, "max_credits", None),
        ("max-credits-bool", {"job_id": jid(), "request": NANO, "max_credits": True}, "max_credits", None),
        ("allow-unknown-string", {"job_id": jid(), "request": NANO, "allow_unknown_fields": "true"},
         "allow_unknown_fields", "true or false"),
        ("allow-unknown-null", {"job_id": jid(), "request": NANO, "allow_unknown_fields": None},
         "allow_unknown_fields", None),
        ("input-not-object", {"job_id": jid(), "request": {"model": "nano-banana", "input": "a lighthouse"}},
         "input", "must be a JSON object"),
        ("input-array", {"job_id": jid(), "request": {"model": "seedance-v1-pro", "input": [SEEDANCE["input"]]}},
         "input", None),
        ("everything-wrong", {"job_id": "no spaces allowed", "request": {"model": "dall-e-9"},
                              "output": {"prefix": "../"}, "metadata": [], "max_credits": -5,
                              "allow_unknown_fields": "yes", "extra": 1}, "job_id", None),
    ]
    for name, doc, fld, message in rows:
        c.add(Case(f"{cat}-{name}", cat, dumps(doc), fld, message=message))


def bad_job_ids(c: Corpus) -> None:
    cat = "job-id"
    values: list[tuple[str, Any]] = [
        ("too-long-129", "j" * 129), ("too-long-1000", "job-" * 250), ("empty", ""), ("space", "order 1234"),
        ("leading-space", " order-1"), ("carriage-return", "order-1\r"), ("slash", "orders/1234"),
        ("unicode", "commande-n°1"), ("emoji", "job-🎬"), ("hash", "order#1"),
        ("percent-encoded", "order%201"), ("number", 1234),
        ("true", True), ("list", ["order-1"]), ("object", {"id": "order-1"}), ("zero-width-space", "order\u200b1"),
        ("fullwidth", "ｏｒｄｅｒ１"),
    ]
    for name, value in values:
        c.add(Case(f"{cat}-{name}", cat, dumps({"job_id": value, "request": NANO}), "job_id",
                   message="must be 1-128 characters"))


def unknown_models(c: Corpus) -> None:
    cat = "unknown-model"
    rng = random.Random(SEED + 1)
    fixed: list[tuple[str, Any, str | None]] = [
        ("empty", "", "unknown model"), ("null", None, "is required"),
        ("number", 3, "must be a string"),
        ("object", {"id": "nano-banana"}, "must be a string"),
        ("leading-space", " nano-banana", "unknown model"), ("trailing-space", "nano-banana ", "unknown model"),
        ("uppercase", "NANO-BANANA", "unknown model"),
        ("underscores", "nano_banana", "unknown model"), ("dots", "kling-2.5", "unknown model"),
        ("alias-misspelt-underscore", "kling_2_5", "unknown model"), ("alias-misspelt-joined", "kling-25", None),
        ("cyrillic-a", "n\u0430no-banana", "unknown model"), ("zero-width", "nano\u200b-banana", "unknown model"),
        ("other-provider", "dall-e-3", "unknown model"),
        ("url", "https://business.api.cliprise.app/models/nano-banana", None),
    ]
    for name, value, message in fixed:
        request = {**({} if value is None else {"model": value}), "input": {"prompt": "a lighthouse"}}
        c.add(Case(f"{cat}-{name}", cat, dumps(envelope(request, c.job_id(cat))), "model", message=message))
    # Family ids the provider does not accept on generate (the routed values of document 002).
    for model in CAT.models():
        for rv in model.values:
            if rv.kind == "family":
                request = base_request(model, model.blocks[0])
                request["model"] = rv.value
                c.add(Case(f"{cat}-family-{rv.value}", cat, dumps(envelope(request, c.job_id(cat))), "model",
                           message="model family"))
    # One typo for a spread of catalog models: a dropped, doubled or swapped character.
    for index, model in enumerate(CAT.models()[::9]):
        value = model.sendable_values()[0]
        pos = rng.randrange(1, len(value) - 1)
        typo = [value[:pos] + value[pos + 1:], value[:pos] + value[pos] + value[pos:],
                value[:pos - 1] + value[pos] + value[pos - 1] + value[pos + 1:]][index % 3]
        if typo == value or CAT.resolve(typo) is not None:
            continue
        request = base_request(model, model.blocks[0])
        request["model"] = typo
        c.add(Case(f"{cat}-typo-{value}", cat, dumps(envelope(request, c.job_id(cat))), "model",
                   message="unknown model"))
    c.add(Case(f"{cat}-missing-model", cat, dumps(envelope({"input": {"prompt": "x"}}, c.job_id(cat))), "model",
               message="is required"))
    c.add(Case(f"{cat}-bare-request-unknown-model", cat, dumps({"model": "nano-bananna", "input": {"prompt": "x"}}),
               "model", note="a bare request body (no envelope) is accepted as a job: its model is checked"))


def _wrong_values(param: ParamInfo) -> list[tuple[str, Any]]:
    """Values of the wrong JSON type for ``param`` (by its wire type and the types it also accepts)."""
    spec, kind, accept = param.spec, param.type, set(param.spec.get("accept", ()))
    if spec.get("variants"):
        return [("object", {"value": 1}), ("boolean", True)]
    if kind == "string":
        out: list[tuple[str, Any]] = []
        if "integer" in accept:
            out += [("float-with-fraction", 5.5), ("boolean", True)]
        else:
            out += [("number", 42), ("boolean", False)]
        if "array" not in accept:
            out.append(("list", [example_value(spec)]))
        return [*out, ("object", {"text": "x"})]
    if kind == "integer":
        return [("float-with-fraction", 1.5), ("boolean", True), ("word", "ten")]
    if kind == "number":
        words = [("word", "fast"), ("boolean", True), ("list", [1])]
        return [("decimal-comma", "1,5"), *words] if "string" in accept else words
    if kind == "boolean":
        return [("string-yes", "yes"), ("number-1", 1), ("string-True", "True")]
    if kind == "array":
        sample = example_value(spec)
        out = [("object", {"0": sample[0] if sample else "x"}), ("number", 7)]
        if "string" not in accept:
            item = sample[0] if sample and isinstance(sample[0], str) else "x"
            out.insert(0, ("string-not-array", item))
        return out
    if kind == "object":
        if spec.get("encoding") == "json":
            return [("invalid-json-string", "{quality: high}"), ("number", 5), ("list", [1, 2])]
        return [("string", "x"), ("list", [1])]
    return []


def wrong_types(c: Corpus, limit: int = 17) -> None:
    cat = "wrong-type"
    # Hand-picked: the classics the issue names.
    hand = [
        ("prompt-number", NANO, "input.prompt", 42), ("prompt-list", NANO, "input.prompt", ["a", "b"]),
        ("prompt-object", NANO, "input.prompt", {"text": "a lighthouse"}), ("prompt-bool", NANO, "input.prompt", True),
        ("duration-bool", SEEDANCE, "input.duration", True), ("duration-float", SEEDANCE, "input.duration", 5.5),
        ("duration-list", SEEDANCE, "input.duration", ["5"]),
        ("camera-fixed-string", SEEDANCE, "input.camera_fixed", "yes"),
        ("image-urls-string", {"model": "nano-banana", "input": {"prompt": "merge"}}, "input.image_urls",
         "https://example.com/a.png"),
    ]
    for name, request, path, value in hand:
        req = json.loads(json.dumps(request))
        req["input"][path.split(".", 1)[1]] = value
        c.add(Case(f"{cat}-{request['model']}-{name}", cat, dumps(envelope(req, c.job_id(cat))), path))
    # Generated: one wrong-typed parameter per model (rotating over parameters and wrong kinds), then more.
    seen: set[tuple[str, str]] = {(r["model"], path) for _, r, path, _ in hand}
    added = 0
    for round_no in range(4):
        for index, (model, block) in enumerate(spread_blocks(10)):
            params = [p for p in block.params if _wrong_values(p)]
            if not params or added >= limit:
                continue
            param = params[(index + round_no * 3) % len(params)]
            if (model.id, param.path) in seen:
                continue
            options = _wrong_values(param)
            label, value = options[(index + round_no) % len(options)]
            request = put(base_request(model, block), param, value)
            case = Case(f"{cat}-{model.id}-{block.id}-{param.path}-{label}", cat, dumps(request), param.path)
            if _refused_on(request, param.path):
                seen.add((model.id, param.path))
                case.body = dumps(envelope(request, c.job_id(cat)))
                c.add(case)
                added += 1


def _refused_on(request: dict[str, Any], path: str) -> bool:
    return any(_on_field(p.field, path) for p in CAT.validate(request))


def _on_field(problem_field: str, path: str) -> bool:
    return problem_field == path or problem_field.startswith((path + "[", path + "."))


def missing_required(c: Corpus, limit: int = 10) -> None:
    cat = "missing-required"
    added = 0
    for index, (model, block) in enumerate(spread_blocks(20)):
        required = [p for p in block.params if p.required and p.name != "model"]
        if not required or added >= limit:
            continue
        param = required[index % len(required)]
        request = drop(base_request(model, block), param)
        if not _refused_on(request, param.path):
            continue
        c.add(Case(f"{cat}-{model.id}-{block.id}-{param.path}", cat, dumps(envelope(request, c.job_id(cat))),
                   param.path, message="is required"))
        added += 1


def _not_allowed(param: ParamInfo) -> list[tuple[str, Any]]:
    spec = param.spec
    out: list[tuple[str, Any]] = []
    enum = spec.get("enum")
    if enum:
        text = [v for v in enum if isinstance(v, str) and v.upper() != v.lower()]
        if text:
            first = text[0]
            changed = first.upper() if first.upper() != first else first.capitalize()
            if changed not in enum:
                out.append(("enum-wrong-case", changed))
        strings = [v for v in enum if isinstance(v, str)]
        out.append(("enum-unknown", "9:7" if any(":" in s for s in strings) else "ultra-max"))
    low, high = spec.get("minimum"), spec.get("maximum")
    as_string = param.type == "string"
    if high is not None:
        value = high + (1 if isinstance(high, int) or float(high).is_integer() else 0.5)
        out.append(("above-maximum", str(int(value)) if as_string else value))
    if low is not None:
        value = low - 1
        out.append(("below-minimum", str(int(value)) if as_string else value))
    step = spec.get("step")
    if step and step >= 1 and low is not None and high is not None and high - low > step:
        out.append(("off-step", low + step / 2))
    return out


def not_allowed(c: Corpus, limit: int = 16) -> None:
    cat = "value-not-allowed"
    seen: set[tuple[str, str, str]] = set()
    added = 0
    for round_no in range(3):
        for index, (model, block) in enumerate(spread_blocks(30)):
            params = [p for p in block.params if _not_allowed(p)]
            if not params or added >= limit:
                continue
            param = params[(index + round_no) % len(params)]
            options = _not_allowed(param)
            label, value = options[(index + round_no) % len(options)]
            key = (model.id, param.path, label)
            if key in seen:
                continue
            request = put(base_request(model, block), param, value)
            if not _refused_on(request, param.path):
                continue
            seen.add(key)
            c.add(Case(f"{cat}-{model.id}-{block.id}-{param.path}-{label}", cat,
                       dumps(envelope(request, c.job_id(cat))), param.path))
            added += 1


def too_many_items(c: Corpus, limit: int = 8) -> None:
    cat = "item-count"
    added = 0
    for model, block in spread_blocks(40):
        for param in block.params:
            if param.type != "array" or added >= limit or param.spec.get("encoding") == "json":
                continue
            high, low = param.spec.get("max_items"), param.spec.get("min_items")
            sample = example_value(param.spec)
            item = sample[0] if sample else example_value(param.spec.get("items") or {"type": "string"})
            counts = ([(f"{high + 1}-items-max-{high}", high + 1)] if high else []) + \
                ([(f"{low - 1}-items-min-{low}", low - 1)] if low else [])
            if added % 2:
                counts.reverse()  # alternate: too many, then too few
            for label, count in counts:
                request = put(base_request(model, block), param, [item] * count)
                if _refused_on(request, param.path):
                    c.add(Case(f"{cat}-{model.id}-{block.id}-{param.path}-{label}", cat,
                               dumps(envelope(request, c.job_id(cat))), param.path))
                    added += 1
                    break


    # Too few: the first-and-last-frames shape needs two frames (document 000), one is not enough.
    request = {"model": "veo-3-lite", "prompt": "a door opens", "generationType": "FIRST_AND_LAST_FRAMES_2_VIDEO",
               "imageUrls": ["https://example.com/first.png"]}
    c.add(Case(f"{cat}-veo-3-lite-imageUrls-1-item-min-2", cat, dumps(envelope(request, c.job_id(cat))), "imageUrls",
               message="at least 2 required"))


def huge_prompts(c: Corpus) -> None:
    cat = "huge-prompt"
    seen: set[tuple[str, int]] = set()
    for model, block in blocks():
        for param in block.params:
            limit = param.spec.get("max_length")
            if not limit or param.type != "string" or (param.name, limit) in seen:
                continue
            seen.add((param.name, limit))
            request = put(base_request(model, block), param, "p" * (limit + 1))
            c.add(Case(f"{cat}-{model.id}-{param.path}-{limit + 1}-chars", cat,
                       dumps(envelope(request, c.job_id(cat))), param.path, message="is too long"))
    # Far beyond the limit, still a deliverable message: 100 KB, 200 KB, and exactly MAX_JOB_BYTES.
    for size in (200_000,):
        head = dumps(envelope({"model": "nano-banana", "input": {"prompt": "@@"}}, c.job_id(cat)))
        before, after = head.split("@@")
        c.add(Case(f"{cat}-nano-banana-{size}-chars", cat, [before, ["p", size], after], "input.prompt",
                   message="is too long"))
    head = dumps(envelope({"model": "nano-banana", "input": {"prompt": "@@"}}, c.job_id(cat)))
    before, after = head.split("@@")
    fill = MAX_JOB_BYTES - len((before + after).encode())
    c.add(Case(f"{cat}-nano-banana-exactly-{MAX_JOB_BYTES}-bytes", cat, [before, ["p", fill], after],
               "input.prompt", message="is too long", note="the largest body mediagen parses (its job limit)"))
    multibyte = dumps(envelope({"model": "nano-banana", "input": {"prompt": "@@"}}, c.job_id(cat)))
    before, after = multibyte.split("@@")
    c.add(Case(f"{cat}-nano-banana-5001-emoji", cat, [before, ["🎬", 5001], after], "input.prompt",
               message="is too long", note="5001 characters, 20 KB of UTF-8: length is counted in characters"))


def oversize(c: Corpus) -> None:
    cat = "oversize-body"
    head = dumps(envelope({"model": "nano-banana", "input": {"prompt": "@@"}}, "bad-oversize-body-x"))
    before, after = head.split("@@")
    sizes = (("256KiB-plus-1", MAX_JOB_BYTES + 1), ("512KiB", 512 * 1024), ("1MiB-minus-1", SQS_MAX_BODY - 1),
             ("1MiB-exactly", SQS_MAX_BODY))
    for label, total in sizes:
        fill = total - len((before + after).encode())
        c.add(Case(f"{cat}-{label}", cat, [before, ["p", fill], after], "body", message="the limit is",
                   note=f"{total} bytes: over mediagen's {MAX_JOB_BYTES}-byte job limit, within SQS's 1 MiB"))
    fill = MAX_JOB_BYTES + 1 - 2
    c.add(Case(f"{cat}-not-json-256KiB-plus-1", cat, ["[", ["1", fill], "]"], "body", message="the limit is",
               note="the size check comes before parsing: no JSON parser sees an oversize body"))
    metadata = dumps({"job_id": "bad-oversize-body-y", "request": NANO, "metadata": {"blob": "@@"}})
    before, after = metadata.split("@@")
    c.add(Case(f"{cat}-metadata-blob-300KB", cat, [before, ["m", 300_000], after], "body",
               message="the limit is"))


NON_HTTP = [
    ("ftp", "ftp://example.com/a.png"), ("file", "file:///etc/passwd"),
    ("data", "data:image/png;base64,iVBORw0KGgo="), ("javascript", "javascript:alert(1)"),
    ("gs", "gs://bucket/a.png"), ("relative-path", "images/a.png"),  # s3:// is an input mediagen presigns
    ("absolute-path", "/images/a.png"), ("scheme-relative", "//example.com/a.png"),
    ("blob", "blob:https://example.com/1b2c"), ("bare-host", "example.com/a.png"),
]
PRIVATE = [
    ("aws-metadata", "http://169.254.169.254/latest/meta-data/iam/"), ("loopback", "http://127.0.0.1:8080/a.png"),
    ("rfc1918-10", "http://10.0.0.12/a.png"), ("rfc1918-172", "http://172.16.0.3/a.png"),
    ("rfc1918-192", "https://192.168.1.10/a.png"), ("cgnat", "http://100.64.0.7/a.png"),
    ("unspecified", "http://0.0.0.0/a.png"), ("multicast", "http://239.1.2.3/a.png"),
    ("ipv6-loopback", "http://[::1]/a.png"), ("ipv6-ula", "http://[fd00:ec2::254]/latest"),
    ("ipv6-link-local", "http://[fe80::1%25eth0]/a.png"), ("ipv4-mapped", "http://[::ffff:169.254.169.254]/latest"),
    ("decimal-ip", "http://2130706433/a.png"), ("short-ip", "http://127.1/a.png"), ("hex-ip", "http://0x7f000001/a.png"),
    ("octal-ip", "http://0177.0.0.1/a.png"), ("localhost", "http://localhost/a.png"),
    ("localhost-port", "http://localhost:9000/bucket/a.png"), ("sub-localhost", "http://media.localhost/a.png"),
    ("mdns-local", "http://nas.local/a.png"), ("gcp-metadata", "http://metadata.google.internal/computeMetadata/v1/"),
    ("ec2-internal", "http://ip-10-0-0-5.ec2.internal/a.png"), ("single-label", "https://fileserver/a.png"),
    ("userinfo", "https://admin:hunter2@cdn.example.com/a.png"),
]
MALFORMED = [
    ("empty", ""), ("no-host", "https://"), ("no-host-path", "http:///a.png"),
    ("single-slash", "https:/example.com/a.png"),
    ("space-in-host", "https://exa mple.com/a.png"), ("space-in-path", "https://example.com/my image.png"),
    ("newline", "https://example.com/a.png\n"),
    ("unclosed-ipv6", "https://[::1/a.png"), ("port-out-of-range", "https://example.com:99999/a.png"),
    ("empty-label", "https://cdn..example.com/a.png"),
    ("bad-ipv4", "http://300.1.1.1/a.png"),
]


def urls(c: Corpus) -> None:
    """Non-http(s), private-network and malformed URLs, spread over the catalog's URL parameters."""
    slots = [(m, b, p) for m, b in first_blocks() for p in url_params(b)]
    groups = (("non-http-url", NON_HTTP, "not an http(s) URL"), ("private-url", PRIVATE, None),
              ("malformed-url", MALFORMED, None))
    turn = 0
    for cat, values, message in groups:
        for name, url in values:
            for attempt in range(len(slots)):
                model, block, param = slots[(turn + attempt * 7) % len(slots)]
                request = with_url(model, block, param, url)
                problems = [p for p in CAT.validate(request) if _on_field(p.field, param.path)]
                if problems:
                    break
            else:
                raise SystemExit(f"no URL parameter refuses {url!r}")
            turn += 5
            expected = message
            if cat == "private-url":
                expected = "user name or password" if "@" in url else "private or local network"
            c.add(Case(f"{cat}-{name}-{model.id}-{problems[0].field}", cat,
                       dumps(envelope(request, c.job_id(cat))), problems[0].field, message=expected))
    # The documented JSON-string form of a root URL list ("Key Concepts" [002:28-43]) is checked too.
    request = {"model": "flux-kontext-pro", "prompt": "a red door", "aspectRatio": "16:9",
               "imageURLList": json.dumps(["https://example.com/ok.png", "http://192.168.0.2/ref.png"])}
    c.add(Case("private-url-json-string-imageURLList", "private-url", dumps(envelope(request, c.job_id("private-url"))),
               "imageURLList[1]", message="private or local network"))


def unknown_fields(c: Corpus, limit: int = 8) -> None:
    cat = "unknown-field"

    def camel(name: str) -> str:
        head, *rest = name.split("_")
        return head + "".join(w.capitalize() for w in rest)

    def snake(name: str) -> str:
        return "".join("_" + ch.lower() if ch.isupper() else ch for ch in name).lstrip("_")

    added = 0
    for model, block in spread_blocks(50):
        for param in block.params:
            if added >= limit or param.name in ("model",):
                continue
            twin = camel(param.name) if "_" in param.name else snake(param.name)
            if twin == param.name:
                continue
            request = base_request(model, block)
            value = example_value(param.spec)
            request = drop(request, param)
            target = request if param.location == "root" else request.setdefault("input", {})
            target[twin] = value
            path = twin if param.location == "root" else f"input.{twin}"
            if not _refused_on(request, path):
                continue
            c.add(Case(f"{cat}-{model.id}-{block.id}-{path}", cat, dumps(envelope(request, c.job_id(cat))), path,
                       message="did you mean"))
            added += 1
            break
    extra = [
        ("prompt-at-root", {"model": "nano-banana", "prompt": "x", "input": {"prompt": "x"}}, "prompt"),
        ("input-for-root-only", {"model": "flux-kontext-pro", "prompt": "x", "input": {"prompt": "x"}}, "input"),
        ("capitalised-prompt", {"model": "nano-banana", "input": {"Prompt": "x"}}, "input.Prompt"),
        ("callbackUrl-typo", {**NANO, "callbackUrl": "https://example.com/cb"}, "callbackUrl"),
        ("webhook-url", {**NANO, "webhook_url": "https://example.com/cb"}, "webhook_url"),
        ("trailing-space-key", {"model": "seedance-v1-pro", "input": {**SEEDANCE["input"], "resolution ": "720p"}},
         "input.resolution "),
        ("negativePrompt", {"model": "seedance-v1-pro", "input": {**SEEDANCE["input"], "negativePrompt": "blur"}},
         "input.negativePrompt"),
    ]
    for name, request, path in extra:
        c.add(Case(f"{cat}-{name}", cat, dumps(envelope(request, c.job_id(cat))), path))


def reused_job_ids(c: Corpus) -> None:
    """Several messages under one job id: one task each group (the first delivery decides the record)."""
    cat = "reused-job-id"
    groups = [
        [envelope({"model": "nano-bananna", "input": {"prompt": "x"}}, None),
         envelope({"model": "nano-banana", "input": {"prompt": 42}}, None)],
        [envelope({"model": "seedance-v1-pro", "input": {**SEEDANCE["input"], "duration": True}}, None),
         envelope({"model": "seedance-v1-pro", "input": {**SEEDANCE["input"], "resolution": "4k"}}, None),
         envelope({"model": "seedance-v1-pro", "input": {**SEEDANCE["input"], "image_url": "http://10.0.0.1/a.png"}},
                  None)],
        [envelope(NANO, None, output={"prefix": "../x/"}),
         envelope(NANO, None, output={"prefix": "../x/"})],
    ]
    fields = [["model", "input.prompt"], ["input.duration", "input.resolution", "input.image_url"],
              ["output.prefix", "output.prefix"]]
    for number, (group, names) in enumerate(zip(groups, fields, strict=True), start=1):
        job_id = f"bad-{cat}-{number:03d}"
        for index, (doc, fld) in enumerate(zip(group, names, strict=True), start=1):
            c.add(Case(f"{cat}-{number}-delivery-{index}", cat, dumps({"job_id": job_id, **doc}), fld,
                       note=f"message {index} of {len(group)} under job id {job_id}"))


def gaps(c: Corpus) -> None:
    """Messages that once slipped through (each was a bug the corpus found; fixed in mediagen.jobs / errors)."""
    cat = "edge"
    deep = 5000
    c.add(Case(f"{cat}-nesting-{deep}-deep", cat, "[" * deep + "]" * deep, "body",
               note="json.loads raises RecursionError; parse_job turns it into a problem on body"))
    c.add(Case(f"{cat}-nesting-{deep}-deep-in-metadata", cat,
               '{"job_id":"bad-edge-001","request":' + dumps(NANO) + ',"metadata":{"x":' + "[" * deep + "]" * deep
               + "}}", "body", note="RecursionError, as above"))
    for name, literal in (("nan", "NaN"), ("infinity", "Infinity")):
        c.add(Case(f"{cat}-{name}-in-metadata", cat,
                   '{"job_id":"bad-edge-' + name + '","request":' + dumps(NANO) + ',"metadata":{"score":' + literal
                   + "}}", "body", note=f"{literal} is not JSON (Python's reader accepts it unless told not to)"))
    c.add(Case(f"{cat}-bad-model-nan-metadata", cat,
               '{"job_id":"bad-edge-nan-2","request":{"model":"nano-bananna"},"metadata":{"score":NaN}}', "body",
               note="NaN is refused before the model is looked at"))
    c.add(Case(f"{cat}-40-digit-integer-in-metadata", cat,
               '{"job_id":"bad-edge-bigint","request":{"model":"nano-bananna"},"metadata":{"n":' + "9" * 40 + "}}",
               "metadata.n", note="DynamoDB numbers hold 38 digits"))
    c.add(Case(f"{cat}-lone-surrogate-in-prompt", cat,
               '{"job_id":"bad-edge-surrogate-1","request":{"model":"nano-banana","input":{"prompt":"a \\ud800 b"}}}',
               "request.input.prompt", note="the escape decodes to a lone surrogate: not valid Unicode text"))
    c.add(Case(f"{cat}-lone-surrogate-and-bad-model", cat,
               '{"job_id":"bad-edge-surrogate-2","request":{"model":"nano-banana\\udc00"}}', "request.model",
               note="lone surrogate in the model name"))
    c.add(Case(f"{cat}-lone-surrogate-in-metadata", cat,
               '{"job_id":"bad-edge-surrogate-3","request":{"model":"x"},"metadata":{"note":"\\udfff"}}',
               "metadata.note", note="lone surrogate in metadata"))
    c.add(Case(f"{cat}-job-id-trailing-newline", cat, dumps({"job_id": "order-1\n", "request": NANO}), "job_id",
               note="a final newline once slipped past JOB_ID_PATTERN (re.match with $); fullmatch refuses it"))
    c.add(Case(f"{cat}-prefix-trailing-newline", cat,
               dumps({"job_id": "bad-edge-prefix", "request": NANO, "output": {"prefix": "results/\n"}}),
               "output.prefix", note="same for PREFIX_PATTERN"))
    count = 5_000
    request = {"model": "nano-banana", "input": {"prompt": "merge", "image_urls": "@@"}}
    before, after = dumps(envelope(request, "bad-edge-problems")).split('"@@"')
    c.add(Case(f"{cat}-{count}-empty-urls", cat, [before + "[", ['"",', count - 1], '""]' + after],
               "input.image_urls", note="one problem per item, capped at 50 plus a count so the record fits"))


BUILDERS: list[Callable[[Corpus], None]] = [
    not_json, not_object, binary, envelope_cases, bad_job_ids, unknown_models, wrong_types, missing_required,
    not_allowed, too_many_items, huge_prompts, oversize, urls, unknown_fields, reused_job_ids, gaps,
]


# -------------------------------------------------------------------------------------- verification


def verify(case: Case) -> None:
    """Fill ``case.job_id`` and fail loudly unless mediagen refuses the message for the reason stated."""
    text = case.text()
    if not sqs_sendable(text):
        raise SystemExit(f"{case.name}: SQS would not take this body unchanged")
    if case.gap:
        try:
            gap_id = parse_job(text, fallback_job_id=_FALLBACK).job_id
        except RecursionError:
            gap_id = _FALLBACK
        case.job_id = None if gap_id == _FALLBACK else gap_id
        return
    parsed = parse_job(text, fallback_job_id=_FALLBACK)
    case.job_id = None if parsed.job_id == _FALLBACK else parsed.job_id
    problems = parsed.problems
    if parsed.job is not None:
        problems = [p.to_dict() for p in CAT.validate(parsed.job.request,
                                                       allow_unknown_fields=parsed.job.allow_unknown_fields)]
    if not problems:
        raise SystemExit(f"{case.name}: mediagen ACCEPTS this message; it is not a bad input:\n{text[:400]}")
    named = [p for p in problems if p["field"] == case.field]
    if not named:
        raise SystemExit(f"{case.name}: refused, but no problem names {case.field!r}: {problems}")
    if case.message and not any(case.message in p["message"] for p in named):
        raise SystemExit(f"{case.name}: no problem on {case.field!r} says {case.message!r}: {named}")


def build() -> list[Case]:
    corpus = Corpus()
    for builder in BUILDERS:
        builder(corpus)
    names = [case.name for case in corpus.cases]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise SystemExit(f"duplicate case names: {sorted(duplicates)}")
    for case in corpus.cases:
        verify(case)
    return corpus.cases


def to_line(case: Case) -> str:
    entry: dict[str, Any] = {"name": case.name, "category": case.category}
    text = case.text()
    if isinstance(case.body, list) or len(text) > INLINE_LIMIT:
        entry["body_parts"] = case.body if isinstance(case.body, list) else _compress(text)
    else:
        entry["body"] = text
    entry["job_id"] = case.job_id
    entry["field"] = case.field
    for key in ("message", "note", "gap"):
        if getattr(case, key):
            entry[key] = getattr(case, key)
    return json.dumps(entry, ensure_ascii=True, separators=(", ", ": "))


def _compress(text: str) -> list[Any]:
    """``text`` as ``body_parts``: runs of one character longer than 64 become ``[char, count]``."""
    parts: list[Any] = []
    i = 0
    literal = ""
    while i < len(text):
        j = i
        while j < len(text) and text[j] == text[i]:
            j += 1
        if j - i > 64:
            if literal:
                parts.append(literal)
                literal = ""
            parts.append([text[i], j - i])
        else:
            literal += text[i:j]
        i = j
    if literal:
        parts.append(literal)
    assert expand_body(parts) == text
    return parts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed corpus; write nothing")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    cases = build()
    text = "".join(to_line(case) + "\n" for case in cases)
    counts: dict[str, int] = {}
    for case in cases:
        counts[case.category] = counts.get(case.category, 0) + 1
    summary = ", ".join(f"{k} {v}" for k, v in counts.items())
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date: run scripts/make_bad_inputs.py", file=sys.stderr)
            return 1
        print(f"{args.out}: up to date ({len(cases)} messages)")
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {len(cases)} messages to {args.out.relative_to(REPO)} ({len(text.encode()) // 1024} KiB): {summary}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
