"""The jobs HTTP API: submit, follow and cancel jobs, browse the model catalog -> the ``api`` function.

Routes (all Lambda proxy integrations, payload format 2.0, with the one ``api`` function; :data:`JOBS_API_ROUTES`)::

    POST /jobs                    submit a job (the body is a job document) -> 202 + job id
    GET  /jobs/{job_id}           the job's task record (status, outputs with presigned download URLs)
    POST /jobs/{job_id}/cancel    cancel a job that has not finished
    GET  /models                  the model catalog
    GET  /models/{model_id}       one model: its request blocks and parameters
    GET  /openapi.json            the API's OpenAPI document

* API Gateway v2 HTTP API, separate from the callback API (different callers, different auth).
* **Auth** (``auth``): ``"iam"`` (default) puts an IAM authorizer on every route: callers sign their
  requests with SigV4 and need ``execute-api:Invoke`` on the route's ARN
  (``arn:aws:execute-api:<region>:<account>:<api id>/$default/<METHOD>/<path>``), e.g. ``awscurl --service
  execute-api``. ``"none"`` leaves the routes open (cdk-nag ``AwsSolutions-APIG4`` acknowledged): only for an
  API that is reachable solely through the caller's own authenticating gateway or private integration.
* ``$default`` stage, auto-deployed, throttled (burst / rate per second), JSON access logs to a log group of its
  own (:func:`mediagen_infra.http_api.logged_default_stage`), with the signing IAM principal of each request.
* No CORS: server-to-server clients sign their requests; no browser calls this API.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk.aws_apigatewayv2_authorizers import HttpIamAuthorizer
from aws_cdk.aws_apigatewayv2_integrations import HttpLambdaIntegration
from constructs import Construct

from .compliance import acknowledge
from .http_api import logged_default_stage

#: ``(method, path)`` of every route; the path parameter names are part of the contract with the handler.
JOBS_API_ROUTES: tuple[tuple[str, str], ...] = (
    ("POST", "/jobs"),
    ("GET", "/jobs/{job_id}"),
    ("POST", "/jobs/{job_id}/cancel"),
    ("GET", "/models"),
    ("GET", "/models/{model_id}"),
    ("GET", "/openapi.json"),
)
#: Allowed values of the ``auth`` option.
JOBS_API_AUTH_MODES: tuple[str, ...] = ("iam", "none")
#: Access log fields the jobs API adds: who signed the request (empty without IAM auth).
CALLER_LOG_FIELDS: dict[str, str] = {
    "callerAccount": "$context.identity.accountId",
    "callerArn": "$context.identity.userArn",
}
#: Why routes without an authorizer are accepted when the deployer asks for ``auth="none"``.
NO_AUTH_REASON = (
    "The deployer chose no auth (jobs_api_auth='none'), e.g. for a private integration behind their own "
    "authenticating gateway; the default is IAM (SigV4) on every route. The stage stays throttled and logged."
)


class JobsApi(Construct):
    """HTTP API with the routes of :data:`JOBS_API_ROUTES`, all integrated with ``handler``.

    Args:
        scope: parent construct.
        construct_id: construct id.
        handler: the ``api`` function.
        auth: ``"iam"`` (SigV4 on every route) or ``"none"`` (see the module docstring).
        throttle_burst_limit: stage-wide burst limit (requests).
        throttle_rate_limit: stage-wide steady rate limit (requests per second).
        log_retention: retention of the access log group.
        log_removal_policy: what happens to the access log group when the stack is deleted.

    Attributes:
        http_api: the API.
        stage: the ``$default`` stage.
        access_logs: the access log group.
        routes: the routes, by route key (e.g. ``"GET /jobs/{job_id}"``).
        api_url: ``https://<api id>.execute-api.<region>.<suffix>`` (no trailing slash); the routes are below it.

    Raises:
        ValueError: ``auth`` is not one of :data:`JOBS_API_AUTH_MODES`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: lambda_.IFunction,
        auth: str = "iam",
        throttle_burst_limit: int = 50,
        throttle_rate_limit: int = 25,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        log_removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        if auth not in JOBS_API_AUTH_MODES:
            raise ValueError(f"jobs API auth {auth!r}: expected one of {', '.join(JOBS_API_AUTH_MODES)}")
        super().__init__(scope, construct_id)

        self.http_api = apigwv2.HttpApi(
            self,
            "HttpApi",
            api_name=f"{Stack.of(self).stack_name}-jobs",
            description="mediagen: submit, follow and cancel jobs; browse the model catalog",
            create_default_stage=False,
            default_authorizer=HttpIamAuthorizer() if auth == "iam" else None,
        )
        # One integration (one Lambda permission per route) for every route: the handler routes by route key.
        integration = HttpLambdaIntegration("ApiIntegration", handler)
        self.routes: dict[str, apigwv2.HttpRoute] = {}
        for method, path in JOBS_API_ROUTES:
            (route,) = self.http_api.add_routes(
                path=path, methods=[apigwv2.HttpMethod(method)], integration=integration
            )
            self.routes[f"{method} {path}"] = route
            if auth == "none":
                acknowledge(route, "AwsSolutions-APIG4", NO_AUTH_REASON)

        self.stage, self.access_logs = logged_default_stage(
            self,
            self.http_api,
            throttle_burst_limit=throttle_burst_limit,
            throttle_rate_limit=throttle_rate_limit,
            log_retention=log_retention,
            log_removal_policy=log_removal_policy,
            extra_log_fields=CALLER_LOG_FIELDS,
        )
        # The $default stage serves at the API endpoint's root.
        self.api_url = self.http_api.api_endpoint
