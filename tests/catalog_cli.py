"""Running the catalog's CLI subcommands in-process, for the catalog command tests of both providers."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from mediagen.catalog.commands import register


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``mediagen <argv>`` through an ArgumentParser of our own (as mediagen.cli builds it): (exit code, stdout,
    stderr)."""
    parser = argparse.ArgumentParser(prog="mediagen")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, name: str, content: object) -> str:
    """``content`` (text, or JSON for anything else) in ``tmp_path/name``; returns the path."""
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)
