"""Streaming results into S3: real content type, byte count, SHA-256, nothing truncated left behind."""

from __future__ import annotations

import hashlib
import os
import zlib

import boto3
import pytest
from moto import mock_aws

from mediagen.errors import StorageError
from mediagen.storage import S3OutputStore, sniff_content_type


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
