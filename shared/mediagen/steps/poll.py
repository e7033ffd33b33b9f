"""Step ``poll`` (function ``poll``, state ``CheckStatus``): one status check.

:func:`check_status` takes the execution's state (see :mod:`mediagen.steps.submit`) and adds ``phase``
(:class:`~mediagen.steps.phases.Phase`): ``processing`` (wait ``wait_seconds`` and check again), ``ready``
(persist), ``ended`` (a terminal status was recorded).
"""

from __future__ import annotations

import random
from typing import Any

from mediagen.errors import StatusConflict
from mediagen.records import JobStatus, utcnow
from mediagen.settings import Settings
from mediagen.steps.core import (
    Ports,
    _log,
    _terminal,
)
from mediagen.steps.phases import Phase


def backoff_seconds(polls: int, settings: Settings) -> int:
    """Wait before status check number ``polls + 1``: ``initial * factor**polls`` capped at the maximum
    ([002:193]: 2 s, 4 s, 8 s, 16 s, … up to e.g. 60 s)."""
    wait = settings.poll_initial_seconds * (settings.poll_factor ** polls)
    return int(min(wait, settings.poll_max_seconds))


def check_status(state: dict[str, Any], ports: Ports) -> dict[str, Any]:
    """One status check for the job in ``state`` (see module docstring for the shape).

    Returns:
        ``state`` with ``phase`` (processing | ready | ended), ``polls`` and ``wait_seconds`` updated.
        When the provider reports failure, or the deadline passes, the terminal status is recorded here
        and ``phase`` is ``ended``.
    """
    from mediagen.provider import Failed, ProviderError, ProviderRejected, Succeeded

    job_id, polls = state["job_id"], int(state.get("polls", 0)) + 1
    log = _log()
    try:
        result = ports.provider().status(state["provider_task_id"])
    except ProviderRejected as exc:  # invalid_taskId / invalid key: asking again will not help
        _terminal(job_id, JobStatus.PIPELINE_FAILED, ports, error=exc.to_dict(), add={"polls": 1},
                  expect={JobStatus.SUBMITTED})
        return {**state, "phase": Phase.ENDED, "polls": polls}
    except ProviderError as exc:  # transient: counts as a check that saw nothing new
        log.warning("status check failed; will check again", job_id=job_id, error_code=exc.code)
        result = None
    if isinstance(result, Failed):
        _terminal(job_id, JobStatus.FAILED, ports, expect={JobStatus.SUBMITTED}, add={"polls": 1},
                  error={"code": result.code or "provider_failed", "message": result.message},
                  set_fields={"provider_completed_at": utcnow()})
        return {**state, "phase": Phase.ENDED, "polls": polls}
    if isinstance(result, Succeeded):
        try:
            ports.jobs.transition(job_id, None, expect={JobStatus.SUBMITTED}, add={"polls": 1},
                                   set_fields={"provider_completed_at": utcnow()})
        except StatusConflict:
            return {**state, "phase": Phase.ENDED, "polls": polls}
        log.info("provider finished", job_id=job_id, provider_task_id=state["provider_task_id"], polls=polls)
        return {**state, "phase": Phase.READY, "polls": polls}

    now = ports.clock()
    remaining = int(state["deadline"] - now)
    if remaining <= 0:
        _terminal(job_id, JobStatus.TIMED_OUT, ports, expect={JobStatus.SUBMITTED}, add={"polls": 1}, error={
            "code": "deadline_exceeded",
            "message": f"the provider did not finish before the {state.get('modality', '')} deadline "
                       f"(after {polls} status checks)"})
        return {**state, "phase": Phase.ENDED, "polls": polls}
    try:
        # A wake-up that arrived before this check is used up by it.
        ports.jobs.transition(job_id, None, expect={JobStatus.SUBMITTED}, add={"polls": 1}, remove=("wake_pending",))
    except StatusConflict:  # finished elsewhere (e.g. cancelled): stop polling
        return {**state, "phase": Phase.ENDED, "polls": polls}
    wait = backoff_seconds(polls, ports.settings)
    wait -= int(wait * ports.settings.poll_jitter * random.random())
    return {**state, "phase": Phase.PROCESSING, "polls": polls, "wait_seconds": max(1, min(wait, remaining))}

