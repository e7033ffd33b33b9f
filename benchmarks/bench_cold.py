"""Cold init of each Lambda handler, measured against a bare ``import boto3`` in the same run.

Each figure is the time from just before ``import functions.<name>.app`` to just after it (imports plus
module-level setup: Powertools Logger/Tracer/Metrics, BatchProcessor, ...) in a fresh interpreter, with the
environment a deployed function sees (``LAMBDA_TASK_ROOT`` set, tracing on, the ``MEDIAGEN_*`` variables
of the synthesized template). Runs are interleaved with the baseline runs in a shuffled round-robin and
the median is taken, so load from other processes hits every target alike and cancels in the ratio.

Two layouts:

``lambda`` (default)
    What Lambda puts on ``sys.path``: a task root laid out like the function's code asset (``functions/``
    and ``mediagen/`` without ``sandbox``/``local``) and an "/opt/python" holding exactly the distributions
    of ``[project].dependencies`` (the dependencies layer's content, copied from this virtualenv), with
    ``python -S`` so nothing else of the virtualenv is importable. Dev-only packages change import cost
    (``httpx`` imports ``rich``/``pygments``/``click`` when they are installed; ``pydantic`` scans every
    installed distribution for plugins), so this is the faithful floor.
``repo``
    The checkout as it is: cwd = repo root, ``PYTHONPATH=.:shared``, the virtualenv's site-packages.

Byte code: the warm figures use ``.pyc`` files written by a warm-up run. The assets as bundled today ship
no ``.pyc`` at all (the layer is installed with ``pip --no-compile``, the code asset skips ``__pycache__``,
and ``/opt`` and ``/var/task`` are read-only), so a real cold start compiles every module it imports; the
``no-pyc`` figures measure that (``lambda`` layout only).
"""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import tomllib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
HANDLERS: tuple[str, ...] = ("submit", "poll", "persist", "finalize", "callback", "arm")
BASELINE = "boto3"
#: Issue 8 targets: handler init / ``import boto3``.
TARGETS: Mapping[str, float] = {"callback": 1.5}
DEFAULT_TARGET = 2.0
#: Packages never shipped to Lambda (see infra/mediagen_infra/bundling.py EXCLUDED_PACKAGE_DIRS).
EXCLUDED_PACKAGE_DIRS = frozenset({"sandbox", "local"})
#: Placeholder values for the template's intrinsic (Ref/GetAtt) environment values, by variable name.
FAKE_VALUES: Mapping[str, str] = {
    "MEDIAGEN_TASK_TABLE": "MediaGen-dev-PipelineTaskTable-BENCH",
    "MEDIAGEN_EVENT_BUS": "MediaGendevPipelineEventBusBENCH",
    "MEDIAGEN_OUTPUTS_BUCKET": "mediagen-dev-outputs-bench",
    "MEDIAGEN_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:MediaGen-dev-Workflow",
    "MEDIAGEN_API_KEY_SECRET_ID": "arn:aws:secretsmanager:us-east-1:123456789012:secret:mediagen/api-key-AbCdEf",
    "MEDIAGEN_CALLBACK_BASE_URL": "https://abcdef1234.execute-api.us-east-1.amazonaws.com/callbacks",
}
#: What the first invocation builds before doing any work (clients from settings; no AWS call is made):
#: the ports of mediagen.wiring for the pipeline steps, the two completion clients for callback and arm,
#: and one DynamoDB client as the baseline's reference.
SETUP: Mapping[str, str] = {
    BASELINE: "boto3.client('dynamodb')",
    "callback": "__import__('mediagen.wiring').wiring.completion_ports()",
    "arm": "__import__('mediagen.wiring').wiring.completion_ports()",
}
DEFAULT_SETUP = "__import__('mediagen.wiring').wiring.ports()"
TIMER = (
    "import time\n"
    "t0 = time.perf_counter(); c0 = time.process_time()\n"
    "import {module}\n"
    "t1 = time.perf_counter(); c1 = time.process_time()\n"
    "import resource\n"
    "r1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "t2 = time.perf_counter()\n"
    "{setup}\n"
    "t3 = time.perf_counter()\n"
    "print(t1 - t0, c1 - c0, r1, t3 - t2, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
)


