"""Behaviour of the model catalog a user notices: lookups, problems reported, wire bodies, credits."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mediagen.catalog import Catalog, ModelInfo, Problem, get_catalog
from mediagen.errors import InvalidJob


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return get_catalog()


def fields(problems: list[Problem]) -> list[str]:
    return [p.field for p in problems]


def seedance(**input_fields: object) -> dict[str, object]:
    base: dict[str, object] = {"prompt": "waves", "resolution": "720p", "duration": "5"}
    base.update(input_fields)
    return {"model": "seedance-v1-pro", "input": {k: v for k, v in base.items() if v is not None}}


# ------------------------------------------------------------------------------------------ lookup


def test_get_catalog_is_cached(cat: Catalog) -> None:
    assert get_catalog() is cat


@pytest.mark.parametrize(
    ("value", "model_id", "modality"),
    [
        ("nano-banana", "nano-banana", "image"),
        ("flux-kontext-max", "flux-kontext", "image"),
        ("seedance-v1-lite", "seedance-v1", "video"),
        ("kling-2-5", "kling-video-turbo", "video"),
        ("kling-2-1-master", "kling-2-1", "video"),
        ("hailuo-2-3-pro", "hailuo-2-3", "video"),
        ("wan-animate-movie", "wan-animate", "video"),
        ("imagen-v4-ultra", "imagen-v4", "image"),
        ("elevenlabs-tts-turbo", "elevenlabs-tts-turbo", "audio"),
        ("gpt-image-1", "gpt-image-1", "image"),
    ],
)
def test_resolve_maps_request_values_to_entries(cat: Catalog, value: str, model_id: str, modality: str) -> None:
    info = cat.resolve(value)
    assert isinstance(info, ModelInfo)
    assert info.id == model_id
    assert value in info.request_values
    assert cat.modality(value) == modality


def test_unknown_model_resolves_to_none(cat: Catalog) -> None:
    assert cat.resolve("dall-e-9") is None
    assert cat.modality("dall-e-9") is None


def test_catalog_lists_every_000_model_plus_the_legacy_ones(cat: Catalog) -> None:
    models = cat.models()
    assert len(models) == 63
    assert sum(len(m.blocks) for m in models if not m.legacy) == 98
    assert {m.id for m in models if m.legacy} == {"sora-2-turbo", "sora-story-board", "gpt-image-1"}
    assert {m.modality for m in models} == {"image", "video", "audio"}


# ------------------------------------------------------------------------------------- validation


def test_a_documented_request_is_valid(cat: Catalog) -> None:
    assert cat.validate(seedance(image_url="https://example.com/ref.jpg", aspect_ratio="16:9")) == []


def test_callbackurl_in_a_request_is_ignored(cat: Catalog) -> None:
    request = {**seedance(), "callBackUrl": "https://someone-else.example/cb"}
    assert cat.validate(request) == []
    assert cat.encode(request)["model"] == "seedance-v1-pro"
    assert "callBackUrl" not in cat.encode(request)


def test_value_not_allowed_lists_the_allowed_values(cat: Catalog) -> None:
    [problem] = cat.validate(seedance(resolution="4k"))
    assert str(problem) == "input.resolution: '4k' is not allowed; allowed: 480p, 720p, 1080p"
    assert problem.to_dict() == {"field": "input.resolution", "message": problem.message}


def test_unknown_model_suggests_close_names(cat: Catalog) -> None:
    [problem] = cat.validate({"model": "seedance-v1-prp", "input": {}})
    assert problem.field == "model"
    assert "unknown model 'seedance-v1-prp'" in problem.message
    assert "did you mean 'seedance-v1-pro'" in problem.message


@pytest.mark.parametrize("request_", [None, [], "seedance-v1-pro", 5])
def test_a_non_object_request_is_a_problem_on_request(cat: Catalog, request_: object) -> None:
    [problem] = cat.validate(request_)
    assert problem.field == "request"


def test_missing_model(cat: Catalog) -> None:
    assert fields(cat.validate({"input": {"prompt": "x"}})) == ["model"]


def test_family_id_is_rejected_with_the_routed_values(cat: Catalog) -> None:
    problems = cat.validate({**seedance(), "model": "seedance-v1"})
    assert fields(problems) == ["model"]
    assert "seedance-v1-lite, seedance-v1-pro" in problems[0].message


def test_every_problem_is_reported_each_naming_its_field(cat: Catalog) -> None:
    request = {
        "model": "seedance-v1-pro",
        "input": {
            "resolution": "4k",
            "duration": "7",
            "aspectRatio": "16:9",
            "seed": "abc",
            "image_url": "ftp://example.com/x.png",
            "prompt": "p" * 10001,
        },
    }
    by_field = {p.field: p.message for p in cat.validate(request)}
    assert set(by_field) == {
        "input.resolution",
        "input.duration",
        "input.aspectRatio",
        "input.seed",
        "input.image_url",
        "input.prompt",
    }
    assert "allowed: 5, 10" in by_field["input.duration"]
    assert "did you mean 'aspect_ratio'" in by_field["input.aspectRatio"]
    assert "must be a number" in by_field["input.seed"]
    assert "not an http(s) URL" in by_field["input.image_url"]
    assert "too long: 10001 characters; at most 10000" in by_field["input.prompt"]


def test_missing_required_field_names_it(cat: Catalog) -> None:
    problems = cat.validate(seedance(duration=None))
    assert [str(p) for p in problems] == ["input.duration: is required; allowed: 5, 10"]


def test_out_of_range_names_the_range(cat: Catalog) -> None:
    [problem] = cat.validate(seedance(seed=5))
    assert str(problem) == "input.seed: 5 is out of range; allowed: 10000 to 99999"


def test_step_is_enforced_on_integer_grids(cat: Catalog) -> None:
    base: dict[str, Any] = {
        "model": "wan-speech-to-video",
        "input": {"audio_url": "https://e.com/a.mp3", "resolution": "480p"},
    }
    assert cat.validate({**base, "input": {**base["input"], "num_frames": 44}}) == []
    [problem] = cat.validate({**base, "input": {**base["input"], "num_frames": 42}})
    assert problem.field == "input.num_frames" and "steps of 4" in problem.message


def test_too_many_items(cat: Catalog) -> None:
    urls = [f"https://example.com/{i}.png" for i in range(11)]
    [problem] = cat.validate({"model": "nano-banana", "input": {"prompt": "x", "image_urls": urls}})
    assert str(problem) == "input.image_urls: has 11 items; at most 10 allowed"


def test_too_few_items(cat: Catalog) -> None:
    request = {
        "model": "veo-3-lite",
        "prompt": "x",
        "generationType": "FIRST_AND_LAST_FRAMES_2_VIDEO",
        "imageUrls": ["https://example.com/first.png"],
    }
    assert "input" not in request
    problems = cat.validate(request)
    assert fields(problems) == ["imageUrls"]
    assert "at least 2 required" in problems[0].message


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/a.png", "not an http(s) URL"),
        ("https:///a.png", "no host"),
        ("example.com/a.png", "not an http(s) URL"),
        ("https://exa mple.com/a.png", "whitespace"),
        ("https://[::1/a.png", "not a valid URL"),
    ],
)
def test_malformed_media_urls_are_rejected(cat: Catalog, url: str, reason: str) -> None:
    [problem] = cat.validate(seedance(image_url=url))
    assert problem.field == "input.image_url"
    assert reason in problem.message


def test_wrong_type_names_the_accepted_types(cat: Catalog) -> None:
    [problem] = cat.validate(seedance(camera_fixed="yes"))
    assert str(problem) == "input.camera_fixed: must be a boolean; got a string"


def test_unknown_fields_are_rejected_unless_allowed(cat: Catalog) -> None:
    request = seedance(motion_bucket=3)
    [problem] = cat.validate(request)
    assert problem.field == "input.motion_bucket"
    assert "known fields in input:" in problem.message
    assert cat.validate(request, allow_unknown_fields=True) == []
    body = cat.encode(request, allow_unknown_fields=True)
    assert body["input"]["motion_bucket"] == 3


def test_a_field_in_the_wrong_place_says_where_it_goes(cat: Catalog) -> None:
    problems = {p.field: p.message for p in cat.validate({"model": "nano-banana", "prompt": "x", "input": {}})}
    assert problems == {
        "prompt": "is not accepted here for nano-banana; send it as input.prompt",
        "input.prompt": "is required",
    }
    problems = {p.field: p.message for p in cat.validate({"model": "flux-kontext-pro", "input": {"prompt": "x"}})}
    assert set(problems) == {"input", "prompt"}
    assert "root-only" in problems["input"]


def test_input_must_be_an_object(cat: Catalog) -> None:
    assert "input" in fields(cat.validate({"model": "nano-banana", "input": "a cat"}))


def test_options_must_agree_with_the_routed_value(cat: Catalog) -> None:
    problems = cat.validate({"model": "flux-kontext-max", "prompt": "x", "options": {"model": 0}})
    assert [str(p) for p in problems] == [
        "options.model: 0 does not match model 'flux-kontext-max'; it must be 1 (or be omitted)"
    ]


def test_options_string_must_be_json(cat: Catalog) -> None:
    [problem] = cat.validate({"model": "imagen-v4", "options": "{fast_ultra: 1", "input": {"prompt": "x"}})
    assert problem.field == "options" and "not valid JSON" in problem.message


def test_options_unknown_key_is_rejected_with_a_suggestion(cat: Catalog) -> None:
    [problem] = cat.validate({"model": "imagen-v4", "options": {"fastUltra": 1}, "input": {"prompt": "x"}})
    assert problem.field == "options.fastUltra" and "fast_ultra" in problem.message


def test_mirrored_fields_must_agree(cat: Catalog) -> None:
    request = seedance(image_url="https://example.com/a.jpg")
    request["imageURLList"] = ["https://example.com/b.jpg"]
    [problem] = cat.validate(request)
    assert problem.field == "imageURLList"
    assert "same URL" in problem.message


def test_lossless_coercions_are_accepted_others_not(cat: Catalog) -> None:
    assert cat.validate(seedance(duration=10)) == []
    assert cat.validate(seedance(duration=10.0)) == []
    assert fields(cat.validate(seedance(duration=10.5))) == ["input.duration"]
    assert fields(cat.validate(seedance(duration=True))) == ["input.duration"]
    happyhorse: dict[str, Any] = {
        "model": "happyhorse-1",
        "input": {"prompt": "x", "resolution": "720p", "duration": "10"},
    }
    assert cat.validate(happyhorse) == []
    assert fields(cat.validate({**happyhorse, "input": {**happyhorse["input"], "duration": "ten"}})) == [
        "input.duration"
    ]


def test_numeric_string_ranges(cat: Catalog) -> None:
    base: dict[str, Any] = {"model": "grok-imagine-video", "input": {"prompt": "x", "resolution": "480p"}}
    assert cat.validate({**base, "input": {**base["input"], "duration": "30"}}) == []
    assert cat.validate({**base, "input": {**base["input"], "duration": 12}}) == []
    [problem] = cat.validate({**base, "input": {**base["input"], "duration": "31"}})
    assert str(problem) == "input.duration: 31 is out of range; allowed: 6 to 30"


def test_the_closest_block_is_reported(cat: Catalog) -> None:
    problems = cat.validate(
        {
            "model": "nano-banana",
            "input": {"prompt": "x", "image_size": "2:1", "image_urls": ["https://e.com/a.png"]},
        }
    )
    assert fields(problems) == ["input.image_size"]


def test_elevenlabs_shapes_follow_the_table_model_values(cat: Catalog) -> None:
    for model in ("elevenlabs-tts", "elevenlabs-tts-turbo"):
        assert cat.validate({"model": model, "input": {"text": "hi", "voice": "Rachel"}}) == []
    assert cat.resolve("elevenlabs-tts").name == "ElevenLabs TTS Multi-Language"  # type: ignore[union-attr]
    assert cat.resolve("elevenlabs-tts-turbo").name == "ElevenLabs TTS Turbo"  # type: ignore[union-attr]
    [problem] = cat.validate({"model": "elevenlabs-tts", "input": {"text": "hi", "voice": "Adam"}})
    assert problem.field == "input.voice" and "Rachel" in problem.message


def test_dialogue_items_are_checked(cat: Catalog) -> None:
    ok = {"model": "elevenlabs-v3-dialogue", "input": {"dialogue": [{"text": "Hi", "voice": "Brian"}]}}
    assert cat.validate(ok) == []
    bad = {
        "model": "elevenlabs-v3-dialogue",
        "input": {
            "dialogue": [
                {"text": "Hi", "voice": "Adam"},
                {"voice": "Brian"},
                {"text": "x" * 5000, "voice": "Brian", "x": 1},
            ]
        },
    }
    assert set(fields(cat.validate(bad))) == {
        "input.dialogue[0].voice",
        "input.dialogue[1].text",
        "input.dialogue[2].x",
        "input.dialogue",
    }


# --------------------------------------------------------------------------------------- encoding


def test_encode_sets_the_callback_and_keeps_input(cat: Catalog) -> None:
    body = cat.encode(
        {"model": "nano-banana", "input": {"prompt": "a cat", "image_size": "1:1"}},
        callback_url="https://hooks.example.com/cb/abc",
    )
    assert body == {
        "model": "nano-banana",
        "callBackUrl": "https://hooks.example.com/cb/abc",
        "input": {"prompt": "a cat", "image_size": "1:1"},
    }


def test_encode_coerces_to_the_documented_wire_type(cat: Catalog) -> None:
    body = cat.encode(seedance(duration=10))
    assert body["input"]["duration"] == "10"
    body = cat.encode({"model": "happyhorse-1", "input": {"prompt": "x", "resolution": "720p", "duration": "10"}})
    assert body["input"]["duration"] == 10


def test_encode_stringifies_root_helpers_and_mirrors_image_fields(cat: Catalog) -> None:
    body = cat.encode(
        {
            "model": "seedance-v1-lite",
            "imageURLList": ["https://example.com/ref.jpg"],
            "input": {"prompt": "x", "resolution": "480p", "duration": 5},
        }
    )
    assert body["imageURLList"] == '["https://example.com/ref.jpg"]'
    assert body["input"]["image_url"] == "https://example.com/ref.jpg"
    body = cat.encode(seedance(image_url="https://example.com/ref.jpg"))
    assert json.loads(body["imageURLList"]) == ["https://example.com/ref.jpg"]


def test_encode_accepts_the_documented_json_strings(cat: Catalog) -> None:
    request = {
        "model": "flux-kontext-pro",
        "prompt": "x",
        "options": '{"model":0,"aspectRatio":4}',
        "imageURLList": '["https://example.com/a.png"]',
    }
    body = cat.encode(request)
    assert json.loads(body["options"]) == {"model": 0, "aspectRatio": 4}
    assert body["imageURLList"] == '["https://example.com/a.png"]'
    assert body["inputImage"] == "https://example.com/a.png"
    assert "input" not in body


def test_root_only_models_have_no_input(cat: Catalog) -> None:
    body = cat.encode({"model": "flux-kontext-max", "prompt": "a fox", "aspectRatio": "16:9"})
    assert body == {"model": "flux-kontext-max", "prompt": "a fox", "aspectRatio": "16:9"}


def test_alias_is_sent_as_its_target(cat: Catalog) -> None:
    body = cat.encode({"model": "kling-2-5", "input": {"prompt": "x", "duration": 5}})
    assert body["model"] == "kling-video-turbo"


def test_imagen_tier_goes_through_options(cat: Catalog) -> None:
    ultra = cat.encode({"model": "imagen-v4-ultra", "input": {"prompt": "x", "negative_prompt": "blur"}})
    assert ultra["model"] == "imagen-v4"
    assert json.loads(ultra["options"]) == {"fast_ultra": 1, "negative-prompt": "blur"}
    fast = cat.encode({"model": "imagen-v4", "input": {"prompt": "x"}})
    assert json.loads(fast["options"]) == {"fast_ultra": 0}
    chosen = cat.encode({"model": "imagen-v4", "options": {"fast_ultra": 1}, "input": {"prompt": "x"}})
    assert json.loads(chosen["options"]) == {"fast_ultra": 1}


def test_runway_quality_is_filled(cat: Catalog) -> None:
    body = cat.encode({"model": "runway", "prompt": "x", "duration": 10})
    assert body["quality"] == "720p"
    assert body["duration"] == "10"


def test_root_and_input_mirrors_for_legacy_gpt_image_1(cat: Catalog) -> None:
    body = cat.encode({"model": "gpt-image-1", "prompt": "x", "size": "3:2"})
    assert body["input"] == {"prompt": "x", "size": "3:2"}
    assert json.loads(body["options"]) == {"image_size": 1}


def test_encode_raises_invalid_job_with_every_problem(cat: Catalog) -> None:
    with pytest.raises(InvalidJob) as raised:
        cat.encode(seedance(resolution="4k", duration="7"))
    assert {p["field"] for p in raised.value.problems} == {"input.resolution", "input.duration"}


def test_encode_does_not_mutate_the_request(cat: Catalog) -> None:
    request = {
        "model": "seedance-v1-lite",
        "imageURLList": ["https://example.com/ref.jpg"],
        "input": {"prompt": "x", "resolution": "480p", "duration": 5},
    }
    snapshot = json.dumps(request, sort_keys=True)
    cat.encode(request)
    cat.estimate(request)
    assert json.dumps(request, sort_keys=True) == snapshot


# ---------------------------------------------------------------------------------------- credits


@pytest.mark.parametrize(
    ("request_", "credits"),
    [
        ({"model": "nano-banana", "input": {"prompt": "x"}}, 8),
        ({"model": "seedance-v1-lite", "input": {"prompt": "x", "resolution": "480p", "duration": 5}}, 18),
        (
            {"model": "seedance-v1-pro", "input": {"prompt": "x", "resolution": "1080p", "duration": "10"}},
            252,
        ),
        ({"model": "flux-kontext-max", "prompt": "x"}, 18),
        ({"model": "imagen-v4", "input": {"prompt": "x"}}, 8),
        ({"model": "imagen-v4-ultra", "input": {"prompt": "x"}}, 22),
        ({"model": "flux-2-flex", "input": {"prompt": "x", "resolution": "2K"}}, 44),
        ({"model": "kling-2-6", "input": {"prompt": "x", "duration": "10", "sound": True}}, 396),
        ({"model": "kling-2-5", "input": {"prompt": "x", "duration": "10"}}, 152),
        (
            {
                "model": "hailuo-2-3-pro",
                "input": {
                    "prompt": "x",
                    "resolution": "1080P",
                    "duration": "6",
                    "image_url": "https://e.com/a.png",
                },
            },
            162,
        ),
        ({"model": "elevenlabs-tts", "input": {"text": "hello", "voice": "Rachel"}}, 49),
        ({"model": "elevenlabs-sound-effect", "input": {"text": "rain", "duration_seconds": 2.5}}, 3),
        (
            {
                "model": "kling-2-6-motion",
                "input": {
                    "prompt": "x",
                    "input_urls": ["https://e.com/a.png"],
                    "video_urls": ["https://e.com/a.mp4"],
                    "mode": "pro",
                    "duration": 5,
                },
            },
            90,
        ),
        (
            {
                "model": "sora-2-turbo",
                "input": {"prompt": "x", "n_frames": 375, "aspect_ratio": "16:9", "size": "High"},
            },
            1134,
        ),
    ],
)
def test_estimate_from_the_documented_tiers(cat: Catalog, request_: dict[str, object], credits: int) -> None:
    assert cat.estimate(request_) == credits


@pytest.mark.parametrize(
    "request_",
    [
        {"model": "kling-2-1-pro", "input": {"prompt": "x", "duration": "5"}},  # only a range is documented
        {"model": "gpt-image-2", "input": {"prompt": "x"}},  # not priced anywhere
        {"model": "sora-2", "input": {"prompt": "x", "n_frames": "8"}},  # 000's seconds have no price
        {"model": "hailuo", "input": {"prompt": "x", "duration": "6"}},  # resolution needed for a tier
        {
            "model": "wan-animate-replace",
            "input": {
                "image_url": "https://e.com/a.png",
                "video_url": "https://e.com/a.mp4",
                "resolution": "720p",
            },
        },
        {"model": "elevenlabs-sound-effect", "input": {"text": "rain"}},  # per second, no duration given
        {"model": "seedance-v1-pro", "input": {"resolution": "4k"}},  # invalid
    ],
)
def test_estimate_is_unknown_rather_than_invented(cat: Catalog, request_: dict[str, object]) -> None:
    assert cat.estimate(request_) is None
