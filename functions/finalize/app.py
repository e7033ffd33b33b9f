"""finalize: record PIPELINE_FAILED for a step that raised (task RecordFailure), and -- as the backstop rule's
target -- a terminal status for an execution that ended FAILED / TIMED_OUT / ABORTED outside the workflow."""

from __future__ import annotations

from mediagen.handlers import step_handler
from mediagen.steps.finalize import record_failure

lambda_handler = step_handler(record_failure, "finalize")
