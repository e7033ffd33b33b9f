"""The jobs HTTP API: submit, follow and cancel jobs, browse the model catalog -> the ``api`` function.

Routes (all Lambda proxy integrations, payload format 2.0, with the one ``api`` function; :data:`JOBS_API_ROUTES`)::

    POST /jobs                    submit a job (the body is a job document) -> 202 + job id
    GET  /jobs/{job_id}           the job's task record (status, outputs with presigned download URLs)
    POST /jobs/{job_id}/cancel    cancel a job that has not finished
    GET  /models                  the model catalog
    GET  /models/{model_id}       one model: its request blocks and parameters
    GET  /openapi.json            the API's OpenAPI document

* API Gateway v2 HTTP API, separate from the callback API (different callers, different auth).
* **Auth**: an IAM authorizer on every route: callers sign their requests with SigV4 and need
  ``execute-api:Invoke`` on the route's ARN (``arn:aws:execute-api:<region>:<account>:<api id>/$default/<METHOD>/
  <path>``), e.g. ``awscurl --service execute-api``. The signing principal **owns** the jobs it sends: only it
  (an assumed role's sessions are the role) and the operators (``operator_principals`` ->
  ``MEDIAGEN_OPERATOR_PRINCIPALS``) may read or cancel them (``mediagen.principals``).
  ``allow_unauthenticated=True`` leaves the routes open (cdk-nag ``AwsSolutions-APIG4`` acknowledged, and a synth
  warning): every caller is then the one principal ``anonymous`` and sees every job sent that way -- only for an
  API reachable solely through the caller's own authenticating gateway or private integration. (The former
  ``auth="none"`` is refused with a message naming ``allow_unauthenticated``.)
* ``$default`` stage, auto-deployed, throttled (burst / rate per second), JSON access logs to a log group of its
  own (:func:`mediagen_infra.http_api.logged_default_stage`), with the signing IAM principal of each request.
* No CORS: server-to-server clients sign their requests; no browser calls this API.
"""

from __future__ import annotations

from aws_cdk import Annotations, RemovalPolicy, Stack
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
#: Allowed values of the ``auth`` option (``"none"`` is now ``allow_unauthenticated=True``).
JOBS_API_AUTH_MODES: tuple[str, ...] = ("iam",)
#: The error for the former ``auth="none"``.
NO_AUTH_MOVED = ("jobs API auth 'none' is no longer an auth mode: set allow_unauthenticated=True (context "
                 "allow_unauthenticated=true) to leave the jobs API without authentication, knowing every caller "
                 "then sees every job sent that way")
#: The synth warning of an API without authentication.
NO_AUTH_WARNING = ("the jobs API has no authentication (allow_unauthenticated=True): anyone who can reach it may "
                   "submit paid jobs, and every caller is the same principal 'anonymous', so each sees and may "
                   "cancel the others' jobs. Keep it reachable only through your own authenticating gateway or "
                   "private integration.")
#: Access log fields the jobs API adds: who signed the request (empty without IAM auth).
CALLER_LOG_FIELDS: dict[str, str] = {
    "callerAccount": "$context.identity.accountId",
    "callerArn": "$context.identity.userArn",
}
#: Why routes without an authorizer are accepted when the deployer asks for ``allow_unauthenticated=True``.
NO_AUTH_REASON = (
    "The deployer chose no auth (allow_unauthenticated=True), e.g. for a private integration behind their own "
    "authenticating gateway; the default is IAM (SigV4) on every route. The stage stays throttled and logged."
)


class JobsApi(Construct):
    """HTTP API with the routes of :data:`JOBS_API_ROUTES`, all integrated with ``handler``.

    Args:
        scope: parent construct.
        construct_id: construct id.
        handler: the ``api`` function.
        auth: ``"iam"`` (SigV4 on every route; the only mode).
        allow_unauthenticated: no authorizer on any route (see the module docstring; a synth warning).
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
        ValueError: ``auth`` is not one of :data:`JOBS_API_AUTH_MODES` (``"none"``: names
            ``allow_unauthenticated``).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: lambda_.IFunction,
        auth: str = "iam",
        allow_unauthenticated: bool = False,
        throttle_burst_limit: int = 50,
        throttle_rate_limit: int = 25,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        log_removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        if auth == "none":
            raise ValueError(NO_AUTH_MOVED)
        if auth not in JOBS_API_AUTH_MODES:
            raise ValueError(f"jobs API auth {auth!r}: expected one of {', '.join(JOBS_API_AUTH_MODES)}")
        super().__init__(scope, construct_id)
        if allow_unauthenticated:
            Annotations.of(self).add_warning_v2("mediagen:jobs-api-unauthenticated", NO_AUTH_WARNING)

        self.http_api = apigwv2.HttpApi(
            self,
            "HttpApi",
            api_name=f"{Stack.of(self).stack_name}-jobs",
            description="mediagen: submit, follow and cancel jobs; browse the model catalog",
            create_default_stage=False,
            default_authorizer=None if allow_unauthenticated else HttpIamAuthorizer(),
        )
        # One integration (one Lambda permission per route) for every route: the handler routes by route key.
        integration = HttpLambdaIntegration("ApiIntegration", handler)
        self.routes: dict[str, apigwv2.HttpRoute] = {}
        for method, path in JOBS_API_ROUTES:
            (route,) = self.http_api.add_routes(
                path=path, methods=[apigwv2.HttpMethod(method)], integration=integration
            )
            self.routes[f"{method} {path}"] = route
            if allow_unauthenticated:
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
