"""Output storage: stream a result into S3 with bounded memory, count and checksum every byte.

Layout (docs/architecture.md, "The contracts": outputs): ``s3://<bucket>/<prefix><job_id>/<file>`` for each result file
with its real content type, plus ``result.json``, a small manifest.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from functools import partial
from typing import IO, Any, Protocol

from mediagen.errors import StorageError

#: Extensions for the content types we detect (used to name the stored file).
EXTENSIONS: dict[str, str] = {
    "image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp",
    "video/mp4": "mp4", "video/quicktime": "mov", "video/webm": "webm",
    "audio/mpeg": "mp3", "audio/wav": "wav", "audio/ogg": "ogg", "audio/flac": "flac", "audio/mp4": "m4a",
    "application/zip": "zip", "application/json": "json", "text/plain": "txt",
    "application/octet-stream": "bin",
}


def sniff_content_type(head: bytes, declared: str | None = None) -> str:
    """The real content type of a file from its first bytes (magic numbers); ``declared`` (an HTTP
    ``Content-Type``) is used only when the bytes say nothing, and ``application/octet-stream`` last.

    Args:
        head: at least the first 16 bytes of the file (more is fine).
    """
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand == b"qt  ":
            return "video/quicktime"
        if brand in (b"M4A ", b"M4B "):
            return "audio/mp4"
        return "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head.startswith(b"PK\x03\x04"):
        return "application/zip"
    if declared:
        base = declared.split(";")[0].strip().lower()
        if base and base != "application/octet-stream":
            return base
    return "application/octet-stream"


@dataclass(frozen=True)
class StoredObject:
    """One object written to S3. ``bytes`` is the size; ``sha256`` the lowercase hex digest."""

    uri: str
    key: str
    bytes: int
    content_type: str
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _HashingReader(io.RawIOBase):
    """A read-only file over an iterator of chunks, hashing and counting what is read.

    Memory held: one chunk at a time (boto3's transfer manager holds ``multipart_chunksize`` x
    ``max_concurrency`` on top).
    """

    def __init__(self, first: bytes, rest: Iterator[bytes], tee: IO[bytes] | None = None) -> None:
        self._buffer = memoryview(first)
        self._rest = rest
        self._tee = tee
        self.sha256 = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = memoryview(next(self._rest))
            except StopIteration:
                return 0
        n = min(len(target), len(self._buffer))
        target[:n] = self._buffer[:n]
        self.sha256.update(self._buffer[:n])
        if self._tee is not None:
            self._tee.write(self._buffer[:n])
        self._buffer = self._buffer[n:]
        self.count += n
        return n


class OutputStore(Protocol):
    """Port for result storage."""

    def put_stream(self, key_stem: str, chunks: Iterable[bytes], *, declared_type: str | None = None,
                   expected_bytes: int | None = None, tee: IO[bytes] | None = None,
                   extension: str | None = None) -> StoredObject: ...

    def put_json(self, key: str, document: dict[str, Any]) -> StoredObject: ...

    def presigned_url(self, key: str, expires_seconds: int) -> str: ...

    def size(self, key: str) -> int: ...

    def read_range(self, key: str, start: int, end: int) -> bytes: ...


class S3OutputStore:
    """``OutputStore`` on an S3 bucket; multipart upload through boto3's transfer manager.

    Args:
        bucket: the outputs bucket.
        s3_client: injectable ``boto3.client("s3")``.
        part_size: multipart part size in bytes (default 8 MiB). Peak memory is about
            ``part_size * max_concurrency``.
    """

    def __init__(self, bucket: str, s3_client: Any | None = None, *, part_size: int = 8 * 1024 * 1024,
                 max_concurrency: int = 3) -> None:
        if s3_client is None:
            from mediagen import aws

            s3_client = aws.client("s3")
        self.bucket = bucket
        self._s3 = s3_client
        self._part_size = part_size
        self._max_concurrency = max_concurrency

    def put_stream(self, key_stem: str, chunks: Iterable[bytes], *, declared_type: str | None = None,
                   expected_bytes: int | None = None, tee: IO[bytes] | None = None,
                   extension: str | None = None) -> StoredObject:
        """Stream ``chunks`` to ``s3://bucket/<key_stem>.<ext>``; the content type (and so the extension,
        unless ``extension`` is given) is detected from the first bytes.

        Args:
            tee: a file that also receives every byte (used to unpack zip results from local disk).

        Raises:
            StorageError: the stream ended before ``expected_bytes`` (or held more); the partial object is
                deleted, so nothing truncated is left behind.
        """
        from boto3.s3.transfer import TransferConfig

        iterator = iter(chunks)
        head = b""
        for chunk in iterator:  # the type needs a few bytes; empty chunks are skipped
            head += chunk
            if len(head) >= 64:
                break
        content_type = sniff_content_type(head, declared_type)
        key = f"{key_stem}.{extension or EXTENSIONS.get(content_type, 'bin')}"
        reader = _HashingReader(head, iterator, tee)
        # boto3 keeps up to max_in_memory_upload_chunks parts read ahead (10 by default: 80 MiB at 8 MiB parts);
        # holding as many as are being uploaded bounds memory at about part_size x max_concurrency.
        config = TransferConfig(multipart_threshold=self._part_size, multipart_chunksize=self._part_size,
                                max_concurrency=self._max_concurrency)
        config.max_in_memory_upload_chunks = self._max_concurrency  # s3transfer's setting; boto3 does not expose it
        self._s3.upload_fileobj(io.BufferedReader(reader, buffer_size=1024 * 1024), self.bucket, key,
                                ExtraArgs={"ContentType": content_type}, Config=config)
        if expected_bytes is not None and reader.count != expected_bytes:
            self._s3.delete_object(Bucket=self.bucket, Key=key)
            raise StorageError(
                f"download incomplete: received {reader.count} of {expected_bytes} bytes", code="download_incomplete"
            )
        digest = reader.sha256.hexdigest()
        self._s3.put_object_tagging(Bucket=self.bucket, Key=key,
                                    Tagging={"TagSet": [{"Key": "sha256", "Value": digest}]})
        return StoredObject(uri=f"s3://{self.bucket}/{key}", key=key, bytes=reader.count,
                            content_type=content_type, sha256=digest)

    def presigned_url(self, key: str, expires_seconds: int) -> str:
        """A presigned GET URL for ``key``, valid ``expires_seconds`` (needs ``s3:GetObject`` on it)."""
        return str(self._s3.generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": key},
                                                   ExpiresIn=expires_seconds))

    def size(self, key: str) -> int:
        """The size of the stored object ``key``, in bytes (``HeadObject``)."""
        return int(self._s3.head_object(Bucket=self.bucket, Key=key)["ContentLength"])

    def read_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes ``start`` (inclusive) to ``end`` (exclusive) of the stored object ``key`` (one ranged
        ``GetObject``); fewer when the object ends first."""
        if end <= start:
            return b""
        body = self._s3.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end - 1}")["Body"]
        return bytes(body.read())

    def put_json(self, key: str, document: dict[str, Any]) -> StoredObject:
        """Write a small JSON document (the ``result.json`` manifest)."""
        body = json.dumps(document, indent=2, sort_keys=True).encode()
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json")
        return StoredObject(uri=f"s3://{self.bucket}/{key}", key=key, bytes=len(body),
                            content_type="application/json", sha256=hashlib.sha256(body).hexdigest())


