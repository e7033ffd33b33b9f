"""Parse the provider documents (``docs/sources.md``) into raw, line-numbered facts.

This module only *reads* the documents; it makes no decisions. ``build_catalog.py`` applies the
reviewed decisions (``decisions.py``) on top of what is parsed here and writes the catalog JSON.

Two documents are parsed:

* ``000`` (newest per-model reference): every request block -- its parameter table (name, location,
  type, description, constraint lines, required flag) and its cURL sample body, each with line numbers.
* ``002`` (public reference): the per-model cards of "Input Parameters" (required / optional fields,
  allowed values, tier selection, notes) with line numbers.

The documents are not part of the repository: name their folder (``--documents DIR`` on the command line,
or :func:`use_documents`). Run ``python scripts/catalog/seedparse.py --documents DIR`` to print a summary of
what was found.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The folder holding the provider documents (set by :func:`use_documents`).
DOCUMENTS: Path | None = None
#: Where ``--documents`` defaults from when set.
DOCUMENTS_ENV = "MEDIAGEN_PROVIDER_DOCUMENTS"

DOC_FILES = {
    "000": "000_8a8658d944144cf2.txt",
    "001": "001_bf6a934d14270a31.txt",
    "002": "002_fb39d99173eef484.txt",
    "003": "003_76bad6fbd927d39b.txt",
}


class DocumentsError(Exception):
    """The provider documents' folder is not given, or lacks a document (the message names it)."""


def use_documents(folder: Path | str | None) -> Path:
    """Read the provider documents from ``folder`` (one ``<number>_<hash>.txt`` file per document).

    Raises:
        DocumentsError: no folder given, or it lacks one of :data:`DOC_FILES` (the message lists them).
    """
    global DOCUMENTS
    if folder is None or not str(folder).strip():
        raise DocumentsError(f"no provider documents folder: pass --documents DIR (or set {DOCUMENTS_ENV}); "
                             f"it must hold {', '.join(DOC_FILES.values())} (see docs/sources.md)")
    path = Path(folder)
    missing = [name for name in DOC_FILES.values() if not (path / name).is_file()]
    if missing:
        raise DocumentsError(f"{path} lacks the provider document(s) {', '.join(missing)} (see docs/sources.md)")
    DOCUMENTS = path
    return path


def add_documents_argument(parser: argparse.ArgumentParser) -> None:
    """``--documents DIR`` (default: ``$MEDIAGEN_PROVIDER_DOCUMENTS``)."""
    parser.add_argument("--documents", type=Path, default=os.environ.get(DOCUMENTS_ENV) or None,
                        help=f"folder holding the provider documents {', '.join(DOC_FILES)} "
                             f"(default: ${DOCUMENTS_ENV})")


def doc_lines(doc: str) -> list[str]:
    """The lines of provider document ``doc`` ("000".."003"), without line terminators.

    Raises:
        DocumentsError: :func:`use_documents` was not called.
    """
    if DOCUMENTS is None:
        use_documents(None)
    assert DOCUMENTS is not None
    return (DOCUMENTS / DOC_FILES[doc]).read_text(encoding="utf-8").split("\n")


def find_line(doc: str, needle: str, *, start: int = 1, end: int | None = None, nth: int = 1) -> int:
    """1-based line number of the ``nth`` line of ``doc`` containing ``needle`` (within [start, end]).

    Raises LookupError when absent, so a citation can never silently point to the wrong line.
    """
    lines = doc_lines(doc)
    seen = 0
    stop = len(lines) if end is None else end
    for number in range(start, stop + 1):
        if needle in lines[number - 1]:
            seen += 1
            if seen == nth:
                return number
    raise LookupError(f"{doc}: {needle!r} not found in lines {start}..{stop}")


# --------------------------------------------------------------------------------------------- 000

_PARAM_RE = re.compile(
    r"^(?P<name>(?:input\.)?[A-Za-z_][A-Za-z0-9_]*)\s+(?P<type>string|number|boolean|array|integer|object)\s+"
    r"(?P<desc>.*?)\s*(?P<req>\b(?:optional|required))?$"
)


@dataclass
class RawParam:
    """One row of a 000 parameter table."""

    name: str  # without the "input." prefix
    location: str  # "input" | "root"
    type: str
    description: str
    constraints: list[tuple[int, str]]  # (line, text)
    required: bool
    line: int  # the row's line
    required_line: int


@dataclass
class RawBlock:
    """One request block of 000: a parameter table plus its cURL sample."""

    section_id: str  # "Model ID..." of the enclosing section
    section_name: str
    section_line: int
    category: str  # "Image" | "Video" | "Audio"
    endpoint_line: int
    table_line: int
    model_values_raw: str
    model_values_line: int
    params: list[RawParam] = field(default_factory=list)
    sample: dict[str, Any] | None = None
    sample_line: int = 0


