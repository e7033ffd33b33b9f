"""Cold init of each Lambda handler as Lambda runs it, against a bare ``import boto3`` in the same run.

Each figure is the time from just before ``import functions.<name>.app`` to just after it (imports plus
module-level setup: Powertools Logger/Tracer/Metrics, BatchProcessor, ...) in a fresh interpreter, then the
first invocation's client setup. Runs are interleaved with the baseline runs in a shuffled round-robin and the
median is taken, so load from other processes hits every target alike and cancels in the ratio.

Two layouts:

``lambda`` (default): the deployment package as it ships
    A bundled synth of ``MediaGen-dev`` for this host's architecture (x86_64 here) into a temporary cloud
    assembly, exactly as ``npx cdk deploy`` would bundle it (the lock-file layer, the code assets, both
    byte-compiled by a CPython 3.12: ``infra/mediagen_infra/bundling.py``). Each handler runs from a fresh copy
    of *its* code asset as the task root (``/var/task``) with the layer's ``python/`` as ``/opt/python``, under
    a CPython 3.12 (the runtime's version) started with ``-S -B`` (nothing else importable; no byte code
    written, as Lambda's read-only code folders allow none: we run as root, so file modes alone would not
    stop writes, and the bench checks afterwards that no ``.pyc`` appeared). The environment is the
    function's, from the synthesized template (intrinsic values replaced by placeholders), plus what the
    Lambda runtime sets. The baseline is ``import boto3`` (the locked version) from a normal CPython 3.12
    virtualenv the bench creates (pip byte-compiles at install, as any install does). The ``no .pyc`` columns
    run the same copies with every ``__pycache__`` removed: what a synth without a CPython 3.12 ships.
``repo``
    The checkout as it is: this interpreter, cwd = repo root, ``PYTHONPATH=.:shared``, the virtualenv's
    site-packages, ``.pyc`` written by a warm-up run; baseline ``import boto3`` from the same virtualenv.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LAYER_LOCK = REPO / "infra" / "layer" / "requirements.lock"


def _load_lambda_python() -> Any:
    """``infra/mediagen_infra/lambda_python.py`` by path: importing the ``mediagen_infra`` package would load
    the CDK (and start a jsii process) in this benchmark process, whose peak RSS the measured interpreters
    inherit across ``exec``."""
    spec = importlib.util.spec_from_file_location("mediagen_bench_lambda_python",
                                                  REPO / "infra" / "mediagen_infra" / "lambda_python.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_lambda_python = _load_lambda_python()
LAMBDA_PYTHON_VERSION: str = _lambda_python.LAMBDA_PYTHON_VERSION
find_lambda_python = _lambda_python.find_lambda_python

HANDLERS: tuple[str, ...] = ("submit", "poll", "persist", "finalize", "callback", "arm", "api", "intake")
BASELINE = "boto3"
#: Targets: handler init / ``import boto3`` (issue 8: 2x, the callback 1.5x).
TARGETS: Mapping[str, float] = {"callback": 1.5}
DEFAULT_TARGET = 2.0
STACK = "MediaGen-dev"
#: Placeholder values for the template's intrinsic (Ref/GetAtt) environment values, by variable name.
FAKE_VALUES: Mapping[str, str] = {
    "MEDIAGEN_TASK_TABLE": "MediaGen-dev-PipelineTaskTable-BENCH",
    "MEDIAGEN_EVENT_BUS": "MediaGendevPipelineEventBusBENCH",
    "MEDIAGEN_OUTPUTS_BUCKET": "mediagen-dev-outputs-bench",
    "MEDIAGEN_INTAKE_BUCKET": "mediagen-dev-intake-bench",
    "MEDIAGEN_JOBS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/MediaGen-dev-JobsQueue-BENCH",
    "MEDIAGEN_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:MediaGen-dev-Workflow",
    "MEDIAGEN_API_KEY_SECRET_ID": "arn:aws:secretsmanager:us-east-1:123456789012:secret:mediagen/api-key-AbCdEf",
    "MEDIAGEN_CALLBACK_BASE_URL": "https://abcdef1234.execute-api.us-east-1.amazonaws.com/callbacks",
}
#: What the first invocation builds before doing any work (clients from settings; no AWS call is made):
#: the ports of mediagen.wiring for the pipeline steps, the two completion clients for callback and arm,
#: and one DynamoDB client as the baseline's reference. A setup that fails (a module moved) is reported as
#: missing, not as a failed benchmark.
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
    "try:\n"
    "    {setup}\n"
    "    t3 = time.perf_counter()\n"
    "except Exception:\n"
    "    t3 = t2 - 1.0\n"
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
        "LAMBDA_TASK_ROOT": str(task_root), "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_python{LAMBDA_PYTHON_VERSION}", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/bench", "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "ASIABENCHBENCHBENCH0", "AWS_SECRET_ACCESS_KEY": "bench-secret-access-key",
        "AWS_SESSION_TOKEN": "bench-session-token",
        "AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000", "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "POWERTOOLS_SERVICE_NAME": "mediagen", "POWERTOOLS_TRACE_DISABLED": "false",
        "AWS_LAMBDA_FUNCTION_NAME": "bench", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        # Nothing may be written into the code folders (read-only in Lambda).
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    env.update(extra)
    return env


# ------------------------------------------------------------------------------------------ layouts


def host_architecture() -> str:
    """The Lambda architecture name of this machine (``x86_64`` or ``arm64``)."""
    return "arm64" if platform.machine().lower() in {"aarch64", "arm64"} else "x86_64"


def bundled_synth(outdir: Path, architecture: str, log: Any = print) -> Path:
    """A bundled synth of ``MediaGen-dev`` for ``architecture`` into ``outdir``; returns the template path.

    Raises:
        RuntimeError: the synth failed (no package index, no CPython 3.12, ...).
    """
    code = ("import sys; sys.path.insert(0, 'infra'); from mediagen_infra import build_app; "
            "app, _ = build_app(outdir=sys.argv[1], skip_bundling=False, "
            "context={'stage': 'dev', 'architecture': sys.argv[2]}); app.synth()")
    env = {k: v for k, v in os.environ.items() if k not in {"MEDIAGEN_SKIP_BUNDLING", "CDK_CONTEXT_JSON", "CDK_OUTDIR"}}
    env["JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"] = "20"
    log(f"  cold init: bundled synth of {STACK} for {architecture} (the layer's pip install, byte-compiling) ...")
    done = subprocess.run([sys.executable, "-c", code, str(outdir), architecture],  # noqa: S603
                          cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"bundled synth failed (exit {done.returncode}):\n{(done.stderr or done.stdout)[-3000:]}")
    if "WITHOUT byte code" in done.stderr:
        log("  warning: the synth found no CPython 3.12; the assets are not byte-compiled")
    return outdir / f"{STACK}.template.json"


def assembly_assets(template_path: Path) -> tuple[dict[str, Path], Path]:
    """``({handler name: code asset folder}, layer asset folder)`` of a bundled cloud assembly."""
    template = json.loads(template_path.read_text())
    codes: dict[str, Path] = {}
    layer: Path | None = None
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Lambda::Function" and str(props.get("Handler", "")).startswith("functions."):
            codes[props["Handler"].split(".")[1]] = template_path.parent / f"asset.{props['Code']['S3Key'][:-4]}"
        elif resource["Type"] == "AWS::Lambda::LayerVersion":
            layer = template_path.parent / f"asset.{props['Content']['S3Key'][:-4]}"
    if layer is None or not (layer / "python").is_dir():
        raise RuntimeError(f"{template_path.parent}: no bundled layer (was bundling skipped?)")
    return codes, layer


def locked_version(name: str) -> str:
    """The version the layer's lock pins for ``name``."""
    for line in LAYER_LOCK.read_text().splitlines():
        if line.lower().startswith(f"{name.lower()}=="):
            return line.split("==", 1)[1].split()[0]
    raise RuntimeError(f"{name} is not in {LAYER_LOCK}")


def baseline_venv(root: Path, python: str, log: Any = print) -> str:
    """A normal CPython 3.12 virtualenv with the locked boto3 installed; returns its interpreter."""
    venv = root / "baseline-venv"
    log(f"  cold init: baseline virtualenv ({python} -m venv, pip install boto3=={locked_version('boto3')}) ...")
    subprocess.run([python, "-m", "venv", str(venv)], check=True)  # noqa: S603
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",  # noqa: S603
                    "--disable-pip-version-check", f"boto3=={locked_version('boto3')}"], check=True)
    return str(venv / "bin" / "python")


@dataclass(frozen=True)
class Spawn:
    """How one target's interpreter starts: executable, flags, working folder, ``PYTHONPATH``."""

    python: str
    flags: tuple[str, ...]
    cwd: Path
    pythonpath: str


def _tree_files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


@dataclass
class Layout:
    """Where and how the measured interpreters run: one :class:`Spawn` per target (and per byte-code mode)."""

    name: str
    spawns: dict[str, Spawn]
    nopyc_spawns: dict[str, Spawn] = field(default_factory=dict)
    read_only: list[Path] = field(default_factory=list)
    temp: tempfile.TemporaryDirectory[str] | None = None
    description: str = ""
    template: Path | None = None  # the bundled synth's template (lambda layout)
    _before: dict[Path, set[str]] = field(default_factory=dict)

    def snapshot(self) -> None:
        self._before = {root: _tree_files(root) for root in self.read_only}

    def written(self) -> list[str]:
        """Files that appeared in the code folders since :meth:`snapshot` (should be none)."""
        return sorted(f"{root}/{f}" for root, before in self._before.items() for f in _tree_files(root) - before)

    def close(self) -> None:
        if self.temp is not None:
            self.temp.cleanup()


