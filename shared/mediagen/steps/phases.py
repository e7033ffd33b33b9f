"""The ``phase`` a step returns in the execution's state: the state machine's ``Route`` Choice branches on it.

``infra/mediagen_infra/state_machine.py`` builds its Choice conditions from these values, and a test checks
that the synthesized definition uses exactly them.
"""

from __future__ import annotations

from enum import StrEnum


class Phase(StrEnum):
    """Where a job's execution goes next (``$.phase``)."""

    PROCESSING = "processing"  #: the provider is still working: wait ``$.wait_seconds`` and check again
    READY = "ready"            #: the provider finished: persist the result
    ENDED = "ended"            #: a terminal status was recorded (failed, timed out, cancelled): stop
    SUCCEEDED = "succeeded"    #: persist stored the result and recorded SUCCEEDED
    IGNORED = "ignored"        #: an execution-status event without a job (nothing recorded)


#: The phases the ``Route`` Choice state sends somewhere other than ``JobEnded``.
ROUTED: tuple[Phase, ...] = (Phase.PROCESSING, Phase.READY)
