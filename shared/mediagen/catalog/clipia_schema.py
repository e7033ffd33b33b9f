"""The one converter between the shapes a Clipia model's ``input_schema`` comes in.

The public sources disagree on the shape of ``input_schema`` in ``GET /v1/models`` and
``GET /v1/models/{slug}`` (Clipia "models" page; SDK ``clipia-ai/clipia-python`` ``_types.py``;
``clipia-ai/clipia-js`` ``types.ts``):

- a **JSON Schema** object (``{"type": "object", "properties": {...}, "required": [...]}``) -- the
  models page and the OpenAPI document describe the input of a model as a JSON Schema;
- a **parameters list**, as the SDK 1.5.0 types it (``ModelInputSchema``: ``{"parameters": [{"name",
  "type", "required", "default", "label", "hint", "options": [{"value", "label"}], "min", "max",
  "step", "minLength", "maxLength", "validation"}], "parameterGroups"?}``), or bare;
- a **field map** (``{"prompt": {"type": "string", "required": true}, ...}``: the JS SDK's
  ``Record<string, ModelInputField>``).

:func:`to_json_schema` turns any of them into a JSON Schema (draft 2020-12) object schema, which
:mod:`mediagen.catalog.clipia` validates with ``jsonschema``; :func:`to_parameters` goes back to a
parameters list (the converter is tested both ways). Only the standard library is imported.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

#: Keywords of one parameter carried over to its JSON Schema property unchanged.
PROPERTY_KEYWORDS = (
    "type", "enum", "default", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
    "minLength", "maxLength", "pattern", "format", "items", "minItems", "maxItems", "description", "title",
    "examples", "const",
)
#: Spellings of the same keyword found in parameter lists -> the JSON Schema keyword.
_ALIASES = {
    "min": "minimum", "max": "maximum", "min_length": "minLength", "max_length": "maxLength",
    "min_items": "minItems", "max_items": "maxItems", "multiple_of": "multipleOf", "options": "enum",
    "values": "enum", "label": "title", "hint": "description",
}
#: JSON Schema keyword -> the SDK's parameter key (the reverse direction, :func:`to_parameters`).
_PARAMETER_KEYS = {"minimum": "min", "maximum": "max", "title": "label", "description": "hint", "enum": "options"}


class SchemaShapeError(ValueError):
    """An ``input_schema`` in none of the known shapes (the message says which shape was expected)."""


def schema_shape(input_schema: Any) -> str:
    """``"json-schema"``, ``"parameters"`` or ``"field-map"``: which shape ``input_schema`` is in.

    Raises:
        SchemaShapeError: none of them.
    """
    if isinstance(input_schema, list):
        return "parameters"
    if not isinstance(input_schema, Mapping):
        raise SchemaShapeError(f"input_schema must be an object or a list, got {type(input_schema).__name__}")
    if isinstance(input_schema.get("parameters"), list):
        return "parameters"
    if input_schema.get("type") == "object" or "properties" in input_schema or "$schema" in input_schema:
        return "json-schema"
    if input_schema and all(isinstance(v, Mapping) and "type" in v for v in input_schema.values()):
        return "field-map"
    if not input_schema:
        return "json-schema"
    raise SchemaShapeError("input_schema is neither a JSON Schema (type/properties), a parameters list "
                           "([{name, type, ...}]) nor a field map ({name: {type, ...}})")


def _option_value(option: Any) -> Any:
    """An ``options`` item: ``{"value": v, "label"?}`` (SDK) or the bare value."""
    return option.get("value") if isinstance(option, Mapping) and "value" in option else option


def _property(spec: Mapping[str, Any]) -> dict[str, Any]:
    prop: dict[str, Any] = {}
    validation = spec.get("validation")
    merged = {**(validation if isinstance(validation, Mapping) else {}), **spec}
    for key, value in merged.items():
        keyword = _ALIASES.get(key, key)
        if keyword == "enum" and isinstance(value, list):
            prop["enum"] = [copy.deepcopy(_option_value(v)) for v in value]
        elif keyword in PROPERTY_KEYWORDS:
            prop[keyword] = copy.deepcopy(value)
    step = merged.get("step")
    low = prop.get("minimum", 0)
    if (isinstance(step, int | float) and not isinstance(step, bool) and step > 0 and "multipleOf" not in prop
            and isinstance(low, int | float) and (low / step).is_integer()):
        prop["multipleOf"] = step  # a step from a multiple of itself is exactly multipleOf
    return prop


def to_json_schema(input_schema: Any) -> dict[str, Any]:
    """A JSON Schema object schema equivalent to ``input_schema`` (any shape of :func:`schema_shape`).

    A JSON Schema is returned as a deep copy (``"type": "object"`` added when missing). A parameters
    list or field map becomes ``{"type": "object", "properties": {name: {...}}, "required": [...]}``
    with each parameter's keywords (snake-case spellings such as ``max_length`` mapped to
    ``maxLength``); a parameter's ``required: true`` lists it in ``required``. Unknown keys of a
    parameter are dropped. ``additionalProperties`` is left to the validator (see
    :meth:`mediagen.catalog.clipia.ClipiaCatalog.validate`).

    Raises:
        SchemaShapeError: an unknown shape, or a parameter without a string ``name``.
    """
    shape = schema_shape(input_schema)
    if shape == "json-schema":
        given = copy.deepcopy(dict(input_schema))
        given.setdefault("type", "object")
        return given
    if shape == "parameters":
        params = input_schema if isinstance(input_schema, list) else input_schema["parameters"]
        entries: list[tuple[str, Mapping[str, Any]]] = []
        for index, param in enumerate(params):
            if not isinstance(param, Mapping) or not isinstance(param.get("name"), str):
                raise SchemaShapeError(f"input_schema parameter {index} has no string 'name'")
            entries.append((param["name"], param))
    else:
        entries = [(name, spec) for name, spec in input_schema.items()]
    properties = {name: _property(spec) for name, spec in entries}
    required = [name for name, spec in entries if spec.get("required") is True]
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def to_parameters(schema: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The SDK's parameters-list form of a JSON Schema object schema: one ``{"name", "required"?, ...}``
    per property, in property order; ``minimum``/``maximum`` -> ``min``/``max``, ``title`` -> ``label``,
    ``description`` -> ``hint``, ``enum`` -> ``options: [{"value": v}]``, other keywords of
    :data:`PROPERTY_KEYWORDS` kept as they are.

    ``to_json_schema(to_parameters(s))`` equals ``s`` for an object schema that uses only those
    keywords plus ``properties`` and ``required``.

    Raises:
        SchemaShapeError: ``schema`` is not an object schema.
    """
    if schema_shape(schema) != "json-schema":
        raise SchemaShapeError("to_parameters needs a JSON Schema object schema")
    required = set(schema.get("required", ()))
    params: list[dict[str, Any]] = []
    for name, prop in (schema.get("properties") or {}).items():
        param: dict[str, Any] = {"name": name}
        for keyword, value in _property(prop).items():
            key = _PARAMETER_KEYS.get(keyword, keyword)
            param[key] = [{"value": v} for v in value] if keyword == "enum" else value
        if name in required:
            param["required"] = True
        params.append(param)
    return params
