"""The reviewed decisions applied on top of what ``seedparse`` extracts from document 000 (docs/sources.md).

Each function below encodes a decision for one model (or one rule for all models) and records it, with
the document lines it rests on, in the model's ``decisions`` list -- which docs/catalog-decisions.md
renders. Policy (docs/sources.md): 000 is primary for models, parameters, types and limits; 002 is primary for
wire encoding (root helpers, routed variants, tier selection) and credits; 001/003 are older. Where the
documents disagree we accept the union of values and ranges, a field is required only when every
document describing it requires it, and either documented type is accepted when the conversion is
lossless. Models only the older documents describe stay, marked ``legacy``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

from seedparse import DOC_FILES, RawBlock, doc_lines, find_line, parse_002_cards

Model = dict[str, Any]
Param = dict[str, Any]

# ------------------------------------------------------------------------------------------ citing


def cite(doc: str, needle: str, *, start: int = 1, end: int | None = None, nth: int = 1) -> str:
    """``"<doc>:<line>"`` of the line containing ``needle`` (fails the build when absent)."""
    return f"{doc}:{find_line(doc, needle, start=start, end=end, nth=nth)}"


_P002 = find_line("002", "Pricing Reference", nth=2)
_P002_END = find_line("002", "Examples", start=_P002)


def price002(model_id: str) -> str:
    """The "Pricing Reference" [002:1091-1154] row of a model."""
    lines = doc_lines("002")
    for number in range(_P002, _P002_END):
        line = lines[number - 1]
        if line.startswith(model_id) and re.match(r"^(\d| \(alias\))", line[len(model_id) :]):
            return f"002:{number}"
    raise LookupError(model_id)


def price001(model_id: str, label: str, credits: int) -> str:
    """A row ``| label | credits |`` of the document 001 pricing table of ``model_id``."""
    section = find_line("001", f"{model_id} — ", start=find_line("001", "Pricing and API credits"))
    return cite("001", f"| {label} | {credits} |", start=section)


_CARDS: dict[str, Any] = {}


def card(model_id: str) -> Any:
    if not _CARDS:
        ids = [*_MODEL_IDS, "sora-2-turbo", "sora-story-board", "gpt-image-1", "kling-2-5"]
        _CARDS.update(parse_002_cards(ids))
    return _CARDS[model_id]


_MODEL_IDS: list[str] = []

# ---------------------------------------------------------------------------------------- helpers


def note(m: Model, text: str, *sources: str) -> None:
    """Record a decision on model ``m`` (rendered in docs/catalog-decisions.md)."""
    m.setdefault("decisions", []).append({"text": text, "sources": list(sources)})


def params(m: Model, name: str, location: str | None = None) -> list[Param]:
    return [
        p
        for b in m["blocks"]
        for p in b["params"]
        if p["name"] == name and (location is None or p["location"] == location)
    ]


def each(m: Model, name: str, fn: Callable[[Param], None]) -> None:
    found = params(m, name)
    if not found:
        raise KeyError(f"{name} not in model")
    for p in found:
        fn(p)


def union_enum(m: Model, name: str, values: list[Any], source: str, *, why: str = "") -> None:
    """Accept the union of 000's values and another document's (contradiction policy)."""
    added: list[Any] = []
    for p in params(m, name):
        for value in values:
            if value not in p["enum"]:
                p["enum"].append(value)
                if value not in added:
                    added.append(value)
        current = p["source"].get("enum", p["source"]["param"])
        p["source"]["enum"] = current if source in current else f"{current}+{source}"
    if added:
        note(
            m,
            f"`{name}`: union of allowed values; added {', '.join(map(str, added))} from {source[:3]}"
            + (f" ({why})" if why else ""),
            params(m, name)[0]["source"]["enum"].split("+")[0],
            source,
        )


def relax(m: Model, name: str, source: str, *, why: str = "") -> None:
    """Make ``name`` optional: not every document describing it requires it."""
    changed = False
    for p in params(m, name):
        if p["required"]:
            p["required"] = False
            p["source"]["required"] = f"{p['source']['required']}+{source}"
            changed = True
    if changed:
        note(
            m,
            f"`{name}` is optional: 000 requires it, {source[:3]} does not" + (f" ({why})" if why else ""),
            params(m, name)[0]["source"]["param"],
            source,
        )


def accept(m: Model, name: str, types: list[str], source: str, why: str) -> None:
    for p in params(m, name):
        p.setdefault("accept", [])
        for t in types:
            if t not in p["accept"]:
                p["accept"].append(t)
        p["source"]["accept"] = source
    note(
        m,
        f"`{name}`: sent as {params(m, name)[0]['type']} (000); {' or '.join(types)} accepted too ({why})",
        params(m, name)[0]["source"]["type"],
        source,
    )


def add_param(m: Model, spec: Param, *, blocks: list[int] | None = None, why: str = "") -> None:
    """Add a parameter another document describes and 000 does not (optional unless said otherwise)."""
    targets = [b for i, b in enumerate(m["blocks"]) if blocks is None or i in blocks]
    for block in targets:
        if any(p["name"] == spec["name"] and p["location"] == spec["location"] for p in block["params"]):
            raise ValueError(f"{spec['name']} already in block")
        block["params"].append(copy.deepcopy(spec))
    where = "" if blocks is None else f" (block {', '.join(str(i + 1) for i in blocks)})"
    path = spec["name"] if spec["location"] == "root" else f"input.{spec['name']}"
    note(
        m,
        f"`{path}` added{where}: described by {spec['source']['param'][:3]}, not by 000"
        + (f" -- {why}" if why else ""),
        spec["source"]["param"],
    )


def common(m: Model, spec: Param) -> None:
    m.setdefault("common_params", []).append(spec)


def set_field(m: Model, name: str, key: str, value: Any, source: str, text: str) -> None:
    for p in params(m, name):
        p[key] = value
        p["source"][key] = source
    note(m, text, source)


def url_list(
    name: str,
    media: str,
    source: str,
    *,
    location: str = "root",
    json_encoded: bool = True,
    description: str = "",
) -> Param:
    spec: Param = {
        "name": name,
        "location": location,
        "type": "array",
        "required": False,
        "items": {"type": "string", "format": "url", "media": media},
        "media": media,
        "description": description,
        "source": {"param": source, "type": source},
    }
    if json_encoded:
        spec["encoding"] = "json"
    return spec


def options_param(source: str, properties: dict[str, Param] | None, description: str = "") -> Param:
    spec: Param = {
        "name": "options",
        "location": "root",
        "type": "object",
        "encoding": "json",
        "required": False,
        "properties": properties or {},
        "additional_properties": properties is None,
        "description": description or "Tier and advanced settings (a JSON object, sent as a JSON string).",
        "source": {"param": source, "type": cite("002", "options encoding:")},
    }
    return spec


def opt(type_: str, source: str, **extra: Any) -> Param:
    return {"type": type_, "source": {"param": source}, **extra}


def simple(
    name: str, type_: str, source: str, *, location: str = "input", required: bool = False, **extra: Any
) -> Param:
    spec = {
        "name": name,
        "location": location,
        "type": type_,
        "required": required,
        "description": extra.pop("description", ""),
        "source": {"param": source, "type": source},
        **extra,
    }
    for fact in ("enum", "max_length", "max_items"):
        if fact in extra:
            spec["source"][fact] = source
    if "minimum" in extra or "maximum" in extra:
        spec["source"]["range"] = source
    return spec


def mirror(m: Model, fields: list[str], compare: str, source: str, text: str) -> None:
    m.setdefault("rules", []).append({"kind": "mirror", "fields": fields, "compare": compare, "source": source})
    note(m, text, source)


def to_option(m: Model, field: str, option: str, source: str, text: str, mapping: dict[str, Any] | None = None) -> None:
    rule: dict[str, Any] = {"kind": "to_option", "from": field, "option": option, "source": source}
    if mapping:
        rule["map"] = mapping
    m.setdefault("rules", []).append(rule)
    note(m, text, source)


def values(m: Model, entries: list[dict[str, Any]]) -> None:
    m["request_values"] = entries


def family(m: Model, model_id: str, source: str) -> dict[str, Any]:
    return {"value": model_id, "kind": "family", "source": source}


def routed(value: str, tier: str, source: str, **extra: Any) -> dict[str, Any]:
    return {"value": value, "kind": "routed", "wire_model": value, "tier": tier, "source": source, **extra}


def pricing(
    m: Model,
    unit: str,
    source: str,
    dims: dict[str, Any],
    rows: list[dict[str, Any]],
    per: dict[str, Any] | None = None,
    note_text: str = "",
) -> None:
    m["pricing"] = {"unit": unit, "source": source, "dims": dims, "rows": rows, "per": per}
    if note_text:
        m["pricing"]["note"] = note_text


def flat(m: Model, credits: int, unit: str = "image") -> None:
    src = price002(m["id"])
    pricing(m, unit, src, {}, [{"credits": credits, "source": src}])


def unpriced(m: Model, why: str, source: str | None = None) -> None:
    m["pricing"] = {"unit": None, "source": source, "dims": {}, "rows": [], "per": None, "note": why}


def table(
    model_id: str, dims: list[str], entries: list[tuple[Any, ...]], labels: list[str] | None = None
) -> list[dict[str, Any]]:
    """Pricing rows from ``(dim values..., credits)`` tuples; sources from document 001 when labels given."""
    rows = []
    for i, entry in enumerate(entries):
        row: dict[str, Any] = {d: str(v) for d, v in zip(dims, entry[:-1], strict=True)}
        row["credits"] = entry[-1]
        row["source"] = price001(model_id, labels[i], entry[-1]) if labels else price002(model_id)
        rows.append(row)
    return rows


# ------------------------------------------------------------------------- model membership fixes


def model_id_for_block(raw: RawBlock) -> str:
    """Which catalog entry a 000 block belongs to.

    The two ElevenLabs TTS sections of 000 carry swapped "Model ID" lines (10654: "elevenlabs-tts" under
    the "ElevenLabs TTS Turbo" heading, whose table and sample say ``elevenlabs-tts-turbo``); the table's
    model value, which agrees with the heading and with 002's names, decides. Every other block belongs
    to its section (the seedance-2 section prints ``seedance-2-fast`` as its model value: see
    ``_seedance_2``).
    """
    if raw.section_id in ("elevenlabs-tts", "elevenlabs-tts-turbo"):
        return raw.model_values_raw
    return raw.section_id


# ------------------------------------------------------------------------------- generic passes

_DURATION_STRING = cite("002", "Quoted numeric strings")
_PLURAL_ARRAYS = cite("002", "Important: Plural URL fields")
_ROOT_ONLY = cite("002", "Root-only model A model")
_IMAGE_LIST = cite("002", "imageURLList A stringified")
_VIDEO_LIST = cite("002", "videoURLList A stringified")
_OPTIONS = cite("002", "options A stringified")
_TIERS = cite("002", "Tier selection: Cliprise uses")


def _generic(m: Model) -> None:
    """Rules applied to every model before its own decisions."""
    model_id = m["id"]
    m.setdefault("request_values", [{"value": model_id, "kind": "id", "wire_model": model_id, "source": m["source"]}])
    for block in m["blocks"]:
        for p in block["params"]:
            # 000 types duration/n_frames as strings ("5"); 002's cards say integer seconds; 002's Input
            # Types say quoted strings. Either is accepted, the 000 type is sent.
            if p["name"] in ("duration", "n_frames") and p["type"] == "string":
                p["accept"] = ["integer"]
                p["source"]["accept"] = _DURATION_STRING
            elif p["name"] == "duration" and p["type"] in ("number", "integer"):
                p["accept"] = ["string"]
                p["source"]["accept"] = _DURATION_STRING
            if p["type"] == "string" and "minimum" in p:
                p["numeric"] = True
                p.setdefault("accept", [])
                if "integer" not in p["accept"]:
                    p["accept"].append("integer")
            if p["type"] == "string" and p.get("enum") and all(re.fullmatch(r"\d+", str(v)) for v in p["enum"]):
                p.setdefault("accept", [])
                if "integer" not in p["accept"]:
                    p["accept"].append("integer")


def _union_002(m: Model) -> None:
    """Union the allowed values of 002's model card into 000's enums (skipping descriptive rows)."""
    try:
        c = card(m["id"])
    except KeyError:
        return
    names = sorted({p["name"] for b in m["blocks"] for p in b["params"]}, key=len, reverse=True)
    for text, (line, _) in c.values.items():
        name = next((n for n in names if text.startswith(n)), None)
        if name is None:
            continue
        rest = text[len(name) :]
        if rest.startswith(" (via options)"):
            continue  # index values of options, not of the root field
        if not re.match(r"^[\w:]+( HD)?( \|| \(|$)", rest) or "enum" in rest or "same families" in rest:
            continue
        vals = [re.sub(r"\s*\(.*\)$", "", v.strip()) for v in rest.split("|")]
        targets = params(m, name)
        if not all(t.get("enum") for t in targets):
            continue
        kind = targets[0]["type"]
        if kind in ("number", "integer"):
            parsed: list[Any] = [int(v) for v in vals]
        elif kind == "boolean":
            continue
        else:
            parsed = vals
        union_enum(m, name, parsed, f"002:{line}")


def _relax_002(m: Model) -> None:
    """Required in 000 but optional in 002's card: optional, when it is not what tells two blocks apart."""
    try:
        c = card(m["id"])
    except KeyError:
        return
    for name in c.optional:
        found = params(m, name)
        if (
            found
            and any(p["required"] for p in found)
            and all(any(p["name"] == name for p in b["params"]) for b in m["blocks"])
        ):
            relax(m, name, f"002:{c.optional_line}")


