"""Input media in S3: ``s3://bucket/key`` values of a request become presigned https URLs at submit time.

The provider fetches inputs itself and only from "direct public http:// or https:// file links" (seeds/002
"Input Types", "Media URL requirements"). A job may instead name an object mediagen can read (the intake
bucket of a deployment; media drops always do) as ``s3://bucket/key`` or ``s3://bucket/key?versionId=V``.
Just before generate, each such value is checked (``HeadObject``) and replaced, in the wire body only, by a
SigV4 presigned ``GetObject`` URL valid for ``MEDIAGEN_INPUT_URL_SECONDS`` (default 6 h, at most 7 days).
The job document and the job record keep the ``s3://`` URI, so a redelivery is the same job, and the
signature never reaches a record, a log or an event.

Note: a URL presigned with a Lambda role's temporary credentials stops working when those credentials expire,
whatever its expiry says; the default stays well inside the provider's processing deadlines.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cached_property
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from mediagen.errors import InvalidJob


class InputResolver(Protocol):
    def resolve(self, request: dict[str, Any]) -> dict[str, Any]:
        """``request`` with every ``s3://`` value replaced by a URL the provider can fetch.

        Raises:
            InvalidJob: an object cannot be read by mediagen (each problem names the field).
        """
        ...


def s3_references(value: Any, path: str = "") -> list[tuple[str, str]]:
    """Every ``(field path, s3:// URI)`` inside ``value`` (dicts and lists, depth first)."""
    found: list[tuple[str, str]] = []
    if isinstance(value, str):
        if value.startswith("s3://"):
            found.append((path or "request", value))
    elif isinstance(value, dict):
        for key, item in value.items():
            found += s3_references(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += s3_references(item, f"{path}[{i}]")
    return found


def parse_s3_uri(uri: str) -> tuple[str, str, str | None]:
    """``s3://bucket/key?versionId=V`` -> ``(bucket, key, version or None)`` (the key URL-decoded)."""
    parts = urlsplit(uri)
    versions = parse_qs(parts.query).get("versionId") or []
    return parts.netloc, unquote(parts.path.lstrip("/")), versions[0] if versions else None


def s3_uri(bucket: str, key: str, version: str | None = None) -> str:
    """The ``s3://`` URI of an object (with ``?versionId=`` when the bucket is versioned)."""
    from urllib.parse import quote

    return f"s3://{bucket}/{quote(key, safe='/!-_.*()')}" + (f"?versionId={version}" if version else "")


def _replace(value: Any, urls: dict[str, str]) -> Any:
    if isinstance(value, str):
        return urls.get(value, value)
    if isinstance(value, dict):
        return {k: _replace(v, urls) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, urls) for v in value]
    return value


class S3Inputs:
    """``InputResolver`` on S3 (``HeadObject`` + presigned ``GetObject``).

    Args:
        s3_client: returns a boto3 S3 client (SigV4 signing); called on first use, so a job without ``s3://``
            inputs never pays for it.
        expires_seconds: validity of each presigned URL, seconds (1 s - 7 days).
    """

    def __init__(self, s3_client: Callable[[], Any], expires_seconds: int = 6 * 3600) -> None:
        self._client = s3_client
        self._expires = max(1, min(int(expires_seconds), 7 * 24 * 3600))
        self._lock = threading.Lock()  # submit's worker threads share this; boto3 client creation is not thread-safe

    @cached_property
    def _s3(self) -> Any:
        with self._lock:
            return self._client()

    def resolve(self, request: dict[str, Any]) -> dict[str, Any]:
        refs = s3_references(request)
        if not refs:
            return request
        from botocore.exceptions import BotoCoreError, ClientError

        urls: dict[str, str] = {}
        problems: list[dict[str, str]] = []
        for field, uri in refs:
            if uri in urls:
                continue
            bucket, key, version = parse_s3_uri(uri)
            params: dict[str, Any] = {"Bucket": bucket, "Key": key}
            if version:
                params["VersionId"] = version
            try:
                self._s3.head_object(**params)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                reason = {"404": "does not exist", "NoSuchKey": "does not exist", "403": "cannot be read by mediagen",
                          "AccessDenied": "cannot be read by mediagen"}.get(code, f"cannot be read ({code})")
                problems.append({"field": field, "message": f"{uri} {reason}; nothing was sent to the provider"})
                continue
            except BotoCoreError as exc:
                problems.append({"field": field, "message": f"{uri} cannot be read: {type(exc).__name__}"})
                continue
            urls[uri] = self._s3.generate_presigned_url("get_object", Params=params, ExpiresIn=self._expires)
        if problems:
            raise InvalidJob(problems, "an s3:// input cannot be handed to the provider")
        return _replace(request, urls)
