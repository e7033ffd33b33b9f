"""Settings: one pydantic model, read from the environment once per cold start.

Every Lambda gets its settings as environment variables set by the CDK construct
(``infra/mediagen_infra/pipeline.py``); the local stack sets the same variables. Logic receives a
``Settings`` instance; nothing else reads ``os.environ``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: Production endpoint [003:10-13] [002:133-140].
CLIPRISE_BASE_URL = "https://business.api.cliprise.app/app/cliprise"
#: The Host header the provider requires exactly; any other host answers HTTP 400 with an empty body
#: [002:119].
CLIPRISE_HOST = "business.api.cliprise.app"
#: Clipia's production API ([004:111-119]).
CLIPIA_BASE_URL = "https://api.clipia.ai"
#: The providers mediagen has adapters for, in the order a deployment offers them.
PROVIDER_NAMES = ("cliprise", "clipia")


class Settings(BaseModel):
    """Runtime configuration. Field aliases are the environment variable names.

    Durations are in seconds.
    """

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")

    #: The job table. The variable (and the stack output ``TaskTableName``, the table's logical id ``TaskTable``)
    #: keep their deployed names: renaming the logical id would replace the deployed table and its records.
    #: Resource names have no default (an empty value is "not configured"): a function that needs one and does
    #: not get it fails on its first use naming the variable (:data:`REQUIRED`), instead of writing to a
    #: plausible-looking table or bucket of someone else's.
    job_table: str = Field("", alias="MEDIAGEN_TASK_TABLE")
    outputs_bucket: str = Field("", alias="MEDIAGEN_OUTPUTS_BUCKET")
    event_bus: str = Field("", alias="MEDIAGEN_EVENT_BUS")
    state_machine_arn: str = Field("", alias="MEDIAGEN_STATE_MACHINE_ARN")
    #: Secrets Manager secret id (name or ARN) holding the Cliprise API key as its SecretString.
    api_key_secret_id: str = Field("", alias="MEDIAGEN_API_KEY_SECRET_ID")
    #: A key given directly (local runs and the CLI); takes precedence over the secret.
    api_key: str = Field("", alias="CLIPRISE_API_KEY", repr=False)
    cliprise_base_url: str = Field(CLIPRISE_BASE_URL, alias="MEDIAGEN_CLIPRISE_BASE_URL")
    cliprise_host: str = Field(CLIPRISE_HOST, alias="MEDIAGEN_CLIPRISE_HOST")
    #: Base of the callback route; the submit step appends ``/<token>``. Empty: no callBackUrl is sent.
    callback_base_url: str = Field("", alias="MEDIAGEN_CALLBACK_BASE_URL")
    #: Source field of every EventBridge event mediagen publishes.
    event_source: str = Field("mediagen", alias="MEDIAGEN_EVENT_SOURCE")
    #: The jobs queue (the HTTP API and the S3 intake enqueue accepted jobs here).
    jobs_queue_url: str = Field("", alias="MEDIAGEN_JOBS_QUEUE_URL")
    #: The intake bucket (job manifests under ``jobs/``, media drops under ``inbox/``).
    intake_bucket: str = Field("", alias="MEDIAGEN_INTAKE_BUCKET")
    #: Media-drop rules, a JSON array of ``{"prefix", "model", "input_template", "output_prefix"}``
    #: (set by the construct from its ``inbox_rules``; see :mod:`mediagen.intake`).
    inbox_rules: str = Field("[]", alias="MEDIAGEN_INBOX_RULES")
    #: Validity of the presigned URLs that hand ``s3://`` inputs to the provider (see :mod:`mediagen.inputs`).
    input_url_seconds: int = Field(6 * 3600, alias="MEDIAGEN_INPUT_URL_SECONDS", ge=60, le=7 * 24 * 3600)
    #: Validity of the download URLs the HTTP API and the CLI give for outputs.
    download_url_seconds: int = Field(900, alias="MEDIAGEN_DOWNLOAD_URL_SECONDS", ge=1, le=7 * 24 * 3600)
    #: IAM principal ARNs (comma separated) that may read and cancel every job through the jobs API, whoever
    #: owns it (:mod:`mediagen.principals`); set by the construct's ``operator_principals``.
    operator_principals: str = Field("", alias="MEDIAGEN_OPERATOR_PRINCIPALS")

    # Polling schedule: first wait, growth factor, cap [002:193]
    # "wait 2 s, then 4 s, 8 s, 16 s, up to a maximum interval (e.g. 60 s)").
    poll_initial_seconds: int = Field(2, alias="MEDIAGEN_POLL_INITIAL_SECONDS", ge=1)
    poll_factor: float = Field(2.0, alias="MEDIAGEN_POLL_FACTOR", ge=1.0)
    poll_max_seconds: int = Field(60, alias="MEDIAGEN_POLL_MAX_SECONDS", ge=1)
    #: Each wait is shortened by up to this fraction at random, so jobs submitted together do not poll in step.
    poll_jitter: float = Field(0.2, alias="MEDIAGEN_POLL_JITTER", ge=0.0, lt=1.0)
    # Deadline from submit to a terminal provider status, per modality.
    deadline_image_seconds: int = Field(15 * 60, alias="MEDIAGEN_DEADLINE_IMAGE_SECONDS", gt=0)
    deadline_video_seconds: int = Field(60 * 60, alias="MEDIAGEN_DEADLINE_VIDEO_SECONDS", gt=0)
    deadline_audio_seconds: int = Field(15 * 60, alias="MEDIAGEN_DEADLINE_AUDIO_SECONDS", gt=0)

    # Spend guards (0 = unlimited).
    #: Credits the deployment may commit per UTC day (atomic counter; checked against each job's estimate).
    daily_credit_budget: int = Field(0, alias="MEDIAGEN_DAILY_CREDIT_BUDGET", ge=0)
    #: Jobs that may be at the provider at once (its concurrent-job limit); extra jobs wait in the queue.
    max_in_flight: int = Field(0, alias="MEDIAGEN_MAX_IN_FLIGHT", ge=0)
    #: Clipia's own limits (its credits are not Cliprise's): the two above apply to Cliprise.
    clipia_daily_credit_budget: int = Field(0, alias="MEDIAGEN_CLIPIA_DAILY_CREDIT_BUDGET", ge=0)
    clipia_max_in_flight: int = Field(0, alias="MEDIAGEN_CLIPIA_MAX_IN_FLIGHT", ge=0)
    #: Seconds a job that found no free slot (or was rate limited) waits before it is delivered again.
    requeue_delay_seconds: int = Field(30, alias="MEDIAGEN_REQUEUE_DELAY_SECONDS", ge=0, le=43200)
    #: Longest a job may wait to be sent (rate limits, no free slot), from when it was recorded; then it ends
    #: EXPIRED (nothing spent), or its next fallback is tried.
    max_wait_seconds: int = Field(6 * 3600, alias="MEDIAGEN_MAX_WAIT_SECONDS", ge=1)

    #: A SUBMITTING claim older than this is an attempt that died mid-generate (must exceed the submit
    #: Lambda's timeout, 60 s by default).
    submit_lease_seconds: int = Field(180, alias="MEDIAGEN_SUBMIT_LEASE_SECONDS", ge=1)

    # Clipia (read here only; :class:`mediagen.provider.clipia.ClipiaSettings` is built from these fields).
    #: A Clipia key given directly (local runs and the CLI); wins over the secret. Absent both: Clipia is off.
    clipia_api_key: str = Field("", alias="CLIPIA_API_KEY", repr=False)
    #: Secrets Manager secret id (name or ARN) whose SecretString is the Clipia API key.
    clipia_api_key_secret_id: str = Field("", alias="MEDIAGEN_CLIPIA_API_KEY_SECRET_ID")
    #: Clipia webhook signing secrets given directly, comma-separated (two during a rotation).
    clipia_webhook_secrets: str = Field("", alias="CLIPIA_WEBHOOK_SECRETS", repr=False)
    #: Secrets Manager secret holding the webhook signing secret, or a JSON array of them (rotation).
    clipia_webhook_secret_id: str = Field("", alias="MEDIAGEN_CLIPIA_WEBHOOK_SECRET_ID")
    clipia_base_url: str = Field(CLIPIA_BASE_URL, alias="MEDIAGEN_CLIPIA_BASE_URL")
    #: ``Authorization`` scheme: ``Key`` ([004:136-141]) or ``Bearer`` (the SDK's).
    clipia_auth_scheme: Literal["Key", "Bearer"] = Field("Key", alias="MEDIAGEN_CLIPIA_AUTH_SCHEME")
    #: Attempts per Clipia call (submit included: same Idempotency-Key) on 429, 5xx, timeouts.
    clipia_attempts: int = Field(4, alias="MEDIAGEN_CLIPIA_ATTEMPTS", ge=1, le=10)
    #: Total seconds one Clipia call may spend waiting between attempts (keep under the Lambda's timeout).
    clipia_retry_budget_seconds: float = Field(20.0, alias="MEDIAGEN_CLIPIA_RETRY_BUDGET_SECONDS", ge=0, le=600)
    #: The providers this deployment offers, comma-separated (set by the construct on the functions that
    #: accept jobs, which hold no key); empty: every provider whose key or key secret is configured.
    providers: str = Field("", alias="MEDIAGEN_PROVIDERS")

    # HTTP timeouts towards the provider.
    connect_timeout_seconds: float = Field(5.0, alias="MEDIAGEN_CONNECT_TIMEOUT_SECONDS", gt=0)
    read_timeout_seconds: float = Field(30.0, alias="MEDIAGEN_READ_TIMEOUT_SECONDS", gt=0)

    def daily_budget_for(self, provider: str) -> int:
        """The daily credit budget at ``provider``, in its own credits (0: unlimited). Credits of two providers
        are not comparable, so each has its own: ``MEDIAGEN_DAILY_CREDIT_BUDGET`` for Cliprise,
        ``MEDIAGEN_CLIPIA_DAILY_CREDIT_BUDGET`` for Clipia."""
        return self.clipia_daily_credit_budget if provider == "clipia" else self.daily_credit_budget

    def max_in_flight_for(self, provider: str) -> int:
        """Jobs that may be at ``provider`` at once (0: unlimited): ``MEDIAGEN_MAX_IN_FLIGHT`` for Cliprise,
        ``MEDIAGEN_CLIPIA_MAX_IN_FLIGHT`` for Clipia."""
        return self.clipia_max_in_flight if provider == "clipia" else self.max_in_flight

    def deadline_seconds(self, modality: str) -> int:
        """Seconds allowed from submit to a terminal provider status for ``image|video|audio``."""
        return {
            "image": self.deadline_image_seconds,
            "video": self.deadline_video_seconds,
            "audio": self.deadline_audio_seconds,
        }.get(modality, self.deadline_video_seconds)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``); unknown variables are ignored.

        Raises:
            pydantic.ValidationError: a variable is present but malformed (names the variable).
        """
        env = os.environ if environ is None else environ
        names = {f.alias for f in cls.model_fields.values() if f.alias}
        return cls.model_validate({k: v for k, v in env.items() if k in names})


