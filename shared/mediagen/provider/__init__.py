"""The Cliprise Business API transport: a typed httpx client and its typed errors.

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

from mediagen.provider.cliprise import (
    DEFAULT_TIMEOUT,
    DEFAULT_USER_AGENT,
    ClipriseClient,
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
    DownloadFailed,
    DownloadUnavailable,
    InsufficientCredits,
    ProviderAuthError,
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
    RateLimited,
    UnexpectedResponse,
    error_from_response,
    error_from_transport_error,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "DEFAULT_USER_AGENT",
    "AmbiguousSubmit",
    "ClipriseClient",
    "Download",
    "DownloadFailed",
    "DownloadUnavailable",
    "Failed",
    "GenerateAccepted",
    "InsufficientCredits",
    "Processing",
    "ProviderAuthError",
    "ProviderError",
    "ProviderRejected",
    "ProviderUnavailable",
    "RateLimited",
    "Succeeded",
    "TaskState",
    "UnexpectedResponse",
    "error_from_response",
    "error_from_transport_error",
    "install_log_redaction",
]
