"""Production wiring: the ports the handlers use, built once per Lambda container from settings.

Everything is lazy: a port's adapter (and its boto3 client) is made the first time a step uses it, so a step
pays only for what it touches (poll never makes an S3 client; the callback path never loads the catalog;
finalize never reads the API key). Every client comes from :func:`mediagen.aws.client`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar, cast

from mediagen.settings import Settings

if TYPE_CHECKING:
    from mediagen.completion import TaskWaker
    from mediagen.provider import ClipriseClient
    from mediagen.provider.port import Provider
    from mediagen.records import JobRepository
    from mediagen.steps.core import Ports

T = TypeVar("T")


class Lazy:
    """Stands in for an adapter and builds it (once, thread-safely) on the first attribute access."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._target: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        target = self._target
        if target is None:
            with self._lock:
                if self._target is None:
                    self._target = self._factory()
                target = self._target
        return getattr(target, name)


def lazy(factory: Callable[[], T]) -> T:
    """``factory()``'s adapter, built on first use."""
    return cast(T, Lazy(factory))


def configured_providers(settings: Settings) -> frozenset[str]:
    """The providers this deployment offers: a job naming another (or listing it as a fallback) is refused
    at accept with code ``provider_not_configured``, before anything is queued or spent.

    ``MEDIAGEN_PROVIDERS`` (comma-separated; the construct sets it on the functions that accept jobs, which
    hold no key) when set; else every provider whose key is configured: Cliprise with ``CLIPRISE_API_KEY`` or
    ``MEDIAGEN_API_KEY_SECRET_ID``, Clipia with ``CLIPIA_API_KEY`` or ``MEDIAGEN_CLIPIA_API_KEY_SECRET_ID``.
    Only settings are read (no secret): it costs nothing per job.

    Raises:
        ConfigurationError: ``MEDIAGEN_PROVIDERS`` names a provider mediagen has no adapter for.
    """
    from mediagen.errors import ConfigurationError
    from mediagen.settings import PROVIDER_NAMES

    listed = {name.strip() for name in settings.providers.split(",") if name.strip()}
    if listed:
        unknown = sorted(listed - set(PROVIDER_NAMES))
        if unknown:
            raise ConfigurationError(f"MEDIAGEN_PROVIDERS names unknown provider(s) {', '.join(unknown)}; "
                                     f"allowed: {', '.join(PROVIDER_NAMES)}")
        return frozenset(listed)
    keys = {"cliprise": settings.api_key.strip() or settings.api_key_secret_id,
            "clipia": settings.clipia_api_key.strip() or settings.clipia_api_key_secret_id}
    return frozenset(name for name, key in keys.items() if key)


def clipia_webhook_secrets(settings: Settings) -> tuple[str, ...]:
    """The Clipia webhook signing secrets the callback route accepts (two during a rotation), for
    :func:`mediagen.provider.clipia_webhooks.verify_delivery`: ``CLIPIA_WEBHOOK_SECRETS`` when set, else the secret
    ``MEDIAGEN_CLIPIA_WEBHOOK_SECRET_ID`` (Powertools cache, 5 minutes: call it per delivery and a rotated secret
    is picked up). Needs no Clipia API key -- the callback function has none.

    Raises:
        ConfigurationError: none configured.
    """
    from mediagen.provider.clipia import ClipiaSettings, get_webhook_secrets

    return get_webhook_secrets(ClipiaSettings.from_settings(settings))