# --------------------------------------------------------------------------------- per model


def _nano_banana(m: Model) -> None:
    flat(m, 8)


def _gpt_image_1_5(m: Model) -> None:
    c = card(m["id"])
    common(
        m,
        options_param(
            f"002:{c.optional_line}",
            {
                "image_size": opt("integer", cite("002", 'such as {"image_size":0,"quality":0}')),
                "quality": opt("integer", cite("002", 'such as {"image_size":0,"quality":0}')),
            },
        ),
    )
    note(
        m,
        "`options` (root, JSON string) accepted with keys image_size and quality (index values), per the 002 card",
        cite("002", 'such as {"image_size":0,"quality":0}'),
    )
    src = price002(m["id"])
    pricing(
        m,
        "image",
        src,
        {"quality": {"from": "input.quality", "lower": True}},
        [
            {"quality": "medium", "credits": 8, "source": src},
            {"quality": "high", "credits": 44, "source": src},
        ],
    )


def _seedream_v4(m: Model) -> None:
    spec = simple(
        "max_images",
        "integer",
        cite("002", "max_images 1–6 available"),
        minimum=1,
        maximum=6,
        description="Number of images (1-6).",
    )
    spec["source"]["range"] = spec["source"]["param"]
    add_param(m, spec, why="002 and 001 (" + cite("001", "max_images 1–6") + ") give max_images 1-6")
    flat(m, 9)


def _seedream_v3(m: Model) -> None:
    add_param(m, simple("enable_safety_checker", "boolean", f"002:{card(m['id']).optional_line}"))
    flat(m, 7)


def _ideogram_character(m: Model) -> None:
    src = cite("002", "reference_image_urls accepts up to 3 URLs")
    for p in params(m, "reference_image_urls"):
        p["max_items"] = 3
        p["source"]["max_items"] = f"{p['source']['max_items']}+{src}"
    note(
        m,
        "`input.reference_image_urls`: 000 says max 1 image, 002 up to 3: the larger limit is accepted",
        params(m, "reference_image_urls")[0]["source"]["max_items"].split("+")[0],
        src,
    )
    note(
        m,
        "`input.style`: 002 says the character route has no FICTION; 000 lists it. Kept (union; the provider decides)",
        params(m, "style")[0]["source"]["enum"],
        cite("002", "same families as ideogram-v3"),
    )
    _speed_pricing(m, (22, 33, 44))


def _speed_pricing(m: Model, credits: tuple[int, int, int]) -> None:
    src = price002(m["id"])
    rows = [
        {"speed": s, "credits": c, "source": src}
        for s, c in zip(("TURBO", "BALANCED", "QUALITY"), credits, strict=True)
    ]
    pricing(m, "image", src, {"speed": {"from": "input.rendering_speed"}}, rows)


def _qwen_image(m: Model) -> None:
    src = cite("001", "guidance_scale 1–20")
    note(
        m,
        "`input.guidance_scale`: 000 says 0-20, 001 says 1-20: the union 0-20 is accepted",
        params(m, "guidance_scale")[0]["source"]["range"],
        src,
    )
    layouts = [
        ("square", "1:1 Ratio Image", 2),
        ("square_hd", "1:1 HD Ratio Image", 7),
        ("portrait_4_3", "3:4 Ratio Image", 5),
        ("portrait_16_9", "9:16 Ratio Image", 4),
        ("landscape_4_3", "4:3 Ratio Image", 5),
        ("landscape_16_9", "16:9 Ratio Image", 4),
    ]
    rows = [
        {"size": size, "credits": credits, "source": price001("qwen-image", label, credits)}
        for size, label, credits in layouts
    ]
    pricing(
        m,
        "image",
        price002(m["id"]),
        {"size": {"from": "input.image_size"}},
        rows,
        note_text="001 prices qwen-image per ratio (1:1, 1:1 HD, 3:4, 9:16, 4:3, 16:9); the six layout "
        "presets map to them (portrait_4_3 = 3:4, landscape_16_9 = 16:9, ...)",
    )
    note(
        m,
        "credits: 001's per-ratio prices are applied to the layout presets they correspond to "
        "(square=1:1, square_hd=1:1 HD, portrait_4_3=3:4, portrait_16_9=9:16, landscape_4_3=4:3, "
        "landscape_16_9=16:9)",
        cite("001", "| 1:1 Ratio Image | 2 |"),
    )


def _qwen_image_2(m: Model) -> None:
    src = cite("002", "seed range: 10 000–999 999")
    for p in params(m, "seed"):
        p["maximum"] = 999999
        p["source"]["range"] = f"{p['source']['range']}+{src}"
    note(
        m,
        "`input.seed`: 000 says 10000-99999, 002 and 001 10000-999999: the union is accepted",
        params(m, "seed")[0]["source"]["range"].split("+")[0],
        src,
    )
    flat(m, 12)


def _imagen_v4(m: Model) -> None:
    tier_src = cite("002", "options.fast_ultra: 0 = Fast")
    rows_src = f"000:{m['model_values_line']}"
    values(
        m,
        [
            {"value": "imagen-v4", "kind": "id", "wire_model": "imagen-v4", "source": rows_src},
            {
                "value": "imagen-v4-ultra",
                "kind": "tier",
                "wire_model": "imagen-v4",
                "tier": "ultra",
                "options": {"fast_ultra": 1},
                "set_options": True,
                "source": rows_src,
            },
        ],
    )
    m["option_defaults"] = {"fast_ultra": 0}
    note(
        m,
        "`imagen-v4-ultra` (a model value in 000's table) is sent as model imagen-v4 with "
        "options.fast_ultra=1: 002 (primary for tier selection) selects the Imagen tier through options "
        "on the base id",
        rows_src,
        tier_src,
        _TIERS,
    )
    note(
        m,
        "the encoder always sends options.fast_ultra (0 = Fast unless the request says otherwise), so the "
        "tier -- and the estimate -- are explicit",
        tier_src,
    )
    neg = cite("002", "negative_prompt is passed as options.negative-prompt")
    common(
        m,
        options_param(
            f"002:{card('imagen-v4').optional_line}",
            {
                "fast_ultra": opt("integer", tier_src, minimum=0),
                "negative-prompt": opt("string", neg, max_length=500),
                "seeds": opt("integer", cite("001", "fast_ultra Fast/Ultra, seeds")),
            },
        ),
    )
    to_option(
        m,
        "input.negative_prompt",
        "negative-prompt",
        neg,
        '`input.negative_prompt` is mirrored into options["negative-prompt"] (002); input keeps it (000)',
    )
    src = price002(m["id"])
    pricing(
        m,
        "image",
        src,
        {"tier": {"from": "options.fast_ultra", "map": {"0": "fast", "*": "ultra"}}},
        [{"tier": "fast", "credits": 8, "source": src}, {"tier": "ultra", "credits": 22, "source": src}],
    )


def _ideogram_v3(m: Model) -> None:
    _speed_pricing(m, (7, 13, 18))


def _flux_kontext(m: Model) -> None:
    rv = cite("002", "Request model values: flux-kontext-pro")
    values(
        m,
        [
            routed("flux-kontext-pro", "pro", rv, options={"model": 0}),
            routed("flux-kontext-max", "max", rv, options={"model": 1}),
            family(m, "flux-kontext", cite("002", 'Do not send base model: "flux-kontext"')),
        ],
    )
    note(
        m,
        "request values flux-kontext-pro / flux-kontext-max are sent as is; the base id flux-kontext is "
        "rejected (002); a request's options.model must agree with the routed value (0 = Pro, 1 = Max)",
        rv,
        cite("002", 'Do not send base model: "flux-kontext"'),
        cite("002", '"options": "{\\"model\\":0'),
    )
    common(m, url_list("imageURLList", "image", _IMAGE_LIST))
    common(
        m,
        options_param(
            f"002:{card('flux-kontext').optional_line}",
            {
                "model": opt("integer", rv, enum=[0, 1]),
                "outputFormat": opt("integer", cite("002", '"options": "{\\"model\\":0'), minimum=0),
                "aspectRatio": opt("integer", cite("002", '"options": "{\\"model\\":0'), minimum=0),
            },
        ),
    )
    mirror(
        m,
        ["inputImage", "imageURLList"],
        "first_url",
        cite("002", "the pipeline extracts the first URL"),
        "`inputImage` (000) and root `imageURLList` (002) carry the same image: either fills the other",
    )
    src = price002(m["id"])
    pricing(
        m,
        "image",
        src,
        {"tier": {"from": "tier"}},
        [{"tier": "pro", "credits": 9, "source": src}, {"tier": "max", "credits": 18, "source": src}],
    )


def _ideogram_reframe(m: Model) -> None:
    accept(
        m,
        "image_url",
        ["string"],
        cite("002", "Single media URLstring"),
        "000 types image_url as an array (max 1); 002's Input Types list image_url as a single URL string",
    )
    _speed_pricing(m, (7, 13, 18))


def _nano_banana_pro(m: Model) -> None:
    src = price002(m["id"])
    pricing(
        m,
        "image",
        src,
        {"resolution": {"from": "input.resolution", "lower": True}},
        [
            {"resolution": "1k", "credits": 33, "source": src},
            {"resolution": "2k", "credits": 33, "source": src},
            {"resolution": "4k", "credits": 44, "source": src},
        ],
    )


def _grok_imagine(m: Model) -> None:
    accept(
        m,
        "image_urls",
        ["array"],
        _PLURAL_ARRAYS,
        "000 types image_urls as a string (max 1 image); 002 says plural URL fields take arrays",
    )
    flat(m, 8, "call")


def _flux_2(m: Model) -> None:
    rows_src = f"000:{m['model_values_line']}"
    tier_src = cite("002", "options.model: 0 = Pro / 1 = Flex")
    values(
        m,
        [
            {"value": "flux-2", "kind": "id", "wire_model": "flux-2", "source": _TIERS},
            {
                "value": "flux-2-pro",
                "kind": "tier",
                "wire_model": "flux-2",
                "tier": "pro",
                "options": {"model": 0},
                "set_options": True,
                "source": rows_src,
            },
            {
                "value": "flux-2-flex",
                "kind": "tier",
                "wire_model": "flux-2",
                "tier": "flex",
                "options": {"model": 1},
                "set_options": True,
                "source": rows_src,
            },
        ],
    )
    m["option_defaults"] = {"model": 0}
    note(
        m,
        "000's model values flux-2-pro / flux-2-flex are sent as model flux-2 with options.model 0 / 1: "
        "002 (primary for tier selection) keeps the base id and selects the tier through options; "
        "options.model is always sent (0 = Pro by default)",
        rows_src,
        tier_src,
        _TIERS,
    )
    common(m, url_list("imageURLList", "image", _IMAGE_LIST))
    common(m, options_param(tier_src, {"model": opt("integer", tier_src, enum=[0, 1])}))
    mirror(
        m,
        ["input.input_urls", "imageURLList"],
        "urls",
        cite("002", "forwards the raw value to input.input_urls"),
        "root `imageURLList` (002) and `input.input_urls` (000) carry the same list: either fills the other",
    )
    src = price002(m["id"])
    rows = [
        {"tier": t, "resolution": r, "credits": c, "source": src}
        for t, r, c in (("pro", "1k", 9), ("pro", "2k", 13), ("flex", "1k", 26), ("flex", "2k", 44))
    ]
    pricing(
        m,
        "image",
        src,
        {
            "tier": {"from": "options.model", "map": {"0": "pro", "1": "flex"}},
            "resolution": {"from": "input.resolution", "lower": True},
        },
        rows,
    )


def _z_image(m: Model) -> None:
    src = cite("002", "Up to 1 000-character prompt")
    for p in params(m, "prompt"):
        p["max_length"] = 1000
        p["source"]["max_length"] = f"{p['source']['max_length']}+{src}"
    note(
        m,
        "`input.prompt`: 000 says max 800 characters, 002 and 001 1000: the larger limit is accepted",
        params(m, "prompt")[0]["source"]["max_length"].split("+")[0],
        src,
        cite("001", "≤1000 prompt"),
    )
    note(
        m,
        "`input.aspect_ratio`: 000 prints '21:1' (no such ratio elsewhere; 002 lists 1:1 instead). Both are "
        "accepted (union); the provider decides",
        params(m, "aspect_ratio")[0]["source"]["enum"],
    )
    flat(m, 2)


def _seedream_edit_helpers(m: Model) -> None:
    c = card(m["id"])
    common(m, url_list("imageURLList", "image", f"002:{c.optional_line}"))
    common(
        m,
        options_param(
            cite("002", f"{m['id']}aspect_ratio, image_urls, prompt, quality, root:imageURLList"),
            None,
            "Advanced settings (keys not documented; passed through as a JSON string).",
        ),
    )
    mirror(
        m,
        ["input.image_urls", "imageURLList"],
        "urls",
        cite("002", "so the request can populate input.image_urls"),
        "root `imageURLList` populates `input.image_urls` (002): either fills the other",
    )


def _seedream_4_5(m: Model) -> None:
    _seedream_edit_helpers(m)
    flat(m, 12)


def _seedream_5_lite(m: Model) -> None:
    _seedream_edit_helpers(m)
    flat(m, 11)


def _recraft_remove_bg(m: Model) -> None:
    flat(m, 2)


def _recraft_upscaler(m: Model) -> None:
    flat(m, 1)


def _nano_banana_2(m: Model) -> None:
    c = card(m["id"])
    src = cite("002", "References via image_input (up to 8 images)")
    note(
        m,
        "`input.image_input`: 000 says max 14 images, 002 up to 8: the larger limit is accepted",
        params(m, "image_input")[0]["source"]["max_items"],
        src,
    )
    add_param(m, url_list("image_urls", "image", f"002:{c.optional_line}", location="input", json_encoded=False))
    add_param(
        m,
        simple(
            "google_search",
            "boolean",
            f"002:{c.optional_line}",
            description="Web-search grounding (002: 'optional web-search grounding').",
        ),
        why="its type is not documented; 002 describes it as an on/off grounding option, so boolean",
    )
    src = price002(m["id"])
    pricing(
        m,
        "image",
        src,
        {"resolution": {"from": "input.resolution", "lower": True}},
        [{"resolution": r, "credits": cr, "source": src} for r, cr in (("1k", 16), ("2k", 24), ("4k", 36))],
    )


def _unpriced_000_only(m: Model) -> None:
    unpriced(
        m,
        "not in 002's pricing reference nor 001 (000's catalog says 'Loading...')",
        cite("000", f"{m['id']} ", start=1, end=140),
    )


def _veo(m: Model) -> None:
    model_id = m["id"]
    lite = model_id == "veo-3-lite"
    if not lite:
        c = card(model_id)
        auto = cite("002", "generationType is auto-set by the", start=c.line)
        relax(m, "generationType", auto, why="002: auto-set by the provider, do not send it manually")
        common(m, url_list("imageURLList", "image", f"002:{c.optional_line}"))
        common(
            m,
            options_param(
                cite("002", "Tier / type selection: options.aspectRatio (int index)", start=c.line),
                {
                    "aspectRatio": opt(
                        "integer", cite("002", "options.aspectRatio (int index)", start=c.line), minimum=0
                    ),
                    "watermark": opt("boolean", cite("002", "options.watermark (bool)", start=c.line)),
                    "enableTranslation": opt("boolean", cite("002", "options.enableTranslation (bool)", start=c.line)),
                    "seeds": opt("integer", cite("002", "options.seeds (int)", start=c.line)),
                },
            ),
        )
        mirror(
            m,
            ["imageUrls", "imageURLList"],
            "urls",
            cite("002", "forwards the first URL as imageUrls"),
            "root `imageURLList` (002) and `imageUrls` (000) carry the same images: either fills the other",
        )
    for p in params(m, "imageUrls"):
        p["variants"] = [
            {
                "type": "array",
                "items": {"type": "string", "format": "url", "media": "image"},
                **{k: p[k] for k in ("min_items", "max_items") if k in p},
            }
        ]
    note(
        m,
        "`imageUrls`: 000 types it as a string but limits it by image counts (2 compulsory for first/last "
        "frames, max 3 for references); a single URL string or an array of URLs is accepted and sent as "
        "given; the counts apply to the number of URLs",
        params(m, "imageUrls")[0]["source"]["type"],
    )
    if lite:
        _unpriced_000_only(m)
    else:
        flat(m, 108 if model_id == "veo-3-fast" else 720, "video")


def _sora_2(m: Model) -> None:
    src = price002(m["id"])
    pricing(
        m,
        "video",
        src,
        {"n_frames": {"from": "input.n_frames"}},
        [
            {"n_frames": "250", "credits": 54, "source": src},
            {"n_frames": "375", "credits": 63, "source": src},
        ],
        note_text="priced per 10 s (n_frames 250) / 15 s (375); 000's 4 / 8 / 12 have no documented price",
    )
    note(
        m,
        "`input.n_frames`: 000 lists 4, 8, 12 (seconds); 002 lists 250 / 375 frames (10 s / 15 s): the "
        "union is accepted; only 250 and 375 have a documented price",
        params(m, "n_frames")[0]["source"]["enum"],
        cite("002", "Duration is controlled via n_frames"),
    )


def _res_dur_rows(model_id: str, entries: list[tuple[str, str, int]], labels: bool = True) -> list[dict[str, Any]]:
    rows = []
    for res, dur, credits in entries:
        label = f"{res} {dur} second Video"
        src = price001(model_id, label, credits) if labels else price002(model_id)
        rows.append({"resolution": res.lower(), "duration": dur, "credits": credits, "source": src})
    return rows


_RES_DUR = {"resolution": {"from": "input.resolution", "lower": True}, "duration": {"from": "input.duration"}}


def _wan_2_5(m: Model) -> None:
    pricing(
        m,
        "video",
        price002(m["id"]),
        _RES_DUR,
        _res_dur_rows("wan-2-5", [("720p", "5", 108), ("720p", "10", 216), ("1080p", "5", 180), ("1080p", "10", 360)]),
    )


def _kling_video_turbo(m: Model) -> None:
    alias_src = cite("002", "Compatibility alias only. Keep it for backward compatibility")
    m["request_values"] = [
        {
            "value": "kling-video-turbo",
            "kind": "id",
            "wire_model": "kling-video-turbo",
            "source": m["source"],
        },
        {"value": "kling-2-5", "kind": "alias", "wire_model": "kling-video-turbo", "source": alias_src},
    ]
    note(
        m,
        "`kling-2-5` is a compatibility alias: validated as kling-video-turbo and sent as kling-video-turbo",
        alias_src,
        cite("002", "kling-2-5Alias — same as kling-video-turbo"),
    )
    src = price002(m["id"])
    pricing(
        m,
        "video",
        src,
        {"duration": {"from": "input.duration"}},
        [
            {"duration": "5", "credits": 76, "source": price001("kling-video-turbo", "5 second Video", 76)},
            {
                "duration": "10",
                "credits": 152,
                "source": price001("kling-video-turbo", "10 second Video", 152),
            },
        ],
    )


def _hailuo_common(m: Model, pro: bool) -> None:
    c = card(m["id"])
    compat = cite("002", "Current Cliprise compatibility exception")
    i2v = [i for i, b in enumerate(m["blocks"]) if any(p["name"] == "image_url" for p in b["params"])]
    spec = simple(
        "image_urls",
        "string",
        compat,
        format="url",
        media="image",
        accept=["array"],
        description="The same URL as image_url (002: most reliable as a single URL string).",
    )
    add_param(
        m,
        spec,
        blocks=i2v,
        why="002: on hailuo / hailuo-pro image_urls works best as one URL string matching image_url",
    )
    mirror(
        m,
        ["input.image_url", "input.image_urls"],
        "first_url",
        compat,
        "`input.image_urls` is sent as the same single URL as `input.image_url` (002 compatibility note)",
    )
    res = [v.strip() for v in next(t for t in c.values if t.startswith("resolution"))[len("resolution") :].split("|")]
    line = c.values[next(t for t in c.values if t.startswith("resolution"))][0]
    add_param(m, simple("resolution", "string", f"002:{line}", enum=res))
    if pro:
        dline = c.values[next(t for t in c.values if t.startswith("duration"))][0]
        add_param(m, simple("duration", "string", f"002:{dline}", enum=["6"], accept=["integer"]))


def _hailuo(m: Model) -> None:
    _hailuo_common(m, pro=False)
    rows = _res_dur_rows("hailuo", [("512p", "6", 22), ("512p", "10", 36), ("768p", "6", 54), ("768p", "10", 90)])
    pricing(
        m,
        "video",
        price002(m["id"]),
        _RES_DUR,
        rows,
        note_text="resolution is needed for a price (002 documents 512P / 768P)",
    )


def _hailuo_pro(m: Model) -> None:
    _hailuo_common(m, pro=True)
    flat(m, 103, "video")


def _runway(m: Model) -> None:
    c = card(m["id"])
    hard = cite("002", "quality is hardcoded to 720p by the pipeline")
    relax(m, "quality", hard, why="002: hardcoded to 720p by the provider, not user-controllable")
    for p in params(m, "quality"):
        p["wire_default"] = "720p"
    note(
        m,
        "`quality` is always sent as 720p (000 requires it; its only value) when the request omits it",
        hard,
    )
    common(m, url_list("imageURLList", "image", f"002:{c.optional_line}"))
    common(
        m,
        options_param(
            cite("002", "aspectRatio and duration come from options.aspectRatio"),
            {
                "aspectRatio": opt(
                    "integer",
                    cite("002", "aspectRatio and duration come from options.aspectRatio"),
                    minimum=0,
                ),
                "duration": opt(
                    "integer",
                    cite("002", "aspectRatio and duration come from options.aspectRatio"),
                    minimum=0,
                ),
                "watermark": opt("boolean", cite("002", "watermark is a bool via options.watermark")),
            },
        ),
    )
    mirror(
        m,
        ["imageUrl", "imageURLList"],
        "first_url",
        cite("002", "imageUrl holds the reference image URL"),
        "`imageUrl` (000) is the first URL of root `imageURLList` (002): either fills the other",
    )
    src = price002(m["id"])
    pricing(
        m,
        "video",
        src,
        {"duration": {"from": "duration"}},
        [
            {"duration": "5", "credits": 198, "source": price001("runway", "5 second Video", 198)},
            {"duration": "10", "credits": 396, "source": price001("runway", "10 second Video", 396)},
        ],
    )


def _wan_2_2(m: Model) -> None:
    c = card(m["id"])
    add_param(m, simple("negative_prompt", "string", f"002:{c.optional_line}"))
    src = price002(m["id"])
    pricing(
        m,
        "video",
        src,
        {"resolution": {"from": "input.resolution", "lower": True}},
        [
            {"resolution": "480p", "credits": 72, "source": price001("wan-2-2", "480p Video", 72)},
            {"resolution": "720p", "credits": 108, "source": price001("wan-2-2", "720p Video", 108)},
        ],
        note_text="001's third, unlabelled row (144) is not used",
    )


def _routed_family(m: Model, tiers: list[tuple[str, str]], needle: str, base: str) -> None:
    rv = cite("002", needle)
    dont = cite("002", f'Do not send base model: "{base}"')
    values(m, [*(routed(v, t, rv) for v, t in tiers), family(m, base, dont)])
    note(
        m,
        f"request values {', '.join(v for v, _ in tiers)} are sent as is; the base id {base} is rejected "
        "(002: do not send the base model)",
        rv,
        dont,
        f"000:{m['model_values_line']}",
    )


def _image_list_mirror(m: Model, field: str, source: str) -> None:
    common(m, url_list("imageURLList", "image", _IMAGE_LIST))
    compare = "first_url" if not field.endswith("s") else "urls"
    mirror(
        m,
        [field, "imageURLList"],
        compare,
        source,
        f"`{field}` and root `imageURLList` carry the same image(s): either fills the other",
    )


def _kling_2_1(m: Model) -> None:
    _routed_family(
        m,
        [("kling-2-1-standard", "standard"), ("kling-2-1-pro", "pro"), ("kling-2-1-master", "master")],
        "Request model values: kling-2-1-standard",
        "kling-2-1",
    )
    c = card(m["id"])
    line = c.values[next(t for t in c.values if t.startswith("aspect_ratio"))][0]
    add_param(
        m,
        simple("aspect_ratio", "string", f"002:{line}", enum=["1:1", "9:16", "16:9"]),
        why="002 lists it (required); 000 does not, so it is optional",
    )
    _image_list_mirror(m, "input.image_url", cite("002", "For image-to-video send image_url in input.", start=c.line))
    common(
        m,
        options_param(
            cite("002", "kling-2-1cfg_scale, duration"),
            None,
            "Advanced settings (keys not documented; passed through as a JSON string).",
        ),
    )
    unpriced(
        m,
        "002 gives only the range 45-576 credits (Std/Pro/Master x 5s/10s), no per-tier prices",
        price002(m["id"]),
    )


def _seedance_v1(m: Model) -> None:
    _routed_family(
        m,
        [("seedance-v1-lite", "lite"), ("seedance-v1-pro", "pro")],
        "Request model values: seedance-v1-lite",
        "seedance-v1",
    )
    _image_list_mirror(m, "input.image_url", cite("002", "keep image_url and root imageURLList"))
    legacy = cite("002", "Legacy options values may still be present")
    common(
        m,
        options_param(
            legacy,
            {
                "model": opt("integer", cite("001", "Top-level options string with model index"), minimum=0),
                "aspectRatio": opt("integer", cite("002", '"options": "{\\"aspectRatio\\":2'), minimum=0),
                "duration": opt("integer", cite("002", '"options": "{\\"aspectRatio\\":2'), minimum=0),
                "resolution": opt("integer", cite("002", '"options": "{\\"aspectRatio\\":2'), minimum=0),
            },
        ),
    )
    entries = []
    for tier in ("Lite", "Pro"):
        for dur in ("5", "10"):
            for res in ("480p", "720p", "1080p"):
                entries.append((tier, res, dur))
    credits = {
        ("Lite", "480p", "5"): 18,
        ("Lite", "720p", "5"): 41,
        ("Lite", "1080p", "5"): 90,
        ("Lite", "480p", "10"): 26,
        ("Lite", "720p", "10"): 54,
        ("Lite", "1080p", "10"): 126,
        ("Pro", "480p", "5"): 36,
        ("Pro", "720p", "5"): 81,
        ("Pro", "1080p", "5"): 180,
        ("Pro", "480p", "10"): 51,
        ("Pro", "720p", "10"): 108,
        ("Pro", "1080p", "10"): 252,
    }
    rows = [
        {
            "tier": t.lower(),
            "resolution": r,
            "duration": d,
            "credits": credits[(t, r, d)],
            "source": price001("seedance-v1", f"{t} {r} {d} second Video", credits[(t, r, d)]),
        }
        for t, r, d in entries
    ]
    pricing(m, "video", price002(m["id"]), {"tier": {"from": "tier"}, **_RES_DUR}, rows)


def _grok_imagine_video(m: Model) -> None:
    c = card(m["id"])
    line = c.values[next(t for t in c.values if t.startswith("duration"))][0]
    note(
        m,
        "`input.duration`: 000 gives the range 6-30 (string); 002 lists 6 | 10 | 15: the range (a superset) "
        "is accepted; only 6 / 10 / 15 have a documented price",
        params(m, "duration")[0]["source"]["range"],
        f"002:{line}",
    )
    rows = _res_dur_rows(
        "grok-imagine-video",
        [
            ("480p", "6", 20),
            ("480p", "10", 40),
            ("480p", "15", 60),
            ("720p", "6", 40),
            ("720p", "10", 60),
            ("720p", "15", 80),
        ],
    )
    pricing(m, "video", price002(m["id"]), _RES_DUR, rows)


def _hailuo_2_3(m: Model) -> None:
    _routed_family(
        m,
        [("hailuo-2-3-standard", "standard"), ("hailuo-2-3-pro", "pro")],
        "Request model values: hailuo-2-3-standard",
        "hailuo-2-3",
    )
    _image_list_mirror(m, "input.image_url", cite("002", "keep imageURLList at root aligned with input.image_url"))
    common(
        m,
        options_param(
            cite("002", "hailuo-2-3duration, image_url"),
            None,
            "Tier settings (keys not documented; passed through as a JSON string).",
        ),
    )
    labels = {
        ("standard", "768p"): ("Standard 768p Video", 54),
        ("standard", "1080p"): ("Standard 1080p Video", 90),
        ("pro", "768p"): ("Pro 768p Video", 90),
        ("pro", "1080p"): ("Pro 1080p Video", 162),
    }
    rows = [
        {
            "tier": t,
            "resolution": r,
            "duration": "6",
            "credits": cr,
            "source": price001("hailuo-2-3", lab, cr),
        }
        for (t, r), (lab, cr) in labels.items()
    ]
    pricing(
        m,
        "video",
        price002(m["id"]),
        {"tier": {"from": "tier"}, **_RES_DUR},
        rows,
        note_text='prices are documented for duration 6 only (002: verified requests use duration "6")',
    )


def _seedance_v1_pro_fast(m: Model) -> None:
    c = card(m["id"])
    line = c.values[next(t for t in c.values if t.startswith("aspect_ratio"))][0]
    add_param(
        m,
        simple("aspect_ratio", "string", f"002:{line}", enum=["1:1", "9:16", "16:9"]),
        why="002 lists it (required); 000 does not, so it is optional",
    )
    _image_list_mirror(m, "input.image_url", cite("002", "seedance-v1-pro-fastduration, image_url"))
    common(
        m,
        options_param(
            cite("002", "seedance-v1-pro-fastduration, image_url"),
            None,
            "Settings (keys not documented; passed through as a JSON string).",
        ),
    )
    pricing(
        m,
        "video",
        price002(m["id"]),
        _RES_DUR,
        _res_dur_rows(
            "seedance-v1-pro-fast",
            [("720p", "5", 29), ("720p", "10", 65), ("1080p", "5", 65), ("1080p", "10", 130)],
        ),
    )


def _kling_2_6(m: Model) -> None:
    src = cite("002", "sound (bool/string via options.sound)")
    _image_list_mirror(m, "input.image_urls", src)
    common(m, options_param(src, {"sound": opt("boolean", src, accept=["string"])}))
    to_option(
        m,
        "input.sound",
        "sound",
        src,
        "`input.sound` is mirrored into options.sound (002: sound goes via options.sound); input keeps it (000)",
    )
    rows = []
    for dur in ("5", "10"):
        for sound, label in (("false", "without sound"), ("true", "with sound")):
            credits = {("5", "false"): 99, ("5", "true"): 198, ("10", "false"): 198, ("10", "true"): 396}[(dur, sound)]
            rows.append(
                {
                    "duration": dur,
                    "sound": sound,
                    "credits": credits,
                    "source": price001("kling-2-6", f"{dur} second Video {label}", credits),
                }
            )
    pricing(
        m,
        "video",
        price002(m["id"]),
        {"duration": {"from": "input.duration"}, "sound": {"from": "input.sound"}},
        rows,
    )


def _wan_speech_to_video(m: Model) -> None:
    add_param(m, simple("enable_safety_checker", "boolean", f"002:{card(m['id']).optional_line}"))
    src = price002(m["id"])
    rows = [
        {"resolution": r, "credits": c, "source": price001("wan-speech-to-video", f"Second for {r} Video", c)}
        for r, c in (("480p", 22), ("580p", 33), ("720p", 44))
    ]
    pricing(
        m,
        "second",
        src,
        {"resolution": {"from": "input.resolution", "lower": True}},
        rows,
        per={"quantity": None},
        note_text="per second of output video; the request does not fix the length, so no estimate",
    )


def _wan_animate(m: Model) -> None:
    rv = cite("002", "Use routed model values wan-animate-replace or wan-animate-movie")
    anim = cite("002", "options.animationType: 0 = Replace / 1 = Move")
    values(
        m,
        [
            routed("wan-animate-replace", "replace", rv, options={"animationType": 0}, set_options=True),
            routed("wan-animate-movie", "move", rv, options={"animationType": 1}, set_options=True),
            family(m, "wan-animate", rv),
        ],
    )
    note(
        m,
        "request values wan-animate-replace / wan-animate-movie (000, 002); options.animationType is sent "
        "aligned with them (0 = Replace, 1 = Move); the base id is rejected",
        rv,
        anim,
        f"000:{m['model_values_line']}",
    )
    c = card(m["id"])
    add_param(m, simple("prompt", "string", f"002:{c.optional_line}"))
    common(m, url_list("imageURLList", "image", _IMAGE_LIST))
    common(m, url_list("videoURLList", "video", _VIDEO_LIST))
    common(m, options_param(anim, {"animationType": opt("integer", anim, enum=[0, 1])}))
    keep = cite("002", "Keep image_url, video_url, and resolution populated in input")
    mirror(
        m,
        ["input.image_url", "imageURLList"],
        "first_url",
        keep,
        "`input.image_url` and root `imageURLList` carry the same image: either fills the other",
    )
    mirror(
        m,
        ["input.video_url", "videoURLList"],
        "first_url",
        keep,
        "`input.video_url` and root `videoURLList` carry the same video: either fills the other",
    )
    rows = [
        {"resolution": r, "credits": cr, "source": price001("wan-animate", f"Second for {r} Video", cr)}
        for r, cr in (("480p", 11), ("580p", 18), ("720p", 23))
    ]
    pricing(
        m,
        "second",
        price002(m["id"]),
        {"resolution": {"from": "input.resolution", "lower": True}},
        rows,
        per={"quantity": None},
        note_text="per second of output video; the length follows the input video, so no estimate",
    )


