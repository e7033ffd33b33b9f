"""The catalog's CLI subcommands, driven through an ArgumentParser of our own (as mediagen.cli does)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tests.catalog_cli import run, write

VALID = {
    "model": "seedance-v1-pro",
    "imageURLList": '["https://example.com/ref.jpg"]',
    "input": {"prompt": "waves", "resolution": "720p", "duration": 5},
}
INVALID = {
    "model": "seedance-v1-pro",
    "input": {"prompt": "x", "resolution": "4k", "duration": 5, "aspectRatio": "16:9"},
}


def test_models_json_lists_every_entry_with_modality_and_blocks(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["models", "--json"], capsys)
    assert code == 0
    entries = {e["id"]: e for e in json.loads(out)}
    assert len(entries) == 64  # 60 models of 000, 3 legacy, 1 alias
    assert entries["kling-2-5"]["alias_of"] == "kling-video-turbo"
    assert entries["sora-2-turbo"]["legacy"] is True
    assert entries["flux-kontext"]["request_values"] == ["flux-kontext-pro", "flux-kontext-max"]
    nano = entries["nano-banana"]
    assert nano["modality"] == "image"
    assert [b["id"] for b in nano["blocks"]] == ["text-to-image", "edit"]
    assert "input.image_urls" in nano["blocks"][1]["required"]
    assert sum(len(e["blocks"]) for e in entries.values() if "alias_of" not in e) == 101


def test_models_filters_by_modality(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["models", "--modality", "audio"], capsys)
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 6
    assert all(" audio " in line for line in lines)


def test_models_show_prints_blocks_parameters_and_credits(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["models", "show", "seedance-v1-lite"], capsys)
    assert code == 0
    assert "`seedance-v1` -- Seedance V1" in out
    assert "`input.resolution` | yes | string; one of `480p`, `720p`, `1080p`" in out
    assert "| lite | 480p | 5 | 18 | 001:" in out


def test_models_show_unknown_model_suggests(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["models", "show", "nano-bananna"], capsys)
    assert code == 1
    assert "did you mean nano-banana" in err


def test_validate_reports_one_line_per_problem_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = write(tmp_path, "job.json", {"job_id": "j-1", "request": INVALID, "max_credits": 100})
    body = write(tmp_path, "body.json", VALID)
    code, out, _ = run(["validate", job, body], capsys)
    assert code == 1
    lines = out.strip().splitlines()
    assert lines == [
        f"{job}: input.resolution: '4k' is not allowed; allowed: 480p, 720p, 1080p",
        f"{job}: input.aspectRatio: unknown field for seedance-v1-pro; did you mean 'aspect_ratio'?",
        f"{body}: valid (seedance-v1-pro)",
    ]


def test_validate_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["validate", write(tmp_path, "ok.json", {"request": VALID})], capsys)[0] == 0
    code, _, err = run(
        ["validate", write(tmp_path, "bad.json", "{not json"), write(tmp_path, "ok2.json", VALID)], capsys
    )
    assert code == 2
    assert "not valid JSON" in err
    assert run(["validate", str(tmp_path / "missing.json")], capsys)[0] == 2


def test_validate_honours_the_job_flag_for_unknown_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    request = {**VALID, "input": {**VALID["input"], "motion_bucket": 3}}  # type: ignore[dict-item]
    assert run(["validate", write(tmp_path, "a.json", {"request": request})], capsys)[0] == 1
    allowed = write(tmp_path, "b.json", {"request": request, "allow_unknown_fields": True})
    assert run(["validate", allowed], capsys)[0] == 0
    assert run(["validate", "--allow-unknown-fields", write(tmp_path, "c.json", request)], capsys)[0] == 0


def test_validate_reports_job_envelope_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["validate", write(tmp_path, "j.json", {"job_id": "bad id!", "request": VALID})], capsys)
    assert code == 1
    assert ": job_id: " in out


def test_validate_reads_json_lines_manifests(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = write(tmp_path, "m.jsonl", json.dumps({"request": VALID}) + "\n" + json.dumps(INVALID) + "\n")
    code, out, _ = run(["validate", manifest], capsys)
    assert code == 1
    assert f"{manifest}:1: valid" in out
    assert f"{manifest}:2: input.resolution" in out


def test_validate_reads_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(VALID)))
    assert run(["validate", "-"], capsys)[0] == 0


def test_estimate_prints_credits_or_unknown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    priced = write(tmp_path, "p.json", VALID)
    unpriced = write(tmp_path, "u.json", {"model": "gpt-image-2", "input": {"prompt": "x"}})
    code, out, _ = run(["estimate", priced, unpriced], capsys)
    assert code == 0
    assert f"{priced}: 81 credits" in out
    assert f"{unpriced}: unknown" in out
    code, out, _ = run(["estimate", "--json", priced, write(tmp_path, "i.json", INVALID)], capsys)
    assert code == 1
    results = json.loads(out)
    assert results[0] == {"file": priced, "provider": "cliprise", "credits": 81, "upper_bound": 81,
                          "source": "pricing", "valid": True}
    assert results[1]["valid"] is False


def test_schema_is_a_json_schema_with_one_branch_per_block(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["schema", "nano-banana"], capsys)
    assert code == 0
    schema = json.loads(out)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert [b["title"] for b in schema["oneOf"]] == ["text-to-image", "edit"]
    edit = schema["oneOf"][1]
    assert edit["properties"]["input"]["required"] == ["prompt", "image_urls"]
    assert edit["properties"]["input"]["properties"]["image_urls"]["maxItems"] == 10
    assert edit["additionalProperties"] is False


def test_schema_accepts_the_documented_json_strings(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(["schema", "flux-kontext-pro"], capsys)
    schema = json.loads(out)
    branch = schema["oneOf"][0]
    assert "input" not in branch["properties"]  # root-only
    options = branch["properties"]["options"]["anyOf"]
    assert {"type": "string", "contentMediaType": "application/json"}.items() <= options[1].items()
