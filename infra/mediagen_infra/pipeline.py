"""``MediaGenPipeline``: the whole job pipeline as one reusable construct (an L3 you can embed).

Resources (no physical names are set, so several deployments coexist in one account):

* SQS jobs queue + dead-letter queue (SSE-SQS, TLS only); ``submit`` consumes the queue.
* DynamoDB task table (key ``job_id``, point-in-time recovery), custom EventBridge bus.
* S3 outputs bucket (private, SSE-S3, TLS only, versioned, server access logs to a logs bucket) -- or yours.
* Secrets Manager secret holding the Cliprise API key (created with a placeholder to replace) -- or yours.
* Lambda functions ``submit``, ``poll``, ``persist``, ``finalize``, ``callback``, ``arm``, ``api``, ``intake``,
  each with its own role, log group and X-Ray tracing, and their dependencies layer.
* The Standard state machine of :mod:`mediagen_infra.state_machine` (callback or timeout, then poll).
* The callback HTTP API of :mod:`mediagen_infra.callback_api` (``POST /callbacks/{token}`` -> ``callback``).
* The jobs HTTP API of :mod:`mediagen_infra.jobs_api` (``POST /jobs``, ``GET /jobs/{job_id}``, ``POST
  /jobs/{job_id}/cancel``, ``GET /models``, ``GET /models/{model_id}``, ``GET /openapi.json`` -> ``api``; IAM
  (SigV4) auth by default).
* The S3 intake of :mod:`mediagen_infra.intake`: an intake bucket (or yours) whose ``jobs/*.json(l)`` manifests
  and ``inbox/<rule prefix>`` files reach the ``intake`` function through an intake queue (+ DLQ), which also
  receives the job events of manifest jobs (to write the manifest's report).
* The sweeper of :mod:`mediagen_infra.sweeper` (every 15 minutes -> ``sweep``: RECEIVED jobs a refused queue
  send left behind go back on the jobs queue).
* Alarms, an alarm topic (or yours) and a dashboard (:mod:`mediagen_infra.monitoring`).

Function environment variables are the aliases of ``mediagen.settings.Settings``. Every cdk-nag finding the
construct accepts is acknowledged here (or in the helper that creates the resource) with its reason, and every
checkov check it does not meet is skipped in the resource's metadata with its reason.

The options are :class:`mediagen_infra.props.MediaGenPipelineProps`, the S3 inbox rules
:class:`mediagen_infra.inbox.InboxRule`, and every IAM grant is made by
:func:`mediagen_infra.permissions.grant_least_privilege`.

Embedding::

    from mediagen_infra import MediaGenPipeline, MediaGenPipelineProps

    pipeline = MediaGenPipeline(self, "MediaGen", MediaGenPipelineProps(
        outputs_bucket=s3.Bucket.from_bucket_name(self, "Results", "acme-media-results"),
        api_key_secret=secretsmanager.Secret.from_secret_name_v2(self, "Key", "acme/cliprise-api-key"),
        alarm_topic=ops_topic, daily_credit_budget=5000))
"""


