"""`mediagen redrive`: every dead-letter message goes back to the jobs queue, unchanged, exactly once."""

from __future__ import annotations

import io

import boto3
from moto import mock_aws

from mediagen.cli import main
from mediagen.operations import redrive


def test_redrive_moves_every_message_back_unchanged() -> None:
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
        jobs = sqs.create_queue(QueueName="jobs")["QueueUrl"]
        bodies = {f'{{"job_id": "j{i}"}}' for i in range(23)}
        for body in bodies:
            sqs.send_message(QueueUrl=dlq, MessageBody=body,
                             MessageAttributes={"origin": {"DataType": "String", "StringValue": "test"}})
        out = io.StringIO()
        assert redrive(sqs, dlq_url=dlq, queue_url=jobs, out=out) == 23
        received = []
        while msgs := sqs.receive_message(QueueUrl=jobs, MaxNumberOfMessages=10,
                                          MessageAttributeNames=["All"]).get("Messages", []):
            for m in msgs:
                received.append(m)
                sqs.delete_message(QueueUrl=jobs, ReceiptHandle=m["ReceiptHandle"])
        assert {m["Body"] for m in received} == bodies and len(received) == 23
        assert all(m["MessageAttributes"]["origin"]["StringValue"] == "test" for m in received)
        assert "Messages" not in sqs.receive_message(QueueUrl=dlq)
        assert "moved 23" in out.getvalue()


def test_redrive_cli_reads_the_queues_from_the_stack_outputs(capsys) -> None:
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
        jobs = sqs.create_queue(QueueName="jobs")["QueueUrl"]
        sqs.send_message(QueueUrl=dlq, MessageBody="{}")
        assert main(["redrive", "--dlq-url", dlq, "--queue-url", jobs, "--max", "5"]) == 0
        assert "1 message(s) moved" in capsys.readouterr().out
        assert main(["redrive", "--stack", "NoSuchStack"]) == 2
        assert "cannot read stack NoSuchStack" in capsys.readouterr().err
