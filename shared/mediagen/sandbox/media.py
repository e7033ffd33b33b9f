"""Result media for the sandbox emulator: real, decodable files of the model's kind, made without
network or codecs at runtime.

- image: a 256×256 RGB PNG written with ``zlib`` + ``struct`` (a bilinear gradient between four corner
  colours plus a disc, all derived from a hash of the prompt, so different jobs look different);
- video: one of the H.264 MP4 clips checked in under ``media/`` (2 s, 320×180, 24 fps, ``ftyp`` +
  ``moov`` before ``mdat``), chosen by the prompt hash;
- audio: a mono 16-bit WAV tone whose pitch derives from the text hash (stdlib ``wave``), or the
  checked-in MP3 when the request asks for mp3 (``output_format``/``outputFormat`` containing ``mp3``).

The real provider's outputs are "png / jpg", "mp4" and "wav / mp3" ("Model Catalog" [000:65-131], Output
column). The sandbox always answers PNG for images, even when ``output_format`` asks for jpeg.

Two variants serve the fault tokens of :mod:`mediagen.sandbox.faults`:

- ``size=BYTES`` (:func:`sized_media`): a file of exactly BYTES bytes, generated while it is streamed
  (:class:`StreamedMedia`; memory stays flat whatever the size): the PNG gets a private ancillary
  ``mgPd`` padding chunk before ``IEND`` (split when longer than a PNG chunk may be), the MP4 a
  top-level ``free`` box after ``mdat`` (64-bit size above 4 GiB), the WAV a ``data`` chunk of the
  right length (16-bit mono PCM, or 8-bit when the data length is odd);
- ``zip`` (:func:`zip_bytes`): a deflated zip of 2-4 distinct files of the job's kind
  (``image_1.png``..., ``video_1.mp4``..., ``audio_1.wav``...), like grok-imagine's results
  ("Status & Download" [002:164-187]: "grok-imagine may return a .zip").

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
import random
import struct
import sys
import wave
import zipfile
import zlib
from array import array
from collections.abc import Callable, Iterator, Mapping
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

    @property
    def length(self) -> int:
        """The file's size in bytes."""
        return len(self.data)

    def chunks(self) -> Iterator[bytes | memoryview]:
        """The file's bytes in one piece (same interface as :meth:`StreamedMedia.chunks`)."""
        yield self.data


@dataclass(frozen=True)
class StreamedMedia:
    """One result file that is generated while it is sent, never held in memory as a whole.

    Attributes:
        length: the file's exact size in bytes (what ``Content-Length`` declares).
        content_type, extension: as for :class:`Media`.
        produce: returns a fresh iterator over the file's pieces; the pieces add up to ``length``.
            Pieces are shared read-only buffers: send them, do not keep them.
    """

    length: int
    content_type: str
    extension: str
    produce: Callable[[], Iterator[bytes | memoryview]] = field(repr=False)

    def chunks(self) -> Iterator[bytes | memoryview]:
        """The file's bytes, piece by piece (at most :data:`FILLER_BLOCK` bytes each, plus headers)."""
        return self.produce()


#: A result file: in memory (small) or generated while streamed (``size=BYTES``).
Result = Media | StreamedMedia


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


def render_media(modality: str, seed: str, body: Mapping[str, Any], *, size: int | None = None,
                 as_zip: bool = False) -> Result:
    """The result file of a job: ``modality`` is ``"image"|"video"|"audio"``, ``seed`` the job's
    prompt/text (what makes outputs differ), ``body`` the generate request body (for the audio format).

    ``as_zip`` gives a zip of several files (:func:`zip_bytes`; ``size`` is then ignored); ``size``
    gives a file of exactly that many bytes (:func:`sized_media`), or the ordinary file when the kind
    cannot be made that size.

    Raises ``ValueError`` for an unknown modality.
    """
    if as_zip:
        return Media(zip_bytes(modality, seed), "application/zip", "zip")
    if size is not None:
        sized = sized_media(modality, seed, size)
        if sized is not None:
            return sized
    if modality == "image":
        return Media(png_bytes(seed), "image/png", "png")
    if modality == "video":
        return Media(mp4_bytes(seed), "video/mp4", "mp4")
    if modality == "audio":
        if wants_mp3(body):
            return Media(mp3_bytes(), "audio/mpeg", "mp3")
        return Media(wav_bytes(seed), "audio/wav", "wav")
    raise ValueError(f"unknown modality {modality!r}")

