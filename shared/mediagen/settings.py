"""Settings: one pydantic model, read from the environment once per cold start.

Every Lambda gets its settings as environment variables set by the CDK construct
(``infra/mediagen_infra/pipeline.py``); the local stack sets the same variables. Logic receives a
``Settings`` instance; nothing else reads ``os.environ``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field

#: Production endpoint [003:10-13] [002:133-140].
CLIPRISE_BASE_URL = "https://business.api.cliprise.app/app/cliprise"
#: The Host header the provider requires exactly; any other host answers HTTP 400 with an empty body
#: [002:119].
CLIPRISE_HOST = "business.api.cliprise.app"


class Settings(BaseModel):
    """Runtime configuration. Field aliases are the environment variable names.

    Durations are in seconds.
    """

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")

    #: The job table. The variable (and the stack output ``TaskTableName``, the table's logical id ``TaskTable``)
    #: keep their deployed names: renaming the logical id would replace the deployed table and its records.
    job_table: str = Field("mediagen-tasks", alias="MEDIAGEN_TASK_TABLE")
    outputs_bucket: str = Field("mediagen-outputs", alias="MEDIAGEN_OUTPUTS_BUCKET")
    event_bus: str = Field("mediagen", alias="MEDIAGEN_EVENT_BUS")
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
    #: Seconds a job that found no free slot (or was rate limited) waits before it is delivered again.
    requeue_delay_seconds: int = Field(30, alias="MEDIAGEN_REQUEUE_DELAY_SECONDS", ge=0, le=43200)

    #: A SUBMITTING claim older than this is an attempt that died mid-generate (must exceed the submit
    #: Lambda's timeout, 60 s by default).
    submit_lease_seconds: int = Field(180, alias="MEDIAGEN_SUBMIT_LEASE_SECONDS", ge=1)

    # HTTP timeouts towards the provider.
    connect_timeout_seconds: float = Field(5.0, alias="MEDIAGEN_CONNECT_TIMEOUT_SECONDS", gt=0)
    read_timeout_seconds: float = Field(30.0, alias="MEDIAGEN_READ_TIMEOUT_SECONDS", gt=0)

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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once (per Lambda container)."""
    return Settings.from_env()
