"""Docker-free bundling of the Lambda code assets and the dependencies layer.

Two kinds of asset, both bundled locally (no Docker engine needed, see ``/work/shared/TOOLCHAIN.md``):

* **one code asset per function**: ``functions/__init__.py``, ``functions/<name>/`` and the ``mediagen``
  package from ``shared/mediagen/`` (without the sandbox emulator, the local stack and byte-code caches).
  Unzipped it looks like::

      functions/__init__.py
      functions/<name>/app.py ...
      mediagen/__init__.py ...

* **one dependencies layer** shared by all functions: ``pip install --target <out>/python`` of the
  ``[project].dependencies`` of ``pyproject.toml`` (the single source of truth), resolved for the Lambda
  platform (Linux, arm64 or x86_64, CPython 3.12) from binary wheels only.

Asset hashes are computed here (``AssetHashType.CUSTOM``) rather than by CDK, because CDK's source
fingerprint would only see the asset's source folder (and ignores the local bundler, so two assets from
one folder would share a zip). The function hash covers exactly the files that are copied, the layer hash
covers the pip request. Both are the same whether or not bundling runs, so a synth with
``MEDIAGEN_SKIP_BUNDLING=1`` produces the same template as a full one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, ILocalBundling
from aws_cdk import aws_lambda as lambda_

#: ``infra/`` (this file is ``infra/mediagen_infra/bundling.py``).
INFRA_DIR = Path(__file__).resolve().parents[1]
#: The repository root: ``functions/``, ``shared/`` and ``pyproject.toml`` live here.
REPO_ROOT = INFRA_DIR.parent
#: A small, fixed folder used as the *source* of the layer asset (its content is not what ships: the
#: bundler writes the pip install into the output folder).
LAYER_SOURCE_DIR = INFRA_DIR / "layer"

#: Sub-packages of ``mediagen`` that never ship to Lambda: the sandbox emulator, the local stack and the
#: operator tools of the CLI.
EXCLUDED_PACKAGE_DIRS: frozenset[str] = frozenset({"sandbox", "local", "ops"})
#: Directories skipped at any depth.
_SKIPPED_DIRS: frozenset[str] = frozenset({"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"})
_SKIPPED_SUFFIXES: tuple[str, ...] = (".pyc", ".pyo")

#: The Lambda runtime the layer is resolved for.
LAMBDA_PYTHON_VERSION = "3.12"
#: Wheel platform tag for Lambda arm64 (Amazon Linux 2023, glibc 2.34 >= manylinux2014).
LAMBDA_PLATFORM = "manylinux2014_aarch64"
#: Wheel platform tag per Lambda architecture name.
LAMBDA_PLATFORMS: dict[str, str] = {"arm64": LAMBDA_PLATFORM, "x86_64": "manylinux2014_x86_64"}

# Bumped when the bundle layout changes, so a new layout never reuses an old zip with the same inputs.
_CODE_LAYOUT_VERSION = "mediagen-function-code/v1"
_LAYER_LAYOUT_VERSION = "mediagen-dependencies-layer/v1"

#: Declared for completeness (``BundlingOptions.image`` is mandatory); the local bundlers below never
#: decline, so CDK never starts this image.
_UNUSED_IMAGE = lambda_.Runtime.PYTHON_3_12.bundling_image


def read_dependencies(pyproject: Path) -> list[str]:
    """Return ``[project].dependencies`` of ``pyproject`` (PEP 508 strings, in file order).

    Raises:
        FileNotFoundError: ``pyproject`` does not exist.
        KeyError: the file has no ``[project].dependencies``.
    """
    with pyproject.open("rb") as handle:
        data = tomllib.load(handle)
    return [str(dep) for dep in data["project"]["dependencies"]]


def _walk(root: Path, *, excluded_top: frozenset[str] = frozenset()) -> Iterator[tuple[str, Path]]:
    """Yield ``(posix path relative to root, path)`` for every shipped file under ``root``, sorted."""
    for directory, dirnames, filenames in os.walk(root):
        here = Path(directory)
        dirnames[:] = sorted(
            d for d in dirnames
            if d not in _SKIPPED_DIRS and not (here == root and d in excluded_top)
        )
        for filename in sorted(filenames):
            if filename.endswith(_SKIPPED_SUFFIXES):
                continue
            path = here / filename
            yield path.relative_to(root).as_posix(), path


def function_bundle_files(source_root: Path, name: str) -> list[tuple[str, Path]]:
    """List what the code asset of function ``name`` contains: ``(path in the zip, source file)``.

    Raises:
        FileNotFoundError: ``functions/__init__.py``, ``functions/<name>/app.py`` or
            ``shared/mediagen/__init__.py`` is missing under ``source_root``.
    """
    functions_dir = source_root / "functions"
    package_dir = source_root / "shared" / "mediagen"
    for required in (functions_dir / "__init__.py", functions_dir / name / "app.py",
                     package_dir / "__init__.py"):
        if not required.is_file():
            raise FileNotFoundError(f"cannot bundle Lambda function {name!r}: {required} does not exist")
    files = [("functions/__init__.py", functions_dir / "__init__.py")]
    files += [(f"functions/{name}/{rel}", path) for rel, path in _walk(functions_dir / name)]
    package_files = _walk(package_dir, excluded_top=EXCLUDED_PACKAGE_DIRS)
    files += [(f"mediagen/{rel}", path) for rel, path in package_files]
    return files


def _content_hash(salt: str, files: Sequence[tuple[str, Path]]) -> str:
    """SHA-256 over the salt and every ``(zip path, content)`` pair, in order."""
    digest = hashlib.sha256(salt.encode())
    for dest, source in files:
        data = source.read_bytes()
        digest.update(f"\0{dest}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


@jsii.implements(ILocalBundling)
class FunctionCodeBundler:
    """Copies one function's handler package and the ``mediagen`` package into the asset folder."""

    def __init__(self, source_root: Path, name: str) -> None:
        self.source_root = source_root
        self.name = name

    def try_bundle(self, output_dir: str, *_options: Any, **_kw_options: Any) -> bool:
        """Copy the files of :func:`function_bundle_files` into ``output_dir``; always handles the asset."""
        out = Path(output_dir)
        for dest, source in function_bundle_files(self.source_root, self.name):
            target = out / dest
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        return True


