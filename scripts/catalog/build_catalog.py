"""Build ``shared/mediagen/catalog/catalog.json`` from the provider documents plus reviewed decisions.

    .venv/bin/python scripts/catalog/build_catalog.py --documents DIR            # rewrite the catalog
    .venv/bin/python scripts/catalog/build_catalog.py --documents DIR --check    # exit 1 if it is stale

``DIR`` holds the provider documents (not part of the repository; ``docs/sources.md``);
``$MEDIAGEN_PROVIDER_DOCUMENTS`` may name it instead.

Pipeline: ``seedparse.parse_000()`` extracts the 98 request blocks of document 000 (parameter tables, cURL
samples, line numbers); this script converts each table row into a typed parameter (enum values split
with a vocabulary, ranges, lengths, item counts, media kinds), then ``decisions.apply()`` applies the
reviewed decisions -- model membership fixes, routed values, root helpers, unions with document 002,
pricing -- each carrying the source line it rests on. The checked-in JSON is the product; this script is
the reproducible way it was made. Every decision is explained in docs/catalog-decisions.md.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import seedparse  # noqa: E402
from seedparse import RawBlock, RawParam, parse_000  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "shared" / "mediagen" / "catalog" / "catalog.json"

# Tokens the run-together enum strings of document 000 are made of (see the 002 "Aspect Ratio & Size Quick
# Reference" for the separated forms). A string must split into these in exactly one way.
VOCAB = [
    "1:1",
    "2:3",
    "3:2",
    "3:4",
    "4:3",
    "4:5",
    "5:4",
    "9:16",
    "16:9",
    "21:9",
    "21:1",  # printed once, for z-image (000:2544); see docs/catalog-decisions.md
    "auto",
    "Auto",
    "AUTO",
    "adaptive",
    "square",
    "square_hd",
    "portrait_4_3",
    "landscape_4_3",
    "portrait_16_9",
    "landscape_16_9",
    "portrait_2_3",
    "landscape_3_2",
    "portrait_9_16",
    "landscape_21_9",
    "jpeg",
    "jpg",
    "png",
    "1K",
    "2K",
    "4K",
    "480p",
    "540p",
    "580p",
    "720p",
    "1080p",
    "512P",
    "768P",
    "720P",
    "1080P",
    "none",
    "regular",
    "high",
    "basic",
    "medium",
    "GENERAL",
    "REALISTIC",
    "DESIGN",
    "FICTION",
    "TURBO",
    "BALANCED",
    "QUALITY",
    "true",
    "false",
    "portrait",
    "landscape",
    "std",
    "pro",
    "image",
    "video",
    "fun",
    "normal",
    "spicy",
    "General",
    "Anime",
    "4",
    "5",
    "6",
    "8",
    "10",
    "12",
    "15",
    "TEXT_2_VIDEO",
    "REFERENCE_2_VIDEO",
    "FIRST_AND_LAST_FRAMES_2_VIDEO",
]
NUMBER_VOCAB = ["0", "0.5", "1"]
# ElevenLabs language codes as listed (run together) in "language_code" [000:10682].
LANGUAGES = [
    "af",
    "ar",
    "hy",
    "as",
    "az",
    "be",
    "bn",
    "bs",
    "bg",
    "ca",
    "ceb",
    "ny",
    "hr",
    "cs",
    "da",
    "nl",
    "en",
    "et",
    "fil",
    "fi",
    "fr",
    "gl",
    "ka",
    "de",
    "el",
    "gu",
    "ha",
    "he",
    "hi",
    "hu",
    "is",
    "id",
    "ga",
    "it",
    "ja",
    "jv",
    "kn",
    "kk",
    "ky",
    "ko",
    "lv",
    "ln",
    "lt",
    "lb",
    "mk",
    "ms",
    "ml",
    "zh",
    "mr",
    "ne",
    "no",
    "ps",
    "fa",
    "pl",
    "pt",
    "pa",
    "ro",
    "ru",
    "sr",
    "sd",
    "sk",
    "sl",
    "so",
    "es",
    "sw",
    "sv",
    "ta",
    "te",
    "th",
    "tr",
    "uk",
    "ur",
    "vi",
    "cy",
]
VOICE_NAMES = [
    "Rachel",
    "Aria",
    "Roger",
    "Sarah",
    "Laura",
    "Charlie",
    "George",
    "Callum",
    "River",
    "Liam",
    "Charlotte",
    "Alice",
    "Matilda",
    "Will",
    "Jessica",
    "Eric",
    "Chris",
    "Brian",
    "Daniel",
    "Lily",
    "Bill",
]


def split_enum(text: str, vocab: list[str]) -> list[str]:
    """Split a run-together enum string into vocabulary tokens; the split must be unique."""
    text = text.strip()
    if text.startswith('"'):
        return re.findall(r'"([^"]*)"', text)
    results: list[list[str]] = []

    def walk(rest: str, acc: list[str]) -> None:
        if len(results) > 1:
            return
        if not rest:
            results.append(list(acc))
            return
        for token in vocab:
            if rest.startswith(token):
                walk(rest[len(token) :], [*acc, token])

    walk(text, [])
    if len(results) != 1:
        raise ValueError(f"enum {text!r} splits in {len(results)} ways with the vocabulary")
    return results[0]


def split_voices(text: str) -> list[str]:
    """Voice names followed by 20-character ElevenLabs voice ids, run together (document 000)."""
    names: list[str] = []
    rest = text
    for name in VOICE_NAMES:
        if rest.startswith(name):
            names.append(name)
            rest = rest[len(name) :]
    if len(rest) % 20:
        raise ValueError("voice ids are not 20 characters each")
    return names + [rest[i : i + 20] for i in range(0, len(rest), 20)]


_MEDIA_WORDS = {
    "image": "image",
    "images": "image",
    "video": "video",
    "videos": "video",
    "audio": "audio",
    "audios": "audio",
    "audio file": "audio",
}


def convert_param(raw: RawParam, model_id: str) -> dict[str, Any]:
    """A catalog parameter from a 000 table row (no decisions applied yet)."""
    src = f"000:{raw.line}"
    param: dict[str, Any] = {
        "name": raw.name,
        "location": raw.location,
        "type": {
            "string": "string",
            "number": "number",
            "boolean": "boolean",
            "array": "array",
            "integer": "integer",
            "object": "object",
        }[raw.type],
        "required": raw.required,
        "description": raw.description.replace(" MyBrand", "").strip(),
        "source": {"param": src, "type": src, "required": f"000:{raw.required_line or raw.line}"},
    }
    for line, text in raw.constraints:
        at = f"000:{line}"
        m = re.match(r"^max\.(\d+) characters$", text) or re.match(r"^Max\.? ?(\d+) characters\.?$", text)
        if m:
            param["max_length"] = int(m.group(1))
            param["source"]["max_length"] = at
            continue
        m = re.match(r"^Min[.:] ?(-?[\d.]+)Max[.:] ?(-?[\d.]+)(?:Step: ?([\d.]+))?$", text)
        if m:
            param["minimum"], param["maximum"] = _number(m.group(1)), _number(m.group(2))
            if m.group(3):
                param["step"] = _number(m.group(3))
            param["source"]["range"] = at
            continue
        m = re.match(r"^(?:max|Max\.) ?(\d+) (images?|Images?|videos?|Videos?|audios?|Audios?|Audio file)$", text)
        if m:
            count, media = int(m.group(1)), _MEDIA_WORDS[m.group(2).lower()]
            param["media"] = media
            param["max_items"] = count
            param["source"]["max_items"] = at
            param["source"]["media"] = at
            continue
        m = re.match(r"^(\d+) images compulsory$", text)
        if m:
            param["media"] = "image"
            param["min_items"] = param["max_items"] = int(m.group(1))
            param["source"]["min_items"] = param["source"]["max_items"] = at
            continue
        if text.startswith("Max. 5000 characters combined"):
            param["max_total_length"] = {"property": "text", "max": 5000}
            param["source"]["max_total_length"] = at
            continue
        if text.startswith("Referer code samples") or text.startswith("Use @Image1"):
            param["description"] += " " + text
            continue
        # An enum.
        if raw.name == "voice" or (raw.name == "dialogue" and re.match(r"^[A-Za-z0-9]{40,}$", text)):
            values: list[Any] = (
                split_voices(text) if raw.name == "voice" else [text[i : i + 20] for i in range(0, len(text), 20)]
            )
        elif raw.name == "language_code":
            values = split_enum(text, LANGUAGES)
        elif raw.type == "number":
            try:
                tokens = split_enum(text, NUMBER_VOCAB)
            except ValueError:
                tokens = split_enum(text, [v for v in VOCAB if v.isdigit()])
            values = [_number(v) for v in tokens]
        else:
            values = split_enum(text, VOCAB)
        if raw.type == "boolean":
            values = [v == "true" for v in values]
        param["enum"] = values
        param["source"]["enum"] = at
    if "media" in param or _looks_like_url(raw):
        _make_url_param(param, raw)
    return param


def _number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() and "." not in text else value


def _looks_like_url(raw: RawParam) -> bool:
    return (
        raw.name in ("image", "imageUrl", "imageUrls", "inputImage", "referenceImage", "videoUrl")
        or raw.name.endswith("_url")
        or raw.name.endswith("_urls")
    )


def _make_url_param(param: dict[str, Any], raw: RawParam) -> None:
    media = param.get("media") or (
        "video" if "video" in raw.name.lower() else "audio" if "audio" in raw.name.lower() else "image"
    )
    param["media"] = media
    if param["type"] == "array":
        param["items"] = {"type": "string", "format": "url", "media": media}
    else:
        param["format"] = "url"
        # "Max. 1 image" on a single-URL string is its count, not an array limit.
        if param.get("max_items") == 1:
            param.pop("max_items")
            param["source"].pop("max_items", None)


_AUDIO_BLOCKS = {
    "elevenlabs-tts": "text-to-speech",
    "elevenlabs-tts-turbo": "text-to-speech",
    "elevenlabs-speech-to-text": "speech-to-text",
    "elevenlabs-audio-isolation": "audio-isolation",
    "elevenlabs-sound-effect": "sound-effect",
    "elevenlabs-v3-dialogue": "dialogue",
}
_GENERATION_TYPES = {
    "TEXT_2_VIDEO": "text-to-video",
    "REFERENCE_2_VIDEO": "reference-to-video",
    "FIRST_AND_LAST_FRAMES_2_VIDEO": "first-and-last-frames",
}


def block_title(model_id: str, block: dict[str, Any], modality: str) -> str:
    """A block id from 000's own parameter table: which media inputs the shape takes."""
    if model_id == "kling-3-multi-shot":
        return "multi-shot"
    gen = next((p for p in block["params"] if p["name"] == "generationType"), None)
    if gen is not None and len(gen.get("enum", ())) == 1:
        return _GENERATION_TYPES[gen["enum"][0]]
    names = {p["name"] for p in block["params"] if p.get("media")}
    all_media = {p["media"] for p in block["params"] if p.get("media")}
    if modality == "image":
        return "edit" if names else "text-to-image"
    if modality == "audio":
        return _AUDIO_BLOCKS[model_id]
    if any(n.startswith("reference_") for n in names):
        return "reference-to-video"
    if "first_frame_url" in names:
        return "frames-to-video"
    if "audio" in all_media:
        return "audio-to-video"
    if "video" in all_media:
        return "video-to-video"
    if "image" in all_media:
        return "image-to-video"
    return "text-to-video"


