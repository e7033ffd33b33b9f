"""The API Gateway stand-in of the embedded stack: both HTTP APIs of a deployment on one loopback port.

``POST /callbacks/{token}`` reaches the ``callback`` handler and every other path the jobs API (``api``), each as
the HTTP API (payload format 2.0) event API Gateway would send.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler
from typing import Any

from mediagen.redact import redact
from mediagen.sandbox.loopback import LoopbackServer

#: The account id events carry locally (moto's default account).
ACCOUNT = "123456789012"
#: The request header that names the calling IAM principal locally (a test acting as two callers sets it); the
#: gateway moves it into ``requestContext.authorizer.iam`` as API Gateway's IAM authorizer does, and never passes
#: it on as a header. The handler trusts ``requestContext`` only: in a deployment this header means nothing.
PRINCIPAL_HEADER = "x-mediagen-local-principal"
#: The caller of a local request without :data:`PRINCIPAL_HEADER`.
DEFAULT_LOCAL_PRINCIPAL = f"arn:aws:iam::{ACCOUNT}:user/local"


class Gateway:
    """Plays API Gateway (HTTP API, payload 2.0) on loopback for both APIs of a deployment:
    ``POST /callbacks/{token}`` -> the ``callback`` handler, every other path -> the jobs API (``api``).
    Each request becomes an event for the real handler; the handler's answer is sent back. IAM (SigV4)
    signatures are not checked locally, but every jobs API event names its caller as API Gateway's IAM
    authorizer does (``requestContext.authorizer.iam``): the principal ARN of the :data:`PRINCIPAL_HEADER`
    header, else :data:`DEFAULT_LOCAL_PRINCIPAL`.

    Args:
        invoke: calls a function's handler by name (``EmbeddedStack.invoke``).
        functions: the names of the functions the template has (read on each request, so it may be filled in
            after the gateway starts).

    Attributes:
        received: every callback request (time, status answered, redacted body).
    """

    def __init__(self, invoke: Callable[[str, dict[str, Any]], Any], functions: Mapping[str, str]) -> None:
        self.received: list[dict[str, Any]] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
                path, _, query = self.path.partition("?")
                status, payload, headers = 404, '{"message":"Not Found"}', {"content-type": "application/json"}
                if path.startswith("/callbacks/"):
                    if self.command == "POST" and "callback" in functions:
                        token = path.rstrip("/").rsplit("/", 1)[-1]
                        # Headers as API Gateway passes them (lower-case): Clipia signs its webhooks in them.
                        event = http_api_event("POST", path, {"token": token}, body,
                                                route="POST /callbacks/{token}",
                                                headers={k.lower(): v for k, v in self.headers.items()})
                        response = invoke("callback", event)
                        status, payload = int(response.get("statusCode", 200)), str(response.get("body", ""))
                    gateway.received.append({"at": time.time(), "status": status,
                                             "body": redact(_json_or_text(body))})
                elif "api" in functions:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    principal = headers.pop(PRINCIPAL_HEADER, "") or DEFAULT_LOCAL_PRINCIPAL
                    event = http_api_event(self.command, path, {}, body or None, query=query, headers=headers,
                                            domain=f"127.0.0.1:{gateway.port}", principal=principal)
                    response = invoke("api", event)
                    status, payload = int(response.get("statusCode", 200)), str(response.get("body") or "")
                    headers = {str(k).lower(): str(v) for k, v in (response.get("headers") or {}).items()}
                data = payload.encode()
                self.send_response(status)
                for name, value in headers.items():
                    if name not in ("content-length", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def __getattr__(self, name: str) -> Any:
                if name.startswith("do_"):  # every method reaches the API, as with API Gateway's ANY routes
                    return self._serve
                raise AttributeError(name)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = LoopbackServer(("127.0.0.1", 0), Handler, self)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/callbacks"

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def api_url(self) -> str:
        """The jobs API's endpoint (what the ``JobsApiUrl`` stack output gives in a deployment)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._server.serve_in_thread("local-gateway")

    def stop(self) -> None:
        """Stop serving and hang up open connections (a client gone mid-answer is not an error here)."""
        self._server.stop()


def _json_or_text(body: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body[:200]


def http_api_event(method: str, path: str, path_parameters: dict[str, str], body: str | None, *,
                    route: str = "$default", query: str = "", headers: dict[str, str] | None = None,
                    domain: str = "127.0.0.1", principal: str | None = None) -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) proxy event, as in events/aws/; with ``principal`` (an IAM
    principal ARN), the ``requestContext.authorizer.iam`` block an IAM-authorized route gets."""
    from urllib.parse import parse_qs

    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0", "routeKey": route, "rawPath": path, "rawQueryString": query,
        "headers": {"content-type": "application/json", "x-forwarded-proto": "http", **(headers or {})},
        "requestContext": {"accountId": ACCOUNT, "apiId": "local", "domainName": domain,
                           "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                                    "userAgent": (headers or {}).get("user-agent", "local")},
                           "requestId": uuid.uuid4().hex, "routeKey": route, "stage": "$default",
                           "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                           "timeEpoch": int(now * 1000)},
        "isBase64Encoded": False,
    }
    if principal:
        account = principal.split(":")[4] if principal.count(":") >= 5 else ACCOUNT
        event["requestContext"]["authorizer"] = {"iam": {
            "accessKey": "ASIALOCAL", "accountId": account, "callerId": "AIDALOCAL", "principalOrgId": None,
            "userArn": principal, "userId": "AIDALOCAL", "cognitoIdentity": None}}
    if path_parameters:
        event["pathParameters"] = path_parameters
    if query:
        event["queryStringParameters"] = {k: ",".join(v) for k, v in parse_qs(query).items()}
    if body is not None:
        event["body"] = body
    return event
