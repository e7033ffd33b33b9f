"""``MediaGenPipeline``: the whole job pipeline as one reusable construct.

Resources (no physical names are set, so several stages coexist in one account):

* SQS jobs queue + dead-letter queue (SSE, TLS only); ``submit`` consumes the queue.
* DynamoDB task table (key ``job_id``), S3 outputs bucket, custom EventBridge bus.
* Secrets Manager secret holding the Cliprise API key (created with a placeholder to replace).
* Lambda functions ``submit``, ``poll``, ``persist``, ``finalize``, ``callback``, ``arm`` and their
  dependencies layer.
* The Standard state machine of :mod:`mediagen_infra.state_machine` (callback or timeout, then poll).
* The callback HTTP API of :mod:`mediagen_infra.callback_api` (``POST /callbacks/{token}`` -> ``callback``).

Function environment variables are the aliases of ``mediagen.settings.Settings``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy, SecretValue
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from .bundling import REPO_ROOT, dependencies_layer_code
from .callback_api import CallbackApi
from .lambdas import (
    ARCHITECTURE,
    ARM,
    CALLBACK,
    FINALIZE,
    PERSIST,
    POLL,
    RUNTIME,
    SUBMIT,
    FunctionSpec,
    build_function,
)
from .state_machine import JobWorkflow

#: The initial value of the API key secret. Replace it after the first deploy::
#:
#:     aws secretsmanager put-secret-value --secret-id <ApiKeySecretArn> --secret-string "$CLIPRISE_API_KEY"
#:
#: Keep this constant stable: CloudFormation rewrites the secret only when this value changes, so a
#: changed placeholder would overwrite the real key on the next deploy.
API_KEY_PLACEHOLDER = "REPLACE_ME_WITH_THE_CLIPRISE_API_KEY"

# Environment variable names: aliases of mediagen.settings.Settings fields.
ENV_TASK_TABLE = "MEDIAGEN_TASK_TABLE"
ENV_OUTPUTS_BUCKET = "MEDIAGEN_OUTPUTS_BUCKET"
ENV_EVENT_BUS = "MEDIAGEN_EVENT_BUS"
ENV_STATE_MACHINE_ARN = "MEDIAGEN_STATE_MACHINE_ARN"
ENV_API_KEY_SECRET_ID = "MEDIAGEN_API_KEY_SECRET_ID"  # noqa: S105 -- a variable name, not a secret
ENV_CALLBACK_BASE_URL = "MEDIAGEN_CALLBACK_BASE_URL"

#: AWS recommends a queue visibility timeout of at least six times the consumer's timeout.
VISIBILITY_TIMEOUT_FACTOR = 6


@dataclass(frozen=True)
class MediaGenPipelineProps:
    """Options of :class:`MediaGenPipeline`; every field has a production default.

    Attributes:
        source_root: repository root holding ``functions/``, ``shared/mediagen/`` and ``pyproject.toml``.
        log_retention: retention of every log group (functions and state machine).
        max_receive_count: receives of a job message before it moves to the dead-letter queue.
        dlq_retention: how long dead-lettered messages are kept.
        submit_batch_size: SQS messages per ``submit`` invocation (1-10).
        submit_max_concurrency: cap on concurrent ``submit`` invocations from the queue (2-1000), e.g. to
            stay under the provider's rate limits; ``None``: no cap.
        execution_timeout: state machine backstop; no execution runs longer.
        extra_environment: more variables for every function (e.g. ``MEDIAGEN_POLL_MAX_SECONDS``).
        callback_throttle_burst: burst limit of the callback API's stage (requests).
        callback_throttle_rate: steady rate limit of the callback API's stage (requests per second).
    """

    source_root: Path = REPO_ROOT
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
    max_receive_count: int = 5
    dlq_retention: Duration = field(default_factory=lambda: Duration.days(14))
    submit_batch_size: int = 10
    submit_max_concurrency: int | None = None
    execution_timeout: Duration = field(default_factory=lambda: Duration.hours(3))
    extra_environment: Mapping[str, str] = field(default_factory=dict)
    callback_throttle_burst: int = 100
    callback_throttle_rate: int = 50

    def __post_init__(self) -> None:
        """Reject values AWS would reject at deploy time.

        Raises:
            ValueError: a value is out of range (the message names the field).
        """
        if self.max_receive_count < 1:
            raise ValueError("max_receive_count must be >= 1")
        if not 1 <= self.submit_batch_size <= 10:
            raise ValueError("submit_batch_size must be between 1 and 10")
        if self.submit_max_concurrency is not None and not 2 <= self.submit_max_concurrency <= 1000:
            raise ValueError("submit_max_concurrency must be between 2 and 1000")
        if self.callback_throttle_burst < 0 or self.callback_throttle_rate < 0:
            raise ValueError("callback_throttle_burst and callback_throttle_rate must be >= 0")


class MediaGenPipeline(Construct):
    """Queue → submit → state machine (wait for callback | timeout → poll → persist | finalize) → S3 +
    EventBridge; provider callbacks → HTTP API → callback → wake the execution.

    Attributes:
        jobs_queue, dead_letter_queue, task_table, outputs_bucket, event_bus, api_key_secret,
        dependencies_layer, state_machine, callback_api: the resources.
        functions: the Lambda functions by name (``submit``, ``poll``, ``persist``, ``finalize``,
            ``callback``, ``arm``).
    """

    def __init__(
        self, scope: Construct, construct_id: str, props: MediaGenPipelineProps | None = None
    ) -> None:
        super().__init__(scope, construct_id)
        props = props or MediaGenPipelineProps()
        self.props = props

        self.dead_letter_queue = sqs.Queue(
            self,
            "JobsDlq",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=props.dlq_retention,
        )
        self.jobs_queue = sqs.Queue(
            self,
            "JobsQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(VISIBILITY_TIMEOUT_FACTOR * SUBMIT.timeout_seconds),
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=props.max_receive_count,
                                                  queue=self.dead_letter_queue),
        )

        self.task_table = dynamodb.Table(
            self,
            "TaskTable",
            partition_key=dynamodb.Attribute(name="job_id", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            removal_policy=RemovalPolicy.RETAIN,
        )

        self.outputs_bucket = s3.Bucket(
            self,
            "OutputsBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            versioned=True,
            removal_policy=RemovalPolicy.RETAIN,
            # persist uploads results in parts: do not pay for parts of uploads that never completed.
            lifecycle_rules=[s3.LifecycleRule(abort_incomplete_multipart_upload_after=Duration.days(7))],
        )

        # No event_bus_name: CDK derives a unique name from the construct path (includes the stack name).
        self.event_bus = events.EventBus(self, "EventBus", description="mediagen job events")

        self.api_key_secret = secretsmanager.Secret(
            self,
            "ApiKeySecret",
            description="Cliprise Business API key for mediagen: replace the placeholder with the real key",
            secret_string_value=SecretValue.unsafe_plain_text(API_KEY_PLACEHOLDER),
        )

        layer_code, requirements = dependencies_layer_code(props.source_root)
        self.dependencies_layer = lambda_.LayerVersion(
            self,
            "DependenciesLayer",
            code=layer_code,
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description=("mediagen runtime dependencies: " + ", ".join(requirements))[:256],
        )

        common_env = {
            ENV_TASK_TABLE: self.task_table.table_name,
            ENV_EVENT_BUS: self.event_bus.event_bus_name,
            **props.extra_environment,
        }
        secret_env = {ENV_API_KEY_SECRET_ID: self.api_key_secret.secret_arn}

        poll = self._function(POLL, {**common_env, **secret_env})
        persist = self._function(
            PERSIST, {**common_env, **secret_env, ENV_OUTPUTS_BUCKET: self.outputs_bucket.bucket_name}
        )
        finalize = self._function(FINALIZE, common_env)
        # callback and arm must answer fast and never see the API key or the outputs.
        callback = self._function(CALLBACK, common_env)
        arm = self._function(ARM, {ENV_TASK_TABLE: self.task_table.table_name, **props.extra_environment})

        self.workflow = JobWorkflow(
            self,
            "Workflow",
            arm=arm,
            poll=poll,
            persist=persist,
            finalize=finalize,
            timeout=props.execution_timeout,
            log_retention=props.log_retention,
        )
        self.state_machine = self.workflow.state_machine

        self.callback_api = CallbackApi(
            self,
            "CallbackApi",
            callback=callback,
            throttle_burst_limit=props.callback_throttle_burst,
            throttle_rate_limit=props.callback_throttle_rate,
            log_retention=props.log_retention,
        )

        submit = self._function(
            SUBMIT,
            {
                **common_env,
                **secret_env,
                ENV_STATE_MACHINE_ARN: self.state_machine.state_machine_arn,
                ENV_CALLBACK_BASE_URL: self.callback_api.callback_url_base,
            },
        )
        submit.add_event_source(
            event_sources.SqsEventSource(
                self.jobs_queue,
                batch_size=props.submit_batch_size,
                report_batch_item_failures=True,
                max_concurrency=props.submit_max_concurrency,
            )
        )

        self.functions: dict[str, lambda_.Function] = {
            "submit": submit, "poll": poll, "persist": persist, "finalize": finalize,
            "callback": callback, "arm": arm,
        }
        self._grant_least_privilege()

    def _function(self, spec: FunctionSpec, environment: Mapping[str, str]) -> lambda_.Function:
        return build_function(
            self,
            spec,
            source_root=self.props.source_root,
            layers=[self.dependencies_layer],
            environment=environment,
            log_retention=self.props.log_retention,
        )

    def _grant_least_privilege(self) -> None:
        """Give each function exactly what its handler calls."""
        for function in self.functions.values():
            self.task_table.grant_read_write_data(function)
        # Every function that is given the bus name publishes to it (all but arm).
        for name in ("submit", "poll", "persist", "finalize", "callback"):
            self.event_bus.grant_put_events_to(self.functions[name])
        for name in ("submit", "poll", "persist"):
            self.api_key_secret.grant_read(self.functions[name])
        persist = self.functions["persist"]
        # PutObject (+ multipart, tagging, abort) for results and the result.json manifest.
        self.outputs_bucket.grant_put(persist)
        # The output store deletes a truncated upload so nothing partial is left behind. Only
        # s3:DeleteObject (a delete marker on this versioned bucket), never s3:DeleteObjectVersion.
        persist.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:DeleteObject"], resources=[self.outputs_bucket.arn_for_objects("*")]
            )
        )
        self.state_machine.grant_start_execution(self.functions["submit"])
        # states:SendTaskSuccess/Failure/Heartbeat: callback wakes the waiting execution; arm ends the
        # wait itself when a callback came first or the job is no longer waiting.
        self.state_machine.grant_task_response(self.functions["callback"])
        # Not on arm's own role policy: the state machine references arm's ARN, and a Lambda function
        # depends on its role's default policy, so that policy naming the state machine would close a
        # dependency cycle (StateMachine -> ArmFunction -> ArmRole DefaultPolicy -> StateMachine). The
        # grant goes to a separate inline policy of the same role, which nothing depends on.
        arm_role = self.functions["arm"].role
        if arm_role is None:  # build_function lets CDK create one role per function: never None
            raise RuntimeError("the arm function has no execution role")
        self.state_machine.grant_task_response(
            iam.Role.from_role_name(self, "ArmRoleForTaskResponse", arm_role.role_name)
        )
