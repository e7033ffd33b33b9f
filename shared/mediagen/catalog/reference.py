"""Human-readable renderings of the catalog: ``docs/models.md``, ``mediagen models show``, JSON Schema.

``render_models_md(catalog)`` produces the whole of docs/models.md (a test regenerates it and compares);
``render_model_md(model)`` one model's section; ``json_schema(model)`` a JSON Schema (2020-12) of the
model's request bodies, one ``oneOf`` branch per block.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mediagen.catalog.core import Catalog, ModelInfo, ParamInfo

_MAX_ENUM_IN_DOCS = 12


def _value(v: Any) -> str:
    return json.dumps(v) if not isinstance(v, str) else v


def describe_param(param: ParamInfo, *, max_values: int | None = _MAX_ENUM_IN_DOCS) -> str:
    """One line describing a parameter's constraints (type, values, range, length, items, media).

    ``max_values`` caps how many allowed values are listed (None = all of them).
    """
    spec = param.spec
    parts: list[str] = []
    kind = spec["type"]
    if spec.get("encoding") == "json":
        kind += " (sent as a JSON string)"
    alts = [*spec.get("accept", ()), *(v["type"] for v in spec.get("variants", ()))]
    if alts:
        kind += " (also accepted: " + ", ".join(alts) + ")"
    parts.append(kind)
    enum = spec.get("enum")
    if enum is not None:
        cap = len(enum) if max_values is None else max_values
        shown = ", ".join(f"`{_value(v)}`" for v in enum[:cap])
        more = f", ... ({len(enum)} values; `mediagen models show --json` lists them)" if len(enum) > cap else ""
        parts.append(f"one of {shown}{more}")
    if "minimum" in spec or "maximum" in spec:
        step = f", step {spec['step']}" if "step" in spec else ""
        parts.append(f"{spec.get('minimum', '-inf')} to {spec.get('maximum', 'inf')}{step}")
    if "max_length" in spec:
        parts.append(f"max {spec['max_length']} characters")
    items = spec.get("items") or {}
    if "min_items" in spec or "max_items" in spec:
        low, high = spec.get("min_items"), spec.get("max_items")
        if low is not None and low == high:
            parts.append(f"exactly {low} items")
        else:
            parts.append(
                " ".join(x for x in (f"min {low}" if low else "", f"max {high}" if high else "") if x) + " items"
            )
    media = spec.get("media") or items.get("media")
    if spec.get("format") == "url" or items.get("format") == "url":
        parts.append(f"{media or 'media'} URL (http/https)")
    nested = items.get("properties") or spec.get("properties")
    if nested:
        parts.append("keys: " + ", ".join(nested))
        for key, sub in nested.items():
            if sub.get("enum"):
                values = sub["enum"] if max_values is None else sub["enum"][:max_values]
                more = ", ..." if len(values) < len(sub["enum"]) else ""
                parts.append(f"{key} one of " + ", ".join(f"`{_value(v)}`" for v in values) + more)
    if "max_total_length" in spec:
        total = spec["max_total_length"]
        parts.append(f"max {total['max']} characters of {total['property']} combined")
    if "wire_default" in spec:
        parts.append(f"sent as `{spec['wire_default']}` when omitted")
    return "; ".join(parts)


def _sources(param: ParamInfo) -> str:
    return ", ".join(f"{fact} {where}" for fact, where in param.source.items())


def render_model_md(model: ModelInfo, *, level: int = 3, max_values: int | None = None) -> str:
    """Markdown section for one model: request values, blocks with parameters, credits, decisions."""
    h = "#" * level
    lines = [f"{h} `{model.id}` -- {model.name}", ""]
    flags = [model.modality]
    if model.legacy:
        flags.append("legacy (older documents only)")
    if model.root_only:
        flags.append("root-only (no `input` object)")
    lines.append(f"{', '.join(flags)}. Source: {model.source}.")
    lines.append("")
    values = []
    for rv in model.values:
        text = f"`{rv.value}` ({rv.kind}"
        if rv.wire_model and rv.wire_model != rv.value:
            text += f", sent as `{rv.wire_model}`"
        if rv.options and rv.set_options:
            text += f" with options {json.dumps(dict(rv.options))}"
        if rv.kind == "family":
            text += ", not accepted on generate"
        values.append(text + ")")
    lines.append("Request `model` values: " + ", ".join(values) + ".")
    lines.append("")
    for block in model.blocks:
        applies = f" (model values: {', '.join(block.model_values)})" if block.model_values else ""
        lines.append(f"{h}# Block `{block.id}`{applies}")
        lines.append("")
        lines.append(f"Source: {block.source}.")
        lines.append("")
        lines.append("| field | required | constraints | sources |")
        lines.append("| --- | --- | --- | --- |")
        for param in block.params:
            required = "yes" if param.required else "no"
            lines.append(
                f"| `{param.path}` | {required} | {describe_param(param, max_values=max_values)} | {_sources(param)} |"
            )
        lines.append("")
    lines.append(f"{h}# Credits")
    lines.append("")
    lines.extend(render_pricing(model.pricing))
    lines.append("")
    return "\n".join(lines)


def render_pricing(pricing: Mapping[str, Any] | None) -> list[str]:
    """Markdown lines for a pricing table (or why there is no estimate)."""
    if not pricing or not pricing.get("rows"):
        why = (pricing or {}).get("note", "no price in the documents")
        src = (pricing or {}).get("source")
        return [f"Unknown: {why}" + (f" ({src})." if src else ".")]
    out = [f"Per {pricing['unit']} ({pricing['source']})."]
    dims = list(pricing.get("dims", {}))
    if dims:
        where = ", ".join(f"{d} from `{spec['from']}`" for d, spec in pricing["dims"].items())
        out.append(f"Tier chosen by: {where}.")
    per = pricing.get("per")
    if per and per.get("quantity") is None and "characters" not in per:
        out.append("Billed per unit of media length the request does not state: the estimate is unknown.")
    elif per and "quantity" in per:
        out.append(f"Multiplied by `{per['quantity']}` (a started unit counts whole).")
    elif per and "characters" in per:
        out.append(f"Per started block of {per['size']} characters of `{per['characters']}`.")
    if pricing.get("note"):
        out.append(f"Note: {pricing['note']}.")
    out.append("")
    out.append("| " + " | ".join([*dims, "credits", "source"]) + " |")
    out.append("| " + " | ".join("---" for _ in [*dims, 1, 2]) + " |")
    for row in pricing["rows"]:
        cells = [str(row.get(d, "any")) for d in dims]
        out.append("| " + " | ".join([*cells, str(row["credits"]), row.get("source", "")]) + " |")
    return out


def render_models_md(catalog: Catalog) -> str:
    """The whole of docs/models.md."""
    models = catalog.models()
    blocks = sum(len(m.blocks) for m in models)
    lines = [
        "# Model reference",
        "",
        "<!-- Generated from shared/mediagen/catalog/catalog.json by mediagen.catalog.reference; "
        "do not edit. "
        "A test (tests/unit/test_catalog_docs.py) fails when this file is stale: regenerate with "
        "`python -m mediagen.catalog.reference --write docs`. -->",
        "",
        f"{len(models)} catalog entries ({sum(1 for m in models if m.legacy)} legacy), "
        f"{blocks} request blocks. "
        "Sources are `document:line` in the provider documents ([sources.md](sources.md): 000 = newest per-model "
        "reference, 001 = older catalog, "
        "002 = public reference). Decisions taken where the documents disagree: "
        "[catalog-decisions.md](catalog-decisions.md).",
        "",
        "A request is valid when it matches one of its model's blocks. `options`, `imageURLList` and "
        "`videoURLList` may be sent as JSON values or as the documented JSON strings.",
        "",
        "| model | modality | request values | blocks | credits |",
        "| --- | --- | --- | --- | --- |",
    ]
    for m in models:
        rows = (m.pricing or {}).get("rows") or []
        credits = "unknown"
        if rows:
            low = min(r["credits"] for r in rows)
            high = max(r["credits"] for r in rows)
            credits = (f"{low}" if low == high else f"{low}-{high}") + f" per {m.pricing['unit']}"  # type: ignore[index]
        lines.append(
            f"| [`{m.id}`](#{_anchor(m)}){' (legacy)' if m.legacy else ''} | {m.modality} | "
            f"{', '.join(m.sendable_values())} | {', '.join(b.id for b in m.blocks)} | {credits} |"
        )
    lines.append("")
    for modality in ("image", "video", "audio"):
        lines.append(f"## {modality.capitalize()} models")
        lines.append("")
        for m in models:
            if m.modality == modality:
                lines.append(render_model_md(m))
    return "\n".join(lines).rstrip("\n") + "\n"


def _anchor(model: ModelInfo) -> str:
    text = f"{model.id} -- {model.name}".lower()
    return "".join(c for c in text.replace(" ", "-") if c.isalnum() or c in "-_")


# ------------------------------------------------------------------------------------- JSON Schema


def _schema_for(spec: Mapping[str, Any]) -> dict[str, Any]:
    kind = spec["type"]
    types = [kind, *[a for a in spec.get("accept", ()) if a != kind]]
    out: dict[str, Any] = {"type": types[0] if len(types) == 1 else types}
    enum = spec.get("enum")
    if enum is not None:
        values = list(enum)
        if "integer" in spec.get("accept", ()) and kind == "string":
            values += [int(v) for v in enum if isinstance(v, str) and v.isdigit()]
        out["enum"] = values
    for key, target in (
        ("minimum", "minimum"),
        ("maximum", "maximum"),
        ("max_length", "maxLength"),
        ("min_items", "minItems"),
        ("max_items", "maxItems"),
    ):
        if key in spec and (key not in ("minimum", "maximum") or kind in ("integer", "number")):
            out[target] = spec[key]
    if spec.get("numeric"):
        out["description"] = f"a number {spec.get('minimum')}..{spec.get('maximum')} (as a string or number)"
    if spec.get("format") == "url":
        out["format"] = "uri"
        out["pattern"] = "^(https?|s3)://"
    if "items" in spec:
        out["items"] = _schema_for(spec["items"])
    if kind == "object" and ("properties" in spec or "required_properties" in spec):
        out["properties"] = {k: _schema_for(v) for k, v in spec.get("properties", {}).items()}
        if spec.get("required_properties"):
            out["required"] = list(spec["required_properties"])
        out["additionalProperties"] = bool(spec.get("additional_properties", False))
    variants = [_schema_for(v) for v in spec.get("variants", ())]
    if variants:
        out = {"anyOf": [out, *variants]}
    if spec.get("encoding") == "json":
        out = {"anyOf": [out, {"type": "string", "contentMediaType": "application/json", "contentSchema": out}]}
    if spec.get("description"):
        out.setdefault("description", spec["description"])
    return out


def json_schema(model: ModelInfo) -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) of the request bodies the catalog accepts for ``model``.

    One ``oneOf`` branch per block. Cross-field rules (mirrored fields, routed-value / options agreement)
    are not expressible in JSON Schema; :meth:`mediagen.catalog.Catalog.validate` checks them.
    """
    branches = []
    for block in model.blocks:
        values = list(block.model_values) or model.sendable_values()
        root_props: dict[str, Any] = {"model": {"enum": values}, "callBackUrl": {"type": "string"}}
        input_props: dict[str, Any] = {}
        root_required = ["model"]
        input_required: list[str] = []
        for param in block.params:
            props, required = (root_props, root_required) if param.location == "root" else (input_props, input_required)
            props[param.name] = _schema_for(param.spec)
            if param.required:
                required.append(param.name)
        if input_props:
            root_props["input"] = {
                "type": "object",
                "properties": input_props,
                "required": input_required,
                "additionalProperties": False,
            }
            if input_required or not model.root_only:
                root_required.append("input")
        branches.append(
            {
                "title": block.id,
                "type": "object",
                "properties": root_props,
                "required": root_required,
                "additionalProperties": False,
            }
        )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://mediagen.invalid/schemas/{model.id}.json",
        "title": f"{model.id} request body",
        "description": f"{model.name} ({model.modality}). Generated from the mediagen catalog; sources in "
        f"docs/models.md.",
        "oneOf": branches,
    }


