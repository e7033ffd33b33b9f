"""Docker-free bundling of the Lambda code assets and the dependencies layer, byte-compiled for the runtime.

Two kinds of asset, both bundled locally (no Docker engine needed):

* **one code asset per function**: ``functions/__init__.py``, ``functions/<name>/`` and the ``mediagen``
  package from ``shared/mediagen/`` (without the sandbox emulator, the local stack, the operator tools and
  byte-code caches). Unzipped it looks like::

      functions/__init__.py
      functions/<name>/app.py ...
      functions/<name>/__pycache__/app.cpython-312.pyc ...
      mediagen/__init__.py ...

* **one dependencies layer** shared by all functions: ``pip install --target <out>/python --require-hashes
  --only-binary=:all: --no-deps -r infra/layer/requirements.lock``: the lock file :data:`LAYER_LOCK`, resolved
  for the Lambda platform (CPython 3.12, manylinux2014 x86_64 and aarch64, binary wheels only) with the hash
  of every artifact, from ``[project].dependencies`` of ``pyproject.toml`` by ``make lock``.

**Byte code.** Lambda's code folders (``/var/task``, ``/opt``) are read-only, so a module without a usable
``.pyc`` is compiled again on every cold start. Both bundlers therefore run ``compileall`` with a CPython
:data:`LAMBDA_PYTHON_VERSION` found on the synth machine (:func:`find_lambda_python`: ``python3.12`` on PATH,
``uv python find 3.12``, or pyenv's versions folder; ``MEDIAGEN_LAMBDA_PYTHON`` names one explicitly), with
``--invalidation-mode unchecked-hash``: the CDK CLI writes every file of an asset zip with the same fixed
time (1980-01-01, its ``zipDirectory``), so a timestamp-checked ``.pyc`` (which records the source's mtime
at compile time) would never match the unzipped source, and Python would compile the module again, in
memory, at every cold start. An unchecked-hash ``.pyc`` is used as it is. Byte code is platform-independent,
so any 3.12 will do. Paths inside the byte code are the ones Lambda uses (``/var/task/...``,
``/opt/python/...``). Without a 3.12 the synth prints a warning and ships the same files, uncompiled (correct,
only slower to start).

Asset hashes are computed here (``AssetHashType.CUSTOM``) rather than by CDK, because CDK's source
fingerprint would only see the asset's source folder (and ignores the local bundler, so two assets from
one folder would share a zip). The function hash covers exactly the files that are copied; the layer hash is
the hash of the lock file (plus the layout version below): it changes when, and only when, the lock
changes. Both are the same whether or not bundling runs, so a synth with ``MEDIAGEN_SKIP_BUNDLING=1``
produces the same template as a full one.
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

from .lambda_python import (  # noqa: F401 -- re-exported: the bundlers' interpreter lookup and compile step
    LAMBDA_PYTHON_ENV,
    LAMBDA_PYTHON_VERSION,
    _python_version_of,
    compile_tree,
    find_lambda_python,
    no_lambda_python_warning,
)

#: ``infra/`` (this file is ``infra/mediagen_infra/bundling.py``).
INFRA_DIR = Path(__file__).resolve().parents[1]
#: The repository root: ``functions/``, ``shared/`` and ``pyproject.toml`` live here.
REPO_ROOT = INFRA_DIR.parent
#: A small, fixed folder used as the *source* of the layer asset (its content is not what ships: the
#: bundler writes the pip install into the output folder).
LAYER_SOURCE_DIR = INFRA_DIR / "layer"
#: The lock file of the dependencies layer (``make lock`` writes it; see the module docstring).
LAYER_LOCK = LAYER_SOURCE_DIR / "requirements.lock"

#: Sub-packages of ``mediagen`` that never ship to Lambda: the sandbox emulator, the local stack and the
#: operator tools of the CLI.
EXCLUDED_PACKAGE_DIRS: frozenset[str] = frozenset({"sandbox", "local", "ops"})
#: Directories skipped at any depth.
_SKIPPED_DIRS: frozenset[str] = frozenset({"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"})
_SKIPPED_SUFFIXES: tuple[str, ...] = (".pyc", ".pyo")

#: Wheel platform tag for Lambda arm64 (Amazon Linux 2023, glibc 2.34 >= manylinux2014).
LAMBDA_PLATFORM = "manylinux2014_aarch64"
#: Wheel platform tag per Lambda architecture name.
LAMBDA_PLATFORMS: dict[str, str] = {"arm64": LAMBDA_PLATFORM, "x86_64": "manylinux2014_x86_64"}
#: Where Lambda unpacks a function's code asset and a layer: the paths recorded in the byte code.
LAMBDA_TASK_ROOT = "/var/task"
LAMBDA_LAYER_ROOT = "/opt"

# Bumped when the bundle layout changes, so a new layout never reuses an old zip with the same inputs
# (v2: byte-compiled; the layer installed from the lock file).
_CODE_LAYOUT_VERSION = "mediagen-function-code/v2"
_LAYER_LAYOUT_VERSION = "mediagen-dependencies-layer/v2"

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


# ------------------------------------------------------------------------------------------- byte code
_warned_no_python: list[bool] = []


def _compile_or_warn(root: Path, recorded_root: str) -> bool:
    """Compile ``root`` when a Lambda Python is found; else print the warning. Returns whether it compiled."""
    python = find_lambda_python()
    if python is None:
        if not _warned_no_python:  # once per synth, not once per asset
            _warned_no_python.append(True)
            print(no_lambda_python_warning(), file=sys.stderr, flush=True)
        return False
    compile_tree(python, root, recorded_root=recorded_root)
    return True


@jsii.implements(ILocalBundling)
class FunctionCodeBundler:
    """Copies one function's handler package and the ``mediagen`` package into the asset folder."""

    def __init__(self, source_root: Path, name: str) -> None:
        self.source_root = source_root
        self.name = name

    def try_bundle(self, output_dir: str, *_options: Any, **_kw_options: Any) -> bool:
        """Copy the files of :func:`function_bundle_files` into ``output_dir`` and byte-compile them for the
        Lambda runtime (see the module docstring); always handles the asset.

        Raises:
            RuntimeError: a file does not compile.
        """
        out = Path(output_dir)
        for dest, source in function_bundle_files(self.source_root, self.name):
            target = out / dest
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        _compile_or_warn(out, LAMBDA_TASK_ROOT)
        return True


