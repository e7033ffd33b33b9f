"""The catalog's CLI subcommands, registered on ``mediagen``'s parser by :func:`register`.

    mediagen models [--modality image|video|audio] [--json]
    mediagen models show MODEL [--json]
    mediagen validate FILE...       exit 0 all valid, 1 some invalid, 2 some unreadable
    mediagen estimate FILE...       exit 0 all estimated (or unknown), 1 some invalid, 2 some unreadable
    mediagen schema MODEL           a JSON Schema of the model's request bodies

A FILE holds a job (``{"job_id"?, "request": {...}, "output"?, "metadata"?, "max_credits"?,
"allow_unknown_fields"?}``), a bare documented request body, or JSON Lines of either (an S3 manifest);
``-`` reads standard input. Each subcommand sets ``func``; ``func(args)`` returns the exit code.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mediagen.catalog.core import Catalog, ModelInfo, get_catalog
from mediagen.ops.display import clean

EXIT_OK, EXIT_INVALID, EXIT_UNREADABLE = 0, 1, 2


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``models``, ``validate``, ``estimate`` and ``schema`` to a parser's subcommands."""
    models = subparsers.add_parser(
        "models",
        help="list the model catalog",
        description="List every catalog entry with its modality and request blocks.",
    )
    models.add_argument("--modality", choices=("image", "video", "audio"), help="only this modality")
    models.add_argument("--json", action="store_true", help="machine-readable output")
    models.set_defaults(func=_cmd_models)
    models_sub = models.add_subparsers(dest="models_command", metavar="{show}")
    show = models_sub.add_parser("show", help="one model in detail: blocks, parameters, credits, sources")
    show.add_argument("model", help="catalog id, routed model value or alias")
    show.add_argument("--json", action="store_true", help="the raw catalog entry")
    show.set_defaults(func=_cmd_show)

    validate = subparsers.add_parser(
        "validate",
        help="validate jobs or request bodies against the catalog",
        description="Validate jobs / request bodies. One line per problem, naming the field. "
        "Exit 0 when all are valid, 1 when one is invalid, 2 when one cannot be read.",
    )
    validate.add_argument("files", nargs="+", metavar="FILE", help="JSON or JSON Lines file ('-' = stdin)")
    validate.add_argument(
        "--allow-unknown-fields",
        action="store_true",
        help="accept fields the catalog does not know (a job's own flag also does)",
    )
    validate.set_defaults(func=_cmd_validate)

    estimate = subparsers.add_parser(
        "estimate",
        help="credits a job will cost (from the documents' pricing)",
        description="Print the credits each job will cost, or 'unknown' where the documents give no price.",
    )
    estimate.add_argument("files", nargs="+", metavar="FILE", help="JSON or JSON Lines file ('-' = stdin)")
    estimate.add_argument("--json", action="store_true", help="machine-readable output")
    estimate.set_defaults(func=_cmd_estimate)

    schema = subparsers.add_parser("schema", help="print a JSON Schema of a model's request bodies")
    schema.add_argument("model", help="catalog id, routed model value or alias")
    schema.set_defaults(func=_cmd_schema)


# ------------------------------------------------------------------------------------------ models


def model_summary(model: ModelInfo, *, alias_of: str | None = None, value: str | None = None) -> dict[str, Any]:
    """The ``models --json`` entry of a model (or of one of its aliases)."""
    entry: dict[str, Any] = {
        "id": value or model.id,
        "name": model.name,
        "modality": model.modality,
        "legacy": model.legacy,
        "root_only": model.root_only,
        "request_values": model.sendable_values(),
        "blocks": [
            {
                "id": b.id,
                "source": b.source,
                "required": [p.path for p in b.params if p.required],
                "optional": [p.path for p in b.params if not p.required],
            }
            for b in model.blocks
        ],
        "priced": bool((model.pricing or {}).get("rows")),
    }
    if alias_of:
        entry["alias_of"] = alias_of
    return entry


def _cmd_models(args: argparse.Namespace) -> int:
    catalog = get_catalog()
    models = [m for m in catalog.models() if args.modality in (None, m.modality)]
    if args.json:
        entries = []
        for m in models:
            entries.append(model_summary(m))
            entries.extend(model_summary(m, alias_of=m.id, value=a) for a in m.aliases)
        print(json.dumps(entries, indent=2))
        return EXIT_OK
    width = max(len(m.id) for m in models) if models else 10
    for m in models:
        extra = []
        others = [v for v in m.sendable_values() if v != m.id]
        if others:
            extra.append("values: " + ", ".join(others))
        if m.legacy:
            extra.append("legacy")
        if m.root_only:
            extra.append("root-only")
        blocks = ", ".join(b.id for b in m.blocks)
        print(f"{m.id:<{width}}  {m.modality:<5}  {blocks}" + (f"  ({'; '.join(extra)})" if extra else ""))
    return EXIT_OK


def _resolve_or_fail(catalog: Catalog, model: str) -> ModelInfo | None:
    info = catalog.resolve(model)
    if info is None:
        hints = catalog.suggest(model)
        hint = f"; did you mean {', '.join(hints)}?" if hints else ""
        print(f"unknown model '{model}'{hint}", file=sys.stderr)
    return info


