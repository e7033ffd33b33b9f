"""The Clipia model catalog: which ``model`` slugs exist, what their ``input`` accepts, what they cost.

The catalog is the checked-in snapshot ``clipia_models.json`` beside this file, in the shape of
``GET /v1/models`` (``{"data": [{slug, type, name, capabilities, pricing, input_schema}]}``, Clipia
"models" page; SDK ``_types.py`` ``Model``/``ModelPricing``) plus a top-level ``provenance`` saying where
each entry came from and when. ``mediagen models sync --provider clipia`` replaces it from the live API
(:func:`mediagen.catalog.clipia_sync.sync_snapshot`).

A Clipia *request* is ``{"model": "<slug>", "input": {...}}``: the pipeline sends ``input`` to
``POST /v1/models/{slug}`` ([004:111-115]). ``webhook_url`` is set by the pipeline, so a request's own
value is ignored (like Cliprise's ``callBackUrl``)::

    from mediagen.catalog.clipia import get_clipia_catalog
    cat = get_clipia_catalog()
    cat.validate({"model": "nano-banana-2", "input": {"prompt": "a cat"}})   # [] or [Problem, ...]
    cat.estimate(request)      # credits from pricing, or None
    cat.upper_bound(request)   # the most it can cost (absent pricing inputs at their dearest)

Validation uses ``jsonschema`` (draft 2020-12) on the model's ``input_schema`` converted by
:func:`mediagen.catalog.clipia_schema.to_json_schema`, and reports the same
:class:`~mediagen.catalog.core.Problem` the Cliprise catalog does: the field path (``input.resolution``),
what is wrong and what is allowed, and "did you mean" for unknown slugs and fields.
"""

from __future__ import annotations

import copy
import difflib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from mediagen.catalog.clipia_schema import to_json_schema
from mediagen.catalog.core import Problem, _jtype, _suggest_field
from mediagen.catalog.urls import url_problem
from mediagen.errors import InvalidJob

DATA_FILE = "clipia_models.json"
#: ``type`` values of ``GET /v1/models`` entries -> the pipeline's modality.
_MODALITIES = {"image": "image", "video": "video", "audio": "audio", "speech": "audio", "music": "audio"}
_ENUM_LIST_LIMIT = 24
#: Root keys a request may carry besides ``model`` and ``input`` (set by the pipeline, ignored here).
_IGNORED_ROOT = ("webhook_url",)


@dataclass(frozen=True)
class ClipiaModel:
    """One ``GET /v1/models`` entry.

    Attributes:
        slug: the model slug (``nano-banana-2``), the last path segment of ``POST /v1/models/{slug}``.
        type: the entry's ``type`` (``image``, ``video``, ...).
        name: display name.
        capabilities: e.g. ``["text-to-image"]``.
        pricing: ``{"credits", "credits_base", "multipliers": {input field: {value: factor}}}`` (credits).
        schema: the input's JSON Schema (converted from whatever shape the API gave).
        raw: the entry as the API gave it.
    """

    slug: str
    type: str
    name: str
    capabilities: tuple[str, ...]
    pricing: Mapping[str, Any] = field(repr=False)
    schema: Mapping[str, Any] = field(repr=False)
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def modality(self) -> str | None:
        """``image`` | ``video`` | ``audio``, or None for a type the pipeline cannot store."""
        return _MODALITIES.get(self.type)


@lru_cache(maxsize=1)
def get_clipia_catalog() -> ClipiaCatalog:
    """The packaged snapshot, loaded once per process."""
    return load_clipia_catalog()


def load_clipia_catalog(text: str | None = None) -> ClipiaCatalog:
    """A :class:`ClipiaCatalog` from snapshot JSON text (default: the packaged ``clipia_models.json``).

    Raises:
        ValueError: not a ``{"data": [...]}`` document, or an entry without a slug or with an
            ``input_schema`` of an unknown shape.
    """
    if text is None:
        text = (Path(__file__).parent / DATA_FILE).read_text(encoding="utf-8")
    return ClipiaCatalog(json.loads(text))


def snapshot_path() -> Path:
    """Where the packaged snapshot lives (what ``models sync --provider clipia`` rewrites)."""
    return Path(__file__).parent / DATA_FILE


