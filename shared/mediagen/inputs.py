"""Input media in S3: ``s3://bucket/key`` values of a request's media fields become presigned https URLs at
submit time.

The provider fetches inputs itself and only from "direct public http:// or https:// file links" [002:62]. A
job may instead name an object mediagen may read as ``s3://bucket/key`` or ``s3://bucket/key?versionId=V``
(media drops always do). Two rules keep mediagen from becoming a confused deputy that signs whatever a job
names:

- **Only media fields.** Only the fields the catalog marks as media URLs (``format: url``;
  :meth:`mediagen.catalog.Catalog.media_fields`) may carry an ``s3://`` input. Any other string -- a prompt that
  mentions ``s3://…`` included -- is text and is sent as it is.
- **Only allow-listed locations.** The object must lie under one of the ``s3://bucket/prefix/`` pairs of
  ``MEDIAGEN_INPUT_ALLOW`` (a comma list; default: the intake bucket's ``inbox/`` and ``inputs/``, from
  ``MEDIAGEN_INTAKE_BUCKET``; none when neither is set). An object outside them is never looked up.

Just before generate, each allowed value is checked (``HeadObject``) and replaced, in the wire body only, by a
SigV4 presigned ``GetObject`` URL valid for ``MEDIAGEN_INPUT_URL_SECONDS`` (default 6 h, at most 7 days). A
missing object and a forbidden one get the same refusal (:data:`REFUSAL`), so a job cannot learn which keys
exist. The job document and the job record keep the ``s3://`` URI, so a redelivery is the same job, and the
signature never reaches a record, a log or an event.

Note: a URL presigned with a Lambda role's temporary credentials stops working when those credentials expire,
whatever its expiry says; the default stays well inside the provider's processing deadlines.
"""

from __future__ import annotations

import copy
import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from mediagen.errors import ConfigurationError, InvalidJob

if TYPE_CHECKING:
    from mediagen.catalog import Catalog

#: Environment variable: the ``s3://bucket/prefix/`` pairs (comma-separated) that ``s3://`` inputs may name.
ENV_INPUT_ALLOW = "MEDIAGEN_INPUT_ALLOW"
#: Environment variable: the intake bucket, whose :data:`DEFAULT_INPUT_PREFIXES` are allowed by default.
ENV_INTAKE_BUCKET = "MEDIAGEN_INTAKE_BUCKET"
#: Prefixes of the intake bucket allowed when ``MEDIAGEN_INPUT_ALLOW`` is not set.
DEFAULT_INPUT_PREFIXES: tuple[str, ...] = ("inbox/", "inputs/")
#: The one refusal for an ``s3://`` input that is missing, unreadable or outside the allowed locations
#: (formatted with ``uri``): it never says which.
REFUSAL = ("{uri} is not an input mediagen may read: it does not exist or is outside the allowed input "
           "locations; nothing was sent to the provider")

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_INDEX = re.compile(r"\[\d+\]")


class MediaFields(Protocol):
    """What :func:`s3_references` asks a catalog (either provider's, or :class:`~mediagen.catalog.ProviderCatalog`)."""

    def media_fields(self, model: str) -> frozenset[str]: ...


class InputResolver(Protocol):
    def resolve(self, request: dict[str, Any], catalog: MediaFields | None = None) -> dict[str, Any]:
        """``request`` with every ``s3://`` value of a media field (of ``catalog``, default the resolver's)
        replaced by a URL the provider can fetch.

        Raises:
            InvalidJob: an object is not one mediagen may read (each problem names the field).
        """
        ...


