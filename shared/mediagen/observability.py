"""Logger, tracer and metrics for the handlers: Powertools, with secret redaction on every log line."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from mediagen.redact import RedactingFilter

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "mediagen"


@lru_cache(maxsize=1)
def get_logger() -> Logger:
    """The service logger (structured JSON), with :class:`RedactingFilter` installed."""
    from aws_lambda_powertools import Logger

    logger = Logger(service=SERVICE)
    logger.addFilter(RedactingFilter())
    return logger


@lru_cache(maxsize=1)
def get_tracer() -> Tracer:
    from aws_lambda_powertools import Tracer

    return Tracer(service=SERVICE)


@lru_cache(maxsize=1)
def get_metrics() -> Metrics:
    from aws_lambda_powertools import Metrics

    return Metrics(service=SERVICE, namespace="MediaGen")
