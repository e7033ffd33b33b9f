"""persist: stream the result into S3, record outputs, publish "Job Succeeded" (task Persist)."""

from __future__ import annotations

from mediagen.handlers import step_handler
from mediagen.steps.persist import persist_result

lambda_handler = step_handler(persist_result, "persist")
