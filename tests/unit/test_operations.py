"""`mediagen redrive`: every dead-letter message goes back to the jobs queue, unchanged, exactly once."""

from __future__ import annotations

import io

import boto3
from moto import mock_aws

from mediagen.cli import main
from mediagen.ops import redrive


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


def _deployment():
    import json as _json

    from mediagen.records import DynamoJobRepository

    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    dynamodb.create_table(TableName="tasks", KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "job_id", "AttributeType": "S"}],
                          BillingMode="PAY_PER_REQUEST")
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="outputs")
    s3.put_object(Bucket="outputs", Key="j-ok/output.png", Body=b"\x89PNG....")
    repo = DynamoJobRepository("tasks", dynamodb)
    repo.create({"job_id": "j-ok", "status": "SUCCEEDED", "model": "nano-banana", "callback_token": "SECRET-TOKEN",
                 "outputs": [{"uri": "s3://outputs/j-ok/output.png", "key": "j-ok/output.png", "bytes": 8,
                              "content_type": "image/png", "sha256": "0" * 64}]})
    repo.create({"job_id": "j-bad", "status": "REJECTED", "model": "nano-bananna",
                 "error": {"code": "invalid_request", "message": "model: unknown",
                           "problems": [{"field": "model", "message": "unknown model; did you mean 'nano-banana'?"}]}})
    dynamodb.put_item(TableName="tasks", Item={"job_id": {"S": "#in-flight"}, "n": {"N": "1"}})
    return _json


def test_status_shows_the_timeline_error_and_a_download_url_but_no_secrets(capsys) -> None:
    with mock_aws():
        json = _deployment()
        assert main(["status", "j-ok", "--table", "tasks", "--bucket", "outputs"]) == 0
        out = capsys.readouterr().out
        assert "SUCCEEDED" in out and "s3://outputs/j-ok/output.png" in out and "Signature=" in out
        assert "SECRET-TOKEN" not in out
        assert main(["status", "j-bad", "--table", "tasks", "--bucket", "outputs", "--json"]) == 0
        record = json.loads(capsys.readouterr().out)
        assert record["error"]["problems"][0]["field"] == "model" and "callback_token" not in record
        assert main(["status", "nobody", "--table", "tasks", "--bucket", "outputs"]) == 1


def test_jobs_lists_jobs_by_status_and_never_the_spend_counters(capsys) -> None:
    with mock_aws():
        json = _deployment()
        assert main(["jobs", "--table", "tasks", "--json"]) == 0
        assert sorted(r["job_id"] for r in json.loads(capsys.readouterr().out)) == ["j-bad", "j-ok"]
        assert main(["jobs", "--table", "tasks", "--status", "REJECTED"]) == 0
        out = capsys.readouterr().out
        assert "j-bad" in out and "j-ok" not in out and "1 job(s)" in out