class ClipiaCatalog:
    """The Clipia model catalog. Same questions as the Cliprise :class:`~mediagen.catalog.core.Catalog`."""

    provider = "clipia"

    def __init__(self, data: Mapping[str, Any]) -> None:
        if not isinstance(data, Mapping) or not isinstance(data.get("data"), list):
            raise ValueError('a Clipia model list is {"data": [...]} (GET /v1/models)')
        self._data = data
        self._models: dict[str, ClipiaModel] = {}
        for entry in data["data"]:
            if not isinstance(entry, Mapping) or not isinstance(entry.get("slug"), str):
                raise ValueError("every GET /v1/models entry needs a string 'slug'")
            self._models[entry["slug"]] = ClipiaModel(
                slug=entry["slug"], type=str(entry.get("type", "")), name=str(entry.get("name", entry["slug"])),
                capabilities=tuple(entry.get("capabilities") or ()), pricing=entry.get("pricing") or {},
                schema=to_json_schema(entry.get("input_schema") or {}), raw=entry,
            )
        self._validators: dict[str, Any] = {}

    @property
    def data(self) -> Mapping[str, Any]:
        """The raw snapshot (``data`` and ``provenance``)."""
        return self._data

    @property
    def provenance(self) -> Mapping[str, Any]:
        """The snapshot's ``provenance`` (``{}`` when absent)."""
        value = self._data.get("provenance")
        return value if isinstance(value, Mapping) else {}

    # ------------------------------------------------------------------------------------ lookup

    def models(self) -> list[ClipiaModel]:
        """Every entry, in snapshot order."""
        return list(self._models.values())

    def resolve(self, slug: Any) -> ClipiaModel | None:
        """The entry for a slug; None if unknown (or not a string)."""
        return self._models.get(slug) if isinstance(slug, str) else None

    def modality(self, slug: Any) -> str | None:
        """``image`` | ``video`` | ``audio`` for a known slug; None otherwise."""
        model = self.resolve(slug)
        return model.modality if model is not None else None

    def suggest(self, slug: str, n: int = 3) -> list[str]:
        """Known slugs close to ``slug`` (for "did you mean")."""
        lowered = {s.lower(): s for s in self._models}
        if slug.lower() in lowered:
            return [lowered[slug.lower()]]
        return difflib.get_close_matches(slug, list(self._models), n=n, cutoff=0.6)

    def schema(self, slug: str) -> dict[str, Any] | None:
        """A JSON Schema of the request body ``{"model": slug, "input": {...}}``, or None if unknown."""
        model = self.resolve(slug)
        if model is None:
            return None
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": f"Clipia request for {slug}",
            "type": "object",
            "properties": {"model": {"const": slug}, "input": copy.deepcopy(dict(model.schema))},
            "required": ["model", "input"],
        }

    # -------------------------------------------------------------------------------- validation

    def validate(self, request: Any, *, allow_unknown_fields: bool = False) -> list[Problem]:
        """Every problem of ``request`` (``{"model": slug, "input": {...}}``); ``[]`` when valid.

        Problems name the field (``model``, ``input``, ``input.num_images``, ``input.image_urls[0]``) and
        say what is allowed (enum values, ranges, lengths). Unknown ``input`` fields are problems (with a
        "did you mean") unless ``allow_unknown_fields``; so are unknown root fields. URL fields
        (``format: uri``) follow the Cliprise catalog's URL policy (public http(s) only).
        """
        if not isinstance(request, Mapping):
            return [Problem("request", "must be a JSON object (a request body); got " + _jtype(request))]
        slug = request.get("model")
        if slug is None:
            return [Problem("model", "is required")]
        if not isinstance(slug, str):
            return [Problem("model", f"must be a string; got {_jtype(slug)}")]
        model = self.resolve(slug)
        if model is None:
            hints = self.suggest(slug)
            hint = (f"; did you mean {', '.join(repr(h) for h in hints)}?" if hints
                    else "; see `mediagen models --provider clipia` for the catalog")
            return [Problem("model", f"unknown Clipia model '{slug}'{hint}")]
        problems: list[Problem] = []
        for key in request:
            if key not in ("model", "input", *_IGNORED_ROOT) and not allow_unknown_fields:
                problems.append(Problem(key, f"unknown field for {slug}; a Clipia request is "
                                             '{"model": ..., "input": {...}}'))
        input_obj = request.get("input")
        if input_obj is None:
            problems.append(Problem("input", f"is required: the parameters of {slug}"))
            return problems
        if not isinstance(input_obj, Mapping):
            problems.append(Problem("input", f"must be a JSON object; got {_jtype(input_obj)}"))
            return problems
        problems.extend(self.validate_input(slug, input_obj, allow_unknown_fields=allow_unknown_fields))
        return problems

    def validate_input(self, slug: str, input_obj: Mapping[str, Any], *,
                       allow_unknown_fields: bool = False) -> list[Problem]:
        """Problems of one model's ``input`` object (paths prefixed ``input.``).

        Raises:
            KeyError: unknown slug.
        """
        model = self._models[slug]
        properties = model.schema.get("properties") or {}
        problems: list[Problem] = []
        if not allow_unknown_fields and model.schema.get("additionalProperties") is not True:
            for key in input_obj:
                if key not in properties:
                    hint = _suggest_field(key, list(properties))
                    text = (f"did you mean 'input.{hint}'?" if hint else
                            f"known fields: {', '.join(sorted(properties)) or '(none)'}")
                    problems.append(Problem(f"input.{key}", f"unknown field for {slug}; {text}"))
        seen: set[tuple[str, str]] = set()
        for error in sorted(self._validator(slug).iter_errors(dict(input_obj)), key=_error_order):
            if error.validator == "additionalProperties":
                continue  # reported above, with a suggestion
            for problem in _problems_of(error):
                if (problem.field, problem.message) not in seen:
                    seen.add((problem.field, problem.message))
                    problems.append(problem)
        problems.extend(self._url_problems(properties, input_obj, seen))
        return problems

    def _validator(self, slug: str) -> Any:
        validator = self._validators.get(slug)
        if validator is None:
            from jsonschema import Draft202012Validator

            schema = dict(self._models[slug].schema)
            Draft202012Validator.check_schema(schema)
            validator = Draft202012Validator(schema)
            self._validators[slug] = validator
        return validator

    def media_fields(self, slug: str) -> frozenset[str]:
        """The request fields of ``slug`` that carry media URLs (its schema's ``format: uri``/``url`` inputs), as
        paths with ``[]`` for an array index: ``{"input.image_url", "input.image_urls[]"}``. Empty for an unknown
        model. Only these fields may hold an ``s3://`` input (:mod:`mediagen.inputs`)."""
        model = self.resolve(slug)
        if model is None:
            return frozenset()
        paths = set()
        for key, prop in (model.schema.get("properties") or {}).items():
            if not isinstance(prop, Mapping):
                continue
            if prop.get("format") in ("uri", "url"):
                paths.add(f"input.{key}")
            elif isinstance(prop.get("items"), Mapping) and prop["items"].get("format") in ("uri", "url"):
                paths.add(f"input.{key}[]")
        return frozenset(paths)

    def _url_problems(self, properties: Mapping[str, Any], input_obj: Mapping[str, Any],
                      seen: set[tuple[str, str]]) -> list[Problem]:
        problems: list[Problem] = []
        for key, prop in properties.items():
            value = input_obj.get(key)
            if not isinstance(prop, Mapping) or value is None:
                continue
            if prop.get("format") in ("uri", "url") and isinstance(value, str):
                found = [(f"input.{key}", value)]
            elif (isinstance(prop.get("items"), Mapping) and prop["items"].get("format") in ("uri", "url")
                    and isinstance(value, list)):
                found = [(f"input.{key}[{i}]", v) for i, v in enumerate(value) if isinstance(v, str)]
            else:
                continue
            for path, url in found:
                message = url_problem(url)
                if message and (path, message) not in seen:
                    problems.append(Problem(path, message))
        return problems

    def check(self, request: Any, *, allow_unknown_fields: bool = False) -> None:
        """Raise :class:`~mediagen.errors.InvalidJob` with every problem when ``request`` is invalid."""
        problems = self.validate(request, allow_unknown_fields=allow_unknown_fields)
        if problems:
            raise InvalidJob([p.to_dict() for p in problems])

    # ----------------------------------------------------------------------------------- pricing

    def estimate(self, request: Any) -> int | None:
        """Credits the request costs from the model's ``pricing``; None when unknown or invalid.

        ``credits_base`` × the multiplier of each ``multipliers`` field, read from ``input`` or else the
        schema's ``default`` (rounded up to whole credits). A pricing field that is absent with no
        default, or whose value has no multiplier, gives None: never a made-up number. A model without
        multipliers costs ``credits`` (or ``credits_base``).
        """
        return self._price(request, dearest_when_absent=False)

    def upper_bound(self, request: Any) -> int | None:
        """The most the request can cost: as :meth:`estimate`, but an absent pricing field counts at its
        most expensive documented setting (defaults are not assumed). None when unknown or invalid."""
        return self._price(request, dearest_when_absent=True)

    def _price(self, request: Any, *, dearest_when_absent: bool) -> int | None:
        if self.validate(request, allow_unknown_fields=True):
            return None
        model = self._models[request["model"]]
        return price(model.pricing, model.schema, request.get("input") or {}, dearest_when_absent=dearest_when_absent)


