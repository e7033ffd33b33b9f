"""Deployment package size per function: each function's code asset and the shared dependencies layer.

The figures come from a bundled synth (``npx cdk synth`` *without* ``MEDIAGEN_SKIP_BUNDLING``, into a
temporary ``--output`` folder; about a minute, most of it the layer's ``pip install``), or from an existing
cloud assembly (``--assets DIR``). Each asset folder is zipped in memory (deflate level 9, as the CDK CLI
packs directory assets) to get the size Lambda receives; the unzipped size is what counts against
Lambda's 250 MB quota (a function's code plus all its layers, unzipped).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tempfile
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
#: Lambda quota: deployment package (function code + layers), unzipped.
UNZIPPED_QUOTA_BYTES = 250 * 1000 * 1000  # AWS counts 250 MB as 262,144,000 bytes; the smaller is safer


@dataclass
class AssetSize:
    path: Path
    zipped: int
    unzipped: int
    files: int
    top: dict[str, int] = field(default_factory=dict)  # top-level entry -> unzipped bytes


@dataclass
class SizeResult:
    source: str
    functions: dict[str, AssetSize]
    layer: AssetSize | None


def measure_dir(path: Path) -> AssetSize:
    """Zip ``path`` in memory (or take a ``.zip`` file as it is) and count its bytes."""
    top: dict[str, int] = defaultdict(int)
    if path.is_file():
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            for info in infos:
                top[info.filename.split("/", 2)[1 if info.filename.startswith("python/") else 0]] += info.file_size
            return AssetSize(path, path.stat().st_size, sum(i.file_size for i in infos), len(infos), dict(top))
    buffer = io.BytesIO()
    unzipped = files = 0
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            rel = file.relative_to(path)
            zf.write(file, rel.as_posix())
            size = file.stat().st_size
            unzipped += size
            files += 1
            parts = rel.parts
            top[parts[1] if parts[0] == "python" and len(parts) > 1 else parts[0]] += size
    return AssetSize(path, buffer.tell(), unzipped, files, dict(top))


def synth(output: Path, log: Any = print) -> None:
    """A bundled synth into ``output``.

    Raises:
        RuntimeError: the synth failed.
    """
    env = {k: v for k, v in os.environ.items() if k != "MEDIAGEN_SKIP_BUNDLING"}
    env["JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"] = "20"
    log(f"  package size: bundled synth (npx cdk synth --output {output}) ...")
    done = subprocess.run(["npx", "cdk", "synth", "--quiet", "--output", str(output)],  # noqa: S603,S607
                          cwd=REPO, env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"bundled synth failed (exit {done.returncode}):\n{(done.stderr or done.stdout)[-3000:]}")


def read_assembly(assembly: Path) -> SizeResult:
    """Sizes of the function code assets and the layer in a cloud assembly folder."""
    templates = sorted(assembly.glob("*.template.json"))
    if not templates:
        raise RuntimeError(f"{assembly} holds no *.template.json: not a cloud assembly")
    functions: dict[str, AssetSize] = {}
    layer: AssetSize | None = None

    def asset_path(code: dict[str, Any]) -> Path | None:
        key = str(code.get("S3Key", ""))
        digest = key.removesuffix(".zip")
        for candidate in (assembly / f"asset.{digest}", assembly / f"asset.{digest}.zip"):
            if candidate.exists():
                return candidate
        return None

    for template_path in templates:
        resources = json.loads(template_path.read_text()).get("Resources", {})
        for resource in resources.values():
            props = resource.get("Properties", {})
            handler = str(props.get("Handler", ""))
            if resource.get("Type") == "AWS::Lambda::Function" and handler.startswith("functions."):
                path = asset_path(props.get("Code", {}))
                if path is None:
                    raise RuntimeError(f"{assembly}: the code asset of {props['Handler']} is missing (synth skipped "
                                       "bundling?)")
                functions[props["Handler"].split(".")[1]] = measure_dir(path)
            elif resource.get("Type") == "AWS::Lambda::LayerVersion" and layer is None:
                path = asset_path(props.get("Content", {}))
                if path is not None:
                    layer = measure_dir(path)
    if layer is not None and layer.files <= 1:
        raise RuntimeError(f"{assembly}: the layer asset is empty (synth skipped bundling?)")
    return SizeResult(str(assembly), functions, layer)


def measure(assets: Path | None = None, log: Any = print) -> SizeResult:
    if assets is not None:
        log(f"  package size: reading the cloud assembly in {assets}")
        return read_assembly(assets)
    with tempfile.TemporaryDirectory(prefix="mediagen-bench-synth-") as tmp:
        synth(Path(tmp), log)
        result = read_assembly(Path(tmp))
        result.source = "fresh bundled synth"
        return result
