"""The one decorator stack every state-machine step handler uses (poll, persist, finalize).

A step handler is ``step_handler(logic)``: structured logs with the job id and provider task id on every
line, X-Ray tracing, metrics flushed at the end, and ``logic(state, ports)`` in between.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mediagen.observability import get_logger, get_metrics, get_tracer
from mediagen.settings import check_at_cold_start
from mediagen.wiring import ports

if TYPE_CHECKING:
    from mediagen.steps.core import Ports

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def step_handler(logic: Callable[[dict[str, Any], Ports], dict[str, Any]], function: str) -> Handler:
    """A Lambda handler for a Step Functions task whose payload is the job's state (see mediagen.steps);
    ``function`` names the Lambda function (its required settings are checked on first use)."""
    check_at_cold_start(function)
    logger, tracer, metrics = get_logger(), get_tracer(function), get_metrics()

    @logger.inject_lambda_context
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        # Both absent for an EventBridge execution-status event.
        logger.append_keys(job_id=event.get("job_id"), provider_task_id=event.get("provider_task_id"))
        return logic(event, ports(function))

    return lambda_handler