def price(pricing: Mapping[str, Any], schema: Mapping[str, Any], input_obj: Mapping[str, Any], *,
          dearest_when_absent: bool = False) -> int | None:
    """Credits of one input under ``pricing`` (see :meth:`ClipiaCatalog.estimate`); the emulator uses the
    same function for its ``cost``, so estimates and charges agree. ``minimum_credits`` is a floor;
    ``estimate_required: true`` (the price depends on the submitted media) or ``available: false`` give
    None (SDK 1.5.0 ``ModelPricing``)."""
    if pricing.get("estimate_required") is True or pricing.get("available") is False:
        return None  # the price depends on the submitted media (SDK 1.5.0 ``ModelPricing``): ask the API
    total = _price(pricing, schema, input_obj, dearest_when_absent)
    minimum = pricing.get("minimum_credits")
    if total is not None and isinstance(minimum, int) and not isinstance(minimum, bool):
        total = max(total, minimum)
    return total


def _price(pricing: Mapping[str, Any], schema: Mapping[str, Any], input_obj: Mapping[str, Any],
           dearest_when_absent: bool) -> int | None:
    multipliers = pricing.get("multipliers") or {}
    base = pricing.get("credits_base", pricing.get("credits"))
    if not isinstance(base, int | float) or isinstance(base, bool):
        return None
    if not multipliers:
        flat = pricing.get("credits", base)
        return math.ceil(flat) if isinstance(flat, int | float) else None
    properties = schema.get("properties") or {}
    total = float(base)
    for name, table in multipliers.items():
        if not isinstance(table, Mapping) or not table:
            return None
        value = input_obj.get(name)
        if value is None and not dearest_when_absent:
            prop = properties.get(name)
            value = prop.get("default") if isinstance(prop, Mapping) else None
        if value is None:
            if not dearest_when_absent:
                return None
            factor = max(float(f) for f in table.values())
        else:
            key = json.dumps(value) if isinstance(value, bool) else str(value)
            if key not in table:
                return None
            factor = float(table[key])
        total *= factor
    return math.ceil(round(total, 6))