def module_of(target: str) -> str:
    return BASELINE if target == BASELINE else f"functions.{target}.app"


def target_for(target: str, name: str) -> float:
    return TARGETS.get(name, DEFAULT_TARGET) if target != BASELINE else 1.0


# ------------------------------------------------------------------------------------------ environment


def function_environments(template_path: Path) -> dict[str, dict[str, str]]:
    """``{handler name: environment}`` as the synthesized template sets it, plus memory size; intrinsic
    values replaced by placeholders of the same shape."""
    template = json.loads(template_path.read_text())
    envs: dict[str, dict[str, str]] = {}
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Lambda::Function":
            continue
        props = resource.get("Properties", {})
        handler = str(props.get("Handler", ""))
        if not handler.startswith("functions."):
            continue
        name = handler.split(".")[1]
        variables = props.get("Environment", {}).get("Variables", {})
        env = {key: value if isinstance(value, str) else FAKE_VALUES.get(key, f"bench-{key.lower()}")
               for key, value in variables.items()}
        env["AWS_LAMBDA_FUNCTION_NAME"] = f"MediaGen-dev-{logical_id}"[:64]
        env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = str(props.get("MemorySize", 128))
        env["_HANDLER"] = handler
        envs[name] = env
    return envs


def lambda_environment(task_root: Path, pythonpath: str, extra: Mapping[str, str]) -> dict[str, str]:
    """The variables the Lambda Python runtime sets, fake credentials, tracing on, and ``extra``."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", str(Path.home())),
        "LANG": "en_US.UTF-8", "TZ": ":UTC",
        "PYTHONPATH": pythonpath,
        "LAMBDA_TASK_ROOT": str(task_root), "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/bench", "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "ASIABENCHBENCHBENCH0", "AWS_SECRET_ACCESS_KEY": "bench-secret-access-key",
        "AWS_SESSION_TOKEN": "bench-session-token",
        "AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000", "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "POWERTOOLS_SERVICE_NAME": "mediagen", "POWERTOOLS_TRACE_DISABLED": "false",
        "AWS_LAMBDA_FUNCTION_NAME": "bench", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
    }
    env.update(extra)
    return env


# ------------------------------------------------------------------------------------------ layouts


def dependency_closure(pyproject: Path) -> list[md.Distribution]:
    """The installed distributions ``[project].dependencies`` resolve to (extras and markers honoured)."""
    from packaging.requirements import Requirement

    with pyproject.open("rb") as handle:
        requirements = [Requirement(r) for r in tomllib.load(handle)["project"]["dependencies"]]
    found: dict[str, tuple[md.Distribution, set[str]]] = {}
    todo = list(requirements)
    while todo:
        req = todo.pop()
        dist = md.distribution(req.name)
        key = dist.metadata["Name"].lower().replace("_", "-")
        extras = set(req.extras)
        if key in found and extras <= found[key][1]:
            continue
        extras |= found[key][1] if key in found else set()
        found[key] = (dist, extras)
        for text in dist.requires or []:
            sub = Requirement(text)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in (extras or {""})):
                todo.append(sub)
    return [dist for dist, _ in found.values()]


def copy_distributions(dists: Iterable[md.Distribution], target: Path) -> None:
    """Copy each distribution's files (as its RECORD lists them, without byte code) into ``target``."""
    for dist in dists:
        for rel in dist.files or []:
            if "__pycache__" in rel.parts or rel.suffix == ".pyc" or str(rel).startswith(".."):
                continue
            source = Path(str(dist.locate_file(rel)))
            if source.is_file():
                dest = target / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, dest)


