"""api: the jobs HTTP API (``POST /jobs``, ``GET /jobs/{job_id}``, ``POST /jobs/{job_id}/cancel``, ``GET /models``,
``GET /models/{model_id}``) -> :mod:`mediagen.api` (Powertools event handler, OpenAPI)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from mediagen.api import handle
from mediagen.observability import get_logger, get_metrics, get_tracer
from mediagen.settings import check_at_cold_start

logger = get_logger()
check_at_cold_start("api")  # a missing variable fails the init, naming it
tracer = get_tracer("api")
metrics = get_metrics()


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event, context)  # the body's safe decoding first (finding 14), then the routes
