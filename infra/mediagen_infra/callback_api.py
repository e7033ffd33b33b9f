"""The HTTP API that receives provider callbacks: ``POST /callbacks/{token}`` -> the ``callback`` function.

Cliprise POSTs to the ``callBackUrl`` of a job when it finishes ("Webhooks" [000:142-169]); delivery is not
guaranteed and not signed, so a callback only wakes the job's execution early and the status endpoint
stays the truth. Clipia POSTs signed webhooks to the job's ``webhook_url`` of the same shape ([004:163-173]);
the handler verifies them on the raw body before anything changes. The submit step sets the URL to
``<CallbackUrlBase>/<token>``. The handler answers 200 to everything it accepts (401 only to a signed
webhook that does not verify).

* API Gateway v2 HTTP API, one route, Lambda proxy integration (payload format 2.0).
* **No authorizer**: the provider cannot sign or authenticate its requests; the unguessable per-job token
  in the path is the credential (the ``callback`` function rejects unknown tokens, and a forged call can
  at worst trigger one early status check).
* ``$default`` stage, auto-deployed, throttled (burst / rate per second), JSON access logs to a log group
  with a retention (:func:`mediagen_infra.http_api.logged_default_stage`). The request path is deliberately
  *not* logged: it carries the token; the route key (``POST /callbacks/{token}``) is logged instead.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk.aws_apigatewayv2_integrations import HttpLambdaIntegration
from constructs import Construct

from .compliance import acknowledge
from .http_api import logged_default_stage

#: The callback route (the path parameter name is part of the contract with the callback handler).
CALLBACK_ROUTE_PATH = "/callbacks/{token}"
#: Path of the callback URLs, without the token.
CALLBACK_PATH_PREFIX = "/callbacks"


class CallbackApi(Construct):
    """HTTP API with ``POST /callbacks/{token}`` integrated with ``callback``.

    Args:
        scope: parent construct.
        construct_id: construct id.
        callback: the ``callback`` function.
        throttle_burst_limit: stage-wide burst limit (requests).
        throttle_rate_limit: stage-wide steady rate limit (requests per second).
        log_retention: retention of the access log group.
        log_removal_policy: what happens to the access log group when the stack is deleted.

    Attributes:
        http_api: the API.
        stage: the ``$default`` stage.
        access_logs: the access log group.
        callback_url_base: ``https://<api id>.execute-api.<region>.<suffix>/callbacks`` (a token); a job's
            callback URL is ``<callback_url_base>/<token>``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        callback: lambda_.IFunction,
        throttle_burst_limit: int = 100,
        throttle_rate_limit: int = 50,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        log_removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        super().__init__(scope, construct_id)

        # The stage is created below (throttling and access logs are stage settings).
        self.http_api = apigwv2.HttpApi(
            self,
            "HttpApi",
            # Default would be the construct id; the stack name tells stages apart in the console.
            api_name=f"{Stack.of(self).stack_name}-callbacks",
            description="mediagen: provider callbacks (POST /callbacks/{token})",
            create_default_stage=False,
        )
        # No authorizer, on purpose: the provider cannot sign or authenticate its callbacks, so the
        # unguessable per-job token in the path is the credential (see the module docstring).
        routes = self.http_api.add_routes(
            path=CALLBACK_ROUTE_PATH,
            methods=[apigwv2.HttpMethod.POST],
            integration=HttpLambdaIntegration("CallbackIntegration", callback),
        )
        for route in routes:
            acknowledge(route, "AwsSolutions-APIG4",
                        "Provider callbacks cannot be authenticated: Cliprise neither signs nor authenticates "
                        "them (seed 000, Webhooks). The unguessable per-job token in the path is the credential; "
                        "the handler trusts nothing in the body and a forged call only triggers one early "
                        "status check.")

        self.stage, self.access_logs = logged_default_stage(
            self,
            self.http_api,
            throttle_burst_limit=throttle_burst_limit,
            throttle_rate_limit=throttle_rate_limit,
            log_retention=log_retention,
            log_removal_policy=log_removal_policy,
        )
        # The $default stage serves at the API endpoint's root.
        self.callback_url_base = f"{self.http_api.api_endpoint}{CALLBACK_PATH_PREFIX}"
