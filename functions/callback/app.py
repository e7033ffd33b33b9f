"""callback: ``POST /callbacks/{token}`` (API Gateway HTTP API) -> wake the job's waiting execution.

Answers **200** ``{"received":true}`` to everything it accepts, whatever the token or payload: the provider
learns nothing about which jobs exist (a forged or unknown token gets the same answer as a genuine one), and
a 2xx is what both providers ask for ([000:142-169]: "respond with 2xx within 10 seconds"; [004:173]). Nothing
in an unsigned payload is trusted (see ``mediagen.completion``).

A job whose provider signs its webhooks (Clipia) is verified first, on the raw body: a delivery that does not
verify (missing or bad ``X-Clipia-Signature``, timestamp outside +-300 s) changes nothing and is answered
**401** without detail. Clipia retries a non-2xx delivery with a fresh timestamp and signature ([004:173]),
so a genuine delivery refused because of a secret rotation still gets through once the secret is
configured; every other outcome (replayed delivery id, late, about another request) is a 200, which stops
the provider's retries. No catalog, no X-Ray SDK: this path must start fast; it answers in well under 10 s
(one read, one conditional write, one ``SendTaskSuccess``).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from mediagen.completion import WebhookRefused, receive_callback
from mediagen.observability import get_logger
from mediagen.provider.port import SupportsWebhooks, WebhookEvent
from mediagen.settings import check_at_cold_start
from mediagen.wiring import completion_ports

logger = get_logger()
check_at_cold_start("callback")  # a missing variable fails the init, naming it
ACCEPTED = {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": '{"received":true}'}
REFUSED = {"statusCode": 401, "headers": {"content-type": "application/json"}, "body": '{"message":"Unauthorized"}'}


class SigningSecrets:
    """Verifies signed webhooks with the signing secrets alone: the callback function holds no provider API key.

    The secrets are read per delivery (Powertools' cache keeps them 5 minutes), so a rotated secret is
    picked up without a new container.
    """

    def __init__(self, secrets: tuple[str, ...]) -> None:
        self._secrets = secrets

    def verify_webhook(self, headers: dict[str, str], raw_body: bytes) -> WebhookEvent:
        from mediagen.provider.clipia_webhooks import verify_delivery

        return verify_delivery(headers, raw_body, self._secrets)


def webhook_verifier(provider: str) -> SupportsWebhooks | None:
    """What verifies ``provider``'s webhooks, or None when the provider does not sign them (Cliprise,
    [000:142-169]: then nothing is read, so this path never touches a secret).

    Raises:
        ConfigurationError: the provider signs its webhooks but this deployment has no signing secret.
    """
    if provider != "clipia":
        return None
    from mediagen.settings import get_settings
    from mediagen.wiring import clipia_webhook_secrets

    return SigningSecrets(clipia_webhook_secrets(get_settings("callback")))


def raw_body(event: dict[str, Any]) -> bytes:
    """The request body exactly as received (a signature covers these bytes)."""
    body = event.get("body")
    if not body:
        return b""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=False)
        except (binascii.Error, ValueError):
            return b""
    return str(body).encode("utf-8", "surrogateescape")


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    token = str((event.get("pathParameters") or {}).get("token") or "")
    headers = {str(k): str(v) for k, v in (event.get("headers") or {}).items()}
    jobs, waker = completion_ports("callback")
    try:
        outcome = receive_callback(token, raw_body(event), jobs=jobs, waker=waker, headers=headers,
                                   verifiers=webhook_verifier)
    except WebhookRefused as exc:
        logger.warning("webhook refused", reason=exc.message)  # never the token: it is the URL's credential
        return REFUSED
    logger.info("callback received", outcome=outcome)
    return ACCEPTED
