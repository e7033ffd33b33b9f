"""arm: state ``WaitForResult`` (lambda:invoke.waitForTaskToken) -> store the task token so a provider
callback can end the wait early; the wait's timeout is the backoff interval."""

from __future__ import annotations

from typing import Any

from mediagen.completion import arm_wakeup
from mediagen.observability import get_logger
from mediagen.settings import check_at_cold_start
from mediagen.wiring import completion_ports

logger = get_logger()
check_at_cold_start("arm")  # a missing variable fails the init, naming it


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.append_keys(job_id=event.get("job_id"))
    jobs, waker = completion_ports("arm")
    return arm_wakeup(event, jobs=jobs, waker=waker)