#: Limits for unpacking a zip result (a hostile or broken archive must not exhaust the function).
ZIP_MAX_MEMBERS = 1000
ZIP_MAX_TOTAL_BYTES = 8 * 1024 * 1024 * 1024
#: Largest accepted expansion of one member (uncompressed size / compressed size): a zip bomb's members
#: expand thousands of times; media files barely compress at all.
ZIP_MAX_RATIO = 100.0
#: Read-ahead of :class:`StoredObjectReader`: one ranged GET fetches at least this many bytes.
RANGE_BLOCK_BYTES = 1024 * 1024


class ZipRefused(StorageError):
    """A zip result mediagen will not unpack: too many members, too large in total, or a member that expands
    more than :data:`ZIP_MAX_RATIO` times. The message names the member (when one is to blame) and the limit."""

    code = "zip_refused"


@dataclass(frozen=True)
class ZipLimits:
    """Limits applied by :func:`unpack_zip`.

    Attributes:
        max_members: most files in one archive.
        max_total_bytes: most uncompressed bytes of all members together (``MEDIAGEN_ZIP_MAX_TOTAL_BYTES``).
        max_ratio: most a member may expand (uncompressed / compressed size).
    """

    max_members: int = ZIP_MAX_MEMBERS
    max_total_bytes: int = ZIP_MAX_TOTAL_BYTES
    max_ratio: float = ZIP_MAX_RATIO

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ZipLimits:
        """The defaults, with ``MEDIAGEN_ZIP_MAX_TOTAL_BYTES`` (a positive integer, bytes) when set.

        Raises:
            ConfigurationError: the variable is set but not a positive integer.
        """
        import os

        from mediagen.errors import ConfigurationError

        raw = (os.environ if environ is None else environ).get("MEDIAGEN_ZIP_MAX_TOTAL_BYTES", "").strip()
        if not raw:
            return cls()
        if not raw.isdigit() or int(raw) <= 0:
            raise ConfigurationError(f"MEDIAGEN_ZIP_MAX_TOTAL_BYTES must be a positive number of bytes, got {raw!r}")
        return cls(max_total_bytes=int(raw))


