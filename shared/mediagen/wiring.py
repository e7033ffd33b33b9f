"""Production wiring: the ports the handlers use, built once per Lambda container from settings.

Everything is lazy: a handler pays only for the clients it touches (the callback path never loads the
catalog; the finalize step never reads the API key).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from mediagen.settings import Settings

if TYPE_CHECKING:
    from mediagen.completion import TaskWaker
    from mediagen.provider import ClipriseClient
    from mediagen.records import JobRepository
    from mediagen.steps.core import Ports


#: Bounded, jittered retries for every AWS call (botocore "standard" mode).
AWS_RETRIES = {"mode": "standard", "max_attempts": 5}


def build_ports(settings: Settings) -> Ports:
    """Ports on real AWS clients (boto3 default session, standard retries) and the Cliprise API described
    by ``settings``."""
    import boto3
    from botocore.config import Config

    config = Config(retries=AWS_RETRIES)

    from mediagen.budget import DynamoSpendGuard
    from mediagen.events import EventBridgePublisher
    from mediagen.executions import StepFunctionsStarter
    from mediagen.observability import PowertoolsMetrics
    from mediagen.queue import SqsJobQueue
    from mediagen.records import DynamoJobRepository
    from mediagen.steps.core import Ports
    from mediagen.storage import S3OutputStore

    client_cache: list[ClipriseClient] = []
    lock = threading.Lock()

    def provider() -> ClipriseClient:
        with lock:  # submit's worker threads share one client (httpx clients are thread-safe)
            if not client_cache:
                from mediagen.apikey import get_api_key
                from mediagen.provider import ClipriseClient

                client_cache.append(ClipriseClient.from_settings(settings, get_api_key(settings)))
            return client_cache[0]

    from mediagen.completion import StepFunctionsWaker
    from mediagen.inputs import S3Inputs

    def s3() -> Any:
        return boto3.client("s3", config=Config(retries=AWS_RETRIES, signature_version="s3v4"))

    def waker() -> TaskWaker:
        return StepFunctionsWaker(boto3.client("stepfunctions", config=config))

    return Ports(
        settings=settings,
        inputs=S3Inputs(s3, settings.input_url_seconds),
        jobs_queue=SqsJobQueue(settings.jobs_queue_url, lambda: boto3.client("sqs", config=config))
        if settings.jobs_queue_url else None,
        waker=LazyWaker(waker),
        jobs=DynamoJobRepository(settings.job_table, boto3.client("dynamodb", config=config)),
        events=EventBridgePublisher(settings.event_bus, settings.event_source, boto3.client("events", config=config)),
        provider=provider,
        executions=StepFunctionsStarter(settings.state_machine_arn, boto3.client("stepfunctions", config=config))
        if settings.state_machine_arn else None,
        outputs=S3OutputStore(settings.outputs_bucket, s3())
        if settings.outputs_bucket else None,
        guard=DynamoSpendGuard(settings.job_table, boto3.client("dynamodb", config=config))
        if settings.daily_credit_budget or settings.max_in_flight else None,
        metrics=PowertoolsMetrics(),
    )


@lru_cache(maxsize=1)
def ports() -> Ports:
    """The container-wide ports (settings read from the environment once)."""
    from mediagen.settings import get_settings

    return build_ports(get_settings())


@lru_cache(maxsize=1)
def completion_ports() -> tuple[JobRepository, TaskWaker]:
    """What the callback and arm steps need, and nothing more: the job table and Step Functions."""
    import boto3

    from mediagen.completion import StepFunctionsWaker
    from mediagen.records import DynamoJobRepository
    from mediagen.settings import get_settings

    return (DynamoJobRepository(get_settings().job_table, boto3.client("dynamodb")),
            StepFunctionsWaker(boto3.client("stepfunctions")))


class LazyWaker:
    """A ``TaskWaker`` whose Step Functions client is made on first use (most steps never wake anything)."""

    def __init__(self, factory: Callable[[], TaskWaker]) -> None:
        self._factory = factory
        self._waker: TaskWaker | None = None

    def wake(self, task_token: str, output: dict[str, Any]) -> bool:
        if self._waker is None:
            self._waker = self._factory()
        return self._waker.wake(task_token, output)
