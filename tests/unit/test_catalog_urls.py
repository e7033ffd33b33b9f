"""Media URLs the provider cannot fetch are refused before a credit is spent.

"Input Types" [002:45-62] -> "Media URL requirements": source media must be "direct public http:// or https://
file links that Cliprise can fetch without login, cookies, ... or private-network access". A URL pointing at
a private or local network (cloud metadata endpoints, loopback, RFC 1918, link-local, ``*.internal``) is a
job that can only fail at the provider -- or, worse, ask it to fetch something it must not: mediagen
rejects it with a problem naming the field, without any DNS lookup.
"""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from mediagen.catalog import Catalog, get_catalog
from mediagen.catalog.urls import is_http_url, url_problem
from mediagen.errors import InvalidJob

PRIVATE = "points at a private or local network address; the provider can only fetch public http(s) URLs"


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return get_catalog()


def seedance_i2v(url: str) -> dict[str, Any]:
    """A seedance-v1-pro image-to-video request whose only questionable field is ``input.image_url``."""
    return {"model": "seedance-v1-pro",
            "input": {"prompt": "waves", "resolution": "720p", "duration": "5", "image_url": url}}


def url_problems(cat: Catalog, url: str) -> list[str]:
    """The problem messages reported for ``input.image_url`` (every problem must be about that field)."""
    problems = cat.validate(seedance_i2v(url))
    assert {p.field for p in problems} <= {"input.image_url"}, problems
    return [p.message for p in problems]


# ------------------------------------------------------------------------------ private and local IPs


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",       # cloud instance metadata (link-local)
        "http://127.0.0.1:8080/a.png",                    # loopback
        "http://10.0.0.5/a.png",                          # RFC 1918
        "http://172.16.3.4/a.png",
        "https://192.168.1.20/a.png",
        "http://100.64.0.1/a.png",                        # shared address space (carrier-grade NAT)
        "http://0.0.0.0/a.png",                           # unspecified
        "http://224.0.0.251/a.png",                       # multicast
        "http://240.0.0.1/a.png",                         # reserved
        "http://255.255.255.255/a.png",                   # broadcast
        "http://192.0.2.10/a.png",                        # documentation range (never routed)
        "http://[::1]/a.png",                             # IPv6 loopback
        "http://[::]/a.png",                              # IPv6 unspecified
        "http://[fe80::1%25eth0]/a.png",                  # IPv6 link-local with a zone id
        "http://[fd12:3456::1]/a.png",                    # IPv6 unique local
        "http://[ff02::1]/a.png",                         # IPv6 multicast
        "http://[::ffff:127.0.0.1]/a.png",                # IPv4-mapped loopback
        "http://[::ffff:a9fe:a9fe]/latest",               # IPv4-mapped 169.254.169.254, hex form
        "http://[2002:c0a8:0101::1]/a.png",               # 6to4 around 192.168.1.1
    ],
)
def test_private_loopback_and_reserved_ip_literals_are_rejected(cat: Catalog, url: str) -> None:
    assert url_problems(cat, url) == [f"'{url}' {PRIVATE}"]


@pytest.mark.parametrize(
    ("url", "means"),
    [
        ("http://127.1/a.png", "127.0.0.1"),
        ("http://2130706433/a.png", "127.0.0.1"),
        ("http://0x7f.0.0.1/a.png", "127.0.0.1"),
        ("http://0177.0.0.1/a.png", "127.0.0.1"),
        ("http://0xa9fea9fe/latest", "169.254.169.254"),
        ("http://169.254.43518/latest", "169.254.169.254"),
        ("http://0/a.png", "0.0.0.0"),
        ("http://１２７.０.０.１/a.png", "127.0.0.1"),     # fullwidth digits (NFKC)
    ],
)
def test_shorthand_ipv4_forms_http_clients_accept_are_rejected_too(cat: Catalog, url: str, means: str) -> None:
    """``curl http://127.1/`` reaches loopback: spelling the address differently must not get past the check."""
    host = url.split("/")[2]
    if host.isascii():
        assert socket.inet_aton(host) == socket.inet_aton(means)  # what the C library makes of it
    assert url_problems(cat, url) == [f"'{url}' {PRIVATE}"]


