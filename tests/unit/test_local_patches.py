"""The embedded stack's moto patches keep AWS's behaviour: a cancelled DynamoDB transaction changes nothing,
whichever item failed, on tables with and without a sort key; SQS still honours the retention period."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from mediagen.local.patches import REGION, start_moto


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with ExitStack() as stack:
        start_moto(stack)
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(TableName="jobs", BillingMode="PAY_PER_REQUEST",
                            AttributeDefinitions=[{"AttributeName": "job_id", "AttributeType": "S"}],
                            KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}])
        client.create_table(TableName="attempts", BillingMode="PAY_PER_REQUEST",
                            AttributeDefinitions=[{"AttributeName": "job_id", "AttributeType": "S"},
                                                  {"AttributeName": "n", "AttributeType": "N"}],
                            KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"},
                                       {"AttributeName": "n", "KeyType": "RANGE"}])
        yield client


def _everything(client: Any) -> dict[str, list[dict[str, Any]]]:
    return {table: sorted(client.scan(TableName=table, ConsistentRead=True)["Items"], key=repr)
            for table in ("jobs", "attempts")}


def _seed(client: Any) -> None:
    client.put_item(TableName="jobs", Item={"job_id": {"S": "a"}, "status": {"S": "RECEIVED"}, "n": {"N": "1"}})
    client.put_item(TableName="jobs", Item={"job_id": {"S": "#in-flight"}, "count": {"N": "3"}})
    client.put_item(TableName="attempts", Item={"job_id": {"S": "a"}, "n": {"N": "1"}, "outcome": {"S": "sent"}})
    for i in range(50):  # a table with more than the transaction touches
        client.put_item(TableName="jobs", Item={"job_id": {"S": f"other-{i}"}, "status": {"S": "SUCCEEDED"}})


def _cancelled(client: Any, items: list[dict[str, Any]]) -> None:
    with pytest.raises(ClientError) as raised:
        client.transact_write_items(TransactItems=items)
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"


def test_a_cancelled_transaction_leaves_every_item_it_named_as_it_was(dynamodb: Any) -> None:
    _seed(dynamodb)
    before = _everything(dynamodb)
    _cancelled(dynamodb, [
        {"Update": {"TableName": "jobs", "Key": {"job_id": {"S": "a"}},
                    "UpdateExpression": "SET #s = :s ADD n :one",
                    "ExpressionAttributeNames": {"#s": "status"},
                    "ExpressionAttributeValues": {":s": {"S": "SUBMITTING"}, ":one": {"N": "1"}}}},
        {"Put": {"TableName": "jobs", "Item": {"job_id": {"S": "new"}, "status": {"S": "RECEIVED"}}}},
        {"Delete": {"TableName": "jobs", "Key": {"job_id": {"S": "other-1"}}}},
        {"Update": {"TableName": "attempts", "Key": {"job_id": {"S": "a"}, "n": {"N": "1"}},
                    "UpdateExpression": "SET outcome = :o", "ExpressionAttributeValues": {":o": {"S": "lost"}}}},
        {"Put": {"TableName": "attempts", "Item": {"job_id": {"S": "a"}, "n": {"N": "2"}}}},
        # The last item fails: everything before it was already applied by moto and must be undone.
        {"Update": {"TableName": "jobs", "Key": {"job_id": {"S": "#in-flight"}},
                    "UpdateExpression": "ADD #c :one", "ConditionExpression": "#c < :max",
                    "ExpressionAttributeNames": {"#c": "count"},
                    "ExpressionAttributeValues": {":one": {"N": "1"}, ":max": {"N": "3"}}}},
    ])
    assert _everything(dynamodb) == before


def test_a_transaction_naming_one_item_twice_is_refused_and_changes_nothing(dynamodb: Any) -> None:
    _seed(dynamodb)
    before = _everything(dynamodb)
    update = {"Update": {"TableName": "jobs", "Key": {"job_id": {"S": "a"}}, "UpdateExpression": "SET x = :x",
                         "ExpressionAttributeValues": {":x": {"S": "1"}}}}
    with pytest.raises(ClientError) as raised:
        dynamodb.transact_write_items(TransactItems=[update, update])
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert _everything(dynamodb) == before


def test_a_transaction_that_holds_applies_every_item(dynamodb: Any) -> None:
    _seed(dynamodb)
    dynamodb.transact_write_items(TransactItems=[
        {"Update": {"TableName": "jobs", "Key": {"job_id": {"S": "#in-flight"}}, "UpdateExpression": "ADD #c :one",
                    "ExpressionAttributeNames": {"#c": "count"}, "ExpressionAttributeValues": {":one": {"N": "-1"}}}},
        {"Put": {"TableName": "attempts", "Item": {"job_id": {"S": "a"}, "n": {"N": "2"}}}},
    ])
    counter = dynamodb.get_item(TableName="jobs", Key={"job_id": {"S": "#in-flight"}})["Item"]
    assert counter["count"] == {"N": "2"}
    assert "Item" in dynamodb.get_item(TableName="attempts", Key={"job_id": {"S": "a"}, "n": {"N": "2"}})
    # A later cancelled transaction rolls back to this state, not to an older one.
    _cancelled(dynamodb, [{"ConditionCheck": {"TableName": "jobs", "Key": {"job_id": {"S": "missing"}},
                                              "ConditionExpression": "attribute_exists(job_id)"}}])
    assert dynamodb.get_item(TableName="jobs", Key={"job_id": {"S": "#in-flight"}})["Item"]["count"] == {"N": "2"}


def test_sqs_still_drops_messages_past_the_retention_period() -> None:
    with ExitStack() as stack:
        start_moto(stack)
        sqs = boto3.client("sqs", region_name=REGION)
        url = sqs.create_queue(QueueName="q", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="kept")
        assert [m["Body"] for m in sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"]] == ["kept"]
        from moto.sqs.models import sqs_backends

        for message in sqs_backends["123456789012"][REGION].get_queue("q")._messages:
            message.sent_timestamp -= 61_000  # sent 61 s earlier than it was
        assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []
