"""Running job files through the local stack: ``mediagen demo`` and ``mediagen run-local``."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from mediagen.errors import MediagenError
from mediagen.jobs import MAX_JOB_DEPTH
from mediagen.local.faults import ENV_FAULTS_SEED, FaultInjector
from mediagen.local.stack import EmbeddedStack, default_template_path, repo_root
from mediagen.ops.display import clean
from mediagen.records import INTERNAL_FIELDS, JobStatus


def load_job_files(paths: list[Path]) -> list[dict[str, Any] | str]:
    """Jobs from files: a ``.json`` file holds one job (or a list of jobs); a ``.jsonl`` file one per line.

    Every document goes through :func:`mediagen.decode.decode_json`. A line or file it refuses (not JSON,
    nested too deeply, ...) is kept as raw text, so it travels the pipeline and is recorded REJECTED like any
    malformed message would be (the command reports it without sending it).

    Raises:
        MediagenError: a file cannot be read, is not UTF-8, or is larger than
            :data:`mediagen.decode.MAX_FILE_BYTES`.
    """
    from mediagen.decode import MAX_FILE_BYTES

    jobs: list[dict[str, Any] | str] = []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise MediagenError(f"cannot read {path}: {exc.strerror}", code="unreadable") from exc
        if len(data) > MAX_FILE_BYTES:
            raise MediagenError(f"cannot read {path}: {len(data)} bytes; the limit is {MAX_FILE_BYTES} bytes",
                                code="unreadable")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise MediagenError(f"cannot read {path}: not UTF-8 text (byte {exc.start}: {exc.reason})",
                                code="unreadable") from exc
        if path.suffix == ".jsonl":
            jobs.extend(_decode(line, depth=MAX_JOB_DEPTH) for line in text.splitlines() if line.strip())
            continue
        doc = _decode(text, depth=MAX_JOB_DEPTH + 1)
        jobs.extend(doc if isinstance(doc, list) else [doc])
    return jobs


def _decode(text: str, *, depth: int) -> Any:
    from mediagen.decode import MAX_FILE_BYTES, UnreadableBody, decode_json

    try:
        return decode_json(text, max_bytes=MAX_FILE_BYTES, max_depth=depth)
    except UnreadableBody as exc:  # a value no record keeps: the job is still a job, and its check names the value
        return exc.document if exc.limit == "values" else text


def sample_job_files() -> list[Path]:
    """The sample jobs shipped in ``events/jobs/``."""
    return sorted((repo_root() / "events" / "jobs").glob("*.json"))


class ProgressPrinter:
    """Prints one line whenever a job changes status (live progress that reads well in a log too)."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.seen: dict[str, tuple[str, int]] = {}

    def __call__(self, records: list[dict[str, Any]], elapsed: float) -> None:
        for r in sorted(records, key=lambda r: r["job_id"]):
            state = (str(r.get("status")), int(r.get("polls", 0)))
            if self.seen.get(r["job_id"]) != state:
                self.seen[r["job_id"]] = state
                detail = f"polls={state[1]}"
                if r.get("error"):
                    detail += f"  {clean(r['error'].get('code'))}: {clean(r['error'].get('message'))[:80]}"
                print(f"  [{elapsed:6.1f}s] {clean(r['job_id']):<32} {clean(state[0]):<16} {detail}", file=self.out,
                      flush=True)


@dataclass
class RunResult:
    records: list[dict[str, Any]]
    events: list[dict[str, Any]]
    wall_seconds: float
    #: job id -> generate requests the emulator received for it (whatever it answered)
    generate_calls: dict[str, int]
    #: job id -> generate requests that created a provider task (the ones that cost money)
    generate_accepted: dict[str, int]
    #: AWS-side faults injected (``{"events:PutEvents": {"throttle": 3}}``; see :mod:`mediagen.local.faults`)
    injected_faults: dict[str, dict[str, int]] = field(default_factory=dict)


