"""The Lambda assets as they ship: byte-compiled for the runtime's Python, the layer installed from its lock.

The slow test bundles every function's code asset and the (arm64) dependencies layer once, the way a deploying
synth does (pip reaches the package index; its download cache stays on), and checks that every ``.py`` has an
unchecked-hash ``cpython-312`` ``.pyc``: Lambda's code folders are read-only and the CDK CLI zips every file with
the same 1980 timestamp, so only such byte code is used there. The other tests run without bundling.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Annotations, Match, Template

from mediagen_infra import bundling
from mediagen_infra.bundling import (
    LAMBDA_PYTHON_VERSION,
    LAYER_LOCK,
    REPO_ROOT,
    FunctionCodeBundler,
    dependencies_layer_code,
    find_lambda_python,
    function_code,
)
from mediagen_infra.lambdas import FUNCTION_SPECS, RUNTIME, build_function
from mediagen_infra.sweeper import SWEEP

#: Every function the pipeline ships: the per-step specs and the sweeper's.
SHIPPED_SPECS = (*FUNCTION_SPECS, SWEEP)

PYC_TAG = "cpython-" + LAMBDA_PYTHON_VERSION.replace(".", "")
#: The flags word of a PEP 552 .pyc header: 0b01 = hash-based, 0b10 = check_source; unchecked-hash is 0b01.
UNCHECKED_HASH_FLAGS = 0b01


def _missing_byte_code(root: Path) -> list[str]:
    """The ``.py`` files under ``root`` without an unchecked-hash ``.pyc`` for the Lambda runtime."""
    missing = []
    for source in sorted(root.rglob("*.py")):
        compiled = source.parent / "__pycache__" / f"{source.stem}.{PYC_TAG}.pyc"
        if not compiled.is_file():
            missing.append(f"{source.relative_to(root)} (no {compiled.name})")
            continue
        header = compiled.read_bytes()[:8]
        if int.from_bytes(header[4:8], "little") != UNCHECKED_HASH_FLAGS:
            missing.append(f"{source.relative_to(root)} (not an unchecked-hash .pyc)")
    return missing


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path], Path]:
    """One bundled synth: ``(cloud assembly, {function: code asset folder}, layer asset folder)``."""
    if find_lambda_python() is None:
        pytest.skip(f"no CPython {LAMBDA_PYTHON_VERSION} on this machine to compile the assets with")
    outdir = tmp_path_factory.mktemp("bundled.out")
    app = App(outdir=str(outdir))
    stack = Stack(app, "BundlingProbe")
    layer_code, _requirements = dependencies_layer_code(REPO_ROOT)
    layer = lambda_.LayerVersion(stack, "Layer", code=layer_code, compatible_runtimes=[RUNTIME])
    for spec in SHIPPED_SPECS:
        lambda_.Function(stack, spec.construct_id, runtime=RUNTIME, handler=spec.handler, layers=[layer],
                         code=function_code(REPO_ROOT, spec.name))
    app.synth()
    template = Template.from_stack(stack)
    codes = {f["Properties"]["Handler"].split(".")[1]: outdir / f"asset.{f['Properties']['Code']['S3Key'][:-4]}"
             for f in template.find_resources("AWS::Lambda::Function").values()}
    (layer_resource,) = template.find_resources("AWS::Lambda::LayerVersion").values()
    return outdir, codes, outdir / f"asset.{layer_resource['Properties']['Content']['S3Key'][:-4]}"


@pytest.mark.slow
def test_every_code_asset_ships_byte_code_for_the_runtime(bundled: tuple[Path, dict[str, Path], Path]) -> None:
    _outdir, codes, _layer = bundled
    assert sorted(codes) == sorted(spec.name for spec in SHIPPED_SPECS)
    for name, asset in codes.items():
        assert (asset / "functions" / name / "__pycache__" / f"app.{PYC_TAG}.pyc").is_file()
        assert _missing_byte_code(asset) == [], name
        # Only the runtime's byte code: no .pyc of the synth machine's own interpreter.
        assert {p.name.split(".")[-2] for p in asset.rglob("*.pyc")} == {PYC_TAG}, name


@pytest.mark.slow
def test_the_layer_ships_the_locked_wheels_with_byte_code(bundled: tuple[Path, dict[str, Path], Path]) -> None:
    _outdir, _codes, layer = bundled
    site = layer / "python"
    assert (site / "boto3" / "__init__.py").is_file() and (site / "pydantic_core").is_dir()
    assert not (site / "bin").exists()
    # arm64 wheels (the default architecture): the compiled extension is built for aarch64.
    assert [p.name for p in (site / "pydantic_core").glob("_pydantic_core.*.so")] == [
        "_pydantic_core.cpython-312-aarch64-linux-gnu.so"]
    locked = {line.split("==")[0].lower().replace("_", "-") for line in LAYER_LOCK.read_text().splitlines()
              if "==" in line and not line.startswith("#")}
    installed = {p.name.split("-")[0].lower().replace("_", "-") for p in site.glob("*.dist-info")}
    assert installed == locked
    assert _missing_byte_code(site) == []


@pytest.mark.slow
def test_byte_code_records_the_paths_lambda_runs_from(bundled: tuple[Path, dict[str, Path], Path]) -> None:
    """Tracebacks in CloudWatch name /var/task and /opt/python files, not the synth machine's folders."""
    _outdir, codes, layer = bundled
    python = find_lambda_python()
    assert python is not None
    probe = ("import marshal, sys; f = open(sys.argv[1], 'rb'); f.read(16); print(marshal.load(f).co_filename)")
    def recorded(pyc: Path) -> str:
        return subprocess.run([python, "-c", probe, str(pyc)], capture_output=True, text=True,
                              check=True).stdout.strip()

    assert recorded(codes["submit"] / "functions/submit/__pycache__" / f"app.{PYC_TAG}.pyc") == (
        "/var/task/functions/submit/app.py")
    assert recorded(layer / "python/boto3/__pycache__" / f"__init__.{PYC_TAG}.pyc") == (
        "/opt/python/boto3/__init__.py")


