"""The one helper that builds every pipeline Lambda function, and the per-function specs.

Every function gets the same defaults: Python 3.12 on arm64, X-Ray tracing active, its own log group
with a retention, the Powertools environment, the shared dependencies layer and a small code asset of
its own (see :mod:`mediagen_infra.bundling`). Permissions are added by the caller with ``grant_*``.

When the synth skips bundling (``MEDIAGEN_SKIP_BUNDLING=1``) a function whose ``functions/<name>/app.py``
does not exist yet gets a placeholder code asset and a synth warning, so the template (and the state
machine definition the local stack runs) can be produced before the handler is written. A bundling synth
still fails for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Annotations, Duration, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from .bundling import function_code, handler_exists

RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64

#: Environment shared by every function (Powertools Logger, Tracer and Metrics configuration).
POWERTOOLS_ENVIRONMENT: Mapping[str, str] = {
    "POWERTOOLS_SERVICE_NAME": "mediagen",
    "POWERTOOLS_METRICS_NAMESPACE": "MediaGen",
    "POWERTOOLS_LOG_LEVEL": "INFO",
}


@dataclass(frozen=True)
class FunctionSpec:
    """What differs between the pipeline functions.

    Attributes:
        name: folder under ``functions/`` (the handler is ``functions.<name>.app.lambda_handler``).
        description: shown in the Lambda console.
        timeout_seconds: Lambda timeout, seconds.
        memory_mb: Lambda memory size, MB.
    """

    name: str
    description: str
    timeout_seconds: int
    memory_mb: int

    @property
    def handler(self) -> str:
        """The Lambda handler string."""
        return f"functions.{self.name}.app.lambda_handler"

    @property
    def construct_id(self) -> str:
        """Construct id prefix, e.g. ``Submit``."""
        return self.name.title().replace("_", "")

    @property
    def timeout(self) -> Duration:
        """The timeout as a CDK duration."""
        return Duration.seconds(self.timeout_seconds)


SUBMIT = FunctionSpec("submit", "mediagen: validate a job, submit it to Cliprise, start its execution",
                      timeout_seconds=60, memory_mb=256)
POLL = FunctionSpec("poll", "mediagen: check a provider task's status and schedule the next check",
                    timeout_seconds=30, memory_mb=256)
PERSIST = FunctionSpec("persist", "mediagen: stream a finished job's results into the outputs bucket",
                       timeout_seconds=900, memory_mb=1024)
FINALIZE = FunctionSpec("finalize", "mediagen: record a pipeline failure and publish its event",
                        timeout_seconds=30, memory_mb=256)
CALLBACK = FunctionSpec("callback", "mediagen: take a provider callback and wake the job's execution",
                        timeout_seconds=10, memory_mb=256)
ARM = FunctionSpec("arm", "mediagen: store the execution's task token while it waits for the provider",
                   timeout_seconds=10, memory_mb=256)
#: All pipeline functions, in the order they are created.
FUNCTION_SPECS: tuple[FunctionSpec, ...] = (SUBMIT, POLL, PERSIST, FINALIZE, CALLBACK, ARM)


def build_function(
    scope: Construct,
    spec: FunctionSpec,
    *,
    source_root: Path,
    layers: Sequence[lambda_.ILayerVersion],
    environment: Mapping[str, str],
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
) -> lambda_.Function:
    """Create ``<Name>LogGroup`` and ``<Name>Function`` in ``scope`` for ``spec``.

    Args:
        scope: parent construct.
        spec: the function's name, timeout and memory.
        source_root: repository root holding ``functions/`` and ``shared/mediagen/``.
        layers: layers to attach (the dependencies layer).
        environment: function-specific variables, merged over :data:`POWERTOOLS_ENVIRONMENT`.
        log_retention: retention of the function's log group.

    Raises:
        FileNotFoundError: the function's sources are missing and the stack bundles its assets.
    """
    allow_missing_handler = not Stack.of(scope).bundling_required
    if allow_missing_handler and not handler_exists(source_root, spec.name):
        Annotations.of(scope).add_warning_v2(
            f"mediagen:missing-handler-{spec.name}",
            f"functions/{spec.name}/app.py does not exist: {spec.construct_id}Function has a placeholder "
            "code asset; do not deploy this cloud assembly",
        )
    log_group = logs.LogGroup(scope, f"{spec.construct_id}LogGroup", retention=log_retention)
    return lambda_.Function(
        scope,
        f"{spec.construct_id}Function",
        description=spec.description,
        runtime=RUNTIME,
        architecture=ARCHITECTURE,
        handler=spec.handler,
        code=function_code(source_root, spec.name, allow_missing_handler=allow_missing_handler),
        layers=list(layers),
        timeout=spec.timeout,
        memory_size=spec.memory_mb,
        tracing=lambda_.Tracing.ACTIVE,
        log_group=log_group,
        environment={**POWERTOOLS_ENVIRONMENT, **environment},
    )
