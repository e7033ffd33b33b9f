"""The jobs queue (SQS) in one place: the port the channels send jobs through, and how a job that must wait
goes back to the queue.

- :class:`JobQueue` / :class:`SqsJobQueue` -- enqueue job documents (``SendMessageBatch`` in groups of 10).
- :func:`requeue` -- make a failed message visible again after a delay (it still counts towards the DLQ).
- :func:`resend` -- put a *waiting* job back as a new delayed message (never counts towards the DLQ).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any, Protocol


class JobQueue(Protocol):
    """The jobs queue, as the channels that accept jobs for later submission see it."""

    def send(self, documents: list[dict[str, Any]]) -> None:
        """Enqueue job documents (each with its ``job_id``).

        Raises:
            MediagenError: some could not be enqueued (nothing is known about which; sending again is safe:
                submit is idempotent on the job id).
        """
        ...


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


