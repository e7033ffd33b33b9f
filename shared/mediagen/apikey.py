"""The Cliprise API key: from the environment (local runs) or Secrets Manager (deployed), cached."""

from __future__ import annotations

from mediagen.errors import ConfigurationError
from mediagen.redact import register_secret
from mediagen.settings import Settings

#: Seconds a fetched secret is reused before it is read again (key rotation takes effect within this).
SECRET_MAX_AGE_SECONDS = 300
#: The value the CDK app puts in a new secret; it is not a key.
PLACEHOLDER_PREFIX = "REPLACE_ME"


def get_api_key(settings: Settings) -> str:
    """Return the API key and register it for redaction.

    ``CLIPRISE_API_KEY`` wins when set; otherwise the secret ``MEDIAGEN_API_KEY_SECRET_ID`` is read through
    Powertools Parameters (cached for :data:`SECRET_MAX_AGE_SECONDS`).

    Raises:
        ConfigurationError: neither is configured, or the secret is empty.
    """
    key = settings.api_key
    if not key:
        if not settings.api_key_secret_id:
            raise ConfigurationError("no API key: set CLIPRISE_API_KEY or MEDIAGEN_API_KEY_SECRET_ID")
        from aws_lambda_powertools.utilities import parameters

        key = str(parameters.get_secret(settings.api_key_secret_id, max_age=SECRET_MAX_AGE_SECONDS) or "").strip()
        if not key or key.startswith(PLACEHOLDER_PREFIX):
            raise ConfigurationError(
                f"the API key secret {settings.api_key_secret_id} holds no key yet: put the Cliprise API key in it "
                "(aws secretsmanager put-secret-value --secret-id … --secret-string …)")
    register_secret(key)
    return key
