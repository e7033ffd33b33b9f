"""Running job files through the local stack: ``mediagen demo`` and ``mediagen run-local``."""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from mediagen.errors import MediagenError
from mediagen.local.stack import LocalStack, default_template_path, repo_root
from mediagen.records import INTERNAL_FIELDS, JobStatus


def load_job_files(paths: list[Path]) -> list[dict[str, Any] | str]:
    """Jobs from files: a ``.json`` file holds one job (or a list of jobs); a ``.jsonl`` file one per line.

    A line or file that is not valid JSON is kept as raw text, so it travels the pipeline and is recorded
    REJECTED like any malformed message would be.

    Raises:
        MediagenError: a file cannot be read.
    """
    jobs: list[dict[str, Any] | str] = []
    for path in paths:
        try:
            text = path.read_text()
        except OSError as exc:
            raise MediagenError(f"cannot read {path}: {exc.strerror}", code="unreadable") from exc
        if path.suffix == ".jsonl":
            jobs.extend(_decode(line) for line in text.splitlines() if line.strip())
            continue
        doc = _decode(text)
        jobs.extend(doc if isinstance(doc, list) else [doc])
    return jobs


def _decode(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


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
                    detail += f"  {r['error'].get('code')}: {str(r['error'].get('message'))[:80]}"
                print(f"  [{elapsed:6.1f}s] {r['job_id']:<32} {state[0]:<16} {detail}", file=self.out, flush=True)


@dataclass
class RunResult:
    records: list[dict[str, Any]]
    events: list[dict[str, Any]]
    wall_seconds: float
    #: job id -> generate requests the emulator received for it (whatever it answered)
    generate_calls: dict[str, int]
    #: job id -> generate requests that created a provider task (the ones that cost money)
    generate_accepted: dict[str, int]


def generate_calls_by_job(emulator: Any) -> tuple[dict[str, int], dict[str, int]]:
    """Count the emulator's generate requests per job id (found from the ``callBackUrl`` token each request
    carries): ``(received, accepted)``."""
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


def run_jobs(jobs: list[dict[str, Any] | str], *, stack: LocalStack, timeout: float = 300.0,
             on_progress: Callable[[list[dict[str, Any]], float], None] | None = None) -> RunResult:
    """Send ``jobs`` to the local stack's queue and run them to terminal states."""
    start = time.monotonic()
    stack.send_jobs(jobs)
    records = stack.run_until_done(timeout=timeout, on_progress=on_progress)
    received, accepted = generate_calls_by_job(stack.emulator) if stack.emulator is not None else ({}, {})
    return RunResult(records=records, events=stack.events(), wall_seconds=time.monotonic() - start,
                     generate_calls=received, generate_accepted=accepted)


def _seconds(record: dict[str, Any]) -> float:
    from datetime import datetime

    try:
        start = datetime.fromisoformat(record["created_at"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(record["updated_at"].replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return 0.0
    return (end - start).total_seconds()


def print_table(records: list[dict[str, Any]], out: IO[str]) -> None:
    """The demo's summary: job, model, status, polls, seconds, S3 key, bytes."""
    rows = [("JOB", "MODEL", "STATUS", "POLLS", "SECONDS", "S3 KEY", "BYTES")]
    for r in sorted(records, key=lambda r: r["job_id"]):
        outputs = r.get("outputs") or [{}]
        rows.append((r["job_id"], r.get("model", ""), str(r.get("status")), str(r.get("polls", 0)),
                     f"{_seconds(r):.1f}", outputs[0].get("key", "-"), str(outputs[0].get("bytes", "-"))))
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


def demo(*, job_files: list[Path] | None, output_dir: Path, real_api: bool = False,
         processing_seconds: float = 2.0, timeout: float = 300.0, template_path: Path | None = None,
         out: IO[str] = sys.stdout) -> int:
    """``mediagen demo``: the sample jobs through the whole pipeline; outputs copied to ``output_dir``.

    Returns: 0 when every job SUCCEEDED, 1 otherwise.
    """
    files = job_files or sample_job_files()
    jobs = load_job_files(files)
    if output_dir.exists():
        shutil.rmtree(output_dir)
    output_dir.mkdir(parents=True)
    where = "the real Cliprise API" if real_api else "the sandbox emulator"
    print(f"mediagen demo: {len(jobs)} job(s) from {', '.join(p.name for p in files)}", file=out)
    template = ensure_template(template_path, out)
    with LocalStack(template_path=template, real_api=real_api, processing_seconds=processing_seconds,
                    log_path=output_dir / "logs" / "pipeline.jsonl") as stack:
        print(f"local stack up: moto (SQS, DynamoDB, S3, EventBridge, Step Functions running "
              f"{stack.template.path.name if stack.template.path else 'the template'}) + {where}", file=out)
        print("progress:", file=out)
        result = run_jobs(jobs, stack=stack, timeout=timeout, on_progress=ProgressPrinter(out))
        files_written = []
        for record in result.records:
            files_written += stack.download_outputs(record, output_dir)
        (output_dir / "events.json").write_text(json.dumps(result.events, indent=2))
    print("", file=out)
    print_table(result.records, out)
    print("", file=out)
    print(f"{len(result.events)} EventBridge event(s) published -> {output_dir / 'events.json'}", file=out)
    print(f"outputs copied to {output_dir}/ :", file=out)
    for path in sorted(files_written):
        print(f"  {path}", file=out)
    ok = all(r.get("status") == JobStatus.SUCCEEDED for r in result.records)
    print(f"\n{'all jobs SUCCEEDED' if ok else 'some jobs did not succeed'} in {result.wall_seconds:.1f}s", file=out)
    return 0 if ok else 1


def run_local(*, job_files: list[Path], real_api: bool = False, processing_seconds: float = 1.0,
              timeout: float = 600.0, template_path: Path | None = None, out: IO[str] = sys.stdout) -> int:
    """``mediagen run-local``: one JSON line per job (its final task record), then a summary line.

    Returns: 0 when every job reached a terminal status.
    """
    jobs = load_job_files(job_files)
    template = ensure_template(template_path, sys.stderr)
    with LocalStack(template_path=template, real_api=real_api, processing_seconds=processing_seconds) as stack:
        result = run_jobs(jobs, stack=stack, timeout=timeout)
    counts: dict[str, int] = {}
    hidden = INTERNAL_FIELDS | {"request"}
    for record in sorted(result.records, key=lambda r: r["job_id"]):
        record = {k: v for k, v in record.items() if k not in hidden}
        record["generate_calls"] = result.generate_calls.get(record["job_id"], 0)
        record["generate_accepted"] = result.generate_accepted.get(record["job_id"], 0)
        counts[str(record.get("status"))] = counts.get(str(record.get("status")), 0) + 1
        print(json.dumps(record, sort_keys=True), file=out)
    print(json.dumps({"summary": {"jobs": len(result.records), "by_status": counts,
                                  "max_generate_accepted_per_job": max(result.generate_accepted.values(), default=0),
                                  "wall_seconds": round(result.wall_seconds, 2)}}), file=out)
    return 0


def local_target(stack: LocalStack) -> Any:
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
    from mediagen.ops.submit import submit

    out = out or sys.stdout

    jobs = load_job_files(job_files)
    template = ensure_template(template_path, out)
    with LocalStack(template_path=template, processing_seconds=processing_seconds,
                    log_path=output_dir / "logs" / "pipeline.jsonl") as stack:
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
    with LocalStack(template_path=template, processing_seconds=processing_seconds,
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
