"""Result media for the sandbox emulator: real, decodable files of the model's kind, made without
network or codecs at runtime.

- image: a 256×256 RGB PNG written with ``zlib`` + ``struct`` (a bilinear gradient between four corner
  colours plus a disc, all derived from a hash of the prompt, so different jobs look different);
- video: one of the H.264 MP4 clips checked in under ``media/`` (2 s, 320×180, 24 fps, ``ftyp`` +
  ``moov`` before ``mdat``), chosen by the prompt hash;
- audio: a mono 16-bit WAV tone whose pitch derives from the text hash (stdlib ``wave``), or the
  checked-in MP3 when the request asks for mp3 (``output_format``/``outputFormat`` containing ``mp3``).

The real provider's outputs are "png / jpg", "mp4" and "wav / mp3" (seeds/000 "Model Catalog", Output
column). The sandbox always answers PNG for images, even when ``output_format`` asks for jpeg.

The checked-in samples were made once with Debian's ffmpeg 5.1 (nothing at runtime needs it)::

    ffmpeg -f lavfi -i testsrc2=size=320x180:rate=24:duration=2 -c:v libx264 -preset veryslow \\
        -crf 30 -pix_fmt yuv420p -movflags +faststart -an sample-testsrc2.mp4
    # likewise: mandelbrot=size=320x180:rate=24 -t 2 (sample-mandelbrot.mp4),
    # gradients=size=320x180:rate=24:speed=0.05:duration=2 (sample-gradients.mp4),
    # cellauto=size=320x180:rate=24:rule=110 -t 2, -crf 32 (sample-cellauto.mp4)
    ffmpeg -f lavfi -i sine=frequency=440:duration=1.5 -c:a libmp3lame -b:a 32k -ac 1 -ar 22050 \\
        sample-tone.mp3
"""

from __future__ import annotations

import hashlib
import io
import math
import struct
import sys
import wave
import zlib
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

IMAGE_SIZE = 256
WAV_SAMPLE_RATE = 22_050
WAV_SECONDS = 1.5

_MEDIA_PACKAGE = "mediagen.sandbox"


@dataclass(frozen=True)
class Media:
    """One result file.

    Attributes:
        data: the file's bytes.
        content_type: its MIME type (``image/png``, ``video/mp4``, ``audio/wav``, ``audio/mpeg``).
        extension: file name extension without the dot (``png``, ``mp4``, ``wav``, ``mp3``).
    """

    data: bytes = field(repr=False)
    content_type: str
    extension: str


def _digest(seed: str) -> bytes:
    return hashlib.sha256(seed.encode("utf-8", "surrogatepass")).digest()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_bytes(seed: str, width: int = IMAGE_SIZE, height: int = IMAGE_SIZE) -> bytes:
    """A ``width``×``height`` 8-bit RGB PNG (no alpha, no interlace, filter 0 on every row) whose
    colours derive from ``sha256(seed)``.

    The same seed always gives the same bytes. Raises ``ValueError`` when a side is below 2 px.
    """
    if width < 2 or height < 2:
        raise ValueError("png side must be at least 2 px")
    h = _digest(seed)
    corners = [tuple(h[i : i + 3]) for i in range(0, 12, 3)]  # top-left, top-right, bottom-left, bottom-right
    disc = (255 - h[12], 255 - h[13], 255 - h[14])
    cx, cy = width * (0.25 + h[15] / 510), height * (0.25 + h[16] / 510)
    radius = min(width, height) * (0.12 + h[17] / 1275)

    raw = bytearray()
    for y in range(height):
        v = y / (height - 1)
        left = [round(a + (b - a) * v) for a, b in zip(corners[0], corners[2], strict=True)]
        right = [round(a + (b - a) * v) for a, b in zip(corners[1], corners[3], strict=True)]
        row = bytearray(3 * width)
        for channel in range(3):
            lo, hi = left[channel], right[channel]
            row[channel::3] = bytes((lo * (width - 1 - x) + hi * x) // (width - 1) for x in range(width))
        dy = y + 0.5 - cy
        if abs(dy) < radius:
            half = math.sqrt(radius * radius - dy * dy)
            x0, x1 = max(0, round(cx - half)), min(width, round(cx + half))
            if x1 > x0:
                row[3 * x0 : 3 * x1] = bytes(disc) * (x1 - x0)
        raw.append(0)  # filter type 0 (None)
        raw += row

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit, colour type 2 (RGB)
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            _png_chunk(b"IHDR", header),
            _png_chunk(b"IDAT", zlib.compress(bytes(raw), 6)),
            _png_chunk(b"IEND", b""),
        )
    )