@pytest.mark.parametrize("url", ["http://08.0.0.1/a.png", "http://1.2.3.4.5/a.png", "http://256.1.1.1/a.png",
                                 "http://example.123/a.png", "http://[v1.fe]/a.png"])
def test_hosts_that_look_like_ip_addresses_but_are_not_are_invalid(cat: Catalog, url: str) -> None:
    [message] = url_problems(cat, url)
    assert message.startswith(f"'{url}' is not a valid URL")


# ----------------------------------------------------------------------------------------- local names


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost/a.png",
        "http://LOCALHOST:3000/a.png",
        "http://localhost./a.png",                        # trailing dot: the same name
        "http://media.localhost/a.png",
        "http://printer.local/scan.png",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://ip-10-0-0-5.ec2.internal/a.png",
        "http://nas.home.arpa/a.png",
        "http://files.corp/a.png",
        "https://fileserver/a.png",                       # single label: an intranet name
    ],
)
def test_local_and_single_label_names_are_rejected(cat: Catalog, url: str) -> None:
    assert url_problems(cat, url) == [f"'{url}' {PRIVATE}"]


def test_credentials_in_a_url_are_rejected_and_not_echoed(cat: Catalog) -> None:
    """A URL with ``user:password@`` needs a login the provider will not perform; the password must not
    land in the task record or the event that carry the problem."""
    [message] = url_problems(cat, "https://alice:s3cr3t@cdn.example.com/a.png")
    assert message.startswith("'https://***@cdn.example.com/a.png' carries a user name or password")
    assert "s3cr3t" not in message and "alice" not in message


# ------------------------------------------------------------------------------------ public URLs pass


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/a.png",
        "https://cdn.example.org/path/b.jpg?X-Amz-Signature=abc&X-Amz-Expires=600",
        "http://example.com./a.png",                      # fully qualified name with its trailing dot
        "http://8.8.8.8/a.png",                           # a public IPv4 literal
        "https://[2606:4700:4700::1111]/a.png",           # a public IPv6 literal
        "https://[::ffff:8.8.8.8]/a.png",                 # IPv4-mapped public address
        "https://local.example.com/a.png",                # "local" as a label, not the suffix
        "https://localhost.example.com/a.png",
        "https://10.example.com/a.png",                   # a name that starts with a number
    ],
)
def test_public_urls_are_accepted(cat: Catalog, url: str) -> None:
    assert url_problems(cat, url) == []


# ---------------------------------------------------------------------- every URL field, every shape


def test_private_urls_are_rejected_in_url_lists_and_json_string_lists(cat: Catalog) -> None:
    """The check applies to every media URL field: arrays name the offending item, and the documented
    JSON-string form of ``imageURLList`` ("Key Concepts" [002:28-43]) is checked after decoding."""
    request = {"model": "nano-banana", "input": {
        "prompt": "merge", "image_urls": ["https://example.com/a.png", "http://10.1.2.3/b.png"]}}
    assert [(p.field, p.message) for p in cat.validate(request)] == [
        ("input.image_urls[1]", f"'http://10.1.2.3/b.png' {PRIVATE}")]

    root_only = {"model": "flux-kontext-pro", "prompt": "a red door", "aspectRatio": "16:9",
                 "imageURLList": json.dumps(["http://localhost/ref.png"])}
    problems = cat.validate(root_only)
    assert [p.field for p in problems] == ["imageURLList[0]"]
    assert problems[0].message == f"'http://localhost/ref.png' {PRIVATE}"


def test_encode_refuses_a_private_url_so_nothing_is_sent(cat: Catalog) -> None:
    with pytest.raises(InvalidJob) as raised:
        cat.encode(seedance_i2v("http://169.254.169.254/latest"), callback_url="https://hooks.example.com/cb")
    assert raised.value.problems == [{
        "field": "input.image_url",
        "message": f"'http://169.254.169.254/latest' {PRIVATE}",
    }]


def test_the_url_policy_answers_on_its_own_without_a_catalog() -> None:
    """``mediagen.catalog.urls`` is the one place the policy lives: the catalog and the mirrors both ask it."""
    assert url_problem("https://cdn.example.com/a.png") is None and is_http_url("s3://bucket-1/key.png")
    metadata = "http://169.254.169.254/latest/meta-data/"
    assert url_problem(metadata) == f"'{metadata}' {PRIVATE}" and not is_http_url(metadata)
