"""Provisioning of the embedded stack: the resources of the synthesized template, created in moto.

The jobs queue (with the template's redrive count), the task table (its key schema), the outputs and intake
buckets (intake notifications as the construct sets them), the event bus with a tap queue, the API key secret,
one Lambda function per pipeline function of the template (same handler strings, run in-process) and the
state machine with the template's definition, intrinsics resolved to these resources.
"""

from __future__ import annotations

import importlib
import io
import json
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mediagen.errors import ConfigurationError
from mediagen.local.gateway import ACCOUNT
from mediagen.local.patches import REGION
from mediagen.local.template import Template

__all__ = ["ACCOUNT", "REGION"]

STACK_NAME = "MediaGen-dev"
INTAKE_BUCKET = "mediagen-intake-local"
OUTPUTS_BUCKET = "mediagen-outputs-local"
TASK_TABLE = "mediagen-tasks"
EVENT_BUS = "mediagen-local"
FUNCTION_HANDLER_PREFIX = "functions."

Handler = Callable[[dict[str, Any], Any], Any]


def repo_root() -> Path:
    """The source checkout this package runs from (``shared/mediagen`` -> repo root)."""
    return Path(__file__).resolve().parents[3]


def default_template_path(stack_name: str = STACK_NAME) -> Path:
    """``cdk.out/<stack_name>.template.json`` of the checkout (what ``python infra/app.py`` writes)."""
    return repo_root() / "cdk.out" / f"{stack_name}.template.json"


@dataclass
class Resources:
    """What :func:`provision` created: URLs and ARNs, and the functions by logical id and by name."""

    queue_url: str = ""
    queue_arn: str = ""
    dlq_url: str = ""
    intake_queue_url: str = ""
    intake_queue_arn: str = ""
    events_tap_url: str = ""
    secret_arn: str = ""
    state_machine_arn: str = ""
    state_machine_definition: dict[str, Any] = field(default_factory=dict)
    #: logical id -> the function's real handler
    handlers: dict[str, Handler] = field(default_factory=dict)
    #: function name (``submit``, ``poll``, ...) -> logical id
    names: dict[str, str] = field(default_factory=dict)