def _strings(value: Any, path: str = "") -> list[tuple[str, str]]:
    """Every ``(field path, string)`` inside ``value`` (dicts and lists, depth first)."""
    if isinstance(value, str):
        return [(path or "request", value)]
    found: list[tuple[str, str]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _strings(item, f"{path}[{i}]")
    return found


def s3_references(request: Any, catalog: MediaFields | None = None) -> list[tuple[str, str]]:
    """Every ``(field path, s3:// URI)`` in a media field of ``request`` (a request body with its ``model``).

    Only the fields ``catalog.media_fields(request["model"])`` names count (default: the packaged catalog);
    an ``s3://`` string anywhere else (a prompt, metadata) is text, and a request of an unknown model has none.
    """
    if not isinstance(request, dict) or not isinstance(request.get("model"), str):
        return []
    if catalog is None:
        from mediagen.catalog import get_catalog

        catalog = get_catalog()
    media = catalog.media_fields(request["model"])
    return [(path, value) for path, value in _strings(request)
            if value.startswith("s3://") and _INDEX.sub("[]", path) in media]


def parse_s3_uri(uri: str) -> tuple[str, str, str | None]:
    """``s3://bucket/key?versionId=V`` -> ``(bucket, key, version or None)`` (the key URL-decoded)."""
    parts = urlsplit(uri)
    versions = parse_qs(parts.query).get("versionId") or []
    return parts.netloc, unquote(parts.path.lstrip("/")), versions[0] if versions else None


def s3_uri(bucket: str, key: str, version: str | None = None) -> str:
    """The ``s3://`` URI of an object (with ``?versionId=`` when the bucket is versioned)."""
    from urllib.parse import quote

    return f"s3://{bucket}/{quote(key, safe='/!-_.*()')}" + (f"?versionId={version}" if version else "")


@dataclass(frozen=True)
class InputLocation:
    """One allowed ``s3://bucket/prefix/`` pair (``prefix`` empty: the whole bucket)."""

    bucket: str
    prefix: str

    def holds(self, bucket: str, key: str) -> bool:
        return bucket == self.bucket and key.startswith(self.prefix)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def parse_input_allow(text: str) -> tuple[InputLocation, ...]:
    """``"s3://b/inbox/,s3://b/inputs/"`` -> the allowed locations (blank entries skipped).

    Raises:
        ConfigurationError: an entry is not ``s3://<bucket>/<prefix ending in />`` (names the entry).
    """
    locations = []
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        parts = urlsplit(entry)
        prefix = parts.path.lstrip("/")
        if (parts.scheme != "s3" or not _BUCKET.fullmatch(parts.netloc or "") or parts.query
                or (prefix and not prefix.endswith("/")) or _has_dot_segment(prefix)):
            raise ConfigurationError(f"{ENV_INPUT_ALLOW}: {entry!r} is not s3://<bucket>/<prefix>/ (the prefix "
                                     "ends with '/'; s3://<bucket>/ allows the whole bucket)")
        locations.append(InputLocation(parts.netloc, prefix))
    return tuple(locations)


def input_allow_from_env(environ: Mapping[str, str] | None = None) -> tuple[InputLocation, ...]:
    """The allowed input locations: ``MEDIAGEN_INPUT_ALLOW`` when set, else the intake bucket's
    :data:`DEFAULT_INPUT_PREFIXES` (``MEDIAGEN_INTAKE_BUCKET``), else none (every ``s3://`` input is refused)."""
    env = os.environ if environ is None else environ
    if env.get(ENV_INPUT_ALLOW, "").strip():
        return parse_input_allow(env[ENV_INPUT_ALLOW])
    bucket = env.get(ENV_INTAKE_BUCKET, "").strip()
    return tuple(InputLocation(bucket, prefix) for prefix in DEFAULT_INPUT_PREFIXES) if bucket else ()


def _has_dot_segment(key: str) -> bool:
    return any(segment in (".", "..") for segment in key.split("/"))


def _set_path(root: Any, path: str, value: str) -> None:
    """Set the string at ``path`` (``a.b[2].c``, as :func:`s3_references` names it) inside ``root``."""
    tokens = re.findall(r"[^.\[\]]+|\[\d+\]", path)
    target = root
    for token in tokens[:-1]:
        target = target[int(token[1:-1])] if token.startswith("[") else target[token]
    last = tokens[-1]
    if last.startswith("["):
        target[int(last[1:-1])] = value
    else:
        target[last] = value


class S3Inputs:
    """``InputResolver`` on S3 (``HeadObject`` + presigned ``GetObject``), for allow-listed locations only.

    Args:
        s3_client: returns a boto3 S3 client (SigV4 signing); called on first use, so a job without ``s3://``
            inputs never pays for it.
        expires_seconds: validity of each presigned URL, seconds (1 s - 7 days).
        allow: the locations inputs may come from; ``None`` reads them from the environment
            (:func:`input_allow_from_env`).
        catalog: where media fields are looked up (default: the packaged catalog).
    """

    def __init__(self, s3_client: Callable[[], Any], expires_seconds: int = 6 * 3600,
                 allow: Sequence[InputLocation] | None = None, catalog: Catalog | None = None) -> None:
        self._client = s3_client
        self._expires = max(1, min(int(expires_seconds), 7 * 24 * 3600))
        self._lock = threading.Lock()  # submit's worker threads share this; boto3 client creation is not thread-safe
        self._allow = tuple(allow) if allow is not None else None
        self._catalog = catalog

    @cached_property
    def allow(self) -> tuple[InputLocation, ...]:
        """The allowed locations (read from the environment on first use when not given: a bad
        ``MEDIAGEN_INPUT_ALLOW`` fails the jobs with ``s3://`` inputs, not every job)."""
        return self._allow if self._allow is not None else input_allow_from_env()

    @cached_property
    def _s3(self) -> Any:
        with self._lock:
            return self._client()

    def allows(self, bucket: str, key: str) -> bool:
        """Whether ``s3://bucket/key`` lies under an allowed location (and names no ``.``/``..`` segment)."""
        return not _has_dot_segment(key) and any(location.holds(bucket, key) for location in self.allow)

    def resolve(self, request: dict[str, Any], catalog: MediaFields | None = None) -> dict[str, Any]:
        refs = s3_references(request, catalog or self._catalog)
        if not refs:
            return request
        from botocore.exceptions import BotoCoreError, ClientError

        urls: dict[str, str] = {}
        problems: list[dict[str, str]] = []
        for field_path, uri in refs:
            if uri in urls:
                continue
            bucket, key, version = parse_s3_uri(uri)
            if not self.allows(bucket, key):  # never looked up: the answer would tell what exists
                problems.append({"field": field_path, "message": REFUSAL.format(uri=uri)})
                continue
            params: dict[str, Any] = {"Bucket": bucket, "Key": key}
            if version:
                params["VersionId"] = version
            try:
                self._s3.head_object(**params)
            except ClientError:  # missing, forbidden, bad version...: one answer for all
                problems.append({"field": field_path, "message": REFUSAL.format(uri=uri)})
                continue
            except BotoCoreError as exc:
                problems.append({"field": field_path, "message": f"{uri} cannot be read: {type(exc).__name__}"})
                continue
            urls[uri] = self._s3.generate_presigned_url("get_object", Params=params, ExpiresIn=self._expires)
        if problems:
            raise InvalidJob(problems, "an s3:// input cannot be handed to the provider")
        resolved = copy.deepcopy(request)
        for field_path, uri in refs:  # only the media fields: the same text elsewhere stays as it is
            _set_path(resolved, field_path, urls[uri])
        return resolved
