"""The Clipia catalog: schema conversion, validation problems, estimates and upper bounds, provenance."""

from __future__ import annotations

import json

import pytest

from mediagen.catalog import Problem, catalog_for
from mediagen.catalog.clipia import get_clipia_catalog, load_clipia_catalog, price
from mediagen.catalog.clipia_schema import SchemaShapeError, schema_shape, to_json_schema, to_parameters
from mediagen.errors import InvalidJob

NANO = "nano-banana-2"
I2V = "seedance-2-fast-i2v"
# The SDK 1.5.0 typing of input_schema["parameters"] (ModelInputParameter).
PARAMETERS = [
    {"name": "prompt", "type": "string", "required": True, "label": "Prompt", "maxLength": 100},
    {"name": "duration", "type": "integer", "options": [{"value": 5, "label": "5 s"}, {"value": 10, "label": "10 s"}],
     "default": 5},
    {"name": "strength", "type": "number", "min": 0, "max": 1, "hint": "How much to change"},
    {"name": "steps", "type": "integer", "min": 10, "max": 50, "step": 5, "validation": {"max": 40}},
]


def problems(request: object, **kwargs: bool) -> dict[str, str]:
    return {p.field: p.message for p in get_clipia_catalog().validate(request, **kwargs)}


# ---------------------------------------------------------------------------------------- converter


def test_a_parameters_list_becomes_a_json_schema() -> None:
    schema = to_json_schema(PARAMETERS)
    assert schema == {
        "type": "object",
        "properties": {
            "prompt": {"type": "string", "title": "Prompt", "maxLength": 100},
            "duration": {"type": "integer", "enum": [5, 10], "default": 5},
            "strength": {"type": "number", "minimum": 0, "maximum": 1, "description": "How much to change"},
            "steps": {"type": "integer", "minimum": 10, "maximum": 50, "multipleOf": 5},
        },
        "required": ["prompt"],
    }
    assert to_json_schema({"parameters": PARAMETERS, "parameterGroups": []}) == schema
    assert to_json_schema([{"name": "n", "type": "integer", "validation": {"min": 1, "max": 4}}]) == {
        "type": "object", "properties": {"n": {"type": "integer", "minimum": 1, "maximum": 4}}}


def test_a_field_map_becomes_the_same_json_schema() -> None:
    field_map = {p["name"]: {k: v for k, v in p.items() if k != "name"} for p in PARAMETERS}
    assert schema_shape(field_map) == "field-map"
    assert to_json_schema(field_map) == to_json_schema(PARAMETERS)


def test_json_schema_to_parameters_and_back_is_the_same_schema() -> None:
    schema = to_json_schema(PARAMETERS)
    params = to_parameters(schema)
    assert [p["name"] for p in params] == ["prompt", "duration", "strength", "steps"]
    assert params[0] == {"name": "prompt", "type": "string", "label": "Prompt", "maxLength": 100, "required": True}
    assert params[1]["options"] == [{"value": 5}, {"value": 10}]
    assert params[2]["min"] == 0 and params[2]["hint"] == "How much to change"
    assert to_json_schema(params) == schema
    snapshot_schema = get_clipia_catalog().resolve(NANO).schema  # a real entry survives the round trip too
    assert to_json_schema(to_parameters(snapshot_schema)) == to_json_schema(snapshot_schema)


def test_a_json_schema_is_kept_as_it_is() -> None:
    given = {"properties": {"prompt": {"type": "string"}}, "required": ["prompt"], "additionalProperties": True}
    assert to_json_schema(given) == {**given, "type": "object"}


@pytest.mark.parametrize("bad", ["prompt", 3, {"prompt": "string"}, [{"type": "string"}]])
def test_an_unknown_shape_is_refused(bad: object) -> None:
    with pytest.raises(SchemaShapeError):
        to_json_schema(bad)


def test_the_catalog_loads_every_shape_and_validates_the_same_way() -> None:
    listing = {"data": [
        {"slug": "a", "type": "image", "input_schema": PARAMETERS},
        {"slug": "b", "type": "image", "input_schema": {"parameters": PARAMETERS}},
        {"slug": "c", "type": "image", "input_schema": to_json_schema(PARAMETERS)},
    ]}
    catalog = load_clipia_catalog(json.dumps(listing))
    for slug in "abc":
        found = catalog.validate({"model": slug, "input": {"prompt": "x" * 101, "duration": 7, "steps": 12}})
        assert {p.field: p.message for p in found} == {
            "input.prompt": "is too long: 101 characters; at most 100",
            "input.duration": "7 is not allowed; allowed: 5, 10",
            "input.steps": "12 is not allowed; allowed: multiples of 5 from 10 to 50",
        }, slug


# --------------------------------------------------------------------------------------- validation


def test_a_valid_request_has_no_problem() -> None:
    assert problems({"model": NANO, "input": {"prompt": "a cat", "num_images": 2, "resolution": "2K"}}) == {}
    assert problems({"model": I2V, "input": {"prompt": "waves", "image_url": "https://example.com/a.png"},
                     "webhook_url": "https://ignored.example.com/"}) == {}


def test_a_job_breaking_the_schema_names_each_field_and_what_is_allowed() -> None:
    found = problems({"model": NANO, "input": {"prompt": "", "resolution": "8K", "num_images": 9,
                                               "aspect_ratio": 1.5}})
    assert found == {
        "input.prompt": "is too short: 0 characters; at least 1",
        "input.resolution": "'8K' is not allowed; allowed: 1K, 2K, 4K",
        "input.num_images": "9 is out of range; allowed: 1 to 4",
        "input.aspect_ratio": "must be a string; got a number; allowed: 1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, 16:9, 21:9",
    }


