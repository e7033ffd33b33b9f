"""The catalog's CLI subcommands, registered on ``mediagen``'s parser by :func:`register`.

    mediagen models [--provider cliprise|clipia] [--modality image|video|audio] [--json]
    mediagen models show MODEL [--provider ...] [--json]
    mediagen models sync --provider clipia [--base-url URL] [--output FILE]
    mediagen validate FILE...       exit 0 all valid, 1 some invalid, 2 some unreadable
    mediagen estimate FILE... [--remote]   exit 0 all estimated (or unknown), 1 some invalid, 2 some unreadable
    mediagen schema MODEL [--provider ...]  a JSON Schema of the model's request bodies

A FILE holds a job (``{"job_id"?, "provider"?, "request": {...}, "output"?, "metadata"?, "max_credits"?,
"allow_unknown_fields"?}``), a bare request body, or JSON Lines of either (an S3 manifest); ``-`` reads
standard input. A document's top-level ``"provider"`` (``"cliprise"``, the default, or ``"clipia"``) says
whose catalog checks it; a Clipia request is ``{"model": "<slug>", "input": {...}}``. Each subcommand
sets ``func``; ``func(args)`` returns the exit code.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mediagen.catalog import DEFAULT_PROVIDER, PROVIDERS, catalog_for
from mediagen.catalog.core import Catalog, ModelInfo, Problem, get_catalog
from mediagen.ops.display import clean

EXIT_OK, EXIT_INVALID, EXIT_UNREADABLE = 0, 1, 2


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``models``, ``validate``, ``estimate`` and ``schema`` to a parser's subcommands."""
    models = subparsers.add_parser(
        "models",
        help="list the model catalog",
        description="List every catalog entry with its modality and request blocks.",
    )
    models.add_argument("--provider", choices=PROVIDERS, default=DEFAULT_PROVIDER,
                        help="whose catalog (default: %(default)s)")
    models.add_argument("--modality", choices=("image", "video", "audio"), help="only this modality")
    models.add_argument("--json", action="store_true", help="machine-readable output")
    models.set_defaults(func=_cmd_models)
    models_sub = models.add_subparsers(dest="models_command", metavar="{show,sync}")
    show = models_sub.add_parser("show", help="one model in detail: blocks, parameters, credits, sources")
    show.add_argument("model", help="catalog id, routed model value or alias (Clipia: the slug)")
    show.add_argument("--provider", choices=PROVIDERS, default=DEFAULT_PROVIDER)
    show.add_argument("--json", action="store_true", help="the raw catalog entry")
    show.set_defaults(func=_cmd_show)
    sync = models_sub.add_parser(
        "sync", help="refresh the Clipia snapshot from GET /v1/models (needs CLIPIA_API_KEY)",
        description="Fetch GET /v1/models with $CLIPIA_API_KEY from $MEDIAGEN_CLIPIA_BASE_URL (default "
        "https://api.clipia.ai), check every entry loads, and replace the snapshot.")
    sync.add_argument("--provider", choices=("clipia",), required=True,
                      help="only Clipia publishes its catalog over the API")
    sync.add_argument("--base-url", default=None, help="default: $MEDIAGEN_CLIPIA_BASE_URL or https://api.clipia.ai")
    sync.add_argument("--output", default=None, help="where to write (default: the packaged clipia_models.json)")
    sync.set_defaults(func=_cmd_sync)

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
    estimate.add_argument("--remote", action="store_true",
                          help="Clipia jobs: ask POST /v1/models/{slug}/estimate (needs CLIPIA_API_KEY)")
    estimate.set_defaults(func=_cmd_estimate)

    schema = subparsers.add_parser("schema", help="print a JSON Schema of a model's request bodies")
    schema.add_argument("model", help="catalog id, routed model value or alias (Clipia: the slug)")
    schema.add_argument("--provider", choices=PROVIDERS, default=DEFAULT_PROVIDER)
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
    if args.provider == "clipia":
        return _clipia_models(args)
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
    if args.provider == "clipia":
        return _clipia_show(args)
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
    if args.provider == "clipia":
        from mediagen.catalog.clipia import get_clipia_catalog

        clipia = get_clipia_catalog()
        schema = clipia.schema(args.model)
        if schema is None:
            _unknown_clipia(args.model)
            return EXIT_INVALID
        print(json.dumps(schema, indent=2, ensure_ascii=False))
        return EXIT_OK
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