def _runway_aleph(m: Model) -> None:
    c = card(m["id"])
    relax(m, "referenceImage", f"002:{c.optional_line}")
    common(m, url_list("imageURLList", "image", _IMAGE_LIST))
    common(m, url_list("videoURLList", "video", _VIDEO_LIST))
    src = cite("002", "seed and aspectRatio come from options.seed")
    common(m, options_param(src, {"seed": opt("integer", src), "aspectRatio": opt("integer", src, minimum=0)}))
    mirror(
        m,
        ["referenceImage", "imageURLList"],
        "first_url",
        cite("002", "referenceImage is populated from"),
        "`referenceImage` is the first URL of root `imageURLList` (002): either fills the other",
    )
    mirror(
        m,
        ["videoUrl", "videoURLList"],
        "first_url",
        cite("002", "videoUrl is populated from videoURLList"),
        "`videoUrl` is the first URL of root `videoURLList` (002): either fills the other",
    )
    old = cite("001", "runway-aleph | ≤1800 | 1 video | prompt+videoUrl at root and in input")
    for name, base in (("prompt", "prompt"), ("videoUrl", "videoUrl")):
        spec = copy.deepcopy(params(m, base)[0])
        spec.update(location="input", required=False, source={**spec["source"], "param": old, "required": old})
        add_param(m, spec, why="001 says prompt and videoUrl go at the root and in input")
        mirror(m, [base, f"input.{name}"], "value", old, f"`input.{name}` mirrors root `{base}` (001)")
    note(
        m,
        "root-only per 002; the input copies of prompt and videoUrl (001) are harmless there "
        "(002 FAQ: an input "
        "object has no effect on root-only models)",
        cite("002", "Sending an input object for these models"),
    )
    note(
        m,
        "`seed` is typed string in 000 with a numeric range: a number or a numeric string is accepted",
        params(m, "seed")[0]["source"]["type"],
    )
    flat(m, 198, "video")


def _wan_2_6(m: Model) -> None:
    c = card(m["id"])
    accept(
        m,
        "image_urls",
        ["array"],
        cite("002", "Send image_urls (array, plural) for image-to-video"),
        "000 types image_urls as a string (max 1 image); 002 says send an array",
    )
    add_param(m, simple("negative_prompt", "string", f"002:{c.optional_line}"))
    add_param(m, simple("seed", "number", f"002:{c.optional_line}"))
    common(
        m,
        options_param(
            cite("002", "resolution and duration can also be passed via options"),
            {
                "resolution": opt("string", cite("002", "resolution and duration can also be passed via options")),
                "duration": opt(
                    "string",
                    cite("002", "resolution and duration can also be passed via options"),
                    accept=["integer"],
                ),
            },
        ),
    )
    labels = [
        ("720p", "5", 140),
        ("720p", "10", 280),
        ("720p", "15", 420),
        ("1080p", "5", 210),
        ("1080p", "10", 420),
        ("1080p", "15", 630),
    ]
    pricing(m, "video", price002(m["id"]), _RES_DUR, _res_dur_rows("wan-2-6", labels))


def _wan_2_6_video(m: Model) -> None:
    c = card(m["id"])
    note(
        m,
        "002's card requires `video_url`; its field index, and 000, say `video_urls` (array): video_urls is used",
        f"002:{c.required_line}",
        cite("002", "wan-2-6-videoduration, prompt"),
        params(m, "video_urls")[0]["source"]["param"],
    )
    common(m, url_list("videoURLList", "video", _VIDEO_LIST))
    common(
        m,
        options_param(
            cite("002", "wan-2-6-videoduration, prompt"),
            None,
            "Settings (keys not documented; passed through as a JSON string).",
        ),
    )
    mirror(
        m,
        ["input.video_urls", "videoURLList"],
        "urls",
        _VIDEO_LIST,
        "root `videoURLList` and `input.video_urls` carry the same list: either fills the other",
    )
    labels = [("720p", "5", 140), ("720p", "10", 280), ("1080p", "5", 210), ("1080p", "10", 420)]
    pricing(
        m,
        "video",
        price002(m["id"]),
        _RES_DUR,
        _res_dur_rows("wan-2-6-video", labels),
        note_text="15 s is allowed (000) but has no documented price",
    )


def _seedance_1_5_pro(m: Model) -> None:
    i2v = [i for i, b in enumerate(m["blocks"]) if any(p["name"] == "input_urls" for p in b["params"])]
    typ = cite("002", "image_urls (plural) is typically supplied via imageURLList")
    add_param(
        m,
        url_list("image_urls", "image", f"002:{card(m['id']).optional_line}", location="input", json_encoded=False),
        blocks=i2v,
        why="002 names the image list input.image_urls; 000 names it input_urls at the root",
    )
    for b in i2v:
        for p in m["blocks"][b]["params"]:
            if p["name"] == "image_urls":
                p["max_items"] = 2
                p["source"]["max_items"] = cite("000", "Max. 2 Images", start=8283)
    common(m, url_list("imageURLList", "image", _IMAGE_LIST))
    common(
        m,
        options_param(
            cite("002", "seedance-1-5-proaspect_ratio, duration"),
            None,
            "Settings (keys not documented; passed through as a JSON string).",
        ),
    )
    mirror(
        m,
        ["input_urls", "imageURLList", "input.image_urls"],
        "urls",
        typ,
        "root `input_urls` (000), root `imageURLList` and `input.image_urls` (002) carry the same images: "
        "any one fills the others",
    )
    labels = [
        ("480p", "4", 8),
        ("720p", "4", 14),
        ("480p", "8", 14),
        ("720p", "8", 28),
        ("480p", "12", 19),
        ("720p", "12", 38),
    ]
    rows = _res_dur_rows("seedance-1-5-pro", labels)
    for row in rows:
        row["audio"] = "false"
    pricing(
        m,
        "video",
        price002(m["id"]),
        {**_RES_DUR, "audio": {"from": "input.generate_audio"}},
        rows,
        note_text="documented prices are without audio; 001's six unlabelled rows (14-84) are not used, so "
        "generate_audio=true (or absent) gives no estimate",
    )


def _motion(m: Model, rates: tuple[int, int]) -> None:
    c = card(m["id"])
    line = c.values[next(t for t in c.values if t.startswith("resolution"))][0]
    add_param(
        m,
        simple("resolution", "string", f"002:{line}", enum=["720p", "1080p"]),
        why="002's card lists it (required); 000 and 002's field index do not, so it is optional",
    )
    add_param(
        m,
        simple(
            "duration",
            "string",
            f"002:{c.required_line}",
            accept=["integer"],
            numeric=True,
            description="Output length in seconds (002 requires it; no values documented).",
        ),
        why="002's card requires it; 000 does not describe it, so it is optional",
    )
    common(m, url_list("imageURLList", "image", _IMAGE_LIST))
    common(m, url_list("videoURLList", "video", _VIDEO_LIST))
    raw = (
        cite("002", "the pipeline forwards it raw to input.input_urls", start=c.line)
        if m["id"] == "kling-2-6-motion"
        else cite("002", "Send imageURLList (stringified JSON array) at body root for input.input_urls")
    )
    common(
        m,
        options_param(
            cite("002", "character_orientation and mode are passed via options")
            if m["id"] == "kling-2-6-motion"
            else raw,
            {"character_orientation": opt("string", raw), "mode": opt("string", raw)},
        ),
    )
    mirror(
        m,
        ["input.input_urls", "imageURLList"],
        "urls",
        raw,
        "root `imageURLList` fills `input.input_urls` (002) and the reverse",
    )
    mirror(
        m,
        ["input.video_urls", "videoURLList"],
        "urls",
        raw,
        "root `videoURLList` fills `input.video_urls` (002) and the reverse",
    )
    src = price002(m["id"])
    mode_src = params(m, "mode")[0]["source"]["param"]
    rows = [
        {"resolution": "720p", "credits": rates[0], "source": src},
        {"resolution": "1080p", "credits": rates[1], "source": src},
    ]
    pricing(
        m,
        "second",
        src,
        {"resolution": {"from": "input.mode", "map": {"std": "720p", "pro": "1080p"}}},
        rows,
        per={"quantity": "input.duration", "round": "ceil"},
        note_text=f"per second; resolution from input.mode (000 {mode_src}: std = 720p, pro = 1080p); "
        "seconds "
        "from input.duration when given",
    )


def _kling_3_objects() -> tuple[Param, Param]:
    src = cite("002", "kling_elements is a complex nested structure")
    element = {
        "type": "object",
        "required_properties": ["name"],
        "additional_properties": True,
        "properties": {
            "name": {"type": "string"},
            "description": {"type": "string"},
            "element_input_urls": {
                "type": "array",
                "items": {"type": "string", "format": "url", "media": "image"},
            },
            "element_input_video_urls": {
                "type": "array",
                "items": {"type": "string", "format": "url", "media": "video"},
            },
        },
    }
    elements = simple(
        "kling_elements",
        "array",
        src,
        items=element,
        max_items=3,
        description="Referenced elements: {name, description, element_input_urls[], element_input_video_urls[]}.",
    )
    shot_src = cite("002", "multi_prompt should be an array of shot objects")
    shots = simple(
        "multi_prompt",
        "array",
        shot_src,
        items={
            "type": "object",
            "additional_properties": True,
            "properties": {
                "prompt": {"type": "string"},
                "duration": {"type": "string", "accept": ["integer"]},
            },
        },
        description="Shots: [{prompt, duration}].",
    )
    return elements, shots


