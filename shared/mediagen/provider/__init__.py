"""The provider port and its adapters (Cliprise, Clipia), the Cliprise transport, and the typed errors.

The port is :mod:`mediagen.provider.port` (``Provider``, its states and capabilities); the adapters are
:class:`ClipriseProvider` and :class:`ClipiaProvider`. The names ``Succeeded``/``Failed``/``Processing``
exported here are still the Cliprise transport's states; the port's own are in
:mod:`mediagen.provider.port`.

>>> from mediagen.provider import ClipriseClient, Succeeded
>>> with ClipriseClient(api_key) as client:                     # doctest: +SKIP
...     task = client.generate({"model": "qwen-image-2", "input": {"prompt": "a lake"}})
...     state = client.status(task.task_id)
...     if isinstance(state, Succeeded):
...         with client.open_download(task.task_id, state.file_url) as download:
...             for chunk in download.iter_bytes():
...                 ...

See :mod:`mediagen.provider.cliprise` for the endpoints and :mod:`mediagen.provider.errors` for what each
error class means to a caller.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mediagen.provider.clipia import ClipiaProvider, ClipiaSettings
    from mediagen.provider.cliprise import (
        DEFAULT_TIMEOUT,
        DEFAULT_USER_AGENT,
        ClipriseClient,
        ClipriseProvider,
        Download,
        Failed,
        GenerateAccepted,
        Processing,
        Succeeded,
        TaskState,
        install_log_redaction,
    )
    from mediagen.provider.errors import (
        AmbiguousSubmit,
        CapabilityNotSupported,
        DownloadFailed,
        DownloadUnavailable,
        IdempotencyKeyReuse,
        InsufficientCredits,
        ProviderAuthError,
        ProviderError,
        ProviderRejected,
        ProviderUnavailable,
        RateLimited,
        RequestInProgress,
        ResultNotReady,
        UnexpectedResponse,
        error_from_response,
        error_from_transport_error,
    )
    from mediagen.provider.port import (
        Cancelled,
        JobState,
        Provider,
        ProviderName,
        Queued,
        ResultOutput,
        Running,
        Submitted,
        SupportsCancel,
        SupportsEstimate,
        SupportsWebhooks,
        WebhookEvent,
        idempotency_key,
    )

#: Where each exported name lives. Imported on first use (PEP 562): a function that needs only the port (the
#: callback) or the errors does not load httpx, pydantic and both adapters at its cold start.
_EXPORTS = {
    "ClipiaProvider": "mediagen.provider.clipia",
    "ClipiaSettings": "mediagen.provider.clipia",
    "DEFAULT_TIMEOUT": "mediagen.provider.cliprise",
    "DEFAULT_USER_AGENT": "mediagen.provider.cliprise",
    "ClipriseClient": "mediagen.provider.cliprise",
    "ClipriseProvider": "mediagen.provider.cliprise",
    "Download": "mediagen.provider.cliprise",
    "Failed": "mediagen.provider.cliprise",
    "GenerateAccepted": "mediagen.provider.cliprise",
    "Processing": "mediagen.provider.cliprise",
    "Succeeded": "mediagen.provider.cliprise",
    "TaskState": "mediagen.provider.cliprise",
    "install_log_redaction": "mediagen.provider.cliprise",
    "AmbiguousSubmit": "mediagen.provider.errors",
    "CapabilityNotSupported": "mediagen.provider.errors",
    "DownloadFailed": "mediagen.provider.errors",
    "DownloadUnavailable": "mediagen.provider.errors",
    "IdempotencyKeyReuse": "mediagen.provider.errors",
    "InsufficientCredits": "mediagen.provider.errors",
    "ProviderAuthError": "mediagen.provider.errors",
    "ProviderError": "mediagen.provider.errors",
    "ProviderRejected": "mediagen.provider.errors",
    "ProviderUnavailable": "mediagen.provider.errors",
    "RateLimited": "mediagen.provider.errors",
    "RequestInProgress": "mediagen.provider.errors",
    "ResultNotReady": "mediagen.provider.errors",
    "UnexpectedResponse": "mediagen.provider.errors",
    "error_from_response": "mediagen.provider.errors",
    "error_from_transport_error": "mediagen.provider.errors",
    "Cancelled": "mediagen.provider.port",
    "JobState": "mediagen.provider.port",
    "Provider": "mediagen.provider.port",
    "ProviderName": "mediagen.provider.port",
    "Queued": "mediagen.provider.port",
    "ResultOutput": "mediagen.provider.port",
    "Running": "mediagen.provider.port",
    "Submitted": "mediagen.provider.port",
    "SupportsCancel": "mediagen.provider.port",
    "SupportsEstimate": "mediagen.provider.port",
    "SupportsWebhooks": "mediagen.provider.port",
    "WebhookEvent": "mediagen.provider.port",
    "idempotency_key": "mediagen.provider.port",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_TIMEOUT",
    "DEFAULT_USER_AGENT",
    "AmbiguousSubmit",
    "Cancelled",
    "CapabilityNotSupported",
    "ClipiaProvider",
    "ClipiaSettings",
    "ClipriseClient",
    "ClipriseProvider",
    "Download",
    "DownloadFailed",
    "DownloadUnavailable",
    "Failed",
    "GenerateAccepted",
    "IdempotencyKeyReuse",
    "InsufficientCredits",
    "JobState",
    "Processing",
    "Provider",
    "ProviderAuthError",
    "ProviderError",
    "ProviderName",
    "ProviderRejected",
    "ProviderUnavailable",
    "Queued",
    "RateLimited",
    "RequestInProgress",
    "ResultNotReady",
    "ResultOutput",
    "Running",
    "Submitted",
    "Succeeded",
    "SupportsCancel",
    "SupportsEstimate",
    "SupportsWebhooks",
    "TaskState",
    "UnexpectedResponse",
    "WebhookEvent",
    "error_from_response",
    "error_from_transport_error",
    "idempotency_key",
    "install_log_redaction",
]
