"""Streaming results into S3: real content type, byte count, SHA-256, nothing truncated left behind."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import zipfile
import zlib

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from mediagen.errors import ConfigurationError, StorageError
from mediagen.storage import (
    RANGE_BLOCK_BYTES,
    ZIP_MAX_TOTAL_BYTES,
    S3OutputStore,
    ZipLimits,
    ZipRefused,
    sniff_content_type,
    unpack_zip,
    unpack_zip_from_store,
)
from tests.fakes import MemoryOutputStore


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="out")
        yield client


@pytest.mark.parametrize(("head", "expected"), [
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 8, "image/png"),
    (b"\xff\xd8\xff\xe0" + b"\0" * 12, "image/jpeg"),
    (b"\0\0\0\x20ftypisom" + b"\0" * 8, "video/mp4"),
    (b"RIFF\0\0\0\0WAVEfmt ", "audio/wav"),
    (b"ID3\x04" + b"\0" * 12, "audio/mpeg"),
    (b"PK\x03\x04" + b"\0" * 12, "application/zip"),
])
def test_content_type_comes_from_the_bytes_not_the_header(head: bytes, expected: str) -> None:
    assert sniff_content_type(head, declared="application/octet-stream") == expected
    assert sniff_content_type(head, declared="text/html") == expected


def test_unknown_bytes_fall_back_to_the_declared_type_then_octet_stream() -> None:
    assert sniff_content_type(b"hello world 12345", "text/plain; charset=utf-8") == "text/plain"
    assert sniff_content_type(b"hello world 12345", None) == "application/octet-stream"


def test_stream_lands_with_extension_size_and_checksum(s3) -> None:
    png = b"\x89PNG\r\n\x1a\n" + zlib.compress(os.urandom(64)) * 3
    data = png + os.urandom(20 * 1024 * 1024)  # > one 8 MiB part: exercises multipart
    chunks = (data[i:i + 65536] for i in range(0, len(data), 65536))
    stored = S3OutputStore("out", s3).put_stream("jobs/j1/output", chunks, expected_bytes=len(data))
    assert stored.key == "jobs/j1/output.png" and stored.content_type == "image/png"
    assert stored.bytes == len(data) and stored.sha256 == hashlib.sha256(data).hexdigest()
    obj = s3.get_object(Bucket="out", Key="jobs/j1/output.png")
    assert obj["ContentType"] == "image/png" and obj["Body"].read() == data


def test_truncated_download_raises_and_leaves_no_object(s3) -> None:
    with pytest.raises(StorageError, match="received 100 of 500 bytes"):
        S3OutputStore("out", s3).put_stream("jobs/j2/output", iter([b"ID3" + b"\0" * 97]), expected_bytes=500)
    assert "Contents" not in s3.list_objects_v2(Bucket="out", Prefix="jobs/j2/")


# ------------------------------------------------------------------ zip results (findings 10 and 12)

PNG = b"\x89PNG\r\n\x1a\n" + b"\0\0\0\rIHDR"


def _zip(members: list[tuple[str, bytes]], compression: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return buffer.getvalue()


def _png(tag: str) -> bytes:
    return PNG + tag.encode() + os.urandom(200)


def test_finding_10_zip_members_photo_and_photo_png_both_land(s3) -> None:
    members = [("photo", _png("a")), ("photo.png", _png("b")), ("sub/photo.png", _png("c")),
               ("PHOTO.PNG", _png("d")), ("photo-2.png", _png("e"))]
    store = S3OutputStore("out", s3)
    stored = unpack_zip(store, io.BytesIO(_zip(members)), "jobs/z1/files/")
    assert [o.key for o in stored] == ["jobs/z1/files/photo.png", "jobs/z1/files/photo-2.png",
                                       "jobs/z1/files/photo-3.png", "jobs/z1/files/PHOTO-4.PNG",
                                       "jobs/z1/files/photo-2-2.png"]
    for obj, (_, data) in zip(stored, members, strict=True):
        body = s3.get_object(Bucket="out", Key=obj.key)["Body"].read()
        assert body == data and obj.sha256 == hashlib.sha256(body).hexdigest() and obj.bytes == len(body)
    # Deterministic: the same archive gives the same names.
    again = unpack_zip(MemoryOutputStore(), io.BytesIO(_zip(members)), "jobs/z1/files/")
    assert [o.key for o in again] == [o.key for o in stored]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "A", "a.png", "A.PNG", "a-2.png", "x/a", "y/a.png", "a.", ".a",
                                           "a.bin", "..", "a.png.png", "é.png", "a b.png"]),
                          st.sampled_from([b"png", b"bin"])), max_size=12, unique_by=lambda m: m[0]))
def test_finding_10_every_member_lands_once_under_a_unique_name(names: list[tuple[str, bytes]]) -> None:
    members = [(name, (_png(name) if kind == b"png" else b"data " + name.encode())) for name, kind in names]
    store = MemoryOutputStore()
    stored = unpack_zip(store, io.BytesIO(_zip(members)), "p/")
    keys = [o.key for o in stored]
    assert len({k.lower() for k in keys}) == len(members) == len(store.objects)
    for obj, (_, data) in zip(stored, members, strict=True):
        assert store.objects[obj.key] == data and obj.sha256 == hashlib.sha256(data).hexdigest()


def test_finding_12_a_member_expanding_over_100_to_1_is_refused_and_nothing_lands() -> None:
    bomb = _zip([("ok.png", _png("ok")), ("zeros.bin", b"\0" * 5_000_000)], compression=zipfile.ZIP_DEFLATED)
    store = MemoryOutputStore()
    with pytest.raises(ZipRefused, match=r"zip member 'zeros.bin' expands \d+:1 .*; the limit is 100:1") as caught:
        unpack_zip(store, io.BytesIO(bomb), "p/")
    assert caught.value.code == "zip_refused" and isinstance(caught.value, StorageError)
    assert store.objects == {}
    # Ordinary media barely compresses: it passes at the same limit.
    assert len(unpack_zip(store, io.BytesIO(_zip([("v.png", _png("v"))], zipfile.ZIP_DEFLATED)), "p/")) == 1


def test_finding_12_total_size_over_the_configured_cap_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIAGEN_ZIP_MAX_TOTAL_BYTES", "1000")
    limits = ZipLimits.from_env()
    archive = _zip([("a.png", _png("a") + os.urandom(400)), ("b.png", _png("b") + os.urandom(400))])
    with pytest.raises(ZipRefused, match=r"expands to \d+ bytes; the limit is 1000 bytes "
                                         r"\(MEDIAGEN_ZIP_MAX_TOTAL_BYTES\)"):
        unpack_zip(MemoryOutputStore(), io.BytesIO(archive), "p/", limits)
    monkeypatch.setenv("MEDIAGEN_ZIP_MAX_TOTAL_BYTES", "lots")
    with pytest.raises(ConfigurationError, match="MEDIAGEN_ZIP_MAX_TOTAL_BYTES must be a positive number"):
        ZipLimits.from_env()
    assert ZipLimits.from_env({}).max_total_bytes == ZIP_MAX_TOTAL_BYTES


def _no_local_staging(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the zip was staged on local disk")

    for name in ("TemporaryFile", "NamedTemporaryFile", "SpooledTemporaryFile", "mkstemp"):
        monkeypatch.setattr(tempfile, name, refuse)


def test_finding_12_unpack_from_the_store_streams_with_ranged_gets_on_s3(s3) -> None:
    members = [("frame.png", _png("f") + os.urandom(3_000_000)), ("clip", b"\0\0\0\x20ftypisom" + os.urandom(500))]
    archive = _zip(members)
    store = S3OutputStore("out", s3)
    zipped = store.put_stream("jobs/z2/output", iter([archive]), expected_bytes=len(archive))
    assert zipped.key == "jobs/z2/output.zip"
    stored = unpack_zip_from_store(store, zipped.key, "jobs/z2/files/", ZipLimits())
    assert [o.key for o in stored] == ["jobs/z2/files/frame.png", "jobs/z2/files/clip.mp4"]
    for obj, (_, data) in zip(stored, members, strict=True):
        assert s3.get_object(Bucket="out", Key=obj.key)["Body"].read() == data
        assert obj.sha256 == hashlib.sha256(data).hexdigest()


def test_finding_12_unpack_from_the_store_reads_bounded_ranges_once(monkeypatch: pytest.MonkeyPatch) -> None:
    members = [(f"f{i}.png", _png(str(i)) + os.urandom(700_000)) for i in range(4)]
    archive = _zip(members)
    store = MemoryOutputStore()
    store.objects["z.zip"] = archive
    _no_local_staging(monkeypatch)
    stored = unpack_zip_from_store(store, "z.zip", "files/")
    assert [store.objects[o.key] for o in stored] == [data for _, data in members]
    sizes = [end - start for _, start, end in store.range_reads]
    assert max(sizes) <= RANGE_BLOCK_BYTES  # memory: one block, never the whole archive
    assert sum(sizes) < 1.5 * len(archive)  # each byte fetched about once


def test_finding_12_a_stored_file_that_is_not_a_zip_is_a_storage_error() -> None:
    store = MemoryOutputStore()
    store.objects["z.zip"] = b"PK\x03\x04 but not really a zip"
    with pytest.raises(StorageError, match="not readable"):
        unpack_zip_from_store(store, "z.zip", "files/")
