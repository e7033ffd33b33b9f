"""`mediagen demo` end to end: every sample job SUCCEEDED and every file in the output folder opens as the
media type it claims."""

from __future__ import annotations

import io
import json
import struct
import wave
import zlib
from pathlib import Path

import pytest

from mediagen.local.runner import demo, sample_job_files


def decode_png(data: bytes) -> tuple[int, int]:
    """Walk the chunks, check CRCs, inflate IDAT and check the scanline count; return (width, height)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert header is not None
    width, height, depth, colour = header[:4]
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    raw = zlib.decompress(idat)
    assert len(raw) == height * (1 + width * channels * depth // 8)
    return width, height


def mp4_boxes(data: bytes) -> list[bytes]:
    boxes, pos = [], 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if size == 1:
            (size,) = struct.unpack(">Q", data[pos + 8:pos + 16])
        assert size >= 8, "corrupt box size"
        boxes.append(kind)
        pos += size
    assert pos == len(data), "boxes do not add up to the file size"
    return boxes


def check_media(path: Path, content_type: str) -> None:
    data = path.read_bytes()
    if content_type == "image/png":
        assert decode_png(data)[0] > 0
    elif content_type == "video/mp4":
        boxes = mp4_boxes(data)
        assert boxes[0] == b"ftyp" and b"moov" in boxes and b"mdat" in boxes
    elif content_type == "audio/wav":
        with wave.open(io.BytesIO(data)) as w:
            assert w.getnframes() > 0 and w.getframerate() > 0
    elif content_type == "audio/mpeg":
        assert data[:3] == b"ID3" or (data[0] == 0xFF and data[1] & 0xE0 == 0xE0)
    else:
        pytest.fail(f"unexpected content type {content_type} for {path}")


def test_demo_runs_every_sample_job_to_succeeded_and_the_files_open(tmp_path: Path,
                                                                      synthesized_template: Path) -> None:
    out = io.StringIO()
    code = demo(job_files=None, output_dir=tmp_path / "demo-output", processing_seconds=0.5,
                template_path=synthesized_template, out=out)
    printed = out.getvalue()
    assert code == 0, printed
    assert "all jobs SUCCEEDED" in printed and "JOB" in printed and "S3 KEY" in printed
    manifests = sorted((tmp_path / "demo-output").glob("*/result.json"))
    samples = sample_job_files()
    assert len(manifests) == len(samples) == 8  # Cliprise, Clipia (several outputs, video) and a fallback job
    kinds = set()
    for manifest_path in manifests:
        manifest = json.loads(manifest_path.read_text())
        assert manifest["status"] == "SUCCEEDED"
        for output in manifest["outputs"]:
            local = manifest_path.parent / Path(output["key"]).name
            assert local.stat().st_size == output["bytes"]
            check_media(local, output["content_type"])
            kinds.add(output["content_type"].split("/")[0])
            assert Path(output["key"]).name in printed
    assert kinds == {"image", "video", "audio"}
    assert len(json.loads((tmp_path / "demo-output" / "events.json").read_text())) == 8
    delivered = {json.loads(p.read_text())["job_id"]: json.loads(p.read_text())["provider"] for p in manifests}
    assert delivered["demo-clipia-nano-banana-2"] == delivered["demo-fallback-to-clipia"] == "clipia"
    assert delivered["demo-nano-banana-t2i"] == "cliprise"