def provision(session: Any, template: Template, *, api_key: str, resources: Resources) -> Resources:
    """Create the template's resources in moto (which must be running), filling in ``resources``.

    Raises:
        ConfigurationError: the template lacks a pipeline function or the submit function's queue.
    """
    sqs, s3, events = session.client("sqs"), session.client("s3"), session.client("events")
    # Queue + DLQ with the template's redrive count.
    _, queue = jobs_queue(template)
    max_receive = queue["Properties"].get("RedrivePolicy", {}).get("maxReceiveCount", 5)
    dlq_url = sqs.create_queue(QueueName="mediagen-jobs-dlq")["QueueUrl"]
    queue_url = sqs.create_queue(QueueName="mediagen-jobs", Attributes={
        "VisibilityTimeout": "30",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": _queue_arn(sqs, dlq_url),
                                     "maxReceiveCount": str(max_receive)}),
    })["QueueUrl"]
    resources.queue_url, resources.dlq_url, resources.queue_arn = queue_url, dlq_url, _queue_arn(sqs, queue_url)
    # Task table with the template's key schema.
    _, table = template.only("AWS::DynamoDB::Table")
    props = table["Properties"]
    session.client("dynamodb").create_table(TableName=TASK_TABLE, KeySchema=props["KeySchema"],
                                            AttributeDefinitions=props["AttributeDefinitions"],
                                            BillingMode="PAY_PER_REQUEST")
    s3.create_bucket(Bucket=OUTPUTS_BUCKET)
    events.create_event_bus(Name=EVENT_BUS)
    _create_intake(sqs, s3, events, resources)
    # A tap: every job event also lands on a queue so runs can show and check them.
    tap_url = sqs.create_queue(QueueName="mediagen-events-tap")["QueueUrl"]
    events.put_rule(Name="all-job-events", EventBusName=EVENT_BUS, EventPattern=json.dumps({"source": ["mediagen"]}))
    events.put_targets(Rule="all-job-events", EventBusName=EVENT_BUS,
                       Targets=[{"Id": "tap", "Arn": _queue_arn(sqs, tap_url)}])
    resources.events_tap_url = tap_url
    resources.secret_arn = session.client("secretsmanager").create_secret(
        Name="mediagen/cliprise-api-key", SecretString=api_key)["ARN"]
    # Lambda functions: one per AWS::Lambda::Function in the template, same handler strings.
    role_arn = session.client("iam").create_role(RoleName="mediagen-local", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                               "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    lam = session.client("lambda")
    attrs: dict[tuple[str, str], str] = {}
    refs: dict[str, str] = {}
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("placeholder.py", "")
    for logical_id, fn in template.of_type("AWS::Lambda::Function").items():
        handler = fn["Properties"].get("Handler", "")
        if not handler.startswith(FUNCTION_HANDLER_PREFIX):
            continue  # CDK's own helper functions (custom resources) are not part of the pipeline
        arn = lam.create_function(FunctionName=logical_id, Runtime="python3.12", Role=role_arn,
                                  Handler=handler, Code={"ZipFile": zipped.getvalue()})["FunctionArn"]
        attrs[(logical_id, "Arn")] = arn
        refs[logical_id] = logical_id
        resources.handlers[logical_id] = load_handler(handler)
        resources.names[handler.split(".")[1]] = logical_id
    missing = {"submit", "poll", "persist", "finalize"} - set(resources.names)  # callback/arm: issue 4 templates
    if missing:
        raise ConfigurationError(f"the template has no function for {sorted(missing)}")
    # The state machine: the synthesized definition, intrinsics resolved to the local resources.
    pseudo = {"AWS::Region": REGION, "AWS::Partition": "aws", "AWS::AccountId": ACCOUNT,
              "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": STACK_NAME}
    resources.state_machine_definition = template.state_machine_definition(refs, attrs, pseudo)
    resources.state_machine_arn = session.client("stepfunctions").create_state_machine(
        name="MediaGen-local", definition=json.dumps(resources.state_machine_definition), roleArn=role_arn,
        type="STANDARD")["stateMachineArn"]
    return resources


def _queue_arn(sqs: Any, url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def _create_intake(sqs: Any, s3: Any, events: Any, resources: Resources) -> None:
    """The S3 intake as the construct builds it: a versioned intake bucket whose ``jobs/*.json[l]`` and
    ``inbox/`` object-created notifications go to the intake queue, which also gets every job event."""
    resources.intake_queue_url = sqs.create_queue(QueueName="mediagen-intake",
                                                  Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    resources.intake_queue_arn = _queue_arn(sqs, resources.intake_queue_url)
    s3.create_bucket(Bucket=INTAKE_BUCKET)
    s3.put_bucket_versioning(Bucket=INTAKE_BUCKET, VersioningConfiguration={"Status": "Enabled"})

    def notification(prefix: str, suffix: str = "") -> dict[str, Any]:
        rules = [{"Name": "prefix", "Value": prefix}] + ([{"Name": "suffix", "Value": suffix}] if suffix else [])
        return {"QueueArn": resources.intake_queue_arn, "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": rules}}}

    s3.put_bucket_notification_configuration(Bucket=INTAKE_BUCKET, NotificationConfiguration={
        "QueueConfigurations": [notification("jobs/", ".json"), notification("jobs/", ".jsonl"),
                                notification("inbox/")]})
    events.put_rule(Name="job-events-to-intake", EventBusName=EVENT_BUS,
                    EventPattern=json.dumps({"source": ["mediagen"]}))
    events.put_targets(Rule="job-events-to-intake", EventBusName=EVENT_BUS,
                       Targets=[{"Id": "intake", "Arn": resources.intake_queue_arn}])


def inbox_rules(template: Template) -> str:
    """``MEDIAGEN_INBOX_RULES`` of the template's intake function (the rules the construct was given)."""
    for fn in template.of_type("AWS::Lambda::Function").values():
        props = fn.get("Properties", {})
        if str(props.get("Handler", "")).startswith("functions.intake."):
            value = props.get("Environment", {}).get("Variables", {}).get("MEDIAGEN_INBOX_RULES")
            if isinstance(value, str):
                return value
    return "[]"


def jobs_queue(template: Template) -> tuple[str, dict[str, Any]]:
    """The queue the template's ``submit`` function consumes (its event source mapping): ``(logical id,
    resource)``.

    Raises:
        ConfigurationError: no SQS queue is consumed by the submit function.
    """
    queues = template.of_type("AWS::SQS::Queue")
    submit = next((lid for lid, fn in template.of_type("AWS::Lambda::Function").items()
                   if str(fn["Properties"].get("Handler", "")).startswith("functions.submit.")), None)
    for mapping in template.of_type("AWS::Lambda::EventSourceMapping").values():
        props = mapping.get("Properties", {})
        source = props.get("EventSourceArn", {})
        if props.get("FunctionName") == {"Ref": submit} and isinstance(source, dict) and "Fn::GetAtt" in source:
            logical_id = source["Fn::GetAtt"][0]
            if logical_id in queues:
                return logical_id, queues[logical_id]
    raise ConfigurationError("the template has no SQS queue consumed by the submit function")


def load_handler(handler: str) -> Handler:
    """The function a handler string (``functions.submit.handler``) names, imported from the checkout."""
    module_name, _, function = handler.rpartition(".")
    root = str(repo_root())
    if root not in sys.path:
        sys.path.insert(0, root)
    return getattr(importlib.import_module(module_name), function)