def wav_bytes(seed: str, seconds: float = WAV_SECONDS, sample_rate: int = WAV_SAMPLE_RATE) -> bytes:
    """A mono 16-bit PCM WAV tone of ``seconds`` at ``sample_rate`` Hz whose pitch (220–880 Hz) derives
    from ``sha256(seed)``; 20 ms fades avoid clicks. The same seed always gives the same bytes."""
    h = _digest(seed)
    frequency = 220 + int.from_bytes(h[:2], "big") % 661
    count = max(1, round(seconds * sample_rate))
    fade = max(1, min(count // 2, sample_rate // 50))
    step = 2 * math.pi * frequency / sample_rate
    samples = array(
        "h",
        (
            round(12_000 * math.sin(step * i) * min(1.0, i / fade, (count - 1 - i) / fade))
            for i in range(count)
        ),
    )
    if sys.byteorder == "big":  # WAV is little-endian
        samples.byteswap()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(samples.tobytes())
    return buffer.getvalue()


@lru_cache(maxsize=1)
def _samples() -> dict[str, bytes]:
    folder = resources.files(_MEDIA_PACKAGE).joinpath("media")
    return {
        entry.name: entry.read_bytes()
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith((".mp4", ".mp3"))
    }


def sample_names(extension: str) -> list[str]:
    """Names of the checked-in samples with ``extension`` (``"mp4"`` or ``"mp3"``), sorted."""
    return [name for name in _samples() if name.endswith("." + extension)]


def mp4_bytes(seed: str) -> bytes:
    """One of the checked-in MP4 clips, chosen by ``sha256(seed)``."""
    names = sample_names("mp4")
    return _samples()[names[int.from_bytes(_digest(seed)[:4], "big") % len(names)]]


def mp3_bytes() -> bytes:
    """The checked-in MP3 sample (1.5 s, 440 Hz, 32 kbit/s mono, with an ID3v2 tag)."""
    return _samples()[sample_names("mp3")[0]]


def wants_mp3(body: Mapping[str, Any]) -> bool:
    """True when the request asks for mp3 output: ``output_format`` or ``outputFormat``, at the root
    or under ``input``, contains ``mp3`` (e.g. ``"mp3_44100_128"``)."""
    places: list[Mapping[str, Any]] = [body]
    if isinstance(body.get("input"), Mapping):
        places.append(body["input"])
    return any(
        isinstance(place.get(key), str) and "mp3" in place[key].lower()
        for place in places
        for key in ("output_format", "outputFormat")
    )


def render_media(modality: str, seed: str, body: Mapping[str, Any]) -> Media:
    """The result file of a job: ``modality`` is ``"image"|"video"|"audio"``, ``seed`` the job's
    prompt/text (what makes outputs differ), ``body`` the generate request body (for the audio format).

    Raises ``ValueError`` for an unknown modality.
    """
    if modality == "image":
        return Media(png_bytes(seed), "image/png", "png")
    if modality == "video":
        return Media(mp4_bytes(seed), "video/mp4", "mp4")
    if modality == "audio":
        if wants_mp3(body):
            return Media(mp3_bytes(), "audio/mpeg", "mp3")
        return Media(wav_bytes(seed), "audio/wav", "wav")
    raise ValueError(f"unknown modality {modality!r}")
