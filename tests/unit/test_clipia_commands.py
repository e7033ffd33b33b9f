"""The catalog commands for Clipia jobs (``"provider": "clipia"``), ``models sync`` against the Clipia
emulator, and ``mediagen emulator --provider clipia``."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mediagen.catalog.clipia import load_clipia_catalog
from mediagen.catalog.clipia_sync import SyncError, fetch_models, sync_snapshot
from mediagen.cli import build_parser
from mediagen.sandbox.clipia import ClipiaEmulator
from tests.catalog_cli import run, write

KEY = "clipia_live_cli_key"
VALID = {"provider": "clipia", "job_id": "j-1",
         "request": {"model": "nano-banana-2", "input": {"prompt": "a cat", "num_images": 2}}}
INVALID = {"provider": "clipia",
           "request": {"model": "nano-banana-2", "input": {"prompt": "a cat", "resolution": "8K"}}}
CLIPRISE = {"model": "seedance-v1-pro", "imageURLList": '["https://example.com/ref.jpg"]',
            "input": {"prompt": "waves", "resolution": "720p", "duration": 5}}


@pytest.fixture
def emu() -> Iterator[ClipiaEmulator]:
    with ClipiaEmulator(api_keys=[KEY], processing_seconds=0.1) as emulator:
        yield emulator


def test_models_lists_the_clipia_snapshot(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["models", "--provider", "clipia"], capsys)
    assert code == 0
    assert "nano-banana-2" in out and "seedance-2-fast-i2v" in out
    assert "snapshot hand-built" in out and "models sync --provider clipia" in out
    code, out, _ = run(["models", "--provider", "clipia", "--modality", "video", "--json"], capsys)
    entries = json.loads(out)
    assert [e["slug"] for e in entries] == ["seedance-2-fast-i2v"]
    assert entries[0]["required"] == ["prompt", "image_url"]


def test_models_show_and_schema_for_a_clipia_slug(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["models", "show", "nano-banana-2", "--provider", "clipia"], capsys)
    assert code == 0
    assert "input.prompt: string, required" in out and "source: [004:111-115]" in out
    code, out, _ = run(["schema", "nano-banana-2", "--provider", "clipia"], capsys)
    schema = json.loads(out)
    assert schema["properties"]["input"]["properties"]["resolution"]["enum"] == ["1K", "2K", "4K"]
    code, _, err = run(["schema", "nano-banana", "--provider", "clipia"], capsys)
    assert code == 1 and "did you mean nano-banana-2" in err


def test_validate_reads_the_provider_of_each_job(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = "\n".join(json.dumps(d) for d in (VALID, INVALID, CLIPRISE, {**CLIPRISE, "provider": "cliprise"}))
    code, out, _ = run(["validate", write(tmp_path, "jobs.jsonl", lines)], capsys)
    assert code == 1
    assert out.splitlines() == [
        f"{tmp_path}/jobs.jsonl:1: valid (clipia: nano-banana-2)",
        f"{tmp_path}/jobs.jsonl:2: input.resolution: '8K' is not allowed; allowed: 1K, 2K, 4K",
        f"{tmp_path}/jobs.jsonl:3: valid (seedance-v1-pro)",
        f"{tmp_path}/jobs.jsonl:4: valid (seedance-v1-pro)",
    ]


def test_a_clipia_request_checked_by_the_cliprise_catalog_fails_and_an_unknown_provider_is_named(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["validate", write(tmp_path, "a.json", VALID["request"])], capsys)
    # no provider field: the Cliprise catalog judges it (Cliprise has a nano-banana-2 too, without num_images)
    assert code == 1 and "input.num_images: unknown field for nano-banana-2; known fields in input" in out
    code, out, _ = run(["validate", write(tmp_path, "b.json", {**VALID, "provider": "acme"})], capsys)
    assert code == 1 and 'provider: "acme" is not allowed; allowed: cliprise, clipia' in out


def test_estimate_gives_credits_and_the_upper_bound(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    open_ended = {"provider": "clipia", "request": {"model": "nano-banana-2", "input": {"prompt": "x"}}}
    files = [write(tmp_path, "a.json", VALID), write(tmp_path, "b.json", open_ended), write(tmp_path, "c.json", INVALID)]
    code, out, _ = run(["estimate", *files], capsys)
    assert code == 1
    assert out.splitlines() == [
        f"{files[0]}: 24 credits (at most 48)",
        f"{files[1]}: 12 credits (at most 96)",
        f"{files[2]}: invalid: input.resolution: '8K' is not allowed; allowed: 1K, 2K, 4K",
    ]
    code, out, _ = run(["estimate", "--json", files[0]], capsys)
    assert json.loads(out)[0] | {"file": None} == {"file": None, "provider": "clipia", "credits": 24,
                                                    "upper_bound": 48, "source": "pricing", "valid": True}


def test_estimate_remote_asks_the_api(tmp_path: Path, capsys: pytest.CaptureFixture[str], emu: ClipiaEmulator,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIPIA_API_KEY", KEY)
    monkeypatch.setenv("MEDIAGEN_CLIPIA_BASE_URL", emu.base_url)
    code, out, _ = run(["estimate", "--remote", write(tmp_path, "a.json", VALID)], capsys)
    assert code == 0 and out.strip().endswith("24 credits (at most 48) [POST /estimate]")
    assert any(r["path"] == "/v1/models/nano-banana-2/estimate" for r in emu.requests())


def test_models_sync_refreshes_the_snapshot_from_the_api(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         emu: ClipiaEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIPIA_API_KEY", KEY)
    monkeypatch.setenv("MEDIAGEN_CLIPIA_BASE_URL", emu.base_url)
    target = tmp_path / "clipia_models.json"
    code, out, _ = run(["models", "sync", "--provider", "clipia", "--output", str(target)], capsys)
    assert code == 0 and "synced 2 Clipia model(s)" in out
    written = json.loads(target.read_text())
    assert written["data"] == [dict(m.raw) for m in emu.catalog.models()]
    provenance = written["provenance"]
    assert provenance["kind"] == "synced" and provenance["source"] == f"GET {emu.base_url}/v1/models"
    assert provenance["fetched_at"].endswith("Z") and sorted(provenance["entries"]) == sorted(
        e["slug"] for e in written["data"])
    assert load_clipia_catalog(target.read_text()).resolve("nano-banana-2") is not None
    assert KEY not in target.read_text()


def test_sync_refuses_without_a_key_or_with_a_wrong_one_and_never_shows_it(
        emu: ClipiaEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLIPIA_API_KEY", raising=False)
    with pytest.raises(SyncError, match="CLIPIA_API_KEY is not set"):
        fetch_models(base_url=emu.base_url)
    with pytest.raises(SyncError) as raised:
        fetch_models(base_url=emu.base_url, api_key="clipia_live_wrong_secret")
    assert "HTTP 401 (invalid_api_key" in raised.value.message
    assert "clipia_live_wrong_secret" not in raised.value.message


def test_sync_writes_nothing_when_the_answer_does_not_load(tmp_path: Path) -> None:
    bad = json.dumps({"data": [{"slug": "x", "type": "image", "input_schema": {"prompt": "string"}}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 -- stdlib name
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(bad)))
            self.end_headers()
            self.wfile.write(bad)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    target = tmp_path / "clipia_models.json"
    target.write_text("{}")
    try:
        with pytest.raises(SyncError, match="not a usable model list"):
            sync_snapshot(target, base_url=f"http://127.0.0.1:{server.server_address[1]}", api_key=KEY)
    finally:
        server.shutdown()
        server.server_close()
    assert target.read_text() == "{}"


def test_emulator_command_takes_the_clipia_provider() -> None:
    args = build_parser().parse_args(["emulator", "--provider", "clipia", "--port", "0", "--fault", "webhook-early=0.5",
                                      "--webhook-secret", "whsec_x"])
    assert (args.provider, args.webhook_secret, args.fault) == ("clipia", "whsec_x", ["webhook-early=0.5"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["emulator", "--provider", "acme"])
