"""Issue 15: does one intake batch of the largest manifests finish inside the intake function's timeout?

One intake-queue batch (``INTAKE_BATCH_SIZE`` messages, processed one after the other, as Powertools' batch
processor does) of S3 notifications, each for a manifest of ``MAX_MANIFEST_LINES`` valid lines, run through
:func:`mediagen.intake.handle_message` -- the real code: catalog checks, ``accept_job``, size-batched sends,
the manifest ledger, the report. Every AWS call goes to an in-memory fake that sleeps ``--latency-ms`` first
(DynamoDB put/get/update, SQS SendMessageBatch, S3 get/put, EventBridge put), so the wall time is what the
call pattern costs at that latency.

CPU: a Lambda function gets CPU in proportion to its memory (one full vCPU at 1,769 MB), so the CPU seconds
measured here are scaled by ``1769 / --memory-mb`` and added (no overlap assumed) for the Lambda estimate.

    .venv/bin/python benchmarks/intake_batch.py                      # 10 x 2,000 lines, 20 ms per call
    .venv/bin/python benchmarks/intake_batch.py --workers 1          # one line at a time (before issue 15)
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "shared"))

from mediagen import intake  # noqa: E402
from mediagen.settings import Settings  # noqa: E402
from mediagen.steps.core import Ports  # noqa: E402
from mediagen.storage import StoredObject  # noqa: E402

#: The intake function's timeout and memory (``mediagen_infra.lambdas.INTAKE``) and its queue's batch size
#: (``mediagen_infra.intake.INTAKE_BATCH_SIZE``); not imported, so the benchmark needs no CDK or Node.
TIMEOUT_S, MEMORY_MB, INTAKE_BATCH_SIZE = 300, 512, 10
#: Memory at which a Lambda function has one full vCPU.
FULL_VCPU_MB = 1769


class Calls:
    """Sleeps ``latency`` per call and counts calls (thread-safe)."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            self.count += 1
        time.sleep(self.latency)


class SlowTasks:
    def __init__(self, call: Calls) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.call = call
        self._lock = threading.Lock()

    def create(self, record: dict[str, Any]) -> dict[str, Any] | None:
        self.call()
        with self._lock:
            if record["job_id"] in self.items:
                return dict(self.items[record["job_id"]])
            self.items[record["job_id"]] = {"transitions": {record["status"]: "now"}, **record}
            return None

    def get(self, job_id: str) -> dict[str, Any] | None:
        self.call()
        item = self.items.get(job_id)
        return dict(item) if item else None

    def transition(self, job_id: str, to: Any, **kwargs: Any) -> dict[str, Any]:
        self.call()
        return dict(self.items[job_id])

    def take(self, job_id: str, attribute: str) -> Any:
        self.call()
        return None


class SlowLedger:
    def __init__(self, call: Calls) -> None:
        self.call = call

    def open(self, manifest_id: str, *, job_ids: list[str], report: dict[str, Any]) -> None:
        self.call()

    def join(self, job_id: str, manifest_id: str) -> None:
        self.call()

    def manifests_of(self, job_id: str) -> list[str]:
        self.call()
        return []

    def mark_done(self, manifest_id: str, job_ids: list[str]) -> dict[str, Any] | None:
        self.call()
        return None


class SlowQueue:
    def __init__(self, call: Calls) -> None:
        self.call = call
        self.sent = 0

    def send(self, documents: list[dict[str, Any]]) -> None:
        assert len(documents) <= intake.SQS_BATCH_MAX_ENTRIES
        assert sum(intake.message_bytes(d) for d in documents) <= intake.SQS_BATCH_MAX_BYTES
        self.call()
        self.sent += len(documents)


class SlowOutputs:
    def __init__(self, call: Calls) -> None:
        self.call = call

    def put_json(self, key: str, document: dict[str, Any]) -> StoredObject:
        self.call()
        return StoredObject(uri=f"s3://outputs/{key}", key=key, bytes=0, content_type="application/json", sha256="")


class SlowEvents:
    def __init__(self, call: Calls) -> None:
        self.call = call

    def publish_job_event(self, record: dict[str, Any]) -> None:
        self.call()


class SlowObjects:
    def __init__(self, call: Calls, body: bytes) -> None:
        self.call, self.body = call, body

    def read(self, bucket: str, key: str, version: str | None, max_bytes: int) -> bytes:
        self.call()
        return self.body

    def user_metadata(self, bucket: str, key: str, version: str | None) -> dict[str, str]:
        self.call()
        return {}


def manifest(lines: int) -> bytes:
    docs = ({"request": {"model": "nano-banana", "input": {"prompt": f"a red bicycle, take {i}",
                                                             "output_format": "png", "image_size": "1:1"}}}
            for i in range(lines))
    return "\n".join(json.dumps(d) for d in docs).encode()


def run(manifests: int, lines: int, latency_ms: float, workers: int, memory_mb: int) -> dict[str, Any]:
    intake.MANIFEST_WORKERS = workers
    call = Calls(latency_ms / 1000)
    queue = SlowQueue(call)
    ports = Ports(settings=Settings(MEDIAGEN_OUTPUTS_BUCKET="outputs"), jobs=SlowTasks(call),  # type: ignore[arg-type]
                  events=SlowEvents(call), provider=lambda: None, outputs=SlowOutputs(call),  # type: ignore[arg-type,return-value]
                  jobs_queue=queue)
    objects, ledger = SlowObjects(call, manifest(lines)), SlowLedger(call)
    messages = [json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "s3": {
        "bucket": {"name": "intake"}, "object": {"key": f"jobs/bench/m{n}.jsonl", "eTag": f"e{n}"}}}]})
        for n in range(manifests)]
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for body in messages:  # one batch: records one after the other
        intake.handle_message(body, ports=ports, objects=objects, ledger=ledger, rules=[])  # type: ignore[arg-type]
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    lambda_estimate = wall + cpu * max(0.0, FULL_VCPU_MB / memory_mb - 1)
    assert queue.sent == manifests * lines
    return {"manifests": manifests, "lines": lines, "latency_ms": latency_ms, "workers": workers,
            "aws_calls": call.count, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "lambda_estimate_s": round(lambda_estimate, 1), "timeout_s": TIMEOUT_S,
            "fits": lambda_estimate < TIMEOUT_S}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifests", type=int, default=INTAKE_BATCH_SIZE, help="messages in the batch")
    parser.add_argument("--lines", type=int, default=intake.MAX_MANIFEST_LINES, help="lines per manifest")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="added to every AWS call")
    parser.add_argument("--workers", type=int, default=intake.MANIFEST_WORKERS, help="lines handled at once")
    parser.add_argument("--memory-mb", type=int, default=MEMORY_MB, help="the intake function's memory")
    args = parser.parse_args()
    import logging

    logging.disable(logging.INFO)  # one log line per manifest is not what is measured
    result = run(args.manifests, args.lines, args.latency_ms, args.workers, args.memory_mb)
    print(json.dumps(result))
    print(f"intake batch: {result['manifests']} manifests x {result['lines']} lines, {result['latency_ms']:g} ms per "
          f"AWS call ({result['aws_calls']} calls), {result['workers']} workers: {result['wall_s']} s wall, "
          f"{result['cpu_s']} s CPU -> ~{result['lambda_estimate_s']} s at {args.memory_mb} MB "
          f"(timeout {TIMEOUT_S} s): {'fits' if result['fits'] else 'DOES NOT FIT'}")


if __name__ == "__main__":
    main()