@jsii.implements(ILocalBundling)
class DependencyLayerBundler:
    """Installs the locked runtime dependencies, as Lambda CPython 3.12 wheels, into ``<out>/python``.

    Args:
        lock: the lock file (pinned versions with hashes; see :data:`LAYER_LOCK`).
        platform: the wheel platform tag (:data:`LAMBDA_PLATFORMS`).
        python_version: the Lambda runtime's Python version.
    """

    def __init__(self, lock: Path, *, platform: str = LAMBDA_PLATFORM,
                 python_version: str = LAMBDA_PYTHON_VERSION) -> None:
        self.lock = lock
        self.platform = platform
        self.python_version = python_version

    @property
    def pip_options(self) -> list[str]:
        """The pip options that decide what gets installed (everything but the target folder and the lock)."""
        return [
            "--platform", self.platform, "--implementation", "cp", "--python-version", self.python_version,
            "--only-binary=:all:", "--require-hashes", "--no-deps",
            # pip would compile with the host interpreter (useless to the runtime): compile_tree does it.
            "--no-compile",
        ]

    def pip_command(self, target: Path) -> list[str]:
        """The full command line that installs the layer into ``target``."""
        return [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                "--target", str(target), *self.pip_options, "-r", str(self.lock)]

    def asset_hash(self) -> str:
        """The hash of the lock file, salted with the layout version and the wheel platform (an x86_64 and an
        arm64 layer of the same lock are different zips): for one architecture it changes when, and only
        when, the lock does.

        Raises:
            FileNotFoundError: the lock file does not exist (run ``make lock``).
        """
        digest = hashlib.sha256(f"{_LAYER_LAYOUT_VERSION}\0{self.platform}\0".encode())
        digest.update(self.lock.read_bytes())
        return digest.hexdigest()

    def try_bundle(self, output_dir: str, *_options: Any, **_kw_options: Any) -> bool:
        """Run pip into ``<output_dir>/python`` and byte-compile the result; always handles the asset.

        Raises:
            subprocess.CalledProcessError: pip failed (no wheel for the platform, a hash mismatch, no network).
            RuntimeError: a file does not compile.
        """
        target = Path(output_dir) / "python"
        subprocess.run(self.pip_command(target), check=True)  # noqa: S603 -- fixed argv, no shell
        # Console scripts are not importable and only add size.
        shutil.rmtree(target / "bin", ignore_errors=True)
        _compile_or_warn(target, f"{LAMBDA_LAYER_ROOT}/python")
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
    source_root: Path, *, architecture: lambda_.Architecture = lambda_.Architecture.ARM_64,
    lock: Path | None = None,
) -> tuple[lambda_.Code, list[str]]:
    """The ``Code`` of the dependencies layer and the requirement strings of ``pyproject.toml`` it serves.

    The layer installs ``lock`` (default :data:`LAYER_LOCK`) for ``architecture``; its asset hash is the
    lock's (:meth:`DependencyLayerBundler.asset_hash`). The asset source is :data:`LAYER_SOURCE_DIR`.

    Raises:
        ValueError: an architecture Lambda's Python runtime does not offer.
        FileNotFoundError: the lock file does not exist (run ``make lock``).
    """
    platform = LAMBDA_PLATFORMS.get(architecture.name)
    if platform is None:
        raise ValueError(f"no Lambda wheel platform for architecture {architecture.name!r}")
    requirements = read_dependencies(source_root / "pyproject.toml")
    bundler = DependencyLayerBundler(lock or LAYER_LOCK, platform=platform)
    code = lambda_.Code.from_asset(
        str(LAYER_SOURCE_DIR),
        asset_hash=bundler.asset_hash(),
        asset_hash_type=AssetHashType.CUSTOM,
        bundling=BundlingOptions(image=_UNUSED_IMAGE, local=bundler),
    )
    return code, requirements