def _copy(source: Path, target: Path, *, byte_code: bool) -> Path:
    shutil.copytree(source, target, ignore=None if byte_code else shutil.ignore_patterns("__pycache__"))
    for path in [target, *target.rglob("*")]:  # read-only, as Lambda mounts it (root ignores modes: see -B)
        path.chmod(path.stat().st_mode & ~0o222)
    return target


def make_layout(name: str, *, log: Any = print, assembly: Path | None = None) -> Layout:
    """Prepare the ``lambda`` or ``repo`` layout (see the module docstring).

    Raises:
        RuntimeError: no CPython 3.12 is found, or the bundled synth failed.
    """
    if name == "repo":
        spawn = Spawn(sys.executable, (), REPO, f"{REPO}:{REPO / 'shared'}")
        return Layout("repo", dict.fromkeys([BASELINE, *HANDLERS], spawn),
                      description=f"the checkout, Python {platform.python_version()}")
    python = find_lambda_python()
    if python is None:
        raise RuntimeError(f"no CPython {LAMBDA_PYTHON_VERSION} found: install one (uv python install "
                           f"{LAMBDA_PYTHON_VERSION}) or run with --layout repo")
    temp = tempfile.TemporaryDirectory(prefix="mediagen-bench-cold-")
    root = Path(temp.name)
    try:
        template = bundled_synth(root / "cdk.out", host_architecture(), log) if assembly is None else (
            assembly / f"{STACK}.template.json")
        codes, layer = assembly_assets(template)
        layout = Layout("lambda", {}, temp=temp, template=template, description=(
            f"bundled {host_architecture()} assets, CPython {LAMBDA_PYTHON_VERSION} ({python}) -S -B"))
        for byte_code, spawns in ((True, layout.spawns), (False, layout.nopyc_spawns)):
            tag = "pyc" if byte_code else "nopyc"
            opt = _copy(layer / "python", root / tag / "opt" / "python", byte_code=byte_code)
            layout.read_only.append(opt)
            for handler in HANDLERS:
                task = _copy(codes[handler], root / tag / handler / "task", byte_code=byte_code)
                layout.read_only.append(task)
                spawns[handler] = Spawn(python, ("-S", "-B"), task, f"{task}:{opt}")
        baseline = baseline_venv(root, python, log)
        layout.spawns[BASELINE] = layout.nopyc_spawns[BASELINE] = Spawn(baseline, ("-B",), root, "")
        return layout
    except BaseException:
        temp.cleanup()
        raise


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
        """Median first-invocation setup; NaN when the setup failed (it is reported, not measured)."""
        valid = [s for s in self.setup if s >= 0]
        return statistics.median(valid) * 1000 if valid else float("nan")

    @property
    def setup_rss_mib(self) -> float:
        return statistics.median(self.setup_rss_kib) / 1024 if self.setup_rss_kib else 0.0


