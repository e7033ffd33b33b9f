"""The AWS bill of completion detection per 1,000 jobs: mediagen with and without callbacks against a naive
15 s polling loop, for an image mix and a video mix.

    .venv/bin/python scripts/cost_model.py [--counts run.json]

Counts per job come from the pipeline's own schedule (:func:`mediagen.steps.poll.first_wait_seconds` and
:func:`~mediagen.steps.poll.next_wait_seconds`, jitter left out) walked over each job's completion time, and
from the state machine (infra/mediagen_infra/state_machine.py):

  per check cycle: WaitForResult (arm) -> CheckStatus (poll, 1 status call) -> Route    = 3 transitions
  at the end:      Persist (persist, 1 status call) -> JobSucceeded                     = 2 transitions
  per callback:    1 HTTP API request, 1 callback invocation (1 read, 2 writes: the record, the token taken)
  every job:       submit (SQS send/receive/delete, 4 record writes), 1 EventBridge event
  naive loop:      Wait 15 s -> CheckStatus (1 status call, 1 write) -> Route           = 3 transitions

``--measure`` also runs the image mix on the embedded stack (moto + the Cliprise sandbox) with and without
callbacks and prices what it counted. ``--counts`` prices the counts of a real run instead (a JSON object:
``jobs``, ``status_calls``, ``transitions``, ``invocations`` {function: n}, optionally ``ddb_writes``,
``ddb_reads``, ``http_requests``, ``sqs_requests``, ``events``). The local stack's counts of a job whose
callback arrives are what tests/integration/test_completion_local.py asserts (one poll, <= 2 status calls).

Prices: AWS public price list, us-east-1, list prices read 2026-12-07 (Step Functions, Lambda arm64, DynamoDB
on-demand, SQS standard, EventBridge custom events, API Gateway HTTP API; free tiers left out). Lambda memory
sizes: infra/mediagen_infra/lambdas.py. Billed durations: assumed (below).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "infra"))

from mediagen.settings import Settings  # noqa: E402
from mediagen.steps.poll import first_wait_seconds, next_wait_seconds  # noqa: E402
from mediagen_infra.lambdas import FUNCTION_SPECS  # noqa: E402

# AWS public price list, us-east-1, read 2026-12-07 (USD per unit).
PRICE_SFN_TRANSITION = 0.025 / 1000          # Step Functions Standard, per state transition
PRICE_LAMBDA_REQUEST = 0.20 / 1_000_000      # Lambda, per invocation
PRICE_LAMBDA_GB_S_ARM = 0.0000133334         # Lambda arm64, per GB-second
PRICE_DDB_WRITE = 0.625 / 1_000_000          # DynamoDB on-demand, per write request unit
PRICE_DDB_READ = 0.125 / 1_000_000           # DynamoDB on-demand, per read request unit
PRICE_SQS_REQUEST = 0.40 / 1_000_000         # SQS standard queue, per request
PRICE_EVENT = 1.00 / 1_000_000               # EventBridge, per custom event published
PRICE_HTTP_API_REQUEST = 1.00 / 1_000_000    # API Gateway HTTP API, per request (callbacks)

#: Memory of each function, GB (the construct's sizes).
MEMORY_GB = {spec.name: spec.memory_mb / 1024 for spec in FUNCTION_SPECS}
#: Assumed billed duration per invocation, seconds (Lambda bills per ms; persist copies the result).
BILLED_SECONDS = {"submit": 0.4, "poll": 0.15, "arm": 0.03, "callback": 0.05, "finalize": 0.05,
                  "persist_image": 1.0, "persist_video": 8.0}
#: Write request units per record write (a job record is ~2-3 KB: 1 WRU per KB) and read units per
#: strongly consistent read (< 4 KB).
WRU_PER_WRITE, RRU_PER_READ = 3, 1

#: Completion times at the provider, seconds (equal shares): our assumption of a typical mix.
MIXES = {"image": [7, 11, 16, 24, 43], "video": [70, 130, 200, 330, 610]}
#: The callback arrives this long after completion (the sandbox's is immediate; real ones take ~1 s).
CALLBACK_LATENCY = 1.0
NAIVE_INTERVAL = 15


@dataclass
class Counts:
    """What one job (or a run, divided by ``jobs``) costs in requests."""

    jobs: float = 1
    status_calls: float = 0
    transitions: float = 0
    invocations: Counter[str] = field(default_factory=Counter)
    ddb_writes: float = 0
    ddb_reads: float = 0
    http_requests: float = 0
    sqs_requests: float = 0
    events: float = 0
    detection_delay: float = 0.0

    def add(self, other: Counts) -> None:
        for name in ("status_calls", "transitions", "ddb_writes", "ddb_reads", "http_requests", "sqs_requests",
                     "events", "detection_delay"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.invocations.update(other.invocations)

    def bill_per_1000(self, modality: str) -> dict[str, float]:
        """USD per 1,000 jobs, by service."""
        per_job = 1000 / self.jobs
        gb_s = sum(n * MEMORY_GB[fn] * BILLED_SECONDS[f"persist_{modality}" if fn == "persist" else fn]
                   for fn, n in self.invocations.items())
        return {
            "Step Functions": self.transitions * PRICE_SFN_TRANSITION * per_job,
            "Lambda": (sum(self.invocations.values()) * PRICE_LAMBDA_REQUEST + gb_s * PRICE_LAMBDA_GB_S_ARM) * per_job,
            "DynamoDB": (self.ddb_writes * WRU_PER_WRITE * PRICE_DDB_WRITE
                         + self.ddb_reads * RRU_PER_READ * PRICE_DDB_READ) * per_job,
            "SQS + EventBridge + HTTP API": (self.sqs_requests * PRICE_SQS_REQUEST + self.events * PRICE_EVENT
                                             + self.http_requests * PRICE_HTTP_API_REQUEST) * per_job,
        }


def _common() -> Counts:
    """What every job costs whatever the completion detection: submit, persist, the terminal event."""
    return Counts(status_calls=1, transitions=2, invocations=Counter({"submit": 1, "persist": 1}),
                  ddb_writes=4 + 3, ddb_reads=0, sqs_requests=3, events=1)


def mediagen(duration: float, settings: Settings) -> Counts:
    """One job on mediagen's schedule; with callbacks when ``settings`` has a callback URL."""
    counts = _common()
    callback_at = duration + CALLBACK_LATENCY if settings.callback_base_url else None
    t, polls = 0.0, 0
    job = {"modality": "image" if duration < 60 else "video"}
    wait = first_wait_seconds(job, settings)
    while True:
        counts.transitions += 3
        counts.invocations.update({"arm": 1, "poll": 1})
        counts.status_calls += 1
        counts.ddb_writes += 2  # arm stores the token, poll records the check
        counts.ddb_reads += 1  # poll reads the job first (an ended job gets no status call)
        if callback_at is not None and t < callback_at <= t + wait:  # the callback ends this wait
            counts.invocations.update({"callback": 1})
            counts.http_requests += 1
            counts.ddb_reads += 1
            counts.ddb_writes += 2
            counts.detection_delay = CALLBACK_LATENCY
            return counts
        t += wait
        polls += 1
        if t >= duration:
            counts.detection_delay = t - duration
            return counts
        wait = next_wait_seconds(job, polls, settings)


