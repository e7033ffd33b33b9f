"""LocalStack: moto + in-process handlers + the sandbox emulator, running the synthesized state machine.

Usage::

    with LocalStack(template_path=default_template_path()) as stack:
        stack.send_jobs([{"request": {...}}])
        records = stack.run_until_done(timeout=120)

Only loopback addresses are used; nothing leaves the machine unless ``real_api=True``.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import logging
import os
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from unittest import mock

from mediagen.errors import ConfigurationError
from mediagen.local.template import Template
from mediagen.records import TERMINAL
from mediagen.redact import redact, redact_text

REGION = "us-east-1"
ACCOUNT = "123456789012"
STACK_NAME = "MediaGen-dev"
INTAKE_BUCKET = "mediagen-intake-local"
OUTPUTS_BUCKET = "mediagen-outputs-local"
FUNCTION_HANDLER_PREFIX = "functions."


def repo_root() -> Path:
    """The source checkout this package runs from (``shared/mediagen`` -> repo root)."""
    return Path(__file__).resolve().parents[3]


def default_template_path(stack_name: str = STACK_NAME) -> Path:
    return repo_root() / "cdk.out" / f"{stack_name}.template.json"


@dataclass
class _FakeContext:
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


class _Gateway:
    """Plays API Gateway (HTTP API, payload 2.0) on loopback for both APIs of a deployment:
    ``POST /callbacks/{token}`` -> the ``callback`` handler, every other path -> the jobs API (``api``).
    Each request becomes an event for the real handler; the handler's answer is sent back. IAM (SigV4)
    authentication is not checked locally."""

    def __init__(self, stack: LocalStack) -> None:
        self.received: list[dict[str, Any]] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
                path, _, query = self.path.partition("?")
                status, payload, headers = 404, '{"message":"Not Found"}', {"content-type": "application/json"}
                if path.startswith("/callbacks/"):
                    if self.command == "POST" and "callback" in stack.names:
                        token = path.rstrip("/").rsplit("/", 1)[-1]
                        event = _http_api_event("POST", path, {"token": token}, body,
                                                route="POST /callbacks/{token}")
                        response = stack.invoke("callback", event)
                        status, payload = int(response.get("statusCode", 200)), str(response.get("body", ""))
                    gateway.received.append({"at": time.time(), "status": status,
                                             "body": redact(_json_or_text(body))})
                elif "api" in stack.names:
                    event = _http_api_event(self.command, path, {}, body or None, query=query,
                                            headers={k.lower(): v for k, v in self.headers.items()},
                                            domain=f"127.0.0.1:{gateway.port}")
                    response = stack.invoke("api", event)
                    status, payload = int(response.get("statusCode", 200)), str(response.get("body") or "")
                    headers = {str(k).lower(): str(v) for k, v in (response.get("headers") or {}).items()}
                data = payload.encode()
                self.send_response(status)
                for name, value in headers.items():
                    if name not in ("content-length", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def __getattr__(self, name: str) -> Any:
                if name.startswith("do_"):  # every method reaches the API, as with API Gateway's ANY routes
                    return self._serve
                raise AttributeError(name)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/callbacks"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def api_url(self) -> str:
        """The jobs API's endpoint (what the ``JobsApiUrl`` stack output gives in a deployment)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _json_or_text(body: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body[:200]