from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, RemovalPolicy, SecretValue
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from .bundling import dependencies_layer_code
from .callback_api import CallbackApi
from .compliance import acknowledge, skip_checkov
from .inbox import InboxRule, inbox_rules_json
from .intake import ENV_INPUT_ALLOW, S3Intake
from .jobs_api import JobsApi
from .lambdas import (
    API,
    ARM,
    CALLBACK,
    FINALIZE,
    INTAKE,
    PERSIST,
    POLL,
    RECONCILE,
    RUNTIME,
    SUBMIT,
    FunctionSpec,
    build_function,
    provider_environment,
)
from .monitoring import PipelineMonitoring
from .permissions import grant_least_privilege
from .props import (
    ACCESS_LOG_EXPIRATION,
    API_KEY_PLACEHOLDER,
    CLIPIA_API_KEY_PLACEHOLDER,
    DEFAULT_EVENT_SOURCE,
    ENV_API_KEY_SECRET_ID,
    ENV_CALLBACK_BASE_URL,
    ENV_CLIPIA_API_KEY_SECRET_ID,
    ENV_CLIPIA_DAILY_CREDIT_BUDGET,
    ENV_CLIPIA_MAX_IN_FLIGHT,
    ENV_CLIPIA_WEBHOOK_SECRET_ID,
    ENV_DAILY_CREDIT_BUDGET,
    ENV_EVENT_BUS,
    ENV_EVENT_SOURCE,
    ENV_INBOX_RULES,
    ENV_INTAKE_BUCKET,
    ENV_JOBS_QUEUE_URL,
    ENV_MAX_IN_FLIGHT,
    ENV_OPERATOR_PRINCIPALS,
    ENV_OUTPUTS_BUCKET,
    ENV_PROVIDERS,
    ENV_STATE_MACHINE_ARN,
    ENV_TASK_TABLE,
    MediaGenPipelineProps,
)
from .reconcile import Reconciler
from .state_machine import JobWorkflow
from .storage import private_bucket, queue_with_dlq
from .sweeper import StaleJobSweeper

#: AWS recommends a queue visibility timeout of at least six times the consumer's timeout.
VISIBILITY_TIMEOUT_FACTOR = 6
#: CDK feature flag: server access log delivery is granted in the target bucket's policy (not with an ACL).
S3_ACCESS_LOGS_USE_BUCKET_POLICY = "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy"

QUEUE_ENCRYPTION_COMMENT = (
    "Encrypted at rest with SSE-SQS (SqsManagedSseEnabled: true), which this check does not recognise; SSE-SQS "
    "needs no key policy, so upstream producers in other accounts can keep sending jobs."
)


