"""Operator commands against a deployed stack: find its resources, move DLQ messages back."""

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