# ------------------------------------------------------------------------------------- layer asset hash
def _layer_key(source_root: Path, lock: Path, architecture: lambda_.Architecture = lambda_.Architecture.ARM_64,
               ) -> str:
    code, _requirements = dependencies_layer_code(source_root, architecture=architecture, lock=lock)
    # Bundling skipped: the hash must not depend on it (and the pip install would take a minute).
    config = code.bind(Stack(App(post_cli_context={"aws:cdk:bundling-stacks": []}), "LayerHashProbe"))
    assert config.s3_location is not None
    return config.s3_location.object_key


def test_the_layer_hash_changes_when_and_only_when_the_lock_changes(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(REPO_ROOT / "pyproject.toml", repo / "pyproject.toml")
    lock = tmp_path / "requirements.lock"
    lock.write_bytes(LAYER_LOCK.read_bytes())

    before = _layer_key(repo, lock)
    assert _layer_key(REPO_ROOT, LAYER_LOCK) == before  # the hash is the lock's, not the folder's
    # pyproject.toml edited without `make lock`: the layer is the same (test_layer_lock.py catches the drift).
    (repo / "pyproject.toml").write_text((repo / "pyproject.toml").read_text().replace(
        '"httpx>=0.27,<1"', '"httpx>=0.28,<1"'))
    assert _layer_key(repo, lock) == before
    lock.write_text(lock.read_text() + "# a new pin would change this file\n")
    assert _layer_key(repo, lock) != before
    # Another architecture is another zip, even from the same lock.
    assert _layer_key(REPO_ROOT, LAYER_LOCK, lambda_.Architecture.X86_64) != _layer_key(REPO_ROOT, LAYER_LOCK)


# ----------------------------------------------------------------------------------- no CPython 3.12 here
def test_without_a_lambda_python_the_bundle_ships_uncompiled_with_a_warning(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(bundling, "find_lambda_python", lambda *args, **kwargs: None)
    monkeypatch.setattr(bundling, "_warned_no_python", [])
    out = tmp_path / "asset"
    out.mkdir()
    assert FunctionCodeBundler(REPO_ROOT, "callback").try_bundle(str(out))
    assert (out / "functions" / "callback" / "app.py").is_file()
    assert not list(out.rglob("*.pyc"))
    assert f"no CPython {LAMBDA_PYTHON_VERSION} found" in capsys.readouterr().err

    import mediagen_infra.lambdas as lambdas

    monkeypatch.setattr(lambdas, "find_lambda_python", lambda *args, **kwargs: None)
    stack = Stack(App(), "NoPythonProbe")  # bundling required (the default)
    for spec in FUNCTION_SPECS[:2]:
        build_function(stack, spec, source_root=REPO_ROOT, layers=[], environment={})
    warnings = Annotations.from_stack(stack).find_warning("*", Match.string_like_regexp("WITHOUT byte code"))
    assert len(warnings) == 1  # once per stack, not once per function


def test_the_lambda_python_is_found_and_checked(tmp_path: Path) -> None:
    """A name on PATH that is not really CPython 3.12 (a pyenv shim of another version, a stale link) is skipped."""
    fake = tmp_path / f"python{LAMBDA_PYTHON_VERSION}"
    fake.write_text("#!/bin/sh\necho cpython 3 11\n")
    fake.chmod(0o755)
    found = find_lambda_python(environ={"PATH": str(tmp_path), "PYENV_ROOT": str(tmp_path / "none")})
    assert found != str(fake)
    if found is not None:  # e.g. through `uv python find` or ~/.pyenv
        assert bundling._python_version_of(found) == tuple(int(p) for p in LAMBDA_PYTHON_VERSION.split("."))
