"""submit: SQS jobs queue -> validate, record, generate, start the execution (partial batch failures).

A record that raises (rate limited, provider unreachable, AWS error) is reported in
``batchItemFailures`` and comes back after the visibility timeout; every other outcome, including an
invalid job (recorded REJECTED), consumes the message.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from mediagen.observability import get_logger, get_tracer
from mediagen.pipeline import submit_job
from mediagen.wiring import ports

logger = get_logger()
tracer = get_tracer()
processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    submit_job(record.body, delivery_id=record.message_id, ports=ports())


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                    context=context)
