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
* Alarms, an alarm topic (or yours) and a dashboard (:mod:`mediagen_infra.monitoring`).

Function environment variables are the aliases of ``mediagen.settings.Settings``. Every cdk-nag finding the
construct accepts is acknowledged here (or in the helper that creates the resource) with its reason, and every
checkov check it does not meet is skipped in the resource's metadata with its reason.

Embedding::

    from mediagen_infra import MediaGenPipeline, MediaGenPipelineProps

    pipeline = MediaGenPipeline(self, "MediaGen", MediaGenPipelineProps(
        outputs_bucket=s3.Bucket.from_bucket_name(self, "Results", "acme-media-results"),
        api_key_secret=secretsmanager.Secret.from_secret_name_v2(self, "Key", "acme/cliprise-api-key"),
        alarm_topic=ops_topic, daily_credit_budget=5000))
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aws_cdk import Duration, RemovalPolicy, SecretValue, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from constructs import Construct

from .bundling import REPO_ROOT, dependencies_layer_code
from .callback_api import CallbackApi
from .compliance import acknowledge, acknowledge_wildcard_resource, skip_checkov
from .intake import S3Intake
from .jobs_api import JOBS_API_AUTH_MODES, JobsApi
from .lambdas import (
    API,
    ARCHITECTURE,
    ARM,
    CALLBACK,
    FINALIZE,
    INTAKE,
    PERSIST,
    POLL,
    RUNTIME,
    SUBMIT,
    FunctionSpec,
    build_function,
)
from .monitoring import PipelineMonitoring
from .state_machine import JobWorkflow
from .storage import private_bucket, queue_with_dlq

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
ENV_DAILY_CREDIT_BUDGET = "MEDIAGEN_DAILY_CREDIT_BUDGET"
ENV_MAX_IN_FLIGHT = "MEDIAGEN_MAX_IN_FLIGHT"
ENV_JOBS_QUEUE_URL = "MEDIAGEN_JOBS_QUEUE_URL"
ENV_INTAKE_BUCKET = "MEDIAGEN_INTAKE_BUCKET"
#: JSON array of :meth:`InboxRule.to_json` objects, read by the intake function.
ENV_INBOX_RULES = "MEDIAGEN_INBOX_RULES"
#: Variables the construct sets itself; ``extra_environment`` may not override them.
RESERVED_ENVIRONMENT: frozenset[str] = frozenset({
    ENV_TASK_TABLE, ENV_OUTPUTS_BUCKET, ENV_EVENT_BUS, ENV_STATE_MACHINE_ARN, ENV_API_KEY_SECRET_ID,
    ENV_CALLBACK_BASE_URL, ENV_DAILY_CREDIT_BUDGET, ENV_MAX_IN_FLIGHT, ENV_JOBS_QUEUE_URL, ENV_INTAKE_BUCKET,
    ENV_INBOX_RULES,
})
#: ``source`` of the job events (``MEDIAGEN_EVENT_SOURCE``; ``extra_environment`` may change it).
ENV_EVENT_SOURCE = "MEDIAGEN_EVENT_SOURCE"
DEFAULT_EVENT_SOURCE = "mediagen"

#: AWS recommends a queue visibility timeout of at least six times the consumer's timeout.
VISIBILITY_TIMEOUT_FACTOR = 6
#: Functions that end jobs (and so give back an in-flight slot): they need ``MEDIAGEN_MAX_IN_FLIGHT``.
#: (``api`` ends a job it cancels.)
JOB_ENDERS: tuple[str, ...] = ("submit", "poll", "persist", "finalize", "api")
#: Functions that publish job events on the bus (``intake`` publishes the rejection of a bad manifest line).
EVENT_PUBLISHERS: tuple[str, ...] = ("submit", "poll", "persist", "finalize", "api", "intake")
#: Functions that read the API key.
SECRET_READERS: tuple[str, ...] = ("submit", "poll", "persist")
#: DynamoDB actions per function (the task repository and the spend guard call only these): submit, api and
#: intake create records; everyone else reads and updates them; intake reads a manifest's records in batches.
TABLE_ACTIONS: Mapping[str, tuple[str, ...]] = {
    "submit": ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"),
    "poll": ("dynamodb:GetItem", "dynamodb:UpdateItem"),
    "persist": ("dynamodb:GetItem", "dynamodb:UpdateItem"),
    "finalize": ("dynamodb:GetItem", "dynamodb:UpdateItem"),
    "callback": ("dynamodb:GetItem", "dynamodb:UpdateItem"),
    "arm": ("dynamodb:GetItem", "dynamodb:UpdateItem"),
    "api": ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"),
    "intake": ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchGetItem"),
}
#: What persist may do to objects of the outputs bucket: write results (single or multipart: PutObject
#: covers Create/UploadPart/Complete), tag them with their SHA-256, abort a failed multipart upload and
#: delete a truncated result (a delete marker on the versioned bucket; never s3:DeleteObjectVersion).
PERSIST_OBJECT_ACTIONS: tuple[str, ...] = (
    "s3:PutObject", "s3:PutObjectTagging", "s3:AbortMultipartUpload", "s3:DeleteObject",
)
#: CDK feature flag: server access log delivery is granted in the target bucket's policy (not with an ACL).
S3_ACCESS_LOGS_USE_BUCKET_POLICY = "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy"
#: Server access logs of the outputs bucket are kept this long.
ACCESS_LOG_EXPIRATION = Duration.days(365)