@jsii.implements(ILocalBundling)
class DependencyLayerBundler:
    """Installs the runtime dependencies, as Lambda arm64 / CPython 3.12 wheels, into ``<out>/python``."""

    def __init__(self, requirements: Sequence[str], *, platform: str = LAMBDA_PLATFORM,
                 python_version: str = LAMBDA_PYTHON_VERSION) -> None:
        self.requirements = list(requirements)
        self.platform = platform
        self.python_version = python_version

    @property
    def pip_options(self) -> list[str]:
        """The pip options that decide what gets installed (everything but the target folder)."""
        return [
            "--platform", self.platform, "--implementation", "cp", "--python-version", self.python_version,
            "--only-binary=:all:",
            # Byte-code compiled by the host interpreter is useless to the Lambda runtime: skip it.
            "--no-compile",
        ]

    def pip_command(self, target: Path) -> list[str]:
        """The full command line that installs the layer into ``target``."""
        return [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                "--target", str(target), *self.pip_options, *self.requirements]

    def asset_hash(self) -> str:
        """Hash of the pip request: changes when a requirement or a platform option changes."""
        request = "\n".join([_LAYER_LAYOUT_VERSION, *self.pip_options, *self.requirements])
        return hashlib.sha256(request.encode()).hexdigest()

    def try_bundle(self, output_dir: str, *_options: Any, **_kw_options: Any) -> bool:
        """Run pip into ``<output_dir>/python``; always handles the asset.

        Raises:
            subprocess.CalledProcessError: pip failed (no wheel for the platform, no network, ...).
        """
        target = Path(output_dir) / "python"
        subprocess.run(self.pip_command(target), check=True)  # noqa: S603 -- fixed argv, no shell
        # Console scripts are not importable and only add size.
        shutil.rmtree(target / "bin", ignore_errors=True)
        return True


