"""callback: ``POST /callbacks/{token}`` (API Gateway HTTP API) -> wake the job's waiting execution.

Answers 202 at once, whatever the token or payload: the provider learns nothing about which jobs exist,
and nothing in the payload is trusted (see ``mediagen.completion``). No catalog, no API key, no X-Ray SDK:
this path must start fast.
"""

from __future__ import annotations

import base64
from typing import Any

from mediagen.completion import receive_callback
from mediagen.observability import get_logger
from mediagen.wiring import completion_ports

logger = get_logger()
ACCEPTED = {"statusCode": 202, "headers": {"content-type": "application/json"}, "body": '{"received":true}'}


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    token = str((event.get("pathParameters") or {}).get("token") or "")
    body = event.get("body")
    if body and event.get("isBase64Encoded"):
        body = base64.b64decode(body).decode("utf-8", "replace")
    jobs, waker = completion_ports("callback")
    outcome = receive_callback(token, body, jobs=jobs, waker=waker)
    logger.info("callback received", outcome=outcome)  # never the token: it is the URL's credential
    return ACCEPTED