QUEUE_ENCRYPTION_COMMENT = (
    "Encrypted at rest with SSE-SQS (SqsManagedSseEnabled: true), which this check does not recognise; SSE-SQS "
    "needs no key policy, so upstream producers in other accounts can keep sending jobs."
)

#: The room the intake function's environment leaves for ``MEDIAGEN_INBOX_RULES``: Lambda allows 4 KB for all
#: variables together, and the names, ARNs, URLs and Powertools settings take about 1 KB.
INBOX_RULES_MAX_BYTES = 3000

_INBOX_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9._-]+)*/?")
#: An output prefix: the characters a job's ``output.prefix`` may use (``mediagen.jobs.PREFIX_PATTERN``).
_OUTPUT_PREFIX = re.compile(r"[A-Za-z0-9!_.*'()/=-]{1,512}")
#: A ``{placeholder}`` in a template string, and the ones the intake function fills in.
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_KNOWN_PLACEHOLDER = re.compile(r"object_url|key|filename|metadata\.[A-Za-z0-9_-]+")
_REMOVAL_POLICIES = {RemovalPolicy.RETAIN, RemovalPolicy.DESTROY, RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE}
_SQS_MIN_RETENTION_S, _SQS_MAX_RETENTION_S = 60, 14 * 24 * 3600


