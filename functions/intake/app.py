"""intake: the intake queue -> S3 job manifests and media drops become jobs; job events finish manifest reports.

See :mod:`mediagen.intake`. Messages are processed one by one (Powertools batch processor, partial batch
failures): a failed message comes back and is processed again; everything it does is idempotent.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from mediagen.intake import InboxRule, ManifestLedger, S3Objects, handle_message, load_rules
from mediagen.observability import get_logger, get_metrics, get_tracer
from mediagen.settings import check_at_cold_start
from mediagen.wiring import ports

logger = get_logger()
check_at_cold_start("intake")  # a missing variable fails the init, naming it
tracer = get_tracer("intake")
metrics = get_metrics()
processor = BatchProcessor(event_type=EventType.SQS)


@lru_cache(maxsize=1)
def _intake() -> tuple[S3Objects, ManifestLedger, list[InboxRule]]:
    from mediagen import aws

    settings = ports("intake").settings
    return (S3Objects(aws.client("s3")), ManifestLedger(settings.job_table, aws.client("dynamodb")),
            load_rules(settings.inbox_rules))


def record_handler(record: SQSRecord) -> None:
    objects, ledger, rules = _intake()
    for outcome in handle_message(record.body, ports=ports("intake"), objects=objects, ledger=ledger, rules=rules):
        logger.info("intake", **outcome)


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                    context=context)
