"""Every request body of the documents' samples is accepted once its placeholders are replaced.

The samples are the cURL bodies of document 000, stored with each block in catalog.json (extracted by
scripts/catalog/build_catalog.py). Placeholders -- ``"your_value_here"``, ``["value"]`` and numbers outside
the table (``"duration": 10000``) -- are replaced with documented values. The few samples that contradict
their own tables are listed in catalog_cases/sample_fixes.json and in docs/catalog-decisions.md.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from mediagen.catalog import BlockInfo, Catalog, ModelInfo, get_catalog
from mediagen.catalog.core import check_value
from mediagen.catalog.examples import example_value

ROOT = Path(__file__).resolve().parents[2]
FIXES = json.loads((Path(__file__).parent / "catalog_cases" / "sample_fixes.json").read_text())["fixes"]
PLACEHOLDERS = {"your_value_here", "value"}


def _is_placeholder(value: Any) -> bool:
    if isinstance(value, str):
        return value in PLACEHOLDERS
    return isinstance(value, list) and any(isinstance(v, str) and v in PLACEHOLDERS for v in value)


def fill_placeholders(block: BlockInfo, sample: dict[str, Any]) -> dict[str, Any]:
    request = copy.deepcopy(sample)
    for param in block.params:
        container = request if param.location == "root" else request.get("input", {})
        if param.name not in container:
            continue
        value = container[param.name]
        out_of_table = (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and not check_value(param.spec, value, param.path, [])[0]
        )
        if _is_placeholder(value) or out_of_table:
            container[param.name] = example_value(param.spec)
    return request


def set_path(request: dict[str, Any], path: str, value: Any) -> None:
    parts = re.findall(r"[^.\[\]]+|\[\d+\]", path)
    target: Any = request
    for part in parts[:-1]:
        target = target[int(part[1:-1])] if part.startswith("[") else target[part]
    last = parts[-1]
    if last.startswith("["):
        target[int(last[1:-1])] = value
    else:
        target[last] = value


def samples() -> list[tuple[str, ModelInfo, BlockInfo, dict[str, Any]]]:
    cat = get_catalog()
    out = []
    for model in cat.models():
        raw_blocks = cat.data["models"][model.id]["blocks"]
        for block, raw in zip(model.blocks, raw_blocks, strict=True):
            if raw.get("sample") is not None:
                out.append((raw["sample_source"], model, block, raw["sample"]))
    return out


SAMPLES = samples()


def test_every_000_block_has_its_sample() -> None:
    assert len(SAMPLES) == 98
    assert all(source.startswith("000:") for source, *_ in SAMPLES)


@pytest.mark.parametrize(("source", "model", "block", "sample"), SAMPLES, ids=[s[0] for s in SAMPLES])
def test_sample_is_accepted_once_placeholders_are_replaced(
    source: str, model: ModelInfo, block: BlockInfo, sample: dict[str, Any]
) -> None:
    cat = get_catalog()
    request = fill_placeholders(block, sample)
    for fix in FIXES:
        if fix["sample"] == source and not fix.get("in_catalog"):
            set_path(request, fix["path"], fix["use"])
    assert cat.validate(request) == [], request
    assert cat.resolve(request["model"]) is model
    body = cat.encode(request, callback_url="https://hooks.example.com/cb")
    assert body["callBackUrl"] == "https://hooks.example.com/cb"


@pytest.mark.parametrize("fix", FIXES, ids=[f"{f['sample']}-{f['path']}" for f in FIXES])
def test_each_listed_contradiction_is_real(fix: dict[str, Any]) -> None:
    """The documented value breaks the table, so the fix is needed (the list cannot go stale)."""
    cat = get_catalog()
    [(source, model, block, sample)] = [s for s in SAMPLES if s[0] == fix["sample"]]
    assert model.id == fix["model"]
    request = fill_placeholders(block, sample)
    for other in FIXES:
        if other["sample"] == source and other is not fix and not other.get("in_catalog"):
            set_path(request, other["path"], other["use"])
    if fix.get("in_catalog"):
        assert sample["model"] == fix["use"]  # already applied by the build
        request["model"] = fix["documented"]
        assert cat.resolve(request["model"]) is not model
        return
    set_path(request, fix["path"], fix["documented"])
    assert fix["path"] in {p.field for p in cat.validate(request)}


def test_contradicting_samples_are_listed_in_the_decisions_doc() -> None:
    text = (ROOT / "docs" / "catalog-decisions.md").read_text(encoding="utf-8")
    for fix in FIXES:
        assert fix["sample"] in text, fix


def test_placeholder_replacement_only_touches_placeholders() -> None:
    cat: Catalog = get_catalog()
    model = cat.resolve("wan-2-7-video")
    assert model is not None
    block = model.blocks[0]
    sample = {
        "model": "wan-2-7-video",
        "input": {"prompt": "your_value_here", "resolution": "720p", "duration": 10000, "seed": 10000},
    }
    filled = fill_placeholders(block, sample)
    assert filled["input"]["resolution"] == "720p"
    assert filled["input"]["seed"] == 10000
    assert filled["input"]["duration"] == 3
    assert filled["input"]["prompt"] != "your_value_here"