# ------------------------------------------------------------------------------- error messages


def _fmt(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _num(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _enum_text(enum: list[Any]) -> str:
    shown = [json.dumps(v) if isinstance(v, bool) or v is None else str(v) for v in enum[:_ENUM_LIST_LIMIT]]
    text = ", ".join(shown)
    if len(enum) > _ENUM_LIST_LIMIT:
        text += f", ... ({len(enum)} values; see `mediagen schema --provider clipia`)"
    return text


def _path(error: Any) -> str:
    path = "input"
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _error_order(error: Any) -> tuple[str, str]:
    return (_path(error), str(error.validator))


def _bounds(schema: Mapping[str, Any]) -> str:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    if low is not None and high is not None:
        return f"{_num(low)} to {_num(high)}"
    if low is not None:
        return f"at least {_num(low)}" if "minimum" in schema else f"more than {_num(low)}"
    return f"at most {_num(high)}" if "maximum" in schema else f"less than {_num(high)}"


def _problems_of(error: Any) -> list[Problem]:
    """Our wording of one ``jsonschema`` error (same phrasing as the Cliprise catalog's problems)."""
    path, kind, schema, value = _path(error), error.validator, error.schema, error.instance
    if kind == "required":
        missing = [name for name in error.validator_value if isinstance(value, Mapping) and name not in value]
        return [Problem(f"{path}.{name}", "is required") for name in missing]
    if kind in ("enum", "const"):
        allowed = error.validator_value if kind == "enum" else [error.validator_value]
        return [Problem(path, f"{_fmt(value)} is not allowed; allowed: {_enum_text(list(allowed))}")]
    if kind == "type":
        wanted = error.validator_value
        wanted_text = " or ".join(wanted) if isinstance(wanted, list) else str(wanted)
        article = "an" if wanted_text[:1] in "aeiou" else "a"
        suffix = f"; allowed: {_enum_text(schema['enum'])}" if isinstance(schema.get("enum"), list) else ""
        return [Problem(path, f"must be {article} {wanted_text}; got {_jtype(value)}{suffix}")]
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return [Problem(path, f"{_num(value)} is out of range; allowed: {_bounds(schema)}")]
    if kind == "multipleOf":
        return [Problem(path, f"{_num(value)} is not allowed; allowed: multiples of {_num(error.validator_value)}"
                              + (f" from {_bounds(schema)}" if "minimum" in schema or "maximum" in schema else ""))]
    if kind == "maxLength":
        return [Problem(path, f"is too long: {len(value)} characters; at most {error.validator_value}")]
    if kind == "minLength":
        return [Problem(path, f"is too short: {len(value)} characters; at least {error.validator_value}")]
    if kind == "maxItems":
        return [Problem(path, f"has {len(value)} items; at most {error.validator_value}")]
    if kind == "minItems":
        return [Problem(path, f"has {len(value)} items; at least {error.validator_value}")]
    if kind == "pattern":
        return [Problem(path, f"{_fmt(value)} does not match the pattern {error.validator_value}")]
    return [Problem(path, error.message)]