def _cmd_show(args: argparse.Namespace) -> int:
    catalog = get_catalog()
    info = _resolve_or_fail(catalog, args.model)
    if info is None:
        return EXIT_INVALID
    if args.json:
        print(json.dumps({"id": info.id, **catalog.data["models"][info.id]}, indent=2, ensure_ascii=False))
        return EXIT_OK
    from mediagen.catalog.reference import render_model_md

    print(render_model_md(info, level=1))
    return EXIT_OK


def _cmd_schema(args: argparse.Namespace) -> int:
    catalog = get_catalog()
    info = _resolve_or_fail(catalog, args.model)
    if info is None:
        return EXIT_INVALID
    from mediagen.catalog.reference import json_schema

    print(json.dumps(json_schema(info), indent=2, ensure_ascii=False))
    return EXIT_OK


# --------------------------------------------------------------------------------- files and jobs


class Unreadable(Exception):
    """A file (or a line of it) that is not a JSON object."""


def read_documents(path: str) -> Iterator[tuple[str, Any]]:
    """``(label, document)`` for each JSON document in a file: the whole file, or each JSON Lines line.

    Every document goes through :func:`mediagen.decode.decode_json` (size, UTF-8, depth, numbers), so no
    file can make the command fail with a traceback. A document whose only fault is a value no record can
    keep (a lone surrogate, a 40-digit number) is still yielded: :func:`split_job` names that value.
    """
    from mediagen.decode import MAX_FILE_BYTES, UnreadableBody, decode_json
    from mediagen.jobs import MAX_JOB_DEPTH

    def decode(data: bytes | str, label: str) -> Any:
        try:
            return decode_json(data, max_bytes=MAX_FILE_BYTES, max_depth=MAX_JOB_DEPTH + 1, what=label)
        except UnreadableBody as exc:
            if exc.limit == "values":
                return exc.document
            raise

    try:
        data: bytes | str = Path(path).read_bytes() if path != "-" else (
            sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read())
    except OSError as exc:
        raise Unreadable(f"{path}: cannot read: {exc}") from exc
    try:
        yield path, decode(data, path)
        return
    except UnreadableBody as whole_error:
        if whole_error.limit != "syntax":
            raise Unreadable(whole_error.message) from whole_error
        text = data.decode("utf-8") if isinstance(data, bytes) else data  # decode_json checked the encoding
        lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
        if len(lines) < 2:
            raise Unreadable(whole_error.message) from whole_error
    for number, line in lines:
        try:
            yield f"{path}:{number}", decode(line, f"{path}:{number}")
        except UnreadableBody as exc:
            raise Unreadable(exc.message) from exc


def split_job(document: Any) -> tuple[Any, bool, list[dict[str, str]]]:
    """``(request, allow_unknown_fields, envelope problems)`` of a job or a bare request body."""
    if isinstance(document, dict) and "request" in document and "model" not in document:
        from mediagen.jobs import parse_job

        parsed = parse_job(document, fallback_job_id="cli")
        if parsed.job is None:
            request = document.get("request")
            allow = document.get("allow_unknown_fields") is True
            envelope = [p for p in parsed.problems if not p["field"].startswith("request")] or parsed.problems
            return request, allow, envelope
        return parsed.job.request, parsed.job.allow_unknown_fields, []
    from mediagen.decode import value_problems

    return document, False, value_problems(document)


def _cmd_validate(args: argparse.Namespace) -> int:
    catalog = get_catalog()
    status = EXIT_OK
    for path in args.files:
        try:
            for label, document in read_documents(path):
                request, allow, problems = split_job(document)
                found = [
                    *problems,
                    *(
                        p.to_dict()
                        for p in catalog.validate(request, allow_unknown_fields=allow or args.allow_unknown_fields)
                    ),
                ]
                if found:
                    status = max(status, EXIT_INVALID)
                    for problem in found:
                        print(clean(f"{label}: {problem['field']}: {problem['message']}"))
                else:
                    model = request.get("model") if isinstance(request, dict) else "?"
                    print(clean(f"{label}: valid ({model})"))
        except Unreadable as exc:
            print(clean(exc), file=sys.stderr)
            status = EXIT_UNREADABLE
    return status


def _cmd_estimate(args: argparse.Namespace) -> int:
    catalog = get_catalog()
    status = EXIT_OK
    results: list[dict[str, Any]] = []
    for path in args.files:
        try:
            for label, document in read_documents(path):
                request, allow, problems = split_job(document)
                found = [
                    *problems,
                    *(p.to_dict() for p in catalog.validate(request, allow_unknown_fields=allow)),
                ]
                if found:
                    status = max(status, EXIT_INVALID)
                    results.append({"file": label, "credits": None, "valid": False, "problems": found})
                    if not args.json:
                        for problem in found:
                            print(f"{label}: invalid: {problem['field']}: {problem['message']}")
                    continue
                credits = catalog.estimate(request)
                results.append({"file": label, "credits": credits, "valid": True})
                if not args.json:
                    print(
                        f"{label}: {credits if credits is not None else 'unknown'}"
                        + (" credits" if credits is not None else " (the documents give no price for this)")
                    )
        except Unreadable as exc:
            print(str(exc), file=sys.stderr)
            status = EXIT_UNREADABLE
    if args.json:
        print(json.dumps(results, indent=2))
    return status
