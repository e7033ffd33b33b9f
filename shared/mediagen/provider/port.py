"""The provider port: what the orchestration asks of any generative-media provider.

Two adapters implement it: :class:`mediagen.provider.cliprise.ClipriseProvider` (Cliprise Business API)
and :class:`mediagen.provider.clipia.ClipiaProvider` (Clipia, on its official SDK). The orchestration
names :class:`Provider` only; what differs between providers is absorbed by the adapters or declared as a
capability:

==========================  ======================  ==================================================
aspect                      Cliprise                Clipia
==========================  ======================  ==================================================
``native_idempotency``      ``False``: an unclear   ``True``: ``Idempotency-Key``, same key + same body
                            submit may charge twice -> same request for 24 h ([004:96-98], [004:121])
outputs per request         one (``fileURL``)       several (``output.images[]``, video, audio...)
status vs result            one call                two calls ([004:117-119])
:class:`SupportsCancel`     no                      yes (OpenAPI ``POST /v1/requests/{id}/cancel``)
:class:`SupportsEstimate`   no (catalog prices)     yes (``POST /v1/models/{slug}/estimate``)
:class:`SupportsWebhooks`   no (unsigned callback)  yes (HMAC-SHA256 signed, [004:92-94], [004:167-169])
==========================  ======================  ==================================================

Every failure is a :class:`~mediagen.provider.errors.ProviderError` subclass; the class alone tells the
caller what to do (see :mod:`mediagen.provider.errors`).

Example::

    provider: Provider = ...
    key = idempotency_key(provider.name, job_id)
    submitted = provider.submit(body, idempotency_key=key, webhook_url=url)
    state = provider.status(submitted.provider_task_id)
    if isinstance(state, Succeeded):
        for output in provider.result(submitted.provider_task_id):
            with provider.open_download(submitted.provider_task_id, output) as download:
                for chunk in download.iter_bytes():
                    ...
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias, runtime_checkable

from mediagen.redact import redact_text

if TYPE_CHECKING:  # only a type here: the port itself loads no HTTP client (the callback imports it)
    from mediagen.provider.download import Download

ProviderName = Literal["cliprise", "clipia"]
"""The providers mediagen has adapters for."""

#: Fixed namespace of the idempotency keys (never change it: keys of in-flight jobs would change).
IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1c2b0e-4d0a-5e39-9a57-3c8f0d2e7b41")


def idempotency_key(provider: str, job_id: str) -> str:
    """The idempotency key of a job at a provider: UUID v5 of :data:`IDEMPOTENCY_NAMESPACE` and
    ``"{provider}:{job_id}"``, as a string (``"xxxxxxxx-xxxx-5xxx-..."``).

    Deterministic: every attempt at submitting the same job sends the same key, so a provider with native
    idempotency returns the same request instead of creating (and charging) a second one ([004:96-98]).

    Raises:
        ValueError: ``provider`` or ``job_id`` is empty.
    """
    if not provider or not job_id:
        raise ValueError("idempotency_key needs a provider name and a job id")
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{provider}:{job_id}"))


# --------------------------------------------------------------------------------------------------
# Values.


@dataclass(frozen=True, slots=True)
class Submitted:
    """The provider accepted the request.

    Attributes:
        provider_task_id: the provider's id for the request (Cliprise ``taskId``, Clipia ``request_id``).
        cost: credits the provider reserved or charged, in the provider's own unit, when it said so
            (Clipia ``cost``, [004:165]); ``None`` otherwise.
        queue_position: position in the provider's queue at submit time, when given.
    """

    provider_task_id: str
    cost: int | None = None
    queue_position: int | None = None


@dataclass(frozen=True, slots=True)
class Queued:
    """Waiting in the provider's queue (Clipia ``IN_QUEUE``). ``queue_position`` >= 0 when known."""

    queue_position: int | None = None


@dataclass(frozen=True, slots=True)
class Running:
    """Being generated (Clipia ``IN_PROGRESS``, Cliprise ``processing``).

    Attributes:
        progress: percent done, 0-100, when the provider reports it.
        queue_position: when the provider still reports one.
    """

    progress: int | None = None
    queue_position: int | None = None


@dataclass(frozen=True, slots=True)
class Succeeded:
    """Finished with a result: fetch it with ``result`` (Clipia ``COMPLETED``, Cliprise ``success``).

    Attributes:
        cost: credits charged, when the status answer carries it.
    """

    cost: int | None = None


@dataclass(frozen=True, slots=True)
class Failed:
    """The provider reports the generation failed.

    Attributes:
        message: the provider's reason, redacted.
        code: the provider's error code, when it sent one.
        refunded: ``True`` when the provider documents that a failed request is refunded (Clipia:
            "FAILED -- credits fully refunded", overview page), ``None`` when unknown (Cliprise).
    """

    message: str
    code: str | None = None
    refunded: bool | None = None


@dataclass(frozen=True, slots=True)
class Cancelled:
    """Cancelled (Clipia ``CANCELED``, also from outside the API). Terminal; nothing to fetch.

    Attributes:
        refunded: ``True`` when the provider documents a refund (Clipia: a cancelled request costs 0,
            SDK ``ResultResponse.cost``), else ``None``.
    """

    refunded: bool | None = None


JobState: TypeAlias = Queued | Running | Succeeded | Failed | Cancelled
"""What ``status`` says about a request."""

#: The states after which the provider does nothing more with the request.
TERMINAL_STATES: tuple[type, ...] = (Succeeded, Failed, Cancelled)