def _kling_3(m: Model) -> None:
    c = card(m["id"])
    accept(
        m,
        "sound",
        ["boolean"],
        cite("002", "sound (bool) enables audio track"),
        "000 types sound as a string 'true'/'false'; 002 says bool",
    )
    line = c.values[next(t for t in c.values if t.startswith("duration"))][0]
    note(
        m,
        "`input.duration`: 000 gives the range 3-15 (string); 002 lists 5 | 10 | 15: the range is accepted; "
        "5 / 10 / 15 are priced",
        params(m, "duration")[0]["source"]["range"],
        f"002:{line}",
    )
    elements, shots = _kling_3_objects()
    add_param(m, elements)
    add_param(m, shots)
    common(m, url_list("imageURLList", "image", _IMAGE_LIST))
    common(m, url_list("videoURLList", "video", _VIDEO_LIST))
    src = cite("002", "Tier / type selection: options.mode: 0 = Standard / 1 = Pro")
    common(
        m,
        options_param(
            src,
            {
                "mode": opt("integer", src, enum=[0, 1]),
                "sound": opt("boolean", cite("002", "sound (bool) enables audio track"), accept=["string"]),
                "shots": opt("array", cite("002", "multi_prompt maps to options.shots")),
            },
        ),
    )
    mirror(
        m,
        ["input.image_urls", "imageURLList"],
        "urls",
        cite("002", "image_urls comes from parsed imageURLList"),
        "root `imageURLList` fills `input.image_urls` (002) and the reverse",
    )
    rows = []
    table_ = {
        ("Standard", "5"): (200, 300),
        ("Standard", "10"): (400, 600),
        ("Standard", "15"): (600, 900),
        ("Pro", "5"): (270, 400),
        ("Pro", "10"): (540, 800),
        ("Pro", "15"): (810, 1200),
    }
    for (tier, dur), (plain, snd) in table_.items():
        mode = "std" if tier == "Standard" else "pro"
        rows.append(
            {
                "mode": mode,
                "duration": dur,
                "sound": "false",
                "credits": plain,
                "source": price001("kling-3", f"{tier} {dur} second Video without sound", plain),
            }
        )
        rows.append(
            {
                "mode": mode,
                "duration": dur,
                "sound": "true",
                "credits": snd,
                "source": price001("kling-3", f"{tier} {dur} second Video with sound", snd),
            }
        )
    pricing(
        m,
        "video",
        price002(m["id"]),
        {
            "mode": {"from": "input.mode"},
            "duration": {"from": "input.duration"},
            "sound": {"from": "input.sound"},
        },
        rows,
        note_text="mode 4K, and durations other than 5 / 10 / 15, have no documented price",
    )


def _kling_3_multi_shot(m: Model) -> None:
    elements, shots = _kling_3_objects()
    for p in params(m, "multi_prompt"):
        p["variants"] = [
            {k: v for k, v in shots.items() if k not in ("name", "location", "required", "description", "source")}
        ]
    note(
        m,
        "`input.multi_prompt`: 000 types it as a string (max 5000); 002 as an array of shot objects "
        "{prompt, duration}: both are accepted and sent as given",
        params(m, "multi_prompt")[0]["source"]["type"],
        cite("002", "multi_prompt should be an array of shot objects"),
    )
    for p in params(m, "kling_elements"):
        p["items"] = elements["items"]
        p["max_items"] = 3
        p["source"]["max_items"] = p["source"]["param"]
        p["source"]["items"] = elements["source"]["param"]
    sound_src = cite("002", "The verified public route sends mode and sound inside input")
    add_param(
        m,
        simple("sound", "boolean", sound_src, accept=["string"]),
        why="002 lists it (required); 000 does not describe it, so it is optional",
    )
    common(m, url_list("imageURLList", "image", _IMAGE_LIST))
    common(m, url_list("videoURLList", "video", _VIDEO_LIST))
    unpriced(
        m,
        "002 gives only the range 200-810 credits (Std/Pro x 5s/10s/15s), no per-tier prices",
        price002(m["id"]),
    )


def _seedance_2(m: Model) -> None:
    note(
        m,
        "000's seedance-2 section prints model value `seedance-2-fast` in its tables and samples (a copy of "
        "the seedance-2-fast section); its blocks are catalogued under `seedance-2` and its samples "
        "read with "
        "model seedance-2",
        m["source"],
        f"000:{m['model_values_line']}",
    )
    for block in m["blocks"]:
        block["sample"]["model"] = "seedance-2"
        block["sample_model_fixed"] = True
    _unpriced_000_only(m)


def _elevenlabs_tts(m: Model) -> None:
    note(
        m,
        "000's two TTS sections carry swapped 'Model ID' lines; each table's model value (which matches the "
        "section heading and 002's names) decides which shape is which",
        cite("000", "Model IDelevenlabs-tts"),
        cite("000", "Model IDelevenlabs-tts-turbo"),
    )
    c = card(m["id"])
    note(
        m,
        "`input.language_code`: 002 requires it, 000 makes it optional (omit for auto-detection): optional",
        params(m, "language_code")[0]["source"]["required"],
        f"002:{c.required_line}",
    )
    src = price002(m["id"])
    pricing(
        m,
        "5000 characters",
        src,
        {},
        [{"credits": 49, "source": src}],
        per={"characters": "input.text", "size": 5000},
    )


def _elevenlabs_stt(m: Model) -> None:
    src = price002(m["id"])
    pricing(
        m,
        "second",
        src,
        {},
        [{"credits": 7, "source": src}],
        per={"quantity": None},
        note_text="per second of input audio; the request does not say how long it is, so no estimate",
    )


def _elevenlabs_isolation(m: Model) -> None:
    src = price002(m["id"])
    pricing(
        m,
        "second",
        src,
        {},
        [{"credits": 1, "source": src}],
        per={"quantity": None},
        note_text="per second of input audio; the request does not say how long it is, so no estimate",
    )


def _elevenlabs_sound_effect(m: Model) -> None:
    c = card(m["id"])
    relax(m, "duration_seconds", f"002:{c.optional_line}")
    src = price002(m["id"])
    pricing(
        m,
        "second",
        src,
        {},
        [{"credits": 1, "source": src}],
        per={"quantity": "input.duration_seconds", "round": "ceil"},
        note_text="1 credit per second of output, a started second counted whole; no estimate without duration_seconds",
    )


def _elevenlabs_dialogue(m: Model) -> None:
    tts = params_of_other("elevenlabs-tts", "voice")
    voice_src = params(m, "dialogue")[0]["source"]["enum"]
    for p in params(m, "dialogue"):
        ids = p.pop("enum")
        p["items"] = {
            "type": "object",
            "required_properties": ["text", "voice"],
            "additional_properties": False,
            "properties": {
                "text": {"type": "string"},
                "voice": {"type": "string", "enum": ids + [v for v in tts if v not in ids]},
            },
        }
        p["source"]["items"] = voice_src
    note(
        m,
        "`input.dialogue[].voice`: 000 lists 68 voice ids for dialogue; the TTS voice list "
        "(names and ids) is "
        "accepted too (union; 000's own sample uses names). 'Adam' (in the sample) is in neither list",
        voice_src,
        cite("000", "input.voice string The voice to use"),
    )
    src = price002(m["id"])
    pricing(
        m,
        "5000 characters",
        src,
        {},
        [{"credits": 1, "source": src}],
        per={"characters": "input.dialogue", "sum_of": "text", "size": 5000},
    )


_RAW: dict[str, Model] = {}


def params_of_other(model_id: str, name: str) -> list[Any]:
    return list(next(p for b in _RAW[model_id]["blocks"] for p in b["params"] if p["name"] == name)["enum"])


# --------------------------------------------------------------------------------- legacy entries