def parse_000() -> list[RawBlock]:
    """Every request block of document 000 in document order (98 expected)."""
    lines = doc_lines("000")
    blocks: list[RawBlock] = []
    section_id = section_name = category = ""
    section_line = 0
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^API Reference (Image|Video|Audio) Models (.+)$", line)
        if m:
            category, section_name, section_line = m.group(1), m.group(2), i + 1
        elif line.startswith("Model ID") and section_line:
            section_id = line[len("Model ID") :].strip()
        elif line == "ParameterTypeDescription" and section_line:
            endpoint_line = i + 1
            for back in range(i, max(i - 6, 0), -1):
                if lines[back] == "Endpoint":
                    endpoint_line = back + 1
                    break
            block = RawBlock(section_id, section_name, section_line, category, endpoint_line, i + 1, "", 0)
            i = _parse_table(lines, i + 1, block)
            i = _parse_sample(lines, i, block)
            blocks.append(block)
            continue
        i += 1
    return blocks


def _parse_table(lines: list[str], i: int, block: RawBlock) -> int:
    current: RawParam | None = None
    pending: list[tuple[int, str]] = []

    def flush() -> None:
        nonlocal current
        if current is None:
            return
        current.constraints = list(pending)
        pending.clear()
        if current.name == "model":
            block.model_values_raw = current.constraints[0][1] if current.constraints else ""
            block.model_values_line = current.constraints[0][0] if current.constraints else current.line
        elif current.name != "callBackUrl":
            block.params.append(current)
        current = None

    while lines[i] != "Code samples":
        text = lines[i]
        m = _PARAM_RE.match(text)
        if m:
            flush()
            name = m.group("name")
            location = "input" if name.startswith("input.") else "root"
            current = RawParam(
                name=name.removeprefix("input."),
                location=location,
                type=m.group("type"),
                description=m.group("desc"),
                constraints=[],
                required=m.group("req") == "required",
                line=i + 1,
                required_line=i + 1,
            )
            if m.group("req") is None:
                current.required_line = 0
        elif text in ("required", "optional") and current is not None:
            current.required = text == "required"
            current.required_line = i + 1
        elif current is not None:
            pending.append((i + 1, text))
        i += 1
    flush()
    return i


def _parse_sample(lines: list[str], i: int, block: RawBlock) -> int:
    while not lines[i].startswith("  -d '"):
        i += 1
    start = i
    while lines[i] != "}'":
        i += 1
    body = "\n".join([lines[start][len("  -d '") :], *lines[start + 1 : i], "}"])
    block.sample = json.loads(body)
    block.sample_line = start + 1
    return i + 1


# --------------------------------------------------------------------------------------------- 002


@dataclass
class Card002:
    """A per-model card of 002 "Input Parameters"."""

    model_id: str
    line: int
    headline: str
    required: list[str]
    required_line: int
    optional: list[str]
    optional_line: int
    values: dict[str, tuple[int, str]]  # param (as printed) -> (line, raw allowed-values text)
    notes: list[tuple[int, str]]


def parse_002_cards(known_ids: list[str]) -> dict[str, Card002]:
    """The model cards between "Input Parameters" and "Field Index" of document 002."""
    lines = doc_lines("002")
    start = find_line("002", "Per-model input fields, required parameters")
    end = find_line("002", "Field Index — All Models")
    cards: dict[str, Card002] = {}
    current: Card002 | None = None
    mode = ""
    ids = sorted(known_ids, key=len, reverse=True)
    for number in range(start + 1, end):
        text = lines[number - 1]
        head = next((mid for mid in ids if text.startswith(mid + " ") and not text.startswith(mid + " |")), None)
        nxt = lines[number] if number < len(lines) else ""
        if head and re.match(r"^(image|video|audio) ", nxt):
            current = Card002(head, number, text, [], 0, [], 0, {}, [])
            cards[head] = current
            mode = ""
            continue
        if current is None:
            continue
        if text == "Required fields":
            mode = "req"
        elif text == "Optional fields":
            mode = "opt"
        elif text == "ParameterAllowed values":
            mode = "values"
        elif mode == "req":
            current.required = text.split() if text.strip() else []
            current.required_line = number
            mode = ""
        elif mode == "opt":
            if text.startswith("ParameterAllowed values"):
                mode = "values"
            else:
                current.optional = text.split() if text.strip() else []
                current.optional_line = number
                mode = ""
        elif mode == "values" and " " not in text.split("|")[0].strip() or mode == "values" and "|" in text:
            current.values[text] = (number, text)
        else:
            current.notes.append((number, text))
            if mode == "values":
                mode = ""
    return cards


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_documents_argument(parser)
    args = parser.parse_args(argv)
    try:
        use_documents(args.documents)
    except DocumentsError as exc:
        parser.error(str(exc))
    blocks = parse_000()
    print(f"000: {len(blocks)} blocks, {len({b.section_id for b in blocks})} sections")
    for b in blocks:
        params = ", ".join(
            f"{'' if p.location == 'input' else 'root:'}{p.name}{'*' if p.required else ''}" for p in b.params
        )
        print(f"  {b.table_line:>5} {b.section_id:<26} [{b.model_values_raw}] {params}")
    cards = parse_002_cards(
        sorted({b.section_id for b in blocks} | {"sora-2-turbo", "sora-story-board", "gpt-image-1", "kling-2-5"})
    )
    print(f"002: {len(cards)} cards")
    for card in cards.values():
        print(f"  {card.line:>5} {card.model_id:<26} req={card.required} opt={card.optional}")
        for text in card.values:
            print(f"        values: {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
