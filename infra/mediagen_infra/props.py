"""``MediaGenPipelineProps``: the options of :class:`mediagen_infra.pipeline.MediaGenPipeline`, each checked
as AWS would check it at deploy time, and the function environment variables the construct sets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns

from .bundling import REPO_ROOT
from .inbox import InboxRule, check_inbox_rules
from .intake import ENV_INPUT_ALLOW
from .jobs_api import JOBS_API_AUTH_MODES, NO_AUTH_MOVED
from .lambdas import ARCHITECTURE, PERSIST, provider_environment
from .monitoring import Telemetry

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
#: Clipia's own spend limits (its credits are not Cliprise's); the two above are Cliprise's.
ENV_CLIPIA_DAILY_CREDIT_BUDGET = "MEDIAGEN_CLIPIA_DAILY_CREDIT_BUDGET"
ENV_CLIPIA_MAX_IN_FLIGHT = "MEDIAGEN_CLIPIA_MAX_IN_FLIGHT"
ENV_JOBS_QUEUE_URL = "MEDIAGEN_JOBS_QUEUE_URL"
ENV_INTAKE_BUCKET = "MEDIAGEN_INTAKE_BUCKET"
#: JSON array of :meth:`InboxRule.to_json` objects, read by the intake function.
ENV_INBOX_RULES = "MEDIAGEN_INBOX_RULES"
# Clipia (the second provider): its key and webhook signing secret, and the providers a deployment offers.
ENV_CLIPIA_API_KEY_SECRET_ID = "MEDIAGEN_CLIPIA_API_KEY_SECRET_ID"  # noqa: S105 -- a variable name
ENV_CLIPIA_WEBHOOK_SECRET_ID = "MEDIAGEN_CLIPIA_WEBHOOK_SECRET_ID"  # noqa: S105 -- a variable name
#: Comma-separated providers the deployment offers (set on the functions that accept jobs).
ENV_PROVIDERS = "MEDIAGEN_PROVIDERS"
#: SecretString of a created Clipia key secret until the owner puts the key in (the functions refuse it).
CLIPIA_API_KEY_PLACEHOLDER = "REPLACE_ME_WITH_THE_CLIPIA_API_KEY"
#: IAM principals that may read and cancel every job through the jobs API (the api function).
ENV_OPERATOR_PRINCIPALS = "MEDIAGEN_OPERATOR_PRINCIPALS"
#: An operator principal: an IAM role or user, or an assumed-role ARN (the role counts).
OPERATOR_PRINCIPAL_PATTERN = re.compile(
    r"arn:aws[a-z-]*:(iam::\d{12}:(role|user)/[\w+=,.@/-]{1,512}|sts::\d{12}:assumed-role/[\w+=,.@-]+/[\w+=,.@-]+)")
#: Variables the construct sets itself; ``extra_environment`` may not override them.
RESERVED_ENVIRONMENT: frozenset[str] = frozenset({
    ENV_TASK_TABLE, ENV_OUTPUTS_BUCKET, ENV_EVENT_BUS, ENV_STATE_MACHINE_ARN, ENV_API_KEY_SECRET_ID,
    ENV_CALLBACK_BASE_URL, ENV_DAILY_CREDIT_BUDGET, ENV_MAX_IN_FLIGHT, ENV_CLIPIA_DAILY_CREDIT_BUDGET,
    ENV_CLIPIA_MAX_IN_FLIGHT, ENV_JOBS_QUEUE_URL, ENV_INTAKE_BUCKET,
    ENV_INBOX_RULES,
    ENV_INPUT_ALLOW,
    ENV_CLIPIA_API_KEY_SECRET_ID, ENV_CLIPIA_WEBHOOK_SECRET_ID, ENV_PROVIDERS,
    ENV_OPERATOR_PRINCIPALS,
})
#: ``source`` of the job events (``MEDIAGEN_EVENT_SOURCE``; ``extra_environment`` may change it).
ENV_EVENT_SOURCE = "MEDIAGEN_EVENT_SOURCE"
DEFAULT_EVENT_SOURCE = "mediagen"

#: Server access logs of the outputs bucket are kept this long.
ACCESS_LOG_EXPIRATION = Duration.days(365)

_REMOVAL_POLICIES = {RemovalPolicy.RETAIN, RemovalPolicy.DESTROY, RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE}
_SQS_MIN_RETENTION_S, _SQS_MAX_RETENTION_S = 60, 14 * 24 * 3600


def _default_architecture() -> lambda_.Architecture:
    return ARCHITECTURE


@dataclass(frozen=True)
class MediaGenPipelineProps:
    """Options of :class:`mediagen_infra.pipeline.MediaGenPipeline`; every field has a production default.

    Attributes:
        source_root: repository root holding ``functions/``, ``shared/mediagen/`` and ``pyproject.toml``.
        api_key_secret: an existing secret whose SecretString is the Cliprise API key; ``None`` creates one
            holding :data:`API_KEY_PLACEHOLDER`. Only submit, poll and persist may read it (with the secret's
            KMS key, if it has one and you import it with that key).
        outputs_bucket: an existing bucket for results; ``None`` creates a private, versioned, logged one.
            persist gets only :data:`.PERSIST_OBJECT_ACTIONS` on its objects (plus ``kms:GenerateDataKey`` and
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
        clipia_daily_credit_budget, clipia_max_jobs_in_flight: the same two limits for Clipia, in Clipia's credits
            (``MEDIAGEN_CLIPIA_DAILY_CREDIT_BUDGET``, ``MEDIAGEN_CLIPIA_MAX_IN_FLIGHT``); ``None``: no limit.
        budget_alarm_fraction: share of ``daily_credit_budget`` at which the budget alarm fires (0-1].
        inbox_rules: S3 inbox rules (see :class:`.InboxRule`): one intake bucket notification per rule, and the
            intake function's ``MEDIAGEN_INBOX_RULES``. Prefixes may not be equal or nested (S3 refuses
            overlapping notifications), and their JSON must fit :data:`.INBOX_RULES_MAX_BYTES`. ``()``: no inbox
            (``MediaGen-<stage>`` uses :data:`.DEFAULT_INBOX_RULES` unless its context says otherwise).
        input_allow: the ``s3://bucket/prefix/`` locations jobs' ``s3://`` inputs may name (submit's
            ``MEDIAGEN_INPUT_ALLOW``); ``None``: the intake bucket's ``inbox/`` and ``inputs/``.
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
        jobs_api_auth: ``"iam"``: SigV4 on every route of the jobs API; each job belongs to the principal that
            signed it (see :mod:`mediagen_infra.jobs_api`). ``"none"`` is refused: use ``allow_unauthenticated``.
        allow_unauthenticated: no authorizer on the jobs API (a synth warning): only behind your own
            authenticating gateway or private integration -- every caller is then one principal, ``anonymous``,
            and sees every job sent that way.
        operator_principals: IAM role or user ARNs (``arn:aws:iam::<account>:role/<name>``) that may read and
            cancel every job through the jobs API, including the S3 intake's and the jobs queue's
            (``MEDIAGEN_OPERATOR_PRINCIPALS``); anyone else sees only the jobs it sent.
        jobs_api_throttle_burst: burst limit of the jobs API's stage (requests).
        jobs_api_throttle_rate: steady rate limit of the jobs API's stage (requests per second).
        telemetry: metrics namespace and service name of the functions, alarms and dashboard (default
            ``MediaGen`` / ``mediagen``; ``MediaGen-<stage>`` uses ``Telemetry.for_stage(stage)``).
        clipia_api_key_secret: an existing secret whose SecretString is the Clipia API key. Given (or with
            ``enable_clipia``), Clipia is offered: submit, poll and persist may read the key
            (``MEDIAGEN_CLIPIA_API_KEY_SECRET_ID``); otherwise a job naming Clipia is refused at accept
            (``provider_not_configured``).
        clipia_webhook_secret: an existing secret holding Clipia's webhook signing secret (or a JSON array of
            them, during a rotation); only callback may read it (``MEDIAGEN_CLIPIA_WEBHOOK_SECRET_ID``).
        enable_clipia: offer Clipia and create the secrets not given: a key secret holding
            :data:`CLIPIA_API_KEY_PLACEHOLDER` and a webhook secret holding a random value (never a guessable
            placeholder: a forged webhook must not verify), with stack outputs; put the real values in.
        cliprise_base_url, clipia_base_url: the providers' API base URLs (``https://...``), passed to the
            provider-calling functions as ``MEDIAGEN_CLIPRISE_BASE_URL`` / ``MEDIAGEN_CLIPIA_BASE_URL``;
            ``""``: the provider's default.
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
    clipia_daily_credit_budget: int | None = None
    clipia_max_jobs_in_flight: int | None = None
    budget_alarm_fraction: float = 0.8
    inbox_rules: Sequence[InboxRule] = ()
    input_allow: Sequence[str] | None = None
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
    allow_unauthenticated: bool = False
    operator_principals: Sequence[str] = ()
    jobs_api_throttle_burst: int = 50
    jobs_api_throttle_rate: int = 25
    telemetry: Telemetry = field(default_factory=Telemetry)
    cliprise_base_url: str = ""
    clipia_base_url: str = ""
    clipia_api_key_secret: secretsmanager.ISecret | None = None
    clipia_webhook_secret: secretsmanager.ISecret | None = None
    enable_clipia: bool = False

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
        if self.jobs_api_auth == "none":
            raise ValueError(f"jobs_api_auth: {NO_AUTH_MOVED}")
        if self.jobs_api_auth not in JOBS_API_AUTH_MODES:
            raise ValueError(f"jobs_api_auth must be one of {', '.join(repr(m) for m in JOBS_API_AUTH_MODES)}, "
                             f"got {self.jobs_api_auth!r}")
        if isinstance(self.operator_principals, str):
            raise ValueError("operator_principals must be a list of IAM principal ARNs, not one string")
        for principal in self.operator_principals:
            if not OPERATOR_PRINCIPAL_PATTERN.fullmatch(str(principal)):
                raise ValueError(f"operator_principals: {str(principal)[:200]!r} is not an IAM role or user ARN "
                                 "(arn:aws:iam::<account>:role/<name> or ...:user/<name>)")
        if self.jobs_api_throttle_burst < 0 or self.jobs_api_throttle_rate < 0:
            raise ValueError("jobs_api_throttle_burst and jobs_api_throttle_rate must be >= 0")
        for name in ("dlq_retention", "jobs_retention"):
            seconds = getattr(self, name).to_seconds()
            if not _SQS_MIN_RETENTION_S <= seconds <= _SQS_MAX_RETENTION_S:
                raise ValueError(f"{name} must be between 1 minute and 14 days")
        for name in ("daily_credit_budget", "max_jobs_in_flight", "clipia_daily_credit_budget",
                     "clipia_max_jobs_in_flight"):
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
        provider_environment(self.provider_base_urls, self.extra_environment)  # raises on a bad URL

    @property
    def clipia_enabled(self) -> bool:
        """Clipia is offered: its key secret is given or ``enable_clipia`` creates one."""
        return self.enable_clipia or self.clipia_api_key_secret is not None

    @property
    def provider_base_urls(self) -> dict[str, str]:
        """``{"cliprise_base_url": ..., "clipia_base_url": ...}`` as given (``""``: the provider's default)."""
        return {"cliprise_base_url": self.cliprise_base_url, "clipia_base_url": self.clipia_base_url}
