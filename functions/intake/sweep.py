"""sweep: a scheduled function that puts RECEIVED jobs the jobs queue never got back on it.

See :func:`mediagen.intake.sweep_stale_received`. Environment: the pipeline's ``MEDIAGEN_TASK_TABLE`` and
``MEDIAGEN_JOBS_QUEUE_URL``, plus ``MEDIAGEN_SWEEP_OLDER_THAN_SECONDS`` (default 900). Needs
``dynamodb:Scan`` and ``dynamodb:UpdateItem`` on the task table and ``sqs:SendMessage`` on the jobs queue.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from mediagen.intake import DynamoReceivedRecords, sweep_stale_received
from mediagen.observability import get_logger
from mediagen.wiring import ports

logger = get_logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    import boto3

    p = ports()
    if p.jobs_queue is None:
        raise RuntimeError("MEDIAGEN_JOBS_QUEUE_URL is not set")
    older_than = float(os.environ.get("MEDIAGEN_SWEEP_OLDER_THAN_SECONDS", "900"))
    swept = sweep_stale_received(DynamoReceivedRecords(p.settings.task_table, boto3.client("dynamodb")),
                                 p.jobs_queue, older_than)
    return {"re_enqueued": len(swept)}
