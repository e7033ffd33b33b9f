"""What the embedded stack changes in moto so it behaves like the AWS services the pipeline relies on.

* the AWS environment: test credentials, the local region, Powertools without tracing and metrics;
* Step Functions executes state machines (moto's ``execute_state_machine``) and can start a second execution;
* DynamoDB requests are atomic across threads, as DynamoDB's are (conditional writes included), and a
  transaction costs what its items cost, not what the table holds;
* SQS ``ReceiveMessage`` does not recount the whole queue for every message it returns;
* S3 event notifications of a versioned bucket carry the object's ``versionId``;
* Lambda invocations (the state machine's tasks) run the function's real handler in-process.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import threading
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any
from unittest import mock

from mediagen.redact import redact_text

#: The region every local resource lives in.
REGION = "us-east-1"


@dataclass
class FakeContext:
    """Enough of ``LambdaContext`` for Powertools (``inject_lambda_context``)."""

    function_name: str
    memory_limit_in_mb: int = 256
    aws_request_id: str = ""
    invoked_function_arn: str = ""
    log_group_name: str = ""
    log_stream_name: str = "local"
    function_version: str = "$LATEST"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def start_moto(exit_stack: ExitStack) -> None:
    """Start moto with the patches above (undone when ``exit_stack`` closes)."""
    from moto import mock_aws

    # moto's Step Functions engine logs every failed state at ERROR; the task records say it better.
    moto_logger = logging.getLogger("moto")
    exit_stack.callback(moto_logger.setLevel, moto_logger.level)
    moto_logger.setLevel(logging.CRITICAL)

    env = {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
        "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "mediagen", "POWERTOOLS_LOG_LEVEL": "INFO",
    }
    exit_stack.enter_context(mock.patch.dict(os.environ, env))
    os.environ.pop("AWS_PROFILE", None)
    exit_stack.enter_context(mock_aws(config={"stepfunctions": {"execute_state_machine": True},
                                              "lambda": {"use_docker": False}}))
    # moto deep-copies the state machine on every StartExecution, including the list of earlier
    # executions, whose worker threads hold locks: a second execution would fail to start. The clone
    # only needs the definition, so it is copied without that list.
    from moto.stepfunctions.models import StateMachine

    exit_stack.enter_context(mock.patch.object(StateMachine, "__deepcopy__", _copy_without_executions,
                                               create=True))
    # DynamoDB makes every request atomic (conditional writes included); moto does not across threads.
    # The pipeline's exactly-once guarantees rest on that atomicity, so requests are serialized here.
    from moto.dynamodb.responses import DynamoHandler

    dynamodb_lock = threading.RLock()
    unlocked_call = DynamoHandler.call_action

    def atomic_call(handler: Any) -> Any:
        with dynamodb_lock:
            return unlocked_call(handler)

    exit_stack.enter_context(mock.patch.object(DynamoHandler, "call_action", atomic_call))
    _patch_transactions(exit_stack)
    _patch_sqs_retention(exit_stack)
    # S3 event notifications of a versioned bucket carry the object's versionId (and a sequencer); moto's
    # leave them out, so they are added as S3 sends them.
    from moto.s3 import notifications

    plain_event = notifications._get_s3_event

    def versioned_event(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
        event = plain_event(event_name, bucket, key, notification_id)
        version = getattr(key, "version_id", None)
        if version and version != "null":
            event["Records"][0]["s3"]["object"]["versionId"] = version
        return event

    exit_stack.enter_context(mock.patch.object(notifications, "_get_s3_event", versioned_event))


_transaction = threading.local()


def _patch_transactions(exit_stack: ExitStack) -> None:
    """TransactWriteItems rolls back from a copy of the items it names, not of every table it touches.

    moto deep-copies each table a transaction names before applying it, to restore it when the transaction is
    cancelled: O(table size) per transaction, so a run's cost grew with the square of its jobs (a 1,000-job soak
    spent a third of its time copying the jobs table). DynamoDB requests are serialized here (``atomic_call``),
    so restoring just the named items undoes a cancelled transaction exactly as the whole copy did. Tables with
    a stream keep moto's own copy (their stream records are rolled back with it).
    """
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    plain_transact = DynamoDBBackend.transact_write_items

    def copy_table(table: Any, memo: dict[int, Any]) -> Any:
        if getattr(_transaction, "item_snapshots", False):
            return table  # the items it names were copied by ``transact`` below
        return copy._reconstruct(table, memo, *table.__reduce_ex__(4))  # type: ignore[attr-defined]

    def transact(backend: Any, transact_items: list[dict[str, Any]]) -> None:
        saved: list[tuple[Any, Any, Any, Any]] = []  # (table, hash key, range key, item copy or None)
        for entry in transact_items:
            op: Any = next(iter(entry.values()), None) if len(entry) == 1 else None
            table = backend.tables.get(op.get("TableName")) if isinstance(op, dict) else None
            if table is None or table.stream_shard is not None:
                return plain_transact(backend, transact_items)  # moto's own copy (and its own errors)
            key = op["Key"] if "Key" in op else op.get("Item")
            try:
                hash_key = DynamoType(key[table.hash_key_attr])
                range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            except (KeyError, TypeError):
                return plain_transact(backend, transact_items)
            current = table.items.get(hash_key)
            if range_key is not None:
                current = (current or {}).get(range_key)
            saved.append((table, hash_key, range_key, copy.deepcopy(current)))
        _transaction.item_snapshots = True
        try:
            return plain_transact(backend, transact_items)
        except Exception:
            for table, hash_key, range_key, item in reversed(saved):
                if range_key is None:
                    table.items.pop(hash_key, None)
                    if item is not None:
                        table.items[hash_key] = item
                else:
                    table.items[hash_key].pop(range_key, None)
                    if item is not None:
                        table.items[hash_key][range_key] = item
            raise
        finally:
            _transaction.item_snapshots = False

    exit_stack.enter_context(mock.patch.object(Table, "__deepcopy__", copy_table, create=True))
    exit_stack.enter_context(mock.patch.object(DynamoDBBackend, "transact_write_items", transact))


def _patch_sqs_retention(exit_stack: ExitStack) -> None:
    """moto checks each received message against the retention period by computing every queue attribute,
    approximate counts included (a pass over the whole queue per message returned); this reads the one it
    needs."""
    from moto.core.utils import unix_time
    from moto.sqs.models import SQSBackend

    def retained(backend: Any, queue_name: str, message: Any) -> bool:
        period = int(backend.get_queue(queue_name).message_retention_period)
        return bool(period + message.sent_timestamp / 1000 > unix_time())

    exit_stack.enter_context(mock.patch.object(SQSBackend, "is_message_valid_based_on_retention_period", retained))


def route_lambda_invoke(exit_stack: ExitStack, handlers: Mapping[str, Callable[[dict[str, Any], Any], Any]]) -> None:
    """Make moto's Docker-free Lambda invoke run ``handlers[function name]`` (read on each call, so functions may
    be added later)."""
    exit_stack.enter_context(mock.patch("moto.awslambda_simple.models.LambdaSimpleBackend.invoke",
                                        _make_invoke(handlers)))


def _copy_without_executions(self: Any, memo: dict[int, Any]) -> Any:
    import copy

    clone = self.__class__.__new__(self.__class__)
    memo[id(self)] = clone
    for key, value in self.__dict__.items():
        setattr(clone, key, [] if key == "executions" else copy.deepcopy(value, memo))
    return clone


def _make_invoke(handlers: Mapping[str, Callable[[dict[str, Any], Any], Any]]) -> Callable[..., bytes]:
    """A replacement for moto's Docker-free Lambda invoke that runs the function's real handler."""

    def invoke(backend: Any, function_name: str, qualifier: str | None, body: Any, headers: Any,
               response_headers: dict[str, str]) -> bytes:
        name = function_name.split(":function:")[-1].split(":")[0]
        handler = handlers.get(name)
        if handler is None:
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": "ResourceNotFound", "errorMessage": f"no function {name}"}).encode()
        event = json.loads(body) if body else {}
        try:
            result = handler(event, FakeContext(function_name=name))
        except Exception as exc:  # noqa: BLE001 - becomes the Lambda function error Step Functions sees
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": type(exc).__name__, "errorMessage": redact_text(str(exc)),
                               "stackTrace": []}).encode()
        return json.dumps(result).encode()

    return invoke