_TABLE, _BUS, _BUCKET, _QUEUE = "MEDIAGEN_TASK_TABLE", "MEDIAGEN_EVENT_BUS", "MEDIAGEN_OUTPUTS_BUCKET", \
    "MEDIAGEN_JOBS_QUEUE_URL"

#: The variables each Lambda function cannot run without (its resources), by function name.
REQUIRED: dict[str, tuple[str, ...]] = {
    "submit": (_TABLE, _BUS, "MEDIAGEN_STATE_MACHINE_ARN", _QUEUE),
    "poll": (_TABLE, _BUS),
    "persist": (_TABLE, _BUS, _BUCKET),
    "finalize": (_TABLE, _BUS),
    "callback": (_TABLE,),
    "arm": (_TABLE,),
    "api": (_TABLE, _BUS, _BUCKET, _QUEUE),
    "intake": (_TABLE, _BUS, _BUCKET, _QUEUE, "MEDIAGEN_INTAKE_BUCKET"),
    "reconcile": (_TABLE, _BUS),
    "sweep": (_TABLE, _QUEUE),
}


def settings_for(function: str, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings for the Lambda function ``function`` (a key of :data:`REQUIRED`), checked.

    Raises:
        ConfigurationError: a variable the function needs is missing or empty (names each one).
        pydantic.ValidationError: a variable is malformed (names it).
    """
    from mediagen.errors import ConfigurationError

    settings = Settings.from_env(environ)
    by_alias = {f.alias: name for name, f in Settings.model_fields.items() if f.alias}
    missing = [var for var in REQUIRED[function] if not getattr(settings, by_alias[var])]
    if missing:
        raise ConfigurationError(f"the {function} function needs the environment variable(s) {', '.join(missing)}")
    return settings


@cache
def get_settings(function: str | None = None) -> Settings:
    """The process-wide settings, read once (per Lambda container); checked for ``function`` when given."""
    return Settings.from_env() if function is None else settings_for(function)


def check_at_cold_start(function: str) -> None:
    """Inside Lambda (``AWS_LAMBDA_FUNCTION_NAME`` is set), read and check ``function``'s settings while the
    container starts: a missing variable fails the function's init with its name (Lambda reports it on the
    invocation), never a job. Elsewhere (the embedded stack imports the handlers before it sets their
    environment; tests) nothing happens here and the check runs on first use.

    Raises:
        ConfigurationError: a variable ``function`` needs is missing or empty (names each one).
    """
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        get_settings(function)
