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