class MediaGenPipeline(Construct):
    """Queue → submit → state machine (wait for callback | timeout → poll → persist | finalize) → S3 +
    EventBridge; provider callbacks → HTTP API → callback → wake the execution; jobs HTTP API → api → queue;
    intake bucket → intake queue → intake → queue; alarms → SNS.

    Args:
        scope: parent construct (any stack).
        construct_id: construct id.
        props: options; ``None`` takes every default.

    Attributes:
        props: the options.
        jobs_queue, dead_letter_queue, task_table, outputs_bucket, access_logs_bucket (the given or created logs
        bucket; ``None`` when the outputs and intake buckets are both yours), event_bus, api_key_secret,
        dependencies_layer, state_machine, callback_api: the resources.
        jobs_api: the jobs HTTP API (:class:`mediagen_infra.jobs_api.JobsApi`; its URL is ``jobs_api.api_url``).
        intake: the S3 intake (:class:`mediagen_infra.intake.S3Intake`: ``bucket``, ``queue``,
            ``dead_letter_queue``, ``manifest_events_rule``).
        functions: the Lambda functions by name (``submit``, ``poll``, ``persist``, ``finalize``,
            ``callback``, ``arm``, ``api``, ``intake``, ``sweep``).
        sweeper: the schedule and ``sweep`` function (:class:`mediagen_infra.sweeper.StaleJobSweeper`).
        monitoring, alarm_topic, alarms, dashboard: see :class:`mediagen_infra.monitoring.PipelineMonitoring`.
        inbox_rules: the S3 inbox rules.
    """

    def __init__(
        self, scope: Construct, construct_id: str, props: MediaGenPipelineProps | None = None
    ) -> None:
        super().__init__(scope, construct_id)
        # Created buckets deliver server access logs through the logs bucket's policy, never an ACL (every bucket
        # is BucketOwnerEnforced): set here, so an app without this feature flag in its cdk.json works the same.
        self.node.set_context(S3_ACCESS_LOGS_USE_BUCKET_POLICY, True)
        props = props or MediaGenPipelineProps()
        self.props = props
        self.inbox_rules: tuple[InboxRule, ...] = tuple(props.inbox_rules)

        self._create_queues()
        # The job table. Its logical id (and the output TaskTableName, the variable MEDIAGEN_TASK_TABLE) keep the
        # old "task" name: renaming the logical id would replace the deployed table and lose its records.
        self.task_table = dynamodb.Table(
            self,
            "TaskTable",
            partition_key=dynamodb.Attribute(name="job_id", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            removal_policy=props.removal_policy,
        )
        skip_checkov(self.task_table, "CKV_AWS_119",
                     "Encrypted at rest with the AWS managed DynamoDB key; access is already limited per function "
                     "to GetItem/PutItem/UpdateItem on this table, so a customer-managed key adds cost only.")
        self.access_logs_bucket = self._access_logs_bucket()
        self.outputs_bucket = props.outputs_bucket or self._create_outputs_bucket()

        # No event_bus_name: CDK derives a unique name from the construct path (includes the stack name).
        self.event_bus = events.EventBus(self, "EventBus", description="mediagen job events")
        self.api_key_secret = props.api_key_secret or self._create_secret()
        # Clipia (optional): its key (submit, poll, persist) and webhook signing secret (callback).
        self.clipia_api_key_secret: secretsmanager.ISecret | None = None
        self.clipia_webhook_secret: secretsmanager.ISecret | None = None
        if props.clipia_enabled:
            self.clipia_api_key_secret = props.clipia_api_key_secret or self._create_clipia_key_secret()
            self.clipia_webhook_secret = props.clipia_webhook_secret or self._create_clipia_webhook_secret()
        providers_env = {ENV_PROVIDERS: "cliprise,clipia" if props.clipia_enabled else "cliprise"}

        layer_code, requirements = dependencies_layer_code(props.source_root, architecture=props.architecture)
        self.dependencies_layer = lambda_.LayerVersion(
            self,
            "DependenciesLayer",
            code=layer_code,
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[props.architecture],
            description=("mediagen runtime dependencies: " + ", ".join(requirements))[:256],
        )

        common_env = {
            ENV_TASK_TABLE: self.task_table.table_name,
            ENV_EVENT_BUS: self.event_bus.event_bus_name,
            **props.extra_environment,
        }
        secret_env = {ENV_API_KEY_SECRET_ID: self.api_key_secret.secret_arn,
                      **({ENV_CLIPIA_API_KEY_SECRET_ID: self.clipia_api_key_secret.secret_arn}
                         if self.clipia_api_key_secret is not None else {}),
                      # The functions that read the key call the providers: their base URLs, when given.
                      **provider_environment(props.provider_base_urls)}
        in_flight_env = {ENV_MAX_IN_FLIGHT: str(props.max_jobs_in_flight)} if props.max_jobs_in_flight else {}
        outputs_env = {ENV_OUTPUTS_BUCKET: self.outputs_bucket.bucket_name}
        queue_env = {ENV_JOBS_QUEUE_URL: self.jobs_queue.queue_url}
        budget_env = {ENV_DAILY_CREDIT_BUDGET: str(props.daily_credit_budget)} if props.daily_credit_budget else {}
        # Clipia's own limits (its credits are not Cliprise's), when given.
        budget_env |= {name: str(value) for name, value in (
            (ENV_CLIPIA_DAILY_CREDIT_BUDGET, props.clipia_daily_credit_budget),
            (ENV_CLIPIA_MAX_IN_FLIGHT, props.clipia_max_jobs_in_flight)) if value}

        poll = self._function(POLL, {**common_env, **secret_env, **in_flight_env})
        persist = self._function(PERSIST, {**common_env, **secret_env, **in_flight_env, **outputs_env})
        finalize = self._function(FINALIZE, {**common_env, **in_flight_env})
        # callback and arm must answer fast and never see the API key or the outputs.
        callback = self._function(CALLBACK, {
            **common_env, **({ENV_CLIPIA_WEBHOOK_SECRET_ID: self.clipia_webhook_secret.secret_arn}
                             if self.clipia_webhook_secret is not None else {})})
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
            log_removal_policy=props.log_removal_policy,
        )
        self.state_machine = self.workflow.state_machine

        self.callback_api = CallbackApi(
            self,
            "CallbackApi",
            callback=callback,
            throttle_burst_limit=props.callback_throttle_burst,
            throttle_rate_limit=props.callback_throttle_rate,
            log_retention=props.log_retention,
            log_removal_policy=props.log_removal_policy,
        )

        # The jobs API: no secret, no provider call; it queues jobs, reads records, presigns result downloads
        # and cancels (which wakes a waiting execution).
        api = self._function(
            API,
            {**common_env, **outputs_env, **queue_env, **in_flight_env, **providers_env,
             ENV_STATE_MACHINE_ARN: self.state_machine.state_machine_arn,
             # Who may read and cancel every job through the API (finding 7).
             **({ENV_OPERATOR_PRINCIPALS: ",".join(props.operator_principals)} if props.operator_principals else {})},
        )
        self.jobs_api = JobsApi(
            self,
            "JobsApi",
            handler=api,
            auth=props.jobs_api_auth,
            allow_unauthenticated=props.allow_unauthenticated,
            throttle_burst_limit=props.jobs_api_throttle_burst,
            throttle_rate_limit=props.jobs_api_throttle_rate,
            log_retention=props.log_retention,
            log_removal_policy=props.log_removal_policy,
        )

        self.intake = S3Intake(
            self,
            "Intake",
            event_bus=self.event_bus,
            event_source=props.extra_environment.get(ENV_EVENT_SOURCE, DEFAULT_EVENT_SOURCE),
            inbox_prefixes=[rule.prefix for rule in self.inbox_rules],
            visibility_timeout=Duration.seconds(VISIBILITY_TIMEOUT_FACTOR * INTAKE.timeout_seconds),
            bucket=props.intake_bucket,
            access_logs_bucket=self.access_logs_bucket,
            max_receive_count=props.max_receive_count,
            dlq_retention=props.dlq_retention,
            removal_policy=props.removal_policy,
            outputs_bucket=self.outputs_bucket,  # refuses the same bucket (an intake that could feed itself)
            input_allow=props.input_allow,
        )
        intake_env = {ENV_INTAKE_BUCKET: self.intake.bucket.bucket_name}
        intake = self._function(
            INTAKE,
            {**common_env, **outputs_env, **queue_env, **intake_env, **providers_env,
             ENV_INBOX_RULES: inbox_rules_json(self.inbox_rules)},
        )
        # Consume (Receive/Delete/ChangeMessageVisibility) comes with the event source; read of the intake objects.
        self.intake.consume_with(intake)

        submit = self._function(
            SUBMIT,
            {
                **common_env,
                **secret_env,
                **in_flight_env,
                **budget_env,
                **intake_env,
                **queue_env,  # a job that must wait goes back to the queue (mediagen.queue)
                **providers_env,
                # Unset, submit allows the intake bucket's inbox/ and inputs/ for s3:// inputs.
                **({ENV_INPUT_ALLOW: self.intake.input_allow_env} if props.input_allow is not None else {}),
                ENV_STATE_MACHINE_ARN: self.state_machine.state_machine_arn,
                ENV_CALLBACK_BASE_URL: self.callback_api.callback_url_base,
            },
        )
        # Consume (Receive/Delete/ChangeMessageVisibility: submit shortens the visibility of a job it puts
        # back) comes with the event source.
        submit.add_event_source(
            event_sources.SqsEventSource(
                self.jobs_queue,
                batch_size=props.submit_batch_size,
                report_batch_item_failures=True,
                max_concurrency=props.submit_max_concurrency,
            )
        )
        # SendMessage: a job held back (provider rate limit, no free in-flight slot) goes back to the queue as
        # a new, delayed message, so waiting never counts towards the dead-letter queue's receive limit.
        self.jobs_queue.grant_send_messages(submit)

        # Outbox and spend counters: re-publishes unpublished terminal events, recomputes drifted counters, and
        # starts the execution of a submitted job whose every StartExecution failed (mediagen.steps.reconcile).
        reconcile = self._function(RECONCILE, {**common_env,
                                               ENV_STATE_MACHINE_ARN: self.state_machine.state_machine_arn})
        self.reconciler = Reconciler(self, "Reconciler", function=reconcile)
        self.functions: dict[str, lambda_.Function] = {
            "submit": submit, "poll": poll, "persist": persist, "finalize": finalize,
            "callback": callback, "arm": arm, "api": api, "intake": intake, "reconcile": reconcile,
        }
        grant_least_privilege(self)
        # The sweeper (its own grants: the only Scan of the job table): RECEIVED jobs a refused send left behind.
        self.sweeper = StaleJobSweeper(
            self, "Sweeper", table=self.task_table, jobs_queue=self.jobs_queue, source_root=props.source_root,
            layers=[self.dependencies_layer],
            environment={ENV_TASK_TABLE: self.task_table.table_name, **queue_env, **props.extra_environment},
            log_retention=props.log_retention, log_removal_policy=props.log_removal_policy,
            architecture=props.architecture, telemetry=props.telemetry)
        self.functions["sweep"] = self.sweeper.function

        # Backstop: an execution that ends without reaching its own failure path (the 3-hour timeout, an abort,
        # a States.Runtime error no Catch can take) still gets a terminal task record: Step Functions announces
        # the end on the default bus and finalize records it (a job already terminal is left alone).
        self.execution_ended_rule = events.Rule(
            self, "ExecutionEnded",
            description="mediagen: record a terminal status for executions that ended outside the workflow",
            event_pattern=events.EventPattern(
                source=["aws.states"], detail_type=["Step Functions Execution Status Change"],
                detail={"stateMachineArn": [self.state_machine.state_machine_arn],
                        "status": ["FAILED", "TIMED_OUT", "ABORTED"]},
            ),
        )
        self.execution_ended_rule.add_target(events_targets.LambdaFunction(
            self.functions["finalize"], retry_attempts=8, max_event_age=Duration.hours(24)))

        self.monitoring = PipelineMonitoring(
            self,
            "Monitoring",
            functions=self.functions,
            state_machine=self.state_machine,
            jobs_queue=self.jobs_queue,
            dead_letter_queue=self.dead_letter_queue,
            intake_dead_letter_queue=self.intake.dead_letter_queue,
            alarm_topic=props.alarm_topic,
            oldest_message_age=props.oldest_message_alarm_age,
            daily_credit_budget=props.daily_credit_budget,
            clipia_daily_credit_budget=props.clipia_daily_credit_budget if props.clipia_enabled else None,
            budget_alarm_fraction=props.budget_alarm_fraction,
            dashboard=props.dashboard,
            telemetry=props.telemetry,
        )
        self.alarm_topic = self.monitoring.topic
        self.alarms = self.monitoring.alarms
        self.dashboard = self.monitoring.dashboard

    # ------------------------------------------------------------------------------------------- resources
    def _create_queues(self) -> None:
        props = self.props
        self.jobs_queue, self.dead_letter_queue = queue_with_dlq(
            self,
            "JobsQueue",
            "JobsDlq",
            visibility_timeout=Duration.seconds(VISIBILITY_TIMEOUT_FACTOR * SUBMIT.timeout_seconds),
            retention=props.jobs_retention,
            dlq_retention=props.dlq_retention,
            max_receive_count=props.max_receive_count,
            encryption_comment=QUEUE_ENCRYPTION_COMMENT,
        )

    def _access_logs_bucket(self) -> s3.IBucket | None:
        """Where created buckets log: the given logs bucket, a created one, or ``None`` (no bucket is created)."""
        props = self.props
        if props.outputs_bucket is not None and props.intake_bucket is not None:
            return None
        return props.access_logs_bucket or self._create_access_logs_bucket()

    def _create_outputs_bucket(self) -> s3.Bucket:
        """A private, versioned outputs bucket that logs into the access-logs bucket."""
        if self.access_logs_bucket is None:  # _access_logs_bucket gives one whenever a bucket is created
            raise RuntimeError("a created outputs bucket needs the access-logs bucket")
        return private_bucket(self, "OutputsBucket", access_logs_bucket=self.access_logs_bucket,
                              access_logs_prefix="outputs/", removal_policy=self.props.removal_policy)

    def _create_access_logs_bucket(self) -> s3.Bucket:
        bucket = s3.Bucket(
            self,
            "AccessLogsBucket",
            # Server access log delivery supports SSE-S3 only on the target bucket.
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            versioned=True,
            removal_policy=self.props.removal_policy,
            lifecycle_rules=[s3.LifecycleRule(
                expiration=ACCESS_LOG_EXPIRATION, noncurrent_version_expiration=Duration.days(1)
            )],
        )
        # cdk-nag's AwsSolutions-S1 exempts a log target bucket; checkov does not.
        skip_checkov(bucket, "CKV_AWS_18",
                     "The server access log target of the created outputs and intake buckets: logging it into "
                     "itself would loop.")
        return bucket

    def _create_secret(self) -> secretsmanager.Secret:
        secret = secretsmanager.Secret(
            self,
            "ApiKeySecret",
            description="Cliprise Business API key for mediagen: replace the placeholder with the real key",
            secret_string_value=SecretValue.unsafe_plain_text(API_KEY_PLACEHOLDER),
            # A copy of a credential the owner keeps at Cliprise: it must not outlive the deployment.
            removal_policy=RemovalPolicy.DESTROY,
        )
        self._explain_provider_secret(secret, "the Cliprise dashboard", "submit, poll and persist")
        return secret

    def _create_clipia_key_secret(self) -> secretsmanager.Secret:
        secret = secretsmanager.Secret(
            self,
            "ClipiaApiKeySecret",
            description="Clipia API key for mediagen (clipia_live_...): replace the placeholder with the real key",
            secret_string_value=SecretValue.unsafe_plain_text(CLIPIA_API_KEY_PLACEHOLDER),
            removal_policy=RemovalPolicy.DESTROY,
        )
        self._explain_provider_secret(secret, "the Clipia dashboard", "submit, poll and persist")
        return secret

    def _create_clipia_webhook_secret(self) -> secretsmanager.Secret:
        # A random value until the owner puts Clipia's signing secret in: a placeholder anyone can read in the
        # template would let forged webhooks verify.
        secret = secretsmanager.Secret(
            self,
            "ClipiaWebhookSecret",
            description="Clipia webhook signing secret for mediagen: replace with the secret Clipia shows "
                        "(or a JSON array of two during a rotation)",
            generate_secret_string=secretsmanager.SecretStringGenerator(password_length=64,
                                                                        exclude_punctuation=True),
            removal_policy=RemovalPolicy.DESTROY,
        )
        self._explain_provider_secret(secret, "the Clipia dashboard", "callback")
        return secret

    @staticmethod
    def _explain_provider_secret(secret: secretsmanager.Secret, issuer: str, readers: str) -> None:
        acknowledge(secret, "AwsSolutions-SMG4",
                    f"A third-party credential issued in {issuer}: Secrets Manager cannot rotate it (no rotation "
                    "API). Rotate by issuing a new one and put-secret-value; the functions pick it up within the "
                    "5-minute secret cache.")
        skip_checkov(secret, "CKV_AWS_149",
                     f"Encrypted with the AWS managed aws/secretsmanager key; only the {readers} role(s) may read "
                     "the secret (IAM), so a customer-managed key adds cost only.")

    def _function(self, spec: FunctionSpec, environment: Mapping[str, str]) -> lambda_.Function:
        return build_function(
            self,
            spec,
            source_root=self.props.source_root,
            layers=[self.dependencies_layer],
            environment=environment,
            log_retention=self.props.log_retention,
            log_removal_policy=self.props.log_removal_policy,
            architecture=self.props.architecture,
            telemetry=self.props.telemetry,
        )
