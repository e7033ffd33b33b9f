"""The model catalog: what every Cliprise request ``model`` accepts, how it goes on the wire, what it costs.

The catalog is *data* (``catalog.json`` beside this file, built by ``scripts/catalog/build_catalog.py``
from the provider documents (``docs/sources.md``) plus the reviewed decisions in ``docs/catalog-decisions.md``).
This package only interprets it::

    from mediagen.catalog import get_catalog
    cat = get_catalog()                      # cached; one json.loads on first use
    problems = cat.validate(request)         # [] when valid; every problem, each naming its field
    body = cat.encode(request, callback_url=url)   # the exact wire body for POST /generate
    credits = cat.estimate(request)          # int, or None when the documents give no price

A *request* is a documented request body ("Code samples" [000:213-235]) without ``callBackUrl``;
``options`` / ``imageURLList`` / ``videoURLList`` may be JSON values or the documented JSON strings
("Key Concepts" [002:28-43]).

Only the standard library (and ``mediagen.errors``) is imported here: a Lambda imports this on cold start.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Protocol

from mediagen.catalog.core import (
    BlockInfo,
    Catalog,
    ModelInfo,
    ParamInfo,
    Problem,
    RequestValue,
    get_catalog,
    load_catalog,
)

__all__ = [
    "DEFAULT_PROVIDER",
    "PROVIDERS",
    "BlockInfo",
    "Catalog",
    "ModelInfo",
    "ParamInfo",
    "Problem",
    "ProviderCatalog",
    "RequestValue",
    "catalog_for",
    "get_catalog",
    "load_catalog",
]


# ------------------------------------------------------------------------------ one catalog per provider

#: The providers a job's top-level ``"provider"`` may name (``"cliprise"`` when absent).
PROVIDERS = ("cliprise", "clipia")
DEFAULT_PROVIDER = "cliprise"


class _ModelCatalog(Protocol):
    def validate(self, request: Any, *, allow_unknown_fields: bool = False) -> list[Problem]: ...
    def estimate(self, request: Any) -> int | None: ...
    def upper_bound(self, request: Any) -> int | None: ...
    def media_fields(self, model: str) -> frozenset[str]: ...
    def modality(self, model: str) -> str | None: ...
    def suggest(self, model: str, n: int = 3) -> list[str]: ...


class ProviderCatalog:
    """What the orchestration asks a provider's catalog, whichever provider it is (built by :func:`catalog_for`).

    Attributes:
        provider: ``"cliprise"`` or ``"clipia"``.
        catalog: the provider's own catalog (:class:`Catalog` or
            :class:`~mediagen.catalog.clipia.ClipiaCatalog`) for provider-specific questions.
    """

    def __init__(self, provider: str, catalog: _ModelCatalog) -> None:
        self.provider = provider
        self.catalog = catalog

    def validate(self, request: Any, *, allow_unknown_fields: bool = False) -> list[Problem]:
        """Every problem of ``request`` (``[]`` when valid), each naming its field and what is allowed."""
        return self.catalog.validate(request, allow_unknown_fields=allow_unknown_fields)

    def estimate(self, request: Any) -> int | None:
        """Credits (the provider's unit) the request costs; None when unknown or invalid."""
        return self.catalog.estimate(request)

    def upper_bound(self, request: Any) -> int | None:
        """The most the request can cost: the exact estimate, or -- for pricing fields the request leaves
        out -- their dearest documented setting (both catalogs); None when a setting is unpriced."""
        return self.catalog.upper_bound(request)

    def media_fields(self, model: str) -> frozenset[str]:
        """The request fields of ``model`` that carry media URLs, as paths with ``[]`` for an array index (e.g.
        ``"input.image_urls[]"``): the only fields an ``s3://`` input may be in (:mod:`mediagen.inputs`)."""
        return self.catalog.media_fields(model)

    def modality(self, model: str) -> str | None:
        """``"image"`` | ``"video"`` | ``"audio"`` for a known model; None otherwise."""
        return self.catalog.modality(model)

    def suggest(self, model: str) -> list[str]:
        """Known models close to ``model`` (for "did you mean")."""
        return self.catalog.suggest(model)


@cache
def catalog_for(provider: str | None) -> ProviderCatalog:
    """The catalog of ``provider`` (``"cliprise"`` when None), cached per process.

    Raises:
        ValueError: an unknown provider (the message lists :data:`PROVIDERS`).
    """
    name = provider or DEFAULT_PROVIDER
    if name == "cliprise":
        return ProviderCatalog(name, get_catalog())
    if name == "clipia":
        from mediagen.catalog.clipia import get_clipia_catalog

        return ProviderCatalog(name, get_clipia_catalog())
    raise ValueError(f"unknown provider '{name}'; allowed: {', '.join(PROVIDERS)}")