def document_provider(document: Any) -> tuple[str, list[dict[str, str]]]:
    """The provider a job (or bare request body) names in its top-level ``"provider"``:
    ``("cliprise", [])`` when absent; ``(DEFAULT_PROVIDER, [problem])`` when it names none of :data:`PROVIDERS`."""
    value = document.get("provider") if isinstance(document, dict) else None
    if value is None:
        return DEFAULT_PROVIDER, []
    if value not in PROVIDERS:
        return DEFAULT_PROVIDER, [Problem("provider", f"{json.dumps(value)} is not allowed; allowed: "
                                                      f"{', '.join(PROVIDERS)}").to_dict()]
    return str(value), []


def split_job(document: Any) -> tuple[Any, bool, list[dict[str, str]]]:
    """``(request, allow_unknown_fields, envelope problems)`` of a job or a bare request body (its top-level
    ``"provider"`` is read by :func:`document_provider`, not here)."""
    if isinstance(document, dict) and "provider" in document:
        document = {k: v for k, v in document.items() if k != "provider"}
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


def _check(document: Any, allow_unknown: bool) -> tuple[str, Any, list[dict[str, str]]]:
    """``(provider, request, every problem)`` of one document, checked by its provider's catalog."""
    provider, problems = document_provider(document)
    request, allow, envelope = split_job(document)
    problems = [*problems, *envelope]
    if not problems:
        found = catalog_for(provider).validate(request, allow_unknown_fields=allow or allow_unknown)
        problems.extend(p.to_dict() for p in found)
    return provider, request, problems


def _cmd_validate(args: argparse.Namespace) -> int:
    status = EXIT_OK
    for path in args.files:
        try:
            for label, document in read_documents(path):
                provider, request, found = _check(document, args.allow_unknown_fields)
                if found:
                    status = max(status, EXIT_INVALID)
                    for problem in found:
                        print(clean(f"{label}: {problem['field']}: {problem['message']}"))
                else:
                    model = request.get("model") if isinstance(request, dict) else "?"
                    print(clean(f"{label}: valid ({provider}: {model})" if provider != DEFAULT_PROVIDER
                                else f"{label}: valid ({model})"))
        except Unreadable as exc:
            print(clean(exc), file=sys.stderr)
            status = EXIT_UNREADABLE
    return status


def _cmd_estimate(args: argparse.Namespace) -> int:
    status = EXIT_OK
    results: list[dict[str, Any]] = []
    for path in args.files:
        try:
            for label, document in read_documents(path):
                provider, request, found = _check(document, False)
                if found:
                    status = max(status, EXIT_INVALID)
                    results.append({"file": label, "provider": provider, "credits": None, "valid": False,
                                    "problems": found})
                    if not args.json:
                        for problem in found:
                            print(f"{label}: invalid: {problem['field']}: {problem['message']}")
                    continue
                catalog = catalog_for(provider)
                credits, upper = catalog.estimate(request), catalog.upper_bound(request)
                source = "pricing"
                if args.remote and provider == "clipia":
                    from mediagen.catalog.clipia_sync import remote_estimate

                    credits, source = remote_estimate(request["model"], request.get("input") or {}), "api"
                entry = {"file": label, "provider": provider, "credits": credits, "upper_bound": upper,
                         "source": source, "valid": True}
                results.append(entry)
                if not args.json:
                    if credits is None:
                        bound = f"; at most {upper} credits" if upper is not None else ""
                        print(f"{label}: unknown (the documents give no price for this{bound})")
                    else:
                        bound = f" (at most {upper})" if upper is not None and upper != credits else ""
                        print(f"{label}: {credits} credits{bound}" + (" [POST /estimate]" if source == "api" else ""))
        except Unreadable as exc:
            print(str(exc), file=sys.stderr)
            status = EXIT_UNREADABLE
    if args.json:
        print(json.dumps(results, indent=2))
    return status