def generate_calls_by_job(emulator: Any) -> tuple[dict[str, int], dict[str, int]]:
    """Count the Cliprise emulator's generate requests per job id (found from the ``callBackUrl`` token each
    request carries): ``(received, accepted)``."""
    from mediagen.completion import job_id_from_token

    received: dict[str, int] = {}
    accepted: dict[str, int] = {}
    for call in emulator.generate_calls():
        url = str((call.get("body") or {}).get("callBackUrl") or "")
        job_id = job_id_from_token(url.rstrip("/").rsplit("/", 1)[-1]) if url else None
        if job_id is None:
            continue
        received[job_id] = received.get(job_id, 0) + 1
        if call.get("task_id"):
            accepted[job_id] = accepted.get(job_id, 0) + 1
    return received, accepted


def provider_calls_by_job(stack: EmbeddedStack, job_ids: list[str]) -> tuple[dict[str, int], dict[str, int]]:
    """Submit requests per job id at every provider, ``(received, accepted)``.

    On the emulators: what each one received (Cliprise generate calls; Clipia submits, matched by the job's
    ``Idempotency-Key``) and how many created a paid request (an ``Idempotency-Key`` replay creates none). With
    ``real_api``: the requests the pipeline sent (:attr:`EmbeddedStack.sent`); accepted = answered 2xx (for
    Cliprise an upper bound: it reports some refusals with HTTP 200; for Clipia at most one, the key being
    idempotent).
    """
    from mediagen.provider.port import idempotency_key

    received: dict[str, int] = {}
    accepted: dict[str, int] = {}

    def add(job_id: str, got: int, took: int) -> None:
        if got:
            received[job_id] = received.get(job_id, 0) + got
            accepted[job_id] = accepted.get(job_id, 0) + took

    if stack.emulator is not None:
        cliprise_received, cliprise_accepted = generate_calls_by_job(stack.emulator)
        for job_id, got in cliprise_received.items():
            add(job_id, got, cliprise_accepted.get(job_id, 0))
    clipia_calls = stack.clipia.submit_calls() if stack.clipia is not None else []
    for job_id in job_ids:
        if stack.real_api:  # real APIs: what was sent
            generates = stack.provider_requests("cliprise", job_id, path_part="/generate")
            add(job_id, len(generates), sum(1 for r in generates if 200 <= (r["status"] or 0) < 300))
            submits = [r for r in stack.provider_requests("clipia", job_id, path_part="/v1/models/")
                       if r["method"] == "POST" and not r["path"].endswith("/estimate")]
            add(job_id, len(submits), min(1, sum(1 for r in submits if 200 <= (r["status"] or 0) < 300)))
            continue
        key = idempotency_key("clipia", job_id)
        mine = [c for c in clipia_calls if c.get("idempotency_key") == key]
        add(job_id, len(mine), sum(1 for c in mine if c.get("request_id") and not c.get("replay")))
    return received, accepted


def run_jobs(jobs: list[dict[str, Any] | str], *, stack: EmbeddedStack, timeout: float = 300.0,
             on_progress: Callable[[list[dict[str, Any]], float], None] | None = None) -> RunResult:
    """Send ``jobs`` to the local stack's queue and run them to terminal states."""
    start = time.monotonic()
    stack.send_jobs(jobs)
    records = stack.run_until_done(timeout=timeout, on_progress=on_progress)
    received, accepted = provider_calls_by_job(stack, [str(r["job_id"]) for r in records])
    return RunResult(records=records, events=stack.events(), wall_seconds=time.monotonic() - start,
                     generate_calls=received, generate_accepted=accepted,
                     injected_faults=stack.faults.injected() if stack.faults is not None else {})


def fault_injector(spec: str | None) -> FaultInjector | None:
    """The AWS-side faults of a run: ``spec`` (``MEDIAGEN_LOCAL_FAULTS`` syntax), else the environment's
    ``MEDIAGEN_LOCAL_FAULTS``; seeded by ``MEDIAGEN_LOCAL_FAULTS_SEED``. ``None``: no faults.

    Raises:
        FaultSpecError: the spec or the seed is malformed (names the entry and the allowed kinds).
    """
    if spec is None:
        return FaultInjector.from_environment(os.environ)
    injector = FaultInjector.from_spec(spec, seed=os.environ.get(ENV_FAULTS_SEED))
    return injector if injector.rules else None


