"""Credit estimates from the catalog's pricing data.

Pricing data (per model, in ``catalog.json``)::

    {"unit": "video", "source": "002:1142",
     "dims": {"tier": {"from": "tier"}, "resolution": {"from": "input.resolution", "lower": true},
              "duration": {"from": "input.duration"}},
     "rows": [{"tier": "lite", "resolution": "480p", "duration": "5", "credits": 18,
               "source": "001:350"}, ...],
     "per": null}

``dims`` say where each pricing dimension is read in the encoded request (``tier`` = the tier of the
request ``model`` value; ``model`` = the wire model; ``input.x`` / ``x`` / ``options.x`` = a field),
with an optional ``map`` (value -> dimension value, ``"*"`` = any other value) and ``default`` (used
when the field is absent -- only where the documents say what the absence means). A row matches
when every dimension it names equals the request's; the first matching row wins. ``per`` multiplies:
``{"quantity": "input.duration_seconds", "round": "ceil"}`` (per second) or
``{"characters": "input.text", "size": 5000}`` (per started block of characters; ``"sum_of"`` sums a
property over an array). No matching row -> None: the estimate is never invented.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def _lookup(wire: Mapping[str, Any], path: str) -> Any:
    if path == "tier":
        return wire.get("tier")
    if path == "model":
        return wire.get("model")
    if path.startswith("input."):
        container = wire.get("input") or {}
        return container.get(path[6:])
    if path.startswith("options."):
        options = wire["root"].get("options")
        return options.get(path[8:]) if isinstance(options, Mapping) else None
    return wire["root"].get(path)


def _dim_value(spec: Mapping[str, Any], wire: Mapping[str, Any]) -> str | None:
    value = _lookup(wire, spec["from"])
    if value is None:
        value = spec.get("default")
        if value is None:
            return None
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float) and value.is_integer():
        text = str(int(value))
    else:
        text = str(value)
    if spec.get("lower"):
        text = text.lower()
    mapping = spec.get("map")
    if mapping is not None:
        if text in mapping:
            return str(mapping[text])
        if "*" in mapping:
            return str(mapping["*"])
        return None
    return text


def estimate_credits(pricing: Mapping[str, Any] | None, wire: Mapping[str, Any]) -> int | None:
    """Credits for an encoded request (see :meth:`mediagen.catalog.Catalog.estimate`); None = unknown."""
    if not pricing or not pricing.get("rows"):
        return None
    dims = {name: _dim_value(spec, wire) for name, spec in pricing.get("dims", {}).items()}
    for row in pricing["rows"]:
        if all(
            dims.get(name) == str(value) for name, value in row.items() if name not in ("credits", "source", "label")
        ):
            return _apply_per(pricing.get("per"), int(row["credits"]), wire)
    return None


def _apply_per(per: Mapping[str, Any] | None, credits: int, wire: Mapping[str, Any]) -> int | None:
    if not per:
        return credits
    if "quantity" in per:
        if per["quantity"] is None:  # billed per unit of media length the request does not state
            return None
        quantity = _lookup(wire, per["quantity"])
        if isinstance(quantity, str):
            try:
                quantity = float(quantity)
            except ValueError:
                return None
        if isinstance(quantity, bool) or not isinstance(quantity, int | float) or not math.isfinite(quantity):
            return None
        units = math.ceil(quantity) if per.get("round", "ceil") == "ceil" else quantity
        return int(credits * units)
    if "characters" in per:
        value = _lookup(wire, per["characters"])
        if "sum_of" in per:
            if not isinstance(value, list):
                return None
            count = sum(
                len(item.get(per["sum_of"], ""))
                for item in value
                if isinstance(item, Mapping) and isinstance(item.get(per["sum_of"]), str)
            )
        elif isinstance(value, str):
            count = len(value)
        else:
            return None
        return credits * max(1, math.ceil(count / per["size"]))
    return None


def upper_bound_credits(pricing: Mapping[str, Any] | None, wire: Mapping[str, Any]) -> int | None:
    """The most an encoded request can cost (see :meth:`mediagen.catalog.Catalog.upper_bound`): the exact
    estimate when every pricing field is set; otherwise a field the request leaves out (and whose absence the
    documents do not define) counts at its dearest priced setting -- the maximum over the rows that match the
    fields that are set. A set value no row prices, or a ``per`` quantity that is unknown, gives None: an
    unpriced setting may cost anything, so no bound is invented."""
    exact = estimate_credits(pricing, wire)
    if exact is not None or not pricing or not pricing.get("rows"):
        return exact
    dims = {name: _dim_value(spec, wire) for name, spec in pricing.get("dims", {}).items()}
    bound: int | None = None
    for row in pricing["rows"]:
        if all(dims.get(name) is None or dims.get(name) == str(value)
               for name, value in row.items() if name not in ("credits", "source", "label")):
            credits = _apply_per(pricing.get("per"), int(row["credits"]), wire)
            if credits is None:
                return None
            bound = credits if bound is None else max(bound, credits)
    if bound is None:
        return None
    absent = [name for name, value in dims.items() if value is None]
    return bound if absent else None
