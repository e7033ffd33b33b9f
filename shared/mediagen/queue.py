"""The jobs queue (SQS) in one place: the port the channels send jobs through, and how a job that could not be
sent now goes back to it.

- :class:`JobQueue` / :class:`SqsJobQueue` -- ``send`` (``SendMessageBatch`` in groups of 10), ``requeue`` (the
  same message again after a delay: counts towards the DLQ) and ``resend`` (a new delayed message: does not).
- :func:`put_back` -- the one place that decides between the two for a :class:`~mediagen.steps.core.RetryLater`.

The queue URL comes from the environment (``MEDIAGEN_JOBS_QUEUE_URL``); it is never assembled from an ARN.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from mediagen.steps.core import RetryLater


class JobQueue(Protocol):
    """The jobs queue, as the channels that accept jobs for later submission see it."""

    def send(self, documents: list[dict[str, Any]]) -> None:
        """Enqueue job documents (each with its ``job_id``).

        Raises:
            MediagenError: some could not be enqueued (nothing is known about which; sending again is safe:
                submit is idempotent on the job id).
        """
        ...

    def requeue(self, receipt_handle: str, delay_seconds: int) -> None:
        """Make a received message visible again after ``delay_seconds`` (best effort)."""
        ...

    def resend(self, document: dict[str, Any], delay_seconds: int) -> None:
        """Put ``document`` on the queue as a new message delivered after ``delay_seconds`` (at most 900).

        Raises:
            MediagenError: the send failed (the caller's message then fails and is delivered again).
        """
        ...


def put_back(exc: RetryLater, queue: JobQueue, *, receipt_handle: str, delay_seconds: int) -> bool:
    """A job could not be sent now (:class:`~mediagen.steps.core.RetryLater`): decide how it comes back.

    Returns:
        True: it is *waiting* (rate limited, no free slot) and went back as a new delayed message, so waiting
        never counts towards the dead-letter queue's receive limit; the delivered message is consumed.
        False: it is *failing* (provider unreachable): the same message comes back after ``delay_seconds`` and
        counts towards the DLQ; the caller reports the message as failed.
    """
    if exc.resend and exc.job_document is not None:
        queue.resend(exc.job_document, delay_seconds)
        return True
    queue.requeue(receipt_handle, delay_seconds)
    return False


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



    def requeue(self, receipt_handle: str, delay_seconds: int) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._sqs.change_message_visibility(QueueUrl=self._url, ReceiptHandle=receipt_handle,
                                                VisibilityTimeout=delay_seconds)
        except (BotoCoreError, ClientError):  # the message still comes back after the visibility timeout
            from mediagen.observability import get_logger

            get_logger().warning("could not shorten the visibility of a requeued message")

    def resend(self, document: dict[str, Any], delay_seconds: int) -> None:
        import json

        from botocore.exceptions import BotoCoreError, ClientError

        from mediagen.errors import MediagenError

        try:
            self._sqs.send_message(QueueUrl=self._url, MessageBody=json.dumps(document),
                                   DelaySeconds=min(max(delay_seconds, 0), 900))
        except (BotoCoreError, ClientError) as exc:
            raise MediagenError(f"the jobs queue refused the waiting job: {type(exc).__name__}",
                                code="queue_unavailable") from exc
