"""submit: SQS jobs queue -> validate, record, generate, start the execution (partial batch failures).

The records of a batch are processed concurrently (Powertools' async batch processor, each record's
blocking work on one of :data:`WORKERS` threads: as many as an SQS batch can hold), so a batch of 10 takes
about as long as its slowest record, not the sum.

A job that must wait (provider rate limit, no free in-flight slot) goes back to the queue as a new message
delayed by the requeue delay, so waiting never counts towards the DLQ's receive limit. A record that fails
(provider unreachable, AWS error) is reported in ``batchItemFailures`` and comes back after the requeue
delay; after ``maxReceiveCount`` failures it lands in the DLQ. Every other outcome, including an invalid job
(recorded REJECTED), consumes the message.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.utilities.batch import AsyncBatchProcessor, EventType, async_process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from mediagen.observability import get_logger, get_metrics, get_tracer
from mediagen.queue import put_back
from mediagen.steps.core import RetryLater
from mediagen.steps.submit import submit_job
from mediagen.wiring import ports

logger = get_logger()
tracer = get_tracer()
metrics = get_metrics()
processor = AsyncBatchProcessor(event_type=EventType.SQS)
#: One thread per record of the largest SQS batch (asyncio's default pool has only cpu_count + 4 threads).
WORKERS = 10
executor = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="submit")


def submit_record(record: SQSRecord) -> None:
    shared = ports("submit")
    try:
        submit_job(record.body, delivery_id=record.message_id, ports=shared)
    except RetryLater as exc:
        assert shared.jobs_queue is not None  # required for submit (MEDIAGEN_JOBS_QUEUE_URL)
        if not put_back(exc, shared.jobs_queue, receipt_handle=record.receipt_handle,
                        delay_seconds=_delay(exc, shared.settings.requeue_delay_seconds)):
            raise


def _delay(exc: RetryLater, default: int) -> int:
    """The job's own delay (the provider's ``Retry-After``) or the deployment's; SQS allows at most 900 s."""
    return min(900, exc.delay_seconds if exc.delay_seconds is not None else default)


async def record_handler(record: SQSRecord) -> None:
    await asyncio.get_running_loop().run_in_executor(executor, submit_record, record)


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    ports("submit")  # check the settings and build the shared ports once, before the worker threads need them
    return async_process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                          context=context)