def _http_api_event(method: str, path: str, path_parameters: dict[str, str], body: str | None, *,
                    route: str = "$default", query: str = "", headers: dict[str, str] | None = None,
                    domain: str = "127.0.0.1") -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) proxy event, as in events/aws/."""
    from urllib.parse import parse_qs

    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0", "routeKey": route, "rawPath": path, "rawQueryString": query,
        "headers": {"content-type": "application/json", "x-forwarded-proto": "http", **(headers or {})},
        "requestContext": {"accountId": ACCOUNT, "apiId": "local", "domainName": domain,
                           "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                                    "userAgent": (headers or {}).get("user-agent", "local")},
                           "requestId": uuid.uuid4().hex, "routeKey": route, "stage": "$default",
                           "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                           "timeEpoch": int(now * 1000)},
        "isBase64Encoded": False,
    }
    if path_parameters:
        event["pathParameters"] = path_parameters
    if query:
        event["queryStringParameters"] = {k: ",".join(v) for k, v in parse_qs(query).items()}
    if body is not None:
        event["body"] = body
    return event


class LocalStack:
    """The pipeline on moto, with the real handlers and the sandbox emulator.

    Args:
        template_path: the synthesized template whose state machine definition is executed.
        api_key: the key the pipeline uses (stored in the moto Secrets Manager secret, as deployed).
            Defaults to ``$MEDIAGEN_LOCAL_API_KEY``, else a random sandbox key.
        real_api: talk to the real Cliprise API (``CLIPRISE_API_KEY`` required) instead of the emulator.
        processing_seconds: how long the emulator's tasks stay "processing".
        poll_initial_seconds: the first wait of the polling schedule (real time; small for local runs).
        log_path: where the handlers' structured logs go (default: discarded into memory).
    """

    def __init__(self, *, template_path: Path | None = None, api_key: str | None = None, real_api: bool = False,
                 processing_seconds: float = 2.0, poll_initial_seconds: int = 1, poll_max_seconds: int = 10,
                 send_callbacks: bool = True, log_path: Path | None = None,
                 extra_env: dict[str, str] | None = None) -> None:
        self.template = Template.load(template_path or default_template_path())
        if real_api and not (api_key or os.environ.get("CLIPRISE_API_KEY")):
            raise ConfigurationError("real_api needs CLIPRISE_API_KEY")
        if real_api:
            self.api_key = api_key or os.environ.get("CLIPRISE_API_KEY", "")
        else:  # the sandbox's key: given, or MEDIAGEN_LOCAL_API_KEY (secret-hygiene runs), or a random one
            self.api_key = api_key or os.environ.get("MEDIAGEN_LOCAL_API_KEY") or f"sandbox-{uuid.uuid4().hex}"
        self.real_api = real_api
        self.processing_seconds = processing_seconds
        self.poll_initial_seconds = poll_initial_seconds
        self.poll_max_seconds = poll_max_seconds
        self.send_callbacks = send_callbacks
        self.log_path = log_path
        self.extra_env = extra_env or {}
        self.log_buffer = io.StringIO()
        self.emulator: Any = None
        self.callbacks = _Gateway(self)
        self._exit = ExitStack()
        self._handlers: dict[str, Callable[[dict[str, Any], Any], Any]] = {}
        self.names: dict[str, str] = {}
        self.state_machine_definition: dict[str, Any] = {}

    # ------------------------------------------------------------------------------------------ lifecycle

    def __enter__(self) -> LocalStack:
        try:
            self._start()
        except BaseException:
            self._exit.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._exit.close()

    def _start(self) -> None:
        from moto import mock_aws

        # moto's Step Functions engine logs every failed state at ERROR; the task records say it better.
        moto_logger = logging.getLogger("moto")
        self._exit.callback(moto_logger.setLevel, moto_logger.level)
        moto_logger.setLevel(logging.CRITICAL)

        env = {
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
            "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_SERVICE_NAME": "mediagen", "POWERTOOLS_LOG_LEVEL": "INFO",
        }
        self._exit.enter_context(mock.patch.dict(os.environ, env))
        os.environ.pop("AWS_PROFILE", None)
        self._exit.enter_context(mock_aws(config={"stepfunctions": {"execute_state_machine": True},
                                                  "lambda": {"use_docker": False}}))
        # moto deep-copies the state machine on every StartExecution, including the list of earlier
        # executions, whose worker threads hold locks: a second execution would fail to start. The clone
        # only needs the definition, so it is copied without that list.
        from moto.stepfunctions.models import StateMachine

        self._exit.enter_context(mock.patch.object(StateMachine, "__deepcopy__", _copy_without_executions,
                                                   create=True))
        # DynamoDB makes every request atomic (conditional writes included); moto does not across threads.
        # The pipeline's exactly-once guarantees rest on that atomicity, so requests are serialized here.
        from moto.dynamodb.responses import DynamoHandler

        dynamodb_lock = threading.RLock()
        unlocked_call = DynamoHandler.call_action

        def atomic_call(handler: Any) -> Any:
            with dynamodb_lock:
                return unlocked_call(handler)

        self._exit.enter_context(mock.patch.object(DynamoHandler, "call_action", atomic_call))
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

        self._exit.enter_context(mock.patch.object(notifications, "_get_s3_event", versioned_event))
        import boto3

        self.session = boto3.session.Session(region_name=REGION)
        if not self.real_api:
            from mediagen.sandbox import Emulator

            self.emulator = Emulator(api_keys=[self.api_key], processing_seconds=self.processing_seconds,
                                     send_callbacks=self.send_callbacks, modality_of=_catalog_modality,
                                     fetch_inputs=True, fetcher=_local_fetcher())
            self.emulator.start()
            self._exit.callback(self.emulator.stop)
        self.callbacks.start()
        self._exit.callback(self.callbacks.stop)
        self._create_resources()
        self._route_logs()
        self._exit.callback(_reset_wiring)

    def _create_resources(self) -> None:
        s = self.session
        tpl = self.template
        # Queue + DLQ with the template's redrive count.
        _, queue = self._jobs_queue()
        max_receive = queue["Properties"].get("RedrivePolicy", {}).get("maxReceiveCount", 5)
        sqs = s.client("sqs")
        dlq_url = sqs.create_queue(QueueName="mediagen-jobs-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queue_url = sqs.create_queue(QueueName="mediagen-jobs", Attributes={
            "VisibilityTimeout": "30",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive)}),
        })["QueueUrl"]
        self.queue_url, self.dlq_url = queue_url, dlq_url
        self.queue_arn = sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        # Task table with the template's key schema.
        _, table = tpl.only("AWS::DynamoDB::Table")
        props = table["Properties"]
        s.client("dynamodb").create_table(TableName="mediagen-tasks", KeySchema=props["KeySchema"],
                                          AttributeDefinitions=props["AttributeDefinitions"],
                                          BillingMode="PAY_PER_REQUEST")
        s3 = s.client("s3")
        s3.create_bucket(Bucket="mediagen-outputs-local")
        events = s.client("events")
        events.create_event_bus(Name="mediagen-local")
        self._create_intake(sqs, s3, events)
        # A tap: every job event also lands on a queue so runs can show and check them.
        tap_url = sqs.create_queue(QueueName="mediagen-events-tap")["QueueUrl"]
        tap_arn = sqs.get_queue_attributes(QueueUrl=tap_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="all-job-events", EventBusName="mediagen-local",
                        EventPattern=json.dumps({"source": ["mediagen"]}))
        events.put_targets(Rule="all-job-events", EventBusName="mediagen-local",
                           Targets=[{"Id": "tap", "Arn": tap_arn}])
        self.events_tap_url = tap_url
        secret_arn = s.client("secretsmanager").create_secret(
            Name="mediagen/cliprise-api-key", SecretString=self.api_key)["ARN"]
        # Lambda functions: one per AWS::Lambda::Function in the template, same handler strings.
        iam = s.client("iam")
        role_arn = iam.create_role(RoleName="mediagen-local", AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                   "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
        lam = s.client("lambda")
        attrs: dict[tuple[str, str], str] = {}
        refs: dict[str, str] = {}
        zipped = io.BytesIO()
        with zipfile.ZipFile(zipped, "w") as zf:
            zf.writestr("placeholder.py", "")
        for logical_id, fn in tpl.of_type("AWS::Lambda::Function").items():
            handler = fn["Properties"].get("Handler", "")
            if not handler.startswith(FUNCTION_HANDLER_PREFIX):
                continue  # CDK's own helper functions (custom resources) are not part of the pipeline
            arn = lam.create_function(FunctionName=logical_id, Runtime="python3.12", Role=role_arn,
                                      Handler=handler, Code={"ZipFile": zipped.getvalue()})["FunctionArn"]
            attrs[(logical_id, "Arn")] = arn
            refs[logical_id] = logical_id
            self._handlers[logical_id] = _load_handler(handler)
            self.names[handler.split(".")[1]] = logical_id
        missing = {"submit", "poll", "persist", "finalize"} - set(self.names)  # callback/arm: issue 4 templates
        if missing:
            raise ConfigurationError(f"the template has no function for {sorted(missing)}")
        self._exit.enter_context(mock.patch("moto.awslambda_simple.models.LambdaSimpleBackend.invoke",
                                            _make_invoke(self)))
        # The state machine: the synthesized definition, intrinsics resolved to the local resources.
        pseudo = {"AWS::Region": REGION, "AWS::Partition": "aws", "AWS::AccountId": ACCOUNT,
                  "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": STACK_NAME}
        self.state_machine_definition = tpl.state_machine_definition(refs, attrs, pseudo)
        sfn = s.client("stepfunctions")
        self.state_machine_arn = sfn.create_state_machine(
            name="MediaGen-local", definition=json.dumps(self.state_machine_definition), roleArn=role_arn,
            type="STANDARD")["stateMachineArn"]
        os.environ.update({
            "MEDIAGEN_TASK_TABLE": "mediagen-tasks", "MEDIAGEN_OUTPUTS_BUCKET": "mediagen-outputs-local",
            "MEDIAGEN_EVENT_BUS": "mediagen-local", "MEDIAGEN_STATE_MACHINE_ARN": self.state_machine_arn,
            "MEDIAGEN_API_KEY_SECRET_ID": secret_arn,
            "MEDIAGEN_POLL_INITIAL_SECONDS": str(self.poll_initial_seconds),
            "MEDIAGEN_POLL_MAX_SECONDS": str(self.poll_max_seconds),
            "MEDIAGEN_CALLBACK_BASE_URL": self.callbacks.base_url,
            "MEDIAGEN_REQUEUE_DELAY_SECONDS": "1",
            "MEDIAGEN_JOBS_QUEUE_URL": self.queue_url, "MEDIAGEN_INTAKE_BUCKET": INTAKE_BUCKET,
            "MEDIAGEN_INBOX_RULES": self.inbox_rules(),
            **({} if self.real_api else {"MEDIAGEN_CLIPRISE_BASE_URL": self.emulator.base_url}),
            **self.extra_env,
        })
        os.environ.pop("CLIPRISE_API_KEY", None)  # the pipeline reads the key from the secret, as deployed
        _reset_wiring()

    def _create_intake(self, sqs: Any, s3: Any, events: Any) -> None:
        """The S3 intake as the construct builds it: a versioned intake bucket whose ``jobs/*.json[l]`` and
        ``inbox/`` object-created notifications go to the intake queue, which also gets every job event."""
        self.intake_queue_url = sqs.create_queue(QueueName="mediagen-intake", Attributes={"VisibilityTimeout": "30"})[
            "QueueUrl"]
        self.intake_queue_arn = sqs.get_queue_attributes(
            QueueUrl=self.intake_queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        s3.create_bucket(Bucket=INTAKE_BUCKET)
        s3.put_bucket_versioning(Bucket=INTAKE_BUCKET, VersioningConfiguration={"Status": "Enabled"})

        def notification(prefix: str, suffix: str = "") -> dict[str, Any]:
            rules = [{"Name": "prefix", "Value": prefix}] + ([{"Name": "suffix", "Value": suffix}] if suffix else [])
            return {"QueueArn": self.intake_queue_arn, "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": rules}}}

        s3.put_bucket_notification_configuration(Bucket=INTAKE_BUCKET, NotificationConfiguration={
            "QueueConfigurations": [notification("jobs/", ".json"), notification("jobs/", ".jsonl"),
                                    notification("inbox/")]})
        events.put_rule(Name="job-events-to-intake", EventBusName="mediagen-local",
                        EventPattern=json.dumps({"source": ["mediagen"]}))
        events.put_targets(Rule="job-events-to-intake", EventBusName="mediagen-local",
                           Targets=[{"Id": "intake", "Arn": self.intake_queue_arn}])

    def inbox_rules(self) -> str:
        """``MEDIAGEN_INBOX_RULES`` of the template's intake function (the rules the construct was given)."""
        for fn in self.template.of_type("AWS::Lambda::Function").values():
            props = fn.get("Properties", {})
            if str(props.get("Handler", "")).startswith("functions.intake."):
                value = props.get("Environment", {}).get("Variables", {}).get("MEDIAGEN_INBOX_RULES")
                if isinstance(value, str):
                    return value
        return "[]"

    def _jobs_queue(self) -> tuple[str, dict[str, Any]]:
        """The queue the template's ``submit`` function consumes (its event source mapping)."""
        queues = self.template.of_type("AWS::SQS::Queue")
        submit = next((lid for lid, fn in self.template.of_type("AWS::Lambda::Function").items()
                       if str(fn["Properties"].get("Handler", "")).startswith("functions.submit.")), None)
        for mapping in self.template.of_type("AWS::Lambda::EventSourceMapping").values():
            props = mapping.get("Properties", {})
            source = props.get("EventSourceArn", {})
            if props.get("FunctionName") == {"Ref": submit} and isinstance(source, dict) and "Fn::GetAtt" in source:
                logical_id = source["Fn::GetAtt"][0]
                if logical_id in queues:
                    return logical_id, queues[logical_id]
        raise ConfigurationError("the template has no SQS queue consumed by the submit function")

    def _route_logs(self) -> None:
        """Send the handlers' JSON logs to ``log_path`` (or memory) instead of the terminal."""
        from mediagen.observability import get_logger

        get_logger()
        stream: Any = self.log_buffer
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            stream = self._exit.enter_context(self.log_path.open("w"))
        for handler in logging.getLogger("mediagen").handlers:
            if isinstance(handler, logging.StreamHandler):
                # Swapped without setStream's flush: the stream it had may be closed by now (a finished test's
                # captured stdout), and flushing a closed stream raises.
                previous = _swap_stream(handler, stream)
                self._exit.callback(_swap_stream, handler, previous)

    # ------------------------------------------------------------------------------------------ running

    @contextlib.contextmanager
    def configured(self, **env: str) -> Iterator[LocalStack]:
        """Run with some pipeline settings changed (environment variable names, e.g.
        ``MEDIAGEN_POLL_INITIAL_SECONDS="20"``); restored afterwards. Only one local stack can exist in a
        process at a time (moto's state is global), so tests vary settings with this instead."""
        with mock.patch.dict(os.environ, env):
            _reset_wiring()
            try:
                yield self
            finally:
                _reset_wiring()
        _reset_wiring()

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        """Call a pipeline function's real handler in-process (``function``: submit|poll|persist|finalize)."""
        logical_id = self.names[function]
        return self._handlers[logical_id](event, _FakeContext(function_name=logical_id))

    def send_jobs(self, jobs: Iterable[dict[str, Any] | str]) -> list[str]:
        """Put jobs on the jobs queue (dicts are JSON-encoded; strings are sent as they are)."""
        sqs = self.session.client("sqs")
        ids = []
        for job in jobs:
            body = job if isinstance(job, str) else json.dumps(job)
            ids.append(sqs.send_message(QueueUrl=self.queue_url, MessageBody=body)["MessageId"])
        return ids

    def pump_queue(self, *, max_batches: int = 10) -> int:
        """Deliver queued messages as the SQS event source mappings would: the intake queue to ``intake``
        (when the template has it), then the jobs queue to ``submit`` (batches of up to 10, partial batch
        failures honoured: failed records become visible again after 1 s).

        Returns: the number of records delivered to ``submit``.
        """
        if "intake" in self.names:
            self._pump(self.intake_queue_url, self.intake_queue_arn, "intake", max_batches)
        return self._pump(self.queue_url, self.queue_arn, "submit", max_batches)

    def _pump(self, queue_url: str, queue_arn: str, function: str, max_batches: int) -> int:
        sqs = self.session.client("sqs")
        delivered = 0
        for _ in range(max_batches):
            messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                           AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])
            if not messages:
                break
            delivered += len(messages)
            event = {"Records": [self._sqs_record(m, queue_arn) for m in messages]}
            try:
                response = self.invoke(function, event)
                failed = {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])}
            except Exception:  # noqa: BLE001 - the whole batch failed (Powertools raises when all records fail)
                failed = {m["MessageId"] for m in messages}
            for m in messages:
                if m["MessageId"] in failed:
                    sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"],
                                                  VisibilityTimeout=1)
                else:
                    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
        return delivered

    def _sqs_record(self, message: dict[str, Any], queue_arn: str | None = None) -> dict[str, Any]:
        attrs = message.get("Attributes", {})
        return {
            "messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"], "body": message["Body"],
            "attributes": {
                "ApproximateReceiveCount": attrs.get("ApproximateReceiveCount", "1"),
                "SentTimestamp": attrs.get("SentTimestamp", str(int(time.time() * 1000))),
                "SenderId": attrs.get("SenderId", ACCOUNT),
                "ApproximateFirstReceiveTimestamp": attrs.get("ApproximateFirstReceiveTimestamp",
                                                              str(int(time.time() * 1000))),
            },
            "messageAttributes": {}, "md5OfBody": message.get("MD5OfBody", ""), "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn or self.queue_arn, "awsRegion": REGION,
        }

    def tasks(self) -> list[dict[str, Any]]:
        """Every job record, newest first (a scan: fine for local runs)."""
        from mediagen.records import DynamoJobRepository

        return DynamoJobRepository("mediagen-tasks", self.session.client("dynamodb")).scan()

    def task(self, job_id: str) -> dict[str, Any] | None:
        from mediagen.records import DynamoJobRepository

        return DynamoJobRepository("mediagen-tasks", self.session.client("dynamodb")).get(job_id)

    def queue_depth(self, *, intake: bool = False) -> int:
        """Messages in the jobs queue (and, with ``intake``, the intake queue): visible, in flight or delayed."""
        depth = 0
        for url in (self.queue_url, self.intake_queue_url if intake and "intake" in self.names else None):
            if url is None:
                continue
            attrs = self.session.client("sqs").get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                                              "ApproximateNumberOfMessagesDelayed"])
            depth += sum(int(v) for v in attrs["Attributes"].values())
        return depth

    def put_object(self, key: str, body: bytes, *, metadata: dict[str, str] | None = None,
                   content_type: str = "application/octet-stream") -> str | None:
        """Put an object into the intake bucket, as an upstream system would (S3 notifies the intake queue).
        Returns its version id."""
        response = self.session.client("s3").put_object(Bucket=INTAKE_BUCKET, Key=key, Body=body,
                                                        Metadata=metadata or {}, ContentType=content_type)
        return response.get("VersionId")

    @property
    def api_url(self) -> str:
        """The local jobs API endpoint (``http://127.0.0.1:<port>``)."""
        return self.callbacks.api_url

    def run_until_done(self, *, expected: int | None = None, timeout: float = 300.0,
                       on_progress: Callable[[list[dict[str, Any]], float], None] | None = None,
                       interval: float = 0.2) -> list[dict[str, Any]]:
        """Deliver the queue and wait until every job is terminal and its execution has stopped.

        Args:
            expected: how many task records to wait for (default: as many as there were messages sent).
            on_progress: called with the task records and the elapsed seconds on every round.

        Returns: the task records.

        Raises:
            TimeoutError: not everything finished within ``timeout`` seconds (names the stuck jobs).
        """
        start = time.monotonic()
        while True:
            self.pump_queue()
            # In this order: an execution publishes its job's event before it ends, and the event lands in the
            # intake queue before the execution is seen as stopped, so nothing can slip between the checks.
            idle = not self._running_executions()
            drained = self.queue_depth(intake=True) == 0
            records = self.tasks()
            elapsed = time.monotonic() - start
            if on_progress:
                on_progress(records, elapsed)
            done = idle and drained and all(r.get("status") in TERMINAL for r in records)
            if done and (expected is None or len(records) >= expected):
                return records
            if elapsed > timeout:
                stuck = [f"{r['job_id']}={r.get('status')}" for r in records if r.get("status") not in TERMINAL]
                raise TimeoutError(f"jobs not finished after {timeout:.0f}s: {', '.join(stuck) or 'queue not drained'}")
            time.sleep(interval)

    def _running_executions(self) -> bool:
        sfn = self.session.client("stepfunctions")
        return bool(sfn.list_executions(stateMachineArn=self.state_machine_arn, statusFilter="RUNNING")["executions"])

    def executions(self) -> list[dict[str, Any]]:
        sfn = self.session.client("stepfunctions")
        return sfn.list_executions(stateMachineArn=self.state_machine_arn)["executions"]

    def events(self) -> list[dict[str, Any]]:
        """The EventBridge events published so far (drained from the tap queue)."""
        sqs = self.session.client("sqs")
        out: list[dict[str, Any]] = []
        while True:
            msgs = sqs.receive_message(QueueUrl=self.events_tap_url, MaxNumberOfMessages=10).get("Messages", [])
            if not msgs:
                return out
            for m in msgs:
                out.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=self.events_tap_url, ReceiptHandle=m["ReceiptHandle"])

    def read_object(self, key: str, bucket: str = OUTPUTS_BUCKET) -> bytes:
        return self.session.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()

    def download_outputs(self, record: dict[str, Any], dest: Path) -> list[Path]:
        """Copy a job's outputs and manifest from the local bucket into ``dest/<job_id>/``."""
        s3 = self.session.client("s3")
        prefix = f"{record.get('output_prefix', '')}{record['job_id']}/"
        target = dest / record["job_id"]
        paths = []
        for obj in s3.list_objects_v2(Bucket="mediagen-outputs-local", Prefix=prefix).get("Contents", []):
            path = target / obj["Key"][len(prefix):]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(self.read_object(obj["Key"]))
            paths.append(path)
        return paths

    def logs(self) -> str:
        """The handlers' log lines captured so far (when no ``log_path`` was given)."""
        if self.log_path is not None and self.log_path.exists():
            return self.log_path.read_text()
        return self.log_buffer.getvalue()


def _swap_stream(handler: logging.StreamHandler[Any], stream: Any) -> Any:
    with handler.lock or contextlib.nullcontext():
        previous, handler.stream = handler.stream, stream
    return previous


def _copy_without_executions(self: Any, memo: dict[int, Any]) -> Any:
    import copy

    clone = self.__class__.__new__(self.__class__)
    memo[id(self)] = clone
    for key, value in self.__dict__.items():
        setattr(clone, key, [] if key == "executions" else copy.deepcopy(value, memo))
    return clone


def _local_fetcher() -> Callable[[str], bytes]:
    """How the emulator fetches input URLs locally: S3 URLs (the presigned URLs of ``s3://`` inputs) from moto,
    through ``requests``, which moto intercepts like the provider's fetch would reach S3; anything else over
    the network (fails fast on this machine's closed network; the emulator records the failure)."""
    from mediagen.sandbox.inputs import HttpFetcher

    network = HttpFetcher()

    def fetch(url: str) -> bytes:
        from urllib.parse import urlsplit

        if (urlsplit(url).hostname or "").endswith(".amazonaws.com"):
            import requests

            response = requests.get(url, timeout=10)
            response.raise_for_status()
            return response.content
        return network(url)

    return fetch


def _catalog_modality(model: str) -> str | None:
    from mediagen.catalog import get_catalog

    return get_catalog().modality(model)


def _reset_wiring() -> None:
    from mediagen import wiring
    from mediagen.settings import get_settings

    wiring.ports.cache_clear()
    get_settings.cache_clear()


def _load_handler(handler: str) -> Callable[[dict[str, Any], Any], Any]:
    module_name, _, function = handler.rpartition(".")
    root = str(repo_root())
    import sys

    if root not in sys.path:
        sys.path.insert(0, root)
    return getattr(importlib.import_module(module_name), function)


def _make_invoke(stack: LocalStack) -> Callable[..., bytes]:
    """A replacement for moto's Docker-free Lambda invoke that runs the function's real handler."""

    def invoke(backend: Any, function_name: str, qualifier: str | None, body: Any, headers: Any,
               response_headers: dict[str, str]) -> bytes:
        name = function_name.split(":function:")[-1].split(":")[0]
        handler = stack._handlers.get(name)
        if handler is None:
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": "ResourceNotFound", "errorMessage": f"no function {name}"}).encode()
        event = json.loads(body) if body else {}
        try:
            result = handler(event, _FakeContext(function_name=name))
        except Exception as exc:  # noqa: BLE001 - becomes the Lambda function error Step Functions sees
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": type(exc).__name__, "errorMessage": redact_text(str(exc)),
                               "stackTrace": []}).encode()
        return json.dumps(result).encode()

    return invoke
