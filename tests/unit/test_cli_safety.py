"""Findings 9, 11 and 13: what the CLI writes and prints cannot be steered by job data.

- 9: job ids and output prefixes with ``.``/``..`` segments are refused, and every file the CLI writes goes
  through one safe join (``mediagen.ops.paths.safe_join``) that refuses escapes, symbolic links included;
- 11: ``mediagen demo`` never deletes a folder it did not make (``.`` refused);
- 13: every CLI print of job fields escapes control characters (``mediagen.ops.display.clean``).
"""

from __future__ import annotations

import io
import json
import os
import unicodedata
from pathlib import Path
from typing import Any

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from mediagen.cli import main
from mediagen.errors import MediagenError
from mediagen.jobs import parse_job
from mediagen.local.runner import DEMO_MARKER, ProgressPrinter, prepare_demo_output_dir, print_table
from mediagen.ops.display import clean
from mediagen.ops.paths import UnsafePath, safe_join, write_file
from mediagen.ops.submit import Target, download, prepare

REQUEST = {"model": "nano-banana", "input": {"prompt": "a lighthouse"}}
HOSTILE = "\x1b[2J\x1b]0;pwned\x07\rSUCCEEDED\u202e\x9b31m"
UNSAFE_CHARS = ("\x1b", "\r", "\x07", "\u202e", "\x9b")

# ------------------------------------------------------------------------------------------------ finding 9


@pytest.mark.parametrize("job_id", [".", ".."])
def test_finding_09_job_ids_dot_and_dotdot_are_refused(job_id: str) -> None:
    parsed = parse_job({"job_id": job_id, "request": REQUEST}, fallback_job_id="msg-1")
    assert parsed.job is None and parsed.job_id == "msg-1"
    assert parsed.problems == [{"field": "job_id",
                                "message": "must be 1-128 characters of A-Z a-z 0-9 . _ : -, and not '.' or '..'"}]


@pytest.mark.parametrize("prefix", [".", "..", "./", "../", "a/./b/", "a/.", "a/../b", "./results/"])
def test_finding_09_output_prefixes_with_dot_segments_are_refused(prefix: str) -> None:
    parsed = parse_job({"job_id": "j-1", "request": REQUEST, "output": {"prefix": prefix}}, fallback_job_id="m")
    assert parsed.job is None
    assert [p["field"] for p in parsed.problems] == ["output.prefix"]
    assert "no '..', no '.' segment" in parsed.problems[0]["message"]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="./a", max_size=8), st.text(alphabet="./a", min_size=1, max_size=4))
def test_finding_09_no_accepted_prefix_and_job_id_make_a_dot_segment(prefix: str, job_id: str) -> None:
    parsed = parse_job({"job_id": job_id, "request": REQUEST, "output": {"prefix": prefix}}, fallback_job_id="m")
    if parsed.job is not None:
        key = f"{parsed.job.output_prefix}{parsed.job.job_id}/output.png"
        assert not {".", ".."} & set(key.split("/")), key


@pytest.mark.parametrize("parts", [("..",), ("../x",), ("a/../../b",), ("/etc/passwd",), ("a\\..\\b",), (".",),
                                   ("a/./b",), ("",), ("x\0y",), ("j-1", ".."), ("..", "x")])
def test_finding_09_safe_join_refuses_every_escape(tmp_path: Path, parts: tuple[str, ...]) -> None:
    with pytest.raises(UnsafePath, match="refusing to write"):
        safe_join(tmp_path, *parts)


def test_finding_09_safe_join_follows_symbolic_links_and_refuses_those_leading_out(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)
    (root / "file-link").symlink_to(outside / "victim.txt")
    (root / "inner").mkdir()
    (root / "ok-link").symlink_to(root / "inner", target_is_directory=True)
    with pytest.raises(UnsafePath, match="outside"):
        write_file(root, "link", "f.png", data=b"x")
    with pytest.raises(UnsafePath, match="outside"):
        write_file(root, "file-link", data=b"x")
    assert list(outside.iterdir()) == []
    assert write_file(root, "ok-link", "f.png", data=b"x") == (root / "inner" / "f.png").resolve()
    assert write_file(root, "j-1", "files/a.png", data=b"y").read_bytes() == b"y"


class _S3:
    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803 - boto3's names
        return {"Body": io.BytesIO(self.objects[Key])}


def _target(objects: dict[str, bytes]) -> Target:
    return Target(sqs=None, dynamodb=None, s3=_S3(objects), queue_url="", table="t", bucket="b")