def copy_task_root(target: Path) -> None:
    """``functions/`` and ``mediagen/`` as every function's code asset holds them (no byte code)."""
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "functions", target / "functions", ignore=skip)

    def skip_package(directory: str, names: list[str]) -> set[str]:
        ignored = set(skip(directory, names))
        if Path(directory) == REPO / "shared" / "mediagen":
            ignored |= EXCLUDED_PACKAGE_DIRS & set(names)
        return ignored

    shutil.copytree(REPO / "shared" / "mediagen", target / "mediagen", ignore=skip_package)


@dataclass
class Layout:
    """Where and how the measured interpreters run."""

    name: str
    cwd: Path
    pythonpath: str
    python_flags: tuple[str, ...]
    temp: tempfile.TemporaryDirectory[str] | None = None

    def close(self) -> None:
        if self.temp is not None:
            self.temp.cleanup()


def make_layout(name: str) -> Layout:
    if name == "repo":
        return Layout("repo", REPO, f"{REPO}:{REPO / 'shared'}", ())
    temp = tempfile.TemporaryDirectory(prefix="mediagen-bench-")
    root = Path(temp.name)
    task, opt = root / "task", root / "opt" / "python"
    copy_task_root(task)
    copy_distributions(dependency_closure(REPO / "pyproject.toml"), opt)
    return Layout("lambda", task, f"{task}:{opt}", ("-S",), temp)


# ------------------------------------------------------------------------------------------ running


@dataclass
class Samples:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    rss_kib: list[int] = field(default_factory=list)  # peak RSS of the interpreter after the import
    setup: list[float] = field(default_factory=list)  # first-invocation client setup (SETUP), seconds
    setup_rss_kib: list[int] = field(default_factory=list)  # peak RSS after that setup

    @property
    def wall_ms(self) -> float:
        return statistics.median(self.wall) * 1000

    @property
    def cpu_ms(self) -> float:
        return statistics.median(self.cpu) * 1000

    @property
    def rss_mib(self) -> float:
        return statistics.median(self.rss_kib) / 1024 if self.rss_kib else 0.0

    @property
    def setup_ms(self) -> float:
        return statistics.median(self.setup) * 1000 if self.setup else 0.0

    @property
    def setup_rss_mib(self) -> float:
        return statistics.median(self.setup_rss_kib) / 1024 if self.setup_rss_kib else 0.0


class ColdRunner:
    def __init__(self, layout: Layout, envs: Mapping[str, Mapping[str, str]]) -> None:
        self.layout = layout
        self.envs = envs

    def env(self, target: str, *, write_bytecode: bool) -> dict[str, str]:
        extra = dict(self.envs.get(target, {}))
        env = lambda_environment(self.layout.cwd, self.layout.pythonpath, extra)
        if not write_bytecode:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        return env

    def run(self, target: str, *, write_bytecode: bool = False,
            importtime: bool = False) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, *self.layout.python_flags]
        if importtime:
            argv += ["-X", "importtime"]
        argv += ["-c", TIMER.format(module=module_of(target), setup=SETUP.get(target, DEFAULT_SETUP))]
        env = self.env(target, write_bytecode=write_bytecode)
        done = subprocess.run(argv, cwd=self.layout.cwd, env=env,  # noqa: S603 -- this interpreter, fixed code
                              capture_output=True, text=True, check=False, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"import {module_of(target)} failed:\n{done.stderr[-3000:]}")
        return done

    def time_once(self, target: str, *, write_bytecode: bool = False) -> tuple[float, float, int, float, int]:
        """``(wall s, CPU s, peak RSS KiB)`` of one fresh-interpreter import, then ``(setup s, peak RSS KiB)``
        of the first-invocation client setup that follows it."""
        out = self.run(target, write_bytecode=write_bytecode).stdout.split()
        return float(out[-5]), float(out[-4]), int(out[-3]), float(out[-2]), int(out[-1])

    def interleaved(self, targets: list[str], runs: int, *, rng: random.Random,
                    write_bytecode: bool = False, progress: Any = None) -> dict[str, Samples]:
        samples = {t: Samples() for t in targets}
        for round_no in range(runs):
            order = list(targets)
            rng.shuffle(order)
            for target in order:
                wall, cpu, rss, setup, setup_rss = self.time_once(target, write_bytecode=write_bytecode)
                s = samples[target]
                s.wall.append(wall)
                s.cpu.append(cpu)
                s.rss_kib.append(rss)
                s.setup.append(setup)
                s.setup_rss_kib.append(setup_rss)
            if progress:
                progress(f"round {round_no + 1}/{runs}")
        return samples


