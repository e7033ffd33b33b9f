"""Deployment options of ``MediaGen-<stage>`` from CDK context (``npx cdk deploy -c key=value``).

=========================  =========================================================================
context key                 effect (default)
=========================  =========================================================================
``stage``                  stack name ``MediaGen-<stage>`` (``dev``); see :mod:`mediagen_infra.application`;
                           also the metrics namespace ``MediaGen/<stage>`` and service ``mediagen-<stage>``
``alarm_email``            subscribe this address to the alarm topic (none)
``alarm_topic_arn``        notify this existing SNS topic instead of creating one (a created topic)
``daily_credit_budget``    credits per UTC day, and the budget alarm at 80 % (unlimited)
``max_jobs_in_flight``     jobs at the provider at once (unlimited)
``clipia_daily_credit_budget``, ``clipia_max_jobs_in_flight``  the same two limits for Clipia, in its credits
``submit_max_concurrency`` concurrent submit invocations, 2-1000 (no cap)
``architecture``           ``arm64`` or ``x86_64`` (``arm64``)
``log_retention_days``     one of CloudWatch's retention values: 1, 3, 5, 7, 14, 30, 60, 90, ... (30)
``removal_policy``         ``retain`` or ``destroy``: task table, buckets, log groups (``retain``)
``outputs_bucket_name``    write results to this existing bucket (a created bucket)
``intake_bucket_name``     take manifests and inbox files from this existing bucket (a created bucket)
``api_key_secret_name``    read the API key from this existing secret (a created secret)
``clipia_api_key_secret_name``      offer Clipia, its key in this existing secret (Clipia off)
``clipia_webhook_secret_name``     Clipia's webhook signing secret in this existing secret (a created secret)
``jobs_api_auth``          ``iam`` (SigV4): the jobs HTTP API's auth (``iam``); ``none`` is refused
``allow_unauthenticated``  ``true``: the jobs HTTP API without authentication (a synth warning) (``false``)
``operator_principals``    IAM role/user ARNs, comma separated, that may read and cancel every job (none)
``cliprise_base_url``      Cliprise API base URL, ``https://...`` (the provider's default)
``clipia_base_url``        Clipia API base URL, ``https://...`` (the provider's default)
``inboxRules``             JSON array of inbox rules ``{"prefix", "model", "input_template",
                           "output_prefix"?}``; ``[]``: no inbox (:data:`DEFAULT_INBOX_RULES`)
=========================  =========================================================================

Values given with ``-c`` arrive as strings; ``cdk.json`` may hold numbers. Every value is checked here, and a
bad one stops the synth with a message naming the key.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aws_cdk import RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from constructs import Construct

from .inbox import DEFAULT_INBOX_RULES, InboxRule, check_inbox_rules
from .jobs_api import JOBS_API_AUTH_MODES, NO_AUTH_MOVED
from .monitoring import Telemetry
from .props import MediaGenPipelineProps

#: CloudWatch Logs retention values (days) and their CDK names.
RETENTION_BY_DAYS: dict[int, logs.RetentionDays] = {
    1: logs.RetentionDays.ONE_DAY, 3: logs.RetentionDays.THREE_DAYS, 5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK, 14: logs.RetentionDays.TWO_WEEKS, 30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS, 90: logs.RetentionDays.THREE_MONTHS, 120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS, 180: logs.RetentionDays.SIX_MONTHS, 365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS, 545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS, 1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS, 2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS, 2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS, 3653: logs.RetentionDays.TEN_YEARS,
}
ARCHITECTURES: dict[str, lambda_.Architecture] = {
    "arm64": lambda_.Architecture.ARM_64, "x86_64": lambda_.Architecture.X86_64,
}
REMOVAL_POLICIES: dict[str, RemovalPolicy] = {"retain": RemovalPolicy.RETAIN, "destroy": RemovalPolicy.DESTROY}
#: The stage when the ``stage`` context key is absent.
DEFAULT_STAGE = "dev"
#: The context key of the inbox rules (a JSON array, or a list in ``cdk.json``).
INBOX_RULES_CONTEXT = "inboxRules"
_RULE_FIELDS: dict[str, type] = {"prefix": str, "model": str, "input_template": dict, "output_prefix": str}
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_SNS_ARN = re.compile(r"arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}")
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_SECRET_NAME = re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}")


def _get(scope: Construct, key: str) -> str | None:
    value: Any = scope.node.try_get_context(key)
    if value is None or str(value).strip() == "":
        return None
    return str(value).strip()


def _positive_int(scope: Construct, key: str) -> int | None:
    value = _get(scope, key)
    if value is None:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"context {key}={value!r}: expected a whole number >= 1")
    return int(value)


def _choice(scope: Construct, key: str, choices: dict[str, Any]) -> Any:
    value = _get(scope, key)
    if value is None:
        return None
    if value.lower() not in choices:
        raise ValueError(f"context {key}={value!r}: expected one of {', '.join(choices)}")
    return choices[value.lower()]


def _matching(scope: Construct, key: str, pattern: re.Pattern[str], what: str) -> str | None:
    value = _get(scope, key)
    if value is not None and not pattern.fullmatch(value):
        raise ValueError(f"context {key}={value!r}: expected {what}")
    return value


def alarm_email(scope: Construct) -> str | None:
    """The ``alarm_email`` context value, checked.

    Raises:
        ValueError: not an e-mail address.
    """
    return _matching(scope, "alarm_email", _EMAIL, "an e-mail address")


def inbox_rules(scope: Construct) -> tuple[InboxRule, ...]:
    """The ``inboxRules`` context value as rules; :data:`DEFAULT_INBOX_RULES` when it is absent or empty.

    ``-c inboxRules='[{"prefix": "photos/", "model": "nano-banana", "input_template": {"prompt": "studio shot",
    "image_urls": ["{object_url}"]}}]'`` (a JSON string), or the same array in ``cdk.json``; ``[]``: no inbox.

    Raises:
        ValueError: not a JSON array of rule objects, or a rule is invalid (the message names the key and rule).
    """
    key = INBOX_RULES_CONTEXT
    value: Any = scope.node.try_get_context(key)
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return DEFAULT_INBOX_RULES
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"context {key}: not JSON ({exc.msg} at character {exc.pos})") from exc
    if not isinstance(value, list):
        raise ValueError(f"context {key}: expected a JSON array of rules like "
                         '[{"prefix": "upscale/", "model": "recraft-upscaler", "input_template": '
                         '{"image": "{object_url}"}}]')
    rules = []
    for index, item in enumerate(value):
        where = f"context {key}[{index}]"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: expected an object with prefix, model, input_template (and output_prefix)")
        unknown = sorted(set(item) - set(_RULE_FIELDS))
        missing = sorted({"prefix", "model", "input_template"} - set(item))
        if unknown or missing:
            raise ValueError(f"{where}: " + "; ".join(
                ([f"unknown field(s) {', '.join(unknown)}"] if unknown else [])
                + ([f"missing {', '.join(missing)}"] if missing else [])))
        for name, expected in _RULE_FIELDS.items():
            if name in item and not isinstance(item[name], expected):
                raise ValueError(f"{where}: {name} must be a{'n object' if expected is dict else ' string'}")
        try:
            rules.append(InboxRule(**item))
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from exc
    try:
        check_inbox_rules(rules)
    except ValueError as exc:
        raise ValueError(f"context {key}: {exc}") from exc
    return tuple(rules)


def props_from_context(scope: Construct) -> MediaGenPipelineProps:
    """Pipeline options from the context of ``scope`` (existing resources are imported into ``scope``).

    Raises:
        ValueError: a context value is malformed (the message names the key).
    """
    options: dict[str, Any] = {}
    for key in ("daily_credit_budget", "max_jobs_in_flight", "clipia_daily_credit_budget", "clipia_max_jobs_in_flight",
                "submit_max_concurrency"):
        number = _positive_int(scope, key)
        if number is not None:
            options[key] = number
    architecture = _choice(scope, "architecture", ARCHITECTURES)
    if architecture is not None:
        options["architecture"] = architecture
    days = _positive_int(scope, "log_retention_days")
    if days is not None:
        if days not in RETENTION_BY_DAYS:
            raise ValueError(f"context log_retention_days={days}: expected one of "
                             f"{', '.join(str(d) for d in RETENTION_BY_DAYS)}")
        options["log_retention"] = RETENTION_BY_DAYS[days]
    removal = _choice(scope, "removal_policy", REMOVAL_POLICIES)
    if removal is not None:
        options["removal_policy"] = options["log_removal_policy"] = removal
    if (_get(scope, "jobs_api_auth") or "").lower() == "none":
        raise ValueError(f"context jobs_api_auth='none': {NO_AUTH_MOVED}")
    auth = _choice(scope, "jobs_api_auth", {mode: mode for mode in JOBS_API_AUTH_MODES})
    if auth is not None:
        options["jobs_api_auth"] = auth
    unauthenticated = _choice(scope, "allow_unauthenticated", {"true": True, "false": False})
    if unauthenticated is not None:
        options["allow_unauthenticated"] = unauthenticated
    operators = _get(scope, "operator_principals")
    if operators is not None:
        options["operator_principals"] = tuple(p for p in re.split(r"[\s,]+", operators) if p)  # checked by props
    options["inbox_rules"] = inbox_rules(scope)
    options["telemetry"] = Telemetry.for_stage(_get(scope, "stage") or DEFAULT_STAGE)
    for key in ("cliprise_base_url", "clipia_base_url"):
        url = _get(scope, key)
        if url is not None:
            options[key] = url  # checked by MediaGenPipelineProps (https, host, no query)

    topic_arn = _matching(scope, "alarm_topic_arn", _SNS_ARN, "an SNS topic ARN")
    if topic_arn is not None:
        options["alarm_topic"] = sns.Topic.from_topic_arn(scope, "ExistingAlarmTopic", topic_arn)
    bucket_name = _matching(scope, "outputs_bucket_name", _BUCKET_NAME, "an S3 bucket name")
    if bucket_name is not None:
        options["outputs_bucket"] = s3.Bucket.from_bucket_name(scope, "ExistingOutputsBucket", bucket_name)
    intake_name = _matching(scope, "intake_bucket_name", _BUCKET_NAME, "an S3 bucket name")
    if intake_name is not None:
        options["intake_bucket"] = s3.Bucket.from_bucket_name(scope, "ExistingIntakeBucket", intake_name)
    secret_name = _matching(scope, "api_key_secret_name", _SECRET_NAME, "a Secrets Manager secret name")
    if secret_name is not None:
        options["api_key_secret"] = secretsmanager.Secret.from_secret_name_v2(
            scope, "ExistingApiKeySecret", secret_name
        )
    for key, prop, construct_id in (("clipia_api_key_secret_name", "clipia_api_key_secret", "ExistingClipiaKey"),
                                    ("clipia_webhook_secret_name", "clipia_webhook_secret", "ExistingClipiaWebhook")):
        name = _matching(scope, key, _SECRET_NAME, "a Secrets Manager secret name")
        if name is not None:
            options[prop] = secretsmanager.Secret.from_secret_name_v2(scope, construct_id, name)
    return MediaGenPipelineProps(**options)
