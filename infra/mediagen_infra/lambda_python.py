"""Find a CPython of the Lambda runtime's version and byte-compile a folder with it (no CDK imports here, so
the benchmarks can use it too). Re-exported by :mod:`mediagen_infra.bundling`, which explains why."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

#: The Lambda runtime the assets are compiled (and the layer resolved) for.
LAMBDA_PYTHON_VERSION = "3.12"
#: Names a CPython 3.12 interpreter to compile with, instead of searching for one.
LAMBDA_PYTHON_ENV = "MEDIAGEN_LAMBDA_PYTHON"


def _python_version_of(executable: str) -> tuple[int, int] | None:
    """``(major, minor)`` of the interpreter ``executable``, or ``None`` when it does not run (a pyenv shim of a
    version that is not selected, a dangling link, ...)."""
    try:
        done = subprocess.run(  # noqa: S603 -- a candidate interpreter, fixed code, no shell
            [executable, "-c", "import sys; print(sys.implementation.name, *sys.version_info[:2])"],
            capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    parts = done.stdout.split()
    if done.returncode != 0 or len(parts) != 3 or parts[0] != "cpython":
        return None
    return int(parts[1]), int(parts[2])


def _candidate_pythons(version: str, environ: Mapping[str, str]) -> Iterator[str]:
    """Interpreters that may be CPython ``version``, in the order :func:`find_lambda_python` tries them."""
    if environ.get(LAMBDA_PYTHON_ENV):
        yield environ[LAMBDA_PYTHON_ENV]
    yield sys.executable
    on_path = shutil.which(f"python{version}", path=environ.get("PATH"))
    if on_path:
        yield on_path
    uv = shutil.which("uv", path=environ.get("PATH")) or shutil.which("uv", path=str(Path(sys.executable).parent))
    if uv:
        try:
            found = subprocess.run([uv, "python", "find", "--no-project", version],  # noqa: S603 -- fixed argv
                                   capture_output=True, text=True, timeout=60, check=False)
        except (OSError, subprocess.SubprocessError):
            found = None
        if found is not None and found.returncode == 0 and found.stdout.strip():
            yield found.stdout.strip()
    pyenv_root = Path(environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    for folder in sorted((pyenv_root / "versions").glob(f"{version}.*"), reverse=True):
        yield str(folder / "bin" / f"python{version}")


@functools.cache
def _find_python(version: str, environ_items: tuple[tuple[str, str], ...]) -> str | None:
    wanted = tuple(int(part) for part in version.split("."))
    for candidate in _candidate_pythons(version, dict(environ_items)):
        if _python_version_of(candidate) == wanted:
            return candidate
    return None


def find_lambda_python(version: str = LAMBDA_PYTHON_VERSION, environ: Mapping[str, str] | None = None) -> str | None:
    """A CPython ``version`` interpreter on this machine, to byte-compile the assets for the Lambda runtime.

    Tried in order: ``$MEDIAGEN_LAMBDA_PYTHON``, this interpreter, ``python<version>`` on ``PATH``,
    ``uv python find <version>``, ``$PYENV_ROOT/versions/<version>.*`` (``~/.pyenv`` by default). A candidate
    counts only if it runs and reports CPython ``version``. The answer is cached per environment.

    Returns:
        the interpreter's path, or ``None`` when none is found.
    """
    env = os.environ if environ is None else environ
    keys = (LAMBDA_PYTHON_ENV, "PATH", "PYENV_ROOT")
    return _find_python(version, tuple((k, env[k]) for k in keys if k in env))


def compile_tree(python: str, root: Path, *, recorded_root: str) -> None:
    """Byte-compile every ``.py`` under ``root`` with ``python`` into ``__pycache__`` (unchecked-hash ``.pyc``).

    Args:
        python: the interpreter (its version names the ``.pyc`` files, e.g. ``cpython-312``).
        root: the folder to compile (an asset's output folder).
        recorded_root: the path ``root`` will have at run time (e.g. ``/var/task``): tracebacks show it.

    Raises:
        RuntimeError: a file does not compile (the message holds compileall's output).
    """
    done = subprocess.run(  # noqa: S603 -- an interpreter we checked, fixed argv, no shell
        [python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
         "-s", str(root), "-p", recorded_root, str(root)],
        capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"byte-compiling {root} with {python} failed:\n{(done.stdout + done.stderr)[-3000:]}")


def no_lambda_python_warning(version: str = LAMBDA_PYTHON_VERSION) -> str:
    """The warning printed when no CPython ``version`` is found to compile the assets with."""
    return (f"mediagen: no CPython {version} found (tried ${LAMBDA_PYTHON_ENV}, python{version} on PATH, "
            f"'uv python find {version}', ~/.pyenv/versions/{version}.*): the Lambda assets ship WITHOUT byte "
            f"code, so every cold start compiles each module it imports (2-3x slower init). Install Python "
            f"{version} (e.g. 'uv python install {version}') and synthesize again.")
