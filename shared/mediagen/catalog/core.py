"""Catalog loading, lookup, validation, wire encoding and credit estimates.

Everything here is driven by ``catalog.json`` (see ``docs/catalog-decisions.md`` for its format and for
every decision taken where the provider documents disagree). Nothing is model-specific in this code.

Validation model: a model has one or more *blocks* (the request shapes document 000 gives, e.g.
text-to-image and edit). A request is valid when it matches one of its model's blocks; the problems
reported are those of the closest block. Values may be given in either documented type when the
conversion is lossless (``"5"`` and ``5`` for ``duration``); :meth:`Catalog.encode` sends the type the
documents give for the wire.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from mediagen.catalog.urls import is_http_url, url_problem
from mediagen.errors import InvalidJob

DATA_FILE = "catalog.json"

#: Root keys every request may carry. ``callBackUrl`` is set by the pipeline, so a request's own value
#: is ignored ("Webhooks" [000:142-169]; docs/architecture.md "The contracts").
_ALWAYS_ALLOWED_ROOT = ("model", "callBackUrl")
_ENUM_LIST_LIMIT = 24


@dataclass(frozen=True)
class Problem:
    """One validation problem.

    Attributes:
        field: the field path, e.g. ``"input.duration"``, ``"options.model"``, ``"imageURLList[0]"``,
            ``"model"``; ``"request"`` when the request itself is not a JSON object.
        message: what is wrong and what is allowed, e.g. ``"'4k' is not allowed; allowed: 480p, 720p"``.
    """

    field: str
    message: str

    def to_dict(self) -> dict[str, str]:
        """``{"field": ..., "message": ...}`` -- the shape of ``InvalidJob.problems`` entries."""
        return {"field": self.field, "message": self.message}

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass(frozen=True)
class ParamInfo:
    """One request parameter of a block.

    Attributes:
        name: the key (``"duration"``, ``"imageURLList"``).
        location: ``"root"`` (request body root) or ``"input"`` (inside the ``input`` object).
        type: the JSON type sent on the wire: string, integer, number, boolean, array, object.
        required: whether the block requires it.
        spec: the raw catalog data (enum, minimum, maximum, step, max_length, min_items, max_items,
            format, media, items, accept, encoding, source, ...).
    """

    name: str
    location: str
    type: str
    required: bool
    spec: Mapping[str, Any] = field(compare=False, repr=False)

    @property
    def path(self) -> str:
        """The field path used in problems: ``input.<name>`` or ``<name>``."""
        return f"input.{self.name}" if self.location == "input" else self.name

    @property
    def enum(self) -> list[Any] | None:
        """Allowed values (wire type), or None."""
        value = self.spec.get("enum")
        return list(value) if value is not None else None

    @property
    def source(self) -> dict[str, str]:
        """Where each fact comes from: fact name -> ``"<doc>:<line>"``."""
        return dict(self.spec.get("source", {}))


@dataclass(frozen=True)
class BlockInfo:
    """One documented request shape of a model (e.g. text-to-video, image-to-video).

    Attributes:
        id: short id, unique within the model (``"text-to-video"``).
        title: human title.
        source: ``"<doc>:<line>"`` of the parameter table.
        params: every parameter (block-specific ones and the model's shared root helpers).
        model_values: request ``model`` values this block applies to; empty = all of the model's values.
        sample: the documented sample body (callBackUrl removed), or None.
    """

    id: str
    title: str
    source: str
    params: tuple[ParamInfo, ...]
    model_values: tuple[str, ...]
    sample: Mapping[str, Any] | None = field(compare=False, repr=False)


@dataclass(frozen=True)
class RequestValue:
    """A string accepted in the request's ``model`` field.

    Attributes:
        value: the string a user sends.
        kind: ``id`` (the catalog id, sent as is), ``routed`` (a routed variant such as
            ``seedance-v1-pro``, sent as is), ``tier`` (a variant encoded as the catalog id plus an
            ``options`` tier index, e.g. ``imagen-v4-ultra``), ``alias`` (``kling-2-5``), ``family`` (a
            family id the provider does not accept on generate, e.g. ``seedance-v1``).
        wire_model: the ``model`` value sent on the wire (None for ``family``).
        tier: the pricing tier this value selects, if any.
        options: ``options`` keys this value fixes (a request's own ``options`` must agree).
    """

    value: str
    kind: str
    wire_model: str | None
    tier: str | None
    options: Mapping[str, Any] = field(compare=False)
    set_options: bool = False
    source: str = ""


@dataclass(frozen=True)
class ModelInfo:
    """A catalog entry.

    Attributes:
        id: catalog id ("Model ID" [000:194], or the older documents for legacy entries).
        name: display name.
        modality: ``image`` | ``video`` | ``audio``.
        legacy: present only in the older documents (001, 002; docs/sources.md).
        root_only: every field goes at the request root (no ``input`` object).
        request_values: every ``model`` string accepted for this entry (ids, routed values, aliases).
        aliases: compatibility aliases among ``request_values`` (e.g. ``kling-2-5``).
        blocks: the documented request shapes.
        source: ``"<doc>:<line>"`` of the model's section.
        pricing: the raw pricing data (None when the documents give no price).
        notes: human notes, each ending with its source.
    """

    id: str
    name: str
    modality: str
    legacy: bool
    root_only: bool
    request_values: tuple[str, ...]
    aliases: tuple[str, ...]
    blocks: tuple[BlockInfo, ...]
    source: str
    pricing: Mapping[str, Any] | None = field(compare=False, repr=False)
    notes: tuple[str, ...] = ()
    values: tuple[RequestValue, ...] = field(default=(), compare=False, repr=False)
    rules: tuple[Mapping[str, Any], ...] = field(default=(), compare=False, repr=False)
    option_defaults: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def request_value(self, value: str) -> RequestValue | None:
        """The :class:`RequestValue` for a ``model`` string of this entry, or None."""
        return next((rv for rv in self.values if rv.value == value), None)

    def sendable_values(self) -> list[str]:
        """The ``model`` strings the provider accepts for this entry (no family ids)."""
        return [rv.value for rv in self.values if rv.kind != "family"]


# ------------------------------------------------------------------------------------------ loading


@lru_cache(maxsize=1)
def get_catalog() -> Catalog:
    """The packaged catalog, loaded once per process (one ``json.loads``; lookups built lazily)."""
    return load_catalog()


def load_catalog(text: str | None = None) -> Catalog:
    """A :class:`Catalog` from JSON text (default: the packaged ``catalog.json``)."""
    if text is None:
        text = (Path(__file__).parent / DATA_FILE).read_text(encoding="utf-8")
    return Catalog(json.loads(text))


class Catalog:
    """The model catalog. Build with :func:`get_catalog` (cached) or :func:`load_catalog`."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data
        self._raw_models: Mapping[str, Mapping[str, Any]] = data["models"]
        self._models: dict[str, ModelInfo] = {}
        self._index: dict[str, str] | None = None

    # ------------------------------------------------------------------------------------ lookup

    @property
    def data(self) -> Mapping[str, Any]:
        """The raw catalog data (read-only by convention)."""
        return self._data

    def _value_index(self) -> dict[str, str]:
        if self._index is None:
            index: dict[str, str] = {}
            for model_id, raw in self._raw_models.items():
                index[model_id] = model_id
                for rv in raw.get("request_values", ()):
                    index[rv["value"]] = model_id
            self._index = index
        return self._index

    def _model(self, model_id: str) -> ModelInfo:
        info = self._models.get(model_id)
        if info is None:
            info = _build_model(model_id, self._raw_models[model_id])
            self._models[model_id] = info
        return info

    def resolve(self, model: str) -> ModelInfo | None:
        """The entry for a request ``model`` value (catalog id, routed value or alias); None if unknown."""
        if not isinstance(model, str):
            return None
        model_id = self._value_index().get(model)
        return self._model(model_id) if model_id is not None else None

    def modality(self, model: str) -> str | None:
        """``"image"`` | ``"video"`` | ``"audio"`` for a request ``model`` value; None if unknown."""
        info = self.resolve(model)
        return info.modality if info is not None else None

    def media_fields(self, model: str) -> frozenset[str]:
        """The request fields of ``model`` that carry media URLs (the catalog's ``format: url`` values), as
        paths with ``[]`` for any array index: ``{"input.image_urls[]", "imageURLList[]", "inputImage",
        "input.kling_elements[].element_input_urls[]"}``. Empty for an unknown model. Only these fields may
        hold an ``s3://`` input (:mod:`mediagen.inputs`); any other string is sent as it is."""
        info = self.resolve(model)
        if info is None:
            return frozenset()
        return frozenset(path for block in info.blocks for param in block.params
                         for path in _url_paths(param.spec, param.path))

    def models(self) -> list[ModelInfo]:
        """Every catalog entry (aliases are request values of their target), in catalog order."""
        return [self._model(model_id) for model_id in self._raw_models]

    def suggest(self, model: str, n: int = 3) -> list[str]:
        """Known ``model`` values close to ``model`` (for "did you mean")."""
        import difflib

        candidates = list(self._value_index())
        lowered = {c.lower(): c for c in candidates}
        if model.lower() in lowered:
            return [lowered[model.lower()]]
        return difflib.get_close_matches(model, candidates, n=n, cutoff=0.6)

    # -------------------------------------------------------------------------------- validation

    def validate(self, request: Any, *, allow_unknown_fields: bool = False) -> list[Problem]:
        """Every problem of ``request`` (a documented request body); ``[]`` when it is valid.

        Args:
            request: the request body, without ``callBackUrl`` (a ``callBackUrl`` present is ignored).
            allow_unknown_fields: accept (and later pass through) fields the catalog does not know.
        """
        return self._analyse(request, allow_unknown_fields).problems

    def encode(
        self, request: Any, *, callback_url: str | None = None, allow_unknown_fields: bool = False
    ) -> dict[str, Any]:
        """The exact wire body for ``POST /generate``.

        Applies: routed / alias ``model`` resolution, root vs ``input`` placement, JSON-string encoding
        of ``options`` / ``imageURLList`` / ``videoURLList`` ("Key Concepts" [002:28-43]), lossless
        coercions to the documented wire type, the documented mirrors between fields, and sets
        ``callBackUrl`` when ``callback_url`` is given (a ``callBackUrl`` in ``request`` is dropped).

        Raises:
            InvalidJob: the request is invalid; ``problems`` lists every problem.
        """
        analysis = self._analyse(request, allow_unknown_fields)
        if analysis.problems:
            raise InvalidJob([p.to_dict() for p in analysis.problems])
        assert analysis.wire is not None
        wire = analysis.wire
        body: dict[str, Any] = {"model": wire["model"]}
        if callback_url is not None:
            body["callBackUrl"] = callback_url
        for key, value in wire["root"].items():
            body[key] = (
                json.dumps(value, separators=(",", ":"), ensure_ascii=False) if key in wire["json_keys"] else value
            )
        if wire["input"] is not None:
            body["input"] = wire["input"]
        return body

    def estimate(self, request: Any) -> int | None:
        """Credits the job will cost per the documents' pricing; None when unknown or invalid.

        The tier comes from the request's own parameters (routed model value, ``options`` tier index,
        resolution, duration, sound, ...). Never a made-up number: a combination the documents do not
        price gives None. Sources: "Pricing Reference" [002:1091-1154], the per-tier tables of document 001.
        """
        analysis = self._analyse(request, True)
        if analysis.problems or analysis.wire is None or analysis.model is None:
            return None
        from mediagen.catalog.pricing import estimate_credits

        return estimate_credits(analysis.model.pricing, analysis.wire)

    def upper_bound(self, request: Any) -> int | None:
        """The most the request can cost: :meth:`estimate` when it is known; otherwise, when pricing fields are
        left out, the dearest priced setting of those fields (None when a set value is unpriced, or invalid).
        Sources: as :meth:`estimate`."""
        analysis = self._analyse(request, True)
        if analysis.problems or analysis.wire is None or analysis.model is None:
            return None
        from mediagen.catalog.pricing import upper_bound_credits

        return upper_bound_credits(analysis.model.pricing, analysis.wire)

    # ---------------------------------------------------------------------------------- internals

    def _analyse(self, request: Any, allow_unknown: bool) -> _Analysis:
        if not isinstance(request, Mapping):
            return _Analysis([Problem("request", f"must be a JSON object (a request body); got {_jtype(request)}")])
        problems: list[Problem] = []
        model_value = request.get("model")
        if model_value is None:
            return _Analysis([Problem("model", "is required")])
        if not isinstance(model_value, str):
            return _Analysis([Problem("model", f"must be a string; got {_jtype(model_value)}")])
        info = self.resolve(model_value)
        if info is None:
            hints = self.suggest(model_value)
            hint = (
                f"; did you mean {', '.join(repr(h) for h in hints)}?"
                if hints
                else "; see `mediagen models` for the catalog"
            )
            return _Analysis([Problem("model", f"unknown model '{model_value}'{hint}")])
        rv = info.request_value(model_value)
        assert rv is not None
        if rv.kind == "family":
            problems.append(
                Problem(
                    "model",
                    f"'{model_value}' is a model family and is not accepted on generate; "
                    f"send one of: {', '.join(info.sendable_values())}",
                )
            )
        return _analyse_model(info, rv, request, allow_unknown, problems)


@dataclass
class _Analysis:
    problems: list[Problem]
    model: ModelInfo | None = None
    wire: dict[str, Any] | None = None


def _build_model(model_id: str, raw: Mapping[str, Any]) -> ModelInfo:
    common = [_param(p) for p in raw.get("common_params", ())]
    blocks = []
    for block in raw["blocks"]:
        params = [_param(p) for p in block["params"]]
        names = {(p.location, p.name) for p in params}
        params.extend(p for p in common if (p.location, p.name) not in names)
        blocks.append(
            BlockInfo(
                id=block["id"],
                title=block.get("title", block["id"]),
                source=block.get("source", ""),
                params=tuple(params),
                model_values=tuple(block.get("model_values", ())),
                sample=block.get("sample"),
            )
        )
    values = tuple(
        RequestValue(
            value=rv["value"],
            kind=rv["kind"],
            wire_model=rv.get("wire_model"),
            tier=rv.get("tier"),
            options=dict(rv.get("options", {})),
            set_options=bool(rv.get("set_options", False)),
            source=rv.get("source", ""),
        )
        for rv in raw.get("request_values", ())
    )
    return ModelInfo(
        id=model_id,
        name=raw.get("name", model_id),
        modality=raw["modality"],
        legacy=bool(raw.get("legacy")),
        root_only=bool(raw.get("root_only")),
        request_values=tuple(rv.value for rv in values),
        aliases=tuple(rv.value for rv in values if rv.kind == "alias"),
        blocks=tuple(blocks),
        source=raw.get("source", ""),
        pricing=raw.get("pricing"),
        notes=tuple(n["text"] + (f" ({n['source']})" if n.get("source") else "") for n in raw.get("notes", ())),
        values=values,
        rules=tuple(raw.get("rules", ())),
        option_defaults=dict(raw.get("option_defaults", {})),
    )


def _url_paths(spec: Mapping[str, Any], path: str) -> list[str]:
    """Paths (``[]`` for array items) under ``spec`` whose values are URLs (``format: url``)."""
    found = [path] if spec.get("format") == "url" else []
    items = spec.get("items")
    if isinstance(items, Mapping):
        found += _url_paths(items, f"{path}[]")
    properties = spec.get("properties")
    if isinstance(properties, Mapping):
        for name, sub in properties.items():
            if isinstance(sub, Mapping):
                found += _url_paths(sub, f"{path}.{name}")
    return found


def _param(raw: Mapping[str, Any]) -> ParamInfo:
    return ParamInfo(
        name=raw["name"],
        location=raw.get("location", "input"),
        type=raw["type"],
        required=bool(raw.get("required")),
        spec=raw,
    )


# ------------------------------------------------------------------------------- model analysis


def _analyse_model(
    info: ModelInfo,
    rv: RequestValue,
    request: Mapping[str, Any],
    allow_unknown: bool,
    problems: list[Problem],
) -> _Analysis:
    root: dict[str, Any] = {k: v for k, v in request.items() if k not in _ALWAYS_ALLOWED_ROOT}
    input_obj: dict[str, Any] | None = None
    has_input_params = any(p.location == "input" for b in info.blocks for p in b.params)
    if "input" in root and has_input_params:
        raw_input = root.pop("input")
        if isinstance(raw_input, Mapping):
            input_obj = dict(raw_input)
        else:
            problems.append(Problem("input", f"must be a JSON object; got {_jtype(raw_input)}"))
            input_obj = {}
    elif has_input_params:
        input_obj = {}
    blocks = [b for b in info.blocks if not b.model_values or rv.value in b.model_values] or list(info.blocks)
    # Documented mirrors are filled before matching so that e.g. a root imageURLList alone selects the
    # image-to-video block ("Key Concepts" [002:28-43]: "The pipeline parses and routes these URLs").
    _fill_mirrors(info, blocks, root, input_obj)
    # The closest block: the one that knows most of the fields sent, then the one with fewest problems.
    names: dict[str, list[str]] = {"root": [], "input": []}
    for block in blocks:
        for param in block.params:
            if param.name not in names[param.location]:
                names[param.location].append(param.name)
    best: tuple[tuple[int, int], _BlockResult] | None = None
    for block in blocks:
        result = _check_block(info, rv, block, root, input_obj, allow_unknown, names)
        score = (result.unknown, len(result.problems))
        if best is None or score < best[0]:
            best = (score, result)
            if not result.problems:
                break
    assert best is not None
    result = best[1]
    problems.extend(result.problems)
    if problems:
        return _Analysis(problems, info)
    wire_root: dict[str, Any] = dict(result.root)
    json_keys = {p.name for p in result.block.params if p.location == "root" and p.spec.get("encoding") == "json"}
    options = _wire_options(info, rv, wire_root.get("options"), _option_mirrors(info, result.root, result.input))
    if options is not None:
        wire_root["options"] = options
    wire = {
        "model": rv.wire_model or info.id,
        "root": wire_root,
        "input": (result.input or None) if info.root_only else result.input,
        "json_keys": json_keys | ({"options"} if options is not None else set()),
        "request_value": rv.value,
        "tier": rv.tier,
    }
    return _Analysis([], info, wire)


def _option_mirrors(info: ModelInfo, root: Mapping[str, Any], input_obj: Mapping[str, Any] | None) -> dict[str, Any]:
    """``options`` keys documented as carrying a field's value (``to_option`` rules), from the request."""
    out: dict[str, Any] = {}
    for rule in info.rules:
        if rule["kind"] != "to_option":
            continue
        value = _get_path(root, input_obj, rule["from"])
        if value is None:
            continue
        mapping = rule.get("map")
        if mapping is not None:
            if str(value) not in mapping:
                continue
            value = mapping[str(value)]
        out[rule["option"]] = value
    return out


def _wire_options(info: ModelInfo, rv: RequestValue, given: Any, mirrored: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``options`` object to send: the request's own, plus the keys the model value fixes, the keys
    mirrored from fields, and the documented tier defaults (in that order of precedence)."""
    options = dict(given) if isinstance(given, Mapping) else None
    forced = dict(rv.options) if rv.set_options else {}
    defaults = dict(info.option_defaults)
    if options is None and not forced and not defaults and not mirrored:
        return None
    merged = dict(options or {})
    for extra in (forced, mirrored, defaults):
        for key, value in extra.items():
            merged.setdefault(key, value)
    return merged


@dataclass
class _BlockResult:
    block: BlockInfo
    problems: list[Problem]
    root: dict[str, Any]
    input: dict[str, Any]
    unknown: int = 0


def _check_block(
    info: ModelInfo,
    rv: RequestValue,
    block: BlockInfo,
    root: Mapping[str, Any],
    input_obj: Mapping[str, Any] | None,
    allow_unknown: bool,
    names: Mapping[str, list[str]],
) -> _BlockResult:
    problems: list[Problem] = []
    out_root: dict[str, Any] = {}
    out_input: dict[str, Any] = {}
    by_loc: dict[str, dict[str, ParamInfo]] = {"root": {}, "input": {}}
    for param in block.params:
        by_loc[param.location][param.name] = param
    for param in block.params:
        container = root if param.location == "root" else (input_obj or {})
        target = out_root if param.location == "root" else out_input
        if param.name not in container or container[param.name] is None:
            if param.required:
                problems.append(Problem(param.path, "is required" + _allowed_suffix(param.spec)))
            elif "wire_default" in param.spec:
                target[param.name] = param.spec["wire_default"]
            continue
        ok, value = check_value(param.spec, container[param.name], param.path, problems, allow_unknown)
        if ok:
            target[param.name] = value
    known_problems = len(problems)
    for key, value in root.items():
        if key not in by_loc["root"]:
            if allow_unknown:
                out_root[key] = value
            else:
                problems.append(Problem(key, _unknown_message(key, "root", by_loc, rv.value, names)))
    if input_obj is not None:
        for key, value in input_obj.items():
            if key not in by_loc["input"]:
                if allow_unknown:
                    out_input[key] = value
                else:
                    problems.append(Problem(f"input.{key}", _unknown_message(key, "input", by_loc, rv.value, names)))
    unknown = len(problems) - known_problems
    _check_rules(info, rv, block, out_root, out_input, problems)
    return _BlockResult(block, problems, out_root, out_input, unknown)


def _unknown_message(
    key: str,
    location: str,
    by_loc: Mapping[str, Mapping[str, ParamInfo]],
    model: str,
    names: Mapping[str, list[str]],
) -> str:
    """Why ``key`` is not accepted, with a suggestion drawn from every field the model knows."""
    other = "input" if location == "root" else "root"
    if key == "input" and location == "root" and not by_loc["input"]:
        return f"{model} takes no input object (a root-only model, [002:1227-1229]): put its fields at the root"
    if key in by_loc[other]:
        where = f"input.{key}" if other == "input" else f"'{key}' at the request root"
        return f"is not accepted here for {model}; send it as {where}"
    here = list(by_loc[location])
    hint = _suggest_field(key, [*here, *(n for n in names[location] if n not in by_loc[location])])
    if hint is None:
        alt = _suggest_field(key, names[other])
        if alt is not None:
            hint = f"input.{alt}" if other == "input" else alt
    if hint is not None:
        return f"unknown field for {model}; did you mean '{hint}'?"
    known = ", ".join(sorted(here)) or "(none)"
    where = "in input" if location == "input" else "at the request root"
    return f"unknown field for {model}; known fields {where}: {known}"


def _suggest_field(key: str, candidates: list[str]) -> str | None:
    import difflib

    def norm(text: str) -> str:
        return re.sub(r"[^a-z0-9]", "", text.lower())

    for candidate in candidates:
        if norm(candidate) == norm(key):
            return candidate
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.75)
    if close:
        return close[0]
    normed = {norm(c): c for c in candidates}
    close = difflib.get_close_matches(norm(key), list(normed), n=1, cutoff=0.75)
    return normed[close[0]] if close else None


# --------------------------------------------------------------------------------------- rules


def _get_path(root: Mapping[str, Any], input_obj: Mapping[str, Any] | None, path: str) -> Any:
    if path.startswith("input."):
        return None if input_obj is None else input_obj.get(path[6:])
    if path.startswith("options."):
        options = root.get("options")
        if isinstance(options, str):
            options = _loads(options)
        return options.get(path[8:]) if isinstance(options, Mapping) else None
    return root.get(path)


def _url_list(value: Any) -> list[str] | None:
    """The URLs a single-URL field, a URL list or a JSON-string URL list holds."""
    if isinstance(value, str):
        parsed = _loads(value) if value.lstrip().startswith("[") else None
        value = parsed if isinstance(parsed, list) else [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def _shape_urls(param: ParamInfo, urls: list[str]) -> Any:
    """URLs in the shape ``param`` takes: a list, or one URL string."""
    if param.type == "array":
        return list(urls)
    if len(urls) > 1 and any(v.get("type") == "array" for v in param.spec.get("variants", ())):
        return list(urls)
    return urls[0]


def _first_url(value: Any) -> str | None:
    if isinstance(value, str):
        parsed = _loads(value) if value.lstrip().startswith("[") else value
        if isinstance(parsed, list):
            value = parsed
        else:
            return value
    if isinstance(value, list) and value and isinstance(value[0], str):
        return value[0]
    return None


def _fill_mirrors(
    info: ModelInfo, blocks: Iterable[BlockInfo], root: dict[str, Any], input_obj: dict[str, Any] | None
) -> None:
    """Fill absent mirrored fields from present ones (documented in the rule's source)."""
    known = {p.path: p for b in blocks for p in b.params}
    for rule in info.rules:
        if rule["kind"] != "mirror":
            continue
        fields = [f for f in rule["fields"] if f in known]
        present = [f for f in fields if _get_path(root, input_obj, f) is not None]
        if not present or len(present) == len(fields):
            continue
        source_value = _get_path(root, input_obj, present[0])
        compare = rule.get("compare", "value")
        urls = _url_list(source_value) if compare != "value" else None
        if compare != "value":
            if not urls or not all(is_http_url(u) for u in urls):
                continue
            if compare == "first_url":
                urls = urls[:1]
        for path in fields:
            if path in present:
                continue
            param = known[path]
            value: Any = _shape_urls(param, urls) if urls is not None else copy.deepcopy(source_value)
            if param.location == "input":
                if input_obj is not None:
                    input_obj[param.name] = value
            else:
                root[param.name] = value


def _check_rules(
    info: ModelInfo,
    rv: RequestValue,
    block: BlockInfo,
    root: Mapping[str, Any],
    input_obj: Mapping[str, Any],
    problems: list[Problem],
) -> None:
    for rule in info.rules:
        if rule["kind"] == "mirror":
            present = [(f, _get_path(root, input_obj, f)) for f in rule["fields"]]
            present = [(f, v) for f, v in present if v is not None]
            if len(present) < 2:
                continue
            compare = rule.get("compare", "value")
            first_field, first_value = present[0]

            def key_of(value: Any, compare: str = compare) -> Any:
                if compare == "first_url":
                    return _first_url(value)
                return _url_list(value) if compare == "urls" else value

            key = key_of(first_value)
            for other_field, other_value in present[1:]:
                if key_of(other_value) != key:
                    what = {"first_url": "the same URL as", "urls": "the same URLs as"}.get(
                        compare, "the same value as"
                    )
                    problems.append(Problem(other_field, f"must be {what} {first_field} ({rule.get('source', '')})"))
    options = root.get("options")
    if not isinstance(options, Mapping):
        return
    for key, expected in rv.options.items():
        if key in options and options[key] != expected:
            problems.append(
                Problem(
                    f"options.{key}",
                    f"{_fmt(options[key])} does not match model '{rv.value}'; "
                    f"it must be {_fmt(expected)} (or be omitted)",
                )
            )
    for key, expected in _option_mirrors(info, root, input_obj).items():
        if key in options and options[key] != expected:
            rule = next(r for r in info.rules if r["kind"] == "to_option" and r["option"] == key)
            problems.append(
                Problem(
                    f"options.{key}",
                    f"{_fmt(options[key])} contradicts {rule['from']} (which "
                    f"gives {_fmt(expected)}); omit it or make them agree",
                )
            )


# -------------------------------------------------------------------------------- value checks

_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "array": "an array",
    "object": "an object",
}
_INT_RE = re.compile(r"^[+-]?\d+$")
_NUM_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _jtype(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _fmt(value: Any) -> str:
    if isinstance(value, str):
        return f"'{value}'"
    return json.dumps(value)


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _is_type(kind: str, value: Any) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "array":
        return isinstance(value, list)
    if kind == "object":
        return isinstance(value, Mapping)
    return False


def _coerce(kind: str, value: Any, accept: Iterable[str]) -> tuple[bool, Any]:
    """Lossless conversion of ``value`` to the wire type ``kind`` (only from the ``accept`` types)."""
    if kind == "integer" and isinstance(value, float) and value.is_integer():
        return True, int(value)
    if _is_type(kind, value):
        return True, value
    for alt in accept:
        if alt == "integer" and isinstance(value, float) and value.is_integer():
            value = int(value)
        if not _is_type(alt, value):
            continue
        if kind == "string" and alt in ("integer", "number"):
            if isinstance(value, float) and value.is_integer():
                return True, str(int(value))
            return True, str(value)
        if kind == "string" and alt == "boolean":
            return True, "true" if value else "false"
        if kind == "string" and alt == "array":
            if len(value) == 1 and isinstance(value[0], str):
                return True, value[0]
            return False, None
        if kind == "integer" and alt == "string" and _INT_RE.match(value.strip()):
            return True, int(value)
        if kind == "number" and alt == "string" and _NUM_RE.match(value.strip()):
            number = float(value)
            return True, int(number) if _INT_RE.match(value.strip()) else number
        if kind == "boolean" and alt == "string" and value in ("true", "false"):
            return True, value == "true"
        if kind == "array" and alt == "string":
            return True, [value]
    return False, None


def _describe_type(spec: Mapping[str, Any]) -> str:
    words = [_TYPE_WORDS.get(spec["type"], spec["type"])]
    words += [_TYPE_WORDS.get(a, a) for a in spec.get("accept", ())]
    words += [_TYPE_WORDS.get(v["type"], v["type"]) for v in spec.get("variants", ())]
    if spec.get("encoding") == "json":
        words.append(f"a JSON string holding {words[0]}")
    return " or ".join(dict.fromkeys(words))


def _allowed_suffix(spec: Mapping[str, Any]) -> str:
    enum = spec.get("enum")
    if enum:
        return f"; allowed: {_enum_text(enum)}"
    return ""


def _enum_text(enum: list[Any]) -> str:
    shown = [str(v) if not isinstance(v, bool) else json.dumps(v) for v in enum[:_ENUM_LIST_LIMIT]]
    text = ", ".join(shown)
    if len(enum) > _ENUM_LIST_LIMIT:
        text += f", ... ({len(enum)} values; see `mediagen models show`)"
    return text


def check_value(
    spec: Mapping[str, Any], value: Any, path: str, problems: list[Problem], allow_unknown: bool = False
) -> tuple[bool, Any]:
    """Check one value against a parameter spec; append problems; return (ok, value in wire type).

    JSON-encoded parameters (``"encoding": "json"``) are returned decoded; the encoder stringifies them.
    """
    if spec.get("encoding") == "json" and isinstance(value, str):
        decoded = _loads(value)
        if decoded is None:
            problems.append(Problem(path, f"is not valid JSON; send {_describe_type(spec)}"))
            return False, None
        value = decoded
    ok, coerced = _coerce(spec["type"], value, spec.get("accept", ()))
    if not ok:
        for variant in spec.get("variants", ()):
            sub: list[Problem] = []
            vok, vvalue = check_value(variant, value, path, sub, allow_unknown)
            if _is_type(variant["type"], value):
                problems.extend(sub)
                return vok and not sub, vvalue
        problems.append(Problem(path, f"must be {_describe_type(spec)}; got {_jtype(value)}"))
        return False, None
    before = len(problems)
    kind = spec["type"]
    enum = spec.get("enum")
    if enum is not None and not _in_enum(coerced, enum):
        problems.append(Problem(path, f"{_fmt(value)} is not allowed; allowed: {_enum_text(enum)}"))
    if kind in ("integer", "number"):
        _check_range(spec, coerced, path, problems)
    elif kind == "string":
        _check_string(spec, coerced, path, problems)
    elif kind == "array":
        coerced = list(coerced)
        _check_array(spec, coerced, path, problems, allow_unknown)
    elif kind == "object":
        coerced = _check_object(spec, coerced, path, problems, allow_unknown)
    return len(problems) == before, coerced


def _in_enum(value: Any, enum: list[Any]) -> bool:
    for allowed in enum:
        if isinstance(allowed, bool) or isinstance(value, bool):
            if isinstance(allowed, bool) and isinstance(value, bool) and allowed == value:
                return True
        elif allowed == value:
            return True
    return False


def _check_range(spec: Mapping[str, Any], value: float, path: str, problems: list[Problem]) -> None:
    low, high = spec.get("minimum"), spec.get("maximum")
    if (low is not None and value < low) or (high is not None and value > high):
        if low is not None and high is not None:
            bounds = f"{_num(low)} to {_num(high)}"
        elif low is not None:
            bounds = f"at least {_num(low)}"
        else:
            bounds = f"at most {_num(high)}"
        problems.append(Problem(path, f"{_num(value)} is out of range; allowed: {bounds}"))
        return
    step = spec.get("step")
    if step is not None and step >= 1 and low is not None:
        offset = (value - low) / step
        if abs(offset - round(offset)) > 1e-9:
            problems.append(
                Problem(
                    path,
                    f"{_num(value)} is not allowed; allowed: {_num(low)} to {_num(high)} in steps of {_num(step)}",
                )
            )


def _num(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _check_string(spec: Mapping[str, Any], value: str, path: str, problems: list[Problem]) -> None:
    if spec.get("numeric"):
        if not _NUM_RE.match(value.strip()):
            problems.append(Problem(path, f"{_fmt(value)} is not a number"))
        else:
            _check_range(spec, float(value), path, problems)
    min_items = spec.get("min_items")
    if min_items is not None and min_items > 1:
        problems.append(Problem(path, f"needs {min_items} URLs; send an array of {min_items} URLs"))
    max_length = spec.get("max_length")
    if max_length is not None and len(value) > max_length:
        problems.append(Problem(path, f"is too long: {len(value)} characters; at most {max_length}"))
    if spec.get("format") == "url":
        message = url_problem(value)
        if message:
            problems.append(Problem(path, message))



def _check_array(
    spec: Mapping[str, Any], value: list[Any], path: str, problems: list[Problem], allow_unknown: bool
) -> None:
    low, high = spec.get("min_items"), spec.get("max_items")
    if low is not None and len(value) < low:
        problems.append(Problem(path, f"has {len(value)} item(s); at least {low} required"))
    if high is not None and len(value) > high:
        problems.append(Problem(path, f"has {len(value)} items; at most {high} allowed"))
    items = spec.get("items")
    if items is not None:
        for index, item in enumerate(value):
            ok, coerced = check_value(items, item, f"{path}[{index}]", problems, allow_unknown)
            if ok:
                value[index] = coerced
    total = spec.get("max_total_length")
    if total is not None:
        length = sum(
            len(item.get(total["property"], ""))
            for item in value
            if isinstance(item, Mapping) and isinstance(item.get(total["property"]), str)
        )
        if length > total["max"]:
            problems.append(
                Problem(
                    path,
                    f"is too long: {length} characters of {total['property']} combined; at most {total['max']}",
                )
            )


def _check_object(
    spec: Mapping[str, Any], value: Mapping[str, Any], path: str, problems: list[Problem], allow_unknown: bool
) -> dict[str, Any]:
    properties: Mapping[str, Mapping[str, Any]] = spec.get("properties", {})
    out: dict[str, Any] = {}
    for name in spec.get("required_properties", ()):
        if name not in value:
            problems.append(Problem(f"{path}.{name}", "is required" + _allowed_suffix(properties.get(name, {}))))
    for name, item in value.items():
        sub = properties.get(name)
        if sub is None:
            if spec.get("additional_properties", False) or allow_unknown:
                out[name] = item
            else:
                hint = _suggest_field(name, list(properties))
                known = ", ".join(properties) or "(none)"
                problems.append(
                    Problem(
                        f"{path}.{name}",
                        f"unknown key; did you mean '{hint}'?" if hint else f"unknown key; known keys: {known}",
                    )
                )
            continue
        ok, coerced = check_value(sub, item, f"{path}.{name}", problems, allow_unknown)
        out[name] = coerced if ok else item
    return out
