"""sweep: every 15 minutes (an EventBridge schedule), put RECEIVED jobs the jobs queue never got back on it.

See :func:`mediagen.intake.sweep_stale_received` and ``infra/mediagen_infra/sweeper.py``. Environment: the
pipeline's ``MEDIAGEN_TASK_TABLE`` and ``MEDIAGEN_JOBS_QUEUE_URL``. The schedule's event is
``{"older_than_seconds": 900}`` (the minimum age of a job re-enqueued; default :data:`OLDER_THAN_SECONDS`).
The role may Scan, GetItem and UpdateItem the job table and SendMessage to the jobs queue, nothing else.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from mediagen.intake import sweep_stale_received
from mediagen.observability import get_logger
from mediagen.settings import check_at_cold_start
from mediagen.wiring import ports

logger = get_logger()
check_at_cold_start("sweep")  # a missing variable fails the init, naming it
#: A RECEIVED job younger than this is left alone (well past a queue send's retries).
OLDER_THAN_SECONDS = 900


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    p = ports("sweep")  # checked: MEDIAGEN_TASK_TABLE and MEDIAGEN_JOBS_QUEUE_URL (mediagen.settings.REQUIRED)
    assert p.jobs_queue is not None
    older_than = float((event or {}).get("older_than_seconds", OLDER_THAN_SECONDS))
    swept = sweep_stale_received(p.jobs, p.jobs_queue, older_than)
    return {"re_enqueued": len(swept)}