class ColdRunner:
    def __init__(self, spawns: Mapping[str, Spawn], envs: Mapping[str, Mapping[str, str]]) -> None:
        self.spawns = spawns
        self.envs = envs

    def env(self, target: str) -> dict[str, str]:
        spawn = self.spawns[target]
        if target == BASELINE:
            env = lambda_environment(spawn.cwd, spawn.pythonpath, {})
        else:
            env = lambda_environment(spawn.cwd, spawn.pythonpath, self.envs.get(target, {}))
        return env

    def run(self, target: str, *, write_bytecode: bool = False,
            importtime: bool = False) -> subprocess.CompletedProcess[str]:
        spawn = self.spawns[target]
        argv = [spawn.python, *spawn.flags]
        if importtime:
            argv += ["-X", "importtime"]
        argv += ["-c", TIMER.format(module=module_of(target), setup=SETUP.get(target, DEFAULT_SETUP))]
        env = self.env(target)
        if write_bytecode:  # the repo layout's warm-up only
            env.pop("PYTHONDONTWRITEBYTECODE", None)
        done = subprocess.run(argv, cwd=spawn.cwd, env=env,  # noqa: S603 -- our interpreters, fixed code
                              capture_output=True, text=True, check=False, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"import {module_of(target)} failed:\n{done.stderr[-3000:]}")
        return done

    def time_once(self, target: str, *, write_bytecode: bool = False) -> tuple[float, float, int, float, int]:
        """``(wall s, CPU s, peak RSS KiB)`` of one fresh-interpreter import, then ``(setup s, peak RSS KiB)``
        of the first-invocation client setup that follows it (setup < 0: it failed)."""
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
    warm: dict[str, Samples]  # as shipped: the bundled byte code (lambda) / warm .pyc (repo)
    nopyc: dict[str, Samples] | None  # the same assets without byte code (lambda only)
    offenders: dict[str, dict[str, Any]]
    description: str = ""
    written: list[str] = field(default_factory=list)  # files that appeared in the read-only code folders


def measure(template_path: Path | None = None, *, layout_name: str = "lambda", runs: int = 9, nopyc_runs: int = 5,
            importtime_runs: int = 3, seed: int = 8, log: Any = print, assembly: Path | None = None) -> ColdResult:
    """Measure every handler's cold init against ``import boto3`` (see the module docstring).

    Args:
        template_path: the template whose function environments are used (``repo`` layout; the ``lambda``
            layout takes the bundled synth's own).
        assembly: an existing bundled cloud assembly of ``MediaGen-dev`` for this host's architecture
            (``lambda`` layout), instead of a fresh bundled synth.

    Raises:
        RuntimeError: the layout cannot be prepared, an import failed, or a run wrote into the code folders.
    """
    rng = random.Random(seed)
    targets = [BASELINE, *HANDLERS]
    log(f"  cold init: preparing the '{layout_name}' layout ...")
    layout = make_layout(layout_name, log=log, assembly=assembly)
    try:
        template = layout.template or template_path
        envs = function_environments(template) if template is not None else {}
        missing = [h for h in HANDLERS if h not in envs]
        if missing:
            log(f"  note: the template has no function for {missing}; using the generic Lambda environment")
        runner = ColdRunner(layout.spawns, envs)
        layout.snapshot()
        nopyc = None
        if layout.nopyc_spawns and nopyc_runs > 0:
            log(f"  cold init without byte code: {nopyc_runs} interleaved rounds of {len(targets)} imports")
            nopyc = ColdRunner(layout.nopyc_spawns, envs).interleaved(
                targets, nopyc_runs, rng=rng, progress=lambda m: log(f"    {m}"))
        if layout.name == "repo":
            for target in targets:  # warm-up: writes the .pyc files the runs read
                runner.time_once(target, write_bytecode=True)
        log(f"  cold init as shipped: {runs} interleaved rounds of {len(targets)} imports")
        warm = runner.interleaved(targets, runs, rng=rng, progress=lambda m: log(f"    {m}"))
        offenders: dict[str, dict[str, Any]] = {}
        if importtime_runs > 0:
            log(f"  import chains: {importtime_runs} x -X importtime per target")
            offenders = import_offenders(runner, list(HANDLERS), importtime_runs)
        written = layout.written()
        if written:
            raise RuntimeError(f"the runs wrote into the read-only code folders: {written[:5]}")
        return ColdResult(layout.name, runs, warm, nopyc, offenders, layout.description, written)
    finally:
        layout.close()