# ---------------------------------------------------------------------------------------- zip results


#: Fixed member time stamp, so the same job always gives the same zip bytes.
_ZIP_TIME = (2026, 1, 1, 0, 0, 0)


def zip_members(modality: str, seed: str) -> list[tuple[str, bytes]]:
    """The files of a zip result: 2-4 (by ``sha256(seed)``) distinct files of ``modality``'s kind,
    named ``image_1.png``..., ``video_1.mp4``... or ``audio_1.wav``....

    Raises ``ValueError`` for an unknown modality.
    """
    count = 2 + _digest(seed)[20] % 3
    if modality == "image":
        return [(f"image_{i}.png", png_bytes(f"{seed}\n#image_{i}")) for i in range(1, count + 1)]
    if modality == "video":
        names = sample_names("mp4")
        start = int.from_bytes(_digest(seed)[:4], "big")
        count = min(count, len(names))
        return [(f"video_{i}.mp4", _samples()[names[(start + i) % len(names)]]) for i in range(1, count + 1)]
    if modality == "audio":
        return [(f"audio_{i}.wav", wav_bytes(f"{seed}\n#audio_{i}")) for i in range(1, count + 1)]
    raise ValueError(f"unknown modality {modality!r}")


def zip_bytes(modality: str, seed: str) -> bytes:
    """A deflated zip of :func:`zip_members` (fixed time stamps: the same seed gives the same bytes)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in zip_members(modality, seed):
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------- sized results

#: Size of the pre-built filler block that large results repeat (1 MiB: big writes, one allocation).
FILLER_BLOCK = 1 << 20
#: Largest payload of one PNG chunk (PNG spec: length < 2^31).
MAX_PNG_CHUNK = 2**31 - 1
#: The private, ancillary, safe-to-copy PNG chunk type that pads an image to size (decoders skip it).
PNG_PAD_CHUNK = b"mgPd"
_PNG_CHUNK_OVERHEAD = 12  # length + type + CRC
_PNG_IEND = _png_chunk(b"IEND", b"")
_WAV_HEADER = 44
_WAV_MAX = 0xFFFFFFFF + 8  # the RIFF size field is 32-bit


@lru_cache(maxsize=1)
def _filler() -> bytes:
    """1 MiB of fixed pseudo-random bytes (incompressible, like real media), made once."""
    return random.Random(0x6D67).randbytes(FILLER_BLOCK)


def _repeat(block: bytes, count: int) -> Iterator[bytes | memoryview]:
    """``count`` bytes made of ``block`` repeated (the last piece a zero-copy slice)."""
    full, rest = divmod(count, len(block))
    for _ in range(full):
        yield block
    if rest:
        yield memoryview(block)[:rest]


def _in_memory(data: bytes, content_type: str, extension: str) -> StreamedMedia:
    return StreamedMedia(len(data), content_type, extension, lambda: iter((data,)))


def sized_png(seed: str, size: int, max_chunk: int = MAX_PNG_CHUNK) -> StreamedMedia | None:
    """A valid PNG of exactly ``size`` bytes: :func:`png_bytes` (256×256, or 2×2 when that does not
    fit) plus ``mgPd`` padding chunks of at most ``max_chunk`` payload bytes before ``IEND``.

    Returns ``None`` when no such file exists (below about 80 bytes, or a gap under 12 bytes that
    no base image leaves).
    """
    if max_chunk < _PNG_CHUNK_OVERHEAD:
        raise ValueError("max_chunk too small")
    for width in (IMAGE_SIZE, 2):
        base = png_bytes(seed, width, width)
        gap = size - len(base)
        if gap == 0:
            return _in_memory(base, "image/png", "png")
        if gap >= _PNG_CHUNK_OVERHEAD:
            break
    else:
        return None
    head = base[: -len(_PNG_IEND)]

    def produce() -> Iterator[bytes | memoryview]:
        yield head
        remaining = gap
        while remaining:
            payload = min(remaining - _PNG_CHUNK_OVERHEAD, max_chunk)
            left = remaining - _PNG_CHUNK_OVERHEAD - payload
            if 0 < left < _PNG_CHUNK_OVERHEAD:  # leave room for one more whole chunk
                payload -= _PNG_CHUNK_OVERHEAD - left
            yield struct.pack(">I", payload) + PNG_PAD_CHUNK
            crc = zlib.crc32(PNG_PAD_CHUNK)
            for piece in _repeat(_filler(), payload):
                crc = zlib.crc32(piece, crc)
                yield piece
            yield struct.pack(">I", crc)
            remaining -= payload + _PNG_CHUNK_OVERHEAD
        yield _PNG_IEND

    return StreamedMedia(size, "image/png", "png", produce)


def sized_mp4(seed: str, size: int) -> StreamedMedia | None:
    """A valid MP4 of exactly ``size`` bytes: a checked-in clip (chosen by ``sha256(seed)``, else the
    next one that fits) followed by a top-level ``free`` box (ISO/IEC 14496-12; 64-bit ``largesize``
    when the box exceeds 4 GiB - 1), so the top-level boxes add up to the file size.

    Returns ``None`` when ``size`` is below the smallest clip or leaves a gap of 1-7 bytes after
    every clip.
    """
    names = sample_names("mp4")
    start = int.from_bytes(_digest(seed)[:4], "big")
    for offset in range(len(names)):
        clip = _samples()[names[(start + offset) % len(names)]]
        gap = size - len(clip)
        if gap == 0:
            return _in_memory(clip, "video/mp4", "mp4")
        if gap >= 8:
            break
    else:
        return None
    header = struct.pack(">I4s", gap, b"free") if gap <= 0xFFFFFFFF else struct.pack(">I4sQ", 1, b"free", gap)

    def produce() -> Iterator[bytes | memoryview]:
        yield clip
        yield header
        yield from _repeat(_filler(), gap - len(header))

    return StreamedMedia(size, "video/mp4", "mp4", produce)


@lru_cache(maxsize=4)
def _tone_block(period: int, width: int) -> bytes:
    """About :data:`FILLER_BLOCK` bytes of a tone whose period is ``period`` samples, as 16-bit signed
    little-endian (``width`` 2) or 8-bit unsigned (``width`` 1) PCM; whole periods, so it loops."""
    if width == 2:
        one = array("h", (round(12_000 * math.sin(2 * math.pi * i / period)) for i in range(period)))
        if sys.byteorder == "big":
            one.byteswap()
        cycle = one.tobytes()
    else:
        cycle = bytes(128 + round(90 * math.sin(2 * math.pi * i / period)) for i in range(period))
    return cycle * max(1, FILLER_BLOCK // len(cycle))


def sized_wav(seed: str, size: int) -> StreamedMedia | None:
    """A valid mono PCM WAV of exactly ``size`` bytes at :data:`WAV_SAMPLE_RATE` Hz: a 44-byte header
    and a ``data`` chunk of ``size - 44`` bytes holding a looping tone (period 25-100 samples, by
    ``sha256(seed)``); 16-bit when the data length is even, else 8-bit (whose odd chunk ends the file
    without RIFF's pad byte).

    Returns ``None`` below 44 bytes or above 4 GiB + 7 (the RIFF size field is 32-bit).
    """
    if not _WAV_HEADER <= size <= _WAV_MAX:
        return None
    data_length = size - _WAV_HEADER
    width = 2 if data_length % 2 == 0 else 1
    header = b"".join((
        b"RIFF", struct.pack("<I", size - 8), b"WAVE",
        b"fmt ", struct.pack("<IHHIIHH", 16, 1, 1, WAV_SAMPLE_RATE, WAV_SAMPLE_RATE * width, width, 8 * width),
        b"data", struct.pack("<I", data_length),
    ))
    period = 25 + _digest(seed)[0] % 76

    def produce() -> Iterator[bytes | memoryview]:
        yield header
        yield from _repeat(_tone_block(period, width), data_length)

    return StreamedMedia(size, "audio/wav", "wav", produce)


def sized_media(modality: str, seed: str, size: int) -> StreamedMedia | None:
    """The ``size=BYTES`` result of a job: :func:`sized_png`, :func:`sized_mp4` or :func:`sized_wav`
    (audio is always WAV here). ``None`` when the kind cannot be made exactly that size.

    Raises ``ValueError`` for an unknown modality.
    """
    if modality == "image":
        return sized_png(seed, size)
    if modality == "video":
        return sized_mp4(seed, size)
    if modality == "audio":
        return sized_wav(seed, size)
    raise ValueError(f"unknown modality {modality!r}")
