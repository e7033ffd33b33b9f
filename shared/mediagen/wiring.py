"""Production wiring: the ports the handlers use, built once per Lambda container from settings.

Everything is lazy: a handler pays only for the clients it touches (the callback path never loads the
catalog; the finalize step never reads the API key).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any

from mediagen.settings import Settings

if TYPE_CHECKING:
    from mediagen.completion import TaskWaker
    from mediagen.pipeline import Ports
    from mediagen.provider import ClipriseClient
    from mediagen.records import JobRepository


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
    from mediagen.pipeline import Ports
    from mediagen.records import DynamoJobRepository
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


def requeue(queue_arn: str, receipt_handle: str, delay_seconds: int) -> None:
    """Make an SQS message visible again after ``delay_seconds`` (instead of the queue's visibility timeout).

    Best effort: if it fails, the message still comes back after the visibility timeout.
    """
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    _, _, _, region, account, name = queue_arn.split(":", 5)
    url = f"https://sqs.{region}.amazonaws.com/{account}/{name}"
    try:
        boto3.client("sqs", region_name=region).change_message_visibility(
            QueueUrl=url, ReceiptHandle=receipt_handle, VisibilityTimeout=delay_seconds)
    except (BotoCoreError, ClientError):
        from mediagen.observability import get_logger

        get_logger().warning("could not shorten the visibility of a requeued message", queue=name)


def resend(queue_arn: str, job_document: dict[str, Any], delay_seconds: int) -> None:
    """Put a job back on its queue as a new message, delivered after ``delay_seconds`` (at most 900).

    Raises:
        botocore.exceptions.ClientError: the send failed (the caller's record then fails and is retried).
    """
    import json

    import boto3

    _, _, _, region, account, name = queue_arn.split(":", 5)
    boto3.client("sqs", region_name=region).send_message(
        QueueUrl=f"https://sqs.{region}.amazonaws.com/{account}/{name}", MessageBody=json.dumps(job_document),
        DelaySeconds=min(max(delay_seconds, 0), 900))


class SqsJobQueue:
    """``JobQueue`` on SQS: ``SendMessageBatch`` in groups of 10. ``sqs_client`` returns the boto3 client; it is
    called on first use (the API's reads never pay for it).

    Raises (from ``send``):
        MediagenError: SQS refused some entries, or the call failed.
    """

    def __init__(self, queue_url: str, sqs_client: Callable[[], Any]) -> None:
        self._url = queue_url
        self._client = sqs_client

    @cached_property
    def _sqs(self) -> Any:
        return self._client()

    def send(self, documents: list[dict[str, Any]]) -> None:
        import json

        from botocore.exceptions import BotoCoreError, ClientError

        from mediagen.errors import MediagenError

        for start in range(0, len(documents), 10):
            entries = [{"Id": str(i), "MessageBody": json.dumps(doc)}
                       for i, doc in enumerate(documents[start:start + 10])]
            try:
                response = self._sqs.send_message_batch(QueueUrl=self._url, Entries=entries)
            except (BotoCoreError, ClientError) as exc:
                raise MediagenError(f"the jobs queue refused the job(s): {type(exc).__name__}",
                                    code="queue_unavailable") from exc
            if response.get("Failed"):
                codes = sorted({f.get("Code", "?") for f in response["Failed"]})
                raise MediagenError(f"the jobs queue refused {len(response['Failed'])} job(s): {', '.join(codes)}",
                                    code="queue_unavailable")


class LazyWaker:
    """A ``TaskWaker`` whose Step Functions client is made on first use (most steps never wake anything)."""

    def __init__(self, factory: Callable[[], TaskWaker]) -> None:
        self._factory = factory
        self._waker: TaskWaker | None = None

    def wake(self, task_token: str, output: dict[str, Any]) -> bool:
        if self._waker is None:
            self._waker = self._factory()
        return self._waker.wake(task_token, output)
