"""The one helper that builds every pipeline Lambda function, and the per-function specs.

Every function gets the same defaults: Python 3.12 on arm64 (or x86_64), X-Ray tracing active, its own
log group with a retention, **its own execution role** (no AWS managed policy: the role may write to its
own log group and nothing else until the caller adds ``grant_*``), the Powertools environment, the shared
dependencies layer and a small code asset of its own (see :mod:`mediagen_infra.bundling`).

The findings every function shares are answered here, once, with their reasons: the X-Ray statement
(``Resource: *``, see :data:`XRAY_REASON`), the runtime pin (cdk-nag ``AwsSolutions-L1``) and checkov's
Lambda checks (:data:`LAMBDA_CHECKOV_SKIPS`).

When the synth skips bundling (``MEDIAGEN_SKIP_BUNDLING=1``) a function whose ``functions/<name>/app.py``
does not exist yet gets a placeholder code asset and a synth warning, so the template (and the state
machine definition the local stack runs) can be produced before the handler is written. A bundling synth
still fails for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from aws_cdk import Annotations, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from .bundling import find_lambda_python, function_code, handler_exists, no_lambda_python_warning
from .compliance import acknowledge, skip_checkov, skip_log_group_checks
from .monitoring import Telemetry

RUNTIME = lambda_.Runtime.PYTHON_3_12
#: Stacks (``node.addr``) already warned that no CPython 3.12 compiles their assets.
_WARNED_NO_PYTHON: set[str] = set()
ARCHITECTURE = lambda_.Architecture.ARM_64

#: Environment shared by every function (Powertools Logger, Tracer and Metrics configuration); the service name
#: and metrics namespace come from the pipeline's :class:`~mediagen_infra.monitoring.Telemetry` (these are the
#: defaults).
POWERTOOLS_ENVIRONMENT: Mapping[str, str] = {
    **Telemetry().environment,
    "POWERTOOLS_LOG_LEVEL": "INFO",
    # Responses can carry provider URLs and job data: never copy them into trace metadata.
    "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
}

#: Provider base URL variables (aliases of ``mediagen.settings.Settings``) by construct prop name; unset means the
#: provider's default (the sandbox and tests point them elsewhere).
PROVIDER_BASE_URL_ENVIRONMENT: Mapping[str, str] = {
    "cliprise_base_url": "MEDIAGEN_CLIPRISE_BASE_URL",
    "clipia_base_url": "MEDIAGEN_CLIPIA_BASE_URL",
}


def provider_environment(base_urls: Mapping[str, str], extra_environment: Mapping[str, str] | None = None,
                         ) -> dict[str, str]:
    """The provider base URL variables of the non-empty props in ``base_urls`` (prop name -> URL).

    Raises:
        ValueError: an unknown prop name; a URL that is not ``https://host[/path]`` (the API key travels in its
            requests) or carries a query or fragment; or a variable ``extra_environment`` also sets.
    """
    environment = {}
    for prop, url in base_urls.items():
        if prop not in PROVIDER_BASE_URL_ENVIRONMENT:
            raise ValueError(f"unknown provider base URL {prop!r}: use {', '.join(PROVIDER_BASE_URL_ENVIRONMENT)}")
        if not url:
            continue
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment or parts.username:
            raise ValueError(f"{prop} {url!r}: expected https://host[/path] (no query, fragment or credentials)")
        name = PROVIDER_BASE_URL_ENVIRONMENT[prop]
        if extra_environment and name in extra_environment:
            raise ValueError(f"{prop} and extra_environment both set {name}: keep one")
        environment[name] = url.rstrip("/")
    return environment


#: Why the X-Ray statement of every execution role has ``Resource: *`` (cdk-nag ``AwsSolutions-IAM5``).
XRAY_REASON = (
    "Active X-Ray tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level "
    "permissions (https://docs.aws.amazon.com/xray/latest/devguide/security_iam_service-with-iam.html), so "
    "the statement CDK adds for Tracing.ACTIVE must name Resource '*'. No other action has a '*' resource."
)
#: Why the runtime is not the newest Python Lambda offers (cdk-nag ``AwsSolutions-L1``).
RUNTIME_REASON = (
    "Pinned to python3.12 on purpose: the dependencies layer is resolved for CPython 3.12 wheels and the assets are "
    "byte-compiled for 3.12 (lambda_python.py "
    "LAMBDA_PYTHON_VERSION) and the code is tested on 3.11/3.12; python3.12 is a supported Lambda runtime. "
    "RUNTIME and LAMBDA_PYTHON_VERSION are bumped together, after the test suite passes on the new version."
)
#: checkov's Lambda checks that do not apply to these functions, with the reason (id -> comment).
LAMBDA_CHECKOV_SKIPS: Mapping[str, str] = {
    "CKV_AWS_116": "Only invoked synchronously (SQS event source mappings, whose queues have their own DLQs; "
                   "Step Functions lambda:invoke with Catch -> RecordFailure; API Gateway proxy) or by an "
                   "EventBridge rule with retries: a function DLQ only receives failed asynchronous invocations.",
    "CKV_AWS_117": "Talks only to public AWS service endpoints and the Cliprise API over HTTPS; no private "
                   "resource is involved, so a VPC would only add NAT gateways and cost.",
    "CKV_AWS_115": "Concurrency is bounded by the callers: the SQS event sources (submit_max_concurrency), one "
                   "Step Functions execution per job, the HTTP APIs' stage throttling; reserved concurrency "
                   "would carve capacity out of the account pool.",
    "CKV_AWS_173": "The environment holds resource names/ARNs and tuning numbers only, no secret (the API key "
                   "is read from Secrets Manager at run time); Lambda encrypts it at rest with an AWS managed key.",
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
# 45 s: longer than the Cliprise client's connect (5 s) + read (30 s) timeouts, so a slow status answer ends
# as "check again later", never as a Lambda timeout (see docs/performance.md).
POLL = FunctionSpec("poll", "mediagen: check a provider task's status and schedule the next check",
                    timeout_seconds=45, memory_mb=256)
PERSIST = FunctionSpec("persist", "mediagen: stream a finished job's results into the outputs bucket",
                       timeout_seconds=900, memory_mb=1024)
FINALIZE = FunctionSpec("finalize", "mediagen: record a pipeline failure and publish its event",
                        timeout_seconds=30, memory_mb=256)
CALLBACK = FunctionSpec("callback", "mediagen: take a provider callback and wake the job's execution",
                        timeout_seconds=10, memory_mb=256)
ARM = FunctionSpec("arm", "mediagen: store the execution's task token while it waits for the provider",
                   timeout_seconds=10, memory_mb=256)
# 29 s: API Gateway ends an integration after 30 s; the function must answer (or fail) before that.
API = FunctionSpec("api", "mediagen: the jobs HTTP API (submit, status, cancel, models, OpenAPI)",
                   timeout_seconds=29, memory_mb=512)
INTAKE = FunctionSpec("intake", "mediagen: turn files dropped in the intake bucket into jobs; report manifests",
                      timeout_seconds=300, memory_mb=512)
RECONCILE = FunctionSpec("reconcile", "mediagen: publish unpublished job events; recompute the spend counters",
                         timeout_seconds=300, memory_mb=512)
#: All pipeline functions, in the order they are created.
FUNCTION_SPECS: tuple[FunctionSpec, ...] = (SUBMIT, POLL, PERSIST, FINALIZE, CALLBACK, ARM, API, INTAKE, RECONCILE)


def build_function(
    scope: Construct,
    spec: FunctionSpec,
    *,
    source_root: Path,
    layers: Sequence[lambda_.ILayerVersion],
    environment: Mapping[str, str],
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
    log_removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    architecture: lambda_.Architecture = ARCHITECTURE,
    telemetry: Telemetry | None = None,
) -> lambda_.Function:
    """Create ``<Name>LogGroup``, ``<Name>Role`` and ``<Name>Function`` in ``scope`` for ``spec``.

    Args:
        scope: parent construct.
        spec: the function's name, timeout and memory.
        source_root: repository root holding ``functions/`` and ``shared/mediagen/``.
        layers: layers to attach (the dependencies layer, built for the same architecture).
        environment: function-specific variables, merged over :data:`POWERTOOLS_ENVIRONMENT` and ``telemetry``'s.
        log_retention: retention of the function's log group.
        log_removal_policy: what happens to the log group when the stack is deleted.
        architecture: the instruction set the function runs on.
        telemetry: the metrics namespace and service name (``POWERTOOLS_METRICS_NAMESPACE``,
            ``POWERTOOLS_SERVICE_NAME``); default ``MediaGen`` / ``mediagen``.

    Raises:
        FileNotFoundError: the function's sources are missing and the stack bundles its assets.
    """
    stack = Stack.of(scope)
    allow_missing_handler = not stack.bundling_required
    if stack.bundling_required and stack.node.addr not in _WARNED_NO_PYTHON and find_lambda_python() is None:
        _WARNED_NO_PYTHON.add(stack.node.addr)
        Annotations.of(stack).add_warning_v2("mediagen:no-python-3.12", no_lambda_python_warning())
    if allow_missing_handler and not handler_exists(source_root, spec.name):
        Annotations.of(scope).add_warning_v2(
            f"mediagen:missing-handler-{spec.name}",
            f"functions/{spec.name}/app.py does not exist: {spec.construct_id}Function has a placeholder "
            "code asset; do not deploy this cloud assembly",
        )
    log_group = logs.LogGroup(
        scope, f"{spec.construct_id}LogGroup", retention=log_retention, removal_policy=log_removal_policy
    )
    skip_log_group_checks(log_group)
    # One role per function, without AWSLambdaBasicExecutionRole (which may create log groups anywhere):
    # the function may write to its own log group only; the caller adds what the handler calls.
    role = iam.Role(
        scope,
        f"{spec.construct_id}Role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=f"mediagen {spec.name} function: its log group plus the grants its handler uses",
    )
    log_group.grant(role, "logs:CreateLogStream", "logs:PutLogEvents")
    acknowledge(role, "AwsSolutions-IAM5[Resource::*]", XRAY_REASON)
    function = lambda_.Function(
        scope,
        f"{spec.construct_id}Function",
        description=spec.description,
        runtime=RUNTIME,
        architecture=architecture,
        role=role,
        handler=spec.handler,
        code=function_code(source_root, spec.name, allow_missing_handler=allow_missing_handler),
        layers=list(layers),
        timeout=spec.timeout,
        memory_size=spec.memory_mb,
        tracing=lambda_.Tracing.ACTIVE,
        log_group=log_group,
        environment={**POWERTOOLS_ENVIRONMENT, **(telemetry or Telemetry()).environment, **environment},
    )
    acknowledge(function, "AwsSolutions-L1", RUNTIME_REASON)
    for check_id, comment in LAMBDA_CHECKOV_SKIPS.items():
        skip_checkov(function, check_id, comment)
    return function