def _seconds(record: dict[str, Any]) -> float:
    from datetime import datetime

    try:
        start = datetime.fromisoformat(record["created_at"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(record["updated_at"].replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return 0.0
    return (end - start).total_seconds()


def print_table(records: list[dict[str, Any]], out: IO[str]) -> None:
    """The demo's summary: job, the provider that delivered (else the one named), model, status, polls,
    seconds, S3 key (and how many more outputs), bytes."""
    rows = [("JOB", "PROVIDER", "MODEL", "STATUS", "POLLS", "SECONDS", "S3 KEY", "BYTES")]
    for r in sorted(records, key=lambda r: r["job_id"]):
        outputs = r.get("outputs") or [{}]
        key = clean(outputs[0].get("key", "-")) + (f" (+{len(outputs) - 1})" if len(outputs) > 1 else "")
        rows.append((clean(r["job_id"]), clean(r.get("delivered_by") or r.get("provider") or "-"),
                     clean(r.get("model")), clean(r.get("status")), clean(r.get("polls", 0)), f"{_seconds(r):.1f}",
                     key, clean(outputs[0].get("bytes", "-"))))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(widths[j]) for j, cell in enumerate(row)).rstrip(), file=out)
        if i == 0:
            print("  ".join("-" * w for w in widths), file=out)


def ensure_template(template_path: Path | None, out: IO[str]) -> Path:
    """The synthesized template to run; synthesizes the CDK app (bundling skipped) when it is missing."""
    path = template_path or default_template_path()
    if path.exists():
        return path
    import os
    import subprocess

    print(f"{path} not found: synthesizing the CDK app (python infra/app.py) ...", file=out, flush=True)
    env = {**os.environ, "MEDIAGEN_SKIP_BUNDLING": "1", "CDK_OUTDIR": str(path.parent),
           "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    done = subprocess.run([sys.executable, str(repo_root() / "infra" / "app.py")], cwd=repo_root(), env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0 or not path.exists():
        raise MediagenError(f"cdk synth failed: {done.stderr[-2000:]}", code="synth_failed")
    return path


#: The file ``mediagen demo`` writes first into its output folder: only a folder holding it is ever replaced.
DEMO_MARKER = ".mediagen-demo"


def prepare_demo_output_dir(output_dir: Path) -> Path:
    """Make ``output_dir`` ready for a demo run and return it (resolved): created when missing; used as it is
    when empty; emptied only when an earlier ``mediagen demo`` made it (it holds :data:`DEMO_MARKER`).
    The marker is written before anything else.

    Raises:
        MediagenError: ``output_dir`` is the current folder or one of its parents, a symbolic link, not a
            folder, or a non-empty folder that ``mediagen demo`` did not make. Nothing is deleted then.
    """
    given = output_dir
    if output_dir.is_symlink():
        raise MediagenError(f"--output-dir {given} is a symbolic link; name a real folder (or a new one)",
                            code="unsafe_output_dir")
    output_dir = output_dir.resolve()
    here = Path.cwd().resolve()
    if output_dir == here or output_dir in here.parents:
        raise MediagenError(f"--output-dir {given} is the current folder (or holds it): the demo replaces its "
                            "output folder on every run, so name a new folder, e.g. --output-dir demo-output",
                            code="unsafe_output_dir")
    if output_dir.exists() and not output_dir.is_dir():
        raise MediagenError(f"--output-dir {given} is a file, not a folder", code="unsafe_output_dir")
    if output_dir.is_dir() and any(output_dir.iterdir()):
        if not (output_dir / DEMO_MARKER).is_file():
            raise MediagenError(f"--output-dir {given} is not empty and was not made by mediagen demo (no "
                                f"{DEMO_MARKER} file in it); name a new folder or empty this one",
                                code="unsafe_output_dir")
        shutil.rmtree(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / DEMO_MARKER).write_text("made by `mediagen demo`: the next run with this --output-dir replaces "
                                          "this folder\n", encoding="utf-8")
    return output_dir


def demo(*, job_files: list[Path] | None, output_dir: Path, real_api: bool = False,
         processing_seconds: float = 2.0, timeout: float = 300.0, template_path: Path | None = None,
         out: IO[str] = sys.stdout, faults: str | None = None) -> int:
    """``mediagen demo``: the sample jobs through the whole pipeline; outputs copied to ``output_dir``.

    ``faults``: AWS-side faults (``MEDIAGEN_LOCAL_FAULTS`` syntax; ``None`` reads that variable).

    Returns: 0 when every job SUCCEEDED, 1 otherwise.
    """
    from mediagen.ops.paths import safe_join, write_file

    files = job_files or sample_job_files()
    jobs = load_job_files(files)
    injector = fault_injector(faults)  # a malformed spec fails before anything starts
    output_dir = prepare_demo_output_dir(output_dir)
    where = real_api_description() if real_api else "the sandbox emulators (Cliprise and Clipia)"
    print(f"mediagen demo: {len(jobs)} job(s) from {', '.join(p.name for p in files)}", file=out)
    template = ensure_template(template_path, out)
    with EmbeddedStack(template_path=template, real_api=real_api, processing_seconds=processing_seconds,
                       log_path=safe_join(output_dir, "logs", "pipeline.jsonl"), faults=injector) as stack:
        if stack.faults is not None:
            print(f"AWS-side faults: {', '.join(f'{r.key}={r.kind}@{r.rate:g}' for r in stack.faults.rules)} "
                  f"(seed {stack.faults.seed})", file=out)
        print(f"local stack up: moto (SQS, DynamoDB, S3, EventBridge, Step Functions running "
              f"{stack.template.path.name if stack.template.path else 'the template'}) + {where}", file=out)
        print("progress:", file=out)
        result = run_jobs(jobs, stack=stack, timeout=timeout, on_progress=ProgressPrinter(out))
        files_written = []
        for record in result.records:
            files_written += stack.download_outputs(record, output_dir)
        write_file(output_dir, "events.json", data=json.dumps(result.events, indent=2))
    print("", file=out)
    print_table(result.records, out)
    print("", file=out)
    if result.injected_faults:
        print(f"AWS-side faults injected: {json.dumps(result.injected_faults, sort_keys=True)}", file=out)
    print(f"{len(result.events)} EventBridge event(s) published -> {output_dir / 'events.json'}", file=out)
    print(f"outputs copied to {output_dir}/ :", file=out)
    for path in sorted(files_written):
        print(f"  {path}", file=out)
    ok = all(r.get("status") == JobStatus.SUCCEEDED for r in result.records)
    print(f"\n{'all jobs SUCCEEDED' if ok else 'some jobs did not succeed'} in {result.wall_seconds:.1f}s", file=out)
    return 0 if ok else 1


def real_api_description() -> str:
    """Which real provider APIs a ``--real`` run talks to, by base URL (no key is shown)."""
    from mediagen.settings import Settings

    settings = Settings.from_env()
    clipia = (f"Clipia at {settings.clipia_base_url}" if settings.clipia_api_key.strip()
              else "Clipia off (no CLIPIA_API_KEY)")
    return f"the real provider APIs: Cliprise at {settings.cliprise_base_url}, {clipia}"


def _spend_counters(stack: EmbeddedStack) -> dict[str, int]:
    """``in_flight`` (jobs holding a slot, every provider) and ``credits_charged`` (today's budget counters)."""
    from mediagen.budget import budget_key, in_flight_key, today
    from mediagen.catalog import PROVIDERS
    from mediagen.local.provisioning import TASK_TABLE
    from mediagen.records import DynamoJobRepository

    jobs = DynamoJobRepository(TASK_TABLE, stack.session.client("dynamodb"))
    return {"in_flight": sum(jobs.counter(in_flight_key(p)) for p in PROVIDERS),
            "credits_charged": sum(jobs.counter(budget_key(p, today())) for p in PROVIDERS)}


def run_local(*, job_files: list[Path], real_api: bool = False, processing_seconds: float = 1.0,
              timeout: float = 600.0, template_path: Path | None = None, out: IO[str] = sys.stdout,
              faults: str | None = None) -> int:
    """``mediagen run-local``: one JSON line per job (its final task record), then a summary line.

    With AWS-side faults (``faults`` in ``MEDIAGEN_LOCAL_FAULTS`` syntax; ``None`` reads that variable), the
    summary also gives ``injected_faults`` (per ``service:Operation`` and kind) and ``fault_seed``.

    Returns: 0 when every job reached a terminal status.
    """
    jobs = load_job_files(job_files)
    injector = fault_injector(faults)  # a malformed spec fails before anything starts
    template = ensure_template(template_path, sys.stderr)
    with EmbeddedStack(template_path=template, real_api=real_api, processing_seconds=processing_seconds,
                       faults=injector) as stack:
        result = run_jobs(jobs, stack=stack, timeout=timeout)
        fault_seed = stack.faults.seed if stack.faults is not None else None
        spend = _spend_counters(stack)
    counts: dict[str, int] = {}
    hidden = INTERNAL_FIELDS | {"request"}
    for record in sorted(result.records, key=lambda r: r["job_id"]):
        record = {k: v for k, v in record.items() if k not in hidden}
        record["generate_calls"] = result.generate_calls.get(record["job_id"], 0)
        record["generate_accepted"] = result.generate_accepted.get(record["job_id"], 0)
        counts[str(record.get("status"))] = counts.get(str(record.get("status")), 0) + 1
        print(json.dumps(record, sort_keys=True), file=out)
    summary: dict[str, Any] = {"jobs": len(result.records), "by_status": counts,
                               "max_generate_accepted_per_job": max(result.generate_accepted.values(), default=0),
                               "wall_seconds": round(result.wall_seconds, 2), **spend}
    if fault_seed is not None:
        summary["injected_faults"] = result.injected_faults
        summary["fault_seed"] = fault_seed
    print(json.dumps({"summary": summary}), file=out)
    return 0


def local_target(stack: EmbeddedStack) -> Any:
    """A :class:`mediagen.ops.submit.Target` on the local stack: its moto clients and resources; each round
    of waiting delivers the local queues (what the event source mappings do in a deployment)."""
    from mediagen.local.stack import OUTPUTS_BUCKET
    from mediagen.ops.submit import Target

    def tick() -> None:
        stack.pump_queue()

    s = stack.session
    return Target(sqs=s.client("sqs"), dynamodb=s.client("dynamodb"), s3=s.client("s3"), queue_url=stack.queue_url,
                  table="mediagen-tasks", bucket=OUTPUTS_BUCKET, api_url=stack.api_url, tick=tick, http=_post)


def submit_local(*, job_files: list[Path], via: str = "queue", output_dir: Path, timeout: float = 300.0,
                 processing_seconds: float = 1.0, template_path: Path | None = None,
                 out: IO[str] | None = None) -> int:
    """``mediagen submit --local``: the same command against the embedded local stack (moto + sandbox), which
    lives for the command, so it always waits for the jobs and downloads their outputs."""
    from mediagen.ops.paths import safe_join
    from mediagen.ops.submit import submit

    out = out or sys.stdout

    jobs = load_job_files(job_files)
    template = ensure_template(template_path, out)
    with EmbeddedStack(template_path=template, processing_seconds=processing_seconds,
                       log_path=safe_join(output_dir, "logs", "pipeline.jsonl")) as stack:
        print(f"local stack up (moto + sandbox emulator); jobs API at {stack.api_url}", file=out, flush=True)
        return submit(jobs, local_target(stack), via=via, wait_for=True, output_dir=output_dir, timeout=timeout,
                      out=out)


#: Where ``mediagen local up`` writes how to reach it (``--local`` commands read it).
DEFAULT_STATE_FILE = Path(".mediagen") / "local.json"


def serve_local(*, state_file: Path = DEFAULT_STATE_FILE, port: int = 0, processing_seconds: float = 2.0,
                template_path: Path | None = None, out: IO[str] | None = None,
                ready: Callable[[dict[str, Any]], None] | None = None) -> int:
    """``mediagen local up``: keep a local stack running for other commands (``--local``) until Ctrl-C/SIGTERM.

    The stack's AWS services are served on loopback by moto's server (``endpoint_url``), the jobs API by the
    local gateway, and its queues are delivered to the handlers continuously (the event source mappings of a
    deployment). ``state_file`` tells ``--local`` commands where all that is; it is removed on exit.
    """
    import signal

    from moto.server import ThreadedMotoServer

    from mediagen.local.stack import INTAKE_BUCKET, OUTPUTS_BUCKET, REGION

    out = out or sys.stdout
    template = ensure_template(template_path, out)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with EmbeddedStack(template_path=template, processing_seconds=processing_seconds,
                       log_path=state_file.parent / "logs" / "pipeline.jsonl") as stack:
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        host, bound = server.get_host_and_port()
        state = {"endpoint_url": f"http://{host}:{bound}", "region": REGION, "api_url": stack.api_url,
                 "queue_url": stack.queue_url, "dlq_url": stack.dlq_url, "table": "mediagen-tasks",
                 "bucket": OUTPUTS_BUCKET, "intake_bucket": INTAKE_BUCKET}
        state_file.parent.mkdir(parents=True, exist_ok=True)
        state_file.write_text(json.dumps(state, indent=2))
        print(f"local stack up: AWS services at {state['endpoint_url']}, jobs API at {state['api_url']}\n"
              f"  state: {state_file} (used by --local); logs: {state_file.parent / 'logs'}\n"
              f"  Ctrl-C to stop", file=out, flush=True)
        if ready is not None:
            ready(state)
        try:
            while True:
                stack.pump_queue()
                time.sleep(0.2)
        except (KeyboardInterrupt, SystemExit):
            print("stopping the local stack", file=out, flush=True)
        finally:
            server.stop()
            state_file.unlink(missing_ok=True)
    return 0


def _stop(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def read_local_state(state_file: Path = DEFAULT_STATE_FILE) -> dict[str, Any]:
    """What ``mediagen local up`` wrote.

    Raises:
        MediagenError: no local stack is running (names the command that starts one).
    """
    try:
        return dict(json.loads(state_file.read_text()))
    except (OSError, ValueError) as exc:
        raise MediagenError(f"no local stack running ({state_file} not found): start one with "
                            "`mediagen local up` in another terminal", code="no_local_stack") from exc


def local_clients(state: dict[str, Any]) -> Any:
    """A boto3 session whose clients talk to the running local stack (``endpoint_url``)."""
    import boto3

    session = boto3.session.Session(aws_access_key_id="local", aws_secret_access_key="local",  # noqa: S106
                                    region_name=state["region"])

    class Clients:
        def client(self, service: str) -> Any:
            return session.client(service, endpoint_url=state["endpoint_url"])

    return Clients()


def served_target(state: dict[str, Any]) -> Any:
    """A :class:`mediagen.ops.submit.Target` on a running ``mediagen local up``."""
    from mediagen.ops.submit import Target

    c = local_clients(state)
    return Target(sqs=c.client("sqs"), dynamodb=c.client("dynamodb"), s3=c.client("s3"), queue_url=state["queue_url"],
                  table=state["table"], bucket=state["bucket"], api_url=state["api_url"], http=_post)


def _post(url: str, body: str) -> tuple[int, Any]:
    """POST a job to the local jobs API (the local gateway checks no SigV4 signature)."""
    import httpx

    response = httpx.post(url, content=body, headers={"content-type": "application/json"}, timeout=30)
    return response.status_code, response.json()
