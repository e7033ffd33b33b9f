"""Output storage: stream a result into S3 with bounded memory, count and checksum every byte.

Layout (DESIGN.md "Contracts" -> Outputs): ``s3://<bucket>/<prefix><job_id>/<file>`` for each result file
with its real content type, plus ``result.json``, a small manifest.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable, Iterator
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

    def put_json(self, key: str, document: dict[str, Any]) -> StoredObject:
        """Write a small JSON document (the ``result.json`` manifest)."""
        body = json.dumps(document, indent=2, sort_keys=True).encode()
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json")
        return StoredObject(uri=f"s3://{self.bucket}/{key}", key=key, bytes=len(body),
                            content_type="application/json", sha256=hashlib.sha256(body).hexdigest())


#: Limits for unpacking a zip result (a hostile or broken archive must not exhaust the function).
ZIP_MAX_MEMBERS = 1000
ZIP_MAX_TOTAL_BYTES = 8 * 1024 * 1024 * 1024


def unpack_zip(store: OutputStore, archive: IO[bytes], key_prefix: str) -> list[StoredObject]:
    """Store every file of a zip archive as its own object under ``key_prefix`` (content type sniffed,
    SHA-256 computed), streaming each member. Directory entries are skipped and member names are reduced
    to safe base names (no ``..``, no absolute paths; duplicates get a numeric suffix).

    Raises:
        StorageError: not a zip, or over :data:`ZIP_MAX_MEMBERS` / :data:`ZIP_MAX_TOTAL_BYTES`.
    """
    import posixpath
    import re
    import zipfile

    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        raise StorageError(f"the result claims to be a zip but is not readable: {exc}", code="bad_zip") from exc
    members = [m for m in zf.infolist() if not m.is_dir()]
    if len(members) > ZIP_MAX_MEMBERS or sum(m.file_size for m in members) > ZIP_MAX_TOTAL_BYTES:
        raise StorageError("the zip result is larger than mediagen unpacks", code="zip_too_large")
    stored, used = [], set()
    for member in members:
        name = re.sub(r"[^A-Za-z0-9._-]", "_", posixpath.basename(member.filename.replace("\\", "/"))) or "file"
        stem, dot, ext = name.rpartition(".") if "." in name.lstrip(".") else (name, "", "")
        candidate, n = name, 1
        while candidate in used:
            n += 1
            candidate = f"{stem}-{n}{dot}{ext}"
        used.add(candidate)
        stem_c, _, ext_c = candidate.rpartition(".") if "." in candidate.lstrip(".") else (candidate, "", "")
        with zf.open(member) as fh:
            chunks: Iterator[bytes] = iter(partial(fh.read, 1024 * 1024), b"")
            stored.append(store.put_stream(key_prefix + stem_c, chunks, expected_bytes=member.file_size,
                                           extension=ext_c or None))
    return stored