@dataclass(frozen=True, slots=True, repr=False)
class ResultOutput:
    """One file a finished request produced.

    Attributes:
        url: where to fetch it (temporary; a Cliprise ``fileURL`` carries the API key in its query:
            never log it unredacted -- ``repr`` redacts it). ``None`` when the provider serves the file
            from its own endpoint (Cliprise without ``fileURL``): ``open_download`` knows how.
        content_type: the media type when the provider says it, else ``None`` (the download's
            ``Content-Type`` then decides).
        kind: ``"image"``, ``"video"``, ``"audio"`` ... when the provider's answer says which, else ``None``.
        index: position among the request's outputs, from 0.
        metadata: other fields the provider gave for this output (``width``, ``height``, ``duration``...).
    """

    url: str | None
    content_type: str | None = None
    kind: str | None = None
    index: int = 0
    metadata: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __repr__(self) -> str:
        shown = redact_text(self.url) if self.url is not None else None
        return (f"ResultOutput(url={shown!r}, content_type={self.content_type!r}, kind={self.kind!r}, "
                f"index={self.index})")


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """A verified provider callback.

    Attributes:
        provider_task_id: the request it is about (Clipia ``request_id``): deliveries may repeat, so
            handle them idempotently by this id ([004:173]).
        state: :class:`Succeeded` or :class:`Failed`.
        outputs: the result files when succeeded (may be empty: then ask ``result``).
        cost: credits charged, when given.
        delivery_id: the provider's id of this delivery (``X-Clipia-Webhook-Id``), when given.
    """

    provider_task_id: str
    state: Succeeded | Failed
    outputs: tuple[ResultOutput, ...] = ()
    cost: int | None = None
    delivery_id: str | None = None


# --------------------------------------------------------------------------------------------------
# The port.


@runtime_checkable
class Provider(Protocol):
    """A generative-media provider, as the orchestration uses it.

    Implementations raise only :class:`~mediagen.provider.errors.ProviderError` subclasses (plus
    ``ValueError`` for arguments refused before anything is sent).
    """

    @property
    def name(self) -> ProviderName:
        """``"cliprise"`` or ``"clipia"``: stored on the job record, part of the idempotency key."""
        ...

    @property
    def native_idempotency(self) -> bool:
        """``True`` when a repeated submit with the same ``idempotency_key`` cannot create or charge a
        second request (then an :class:`~mediagen.provider.errors.AmbiguousSubmit` may be retried later
        with the same key and the same body)."""
        ...

    def submit(self, body: Mapping[str, Any], *, idempotency_key: str,
               webhook_url: str | None = None) -> Submitted:
        """Send one generation request.

        Args:
            body: the provider's wire body as the catalog encoded it.
            idempotency_key: :func:`idempotency_key` of the job (ignored by providers without native
                idempotency).
            webhook_url: where the provider should call back when done, or ``None``.

        Raises:
            ProviderRejected (and subclasses): definitive refusal, nothing spent -- do not retry.
            RateLimited, ProviderUnavailable (incl. RequestInProgress): nothing new was created; retry later.
            AmbiguousSubmit: the outcome is unknown.
        """
        ...

    def status(self, provider_task_id: str) -> JobState:
        """Where the request is. Raises ProviderRejected (unknown id, bad key), RateLimited,
        ProviderUnavailable (safe to repeat), UnexpectedResponse."""
        ...

    def result(self, provider_task_id: str) -> list[ResultOutput]:
        """Every output of a completed request (at least one). Raises ResultNotReady when it has not
        completed, plus the errors of :meth:`status`."""
        ...

    def open_download(self, provider_task_id: str,
                      output: ResultOutput) -> contextlib.AbstractContextManager[Download]:
        """A streaming download of one output: ``with provider.open_download(id, output) as d:``.
        Raises DownloadFailed (definitive) or DownloadUnavailable (safe to repeat) on ``__enter__``."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class SupportsCancel(Protocol):
    """Optional capability: cancel a request at the provider."""

    def cancel(self, provider_task_id: str) -> None:
        """Ask the provider to cancel (and refund) the request. Raises the errors of ``status`` and
        CapabilityNotSupported when the provider has no cancel operation after all."""
        ...


@runtime_checkable
class SupportsEstimate(Protocol):
    """Optional capability: ask the provider what a request will cost."""

    def estimate(self, body: Mapping[str, Any]) -> int:
        """Credits (the provider's unit) the request in ``body`` would cost. Raises the errors of
        ``submit`` except AmbiguousSubmit (an estimate charges nothing)."""
        ...


@runtime_checkable
class SupportsWebhooks(Protocol):
    """Optional capability: the provider signs its callbacks, so a callback can be trusted once verified."""

    def verify_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> WebhookEvent:
        """Verify a delivery's signature over the raw body, then parse it.

        Raises:
            WebhookVerificationError (and subclasses): malformed header, bad signature, stale or future
                timestamp, malformed payload. Never carries a secret.
        """
        ...


__all__ = [
    "IDEMPOTENCY_NAMESPACE",
    "TERMINAL_STATES",
    "Cancelled",
    "Failed",
    "JobState",
    "Provider",
    "ProviderName",
    "Queued",
    "ResultOutput",
    "Running",
    "Submitted",
    "Succeeded",
    "SupportsCancel",
    "SupportsEstimate",
    "SupportsWebhooks",
    "WebhookEvent",
    "idempotency_key",
]