def handler_exists(source_root: Path, name: str) -> bool:
    """Whether ``functions/<name>/app.py`` exists under ``source_root``."""
    return (source_root / "functions" / name / "app.py").is_file()


def _placeholder_files(source_root: Path) -> list[tuple[str, Path]]:
    """What a function without a handler folder would ship: ``functions/__init__.py`` and ``mediagen``."""
    package_dir = source_root / "shared" / "mediagen"
    files = [("functions/__init__.py", source_root / "functions" / "__init__.py")]
    files += [(f"mediagen/{rel}", path) for rel, path in _walk(package_dir, excluded_top=EXCLUDED_PACKAGE_DIRS)]
    return files


def function_code(source_root: Path, name: str, *, allow_missing_handler: bool = False) -> lambda_.Code:
    """The ``Code`` of function ``name``: a small asset whose hash covers exactly the shipped files.

    The asset *source* is ``functions/<name>/`` (a small folder); the bundler adds the rest.

    Args:
        source_root: repository root holding ``functions/`` and ``shared/mediagen/``.
        name: the function's folder under ``functions/``.
        allow_missing_handler: when ``functions/<name>/app.py`` does not exist yet, return a placeholder
            asset (source ``functions/``, hash salted with ``name``) instead of raising. Only for synths
            that skip bundling (the template is usable, the assembly is not deployable): the bundler
            still raises if it ever runs for such an asset.

    Raises:
        FileNotFoundError: a required source file is missing (and ``allow_missing_handler`` does not apply).
    """
    if allow_missing_handler and not handler_exists(source_root, name):
        return lambda_.Code.from_asset(
            str(source_root / "functions"),
            asset_hash=_content_hash(f"{_CODE_LAYOUT_VERSION}\0{name}\0missing-handler",
                                     _placeholder_files(source_root)),
            asset_hash_type=AssetHashType.CUSTOM,
            bundling=BundlingOptions(image=_UNUSED_IMAGE, local=FunctionCodeBundler(source_root, name)),
        )
    files = function_bundle_files(source_root, name)
    return lambda_.Code.from_asset(
        str(source_root / "functions" / name),
        asset_hash=_content_hash(f"{_CODE_LAYOUT_VERSION}\0{name}", files),
        asset_hash_type=AssetHashType.CUSTOM,
        bundling=BundlingOptions(image=_UNUSED_IMAGE, local=FunctionCodeBundler(source_root, name)),
    )


def dependencies_layer_code(
    source_root: Path, *, architecture: lambda_.Architecture = lambda_.Architecture.ARM_64
) -> tuple[lambda_.Code, list[str]]:
    """The ``Code`` of the dependencies layer and the requirement strings it installs.

    Requirements come from ``<source_root>/pyproject.toml``; the asset source is :data:`LAYER_SOURCE_DIR`.
    Wheels are resolved for ``architecture`` (the platform is part of the asset hash).

    Raises:
        ValueError: an architecture Lambda's Python runtime does not offer.
    """
    platform = LAMBDA_PLATFORMS.get(architecture.name)
    if platform is None:
        raise ValueError(f"no Lambda wheel platform for architecture {architecture.name!r}")
    requirements = read_dependencies(source_root / "pyproject.toml")
    bundler = DependencyLayerBundler(requirements, platform=platform)
    code = lambda_.Code.from_asset(
        str(LAYER_SOURCE_DIR),
        asset_hash=bundler.asset_hash(),
        asset_hash_type=AssetHashType.CUSTOM,
        bundling=BundlingOptions(image=_UNUSED_IMAGE, local=bundler),
    )
    return code, requirements
