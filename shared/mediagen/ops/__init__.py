"""Operator tools against a deployed stack (the CLI's ``redrive``, ``status``, ``jobs``): find its resources,
move DLQ messages back, read job records. Never shipped to Lambda (see infra bundling)."""

from __future__ import annotations

import sys
from typing import IO, Any

from mediagen.errors import ConfigurationError


def stack_outputs(stack_name: str, cloudformation: Any | None = None) -> dict[str, str]:
    """``{OutputKey: OutputValue}`` of a deployed mediagen stack (e.g. ``MediaGen-dev``).

    Raises:
        ConfigurationError: the stack does not exist or cannot be read.
    """
    if cloudformation is None:
        import boto3

        cloudformation = boto3.client("cloudformation")
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except Exception as exc:  # noqa: BLE001 - botocore raises ClientError/NoCredentials/...; all mean "cannot"
        raise ConfigurationError(f"cannot read stack {stack_name}: {exc}") from exc
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def redrive(sqs: Any, *, dlq_url: str, queue_url: str, limit: int | None = None,
            out: IO[str] = sys.stdout) -> int:
    """Move messages from the dead-letter queue back to the jobs queue (body and attributes unchanged),
    deleting each from the DLQ only after it was sent. Safe to interrupt and run again: a message is never
    lost, at worst sent twice, and a job id is never generated twice (see docs/reliability.md).

    Returns: the number of messages moved.
    """
    moved = 0
    while limit is None or moved < limit:
        batch = min(10, limit - moved) if limit is not None else 10
        messages = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=batch, WaitTimeSeconds=1,
                                       MessageAttributeNames=["All"], VisibilityTimeout=60).get("Messages", [])
        if not messages:
            break
        for message in messages:
            kwargs: dict[str, Any] = {"QueueUrl": queue_url, "MessageBody": message["Body"]}
            if message.get("MessageAttributes"):
                kwargs["MessageAttributes"] = message["MessageAttributes"]
            sqs.send_message(**kwargs)
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
        print(f"moved {moved} message(s) back to the jobs queue", file=out, flush=True)
    return moved


def table_and_bucket(stack: str, table: str | None, bucket: str | None,
                     cloudformation: Any | None = None) -> tuple[str, str]:
    """The job table and outputs bucket: as given, else from the stack's outputs."""
    if table and bucket:
        return table, bucket
    outputs = stack_outputs(stack, cloudformation)
    return table or outputs["TaskTableName"], bucket or outputs["OutputsBucketName"]


def job_status(job_id: str, *, table: str, bucket: str, dynamodb: Any, s3: Any,
               url_seconds: int = 900) -> dict[str, Any] | None:
    """A job's record as users see it (:func:`mediagen.records.public_view`: status, timestamps, error, outputs
    with S3 URIs and presigned download URLs valid for ``url_seconds``). None when no such job exists."""
    from mediagen.records import DynamoJobRepository, public_view

    record = DynamoJobRepository(table, dynamodb).get(job_id)
    if record is None:
        return None

    def presign(key: str, seconds: int) -> str:
        return str(s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=seconds))

    return public_view(record, presign, url_seconds)


def list_jobs(*, table: str, dynamodb: Any, status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Job records as users see them (:func:`mediagen.records.public_view`), newest first (at most ``limit``),
    optionally only those in ``status``. A scan of the job table: fine for an operator's look at a deployment,
    not for a hot path."""
    from mediagen.records import DynamoJobRepository, public_view

    return [public_view(r) for r in DynamoJobRepository(table, dynamodb).scan(status=status, limit=limit)]
