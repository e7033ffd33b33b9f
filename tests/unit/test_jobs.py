"""The job envelope: every problem named, and an id to record it under even for garbage."""

from __future__ import annotations

import json

import pytest

from mediagen.jobs import execution_name, parse_job


def test_valid_job_parses_with_defaults() -> None:
    parsed = parse_job(json.dumps({"request": {"model": "nano-banana", "input": {"prompt": "x"}}}),
                       fallback_job_id="msg-1")
    assert parsed.problems == [] and parsed.job is not None
    assert parsed.job.job_id == "msg-1" and parsed.job.output_prefix == "" and parsed.job.metadata == {}


def test_bare_documented_request_body_is_accepted_as_a_job() -> None:
    parsed = parse_job({"model": "flux-kontext-pro", "prompt": "x", "aspectRatio": "16:9"}, fallback_job_id="m")
    assert parsed.job is not None and parsed.job.request == {"model": "flux-kontext-pro", "prompt": "x",
                                                             "aspectRatio": "16:9"}


@pytest.mark.parametrize(("body", "field"), [
    ("{not json", "body"),
    ("[1, 2]", "body"),
    (json.dumps({"job_id": "bad id with spaces", "request": {"model": "m"}}), "job_id"),
    (json.dumps({"job_id": "x" * 129, "request": {"model": "m"}}), "job_id"),
    (json.dumps({"request": "nano-banana"}), "request"),
    (json.dumps({"metadata": {}}), "request"),
    (json.dumps({"request": {"model": "m"}, "output": {"prefix": "../escape/"}}), "output.prefix"),
    (json.dumps({"request": {"model": "m"}, "max_credits": -5}), "max_credits"),
    (json.dumps({"request": {"model": "m"}, "max_credits": True}), "max_credits"),
    (json.dumps({"request": {"model": "m"}, "metadata": ["a"]}), "metadata"),
    (json.dumps({"request": {"model": "m"}, "priority": 1}), "priority"),
])
def test_envelope_problems_name_the_field(body: str, field: str) -> None:
    parsed = parse_job(body, fallback_job_id="msg-1")
    assert parsed.job is None
    assert field in [p["field"] for p in parsed.problems]


def test_oversize_body_is_rejected_without_parsing() -> None:
    parsed = parse_job("x" * (300 * 1024), fallback_job_id="m")
    assert parsed.problems[0]["field"] == "body" and "limit" in parsed.problems[0]["message"]


def test_prefix_gets_a_trailing_slash_and_hash_ignores_metadata() -> None:
    a = parse_job({"request": {"model": "m"}, "output": {"prefix": "team/a"}, "metadata": {"x": 1}}, fallback_job_id="m").job
    b = parse_job({"request": {"model": "m"}, "output": {"prefix": "team/a/"}, "metadata": {"x": 2}}, fallback_job_id="m").job
    assert a is not None and b is not None
    assert a.output_prefix == "team/a/" and a.request_hash == b.request_hash


def test_execution_names_are_valid_deterministic_and_distinct() -> None:
    a, b = execution_name("orders:2026/11.x" * 10), execution_name("orders:2026/11.y" * 10)
    assert a != b and len(a) <= 80 and execution_name("orders:2026/11.x" * 10) == a
    assert all(c.isalnum() or c in "-_" for c in a)