class StoredObjectReader(io.RawIOBase):
    """A read-only, seekable file over a stored object, read with ranged GETs (``OutputStore.read_range``).

    ``zipfile`` needs to seek (its central directory is at the end), so this lets a zip result be unpacked
    straight from the bucket, without staging the archive on local disk. Each GET fetches at least
    ``block`` bytes; the last block is kept, so the many small reads of zip headers cost one GET each
    block, not one each read.
    """

    def __init__(self, store: OutputStore, key: str, *, block: int = RANGE_BLOCK_BYTES) -> None:
        self._store = store
        self._key = key
        self._size = store.size(key)
        self._pos = 0
        self._block = block
        self._cached_at = 0
        self._cached = b""
        #: ranged GETs made so far (observability and tests)
        self.requests = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, target: Any) -> int:
        want = min(len(target), max(0, self._size - self._pos))
        if want == 0:
            return 0
        offset = self._pos - self._cached_at
        if not 0 <= offset < len(self._cached):
            self._cached_at = self._pos
            self._cached = self._store.read_range(self._key, self._pos, min(self._size, self._pos + max(want,
                                                                                                        self._block)))
            self.requests += 1
            offset = 0
        n = min(want, len(self._cached) - offset)
        if n <= 0:
            return 0
        target[:n] = self._cached[offset:offset + n]
        self._pos += n
        return n


def unpack_zip_from_store(store: OutputStore, zip_key: str, dest_prefix: str,
                          limits: ZipLimits | None = None) -> list[StoredObject]:
    """Unpack the zip already stored at ``zip_key`` into ``dest_prefix`` (see :func:`unpack_zip`), reading
    it back with ranged GETs: no copy of the archive on local disk, memory about one
    :data:`RANGE_BLOCK_BYTES` block plus the upload parts.

    Raises:
        ZipRefused: over a limit (see :class:`ZipLimits`).
        StorageError: not a readable zip.
    """
    reader = io.BufferedReader(StoredObjectReader(store, zip_key), buffer_size=64 * 1024)
    return unpack_zip(store, reader, dest_prefix, limits)