# ------------------------------------------------------------------------------------------ import chains


@dataclass
class ImportNode:
    name: str
    self_us: int
    cumulative_us: int
    parent: ImportNode | None = None


def parse_importtime(stderr: str) -> list[ImportNode]:
    """``-X importtime`` output -> nodes in output order, each linked to the module that imported it."""
    nodes: list[ImportNode] = []
    pending: dict[int, list[ImportNode]] = defaultdict(list)
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        head, cumulative_us, raw = line.split("|", 2)  # "import time: SELF ", " CUMULATIVE ", " <indent>name"
        name = raw[1:]
        depth = (len(name) - len(name.lstrip(" "))) // 2
        node = ImportNode(name.strip(), int(head.rsplit(":", 1)[1]), int(cumulative_us))
        for child in pending.pop(depth + 1, []):
            child.parent = node
        pending[depth].append(node)
        nodes.append(node)
    return nodes


def top_package(module: str) -> str:
    return module.split(".", 1)[0]


def group_of(module: str) -> str:
    """Third-party and stdlib modules group by package; first-party ones stay apart (module-level setup
    such as a pydantic model shows up as the self time of the module that defines it)."""
    return module if first_party(module) else top_package(module)


def first_party(module: str) -> bool:
    return top_package(module) in ("functions", "mediagen")


def chain(node: ImportNode) -> str:
    """``functions.poll.app > mediagen.steps.poll > mediagen.settings > pydantic``: the first-party
    ancestors, the module of another package that pulled ``node`` in, and ``node``'s package root."""
    ancestors: list[ImportNode] = []
    parent = node.parent
    while parent is not None:
        ancestors.append(parent)
        parent = parent.parent
    ancestors.reverse()
    if first_party(node.name):
        return " > ".join([a.name for a in ancestors if first_party(a.name)] + [node.name])
    pkg = top_package(node.name)
    # the outermost module of the same package that was being imported
    head = node
    for anc in reversed(ancestors):
        if top_package(anc.name) != pkg:
            break
        head = anc
    kept = [a.name for a in ancestors if first_party(a.name) and top_package(a.name) != pkg]
    outside = [a for a in ancestors if top_package(a.name) != pkg]
    if outside and not first_party(outside[-1].name):
        kept.append(outside[-1].name)
    kept.append(head.name)
    return " > ".join(kept)


def caused_by(nodes: list[ImportNode], root_name: str) -> list[ImportNode]:
    """The nodes imported while importing ``root_name`` (itself included): not interpreter start-up, not
    what ran after it."""
    root = next((n for n in nodes if n.name == root_name and n.parent is None), None)
    if root is None:
        return []
    out = []
    for n in nodes:
        p: ImportNode | None = n
        while p is not None and p is not root:
            p = p.parent
        if p is root:
            out.append(n)
    return out


@dataclass
class Offender:
    package: str
    ms: float
    modules: int
    chain: str
    stdlib: bool


