"""submit: SQS jobs queue -> validate, record, generate, start the execution (partial batch failures).

The records of a batch are processed concurrently (Powertools' async batch processor, each record's
blocking work on a worker thread), so a batch of 10 takes about as long as its slowest record, not the sum.

A record that raises is reported in ``batchItemFailures`` and comes back later: for ``RetryLater`` (rate
limited, provider unreachable, no free in-flight slot; nothing was spent) its visibility is set to the
configured requeue delay first. Every other outcome, including an invalid job (recorded REJECTED), consumes
the message.
"""

from __future__ import annotations

from typing import Any

import asyncio

from aws_lambda_powertools.utilities.batch import AsyncBatchProcessor, EventType, async_process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from mediagen.observability import get_logger, get_metrics, get_tracer
from mediagen.pipeline import RetryLater, submit_job
from mediagen.wiring import ports, requeue

logger = get_logger()
tracer = get_tracer()
metrics = get_metrics()
processor = AsyncBatchProcessor(event_type=EventType.SQS)


def submit_record(record: SQSRecord) -> None:
    try:
        submit_job(record.body, delivery_id=record.message_id, ports=ports())
    except RetryLater:
        requeue(record.event_source_arn, record.receipt_handle, ports().settings.requeue_delay_seconds)
        raise


async def record_handler(record: SQSRecord) -> None:
    await asyncio.to_thread(submit_record, record)


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    ports()  # build the shared clients once, before the worker threads need them
    return async_process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                          context=context)