BEGIN_GENERATED = "<!-- BEGIN GENERATED: per-model decisions (mediagen.catalog.reference) -->"
END_GENERATED = "<!-- END GENERATED -->"


def render_decisions_md(catalog: Catalog) -> str:
    """The generated part of docs/catalog-decisions.md: every recorded decision, per model, with sources."""
    lines = [BEGIN_GENERATED, ""]
    for model in catalog.models():
        decisions = catalog.data["models"][model.id].get("decisions", [])
        if not decisions:
            continue
        lines.append(f"### `{model.id}`")
        lines.append("")
        for decision in decisions:
            lines.append(f"- {decision['text']} ({', '.join(decision['sources'])})")
        lines.append("")
    lines.append(END_GENERATED)
    return "\n".join(lines) + "\n"


def replace_generated(text: str, generated: str) -> str:
    """``text`` with its generated section replaced by ``generated``."""
    start = text.index(BEGIN_GENERATED)
    end = text.index(END_GENERATED) + len(END_GENERATED) + 1
    return text[:start] + generated + text[end:]


def main(argv: list[str] | None = None) -> int:
    """Regenerate docs/models.md and the generated part of docs/catalog-decisions.md (``--write DOCS_DIR``),
    or print docs/models.md to stdout."""
    import argparse
    from pathlib import Path

    from mediagen.catalog import get_catalog

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--write", type=Path, metavar="DOCS_DIR", help="rewrite the files in this docs folder")
    args = parser.parse_args(argv)
    catalog = get_catalog()
    if args.write is None:
        print(render_models_md(catalog), end="")
        return 0
    (args.write / "models.md").write_text(render_models_md(catalog), encoding="utf-8")
    decisions = args.write / "catalog-decisions.md"
    decisions.write_text(
        replace_generated(decisions.read_text(encoding="utf-8"), render_decisions_md(catalog)),
        encoding="utf-8",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