def naive(duration: float, interval: int = NAIVE_INTERVAL) -> Counts:
    counts = _common()
    cycles = -(-int(duration) // interval)
    counts.transitions += 3 * cycles
    counts.invocations.update({"poll": cycles})
    counts.status_calls += cycles
    counts.ddb_writes += cycles
    counts.detection_delay = cycles * interval - duration
    return counts


def mix(durations: list[int], one: object) -> Counts:
    total = Counts(jobs=len(durations))
    for duration in durations:
        total.add(one(duration))  # type: ignore[operator]
    return total


def rows() -> list[tuple[str, str, Counts]]:
    plain = Settings(MEDIAGEN_POLL_JITTER=0)
    hooked = Settings(MEDIAGEN_POLL_JITTER=0, MEDIAGEN_CALLBACK_BASE_URL="https://hooks.example.com/callbacks")
    out = []
    for modality, durations in MIXES.items():
        out.append((modality, f"naive {NAIVE_INTERVAL} s polling loop", mix(durations, naive)))
        out.append((modality, "mediagen, no callbacks (2 s, 4 s, ... 60 s)",
                    mix(durations, lambda d: mediagen(d, plain))))
        out.append((modality, "mediagen, with callbacks (first check at the expected time)",
                    mix(durations, lambda d: mediagen(d, hooked))))
    return out


def table(items: list[tuple[str, str, Counts]]) -> str:
    lines = ["| mix | scenario | status calls | transitions | Lambda invocations | DynamoDB WRU / RRU | "
             "mean detection delay | Step Functions | Lambda | DynamoDB | SQS+EB+API | **total / 1,000 jobs** |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for modality, name, c in items:
        per = 1 / c.jobs
        bill = c.bill_per_1000(modality)
        lines.append(
            f"| {modality} | {name} | {c.status_calls * per:.1f} | {c.transitions * per:.1f} | "
            f"{sum(c.invocations.values()) * per:.1f} | {c.ddb_writes * WRU_PER_WRITE * per:.0f} / "
            f"{c.ddb_reads * RRU_PER_READ * per:.1f} | {_delay(c.detection_delay * per)} | "
            + " | ".join(f"${v:.3f}" for v in bill.values()) + f" | **${sum(bill.values()):.3f}** |")
    return "\n".join(lines)


def _delay(seconds: float) -> str:
    return "—" if math.isnan(seconds) else f"{seconds:.1f} s"


def from_run(path: Path) -> tuple[str, str, Counts]:
    doc = json.loads(path.read_text())
    counts = Counts(jobs=doc["jobs"], status_calls=doc["status_calls"], transitions=doc["transitions"],
                    invocations=Counter(doc["invocations"]), ddb_writes=doc.get("ddb_writes", 0),
                    ddb_reads=doc.get("ddb_reads", 0), http_requests=doc.get("http_requests", 0),
                    sqs_requests=doc.get("sqs_requests", 0), events=doc.get("events", 0),
                    detection_delay=math.nan)
    return doc.get("modality", "image"), f"run {path.name}", counts


#: State -> function (infra/mediagen_infra/state_machine.py).
TASK_FUNCTIONS = {"WaitForResult": "arm", "CheckStatus": "poll", "Persist": "persist", "RecordFailure": "finalize"}


def measure(template: Path | None) -> list[tuple[str, str, Counts]]:
    """Run the image mix on the embedded stack (moto + the Cliprise sandbox, the default schedule: 2 s first,
    60 s cap), with and without callbacks, and count what happened: status calls (the sandbox), state
    transitions and task invocations (each execution's history), callbacks (the HTTP API stand-in). Record
    writes and reads follow from those counts as in :func:`mediagen`."""
    from mediagen.local import EmbeddedStack

    out = []
    with EmbeddedStack(template_path=template, processing_seconds=1.0, poll_initial_seconds=2,
                       poll_max_seconds=60, extra_env={"MEDIAGEN_POLL_JITTER": "0"}) as stack:
        sfn = stack.session.client("stepfunctions")
        for label, env in (("measured, no callbacks", {"MEDIAGEN_CALLBACK_BASE_URL": ""}),
                           ("measured, with callbacks", {})):
            with stack.configured(**env):
                tag = "cb" if not env else "nocb"
                known = {e["executionArn"] for e in sfn.list_executions(
                    stateMachineArn=stack.state_machine_arn)["executions"]}
                callbacks_before = len(stack.callbacks.received)
                jobs = [{"job_id": f"cost-{tag}-{d}", "request": {"model": "nano-banana", "input": {
                    "prompt": f"a kite [sandbox:slow={d}]", "output_format": "png"}}} for d in MIXES["image"]]
                stack.send_jobs(jobs)
                stack.run_until_done(timeout=300)
                counts = Counts(jobs=len(jobs), sqs_requests=3 * len(jobs), events=len(jobs),
                                detection_delay=math.nan)  # not measured here: see the completion tests
                counts.invocations["submit"] = len(jobs)
                for execution in sfn.list_executions(stateMachineArn=stack.state_machine_arn)["executions"]:
                    if execution["executionArn"] in known:
                        continue
                    history = sfn.get_execution_history(executionArn=execution["executionArn"],
                                                        maxResults=1000)["events"]
                    for event in history:
                        if event["type"].endswith("StateEntered"):
                            counts.transitions += 1
                            name = event["stateEnteredEventDetails"]["name"]
                            if name in TASK_FUNCTIONS:
                                counts.invocations[TASK_FUNCTIONS[name]] += 1
                for job in jobs:
                    record = stack.record(job["job_id"]) or {}
                    counts.status_calls += stack.emulator.status_calls(record.get("provider_task_id", ""))
                callbacks = len(stack.callbacks.received) - callbacks_before
                counts.invocations["callback"] += callbacks
                counts.http_requests = callbacks
                counts.ddb_reads = callbacks + counts.invocations["poll"]  # each check reads the job first
                counts.ddb_writes = 7 * len(jobs) + 2 * counts.invocations["poll"] + 2 * callbacks
                out.append(("image", label, counts))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", type=Path, action="append", default=[],
                        help="price the counts of a run (JSON, see the module docstring); repeatable")
    parser.add_argument("--measure", action="store_true",
                        help="also run the image mix on the embedded stack and price what it counted")
    parser.add_argument("--template", type=Path, default=None,
                        help="the synthesized template for --measure (default: cdk.out)")
    args = parser.parse_args()
    items = [from_run(p) for p in args.counts] if args.counts else rows()
    if args.measure:
        items += measure(args.template)
    print(table(items))


if __name__ == "__main__":
    main()