def import_offenders(runner: ColdRunner, targets: list[str], runs: int) -> dict[str, dict[str, Any]]:
    """Per handler: the packages it imports beyond ``import boto3``'s set, by median summed self time.

    Returns ``{handler: {"extra_ms": float, "shared_ms": float, "offenders": [Offender, ...]}}``.
    """
    parsed: dict[str, list[list[ImportNode]]] = {t: [] for t in [BASELINE, *targets]}
    for _ in range(runs):
        for target in parsed:
            parsed[target].append(parse_importtime(runner.run(target, importtime=True).stderr))
    baseline_modules = {n.name for nodes in parsed[BASELINE] for n in caused_by(nodes, BASELINE)}
    result: dict[str, dict[str, Any]] = {}
    for target in targets:
        per_pkg: dict[str, list[float]] = defaultdict(list)
        first: dict[str, ImportNode] = {}
        counts: dict[str, int] = {}
        extra_runs, shared_runs = [], []
        for nodes in parsed[target]:
            inside = {id(n) for n in caused_by(nodes, module_of(target))}
            sums: dict[str, float] = defaultdict(float)
            mods: dict[str, int] = defaultdict(int)
            extra = shared = 0.0
            for n in nodes:
                if id(n) not in inside:
                    continue
                if n.name in baseline_modules:
                    shared += n.self_us
                    continue
                extra += n.self_us
                pkg = group_of(n.name)
                sums[pkg] += n.self_us
                mods[pkg] += 1
                first.setdefault(pkg, n)
            for pkg, total in sums.items():
                per_pkg[pkg].append(total)
                counts[pkg] = max(counts.get(pkg, 0), mods[pkg])
            extra_runs.append(extra)
            shared_runs.append(shared)
        offenders = [
            Offender(pkg, statistics.median(vals + [0.0] * (runs - len(vals))) / 1000, counts[pkg],
                     chain(first[pkg]), pkg in sys.stdlib_module_names)
            for pkg, vals in per_pkg.items()
        ]
        offenders.sort(key=lambda o: o.ms, reverse=True)
        result[target] = {"extra_ms": statistics.median(extra_runs) / 1000,
                          "shared_ms": statistics.median(shared_runs) / 1000, "offenders": offenders}
    return result


# ------------------------------------------------------------------------------------------ entry point


@dataclass
class ColdResult:
    layout: str
    runs: int
    warm: dict[str, Samples]
    nopyc: dict[str, Samples] | None
    offenders: dict[str, dict[str, Any]]


def measure(template_path: Path, *, layout_name: str = "lambda", runs: int = 9, nopyc_runs: int = 5,
            importtime_runs: int = 3, seed: int = 8, log: Any = print) -> ColdResult:
    rng = random.Random(seed)
    envs = function_environments(template_path)
    missing = [h for h in HANDLERS if h not in envs]
    if missing:
        log(f"  note: the template has no function for {missing}; using the generic Lambda environment")
    targets = [BASELINE, *HANDLERS]
    log(f"  cold init: preparing the '{layout_name}' layout ...")
    layout = make_layout(layout_name)
    try:
        runner = ColdRunner(layout, envs)
        nopyc = None
        if layout.name == "lambda" and nopyc_runs > 0:
            log(f"  cold init without .pyc (as bundled): {nopyc_runs} interleaved rounds of {len(targets)} imports")
            nopyc = runner.interleaved(targets, nopyc_runs, rng=rng, write_bytecode=False,
                                       progress=lambda m: log(f"    {m}"))
        for target in targets:  # warm-up: writes the .pyc files the warm runs read
            runner.time_once(target, write_bytecode=True)
        log(f"  cold init with warm .pyc: {runs} interleaved rounds of {len(targets)} imports")
        warm = runner.interleaved(targets, runs, rng=rng, progress=lambda m: log(f"    {m}"))
        offenders: dict[str, dict[str, Any]] = {}
        if importtime_runs > 0:
            log(f"  import chains: {importtime_runs} x -X importtime per target")
            offenders = import_offenders(runner, list(HANDLERS), importtime_runs)
        return ColdResult(layout.name, runs, warm, nopyc, offenders)
    finally:
        layout.close()
