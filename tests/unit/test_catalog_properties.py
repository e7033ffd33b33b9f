"""Property-based tests: requests generated from the catalog data are accepted; mutations are rejected.

Valid requests are drawn from every block of every model (required fields always, optional ones
sometimes, values from the documented enums / ranges / lengths / item counts). Each mutation -- drop a
field every block requires, break a type, leave the allowed set, exceed a limit, misspell a field -- must
be rejected with a problem that names the field.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mediagen.catalog import BlockInfo, ModelInfo, ParamInfo, get_catalog
from mediagen.catalog.examples import example_value

CAT = get_catalog()
URLS = {
    "image": ["https://example.com/a.png", "http://cdn.example.org/path/b.jpg?sig=1"],
    "video": ["https://example.com/a.mp4"],
    "audio": ["https://example.com/a.mp3"],
}
CASES = [
    (m, b, v)
    for m in CAT.models()
    for b in m.blocks
    for v in m.sendable_values()
    if not b.model_values or v in b.model_values
]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _mirrored(model: ModelInfo) -> set[str]:
    return {f for rule in model.rules if rule["kind"] == "mirror" for f in rule["fields"]}


def value_strategy(spec: dict[str, Any]) -> st.SearchStrategy[Any]:
    if spec.get("enum"):
        return st.sampled_from(spec["enum"])
    kind = spec["type"]
    if kind == "string" and spec.get("min_items", 1) > 1:
        return st.just(example_value(spec))
    if kind == "string":
        if spec.get("format") == "url":
            return st.sampled_from(URLS[spec.get("media", "image")])
        if spec.get("numeric"):
            low, high = int(spec.get("minimum", 1)), int(spec.get("maximum", 60))
            return st.integers(low, high).map(str)
        return st.text(alphabet="abcdefghij klmnop", min_size=1, max_size=min(spec.get("max_length", 40), 40))
    if kind in ("integer", "number"):
        low, high = spec.get("minimum", 0), spec.get("maximum", 10**6)
        step = spec.get("step")
        if (
            kind == "integer"
            or (step is not None and step >= 1)
            or (isinstance(low, int) and isinstance(high, int) and step is None)
        ):
            grid = int(step) if step and step >= 1 else 1
            return st.integers(0, int((high - low) // grid)).map(lambda k: low + k * grid)
        return st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        items = spec.get("items")
        if items is None or items.get("type") == "object":
            return st.just(example_value(spec))
        low = spec.get("min_items", 1)
        high = min(spec.get("max_items", 3), 3)
        return st.lists(value_strategy(items), min_size=low, max_size=max(low, high))
    return st.just(example_value(spec))


@st.composite
def valid_requests(draw: st.DrawFn) -> tuple[ModelInfo, BlockInfo, dict[str, Any]]:
    model, block, value = draw(st.sampled_from(CASES))
    mirrored = _mirrored(model)
    request: dict[str, Any] = {"model": value}
    if not model.root_only:
        request["input"] = {}
    for param in block.params:
        optional_skipped = param.spec.get("encoding") == "json" or param.path in mirrored or not draw(st.booleans())
        if not param.required and optional_skipped:
            continue
        target = request if param.location == "root" else request.setdefault("input", {})
        target[param.name] = draw(value_strategy(dict(param.spec)))
    return model, block, request


def _container(request: dict[str, Any], param: ParamInfo) -> dict[str, Any]:
    return request if param.location == "root" else request["input"]


def _present(block: BlockInfo, request: dict[str, Any]) -> list[ParamInfo]:
    return [p for p in block.params if p.name in (request if p.location == "root" else request.get("input", {}))]


def _problem_fields(request: dict[str, Any]) -> set[str]:
    return {p.field for p in CAT.validate(request)}


@SETTINGS
@given(valid_requests())
def test_generated_requests_are_valid_and_encodable(
    case: tuple[ModelInfo, BlockInfo, dict[str, Any]],
) -> None:
    model, _block, request = case
    assert CAT.validate(request) == []
    body = CAT.encode(request, callback_url="https://hooks.example.com/cb")
    assert body["callBackUrl"] == "https://hooks.example.com/cb"
    assert CAT.resolve(body["model"]) is model
    if not model.root_only:
        assert isinstance(body["input"], dict)
    credits = CAT.estimate(request)
    assert credits is None or credits > 0


@SETTINGS
@given(valid_requests(), st.data())
def test_dropping_a_required_field_is_reported(
    case: tuple[ModelInfo, BlockInfo, dict[str, Any]], data: st.DataObject
) -> None:
    model, block, request = case
    blocks = [b for b in model.blocks if not b.model_values or request["model"] in b.model_values]
    always = [
        p
        for p in block.params
        if p.required
        and all(any(q.path == p.path and q.required for q in b.params) for b in blocks)
        and p.path not in _mirrored(model)
    ]
    if not always:
        return
    param = data.draw(st.sampled_from(always))
    mutated = copy.deepcopy(request)
    del _container(mutated, param)[param.name]
    assert param.path in _problem_fields(mutated)


WRONG = {
    "string": {"not": "a string"},
    "integer": [1],
    "number": {"n": 1},
    "boolean": "maybe",
    "array": {"not": "a list"},
    "object": [1, 2],
}


@SETTINGS
@given(valid_requests(), st.data())
def test_a_wrong_type_is_reported(case: tuple[ModelInfo, BlockInfo, dict[str, Any]], data: st.DataObject) -> None:
    _model, block, request = case
    present = [p for p in _present(block, request) if p.type != "object"]
    if not present:
        return
    param = data.draw(st.sampled_from(present))
    mutated = copy.deepcopy(request)
    _container(mutated, param)[param.name] = WRONG[param.type]
    assert param.path in _problem_fields(mutated)


@SETTINGS
@given(valid_requests(), st.data())
def test_a_value_outside_the_allowed_set_is_reported(
    case: tuple[ModelInfo, BlockInfo, dict[str, Any]], data: st.DataObject
) -> None:
    _model, block, request = case
    enums = [p for p in _present(block, request) if p.enum and p.type in ("string", "integer", "number")]
    if not enums:
        return
    param = data.draw(st.sampled_from(enums))
    outside: Any = "no-such-value" if param.type == "string" else max(param.enum or [0]) + 7919
    mutated = copy.deepcopy(request)
    _container(mutated, param)[param.name] = outside
    problems = {p.field: p.message for p in CAT.validate(mutated)}
    assert param.path in problems
    assert "allowed:" in problems[param.path]


def _exceed(param: ParamInfo) -> Any:
    spec = param.spec
    if "max_length" in spec:
        return "x" * (spec["max_length"] + 1)
    if "max_items" in spec and param.type == "array":
        return [example_value(spec["items"])] * (spec["max_items"] + 1)
    if "maximum" in spec and param.type in ("integer", "number"):
        return spec["maximum"] + max(1, spec.get("step", 1))
    if "maximum" in spec and spec.get("numeric"):
        return str(int(spec["maximum"]) + 1)
    return None


@SETTINGS
@given(valid_requests(), st.data())
def test_exceeding_a_limit_is_reported(case: tuple[ModelInfo, BlockInfo, dict[str, Any]], data: st.DataObject) -> None:
    model, block, request = case
    limited = [
        p
        for p in block.params
        if _exceed(p) is not None and not p.spec.get("encoding") and p.path not in _mirrored(model)
    ]
    if not limited:
        return
    param = data.draw(st.sampled_from(limited))
    mutated = copy.deepcopy(request)
    _container(mutated, param)[param.name] = _exceed(param)
    assert param.path in _problem_fields(mutated)


def misspell(name: str) -> str:
    if "_" in name:  # aspect_ratio -> aspectRatio
        head, *rest = name.split("_")
        return head + "".join(part.capitalize() for part in rest)
    if re.search(r"[a-z][A-Z]", name):  # imageUrl -> image_url
        return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()
    return name[:2] + name[3:]  # prompt -> prmpt


@SETTINGS
@given(valid_requests(), st.data())
def test_a_misspelled_field_is_reported_with_a_suggestion(
    case: tuple[ModelInfo, BlockInfo, dict[str, Any]], data: st.DataObject
) -> None:
    model, block, request = case
    known = {p.name for p in model.blocks[0].params} | {p.name for b in model.blocks for p in b.params}
    candidates = [p for p in _present(block, request) if len(p.name) >= 5 and misspell(p.name) not in known]
    if not candidates:
        return
    param = data.draw(st.sampled_from(candidates))
    mutated = copy.deepcopy(request)
    container = _container(mutated, param)
    wrong = misspell(param.name)
    container[wrong] = container.pop(param.name)
    wrong_path = wrong if param.location == "root" else f"input.{wrong}"
    problems = {p.field: p.message for p in CAT.validate(mutated)}
    assert wrong_path in problems
    assert f"did you mean '{param.name}'" in problems[wrong_path]
    assert CAT.validate(mutated, allow_unknown_fields=True) == [] or param.required
