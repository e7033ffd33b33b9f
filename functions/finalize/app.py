"""finalize: record PIPELINE_FAILED for a step that raised (task RecordFailure)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from mediagen.observability import get_logger, get_metrics, get_tracer
from mediagen.pipeline import record_failure
from mediagen.wiring import ports

logger = get_logger()
tracer = get_tracer()
metrics = get_metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job_id=event.get("job_id"), provider_task_id=event.get("task_id"))
    return record_failure(event, ports())
