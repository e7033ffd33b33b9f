"""Step ``poll`` (function ``poll``, state ``CheckStatus``): one status check, on the provider port.

:func:`check_status` takes the execution's state (see :mod:`mediagen.steps.submit`) and adds ``phase``
(:class:`~mediagen.steps.phases.Phase`): ``processing`` (wait ``wait_seconds`` and check again), ``ready``
(persist), ``ended`` (a terminal status was recorded).

The schedule (:func:`first_wait_seconds`, :func:`backoff_seconds`):

* **without callbacks** (no callback URL is sent): the bounded backoff of [002:193], ``2 s, 4 s, 8 s, ...``
  capped at ``MEDIAGEN_POLL_MAX_SECONDS`` (60 s);
* **with callbacks** (``MEDIAGEN_CALLBACK_BASE_URL`` set: every job gets a callback / webhook URL): the
  callback ends the wait, so polling is only the safety net for a lost callback. The first status check
  comes near the job's expected completion time (:data:`EXPECTED_SECONDS`, by model, else by modality),
  the backoff grows on from there (:func:`next_wait_seconds`: ``first * 2**n`` capped at 60 s). A job whose
  callback arrives makes one status check (plus persist's own); an early callback costs one more.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from mediagen.errors import StatusConflict
from mediagen.records import TERMINAL, JobStatus, utcnow
from mediagen.settings import Settings
from mediagen.steps.core import (
    Ports,
    _log,
    _terminal,
    provider_port,
)
from mediagen.steps.phases import Phase

#: Expected seconds from submit to the provider's result, by modality: when the first status check of a job
#: with callbacks comes. Our own estimates (neither provider documents generation times; the Cliprise
#: documents only say images take seconds and video minutes): a little above the typical time, so that a
#: delivered callback nearly always comes first, and short enough that a lost callback costs little.
#: Tune per deployment with :data:`MODEL_EXPECTED_SECONDS`.
EXPECTED_SECONDS: dict[str, int] = {"image": 20, "audio": 45, "video": 180}
#: Per-model overrides of :data:`EXPECTED_SECONDS` (model slug -> seconds); empty by default.
MODEL_EXPECTED_SECONDS: dict[str, int] = {}


def expected_seconds(model: str, modality: str) -> int:
    """Expected seconds to the result of a ``model`` job: :data:`MODEL_EXPECTED_SECONDS`, else
    :data:`EXPECTED_SECONDS` of its modality (``video`` when unknown: the longest)."""
    return MODEL_EXPECTED_SECONDS.get(model) or EXPECTED_SECONDS.get(modality) or EXPECTED_SECONDS["video"]


def callbacks_enabled(settings: Settings) -> bool:
    """True when jobs are sent with a callback / webhook URL (``MEDIAGEN_CALLBACK_BASE_URL``)."""
    return bool(settings.callback_base_url)


def first_wait_seconds(record_or_state: Mapping[str, Any], settings: Settings) -> int:
    """Seconds before a job's first status check (the execution input's ``wait_seconds``).

    Args:
        record_or_state: the job record or the execution state (``model``, ``modality``).

    Returns:
        with callbacks, :func:`expected_seconds` of the job (at least ``poll_initial_seconds``, at most the
        modality's deadline); without, ``poll_initial_seconds`` (2 s).
    """
    initial = settings.poll_initial_seconds
    if not callbacks_enabled(settings):
        return initial
    modality = str(record_or_state.get("modality") or "video")
    expected = expected_seconds(str(record_or_state.get("model") or ""), modality)
    return max(1, min(max(initial, expected), settings.deadline_seconds(modality)))


def next_wait_seconds(state: Mapping[str, Any], polls: int, settings: Settings) -> int:
    """Wait after status check number ``polls`` (>= 1), before jitter.

    Without callbacks, :func:`backoff_seconds`. With callbacks the callback is the signal and checks only
    guard against a lost one, so the backoff grows on from the first wait: ``first * factor**polls``, capped at
    ``poll_max_seconds`` (never shorter than :func:`backoff_seconds`). The cap is the worst detection delay
    when a callback is lost.
    """
    wait = backoff_seconds(polls, settings)
    if callbacks_enabled(settings):
        grown = first_wait_seconds(state, settings) * settings.poll_factor ** polls
        wait = max(wait, int(min(grown, settings.poll_max_seconds)))
    return wait


def backoff_seconds(polls: int, settings: Settings) -> int:
    """Wait before status check number ``polls + 1``: ``initial * factor**polls`` capped at the maximum
    ([002:193]: 2 s, 4 s, 8 s, 16 s, … up to e.g. 60 s)."""
    wait = settings.poll_initial_seconds * (settings.poll_factor ** polls)
    return int(min(wait, settings.poll_max_seconds))


def check_status(state: dict[str, Any], ports: Ports) -> dict[str, Any]:
    """One status check for the job in ``state`` (see module docstring for the shape).

    Maps the port's states: ``Queued``/``Running`` -> processing (``queue_position``/``progress`` recorded),
    ``Succeeded`` -> ready, ``Failed`` -> FAILED (the provider's code and message, and ``refunded`` when the
    provider says), ``Cancelled`` -> CANCELLED. An unknown task id or a refused key ends the job
    PIPELINE_FAILED; a transient error (rate limited, unavailable, unexpected answer) is a check that saw
    nothing new. A job that has already ended (cancelled through the API while this execution waited) gets no
    status call: the check ends the execution, after asking a provider that can cancel to do so
    (:func:`cancel_at_provider`); so does a job that passes its deadline here.

    Returns:
        ``state`` with ``phase`` (processing | ready | ended), ``polls`` and ``wait_seconds`` updated.
        When the provider reports failure, or the deadline passes, the terminal status is recorded here
        and ``phase`` is ``ended``.
    """
    from mediagen.provider.errors import ProviderError, ProviderRejected
    from mediagen.provider.port import Cancelled, Failed, Queued, Running, Succeeded

    job_id, polls = state["job_id"], int(state.get("polls", 0)) + 1
    log = _log()
    record = ports.jobs.get(job_id) or {}
    if record.get("status") in TERMINAL:  # e.g. cancelled: no status call
        return _ended_elsewhere(state, ports, polls, record)
    started = utcnow()  # a callback later than this may not have been seen by this check
    try:
        result = provider_port(state, ports).status(state["provider_task_id"])
    except ProviderRejected as exc:  # invalid_taskId / invalid key: asking again will not help
        _terminal(job_id, JobStatus.PIPELINE_FAILED, ports, error=exc.to_dict(), add={"polls": 1},
                  expect={JobStatus.SUBMITTED})
        return {**state, "phase": Phase.ENDED, "polls": polls}
    except ProviderError as exc:  # transient: counts as a check that saw nothing new
        log.warning("status check failed; will check again", job_id=job_id, error_code=exc.code)
        result = None
    if isinstance(result, Failed):
        error: dict[str, Any] = {"code": result.code or "provider_failed", "message": result.message}
        if result.refunded is not None:
            error["refunded"] = result.refunded
        _terminal(job_id, JobStatus.FAILED, ports, expect={JobStatus.SUBMITTED}, add={"polls": 1},
                  error=error, set_fields={"provider_completed_at": utcnow()})
        return {**state, "phase": Phase.ENDED, "polls": polls}
    if isinstance(result, Cancelled):
        error = {"code": "provider_cancelled", "message": "the provider reports the request was cancelled"}
        if result.refunded is not None:
            error["refunded"] = result.refunded
        _terminal(job_id, JobStatus.CANCELLED, ports, expect={JobStatus.SUBMITTED}, add={"polls": 1},
                  error=error, set_fields={"provider_completed_at": utcnow(), "cancelled_from": "SUBMITTED"})
        return {**state, "phase": Phase.ENDED, "polls": polls}
    if isinstance(result, Succeeded):
        try:
            ports.jobs.transition(job_id, None, expect={JobStatus.SUBMITTED}, add={"polls": 1},
                                   set_fields={"provider_completed_at": utcnow(), "last_check_at": started})
        except StatusConflict:  # finished elsewhere (e.g. cancelled): stop
            return _ended_elsewhere(state, ports, polls)
        log.info("provider finished", job_id=job_id, provider_task_id=state["provider_task_id"], polls=polls)
        return {**state, "phase": Phase.READY, "polls": polls}

    now = ports.clock()
    remaining = int(state["deadline"] - now)
    if remaining <= 0:
        ended = _terminal(job_id, JobStatus.TIMED_OUT, ports, expect={JobStatus.SUBMITTED}, add={"polls": 1},
                          error={"code": "deadline_exceeded",
                                 "message": f"the provider did not finish before the {state.get('modality', '')} "
                                            f"deadline (after {polls} status checks)"})
        # Either way mediagen gave up on the request (cancelled meanwhile, or timed out): a provider that can
        # cancel it is asked to, so an unfinished request is not paid for (its result would never be stored).
        return _ended_elsewhere(state, ports, polls, ended)
    fields: dict[str, Any] = {"last_check_at": started}
    if isinstance(result, Queued | Running):
        fields["queue_position"] = result.queue_position
        fields["progress"] = result.progress if isinstance(result, Running) else None
    try:
        ports.jobs.transition(job_id, None, expect={JobStatus.SUBMITTED}, add={"polls": 1}, set_fields=fields)
    except StatusConflict:  # finished elsewhere (e.g. cancelled): stop polling
        return _ended_elsewhere(state, ports, polls)
    wait = next_wait_seconds(state, polls, ports.settings)
    wait -= int(wait * ports.settings.poll_jitter * random.random())
    return {**state, "phase": Phase.PROCESSING, "polls": polls, "wait_seconds": max(1, min(wait, remaining))}


def _ended_elsewhere(state: dict[str, Any], ports: Ports, polls: int,
                    record: dict[str, Any] | None = None) -> dict[str, Any]:
    """The job ended while this execution waited (cancelled, ...): ask its provider to cancel the request if
    that is due (:func:`cancel_at_provider`; ``record`` is the job as just read, else it is read), then end."""
    cancel_at_provider(state, ports, record if record is not None else ports.jobs.get(state["job_id"]) or {})
    return {**state, "phase": Phase.ENDED, "polls": polls}


#: (status, error code) of a job mediagen gave up on while its request may still run at the provider.
_GAVE_UP = {(JobStatus.CANCELLED, "cancelled"), (JobStatus.TIMED_OUT, "deadline_exceeded")}


def cancel_at_provider(state: Mapping[str, Any], ports: Ports, record: Mapping[str, Any]) -> dict[str, Any] | None:
    """``record``, the job as just read, was given up while its request may still run at the provider --
    cancelled by its user while SUBMITTED (error code ``cancelled``), or past its deadline (``TIMED_OUT``,
    ``deadline_exceeded``) -- and the provider was not seen finishing: ask a provider that can cancel
    (:class:`~mediagen.provider.port.SupportsCancel`, Clipia: ``POST /v1/requests/{id}/cancel``, which refunds
    the reserved credits) to cancel the request, once. The adapter retries a rate limited or unavailable answer
    within its own budget (honouring ``Retry-After``).

    Records what the provider answered as ``provider_cancel``: ``{"outcome": "requested"}``,
    ``{"outcome": "not_supported"}`` (no cancel route after all), or ``{"outcome": "failed", "code",
    "message"}`` (the error's code and redacted message; e.g. the request had already finished). Never raises
    for the provider's answer. The budget counter keeps the attempt's charge (a refund is the provider's to
    make and say).

    Returns:
        the outcome, or None when there was nothing to do (not such a job, already asked, or a provider without
        cancel, such as Cliprise).
    """
    from mediagen.provider.errors import CapabilityNotSupported, ProviderError
    from mediagen.provider.port import SupportsCancel
    from mediagen.redact import redact
    from mediagen.steps.cancel import provider_may_refund

    job_id = state["job_id"]
    status = str(record.get("status") or "")
    if ((status, (record.get("error") or {}).get("code")) not in _GAVE_UP or record.get("provider_cancel")
            or (status == JobStatus.CANCELLED and record.get("cancelled_from") != JobStatus.SUBMITTED)
            or not provider_may_refund(dict(record))):
        return None
    log = _log()
    try:
        port = provider_port(state, ports)
        if not isinstance(port, SupportsCancel):
            return None
        port.cancel(state["provider_task_id"])
        outcome: dict[str, Any] = {"outcome": "requested"}
    except CapabilityNotSupported:
        outcome = {"outcome": "not_supported"}
    except ProviderError as exc:
        outcome = {"outcome": "failed", **redact(exc.to_dict())}
    except Exception as exc:  # noqa: BLE001 -- the job has ended already: a failed cancel must not fail it
        outcome = {"outcome": "failed", "code": type(exc).__name__, "message": "the cancel request failed"}
    try:
        ports.jobs.transition(job_id, None, expect={JobStatus(status)}, unless_set="provider_cancel",
                              set_fields={"provider_cancel": outcome})
    except StatusConflict:
        pass  # another invocation recorded its answer first
    except Exception:  # noqa: BLE001 -- the answer is logged below; the job stays as it ended
        log.exception("could not record the provider's answer to the cancel", job_id=job_id)
    log.info("asked the provider to cancel the request of a job given up", job_id=job_id, status=status,
             provider_cancel=outcome)
    return outcome