@dataclass(frozen=True)
class InboxRule:
    """An S3 inbox rule: each file put under ``inbox/<prefix>`` of the intake bucket becomes one job for ``model``.

    The intake function builds the job's request as ``{"model": model, "input": input_template}`` with these
    placeholders filled in, in every string value (nested ones too):

    * ``{object_url}``: the file (required somewhere): the job records its ``s3://`` URI and submit hands the
      provider a presigned URL of it;
    * ``{key}``: the object key; ``{filename}``: its last path segment;
    * ``{metadata.NAME}``: the object's user metadata ``NAME`` (``x-amz-meta-NAME``).

    Attributes:
        prefix: key prefix under ``inbox/`` (letters, digits, ``.``, ``_``, ``-``, ``/``; no leading ``/``);
            a missing trailing ``/`` is added.
        model: the catalog model the jobs run on.
        input_template: the request's ``input`` for every file.
        output_prefix: where the jobs' results go in the outputs bucket; ``""``: ``results/inbox/<prefix>``.
    """

    prefix: str
    model: str
    input_template: Mapping[str, Any] = field(default_factory=dict)
    output_prefix: str = ""

    def __post_init__(self) -> None:
        """Raises: ValueError: the prefix is not a plain relative key prefix, the model is empty, the template
        never passes the file (``{object_url}``), uses an unknown placeholder or is not JSON, or the output
        prefix is not a relative key prefix (each message names the rule's prefix)."""
        if not _INBOX_PREFIX.fullmatch(self.prefix) or ".." in self.prefix:
            raise ValueError(f"inbox rule prefix {self.prefix!r}: use letters, digits, '.', '_', '-' and '/'")
        if not self.prefix.endswith("/"):
            object.__setattr__(self, "prefix", self.prefix + "/")
        if not self.model.strip():
            raise ValueError(f"inbox rule {self.prefix!r} has no model")
        if not isinstance(self.input_template, Mapping):
            raise ValueError(f"inbox rule {self.prefix!r}: input_template must be a JSON object")
        try:
            json.dumps(self.input_template)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"inbox rule {self.prefix!r}: input_template is not JSON ({exc})") from exc
        placeholders = set(_placeholders(self.input_template))
        if "object_url" not in placeholders:
            raise ValueError(f"inbox rule {self.prefix!r}: input_template never uses {{object_url}}, so the "
                             "jobs would never see the file; put it where the model takes its input")
        unknown = sorted(p for p in placeholders if not _KNOWN_PLACEHOLDER.fullmatch(p))
        if unknown:
            raise ValueError(f"inbox rule {self.prefix!r}: unknown placeholder(s) "
                             f"{', '.join('{' + p + '}' for p in unknown)}; use {{object_url}}, {{key}}, "
                             "{filename} or {metadata.NAME}")
        if self.output_prefix:
            if (not _OUTPUT_PREFIX.fullmatch(self.output_prefix) or ".." in self.output_prefix
                    or self.output_prefix.startswith("/")):
                raise ValueError(f"inbox rule {self.prefix!r}: output_prefix {self.output_prefix!r} must be a "
                                 "relative S3 key prefix")
            if not self.output_prefix.endswith("/"):
                object.__setattr__(self, "output_prefix", self.output_prefix + "/")

    @property
    def effective_output_prefix(self) -> str:
        """``output_prefix``, or ``results/inbox/<prefix>`` when it is empty."""
        return self.output_prefix or f"results/inbox/{self.prefix}"

    def to_json(self) -> dict[str, Any]:
        """The rule as the intake function reads it (one item of ``MEDIAGEN_INBOX_RULES``)::

            {"prefix": "upscale/", "model": "recraft-upscaler", "input_template": {"image": "{object_url}"},
             "output_prefix": "results/inbox/upscale/"}
        """
        return {
            "prefix": self.prefix,
            "model": self.model,
            "input_template": json.loads(json.dumps(self.input_template)),
            "output_prefix": self.effective_output_prefix,
        }


def _placeholders(value: Any) -> list[str]:
    """The ``{name}`` placeholders of every string in ``value`` (nested objects and arrays included)."""
    if isinstance(value, str):
        return _PLACEHOLDER.findall(value)
    if isinstance(value, Mapping):
        return [p for item in value.values() for p in _placeholders(item)]
    if isinstance(value, (list, tuple)):
        return [p for item in value for p in _placeholders(item)]
    return []


def inbox_rules_json(rules: Sequence[InboxRule]) -> str:
    """``MEDIAGEN_INBOX_RULES``: the rules' :meth:`InboxRule.to_json`, as one compact JSON array."""
    return json.dumps([rule.to_json() for rule in rules], separators=(",", ":"), ensure_ascii=False)


def check_inbox_rules(rules: Sequence[InboxRule]) -> None:
    """Check a set of rules: distinct, non-nested prefixes, and JSON that fits the intake function.

    Raises:
        ValueError: two prefixes are equal or nested (S3 refuses overlapping notifications of one bucket), or
            the rules' JSON exceeds :data:`INBOX_RULES_MAX_BYTES`.
    """
    prefixes = [rule.prefix for rule in rules]
    if len(prefixes) != len(set(prefixes)):
        raise ValueError("inbox_rules: two rules have the same prefix")
    for outer in prefixes:
        for inner in prefixes:
            if inner != outer and inner.startswith(outer):
                raise ValueError(f"inbox_rules: prefix {inner!r} is inside {outer!r}; S3 refuses overlapping "
                                 "notifications, so inbox rule prefixes may not be nested")
    size = len(inbox_rules_json(rules).encode())
    if size > INBOX_RULES_MAX_BYTES:
        raise ValueError(f"inbox_rules: {size} bytes of JSON; at most {INBOX_RULES_MAX_BYTES} fit in the intake "
                         "function's environment (Lambda allows 4 KB for all variables)")


