"""Example values and requests built from the catalog data (for docs, ``models show`` and tests).

``example_request(model, block)`` returns a request body that the catalog accepts: every required field
(or, with ``full=True``, every field) set to the first documented value, the lower bound of its range,
or a plausible URL / text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mediagen.catalog.core import BlockInfo, ModelInfo

_URLS = {
    "image": "https://example.com/input.png",
    "video": "https://example.com/input.mp4",
    "audio": "https://example.com/input.mp3",
}


def example_value(spec: Mapping[str, Any]) -> Any:
    """A value valid for a parameter spec."""
    if spec.get("enum"):
        return spec["enum"][0]
    kind = spec["type"]
    if kind == "string" and spec.get("min_items", 1) > 1:
        variants = [v for v in spec.get("variants", ()) if v["type"] == "array"]
        if variants:
            return example_value(variants[0])
    if kind == "string":
        if spec.get("format") == "url":
            return _URLS.get(spec.get("media", "image"), _URLS["image"])
        if spec.get("numeric"):
            return str(int(spec.get("minimum", 1)))
        return "a lighthouse on a cliff at dawn"
    if kind in ("integer", "number"):
        return spec.get("minimum", 1)
    if kind == "boolean":
        return False
    if kind == "array":
        items = spec.get("items")
        count = max(1, spec.get("min_items", 1))
        return [example_value(items) for _ in range(count)] if items else []
    if kind == "object":
        props = spec.get("properties", {})
        return {
            name: example_value(props.get(name, {"type": "string"})) for name in spec.get("required_properties", ())
        }
    return None


def example_request(
    model: ModelInfo, block: BlockInfo, *, full: bool = False, value: str | None = None
) -> dict[str, Any]:
    """A request body for ``block`` of ``model`` that the catalog accepts.

    Args:
        value: the ``model`` string to use (default: the first sendable value the block applies to).
        full: set every parameter, not only the required ones.
    """
    candidates = [v for v in model.sendable_values() if not block.model_values or v in block.model_values]
    request: dict[str, Any] = {"model": value or candidates[0]}
    for param in block.params:
        if not (param.required or full):
            continue
        if not param.required and param.spec.get("encoding") == "json":
            continue  # root helpers (options, imageURLList, ...) mirror other fields: set those instead
        target = request if param.location == "root" else request.setdefault("input", {})
        target[param.name] = example_value(param.spec)
    if not model.root_only:
        request.setdefault("input", {})
    return request
