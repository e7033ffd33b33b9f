"""poll: one status check (Step Functions task CheckStatus); returns the next phase and wait."""

from __future__ import annotations

from mediagen.handlers import step_handler
from mediagen.steps.poll import check_status

lambda_handler = step_handler(check_status, "poll")