def build_ports(settings: Settings) -> Ports:
    """Ports on real AWS clients (shared retries, see :mod:`mediagen.aws`) and the Cliprise API described by
    ``settings``. A resource left unconfigured (empty setting) gives no port (None)."""
    from mediagen import aws
    from mediagen.observability import PowertoolsMetrics
    from mediagen.steps.core import Ports

    client_cache: list[ClipriseClient] = []
    lock = threading.RLock()

    def provider() -> ClipriseClient:
        with lock:  # submit's worker threads share one client (httpx clients are thread-safe)
            if not client_cache:
                from mediagen.apikey import get_api_key
                from mediagen.provider import ClipriseClient

                client_cache.append(ClipriseClient.from_settings(settings, get_api_key(settings)))
            return client_cache[0]

    adapters: dict[str, Provider] = {}

    def providers(name: str) -> Provider:
        """The provider port of ``name``, made once per container (its key read on first use)."""
        with lock:
            if name not in adapters:
                if name == "cliprise":
                    from mediagen.provider.cliprise import ClipriseProvider

                    adapters[name] = ClipriseProvider(provider())  # provider() takes the lock: see below
                elif name == "clipia":
                    from mediagen.errors import ConfigurationError
                    from mediagen.provider.clipia import ClipiaProvider, ClipiaSettings, get_clipia_api_key
                    from mediagen.provider.clipia import get_webhook_secrets as clipia_webhook_secrets

                    clipia = ClipiaSettings.from_settings(settings)
                    try:  # only the callback route needs them; submit and poll work without
                        secrets = clipia_webhook_secrets(clipia)
                    except ConfigurationError:
                        secrets = ()
                    adapters[name] = ClipiaProvider.from_settings(clipia, get_clipia_api_key(clipia),
                                                                  webhook_secrets=secrets)
                else:
                    from mediagen.errors import ConfigurationError as UnknownProvider

                    raise UnknownProvider(f"unknown provider {name!r}; allowed: cliprise, clipia")
            return adapters[name]

    def jobs() -> Any:
        from mediagen.records import DynamoJobRepository

        return DynamoJobRepository(settings.job_table, aws.client("dynamodb"))

    def events() -> Any:
        from mediagen.events import EventBridgePublisher

        return EventBridgePublisher(settings.event_bus, settings.event_source, aws.client("events"))

    def executions() -> Any:
        from mediagen.executions import StepFunctionsStarter

        return StepFunctionsStarter(settings.state_machine_arn, aws.client("stepfunctions"))

    def outputs() -> Any:
        from mediagen.storage import S3OutputStore

        # One client: its uploads need no particular endpoint and its download URLs must be regional.
        return S3OutputStore(settings.outputs_bucket, aws.presign_client())

    def jobs_queue() -> Any:
        from mediagen.queue import SqsJobQueue

        return SqsJobQueue(settings.jobs_queue_url, lambda: aws.client("sqs"))

    def inputs() -> Any:
        from mediagen.inputs import S3Inputs

        return S3Inputs(aws.presign_client, settings.input_url_seconds)

    def waker() -> Any:
        from mediagen.completion import StepFunctionsWaker

        return StepFunctionsWaker(aws.client("stepfunctions"))

    return Ports(
        settings=settings,
        jobs=lazy(jobs),
        events=lazy(events),
        provider=provider,
        providers=providers,
        executions=lazy(executions) if settings.state_machine_arn else None,
        outputs=lazy(outputs) if settings.outputs_bucket else None,
        inputs=lazy(inputs),
        jobs_queue=lazy(jobs_queue) if settings.jobs_queue_url else None,
        waker=lazy(waker),
        metrics=PowertoolsMetrics(),
    )


@cache
def ports(function: str | None = None) -> Ports:
    """The container-wide ports, settings read from the environment once (and, for ``function``, checked:
    a missing variable raises ``ConfigurationError`` naming it on the first invocation)."""
    from mediagen.settings import get_settings

    return build_ports(get_settings(function))


@cache
def completion_ports(function: str | None = None) -> tuple[JobRepository, TaskWaker]:
    """What the callback and arm steps need, and nothing more: the job table and Step Functions."""
    from mediagen import aws
    from mediagen.completion import StepFunctionsWaker
    from mediagen.records import DynamoJobRepository
    from mediagen.settings import get_settings

    return (DynamoJobRepository(get_settings(function).job_table, aws.client("dynamodb")),
            StepFunctionsWaker(aws.client("stepfunctions")))