def unpack_zip(store: OutputStore, archive: IO[bytes], key_prefix: str,
               limits: ZipLimits | None = None) -> list[StoredObject]:
    """Store every file of a zip archive as its own object under ``key_prefix`` (content type sniffed,
    SHA-256 computed), streaming each member. Directory entries are skipped and member names are reduced
    to safe base names (no ``..``, no absolute paths).

    Every stored name is unique, compared case-insensitively *after* the extension is settled: a member
    without one gets the extension of its sniffed type first, so ``photo`` (a PNG) and ``photo.png`` land
    as ``photo.png`` and ``photo-2.png`` -- numbered in archive order, so the same zip always gives the same
    names.

    Raises:
        ZipRefused: more than ``limits.max_members`` members, more than ``limits.max_total_bytes``
            uncompressed in total, or a member expanding more than ``limits.max_ratio`` times; nothing is
            stored.
        StorageError: not a zip, or a member that cannot be read (``bad_zip``; members before it may be stored).
    """
    import zipfile
    import zlib

    limits = limits or ZipLimits()
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        raise StorageError(f"the result claims to be a zip but is not readable: {exc}", code="bad_zip") from exc
    members = [m for m in zf.infolist() if not m.is_dir()]
    _check_zip_limits(members, limits)
    try:
        return _store_members(store, zf, members, key_prefix)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:  # a damaged or exotic member
        raise StorageError(f"the zip result has a member that cannot be read: {type(exc).__name__}: {exc}",
                           code="bad_zip") from exc


def _store_members(store: OutputStore, zf: Any, members: list[Any], key_prefix: str) -> list[StoredObject]:
    import posixpath
    import re

    stored: list[StoredObject] = []
    used: set[str] = set()
    for member in members:
        name = re.sub(r"[^A-Za-z0-9._-]", "_", posixpath.basename(member.filename.replace("\\", "/"))) or "file"
        stem, ext = _split_name(name)
        with zf.open(member) as fh:
            head = fh.read(64)
            ext = ext or EXTENSIONS.get(sniff_content_type(head), "bin")
            candidate, n = f"{stem}.{ext}", 1
            while candidate.lower() in used:
                n += 1
                candidate = f"{stem}-{n}.{ext}"
            used.add(candidate.lower())
            chunks: Iterator[bytes] = iter(partial(fh.read, 1024 * 1024), b"")
            stored.append(store.put_stream(key_prefix + candidate[: -len(ext) - 1], _prepend(head, chunks),
                                           expected_bytes=member.file_size, extension=ext))
    return stored


def _check_zip_limits(members: list[Any], limits: ZipLimits) -> None:
    if len(members) > limits.max_members:
        raise ZipRefused(f"the zip result has {len(members)} files; the limit is {limits.max_members} (max_members)")
    total = sum(m.file_size for m in members)
    if total > limits.max_total_bytes:
        raise ZipRefused(f"the zip result expands to {total} bytes; the limit is {limits.max_total_bytes} bytes "
                         "(MEDIAGEN_ZIP_MAX_TOTAL_BYTES)")
    for m in members:
        ratio = m.file_size / max(m.compress_size, 1)
        if m.file_size > 0 and ratio > limits.max_ratio:
            raise ZipRefused(f"zip member {m.filename[:200]!r} expands {ratio:.0f}:1 ({m.compress_size} -> "
                             f"{m.file_size} bytes); the limit is {limits.max_ratio:.0f}:1")


def _split_name(name: str) -> tuple[str, str]:
    """``(stem, extension)``: ``photo.png`` -> ``(photo, png)``; ``photo`` and ``.hidden`` have none."""
    if "." in name.lstrip("."):
        stem, _, ext = name.rpartition(".")
        if stem and ext:
            return stem, ext
    return name.rstrip(".") or "file", ""


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest
