"""Finding 14: one safe JSON decoder (``mediagen.decode.decode_json``) for every body and every job file.

The class closed: no input -- however deep, big, badly encoded or numerically absurd -- makes the decoder, the
job parser or a CLI command that reads job files raise anything but the one typed error (``UnreadableBody``),
and then with a message naming the limit.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediagen.cli import main
from mediagen.decode import MAX_DEPTH_CAP, UnreadableBody, decode_json, value_problems
from mediagen.errors import MediagenError
from mediagen.jobs import MAX_JOB_BYTES, MAX_JOB_DEPTH, parse_job

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "events" / "bad-inputs" / "corpus.jsonl"
DEEP = 100_000
LIMITS = {"max_bytes": 1024 * 1024, "max_depth": 32}

#: 100,000 levels: arrays, objects, the two mixed, and deep nesting inside an otherwise valid job.
DEEP_BODIES = {
    "arrays": "[" * DEEP + "]" * DEEP,
    "objects": '{"a":' * DEEP + "1" + "}" * DEEP,
    "mixed": '[{"a":' * (DEEP // 2) + "1" + "}]" * (DEEP // 2),
    "unclosed": "[" * DEEP,
    "in-metadata": '{"job_id":"deep","request":{"model":"nano-banana","input":{"prompt":"p"}},"metadata":{"x":'
                   + "[" * DEEP + "]" * DEEP + "}}",
}


def test_finding_14_unreadable_body_is_a_mediagen_error_naming_the_limit() -> None:
    with pytest.raises(UnreadableBody) as caught:
        decode_json("[" * 40 + "]" * 40, max_bytes=1000, max_depth=32, what="job")
    assert isinstance(caught.value, MediagenError)
    assert caught.value.limit == "max_depth"
    assert caught.value.message == "job is nested more than 32 levels deep; the limit is 32 levels (max_depth)"
    assert caught.value.problems == [{"field": "body", "message": caught.value.message}]


@pytest.mark.parametrize("shape", sorted(DEEP_BODIES))
def test_finding_14_100000_deep_nesting_is_refused_before_parsing(shape: str) -> None:
    body = DEEP_BODIES[shape]
    for raw in (body, body.encode()):
        with pytest.raises(UnreadableBody, match=r"nested more than 32 levels deep.*\(max_depth\)") as caught:
            decode_json(raw, **LIMITS)
        assert caught.value.limit == "max_depth"
    parsed = parse_job(body, fallback_job_id="msg-1")
    assert parsed.job is None and parsed.problems[0]["field"] == "body"
    # A job body is first held to 256 KiB; within that, the depth check names the nesting.
    says = "nested more than 32 levels" if len(body) <= MAX_JOB_BYTES else "the limit is 262144 bytes"
    assert says in parsed.problems[0]["message"]


def test_finding_14_depth_limit_is_exact_and_brackets_inside_strings_do_not_count() -> None:
    assert decode_json("[" * 32 + "]" * 32, **LIMITS) is not None
    with pytest.raises(UnreadableBody):
        decode_json("[" * 33 + "]" * 33, **LIMITS)
    tricky = {"a": "[[[[{{{{" * 100, "b": 'quote \\" then [[[[' * 50}
    assert decode_json(json.dumps(tricky), **LIMITS) == tricky


def test_finding_14_max_depth_cannot_be_set_where_the_parser_could_recurse_out() -> None:
    with pytest.raises(ValueError, match="max_depth must be between 1 and"):
        decode_json("[]", max_bytes=10, max_depth=MAX_DEPTH_CAP + 1)
    # At the cap, even from deep inside a call stack, json.loads stays within Python's recursion limit.
    body = "[" * MAX_DEPTH_CAP + "]" * MAX_DEPTH_CAP

    def nested(n: int) -> Any:
        return nested(n - 1) if n else decode_json(body, max_bytes=10_000, max_depth=MAX_DEPTH_CAP)

    assert nested(sys.getrecursionlimit() - MAX_DEPTH_CAP - 200) is not None


@pytest.mark.parametrize(("raw", "limit", "says"), [
    ("x" * (LIMITS["max_bytes"] + 1), "max_bytes", "the limit is 1048576 bytes (max_bytes)"),
    ('"' + "é" * (LIMITS["max_bytes"] // 2) + '"', "max_bytes", "1048578 bytes; the limit is 1048576"),
    (b'"' + b"x" * 50_000_000 + b'"', "max_bytes", "50000002 bytes; the limit is"),
    (b'{"a": "\xc3("}', "encoding", "not valid UTF-8 (byte 7"),
    (b"\xff\xfe{\x00}\x00", "encoding", "UTF-16 (byte order mark); send UTF-8"),
    (b"\x00\x00\xfe\xff", "encoding", "UTF-32"),
    ('{"a": "\ud800"}', "encoding", "unpaired surrogate"),
    ('{"a": NaN}', "numbers", "NaN is not a JSON number"),
    ('{"a": -Infinity}', "numbers", "-Infinity is not a JSON number"),
    ('{"a": 1e999}', "numbers", "1e999 overflows to infinity"),
    ('{"a": ' + "9" * 5000 + "}", "numbers", "an integer of 5000 characters"),
    ('{"a": 1,}', "syntax", "not valid JSON"),
    ("", "syntax", "not valid JSON"),
])
def test_finding_14_size_encoding_numbers_and_syntax_each_raise_the_one_error(raw: bytes | str, limit: str,
                                                                             says: str) -> None:
    with pytest.raises(UnreadableBody) as caught:
        decode_json(raw, **LIMITS)
    assert caught.value.limit == limit
    assert says in caught.value.message


def test_finding_14_a_utf8_byte_order_mark_is_ignored() -> None:
    assert decode_json(b'\xef\xbb\xbf{"a": 1}', **LIMITS) == {"a": 1}
    assert decode_json('\ufeff{"a": 1}', **LIMITS) == {"a": 1}


def test_finding_14_unusable_values_are_named_by_path_and_the_document_is_kept() -> None:
    body = '{"job_id": "j-1", "metadata": {"n": ' + "9" * 40 + ', "s": "\\ud800", "f": 1e200}}'
    with pytest.raises(UnreadableBody) as caught:
        decode_json(body, **LIMITS)
    assert caught.value.limit == "values"
    assert [p["field"] for p in caught.value.problems] == ["metadata.n", "metadata.s", "metadata.f"]
    assert caught.value.document["job_id"] == "j-1"
    parsed = parse_job(body, fallback_job_id="msg-1")
    assert parsed.job_id == "j-1" and parsed.job is None


def test_finding_14_already_decoded_jobs_get_the_same_value_and_depth_checks() -> None:
    deep: Any = 1
    for _ in range(DEEP):
        deep = [deep]
    parsed = parse_job({"job_id": "j-2", "request": {"model": "nano-banana"}, "metadata": {"x": deep}},
                       fallback_job_id="msg-2")
    assert parsed.job is None and parsed.job_id == "j-2"
    assert parsed.problems[0]["message"] == f"nested more than {MAX_JOB_DEPTH} levels deep"
    assert value_problems({"a": float("nan")}) == [{"field": "a", "message": "must be a finite number"}]


def _corpus() -> list[dict[str, Any]]:
    cases = []
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        case = json.loads(line)
        if "body" not in case:
            case["body"] = "".join(p if isinstance(p, str) else p[0] * p[1] for p in case["body_parts"])
        cases.append(case)
    return cases


def test_finding_14_every_bad_input_of_the_corpus_is_refused_with_the_one_error() -> None:
    """The bad-input corpus (it found the deep-nesting crash first): each body either decodes or raises
    UnreadableBody -- never RecursionError, UnicodeError, TypeError -- and parse_job refuses every body the
    corpus says is broken as a whole, naming ``body``."""
    refused = 0
    for case in _corpus():
        try:
            decode_json(case["body"], max_bytes=MAX_JOB_BYTES, max_depth=MAX_JOB_DEPTH)
        except UnreadableBody as exc:
            assert exc.message and exc.problems, case["name"]
            refused += 1
        parsed = parse_job(case["body"], fallback_job_id="msg-x")
        if case["field"] == "body":
            assert parsed.job is None and any(p["field"] == "body" for p in parsed.problems), case["name"]
    assert refused >= 40


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='[]{}"\\:,1aé\ud800 ', max_size=400))
def test_finding_14_no_text_raises_anything_but_unreadable_body(text: str) -> None:
    for raw in (text, text.encode("utf-8", "surrogatepass")):
        with contextlib.suppress(UnreadableBody):
            decode_json(raw, max_bytes=4096, max_depth=8)


# ------------------------------------------------------------------------------------ the CLI commands


def _write_deep(tmp_path: Path, shape: str) -> Path:
    path = tmp_path / f"deep-{shape}.json"
    path.write_text(DEEP_BODIES[shape])
    return path


@pytest.mark.parametrize("shape", sorted(DEEP_BODIES))
def test_finding_14_validate_and_estimate_refuse_100000_deep_files_with_a_message(
        tmp_path: Path, shape: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write_deep(tmp_path, shape)
    for command in ("validate", "estimate"):
        assert main([command, str(path)]) == 2
        err = capsys.readouterr().err
        assert f"{path} is nested more than {MAX_JOB_DEPTH + 1} levels deep" in err and "Traceback" not in err


@pytest.mark.parametrize(("content", "says"), [
    (b'{"request": {"model": "nano-banana", "input": {"prompt": "\xff\xfe"}}}', "is not valid UTF-8"),
    (b'"' + b"x" * (64 * 1024 * 1024) + b'"', "the limit is 67108864 bytes"),
    (b'{"request": {"model": "nano-banana"}, "max_credits": 1e999}', "overflows to infinity"),
])
def test_finding_14_validate_refuses_bad_encoding_huge_files_and_absurd_numbers(
        tmp_path: Path, content: bytes, says: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "job.json"
    path.write_bytes(content)
    assert main(["validate", str(path)]) == 2
    assert says in capsys.readouterr().err


def test_finding_14_validate_names_a_lone_surrogate_value(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "job.jsonl"
    path.write_text('{"request": {"model": "nano-banana", "input": {"prompt": "a \\ud800 b"}}}\n'
                    '{"model": "nano-banana", "input": {"prompt": "\\udc00"}}\n')
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}:1: request.input.prompt: contains an unpaired surrogate" in out
    assert f"{path}:2: input.prompt: contains an unpaired surrogate" in out


def test_finding_14_submit_reports_a_deep_job_file_without_sending_it(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = _write_deep(tmp_path, "in-metadata")
    assert main(["submit", str(path)]) == 1
    out = capsys.readouterr().out
    assert "body: job is nested more than 32 levels deep" in out and "1 invalid job(s) not sent" in out


def test_finding_14_submit_refuses_a_file_that_is_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "job.json"
    path.write_bytes(b'{"request": {"model": "\xff"}}')
    assert main(["submit", str(path)]) == 2
    assert f"cannot read {path}: not UTF-8 text" in capsys.readouterr().err


def test_finding_14_mediagen_validate_never_prints_a_traceback(tmp_path: Path) -> None:
    path = _write_deep(tmp_path, "mixed")
    done = subprocess.run([sys.executable, "-m", "mediagen.cli", "validate", str(path)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "nested more than" in done.stderr


def test_finding_14_api_bodies_are_checked_before_powertools_parses_them() -> None:
    """``POST /jobs`` bodies: Powertools' validation runs ``json.loads`` first, so the API handler must call
    ``refuse_http_body`` before ``app.resolve`` (a 5,000-deep body raised RecursionError there)."""
    import base64

    from mediagen.decode import refuse_http_body

    event = json.loads((REPO / "events" / "aws" / "apigateway-http-post-job.json").read_text())
    assert refuse_http_body(event, max_bytes=MAX_JOB_BYTES, max_depth=MAX_JOB_DEPTH) is None
    deep = {**event, "body": DEEP_BODIES["arrays"][:20_000], "isBase64Encoded": False}
    refused = refuse_http_body(deep, max_bytes=MAX_JOB_BYTES, max_depth=MAX_JOB_DEPTH, what="job")
    assert refused is not None and refused.problems[0]["field"] == "body"
    assert "job is nested more than 32 levels deep" in refused.message
    encoded = {**deep, "body": base64.b64encode(b'{"a": "\xff"}').decode(), "isBase64Encoded": True}
    refused = refuse_http_body(encoded, max_bytes=MAX_JOB_BYTES, max_depth=MAX_JOB_DEPTH)
    assert refused is not None and refused.limit == "encoding"
    surrogate = {**event, "body": '{"job_id": "j", "request": {"model": "\\ud800"}}', "isBase64Encoded": False}
    assert refuse_http_body(surrogate, max_bytes=MAX_JOB_BYTES, max_depth=MAX_JOB_DEPTH) is None
