"""The catalog data, its sources and the generated reference stay consistent.

- docs/models.md and the generated part of docs/catalog-decisions.md match the catalog (regenerated in
  memory and compared); regenerate with ``python -m mediagen.catalog.reference --write docs``.
- Every fact cites ``document:line``; when the seeds are present, each cited line exists, a parameter's
  own citation names the parameter, and the checked-in catalog.json is what the build script produces.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mediagen.catalog import get_catalog
from mediagen.catalog.reference import BEGIN_GENERATED, END_GENERATED, render_decisions_md, render_models_md

ROOT = Path(__file__).resolve().parents[2]
#: The provider documents (docs/sources.md) are not in the repository: $MEDIAGEN_PROVIDER_DOCUMENTS names their
#: folder (else a ``seeds`` folder beside the checkout, as on the team's machines); without them the tests that
#: check citations against the documents are skipped.
SEEDS = next((p for p in (Path(os.environ.get("MEDIAGEN_PROVIDER_DOCUMENTS") or "/nonexistent"),
                          ROOT.parent / "shared" / "seeds") if p.is_dir()), None)
SEED_FILES = {
    "000": "000_8a8658d944144cf2.txt",
    "001": "001_bf6a934d14270a31.txt",
    "002": "002_fb39d99173eef484.txt",
    "003": "003_76bad6fbd927d39b.txt",
}
CITATION = re.compile(r"^(00[0-3]):(\d+)$")
needs_seeds = pytest.mark.skipif(SEEDS is None, reason="the provider documents are not present "
                                 "(set MEDIAGEN_PROVIDER_DOCUMENTS; docs/sources.md)")


def test_models_md_is_in_sync() -> None:
    expected = render_models_md(get_catalog())
    assert (ROOT / "docs" / "models.md").read_text(encoding="utf-8") == expected, (
        "docs/models.md is stale: run `python -m mediagen.catalog.reference --write docs`"
    )


def test_models_md_covers_every_model_and_block() -> None:
    text = (ROOT / "docs" / "models.md").read_text(encoding="utf-8")
    for model in get_catalog().models():
        assert f"`{model.id}` -- {model.name}" in text
        for block in model.blocks:
            assert f"Block `{block.id}`" in text


def test_decisions_md_generated_part_is_in_sync() -> None:
    text = (ROOT / "docs" / "catalog-decisions.md").read_text(encoding="utf-8")
    start, end = text.index(BEGIN_GENERATED), text.index(END_GENERATED) + len(END_GENERATED) + 1
    assert text[start:end] == render_decisions_md(get_catalog()), (
        "docs/catalog-decisions.md is stale: run `python -m mediagen.catalog.reference --write docs`"
    )


def _citations(node: Any) -> list[str]:
    """Every ``doc:line`` in a catalog (sub)tree's ``source``/``sources`` values."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("source", "sample_source") and isinstance(value, str):
                found.extend(value.split("+"))
            elif key == "source" and isinstance(value, dict):
                for cited in value.values():
                    found.extend(cited.split("+"))
            elif key == "sources":
                for cited in value:
                    found.extend(cited.split("+"))
            else:
                found.extend(_citations(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_citations(item))
    return found


def test_every_parameter_cites_its_sources() -> None:
    data = get_catalog().data
    for model_id, model in data["models"].items():
        assert CITATION.match(model["source"]), model_id
        for block in model["blocks"]:
            for param in block["params"] + model.get("common_params", []):
                assert {"param", "type"} <= set(param["source"]), (model_id, param["name"])
                for fact in ("enum", "max_length", "max_items"):
                    if fact in param:
                        assert fact in param["source"], (model_id, param["name"], fact)
                if "minimum" in param or "maximum" in param:
                    assert "range" in param["source"], (model_id, param["name"])
        for row in (model.get("pricing") or {}).get("rows", []):
            assert CITATION.match(row["source"]), (model_id, row)
    citations = _citations(data["models"])
    assert citations and all(CITATION.match(c) for c in citations), [c for c in citations if not CITATION.match(c)]


@needs_seeds
def test_cited_lines_exist_and_parameter_rows_name_their_parameter() -> None:
    assert SEEDS is not None
    lines = {doc: (SEEDS / name).read_text(encoding="utf-8").split("\n") for doc, name in SEED_FILES.items()}
    data = get_catalog().data
    for citation in _citations(data["models"]):
        doc, number = CITATION.match(citation).groups()  # type: ignore[union-attr]
        assert 1 <= int(number) <= len(lines[doc]), citation
    for model_id, model in data["models"].items():
        for block in model["blocks"]:
            for param in block["params"]:
                doc, number = param["source"]["param"].split(":")
                assert param["name"] in lines[doc][int(number) - 1], (
                    model_id,
                    param["name"],
                    param["source"],
                )


@needs_seeds
def test_checked_in_catalog_is_what_the_build_produces() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "catalog" / "build_catalog.py"), "--check", "--documents", str(SEEDS)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_catalog_json_is_one_loadable_document() -> None:
    text = (ROOT / "shared" / "mediagen" / "catalog" / "catalog.json").read_text(encoding="utf-8")
    data = json.loads(text)
    assert data["format"] == 1
    assert len(data["models"]) == 63
