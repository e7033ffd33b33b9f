"""What the pipeline's HTTP APIs share: a throttled ``$default`` stage with JSON access logs.

Both the callback API (:mod:`mediagen_infra.callback_api`) and the jobs API (:mod:`mediagen_infra.jobs_api`)
serve from one ``$default`` stage, auto-deployed, throttled stage-wide (burst / rate per second), that writes
one JSON access log line per request to a log group of its own with a retention.

The access log line never holds the request path (the callback path carries the job's token): the route key
(e.g. ``POST /callbacks/{token}``) is logged instead. An API may add fields (:func:`access_log_format`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import jsii
from aws_cdk import RemovalPolicy
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_logs as logs
from constructs import Construct

from .compliance import skip_log_group_checks

#: Access log line (JSON): request identity, route and outcome, never the path.
#: Each value is quoted in the line, except ``error``: ``$context.error.messageString`` is already quoted
#: (and escaped) by API Gateway.
ACCESS_LOG_FIELDS: dict[str, str] = {
    "requestId": "$context.requestId",
    "requestTime": "$context.requestTime",
    "sourceIp": "$context.identity.sourceIp",
    "userAgent": "$context.identity.userAgent",
    "httpMethod": "$context.httpMethod",
    "routeKey": "$context.routeKey",
    "protocol": "$context.protocol",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationStatus": "$context.integrationStatus",
    "integrationLatency": "$context.integrationLatency",
    "integrationError": "$context.integrationErrorMessage",
}


def access_log_format(extra_fields: Mapping[str, str] | None = None) -> str:
    """The access log line: :data:`ACCESS_LOG_FIELDS` (then ``extra_fields``) as a JSON object, plus the
    quoted error message.

    Args:
        extra_fields: more ``name -> $context variable`` pairs (e.g. the IAM caller of a signed request).
    """
    fields = {**ACCESS_LOG_FIELDS, **(extra_fields or {})}
    quoted = ",".join(f"{json.dumps(key)}:{json.dumps(value)}" for key, value in fields.items())
    return "{" + quoted + ',"error":$context.error.messageString}'


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogSettings:
    """``IAccessLogSettings`` (an interface in CDK, without a struct to instantiate)."""

    def __init__(self, destination: apigwv2.IAccessLogDestination,
                 log_format: apigateway.AccessLogFormat) -> None:
        self._destination = destination
        self._format = log_format

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        """Where access logs go."""
        return self._destination

    @property
    def format(self) -> apigateway.AccessLogFormat:
        """The access log line format."""
        return self._format


def logged_default_stage(
    scope: Construct,
    http_api: apigwv2.IHttpApi,
    *,
    throttle_burst_limit: int,
    throttle_rate_limit: int,
    log_retention: logs.RetentionDays,
    log_removal_policy: RemovalPolicy,
    extra_log_fields: Mapping[str, str] | None = None,
) -> tuple[apigwv2.HttpStage, logs.LogGroup]:
    """Create ``AccessLogs`` (a log group) and ``DefaultStage`` (``$default``) in ``scope`` for ``http_api``.

    Args:
        scope: the API's construct.
        http_api: an API created with ``create_default_stage=False``.
        throttle_burst_limit: stage-wide burst limit (requests).
        throttle_rate_limit: stage-wide steady rate limit (requests per second).
        log_retention: retention of the access log group.
        log_removal_policy: what happens to the access log group when the stack is deleted.
        extra_log_fields: more access log fields (see :func:`access_log_format`).

    Returns:
        The stage and its access log group.
    """
    access_logs = logs.LogGroup(scope, "AccessLogs", retention=log_retention, removal_policy=log_removal_policy)
    skip_log_group_checks(access_logs)
    stage = apigwv2.HttpStage(
        scope,
        "DefaultStage",
        http_api=http_api,
        stage_name="$default",
        auto_deploy=True,
        throttle=apigwv2.ThrottleSettings(burst_limit=throttle_burst_limit, rate_limit=throttle_rate_limit),
        access_log_settings=_AccessLogSettings(
            apigwv2.LogGroupLogDestination(access_logs),
            apigateway.AccessLogFormat.custom(access_log_format(extra_log_fields)),
        ),
    )
    return stage, access_logs
