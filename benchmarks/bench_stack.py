"""In-process figures: the catalog, and the submit / poll / persist handlers on the local stack.

Everything here runs in the benchmark's own process, each figure next to a baseline taken in the same
process and interleaved with it:

* catalog load (``load_catalog()`` from the packaged file) vs reading and ``json.loads`` of that file;
  the first validation on a fresh catalog (lazy lookups built) and the warm validation of one sample job
  vs ``json.loads`` of the job's SQS body.
* submit: ``functions.submit.app.lambda_handler`` with an SQS event of 10 records vs 1 record, the sandbox
  answering ``POST /generate`` after ``latency`` seconds (``Emulator.generate_latency_seconds``); and the
  same at 0 s latency, which shows the pipeline's own per-record work (moto's CPU, here).
* poll: the handler on a finished sandbox task vs the bare status request it makes
  (``ClipriseClient.status``).
* persist: the handler streaming a result of ``persist_size`` bytes into S3 vs the bare download of the
  same bytes (``ClipriseClient.open_download`` + SHA-256, no S3).

The local stack is moto in-process (DynamoDB, S3, EventBridge, Step Functions) and the emulator on
loopback, so the absolute durations are not Lambda's; the ratios say how much of an invocation is the
pipeline's own work beyond the provider's share.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "shared") not in sys.path:
    sys.path.insert(0, str(REPO / "shared"))

SAMPLE_JOB = REPO / "events" / "jobs" / "04-video-seedance-v1-pro.json"
SUBMIT_JOB = REPO / "events" / "jobs" / "01-text-to-image-nano-banana.json"
SQS_EVENT = REPO / "events" / "aws" / "sqs-submit-job.json"


def median_of(fn: Callable[[], Any], n: int) -> float:
    """Median seconds of ``n`` calls of ``fn``."""
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def paired(fn: Callable[[], Any], base: Callable[[], Any], n: int) -> tuple[float, float]:
    """Medians of ``fn`` and ``base``, calls alternating (so both see the same machine load)."""
    a: list[float] = []
    b: list[float] = []
    for i in range(n):
        for f, out in ((fn, a), (base, b)) if i % 2 == 0 else ((base, b), (fn, a)):
            t0 = time.perf_counter()
            f()
            out.append(time.perf_counter() - t0)
    return statistics.median(a), statistics.median(b)


# ------------------------------------------------------------------------------------------ catalog


@dataclass
class CatalogResult:
    load_s: float
    parse_s: float
    first_validate_s: float
    validate_s: float
    body_parse_s: float
    problems: int


def measure_catalog(*, loads: int = 21, validations: int = 3001) -> CatalogResult:
    import mediagen.catalog.core as core
    from mediagen.catalog import load_catalog
    from mediagen.catalog.core import DATA_FILE

    data_path = Path(core.__file__).parent / DATA_FILE
    load_s, parse_s = paired(load_catalog, lambda: json.loads(data_path.read_text(encoding="utf-8")), loads)
    job = json.loads(SAMPLE_JOB.read_text())
    request = job["request"]
    body = json.dumps(job)

    first = []
    for _ in range(loads):
        catalog = load_catalog()
        t0 = time.perf_counter()
        catalog.validate(request)
        first.append(time.perf_counter() - t0)
    catalog = load_catalog()
    problems = len(catalog.validate(request))
    validate_s, body_parse_s = paired(lambda: catalog.validate(request), lambda: json.loads(body), validations)
    return CatalogResult(load_s, parse_s, statistics.median(first), validate_s, body_parse_s, problems)


# ------------------------------------------------------------------------------------------ local stack


@contextlib.contextmanager
def generate_latency(emulator: Any, seconds: float) -> Iterator[None]:
    """Make the sandbox answer ``POST /generate`` ``seconds`` later (each request on its own server
    thread, so concurrent requests overlap as they would at the provider)."""
    if hasattr(emulator, "generate_latency_seconds"):  # Emulator(generate_latency_seconds=...) exists
        previous = emulator.generate_latency_seconds
        emulator.generate_latency_seconds = seconds
        try:
            yield
        finally:
            emulator.generate_latency_seconds = previous
        return
    original = emulator._generate  # older emulators: wrap the answer with a sleep

    def slow(body: Any, api_key: str) -> Any:
        time.sleep(seconds)
        return original(body, api_key)

    emulator._generate = slow
    try:
        yield
    finally:
        emulator._generate = original


def sqs_event(stack: Any, bodies: list[dict[str, Any]]) -> dict[str, Any]:
    """An SQS event shaped like ``events/aws/sqs-submit-job.json``, one record per body."""
    template = json.loads(SQS_EVENT.read_text())["Records"][0]
    records = []
    for body in bodies:
        record = copy.deepcopy(template)
        record["messageId"] = str(uuid.uuid4())
        record["receiptHandle"] = f"bench-{record['messageId']}"
        record["body"] = json.dumps(body)
        record["eventSourceARN"] = stack.queue_arn
        record["attributes"]["SentTimestamp"] = str(int(time.time() * 1000))
        records.append(record)
    return {"Records": records}


def make_job(job_id: str, prompt_suffix: str = "", base: Path = SUBMIT_JOB) -> dict[str, Any]:
    job = json.loads(base.read_text())
    job["job_id"] = job_id
    job["output"] = {"prefix": "bench/"}
    job.pop("max_credits", None)
    if prompt_suffix:
        job["request"]["input"]["prompt"] += f" {prompt_suffix}"
    return job


def submit(stack: Any, jobs: list[dict[str, Any]]) -> None:
    """Invoke the submit handler with ``jobs`` (batches of 10); every record must succeed."""
    for start in range(0, len(jobs), 10):
        response = stack.invoke("submit", sqs_event(stack, jobs[start:start + 10])) or {}
        failures = response.get("batchItemFailures") or []
        if failures:
            raise RuntimeError(f"submit reported failed records: {failures}")


@dataclass
class BatchTimes:
    one_s: float
    ten_s: float
    rounds: int
    #: CPU seconds this process spent during the 1-record / 10-record invocations (median): the handler,
    #: and moto, the emulator and the started executions, which all share this process (and its GIL)
    one_cpu_s: float = 0.0
    ten_cpu_s: float = 0.0
    #: most generate requests the sandbox held at once during a 10-record batch (latency > 0 only)
    max_in_flight: int = 0


def max_overlap(calls: list[dict[str, Any]], seconds: float) -> int:
    """Most generate requests in flight at once, each taking ``seconds`` from its arrival."""
    from datetime import datetime

    starts = sorted(datetime.fromisoformat(str(c["received_at"]).replace("Z", "+00:00")).timestamp() for c in calls)
    best = 0
    for i, start in enumerate(starts):
        best = max(best, sum(1 for other in starts[: i + 1] if other + seconds > start))
    return best


def submit_rounds_of(stack: Any, run: str, rounds: int, delay: float, log: Any) -> BatchTimes:
    """Median wall time of the submit handler on 1-record and 10-record events, alternating."""
    one: list[float] = []
    ten: list[float] = []
    cpu: dict[int, list[float]] = {1: [], 10: []}
    in_flight = 0
    for r in range(rounds):
        for size in ((1, 10) if r % 2 == 0 else (10, 1)):
            jobs = [make_job(f"bench-{run}-d{int(delay * 1000)}-r{r}-n{size}-{i}") for i in range(size)]
            event = sqs_event(stack, jobs)
            seen = len(stack.emulator.generate_calls())
            c0, t0 = time.process_time(), time.perf_counter()
            response = stack.invoke("submit", event) or {}
            elapsed, cpu_s = time.perf_counter() - t0, time.process_time() - c0
            if size == 10 and delay > 0:
                in_flight = max(in_flight, max_overlap(stack.emulator.generate_calls()[seen:], delay))
            if response.get("batchItemFailures"):
                raise RuntimeError(f"submit failed records: {response['batchItemFailures']}")
            (one if size == 1 else ten).append(elapsed)
            cpu[size].append(cpu_s)
        log(f"    round {r + 1}/{rounds}: 1 record {one[-1]:.2f} s, 10 records {ten[-1]:.2f} s")
    return BatchTimes(statistics.median(one), statistics.median(ten), rounds,
                      statistics.median(cpu[1]), statistics.median(cpu[10]), in_flight)


@dataclass
class StackResult:
    latency_s: float
    submit: BatchTimes | None
    submit_no_latency: BatchTimes | None
    poll_s: float
    status_s: float
    poll_rounds: int
    persist_s: float
    download_s: float
    persist_rounds: int
    persist_bytes: int


def execution_input(stack: Any, job_id: str) -> dict[str, Any]:
    record = stack.record(job_id)
    if not record or record.get("status") != "SUBMITTED" or not record.get("execution_arn"):
        raise RuntimeError(f"job {job_id} was not submitted: {record and record.get('status')} "
                           f"{record and record.get('error')}")
    sfn = stack.session.client("stepfunctions")
    return dict(json.loads(sfn.describe_execution(executionArn=record["execution_arn"])["input"]))


@contextlib.contextmanager
def executions_recorded_only(enabled: bool = True) -> Iterator[None]:
    """Step Functions executions are recorded (RUNNING, with their input) but their interpreter is not
    started: in AWS the state machine runs elsewhere, here it would run in this process and compete with
    the measured handler for the GIL (moto's ASL interpreter is CPU-heavy). Nothing the handlers do is
    changed: ``StartExecution`` answers as usual."""
    if not enabled:
        yield
        return
    from unittest import mock

    from moto.stepfunctions.parser.api import ExecutionStatus
    from moto.stepfunctions.parser.backend.execution import Execution

    def record_only(self: Any) -> None:
        self.exec_status = ExecutionStatus.RUNNING

    with mock.patch.object(Execution, "start", record_only):
        yield


def stop_executions(stack: Any) -> None:
    sfn = stack.session.client("stepfunctions")
    for execution in stack.executions():
        if execution.get("status") == "RUNNING":
            with contextlib.suppress(Exception):
                sfn.stop_execution(executionArn=execution["executionArn"], cause="benchmark done")


def measure_stack(*, latency: float = 0.5, submit_rounds: int = 5, zero_latency_rounds: int = 5,
                  poll_rounds: int = 15,
                  persist_rounds: int = 5, persist_size: str = "16MiB", run_executions: bool = False,
                  log: Any = print) -> StackResult:
    from mediagen.local import EmbeddedStack
    from mediagen.local.runner import ensure_template
    from mediagen.provider import ClipriseClient, Succeeded

    template = ensure_template(None, sys.stderr)
    # Tasks finish at once (processing 0 s); executions are only recorded (or, with run_executions, wait an
    # hour for a callback that is never sent): poll and persist run only when invoked here.
    with executions_recorded_only(not run_executions), \
            EmbeddedStack(template_path=template, processing_seconds=0.0, poll_initial_seconds=3600,
                          poll_max_seconds=3600, send_callbacks=False,
                          extra_env={"MEDIAGEN_READ_TIMEOUT_SECONDS": "30"}) as stack:
        run = uuid.uuid4().hex[:6]
        client = ClipriseClient(stack.api_key, base_url=stack.emulator.base_url)
        try:
            # ---- submit: 1 vs 10 records, generate answering after `latency` s (and after 0 s)
            submit(stack, [make_job(f"bench-{run}-warm")])  # warm-up: catalog, clients, thread pool
            batches = {}
            for delay, rounds in ((latency, submit_rounds), (0.0, zero_latency_rounds)):
                if rounds <= 0:
                    continue
                log(f"  submit: {rounds} rounds of 1 and 10 records, generate latency {delay * 1000:.0f} ms")
                with generate_latency(stack.emulator, delay):
                    batches[delay] = submit_rounds_of(stack, run, rounds, delay, log)
            # ---- poll: repeated on one finished task, alternating with the bare status request
            log(f"  poll: {poll_rounds} invocations on a finished task, alternating with the bare status request")
            poll_job = f"bench-{run}-poll"
            submit(stack, [make_job(poll_job)])
            state = execution_input(stack, poll_job)
            deadline = time.monotonic() + 10
            while not isinstance(client.status(state["provider_task_id"]), Succeeded):
                if time.monotonic() > deadline:
                    raise RuntimeError("the sandbox task did not finish")
                time.sleep(0.05)
            stack.invoke("poll", state)  # warm-up (first use of the status path)
            poll_s, status_s = paired(lambda: stack.invoke("poll", state),
                                      lambda: client.status(state["provider_task_id"]), poll_rounds)

            # ---- persist: one fresh job per invocation, alternating with a bare download of the same size
            log(f"  persist: {persist_rounds} invocations of a {persist_size} result, alternating with a "
                "bare download")
            video = REPO / "events" / "jobs" / "04-video-seedance-v1-pro.json"
            jobs = [make_job(f"bench-{run}-p{i}", f"[sandbox:size={persist_size}]", base=video)
                    for i in range(persist_rounds + 1)]
            submit(stack, jobs)
            states = [execution_input(stack, j["job_id"]) for j in jobs]
            file_url: str | None = None
            for s in states:
                result = client.status(s["provider_task_id"])
                if not isinstance(result, Succeeded):
                    raise RuntimeError(f"sandbox task not finished: {result}")
                file_url = result.file_url
            stack.invoke("persist", states[0])  # warm-up (S3 client, multipart path)
            warm = stack.record(states[0]["job_id"]) or {}
            size = int(warm["outputs"][0]["bytes"])

            def download() -> None:
                digest = hashlib.sha256()
                with client.open_download(states[-1]["provider_task_id"], file_url) as d:
                    for chunk in d.iter_bytes():
                        digest.update(chunk)

            persist: list[float] = []
            bare: list[float] = []
            for i, s in enumerate(states[1:]):
                for name in (("persist", "download") if i % 2 == 0 else ("download", "persist")):
                    t0 = time.perf_counter()
                    if name == "persist":
                        out = stack.invoke("persist", s)
                        if out.get("phase") != "succeeded":
                            raise RuntimeError(f"persist did not succeed: {out}")
                        persist.append(time.perf_counter() - t0)
                    else:
                        download()
                        bare.append(time.perf_counter() - t0)
            return StackResult(latency, batches.get(latency), batches.get(0.0), poll_s, status_s, poll_rounds,
                               statistics.median(persist), statistics.median(bare), persist_rounds, size)
        finally:
            client.close()
            stop_executions(stack)