def test_finding_09_submit_wait_downloads_cannot_leave_the_output_folder(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    good = {"job_id": "j-1", "outputs": [{"key": "j-1/output.png"}, {"key": "j-1/files/a.png"}],
            "manifest_uri": "s3://b/j-1/result.json"}
    objects = {"j-1/output.png": b"png", "j-1/files/a.png": b"a", "j-1/result.json": b"{}"}
    paths = download(good, _target(objects), dest)
    assert sorted(p.relative_to(dest.resolve()).as_posix() for p in paths) == [
        "j-1/files/a.png", "j-1/output.png", "j-1/result.json"]
    for record in ({"job_id": "..", "outputs": [{"key": "../output.png"}]},
                   {"job_id": "j-2", "outputs": [{"key": "j-2/../../../evil.png"}]}):
        with pytest.raises(UnsafePath):
            download(record, _target({"../output.png": b"x", "j-2/../../../evil.png": b"x"}), dest)
    assert not (tmp_path / "evil.png").exists() and not (tmp_path / "output.png").exists()


# ----------------------------------------------------------------------------------------------- finding 11


def test_finding_11_the_demo_refuses_the_current_folder_and_its_parents(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "precious.txt").write_text("keep me")
    monkeypatch.chdir(work)
    for named in (Path("."), Path(".."), work, Path("sub/..")):
        with pytest.raises(MediagenError, match="is the current folder .* name a new folder"):
            prepare_demo_output_dir(named)
    assert (work / "precious.txt").read_text() == "keep me"


def test_finding_11_demo_dot_fails_with_a_message_and_deletes_nothing(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--output-dir", "."]) == 2
    assert "--output-dir . is the current folder" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["precious.txt"]


def test_finding_11_a_folder_the_demo_did_not_make_is_never_emptied(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    (theirs / "sub").mkdir(parents=True)
    (theirs / "sub" / "thesis.tex").write_text("years of work")
    with pytest.raises(MediagenError, match=f"not empty and was not made by mediagen demo .*{DEMO_MARKER}"):
        prepare_demo_output_dir(theirs)
    assert (theirs / "sub" / "thesis.tex").read_text() == "years of work"
    link = tmp_path / "link"
    link.symlink_to(theirs, target_is_directory=True)
    with pytest.raises(MediagenError, match="symbolic link"):
        prepare_demo_output_dir(link)
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(MediagenError, match="is a file, not a folder"):
        prepare_demo_output_dir(tmp_path / "a-file")
    assert (theirs / "sub" / "thesis.tex").exists() and (tmp_path / "a-file").read_text() == "x"


def test_finding_11_the_demo_makes_a_new_or_empty_folder_its_own_and_replaces_only_that(tmp_path: Path) -> None:
    new = prepare_demo_output_dir(tmp_path / "a" / "demo-output")
    assert sorted(os.listdir(new)) == [DEMO_MARKER]
    (new / "old-run.png").write_bytes(b"x")
    assert sorted(os.listdir(prepare_demo_output_dir(new))) == [DEMO_MARKER]  # its own: replaced
    empty = tmp_path / "empty"
    empty.mkdir()
    assert sorted(os.listdir(prepare_demo_output_dir(empty))) == [DEMO_MARKER]


# ----------------------------------------------------------------------------------------------- finding 13


def test_finding_13_clean_shows_control_characters_as_escapes() -> None:
    assert clean("a\x1b[31mb\rc\x07d\u202ee\x9b") == "a\\x1b[31mb\\x0dc\\x07d\\u202ee\\x9b"
    assert clean(None) == "" and clean(42) == "42" and clean("émoji 😀 ok") == "émoji 😀 ok"


@given(st.text())
def test_finding_13_no_text_reaches_the_terminal_with_a_control_character(text: str) -> None:
    shown = clean(text)
    assert not any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in shown)
    assert not any("\u202a" <= c <= "\u202e" or "\u2066" <= c <= "\u2069" for c in shown)


def _hostile_deployment() -> None:
    from mediagen.records import DynamoJobRepository

    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    dynamodb.create_table(TableName="tasks", KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "job_id", "AttributeType": "S"}],
                          BillingMode="PAY_PER_REQUEST")
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="outputs")
    DynamoJobRepository("tasks", dynamodb).create({
        "job_id": f"j{HOSTILE}", "status": "FAILED", "model": HOSTILE, "created_at": HOSTILE,
        "transitions": {"FAILED": HOSTILE},
        "error": {"code": HOSTILE, "message": HOSTILE, "problems": [{"field": HOSTILE, "message": HOSTILE}]},
        "outputs": [{"uri": HOSTILE, "key": "k", "bytes": 1, "content_type": HOSTILE, "sha256": HOSTILE}]})


def _assert_clean(text: str) -> None:
    for char in UNSAFE_CHARS:
        assert char not in text, repr(char)
    assert "\\x1b[2J" in text  # shown, not obeyed


def test_finding_13_status_and_jobs_escape_control_characters(capsys: pytest.CaptureFixture[str]) -> None:
    with mock_aws():
        _hostile_deployment()
        assert main(["status", f"j{HOSTILE}", "--table", "tasks", "--bucket", "outputs"]) == 0
        _assert_clean(capsys.readouterr().out)
        assert main(["status", HOSTILE, "--table", "tasks", "--bucket", "outputs"]) == 1
        _assert_clean(capsys.readouterr().err)
        assert main(["jobs", "--table", "tasks"]) == 0
        _assert_clean(capsys.readouterr().out)
        assert main(["jobs", "--table", "tasks", "--json"]) == 0
        out = capsys.readouterr().out
        assert not any(char in out for char in UNSAFE_CHARS) and json.loads(out)[0]["model"] == HOSTILE


def test_finding_13_submit_validate_and_the_demo_tables_escape_control_characters(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    prepare([{"job_id": "j-1", "request": {"model": HOSTILE, "input": {"prompt": "p"}}}], out)
    _assert_clean(out.getvalue())
    path = tmp_path / "job.json"
    path.write_text(json.dumps({"request": {"model": HOSTILE}}))
    assert main(["validate", str(path)]) == 1
    _assert_clean(capsys.readouterr().out)
    records = [{"job_id": HOSTILE, "model": HOSTILE, "status": HOSTILE, "polls": 1,
                "error": {"code": HOSTILE, "message": HOSTILE}, "outputs": [{"key": HOSTILE, "bytes": 1}]}]
    table = io.StringIO()
    print_table(records, table)
    ProgressPrinter(table)(records, 1.0)
    _assert_clean(table.getvalue())
