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
    "BlockInfo",
    "Catalog",
    "ModelInfo",
    "ParamInfo",
    "Problem",
    "RequestValue",
    "get_catalog",
    "load_catalog",
]
