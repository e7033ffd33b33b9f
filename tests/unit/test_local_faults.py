"""AWS-side fault injection of the embedded stack (``MEDIAGEN_LOCAL_FAULTS``): the spec, and what a boto3 client on
moto sees under it -- the service's own error, retried by botocore as against AWS."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError
from moto import mock_aws

from mediagen.local.faults import KINDS, FaultInjector, FaultSpecError, parse_faults, parse_seed

EXAMPLE = "events:PutEvents=throttle@0.3,dynamodb:UpdateItem=throttle@0.05,sqs:SendMessageBatch=error@0.1"


def client(service: str, attempts: int, mode: str = "standard") -> Any:
    """A boto3 client making at most ``attempts`` attempts per call (botocore's ``mode`` backoff between them)."""
    return boto3.client(service, region_name="us-east-1",
                        config=Config(retries={"mode": mode, "total_max_attempts": attempts}))


def create_table(name: str = "t") -> None:
    client("dynamodb", 1).create_table(
        TableName=name, KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")


@pytest.fixture
def moto() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def queue(moto: None) -> str:
    return str(client("sqs", 1).create_queue(QueueName="q")["QueueUrl"])


def messages_in(queue_url: str) -> int:
    attrs = client("sqs", 1).get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attrs["Attributes"]["ApproximateNumberOfMessages"])


# ------------------------------------------------------------------------------------------------ the spec
def test_the_documented_example_parses_into_one_rule_per_entry() -> None:
    rules = parse_faults(EXAMPLE)
    assert [(r.key, r.kind, r.rate) for r in rules] == [
        ("events:PutEvents", "throttle", 0.3), ("dynamodb:UpdateItem", "throttle", 0.05),
        ("sqs:SendMessageBatch", "error", 0.1)]
    assert rules[0].service_id == "eventbridge"  # botocore's event name for the events client


def test_an_empty_spec_injects_nothing() -> None:
    assert parse_faults("") == () and parse_faults(" , ") == ()
    assert FaultInjector.from_environment({}) is None


@pytest.mark.parametrize(("entry", "says"), [
    ("events:PutEvents=throttle", "service:Operation=kind@rate"),
    ("events-PutEvents=throttle@0.3", "service:Operation=kind@rate"),
    ("events:PutEvents=slow@0.3", "allowed kinds: throttle, error, timeout"),
    ("events:PutEvents=throttle@0", "(0, 1]"),
    ("events:PutEvents=throttle@1.5", "(0, 1]"),
    ("events:PutEvents=throttle@0.3.1", "(0, 1]"),
    ("eventbridge-x:PutEvents=throttle@0.3", "botocore does not know"),
    ("events:PutEvent=throttle@0.3", "no operation 'PutEvent'"),
])
def test_a_malformed_entry_is_named_in_the_error(entry: str, says: str) -> None:
    with pytest.raises(FaultSpecError) as raised:
        parse_faults(f"sqs:SendMessage=error@0.1,{entry}")
    assert repr(entry) in raised.value.message and says in raised.value.message
    assert "MEDIAGEN_LOCAL_FAULTS" in raised.value.message


def test_the_same_operation_twice_is_refused() -> None:
    with pytest.raises(FaultSpecError, match="repeats sqs:SendMessage"):
        parse_faults("sqs:SendMessage=error@0.1,sqs:SendMessage=throttle@0.2")


def test_the_seed_must_be_an_integer() -> None:
    assert parse_seed("42") == 42 and parse_seed(None) is None and parse_seed("") is None
    with pytest.raises(FaultSpecError, match="MEDIAGEN_LOCAL_FAULTS_SEED"):
        FaultInjector.from_environment({"MEDIAGEN_LOCAL_FAULTS": EXAMPLE, "MEDIAGEN_LOCAL_FAULTS_SEED": "x"})
    assert set(KINDS) == {"throttle", "error", "timeout"}


# ------------------------------------------------------------------------------------------------ injection
def test_a_throttled_call_is_retried_by_botocore_and_never_applied(
        queue: str, aws_faults: Callable[..., FaultInjector]) -> None:
    injector = aws_faults("sqs:SendMessage=throttle@1")
    with pytest.raises(ClientError) as raised:
        client("sqs", 2).send_message(QueueUrl=queue, MessageBody="x")
    error = raised.value.response
    assert error["Error"]["Code"] == "RequestThrottled"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400 and error["ResponseMetadata"]["RetryAttempts"] == 1
    assert injector.injected() == {"sqs:SendMessage": {"throttle": 2}}
    assert messages_in(queue) == 0


def test_throttles_at_a_rate_are_absorbed_by_botocore_retries(
        moto: None, aws_faults: Callable[..., FaultInjector]) -> None:
    create_table()
    injector = aws_faults("dynamodb:PutItem=throttle@0.5", seed=7)
    dynamodb = client("dynamodb", 10, mode="legacy")  # DynamoDB's legacy backoff starts at 50 ms
    for n in range(12):
        dynamodb.put_item(TableName="t", Item={"k": {"S": str(n)}})
    assert client("dynamodb", 1).scan(TableName="t")["Count"] == 12  # every write landed
    assert injector.injected()["dynamodb:PutItem"]["throttle"] >= 3


def test_the_seed_makes_the_faults_repeatable() -> None:
    request = SimpleNamespace(url="https://sqs.us-east-1.amazonaws.com/")

    def run() -> list[bool]:
        injector = FaultInjector.from_spec("sqs:SendMessage=error@0.5", seed=11)
        return [injector.before_send("before-send.sqs.SendMessage", request, lambda: None) is not None
                for _ in range(40)]

    first = run()
    assert first == run() and any(first) and not all(first)


def test_an_error_is_a_500_internal_failure_in_the_services_own_words(
        moto: None, aws_faults: Callable[..., FaultInjector]) -> None:
    create_table()
    client("s3", 1).create_bucket(Bucket="faults-bucket")
    injector = aws_faults("dynamodb:PutItem=error@1,events:PutEvents=error@1,s3:PutObject=throttle@1")
    calls: list[tuple[Callable[[], Any], int, str]] = [
        (lambda: client("dynamodb", 2).put_item(TableName="t", Item={"k": {"S": "a"}}), 500, "InternalServerError"),
        (lambda: client("events", 1).put_events(Entries=[{"Source": "s", "DetailType": "d", "Detail": "{}"}]),
         500, "InternalFailure"),
        (lambda: client("s3", 1).put_object(Bucket="faults-bucket", Key="k", Body=b"x"), 503, "SlowDown"),
    ]
    for call, status, code in calls:
        with pytest.raises(ClientError) as raised:
            call()
        assert raised.value.response["Error"]["Code"] == code
        assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert injector.injected()["dynamodb:PutItem"] == {"error": 2}  # a 500 is retried too
    assert client("dynamodb", 1).scan(TableName="t")["Count"] == 0


def test_a_timeout_is_applied_first_so_a_retry_sends_the_batch_twice(
        queue: str, aws_faults: Callable[..., FaultInjector]) -> None:
    injector = aws_faults("sqs:SendMessageBatch=timeout@1")
    with pytest.raises(ReadTimeoutError):
        client("sqs", 2).send_message_batch(QueueUrl=queue, Entries=[{"Id": "1", "MessageBody": "job"}])
    assert injector.injected() == {"sqs:SendMessageBatch": {"timeout": 2}}
    assert messages_in(queue) == 2  # the ambiguous case: each attempt was applied, each answer lost


def test_operations_outside_the_spec_are_untouched(queue: str, aws_faults: Callable[..., FaultInjector]) -> None:
    injector = aws_faults("sqs:SendMessageBatch=error@1")
    client("sqs", 1).send_message(QueueUrl=queue, MessageBody="x")
    assert messages_in(queue) == 1 and injector.total() == 0


def test_run_local_refuses_a_malformed_spec_before_starting_anything(
        tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from mediagen.cli import main

    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text('{"request": {"model": "nano-banana", "input": {"prompt": "a kite"}}}\n')
    assert main(["run-local", "--faults", "dynamodb:UpdateItem=throttle@0.05,sqs:SendMessage=slow@0.1",
                 str(jobs)]) == 2
    err = capsys.readouterr().err
    assert "'sqs:SendMessage=slow@0.1'" in err and "throttle, error, timeout" in err
