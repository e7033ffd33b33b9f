"""The Lambda layer's lock file still satisfies ``pyproject.toml`` (offline, no CDK): edit a runtime dependency
without ``make lock`` and this fails, naming the requirement and what to run."""

from __future__ import annotations

import re

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from mediagen_infra.bundling import LAMBDA_PYTHON_VERSION, LAYER_LOCK, REPO_ROOT, read_dependencies

#: The marker environment of the Lambda runtime (python3.12 on Amazon Linux 2023).
LAMBDA_MARKERS = {"python_version": LAMBDA_PYTHON_VERSION, "python_full_version": f"{LAMBDA_PYTHON_VERSION}.0",
                  "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
                  "implementation_name": "cpython", "platform_python_implementation": "CPython", "extra": ""}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?)\s*\\?$")


def parse_lock(text: str) -> dict[str, tuple[Version, list[str]]]:
    """``{canonical name: (pinned version, its sha256 hashes)}`` of a ``--generate-hashes`` lock file.

    Raises:
        ValueError: a requirement line is not an exact ``name==version`` pin.
    """
    pins: dict[str, tuple[Version, list[str]]] = {}
    current: list[str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("--hash=sha256:"):
            if current is None:
                raise ValueError(f"a hash before any requirement: {line!r}")
            current.append(line.removeprefix("--hash=sha256:").rstrip(" \\"))
            continue
        match = _PIN.match(line)
        if match is None:
            raise ValueError(f"not an exact pin: {line!r}")
        current = []
        pins[canonicalize_name(match.group(1))] = (Version(match.group(2)), current)
    return pins


def unsatisfied(requirements: list[str], pins: dict[str, tuple[Version, list[str]]]) -> list[str]:
    """The requirements (that apply on Lambda) the pins do not satisfy, each with the reason."""
    problems = []
    for text in requirements:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate(LAMBDA_MARKERS):
            continue
        pin = pins.get(canonicalize_name(requirement.name))
        if pin is None:
            problems.append(f"{text}: not in the lock")
        elif not requirement.specifier.contains(pin[0], prereleases=True):
            problems.append(f"{text}: the lock pins {pin[0]}")
    return problems


def test_the_lock_satisfies_every_runtime_dependency_of_pyproject() -> None:
    pins = parse_lock(LAYER_LOCK.read_text())
    problems = unsatisfied(read_dependencies(REPO_ROOT / "pyproject.toml"), pins)
    assert problems == [], (f"{LAYER_LOCK.relative_to(REPO_ROOT)} is out of date ({'; '.join(problems)}): "
                            "run `make lock`")


def test_every_pin_of_the_lock_carries_hashes() -> None:
    """pip installs the layer with --require-hashes: a pin without hashes would stop the bundled synth."""
    pins = parse_lock(LAYER_LOCK.read_text())
    assert pins, "the lock is empty"
    assert [name for name, (_version, hashes) in pins.items() if not hashes] == []
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for _v, hashes in pins.values() for h in hashes)


@pytest.mark.parametrize(("requirement", "complaint"), [
    ("pydantic>=99", "the lock pins"),
    ("a-package-nobody-locked>=1", "not in the lock"),
])
def test_a_requirement_the_lock_does_not_meet_is_reported(requirement: str, complaint: str) -> None:
    pins = parse_lock(LAYER_LOCK.read_text())
    (problem,) = unsatisfied([requirement], pins)
    assert complaint in problem


def test_requirements_for_other_platforms_are_ignored() -> None:
    pins = parse_lock("")
    assert unsatisfied(['pywin32>=300; sys_platform == "win32"', 'tomli>=2; python_version < "3.11"'], pins) == []


def test_a_loose_line_in_the_lock_is_rejected() -> None:
    with pytest.raises(ValueError, match="not an exact pin"):
        parse_lock("httpx>=0.27 \\\n    --hash=sha256:" + "0" * 64 + "\n")
