"""submit: SQS jobs queue -> validate, record, generate, start the execution (partial batch failures).

The records of a batch are processed concurrently, each on one of :data:`WORKERS` threads (as many as an
SQS batch can hold), so a batch of 10 takes about as long as its slowest record, not the sum. The answer is
SQS's partial batch response (``{"batchItemFailures": [{"itemIdentifier": messageId}]}``, the event source
has ``ReportBatchItemFailures``). It is written here rather than with Powertools' batch utility: that import
(88 modules plus asyncio) cost this function ~130 ms of its cold start, measured as Lambda runs it
(docs/performance.md), for a loop of a few lines.

A job that must wait (provider rate limit, no free in-flight slot) goes back to the queue as a new message
delayed by the requeue delay, so waiting never counts towards the DLQ's receive limit. A record that fails
(provider unreachable, AWS error) is reported in ``batchItemFailures`` and comes back after the requeue
delay; after ``maxReceiveCount`` failures it lands in the DLQ. Every other outcome, including an invalid job
(recorded REJECTED), consumes the message.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mediagen.observability import get_logger, get_metrics, get_tracer
from mediagen.queue import put_back
from mediagen.settings import check_at_cold_start
from mediagen.steps.core import RetryLater
from mediagen.steps.submit import submit_job
from mediagen.wiring import ports

logger = get_logger()
check_at_cold_start("submit")  # a missing variable fails the init, naming it
tracer = get_tracer("submit")
metrics = get_metrics()
#: One thread per record of the largest SQS batch (asyncio's default pool has only cpu_count + 4 threads).
WORKERS = 10
executor = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="submit")


def submit_record(record: dict[str, Any]) -> None:
    """One SQS record (``body``, ``messageId``, ``receiptHandle``). Raises when the message must come back."""
    shared = ports("submit")
    try:
        submit_job(record["body"], delivery_id=record["messageId"], ports=shared)
    except RetryLater as exc:
        assert shared.jobs_queue is not None  # required for submit (MEDIAGEN_JOBS_QUEUE_URL)
        if not put_back(exc, shared.jobs_queue, receipt_handle=record["receiptHandle"],
                        delay_seconds=_delay(exc, shared.settings.requeue_delay_seconds)):
            raise


def _outcome(record: dict[str, Any]) -> str | None:
    """The record's message id when it failed (it comes back after its visibility timeout), else None."""
    try:
        submit_record(record)
    except Exception:  # noqa: BLE001 - any failure means "deliver again"; it is logged with its job
        logger.exception("record failed; the message comes back", message_id=record.get("messageId"))
        return str(record.get("messageId", ""))
    return None


def _delay(exc: RetryLater, default: int) -> int:
    """The job's own delay (the provider's ``Retry-After``) or the deployment's; SQS allows at most 900 s."""
    return min(900, exc.delay_seconds if exc.delay_seconds is not None else default)


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    ports("submit")  # check the settings and build the shared ports once, before the worker threads need them
    records = list(event.get("Records") or [])
    failed = [message_id for message_id in executor.map(_outcome, records) if message_id is not None]
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}
