"""The URL policy of media inputs: which URLs the provider can fetch, decided without a DNS lookup.

:func:`url_problem` says why a URL is refused (or ``None``); the catalog applies it to every field of
``"format": "url"``. ``s3://`` URIs are accepted by syntax: mediagen presigns them at submit time.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from typing import Any
from urllib.parse import urlsplit


def _fmt(value: str) -> str:
    return f"'{value}'"


def is_http_url(value: str) -> bool:
    """Whether ``value`` is a media URL the provider can fetch (:func:`url_problem` finds nothing)."""
    return url_problem(value) is None


#: Host suffixes that never name a public Internet host: RFC 6761 ``localhost``, RFC 6762 ``local`` and the
#: private-use names of its Appendix G, RFC 8375 ``home.arpa``, and the conventional ``localdomain``.
_LOCAL_HOST_SUFFIXES = (
    "localhost", "localdomain", "local", "internal", "intranet", "private", "corp", "home", "lan", "home.arpa",
)
_PRIVATE_URL = "points at a private or local network address; the provider can only fetch public http(s) URLs"


def url_problem(value: str) -> str | None:
    """Why ``value`` is not a media URL the provider can fetch, or None. No DNS lookup is made.

    The documents ask for "direct public http:// or https:// file links that Cliprise can fetch without
    login, cookies, browser sessions, anti-bot pages, or private-network access" ("Input Types" [002:45-62],
    "Media URL requirements" [002:62]). Rejected, each with a message that says why:

    - empty values, whitespace, unparseable URLs, schemes other than http/https, URLs without a host;
    - user info (``https://user:pass@host/``): a login the provider will not use (masked in the message,
      as it may be a password);
    - IP literals that are not globally routable: private, loopback, link-local, multicast, reserved,
      unspecified, shared (100.64/10), IPv6 ones and IPv4-mapped / 6to4 forms of them, including the
      shorthand IPv4 forms HTTP clients accept (``127.1``, ``0x7f.0.0.1``, ``2130706433``);
    - local names: ``localhost`` and ``*.localhost``, ``*.local``, ``*.internal`` and the other
      :data:`_LOCAL_HOST_SUFFIXES`, and single-label hosts (``https://fileserver/a.png``).

    A public name that resolves to a private address is not detected here (that needs DNS).
    """
    if not value or value != value.strip() or any(c.isspace() for c in value):
        return f"{_fmt(value)} is not a valid URL (empty or contains whitespace)"
    try:
        parts = urlsplit(value)
        host = parts.hostname
        _ = parts.port
    except ValueError:
        return f"{_fmt(value)} is not a valid URL"
    if parts.scheme.lower() == "s3":
        return _s3_uri_problem(value, parts)
    if parts.scheme.lower() not in ("http", "https"):
        return f"{_fmt(value)} is not an http(s) URL; send a direct public http:// or https:// link (or an s3:// URI)"
    if not host:
        return f"{_fmt(value)} is not a valid URL: it has no host"
    if "@" in parts.netloc:
        shown = parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()
        return (f"{_fmt(shown)} carries a user name or password; the provider fetches without login: "
                "send a direct public http(s) link")
    host = unicodedata.normalize("NFKC", host).lower()
    if "[" in parts.netloc or ":" in host:
        try:
            address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.IPv6Address(
                host.split("%", 1)[0])
        except ValueError:
            return f"{_fmt(value)} is not a valid URL: its host is not a valid IPv6 address"
    else:
        host = host[:-1] if host.endswith(".") else host
        labels = host.split(".")
        if not all(labels):
            return f"{_fmt(value)} is not a valid URL: its host has an empty label"
        address = _ipv4_literal(labels)
        if address is None and _NUMERIC_LABEL.fullmatch(labels[-1]):
            return f"{_fmt(value)} is not a valid URL: its host is not a valid IPv4 address"
    if address is not None:
        if not _is_public_address(address):
            return f"{_fmt(value)} {_PRIVATE_URL}"
        return None
    if len(labels) == 1 or any(host == s or host.endswith("." + s) for s in _LOCAL_HOST_SUFFIXES):
        return f"{_fmt(value)} {_PRIVATE_URL}"
    return None


_NUMERIC_LABEL = re.compile(r"0x[0-9a-f]*|[0-9]+")
_S3_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def _s3_uri_problem(value: str, parts: Any) -> str | None:
    """``s3://bucket/key`` (optionally ``?versionId=…``): an object the pipeline hands to the provider as a
    presigned https URL at submit time (:mod:`mediagen.inputs`). Only the syntax is checked here; whether
    mediagen may read the object is checked before anything is sent."""
    if not _S3_BUCKET.fullmatch(parts.netloc or "") or ".." in parts.netloc:
        return f"{_fmt(value)} is not a valid s3:// URI: {parts.netloc!r} is not an S3 bucket name"
    if not parts.path.lstrip("/"):
        return f"{_fmt(value)} is not a valid s3:// URI: it names no object key"
    query = parts.query
    if query and not re.fullmatch(r"versionId=[A-Za-z0-9._-]+", query):
        return f"{_fmt(value)} is not a valid s3:// URI: the only query allowed is versionId=…"
    return None


def _ipv4_literal(labels: list[str]) -> ipaddress.IPv4Address | None:
    """The IPv4 address a host written as 1-4 decimal, octal (``0177``) or hex (``0x7f``) parts denotes
    (the forms HTTP clients accept, as in the WHATWG URL host parser), or None when it is not one."""
    if len(labels) > 4 or not all(_NUMERIC_LABEL.fullmatch(label) for label in labels):
        return None
    numbers = []
    for label in labels:
        try:
            if label.startswith("0x"):
                numbers.append(int(label[2:] or "0", 16))
            elif len(label) > 1 and label.startswith("0"):
                numbers.append(int(label, 8))
            else:
                numbers.append(int(label))
        except ValueError:  # an octal part with 8 or 9 in it
            return None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        return None
    total = last
    for index, number in enumerate(head):
        total += number << (8 * (3 - index))
    return ipaddress.IPv4Address(total)


def _is_public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether an IP literal is globally routable (IPv4 embedded in IPv6 is judged by its IPv4 form)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return _is_public_address(embedded)
    return address.is_global and not (
        address.is_private or address.is_loopback or address.is_link_local or address.is_multicast
        or address.is_reserved or address.is_unspecified
    )
