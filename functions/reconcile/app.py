"""reconcile: every 5 minutes (EventBridge schedule), publish the events of terminal jobs left unpublished, end
or restart the jobs no delivery will come back to, and recompute the spend counters from the job records (see
mediagen.steps.reconcile)."""

from __future__ import annotations

from typing import Any

from mediagen.handlers import step_handler
from mediagen.steps.core import Ports
from mediagen.steps.reconcile import reconcile


def _run(event: dict[str, Any], ports: Ports) -> dict[str, Any]:
    return reconcile(ports)


lambda_handler = step_handler(_run, "reconcile")
