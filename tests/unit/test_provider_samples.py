"""The Clipia and fallback sample jobs in events/jobs/ are valid for the provider each entry names, within their
``max_credits`` at their dearest, and the fallback's first entry is one the Cliprise emulator refuses with
nothing spent (``[sandbox:no-credits]``) while the fallback carries no sandbox token."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mediagen.catalog import catalog_for

JOBS = Path(__file__).resolve().parents[2] / "events" / "jobs"


def _entries(job: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    first = (job.get("provider") or "cliprise", job["request"])
    return [first] + [(f["provider"], f["request"]) for f in job.get("fallbacks", [])]


PROVIDER_JOBS = sorted(p for p in JOBS.glob("*.json") if "provider" in json.loads(p.read_text()))


def test_there_are_clipia_image_video_and_fallback_samples() -> None:
    jobs = [json.loads(p.read_text()) for p in PROVIDER_JOBS]
    clipia_models = {j["request"]["model"] for j in jobs if j["provider"] == "clipia"}
    assert {"nano-banana-2", "seedance-2-fast-i2v"} <= clipia_models
    assert any(j["provider"] == "cliprise" and j["fallbacks"][0]["provider"] == "clipia" for j in jobs)


@pytest.mark.parametrize("path", PROVIDER_JOBS, ids=lambda p: p.name)
def test_every_entry_is_valid_and_affordable_at_its_provider(path: Path) -> None:
    job = json.loads(path.read_text())
    for provider, request in _entries(job):
        catalog = catalog_for(provider)
        assert catalog.validate(request) == [], (provider, request)
        bound = catalog.upper_bound(request)
        assert bound is not None and bound <= job["max_credits"], (provider, bound)


def test_the_fallback_sample_is_refused_by_cliprise_and_not_by_clipia() -> None:
    job = json.loads((JOBS / "08-fallback-cliprise-to-clipia.json").read_text())
    (first, first_request), (second, second_request) = _entries(job)
    assert (first, second) == ("cliprise", "clipia")
    assert "[sandbox:no-credits]" in first_request["input"]["prompt"]
    assert "[sandbox:" not in json.dumps(second_request)