#: The inbox rules of ``MediaGen-<stage>`` when the ``inboxRules`` context gives none (an embedding app's
#: ``MediaGenPipelineProps`` has no rules unless it passes these or its own).
DEFAULT_INBOX_RULES: tuple[InboxRule, ...] = (
    InboxRule("upscale/", "recraft-upscaler", {"image": "{object_url}"}),
    InboxRule("remove-bg/", "recraft-remove-bg", {"image": "{object_url}"}),
    InboxRule("transcribe/", "elevenlabs-speech-to-text", {"audio_url": "{object_url}"}),
    # wan-2-5 image-to-video: prompt from the file's x-amz-meta-prompt; the cheapest resolution and duration.
    InboxRule("animate/", "wan-2-5", {"prompt": "{metadata.prompt}", "image_url": "{object_url}",
                                      "resolution": "720p", "duration": "5"}),
)


def _default_architecture() -> lambda_.Architecture:
    return ARCHITECTURE


@dataclass(frozen=True)
class MediaGenPipelineProps:
    """Options of :class:`MediaGenPipeline`; every field has a production default.

    Attributes:
        source_root: repository root holding ``functions/``, ``shared/mediagen/`` and ``pyproject.toml``.
        api_key_secret: an existing secret whose SecretString is the Cliprise API key; ``None`` creates one
            holding :data:`API_KEY_PLACEHOLDER`. Only submit, poll and persist may read it (with the secret's
            KMS key, if it has one and you import it with that key).
        outputs_bucket: an existing bucket for results; ``None`` creates a private, versioned, logged one.
            persist gets only :data:`PERSIST_OBJECT_ACTIONS` on its objects (plus ``kms:GenerateDataKey`` and
            ``kms:Decrypt`` when the bucket is imported with its ``encryption_key``).
        access_logs_bucket: where *created* buckets write their server access logs (the outputs bucket under
            ``outputs/``, the intake bucket under ``intake/``); ``None`` creates a logs bucket (logs expire after
            :data:`ACCESS_LOG_EXPIRATION`) when the construct creates either bucket. An existing one must use
            SSE-S3 and let ``logging.s3.amazonaws.com`` put objects. Unused when both buckets are yours.
        intake_bucket: an existing bucket to take jobs from (``jobs/*.json``, ``jobs/*.jsonl``, ``inbox/...``);
            ``None`` creates a private, versioned, logged one. Its notifications are added (CDK keeps the ones
            it did not create); the intake and submit functions may read its objects (plus ``kms:Decrypt`` when
            the bucket is imported with its ``encryption_key``). See :mod:`mediagen_infra.intake`.
        max_receive_count: receives of a job message before it moves to the dead-letter queue.
        dlq_retention: how long dead-lettered messages are kept (1 min - 14 days).
        jobs_retention: how long a job message may wait in the jobs queue (1 min - 14 days).
        submit_batch_size: SQS messages per ``submit`` invocation (1-10).
        submit_max_concurrency: cap on concurrent ``submit`` invocations from the queue (2-1000), e.g. to
            stay under the provider's rate limits; ``None``: no cap.
        daily_credit_budget: credits the deployment may commit per UTC day (``MEDIAGEN_DAILY_CREDIT_BUDGET``);
            a job that does not fit is rejected before anything is spent. ``None``: unlimited, no budget alarm.
        max_jobs_in_flight: jobs at the provider at once (``MEDIAGEN_MAX_IN_FLIGHT``); extra jobs wait in the
            queue. ``None``: unlimited.
        budget_alarm_fraction: share of ``daily_credit_budget`` at which the budget alarm fires (0-1].
        inbox_rules: S3 inbox rules (see :class:`InboxRule`): one intake bucket notification per rule, and the
            intake function's ``MEDIAGEN_INBOX_RULES``. Prefixes may not be equal or nested (S3 refuses
            overlapping notifications), and their JSON must fit :data:`INBOX_RULES_MAX_BYTES`. ``()``: no inbox
            (``MediaGen-<stage>`` uses :data:`DEFAULT_INBOX_RULES` unless its context says otherwise).
        alarm_topic: the SNS topic every alarm notifies (on alarm and on recovery); ``None`` creates an
            encrypted topic (:attr:`MediaGenPipeline.alarm_topic`).
        oldest_message_alarm_age: the ``OldestJobTooOld`` alarm fires when a job message waits this long.
        dashboard: create the CloudWatch dashboard.
        architecture: ``ARM_64`` (default, cheaper) or ``X86_64``; the dependencies layer is built to match.
        log_retention: retention of every log group (functions, state machine, the APIs' access logs).
        removal_policy: what happens to stored data when the stack is deleted or the resource replaced: the
            task table and the created buckets. Default ``RETAIN``. (``DESTROY`` cannot delete a bucket that
            still holds objects: empty it first.)
        log_removal_policy: the same for the log groups. Default ``RETAIN``.
        execution_timeout: state machine backstop; no execution runs longer (must exceed persist's timeout).
        extra_environment: more variables for every function (e.g. ``MEDIAGEN_POLL_MAX_SECONDS``); may not
            override the variables the construct sets (:data:`RESERVED_ENVIRONMENT`).
        callback_throttle_burst: burst limit of the callback API's stage (requests).
        callback_throttle_rate: steady rate limit of the callback API's stage (requests per second).
        jobs_api_auth: ``"iam"`` (SigV4 on every route of the jobs API) or ``"none"`` (no authorizer: only
            behind your own authenticating gateway or private integration; see :mod:`mediagen_infra.jobs_api`).
        jobs_api_throttle_burst: burst limit of the jobs API's stage (requests).
        jobs_api_throttle_rate: steady rate limit of the jobs API's stage (requests per second).
    """

    source_root: Path = REPO_ROOT
    api_key_secret: secretsmanager.ISecret | None = None
    outputs_bucket: s3.IBucket | None = None
    access_logs_bucket: s3.IBucket | None = None
    intake_bucket: s3.IBucket | None = None
    max_receive_count: int = 5
    dlq_retention: Duration = field(default_factory=lambda: Duration.days(14))
    jobs_retention: Duration = field(default_factory=lambda: Duration.days(4))
    submit_batch_size: int = 10
    submit_max_concurrency: int | None = None
    daily_credit_budget: int | None = None
    max_jobs_in_flight: int | None = None
    budget_alarm_fraction: float = 0.8
    inbox_rules: Sequence[InboxRule] = ()
    alarm_topic: sns.ITopic | None = None
    oldest_message_alarm_age: Duration = field(default_factory=lambda: Duration.minutes(15))
    dashboard: bool = True
    architecture: lambda_.Architecture = field(default_factory=_default_architecture)
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN
    log_removal_policy: RemovalPolicy = RemovalPolicy.RETAIN
    execution_timeout: Duration = field(default_factory=lambda: Duration.hours(3))
    extra_environment: Mapping[str, str] = field(default_factory=dict)
    callback_throttle_burst: int = 100
    callback_throttle_rate: int = 50
    jobs_api_auth: str = "iam"
    jobs_api_throttle_burst: int = 50
    jobs_api_throttle_rate: int = 25

    def __post_init__(self) -> None:
        """Reject values AWS would reject at deploy time, or that would make the pipeline misbehave.

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
        if self.jobs_api_auth not in JOBS_API_AUTH_MODES:
            raise ValueError(f"jobs_api_auth must be one of {', '.join(repr(m) for m in JOBS_API_AUTH_MODES)}, "
                             f"got {self.jobs_api_auth!r}")
        if self.jobs_api_throttle_burst < 0 or self.jobs_api_throttle_rate < 0:
            raise ValueError("jobs_api_throttle_burst and jobs_api_throttle_rate must be >= 0")
        for name in ("dlq_retention", "jobs_retention"):
            seconds = getattr(self, name).to_seconds()
            if not _SQS_MIN_RETENTION_S <= seconds <= _SQS_MAX_RETENTION_S:
                raise ValueError(f"{name} must be between 1 minute and 14 days")
        for name in ("daily_credit_budget", "max_jobs_in_flight"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 (None means unlimited)")
        if not 0 < self.budget_alarm_fraction <= 1:
            raise ValueError("budget_alarm_fraction must be in (0, 1]")
        if self.oldest_message_alarm_age.to_seconds() < 60:
            raise ValueError("oldest_message_alarm_age must be at least 1 minute")
        if self.execution_timeout.to_seconds() <= PERSIST.timeout_seconds:
            raise ValueError(f"execution_timeout must exceed the persist timeout ({PERSIST.timeout_seconds} s)")
        if self.architecture.name not in {"arm64", "x86_64"}:
            raise ValueError("architecture must be lambda_.Architecture.ARM_64 or X86_64")
        for name in ("removal_policy", "log_removal_policy"):
            if getattr(self, name) not in _REMOVAL_POLICIES:
                raise ValueError(f"{name} must be RETAIN, DESTROY or RETAIN_ON_UPDATE_OR_DELETE")
        overridden = sorted(RESERVED_ENVIRONMENT & set(self.extra_environment))
        if overridden:
            raise ValueError(f"extra_environment may not set {', '.join(overridden)}: the construct sets them")
        check_inbox_rules(self.inbox_rules)


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
            ``callback``, ``arm``, ``api``, ``intake``).
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
        secret_env = {ENV_API_KEY_SECRET_ID: self.api_key_secret.secret_arn}
        in_flight_env = {ENV_MAX_IN_FLIGHT: str(props.max_jobs_in_flight)} if props.max_jobs_in_flight else {}
        outputs_env = {ENV_OUTPUTS_BUCKET: self.outputs_bucket.bucket_name}
        queue_env = {ENV_JOBS_QUEUE_URL: self.jobs_queue.queue_url}
        budget_env = {ENV_DAILY_CREDIT_BUDGET: str(props.daily_credit_budget)} if props.daily_credit_budget else {}

        poll = self._function(POLL, {**common_env, **secret_env, **in_flight_env})
        persist = self._function(PERSIST, {**common_env, **secret_env, **in_flight_env, **outputs_env})
        finalize = self._function(FINALIZE, {**common_env, **in_flight_env})
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
            {**common_env, **outputs_env, **queue_env, **in_flight_env,
             ENV_STATE_MACHINE_ARN: self.state_machine.state_machine_arn},
        )
        self.jobs_api = JobsApi(
            self,
            "JobsApi",
            handler=api,
            auth=props.jobs_api_auth,
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
        )
        intake_env = {ENV_INTAKE_BUCKET: self.intake.bucket.bucket_name}
        intake = self._function(
            INTAKE,
            {**common_env, **outputs_env, **queue_env, **intake_env,
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

        self.functions: dict[str, lambda_.Function] = {
            "submit": submit, "poll": poll, "persist": persist, "finalize": finalize,
            "callback": callback, "arm": arm, "api": api, "intake": intake,
        }
        self._grant_least_privilege()

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
            budget_alarm_fraction=props.budget_alarm_fraction,
            dashboard=props.dashboard,
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
        acknowledge(secret, "AwsSolutions-SMG4",
                    "A third-party API key issued in the Cliprise dashboard: Secrets Manager cannot rotate it "
                    "(no rotation API). Rotate by issuing a new key and put-secret-value; the functions pick it "
                    "up within the 5-minute secret cache.")
        skip_checkov(secret, "CKV_AWS_149",
                     "Encrypted with the AWS managed aws/secretsmanager key; only the submit, poll and persist "
                     "roles may read the secret (IAM), so a customer-managed key adds cost only.")
        return secret

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
        )

    # ------------------------------------------------------------------------------------------ permissions
    def _grant_least_privilege(self) -> None:
        """Give each function exactly what its handler calls, and explain each wildcard resource."""
        for name, function in self.functions.items():
            self.task_table.grant(function, *TABLE_ACTIONS[name])
        for name in EVENT_PUBLISHERS:
            self.event_bus.grant_put_events_to(self.functions[name])
        for name in SECRET_READERS:
            _grant_secret_value(self.api_key_secret, self.functions[name])

        persist = self.functions["persist"]
        objects = self.outputs_bucket.arn_for_objects("*")
        persist.add_to_role_policy(iam.PolicyStatement(actions=list(PERSIST_OBJECT_ACTIONS), resources=[objects]))
        if self.outputs_bucket.encryption_key is not None:
            # SSE-KMS bucket: a data key per object, and Decrypt to complete a multipart upload.
            self.outputs_bucket.encryption_key.grant(persist, "kms:GenerateDataKey", "kms:Decrypt")
        acknowledge_wildcard_resource(
            _role(persist), objects,
            "Results are written under <prefix><job_id>/ where the prefix comes from each job, so the object "
            "ARN ends in /*; only object writes, tagging, abort and delete are allowed (no read, list, or "
            "version delete).",
        )

        self._grant_api_and_intake()

        self.state_machine.grant_start_execution(self.functions["submit"])
        # states:SendTaskSuccess/Failure/Heartbeat: callback wakes the waiting execution; arm ends the
        # wait itself when a callback came first or the job is no longer waiting; api's cancel wakes it too.
        self.state_machine.grant_task_response(self.functions["callback"])
        self.state_machine.grant_task_response(self.functions["api"])
        # Not on arm's own role policy: the state machine references arm's ARN, and a Lambda function
        # depends on its role's default policy, so that policy naming the state machine would close a
        # dependency cycle (StateMachine -> ArmFunction -> ArmRole DefaultPolicy -> StateMachine). The
        # grant goes to a separate inline policy of the same role, which nothing depends on.
        self.state_machine.grant_task_response(
            iam.Role.from_role_name(self, "ArmRoleForTaskResponse", _role(self.functions["arm"]).role_name)
        )

        machine_role = self.state_machine.role
        acknowledge(
            machine_role, "AwsSolutions-IAM5[Resource::*]",
            "X-Ray tracing (xray:PutTraceSegments, PutTelemetryRecords, GetSamplingRules, GetSamplingTargets) and "
            "CloudWatch Logs vended delivery (logs:*LogDelivery*, PutResourcePolicy, DescribeResourcePolicies, "
            "DescribeLogGroups) support no resource-level permissions; CDK adds exactly these for tracing and "
            "logging.",
        )
        for task_function in (self.functions[name] for name in ("arm", "poll", "persist", "finalize")):
            acknowledge_wildcard_resource(
                machine_role, f"{task_function.function_arn}:*",
                "lambda:InvokeFunction on the qualified ARNs (versions, aliases) of a function this state "
                "machine's tasks invoke; added by CDK's LambdaInvoke task for that one function.",
            )

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


    def _grant_api_and_intake(self) -> None:
        """The jobs API and the intake queue jobs (SendMessage); api presigns result downloads (GetObject on
        the outputs), intake writes manifest reports (PutObject on the outputs); submit reads intake objects."""
        api, intake, submit = self.functions["api"], self.functions["intake"], self.functions["submit"]
        for function in (api, intake):
            self.jobs_queue.grant_send_messages(function)

        objects = self.outputs_bucket.arn_for_objects("*")
        api.add_to_role_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[objects]))
        intake.add_to_role_policy(iam.PolicyStatement(actions=["s3:PutObject"], resources=[objects]))
        if self.outputs_bucket.encryption_key is not None:
            self.outputs_bucket.encryption_key.grant(api, "kms:Decrypt")
            self.outputs_bucket.encryption_key.grant(intake, "kms:GenerateDataKey")
        acknowledge_wildcard_resource(
            _role(api), objects,
            "The jobs API presigns download URLs of a job's results, which lie under <prefix><job_id>/ with the "
            "prefix chosen by each job, so the object ARN ends in /*; read only (s3:GetObject): no list, no write.",
        )
        acknowledge_wildcard_resource(
            _role(intake), objects,
            "The intake function writes each manifest's report next to the manifest's results, under the output "
            "prefix the manifest chose, so the object ARN ends in /*; s3:PutObject only: no read, list or delete.",
        )

        self.intake.grant_read_objects(
            submit,
            "submit presigns the s3:// input URLs of jobs that point into the intake bucket (the inbox rules' "
            "{object_url}, manifest inputs), so the provider can fetch them; any key may be named, so the object "
            "ARN ends in /*. Read only (GetObject, GetObjectVersion).",
        )


def _grant_secret_value(secret: secretsmanager.ISecret, function: lambda_.IFunction) -> None:
    """``secretsmanager:GetSecretValue`` on ``secret`` -- the one call Powertools' ``get_secret`` makes.

    (CDK's ``grant_read`` would add ``DescribeSecret`` too.) A secret imported by name has a partial ARN; the
    six-character suffix Secrets Manager appends is matched with ``-??????``, as CDK does. A secret with its
    own KMS key also gets ``kms:Decrypt`` through Secrets Manager only.
    """
    arn = secret.secret_full_arn or f"{secret.secret_arn}-??????"
    function.add_to_role_policy(iam.PolicyStatement(actions=["secretsmanager:GetSecretValue"], resources=[arn]))
    if secret.encryption_key is not None:
        stack = Stack.of(function)
        secret.encryption_key.grant(
            iam.PrincipalWithConditions(_role(function), {
                "StringEquals": {"kms:ViaService": f"secretsmanager.{stack.region}.{stack.url_suffix}"},
            }),
            "kms:Decrypt",
        )


def _role(function: lambda_.IFunction) -> iam.IRole:
    if function.role is None:  # build_function gives every function its own role: never None
        raise RuntimeError(f"{function.node.path} has no execution role")
    return function.role