def _legacy_models() -> dict[str, Model]:
    out: dict[str, Model] = {}
    # sora-2-turbo (002 card; 001 pricing)
    c = card("sora-2-turbo")
    vals = {t.split("|")[0].strip(): line for t, (line, _) in c.values.items()}
    line_of = {
        name: next(ln for t, ln in vals.items() if t.startswith(name)) for name in ("aspect_ratio", "n_frames", "size")
    }
    req = f"002:{c.required_line}"
    opt_line = f"002:{c.optional_line}"
    m: Model = {
        "id": "sora-2-turbo",
        "name": "Sora 2 Turbo",
        "modality": "video",
        "legacy": True,
        "source": f"002:{c.line}",
        "blocks": [
            {
                "id": "text-to-video",
                "title": "text or image to video",
                "source": f"002:{c.line}",
                "params": [
                    simple("prompt", "string", req, required=True, max_length=5000),
                    simple(
                        "n_frames",
                        "string",
                        f"002:{line_of['n_frames']}",
                        required=True,
                        enum=["250", "375"],
                        accept=["integer"],
                    ),
                    simple(
                        "aspect_ratio",
                        "string",
                        f"002:{line_of['aspect_ratio']}",
                        required=True,
                        enum=["9:16", "16:9"],
                    ),
                    simple("size", "string", f"002:{line_of['size']}", required=True, enum=["Standard", "High"]),
                    url_list("image_urls", "image", opt_line, location="input", json_encoded=False),
                    simple("remove_watermark", "boolean", opt_line),
                ],
            }
        ],
    }
    m["blocks"][0]["params"][0]["source"]["max_length"] = cite("001", "sora-2-turbo | ≤5000")
    common(
        m,
        options_param(f"002:{line_of['size']}", {"quality": opt("integer", f"002:{line_of['size']}", enum=[0, 1])}),
    )
    to_option(
        m,
        "input.size",
        "quality",
        f"002:{line_of['size']}",
        "`input.size` Standard / High is mirrored as options.quality 0 / 1 (002)",
        {"Standard": 0, "High": 1},
    )
    rows = []
    for size, n, label, credits in (
        ("Standard", "250", "Standard 10 second Video", 270),
        ("Standard", "375", "Standard 15 second Video", 486),
        ("High", "250", "High 10 second Video", 594),
        ("High", "375", "High 15 second Video", 1134),
    ):
        rows.append(
            {
                "size": size,
                "n_frames": n,
                "credits": credits,
                "source": price001("sora-2-turbo", label, credits),
            }
        )
    pricing(
        m,
        "video",
        price002("sora-2-turbo"),
        {"size": {"from": "input.size"}, "n_frames": {"from": "input.n_frames"}},
        rows,
    )
    note(
        m,
        "legacy: described only by 002 (card, pricing) and 001 (catalog, pricing); not in 000",
        f"002:{c.line}",
        cite("001", "sora-2-turbo | Sora 2 Turbo"),
    )
    out["sora-2-turbo"] = m

    # sora-story-board
    c = card("sora-story-board")
    vals = {t: line for t, (line, _) in c.values.items()}
    nline = next(ln for t, ln in vals.items() if t.startswith("n_frames"))
    req = f"002:{c.required_line}"
    shots_src = cite("001", "sora-story-board | shots")
    m = {
        "id": "sora-story-board",
        "name": "Sora Story Board",
        "modality": "video",
        "legacy": True,
        "source": f"002:{c.line}",
        "blocks": [
            {
                "id": "storyboard",
                "title": "storyboard to video",
                "source": f"002:{c.line}",
                "params": [
                    simple(
                        "shots",
                        "array",
                        req,
                        required=True,
                        items={"type": "object", "additional_properties": True},
                        description="The storyboard: shot objects, durations summing to 10/15/25 s (001).",
                    ),
                    simple(
                        "n_frames",
                        "string",
                        f"002:{nline}",
                        required=True,
                        enum=["250", "375", "625"],
                        accept=["integer"],
                    ),
                    simple(
                        "aspect_ratio",
                        "string",
                        req,
                        required=True,
                        description="Values not documented for this model (sora-2 uses 9:16 / 16:9).",
                    ),
                    url_list("image_urls", "image", f"002:{c.optional_line}", location="input", json_encoded=False),
                ],
            }
        ],
    }
    m["blocks"][0]["params"][0]["source"]["items"] = shots_src
    rows = [
        {"n_frames": n, "credits": cr, "source": price001("sora-story-board", lab, cr)}
        for n, lab, cr in (
            ("250", "10 second Video", 270),
            ("375", "15 second Video", 486),
            ("625", "25 second Video", 699),
        )
    ]
    pricing(m, "video", price002("sora-story-board"), {"n_frames": {"from": "input.n_frames"}}, rows)
    note(
        m,
        "legacy: described only by 002 and 001; `aspect_ratio` has no documented values, so any string is accepted",
        f"002:{c.line}",
        shots_src,
    )
    out["sora-story-board"] = m

    # gpt-image-1 (root-only)
    c = card("gpt-image-1")
    size_line = next(ln for t, (ln, _) in c.values.items() if t.startswith("size"))
    req = f"002:{c.required_line}"
    opt_line = f"002:{c.optional_line}"
    raw_list = cite("002", "send fileUrl (raw imageURLList string, do not parse)")
    dup = cite("001", "Duplicate prompt and size at root and in input")
    m = {
        "id": "gpt-image-1",
        "name": "GPT Image 1",
        "modality": "image",
        "legacy": True,
        "source": f"002:{c.line}",
        "blocks": [
            {
                "id": "text-to-image",
                "title": "text to image or edit",
                "source": f"002:{c.line}",
                "params": [
                    simple("prompt", "string", req, location="root", required=True),
                    simple(
                        "size",
                        "string",
                        f"002:{size_line}",
                        location="root",
                        required=True,
                        enum=["1:1", "3:2", "2:3"],
                    ),
                    {
                        **url_list("fileUrl", "image", raw_list),
                        "description": "Images to edit (sent as the raw imageURLList JSON string).",
                    },
                    simple("isEnhance", "boolean", opt_line, location="root"),
                    simple("prompt", "string", dup, description="Copy of the root prompt (001)."),
                    simple(
                        "size",
                        "string",
                        dup,
                        enum=["1:1", "3:2", "2:3"],
                        description="Copy of the root size (001).",
                    ),
                ],
            }
        ],
    }
    common(m, url_list("imageURLList", "image", cite("002", "gpt-image-1root:fileUrl, root:imageURLList")))
    common(
        m,
        options_param(f"002:{size_line}", {"image_size": opt("integer", f"002:{size_line}", enum=[0, 1, 2])}),
    )
    mirror(
        m,
        ["fileUrl", "imageURLList"],
        "urls",
        raw_list,
        "`fileUrl` carries the imageURLList string (002): either fills the other",
    )
    mirror(m, ["prompt", "input.prompt"], "value", dup, "`input.prompt` mirrors root `prompt` (001)")
    mirror(m, ["size", "input.size"], "value", dup, "`input.size` mirrors root `size` (001)")
    to_option(
        m,
        "size",
        "image_size",
        f"002:{size_line}",
        "root `size` is mirrored as options.image_size index (1:1 = 0, 3:2 = 1, 2:3 = 2; 002)",
        {"1:1": 0, "3:2": 1, "2:3": 2},
    )
    note(
        m,
        "legacy: described only by 002 (root-only card) and 001; the input copies 001 asks for are harmless "
        "(002 FAQ: input has no effect on root-only models)",
        f"002:{c.line}",
        dup,
        cite("002", "Sending an input object for these models"),
    )
    m["root_only"] = True
    src = price002("gpt-image-1")
    pricing(m, "image", src, {}, [{"credits": 11, "source": src}])
    out["gpt-image-1"] = m
    for model in out.values():
        model.setdefault(
            "request_values",
            [{"value": model["id"], "kind": "id", "wire_model": model["id"], "source": model["source"]}],
        )
        model["root_only"] = model.get("root_only", False)
    return out


# ------------------------------------------------------------------------------------------ apply

PER_MODEL: dict[str, Callable[[Model], None]] = {
    "nano-banana": _nano_banana,
    "gpt-image-1-5": _gpt_image_1_5,
    "seedream-v4": _seedream_v4,
    "seedream-v3": _seedream_v3,
    "ideogram-character": _ideogram_character,
    "qwen-image": _qwen_image,
    "imagen-v4": _imagen_v4,
    "ideogram-v3": _ideogram_v3,
    "flux-kontext": _flux_kontext,
    "ideogram-reframe": _ideogram_reframe,
    "nano-banana-pro": _nano_banana_pro,
    "grok-imagine": _grok_imagine,
    "flux-2": _flux_2,
    "z-image": _z_image,
    "seedream-4-5": _seedream_4_5,
    "seedream-5-lite": _seedream_5_lite,
    "recraft-remove-bg": _recraft_remove_bg,
    "recraft-upscaler": _recraft_upscaler,
    "nano-banana-2": _nano_banana_2,
    "qwen-image-2": _qwen_image_2,
    "gpt-image-1-mini": _unpriced_000_only,
    "gpt-image-2": _unpriced_000_only,
    "veo-3-lite": _veo,
    "veo-3-fast": _veo,
    "veo-3-quality": _veo,
    "sora-2": _sora_2,
    "wan-2-5": _wan_2_5,
    "kling-video-turbo": _kling_video_turbo,
    "hailuo": _hailuo,
    "hailuo-pro": _hailuo_pro,
    "runway": _runway,
    "wan-2-2": _wan_2_2,
    "kling-2-1": _kling_2_1,
    "seedance-v1": _seedance_v1,
    "grok-imagine-video": _grok_imagine_video,
    "hailuo-2-3": _hailuo_2_3,
    "seedance-v1-pro-fast": _seedance_v1_pro_fast,
    "kling-2-6": _kling_2_6,
    "wan-speech-to-video": _wan_speech_to_video,
    "wan-animate": _wan_animate,
    "runway-aleph": _runway_aleph,
    "wan-2-6": _wan_2_6,
    "wan-2-6-video": _wan_2_6_video,
    "seedance-1-5-pro": _seedance_1_5_pro,
    "kling-2-6-motion": lambda m: _motion(m, (12, 18)),
    "kling-3-motion": lambda m: _motion(m, (24, 40)),
    "kling-3": _kling_3,
    "kling-3-multi-shot": _kling_3_multi_shot,
    "wan-2-7-video": _unpriced_000_only,
    "seedance-2-fast": _unpriced_000_only,
    "seedance-2": _seedance_2,
    "happyhorse-1": _unpriced_000_only,
    "vidu-q3-pro": _unpriced_000_only,
    "vidu-q3-turbo": _unpriced_000_only,
    "elevenlabs-tts": _elevenlabs_tts,
    "elevenlabs-tts-turbo": _elevenlabs_tts,
    "elevenlabs-speech-to-text": _elevenlabs_stt,
    "elevenlabs-audio-isolation": _elevenlabs_isolation,
    "elevenlabs-sound-effect": _elevenlabs_sound_effect,
    "elevenlabs-v3-dialogue": _elevenlabs_dialogue,
}

NAMES_002 = {
    "elevenlabs-tts": "ElevenLabs TTS Multi-Language",
    "elevenlabs-tts-turbo": "ElevenLabs TTS Turbo",
}


def apply(models: dict[str, Model]) -> dict[str, Any]:
    """The catalog data: 000's models with every decision applied, plus the legacy entries."""
    _MODEL_IDS[:] = list(models)
    _RAW.clear()
    _RAW.update(copy.deepcopy(models))
    missing = set(models) ^ set(PER_MODEL)
    if missing:
        raise ValueError(f"models without decisions / decisions without models: {sorted(missing)}")
    out: dict[str, Model] = {}
    for model_id, m in models.items():
        m["id"] = model_id
        m["legacy"] = False
        if model_id in NAMES_002:
            m["name"] = NAMES_002[model_id]
        m["root_only"] = all(p["location"] == "root" for b in m["blocks"] for p in b["params"])
        PER_MODEL[model_id](m)
        _generic(m)
        _union_002(m)
        _relax_002(m)
        out[model_id] = m
    out.update(_legacy_models())
    for m in out.values():
        for key in ("model_values_raw", "model_values_line", "id"):
            m.pop(key, None)
        for block in m["blocks"]:
            for p in block["params"]:
                _finish_param(p)
        for p in m.get("common_params", ()):
            _finish_param(p)
        m.setdefault("pricing", None)
        m.setdefault("decisions", [])
    return {
        "format": 1,
        "generated_by": "scripts/catalog/build_catalog.py",
        "documents": dict(DOC_FILES),
        "models": out,
    }


def _finish_param(p: Param) -> None:
    if not p.get("description"):
        p.pop("description", None)