# ------------------------------------------------------------------------------------------- Clipia


def _unknown_clipia(slug: str) -> None:
    from mediagen.catalog.clipia import get_clipia_catalog

    hints = get_clipia_catalog().suggest(slug)
    hint = f"; did you mean {', '.join(hints)}?" if hints else ""
    print(f"unknown Clipia model '{slug}'{hint}", file=sys.stderr)


def _clipia_models(args: argparse.Namespace) -> int:
    from mediagen.catalog.clipia import get_clipia_catalog

    catalog = get_clipia_catalog()
    models = [m for m in catalog.models() if args.modality in (None, m.modality)]
    if args.json:
        entries = []
        for m in models:
            required = list(m.schema.get("required", ()))
            entries.append({"slug": m.slug, "name": m.name, "type": m.type, "modality": m.modality,
                            "capabilities": list(m.capabilities), "pricing": dict(m.pricing), "required": required,
                            "optional": [k for k in m.schema.get("properties", {}) if k not in required]})
        print(json.dumps(entries, indent=2, ensure_ascii=False))
        return EXIT_OK
    width = max((len(m.slug) for m in models), default=10)
    for m in models:
        credits = m.pricing.get("credits", m.pricing.get("credits_base", "?"))
        priced_by = ", ".join(m.pricing.get("multipliers") or {}) or "flat"
        print(f"{m.slug:<{width}}  {m.modality or m.type:<5}  {', '.join(m.capabilities)}  "
              f"{credits} credits (by {priced_by})")
    kind = catalog.provenance.get("kind", "unknown")
    when = catalog.provenance.get("fetched_at") or catalog.provenance.get("built_at") or "?"
    print(f"({len(models)} model(s); snapshot {kind}, {when}; refresh: mediagen models sync --provider clipia)")
    return EXIT_OK


def _clipia_show(args: argparse.Namespace) -> int:
    from mediagen.catalog.clipia import get_clipia_catalog

    catalog = get_clipia_catalog()
    model = catalog.resolve(args.model)
    if model is None:
        _unknown_clipia(args.model)
        return EXIT_INVALID
    if args.json:
        print(json.dumps(dict(model.raw), indent=2, ensure_ascii=False))
        return EXIT_OK
    print(f"# {model.slug} ({model.name})\n\n{model.type}; {', '.join(model.capabilities)}")
    print(f"pricing: {json.dumps(dict(model.pricing))}")
    required = set(model.schema.get("required", ()))
    for name, prop in (model.schema.get("properties") or {}).items():
        facts = [f"{k}={json.dumps(v)}" for k, v in prop.items() if k not in ("description", "type")]
        flag = "required" if name in required else "optional"
        print(f"- input.{name}: {prop.get('type', 'any')}, {flag}" + (f"; {'; '.join(facts)}" if facts else ""))
    sources = (catalog.provenance.get("entries") or {}).get(model.slug, {}).get("sources", [])
    for source in sources:
        print(f"source: {source}")
    return EXIT_OK


def _cmd_sync(args: argparse.Namespace) -> int:
    from mediagen.catalog.clipia_sync import sync_snapshot

    document = sync_snapshot(Path(args.output) if args.output else None, base_url=args.base_url)
    slugs = ", ".join(entry["slug"] for entry in document["data"])
    print(f"synced {len(document['data'])} Clipia model(s) from {document['provenance']['source']}: {slugs}")
    return EXIT_OK
