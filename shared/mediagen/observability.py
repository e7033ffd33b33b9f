"""Logger, tracer and metrics for the handlers: Powertools, with secret redaction on every log line."""

from __future__ import annotations

import os
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Protocol

from mediagen.redact import RedactingFilter

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "mediagen"
#: The functions that call a provider over HTTP (httpx): only their tracer patches httpx, so the others never
#: import it at cold start.
PROVIDER_CALLERS = frozenset({"submit", "poll", "persist"})


def service_name() -> str:
    """``POWERTOOLS_SERVICE_NAME`` (the construct sets ``mediagen-<stage>``), else ``mediagen``: logs, traces and
    metrics of one stage carry the same name."""
    return os.environ.get("POWERTOOLS_SERVICE_NAME", SERVICE)


@lru_cache(maxsize=1)
def get_logger() -> Logger:
    """The service logger (structured JSON), with :class:`RedactingFilter` installed."""
    from aws_lambda_powertools import Logger

    logger = Logger(service=service_name())
    logger.addFilter(RedactingFilter())
    return logger


@cache
def get_tracer(function: str = "") -> Tracer:
    """The X-Ray tracer of ``function``: it patches botocore, and httpx only in :data:`PROVIDER_CALLERS`
    (patching every library X-Ray knows, or httpx where no provider is called, costs cold-start time for
    nothing: X-Ray's httpx patch imports httpx)."""
    from aws_lambda_powertools import Tracer

    modules = ("botocore", "httpx") if function in PROVIDER_CALLERS else ("botocore",)
    return Tracer(service=service_name(), patch_modules=modules)


@lru_cache(maxsize=1)
def get_metrics() -> Metrics:
    import warnings

    from aws_lambda_powertools import Metrics

    # A step that had nothing to count (most polls) is normal, not worth a warning on every invocation.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    # Namespace and service come from POWERTOOLS_METRICS_NAMESPACE / POWERTOOLS_SERVICE_NAME (set per stage by
    # the CDK construct), defaulting to MediaGen / mediagen.
    return Metrics(service=service_name(),
                   namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "MediaGen"))


class MetricsSink(Protocol):
    """Port for business metrics (namespace ``MediaGen``)."""

    def count(self, name: str, value: float = 1, *, unit: str = "Count",
              dimensions: dict[str, str] | None = None) -> None: ...


class NullMetrics:
    """Discards metrics (tests, local tools)."""

    def count(self, name: str, value: float = 1, *, unit: str = "Count",
              dimensions: dict[str, str] | None = None) -> None:
        return None


class PowertoolsMetrics:
    """Metrics as CloudWatch EMF through Powertools; flushed by ``@metrics.log_metrics`` on the handler."""

    def count(self, name: str, value: float = 1, *, unit: str = "Count",
              dimensions: dict[str, str] | None = None) -> None:
        from aws_lambda_powertools.metrics import MetricUnit, single_metric

        if os.environ.get("POWERTOOLS_METRICS_DISABLED", "").lower() == "true":
            return
        if dimensions:
            namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "MediaGen")
            with single_metric(name=name, unit=MetricUnit(unit), value=value, namespace=namespace) as metric:
                for key, val in dimensions.items():
                    metric.add_dimension(name=key, value=val)
            return
        get_metrics().add_metric(name=name, unit=MetricUnit(unit), value=value)