def raw_models() -> dict[str, dict[str, Any]]:
    """The 000 models with their blocks converted, before decisions."""
    models: dict[str, dict[str, Any]] = {}
    for raw in parse_000():
        model_id = _decisions().model_id_for_block(raw)
        entry = models.setdefault(
            model_id,
            {
                "name": raw.section_name,
                "modality": raw.category.lower(),
                "source": f"000:{raw.section_line}",
                "blocks": [],
                "model_values_raw": raw.model_values_raw,
                "model_values_line": raw.model_values_line,
            },
        )
        sample = dict(raw.sample or {})
        sample.pop("callBackUrl", None)
        block = {
            "params": [convert_param(p, model_id) for p in raw.params],
            "source": f"000:{raw.table_line}",
            "sample": sample,
            "sample_source": f"000:{raw.sample_line}",
        }
        block["id"] = block_title(model_id, block, entry["modality"])
        entry["blocks"].append(block)
    return models


def _raw_block_type(raw: RawBlock) -> str:
    return raw.section_id


def build() -> dict[str, Any]:
    """The complete catalog data."""
    models = raw_models()
    catalog = _decisions().apply(models)
    for model in catalog["models"].values():
        seen: dict[str, int] = {}
        for block in model["blocks"]:
            base = block["id"]
            seen[base] = seen.get(base, 0) + 1
            block["id"] = base if seen[base] == 1 else f"{base}-{seen[base]}"
            block.setdefault("title", block["id"].replace("-", " "))
    return catalog


def _decisions() -> Any:
    """The ``decisions`` module, imported once the documents' folder is known (it reads them on import)."""
    import decisions

    return decisions


def render(catalog: dict[str, Any]) -> str:
    return json.dumps(catalog, indent=1, ensure_ascii=False, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the checked-in catalog is stale")
    parser.add_argument("--out", type=Path, default=OUT)
    seedparse.add_documents_argument(parser)
    args = parser.parse_args(argv)
    try:
        seedparse.use_documents(args.documents)
    except seedparse.DocumentsError as exc:
        parser.error(str(exc))
    text = render(build())
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is stale: run scripts/catalog/build_catalog.py", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    args.out.write_text(text, encoding="utf-8")
    data = json.loads(text)
    blocks = sum(len(m["blocks"]) for m in data["models"].values())
    print(f"wrote {args.out}: {len(data['models'])} models, {blocks} blocks, {len(text)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