def test_missing_required_fields_and_missing_input_are_named() -> None:
    assert problems({"model": I2V, "input": {}}) == {"input.prompt": "is required", "input.image_url": "is required"}
    assert problems({"model": I2V}) == {"input": "is required: the parameters of seedance-2-fast-i2v"}
    assert problems({"model": I2V, "input": "waves"}) == {"input": "must be a JSON object; got a string"}


def test_an_unknown_slug_gets_a_did_you_mean() -> None:
    assert problems({"model": "nano-banana2", "input": {}}) == {
        "model": "unknown Clipia model 'nano-banana2'; did you mean 'nano-banana-2'?"}
    assert "mediagen models --provider clipia" in problems({"model": "zzz", "input": {}})["model"]


def test_unknown_input_fields_are_refused_with_a_suggestion_unless_allowed() -> None:
    request = {"model": NANO, "input": {"prompt": "a cat", "numImages": 2}}
    assert problems(request) == {"input.numImages": "unknown field for nano-banana-2; did you mean 'input.num_images'?"}
    assert problems(request, allow_unknown_fields=True) == {}


def test_private_and_malformed_urls_are_refused_per_item() -> None:
    found = problems({"model": NANO, "input": {"prompt": "x", "image_urls": ["https://example.com/a.png",
                                                                           "http://127.0.0.1/b.png"]}})
    assert list(found) == ["input.image_urls[1]"]
    assert "private or local network" in found["input.image_urls[1]"]


def test_problems_are_the_cliprise_catalog_problem_type_and_check_raises_invalid_job() -> None:
    catalog = get_clipia_catalog()
    found = catalog.validate({"model": NANO, "input": {}})
    assert found == [Problem("input.prompt", "is required")]
    with pytest.raises(InvalidJob) as raised:
        catalog.check({"model": NANO, "input": {}})
    assert raised.value.problems == [{"field": "input.prompt", "message": "is required"}]


# ------------------------------------------------------------------------------------------ pricing


def test_estimate_multiplies_the_base_by_each_priced_input_or_its_default() -> None:
    catalog = get_clipia_catalog()
    assert catalog.estimate({"model": NANO, "input": {"prompt": "a cat"}}) == 12  # defaults 1K, 1 image
    assert catalog.estimate({"model": NANO, "input": {"prompt": "a cat", "num_images": 3, "resolution": "2K"}}) == 54
    assert catalog.estimate({"model": I2V, "input": {"prompt": "w", "image_url": "https://e.com/a.png",
                                                     "duration": 10, "resolution": "1080p"}}) == 240


def test_upper_bound_takes_the_dearest_setting_of_each_absent_priced_input() -> None:
    catalog = get_clipia_catalog()
    assert catalog.upper_bound({"model": NANO, "input": {"prompt": "a cat"}}) == 12 * 2 * 4
    assert catalog.upper_bound({"model": NANO, "input": {"prompt": "a", "num_images": 1, "resolution": "1K"}}) == 12
    assert catalog.upper_bound({"model": NANO, "input": {"prompt": "a", "num_images": 2}}) == 12 * 2 * 2


def test_no_made_up_price() -> None:
    schema = {"properties": {"quality": {"type": "string"}}}
    pricing = {"credits_base": 10, "multipliers": {"quality": {"high": 3, "low": 1}}}
    assert price(pricing, schema, {}) is None  # absent, no default: unknown
    assert price(pricing, schema, {}, dearest_when_absent=True) == 30
    assert price(pricing, schema, {"quality": "ultra"}) is None  # a value the pricing does not list
    assert price({"credits": 7}, schema, {}) == 7
    assert price({**pricing, "minimum_credits": 15}, schema, {"quality": "low"}) == 15
    assert price({"estimate_required": True, "credits_base": 5}, schema, {}) is None  # depends on the media
    assert get_clipia_catalog().estimate({"model": NANO, "input": {}}) is None  # invalid request


def test_catalog_for_answers_the_same_questions_for_both_providers() -> None:
    clipia, cliprise = catalog_for("clipia"), catalog_for(None)
    assert cliprise.provider == "cliprise"
    assert clipia.modality(NANO) == "image" and clipia.modality(I2V) == "video"
    assert clipia.upper_bound({"model": NANO, "input": {"prompt": "a"}}) == 96
    request = {"model": "seedance-v1-pro", "input": {"prompt": "waves", "resolution": "720p", "duration": 5},
               "imageURLList": '["https://example.com/ref.jpg"]'}
    assert cliprise.validate(request) == []
    assert cliprise.upper_bound(request) == cliprise.estimate(request) is not None
    with pytest.raises(ValueError, match="allowed: cliprise, clipia"):
        catalog_for("acme")


# --------------------------------------------------------------------------------------- provenance


def test_the_snapshot_says_where_each_entry_came_from_and_when() -> None:
    catalog = get_clipia_catalog()
    provenance = catalog.provenance
    assert provenance["kind"] == "hand-built" and provenance["built_at"]
    assert "models sync --provider clipia" in provenance["refresh"]
    slugs = [m.slug for m in catalog.models()]
    assert sorted(provenance["entries"]) == sorted(slugs)
    for slug in slugs:
        entry = provenance["entries"][slug]
        assert entry["sources"], slug
        assert {"documented", "illustrative"} <= set(entry), slug
    # the snapshot keeps the GET /v1/models shape: provenance is beside "data", never inside an entry
    for raw in catalog.data["data"]:
        assert set(raw) <= {"slug", "type", "name", "capabilities", "pricing", "input_schema"}
