"""Assertions on the synthesized ``MediaGen-dev`` template (what a deploy would create).

The template comes from the session's one synth (``dev_assembly`` in ``conftest.py``: cdk-nag on, bundling
skipped through the switch the local stack uses; asset hashes do not depend on it, so the template is the
deployed one).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Duration, RemovalPolicy, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Annotations, Match, Template

from mediagen.catalog import get_catalog
from mediagen.intake import report_key
from mediagen.settings import Settings
from mediagen_infra import DEFAULT_INBOX_RULES, InboxRule, MediaGenPipelineProps
from mediagen_infra.bundling import EXCLUDED_PACKAGE_DIRS, REPO_ROOT, function_bundle_files, function_code
from mediagen_infra.lambdas import ARM, FUNCTION_SPECS, build_function

EXPECTED_FUNCTIONS = {
    # name: (timeout s, memory MB, MEDIAGEN_* variables)
    "submit": (60, 256, {"MEDIAGEN_TASK_TABLE", "MEDIAGEN_EVENT_BUS", "MEDIAGEN_STATE_MACHINE_ARN",
                         "MEDIAGEN_API_KEY_SECRET_ID", "MEDIAGEN_CALLBACK_BASE_URL", "MEDIAGEN_INTAKE_BUCKET",
                         "MEDIAGEN_JOBS_QUEUE_URL", "MEDIAGEN_PROVIDERS"}),
    "poll": (45, 256, {"MEDIAGEN_TASK_TABLE", "MEDIAGEN_EVENT_BUS", "MEDIAGEN_API_KEY_SECRET_ID"}),
    "persist": (900, 1024, {"MEDIAGEN_TASK_TABLE", "MEDIAGEN_EVENT_BUS", "MEDIAGEN_API_KEY_SECRET_ID",
                            "MEDIAGEN_OUTPUTS_BUCKET"}),
    "finalize": (30, 256, {"MEDIAGEN_TASK_TABLE", "MEDIAGEN_EVENT_BUS"}),
    "callback": (10, 256, {"MEDIAGEN_TASK_TABLE", "MEDIAGEN_EVENT_BUS"}),
    "arm": (10, 256, {"MEDIAGEN_TASK_TABLE"}),
    # API Gateway gives up on an integration after 30 s: the api function must answer before that.
    "api": (29, 512, {"MEDIAGEN_TASK_TABLE", "MEDIAGEN_EVENT_BUS", "MEDIAGEN_OUTPUTS_BUCKET", "MEDIAGEN_JOBS_QUEUE_URL",
                      "MEDIAGEN_STATE_MACHINE_ARN", "MEDIAGEN_PROVIDERS"}),
    "intake": (300, 512, {"MEDIAGEN_TASK_TABLE", "MEDIAGEN_EVENT_BUS", "MEDIAGEN_OUTPUTS_BUCKET",
                          "MEDIAGEN_JOBS_QUEUE_URL", "MEDIAGEN_INTAKE_BUCKET", "MEDIAGEN_INBOX_RULES",
                          "MEDIAGEN_PROVIDERS"}),
    # The sweeper (every 15 minutes): RECEIVED jobs a refused queue send left behind go back on the queue.
    "sweep": (120, 256, {"MEDIAGEN_TASK_TABLE", "MEDIAGEN_JOBS_QUEUE_URL"}),
    "reconcile": (300, 512, {"MEDIAGEN_TASK_TABLE", "MEDIAGEN_EVENT_BUS", "MEDIAGEN_STATE_MACHINE_ARN"}),
}
#: Functions that read the API key secret (the others never see it).
SECRET_READERS = {"submit", "poll", "persist"}
#: Functions that publish job events (callback has the bus name but never publishes).
PUBLISHERS = {"submit", "poll", "persist", "finalize", "api", "intake", "reconcile"}
#: DynamoDB actions per function: submit, api and intake create task records; intake reads manifests in batches.
TABLE_ACTIONS = {name: {"dynamodb:GetItem", "dynamodb:UpdateItem"} for name in EXPECTED_FUNCTIONS}
for _creator in ("submit", "api", "intake"):
    TABLE_ACTIONS[_creator] |= {"dynamodb:PutItem"}
TABLE_ACTIONS["intake"] |= {"dynamodb:BatchGetItem"}
#: The sweeper finds RECEIVED records with the one Scan any role may make (the table has no status index).
TABLE_ACTIONS["sweep"] |= {"dynamodb:Scan"}
TABLE_ACTIONS["reconcile"] |= {"dynamodb:PutItem", "dynamodb:Scan"}  # the one scheduled reader of the table
#: Functions that may end a WaitForResult wait (states:SendTaskSuccess/Failure/Heartbeat); api cancels jobs.
TASK_RESPONDERS = {"callback", "arm", "api"}
TASK_RESPONSE_ACTIONS = ("states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat")
STATE_TYPES = {
    "WaitForResult": "Task",
    "CheckStatus": "Task",
    "Route": "Choice",
    "Persist": "Task",
    "RecordFailure": "Task",
    "JobEnded": "Succeed",
    "JobSucceeded": "Succeed",
    "PipelineFailed": "Fail",
}


# --------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def template(dev_template_json: dict[str, Any]) -> Template:
    return Template.from_json(dev_template_json)


@pytest.fixture(scope="module")
def resources(template: Template) -> dict[str, dict[str, Any]]:
    return template.to_json()["Resources"]


@pytest.fixture(scope="module")
def functions(resources: dict[str, dict[str, Any]]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Pipeline function name (from the handler) -> (logical id, properties); CDK's own helpers left out."""
    found = {}
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::Lambda::Function" and resource["Properties"]["Handler"].startswith("functions."):
            name = resource["Properties"]["Handler"].split(".")[1]
            found[name] = (logical_id, resource["Properties"])
    return found


def _consumed_queue(resources: dict[str, dict[str, Any]], function_id: str) -> str:
    """The logical id of the one queue ``function_id`` consumes (its SQS event source mapping)."""
    (mapping,) = [m["Properties"] for m in _of_type(resources, "AWS::Lambda::EventSourceMapping").values()
                  if m["Properties"]["FunctionName"] == {"Ref": function_id}]
    return str(mapping["EventSourceArn"]["Fn::GetAtt"][0])


def _of_type(resources: dict[str, dict[str, Any]], cfn_type: str) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in resources.items() if r["Type"] == cfn_type}


def _resolve_join(value: Any) -> str:
    """Resolve an ``Fn::Join`` of strings and tokens; a GetAtt becomes its logical id."""
    parts = value["Fn::Join"][1]
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
        elif "Fn::GetAtt" in part:
            out.append(part["Fn::GetAtt"][0])
        elif part == {"Ref": "AWS::Partition"}:
            out.append("aws")
        else:
            raise AssertionError(f"unexpected token in the definition: {part}")
    return "".join(out)


@pytest.fixture(scope="module")
def definition(resources: dict[str, dict[str, Any]]) -> dict[str, Any]:
    (machine,) = _of_type(resources, "AWS::StepFunctions::StateMachine").values()
    return json.loads(_resolve_join(machine["Properties"]["DefinitionString"]))


def _role_statements(resources: dict[str, dict[str, Any]], function_props: dict[str, Any]) -> list[dict]:
    """All statements of the inline policies attached to a function's execution role."""
    role_id = function_props["Role"]["Fn::GetAtt"][0]
    statements = []
    for policy in _of_type(resources, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else action


def _grants(statements: list[dict], action: str, resource_id: str) -> bool:
    """Whether an Allow statement grants ``action`` on a resource derived from ``resource_id``."""
    return any(
        s["Effect"] == "Allow" and action in _actions(s) and resource_id in json.dumps(s["Resource"])
        for s in statements
    )


def _allowed_actions(statements: list[dict]) -> set[str]:
    return {action for s in statements if s["Effect"] == "Allow" for action in _actions(s)}


def _references(node: Any) -> set[str]:
    """Logical ids a template fragment refers to (``Ref``, ``Fn::GetAtt``)."""
    found: set[str] = set()
    if isinstance(node, dict):
        if isinstance(node.get("Ref"), str):
            found.add(node["Ref"])
        if "Fn::GetAtt" in node:
            found.add(node["Fn::GetAtt"][0])
        for value in node.values():
            found |= _references(value)
    elif isinstance(node, list):
        for value in node:
            found |= _references(value)
    return found


# ----------------------------------------------------------------------------------------- queue + DLQ
def test_jobs_queue_redrives_to_an_encrypted_dlq_after_five_receives(
    resources: dict[str, dict[str, Any]], functions: dict[str, tuple[str, dict[str, Any]]]
) -> None:
    queues = _of_type(resources, "AWS::SQS::Queue")
    assert len(queues) == 4  # jobs + DLQ, intake + DLQ
    main_id = _consumed_queue(resources, functions["submit"][0])
    dlq_id = queues[main_id]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
    main, dlq = queues[main_id]["Properties"], queues[dlq_id]["Properties"]

    assert main["SqsManagedSseEnabled"] is True and dlq["SqsManagedSseEnabled"] is True
    assert main["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]}, "maxReceiveCount": 5,
    }
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600  # dead-lettered jobs kept the longest SQS allows
    assert main["MessageRetentionPeriod"] == 4 * 24 * 3600
    submit_timeout = functions["submit"][1]["Timeout"]
    # A message in flight must stay invisible while submit may still be working on it (AWS: >= 6x).
    assert main["VisibilityTimeout"] >= 6 * submit_timeout


def test_every_queue_refuses_requests_without_tls(template: Template) -> None:
    queue_policies = template.find_resources("AWS::SQS::QueuePolicy")
    assert len(queue_policies) == 4
    for policy in queue_policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        )


# ----------------------------------------------------------------------------- table, bucket, bus, secret
def test_task_table_is_keyed_by_job_id_on_demand_with_pitr_and_sse(template: Template) -> None:
    template.resource_count_is("AWS::DynamoDB::Table", 1)
    template.has_resource(
        "AWS::DynamoDB::Table",
        {
            "Properties": {
                "KeySchema": [{"AttributeName": "job_id", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "job_id", "AttributeType": "S"}],
                "BillingMode": "PAY_PER_REQUEST",
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                "SSESpecification": {"SSEEnabled": True},
            },
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
        },
    )


def _buckets(resources: dict[str, dict[str, Any]]) -> tuple[str, str, str]:
    """(outputs, access logs, intake) bucket ids: outputs and intake log under ``outputs/`` and ``intake/``."""
    buckets = _of_type(resources, "AWS::S3::Bucket")
    assert len(buckets) == 3
    by_prefix = {b["Properties"]["LoggingConfiguration"]["LogFilePrefix"]: lid for lid, b in buckets.items()
                 if "LoggingConfiguration" in b["Properties"]}
    (logs_id,) = set(buckets) - set(by_prefix.values())
    return by_prefix["outputs/"], logs_id, by_prefix["intake/"]


def test_outputs_bucket_is_private_encrypted_versioned_logged_and_retained(
    resources: dict[str, dict[str, Any]]
) -> None:
    outputs_id, logs_id, _intake_id = _buckets(resources)
    bucket = resources[outputs_id]
    props = bucket["Properties"]
    assert props["BucketEncryption"] == {"ServerSideEncryptionConfiguration": [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]}
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
    }
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["LoggingConfiguration"] == {"DestinationBucketName": {"Ref": logs_id}, "LogFilePrefix": "outputs/"}
    (rule,) = props["LifecycleConfiguration"]["Rules"]
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("Retain", "Retain")


def test_access_logs_bucket_is_private_encrypted_expiring_and_retained(
    resources: dict[str, dict[str, Any]]
) -> None:
    _outputs_id, logs_id, _intake_id = _buckets(resources)
    bucket = resources[logs_id]
    props = bucket["Properties"]
    # Server access log delivery writes only to SSE-S3 buckets.
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"
    }
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert props["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == 365
    assert bucket["DeletionPolicy"] == "Retain"


def test_every_bucket_refuses_requests_without_tls(resources: dict[str, dict[str, Any]]) -> None:
    outputs_id, logs_id, intake_id = _buckets(resources)
    policies = {p["Properties"]["Bucket"]["Ref"]: p["Properties"]["PolicyDocument"]["Statement"]
                for p in _of_type(resources, "AWS::S3::BucketPolicy").values()}
    assert set(policies) == {outputs_id, logs_id, intake_id}
    for bucket_id, statements in policies.items():
        assert any(
            s["Effect"] == "Deny" and s["Action"] == "s3:*" and s["Principal"] == {"AWS": "*"}
            and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        ), bucket_id
    # Only the S3 logging service may write to the logs bucket, and only for the outputs and intake buckets,
    # each under its own prefix.
    grants = [s for s in policies[logs_id] if s["Effect"] == "Allow"]
    assert len(grants) == 2
    for source_id, prefix in ((outputs_id, "outputs/"), (intake_id, "intake/")):
        (grant,) = [g for g in grants if g["Condition"]["ArnLike"]["aws:SourceArn"] == {"Fn::GetAtt": [source_id, "Arn"]}]
        assert grant["Principal"] == {"Service": "logging.s3.amazonaws.com"}
        assert grant["Action"] == "s3:PutObject"
        assert grant["Resource"]["Fn::Join"][1][-1] == f"/{prefix}*"


def test_event_bus_is_custom_and_named_after_the_stack(resources: dict[str, dict[str, Any]]) -> None:
    (bus,) = _of_type(resources, "AWS::Events::EventBus").values()
    name = bus["Properties"]["Name"]
    assert name != "default"
    assert name.startswith("MediaGendev")  # derived from the stack name: stages do not collide


def test_api_key_secret_starts_with_a_placeholder(template: Template) -> None:
    template.resource_count_is("AWS::SecretsManager::Secret", 1)
    template.has_resource_properties(
        "AWS::SecretsManager::Secret", {"SecretString": Match.string_like_regexp("REPLACE_ME")}
    )


def test_no_resource_has_a_hard_coded_physical_name(resources: dict[str, dict[str, Any]]) -> None:
    """Two stages (or two embeddings) in one account and region must not fight over a name."""
    name_properties = {
        "AWS::SQS::Queue": "QueueName", "AWS::DynamoDB::Table": "TableName", "AWS::S3::Bucket": "BucketName",
        "AWS::Lambda::Function": "FunctionName", "AWS::StepFunctions::StateMachine": "StateMachineName",
        "AWS::SecretsManager::Secret": "Name", "AWS::Logs::LogGroup": "LogGroupName",
        "AWS::IAM::Role": "RoleName", "AWS::Lambda::LayerVersion": "LayerName",
        "AWS::CloudWatch::Alarm": "AlarmName", "AWS::CloudWatch::Dashboard": "DashboardName",
        "AWS::SNS::Topic": "TopicName", "AWS::KMS::Alias": "AliasName",
    }
    named = [lid for lid, r in resources.items()
             if name_properties.get(r["Type"]) in r.get("Properties", {})]
    assert named == []


# ---------------------------------------------------------------------------------------------- functions
def test_nine_functions_with_the_documented_runtime_and_handlers(
    functions: dict[str, tuple[str, dict[str, Any]]]
) -> None:
    assert set(functions) == set(EXPECTED_FUNCTIONS)
    for name, (_lid, props) in functions.items():
        timeout, memory, _env = EXPECTED_FUNCTIONS[name]
        assert props["Handler"] == f"functions.{name}.app.lambda_handler"
        assert props["Runtime"] == "python3.12"
        assert props["Architectures"] == ["arm64"]
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert (props["Timeout"], props["MemorySize"]) == (timeout, memory), name


def test_every_function_logs_to_its_own_group_kept_one_month(
    resources: dict[str, dict[str, Any]], functions: dict[str, tuple[str, dict[str, Any]]]
) -> None:
    groups = {props["LoggingConfig"]["LogGroup"]["Ref"] for _lid, props in functions.values()}
    assert len(groups) == len(EXPECTED_FUNCTIONS)
    for group in groups:
        assert resources[group]["Type"] == "AWS::Logs::LogGroup"
        assert resources[group]["Properties"]["RetentionInDays"] == 30


def test_every_log_group_has_a_retention_and_outlives_the_stack(resources: dict[str, dict[str, Any]]) -> None:
    """Functions (10), state machine executions (1), callback and jobs API access logs (2): none kept forever."""
    groups = _of_type(resources, "AWS::Logs::LogGroup")
    assert len(groups) == 13
    for logical_id, group in groups.items():
        assert group["Properties"]["RetentionInDays"] == 30, logical_id
        assert group["DeletionPolicy"] == "Retain", logical_id


def test_every_function_uses_the_dependencies_layer_and_its_own_code_asset(
    resources: dict[str, dict[str, Any]], functions: dict[str, tuple[str, dict[str, Any]]]
) -> None:
    (layer_id,) = _of_type(resources, "AWS::Lambda::LayerVersion")
    layer = resources[layer_id]["Properties"]
    assert layer["CompatibleRuntimes"] == ["python3.12"]
    assert layer["CompatibleArchitectures"] == ["arm64"]
    for _lid, props in functions.values():
        assert props["Layers"] == [{"Ref": layer_id}]
    code_keys = {props["Code"]["S3Key"] for _lid, props in functions.values()}
    assert len(code_keys) == len(EXPECTED_FUNCTIONS), "functions must not share one code zip"
    assert layer["Content"]["S3Key"] not in code_keys


def test_function_environment_matches_the_settings_aliases(
    functions: dict[str, tuple[str, dict[str, Any]]]
) -> None:
    aliases = {field.alias for field in Settings.model_fields.values()}
    for name, (_lid, props) in functions.items():
        variables = props["Environment"]["Variables"]
        mediagen_vars = {key for key in variables if key.startswith("MEDIAGEN_")}
        assert mediagen_vars == EXPECTED_FUNCTIONS[name][2], name
        assert mediagen_vars <= aliases, f"{name} sets variables Settings does not read"
        assert variables["POWERTOOLS_SERVICE_NAME"] == "mediagen-dev"  # the alarms' `service` dimension (stage dev)
        assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "MediaGen/dev"
        assert variables["POWERTOOLS_LOG_LEVEL"] == "INFO"
        # Handler responses carry provider URLs and job data: they must not land in X-Ray.
        assert variables["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"
        # Spend guards are off unless the props set them.
        assert "MEDIAGEN_DAILY_CREDIT_BUDGET" not in variables and "MEDIAGEN_MAX_IN_FLIGHT" not in variables


def test_submit_consumes_the_jobs_queue_with_partial_batch_failures(
    resources: dict[str, dict[str, Any]], functions: dict[str, tuple[str, dict[str, Any]]]
) -> None:
    (mapping,) = [m for m in _of_type(resources, "AWS::Lambda::EventSourceMapping").values()
                  if m["Properties"]["FunctionName"] == {"Ref": functions["submit"][0]}]
    props = mapping["Properties"]
    assert props["BatchSize"] == 10
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    queue_id = props["EventSourceArn"]["Fn::GetAtt"][0]
    assert "RedrivePolicy" in resources[queue_id]["Properties"]  # the jobs queue, not the DLQ
    assert "Intake" not in queue_id
    # submit puts a job back with a short visibility (no free slot, rate limited): it may change visibility.
    assert _grants(_role_statements(resources, functions["submit"][1]), "sqs:ChangeMessageVisibility", queue_id)


# ------------------------------------------------------------------------------------------ state machine
def test_state_machine_is_standard_traced_with_a_three_hour_backstop(
    template: Template, definition: dict[str, Any]
) -> None:
    template.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {"StateMachineType": "STANDARD", "TracingConfiguration": {"Enabled": True}},
    )
    assert definition["TimeoutSeconds"] == 3 * 3600


def test_backstop_outlasts_the_longest_deadline_plus_a_full_persist(
    definition: dict[str, Any], functions: dict[str, tuple[str, dict[str, Any]]]
) -> None:
    """A video job may run to its deadline and then persist for the whole Lambda timeout: the execution
    timeout (a pipeline failure) must never cut a job the deadline (TIMED_OUT) or persist would finish."""
    settings = Settings()
    longest_deadline = max(settings.deadline_image_seconds, settings.deadline_video_seconds,
                           settings.deadline_audio_seconds)
    persist_timeout = functions["persist"][1]["Timeout"]
    last_wait = settings.poll_max_seconds + functions["poll"][1]["Timeout"]
    assert definition["TimeoutSeconds"] > longest_deadline + last_wait + persist_timeout
    # No Lambda task sets its own TimeoutSeconds: each lasts at most its function's timeout.
    for name in ("CheckStatus", "Persist", "RecordFailure"):
        assert "TimeoutSeconds" not in definition["States"][name], name


def test_the_api_key_lives_only_in_secrets_manager(
    resources: dict[str, dict[str, Any]], functions: dict[str, tuple[str, dict[str, Any]]]
) -> None:
    for name, (_lid, props) in functions.items():
        variables = props["Environment"]["Variables"]
        assert "CLIPRISE_API_KEY" not in variables, name
        assert not [k for k in variables if "KEY" in k and k != "MEDIAGEN_API_KEY_SECRET_ID"], name
    holders = [lid for lid, r in resources.items() if "REPLACE_ME" in json.dumps(r)]
    assert [resources[lid]["Type"] for lid in holders] == ["AWS::SecretsManager::Secret"]


def test_definition_has_exactly_the_contract_states(definition: dict[str, Any]) -> None:
    states = definition["States"]
    assert definition["StartAt"] == "WaitForResult"
    assert {name: state["Type"] for name, state in states.items()} == STATE_TYPES
    assert states["WaitForResult"]["Next"] == "CheckStatus"
    assert states["CheckStatus"]["Next"] == "Route"
    assert states["Persist"]["Next"] == "JobSucceeded"
    assert states["RecordFailure"]["Next"] == "PipelineFailed"
    assert states["PipelineFailed"] == {
        "Type": "Fail", "Error": "PipelineFailed", "Cause": "see the job record",
    }


def test_wait_for_result_invokes_arm_with_the_task_token_and_times_out_after_wait_seconds(
    definition: dict[str, Any], functions: dict[str, tuple[str, dict[str, Any]]]
) -> None:
    """The execution sleeps in arm's task until a callback sends the token, at most ``$.wait_seconds``."""
    state = definition["States"]["WaitForResult"]
    assert state["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    assert state["Parameters"] == {
        "FunctionName": functions["arm"][0],
        "Payload": {"job_id.$": "$.job_id", "task_token.$": "$$.Task.Token", "wait_seconds.$": "$.wait_seconds"},
    }
    assert state["TimeoutSecondsPath"] == "$.wait_seconds"
    assert "TimeoutSeconds" not in state and "HeartbeatSeconds" not in state
    # The task's result (the callback's SendTaskSuccess output) is dropped: CheckStatus gets the same state.
    assert "ResultPath" in state and state["ResultPath"] is None
    assert "OutputPath" not in state


def test_wait_for_result_timeout_checks_the_status_and_other_errors_record_a_failure(
    definition: dict[str, Any]
) -> None:
    # First match wins: the timeout catch must come before States.ALL (which also matches a timeout).
    assert definition["States"]["WaitForResult"]["Catch"] == [
        {"ErrorEquals": ["States.Timeout"], "ResultPath": None, "Next": "CheckStatus"},
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordFailure"},
    ]


def test_no_wait_state_is_left(definition: dict[str, Any]) -> None:
    assert [name for name, state in definition["States"].items() if state["Type"] == "Wait"] == []


def test_route_loops_while_processing_persists_when_ready_and_ends_otherwise(
    definition: dict[str, Any]
) -> None:
    route = definition["States"]["Route"]
    assert route["Choices"] == [
        {"Variable": "$.phase", "StringEquals": "processing", "Next": "WaitForResult"},
        {"Variable": "$.phase", "StringEquals": "ready", "Next": "Persist"},
    ]
    assert route["Default"] == "JobEnded"


def test_route_branches_on_exactly_the_phases_the_steps_return(definition: dict[str, Any]) -> None:
    """The Choice conditions are the ``Phase`` values the poll step returns (one enum for both sides): a phase
    renamed in one place only would send every job to ``JobEnded``."""
    from mediagen.steps.phases import ROUTED, Phase

    compared = [c["StringEquals"] for c in definition["States"]["Route"]["Choices"]]
    assert compared == [p.value for p in ROUTED]
    assert set(compared) <= {p.value for p in Phase}
    # Every other phase a step can return ends the execution.
    assert {p.value for p in Phase} - set(compared) == {"ended", "succeeded", "ignored"}


def test_lambda_tasks_pass_the_whole_state_and_invoke_the_right_function(
    definition: dict[str, Any], functions: dict[str, tuple[str, dict[str, Any]]]
) -> None:
    expected = {"CheckStatus": "poll", "Persist": "persist", "RecordFailure": "finalize"}
    for state_name, function_name in expected.items():
        state = definition["States"][state_name]
        assert state["Resource"] == "arn:aws:states:::lambda:invoke"
        assert state["Parameters"] == {"FunctionName": functions[function_name][0], "Payload.$": "$"}
        assert state["OutputPath"] == "$.Payload"


def test_check_status_and_persist_catch_everything_into_record_failure(definition: dict[str, Any]) -> None:
    for name in ("CheckStatus", "Persist"):
        assert definition["States"][name]["Catch"] == [
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordFailure"}
        ], name
    assert "Catch" not in definition["States"]["RecordFailure"]


def test_record_failure_retries_three_times_with_backoff(definition: dict[str, Any]) -> None:
    retries = definition["States"]["RecordFailure"]["Retry"]
    assert retries[-1] == {
        "ErrorEquals": ["States.ALL"], "IntervalSeconds": 2, "MaxAttempts": 3, "BackoffRate": 2,
    }


# ---------------------------------------------------------------------------------------------------- IAM
def test_functions_get_least_privilege_grants(
    resources: dict[str, dict[str, Any]], functions: dict[str, tuple[str, dict[str, Any]]]
) -> None:
    (machine_id,) = _of_type(resources, "AWS::StepFunctions::StateMachine")
    outputs_id, logs_id, intake_id = _buckets(resources)
    (table_id,) = _of_type(resources, "AWS::DynamoDB::Table")
    (bus_id,) = _of_type(resources, "AWS::Events::EventBus")
    (secret_id,) = _of_type(resources, "AWS::SecretsManager::Secret")
    statements = {name: _role_statements(resources, props) for name, (_lid, props) in functions.items()}

    # submit starts executions; the reconciler starts one a submitted job lost (every start of its deliveries failed)
    assert _grants(statements["submit"], "states:StartExecution", machine_id)
    assert _grants(statements["reconcile"], "states:StartExecution", machine_id)
    for name in functions:
        table_actions = {a for s in statements[name] if table_id in json.dumps(s["Resource"]) for a in _actions(s)}
        assert table_actions == TABLE_ACTIONS[name], name  # no Scan, Query, DeleteItem, Batch*
        publishes = _grants(statements[name], "events:PutEvents", bus_id)
        assert publishes == (name in PUBLISHERS), name
        reads_secret = _grants(statements[name], "secretsmanager:GetSecretValue", secret_id)
        assert reads_secret == (name in SECRET_READERS), name
        assert not _grants(statements[name], "secretsmanager:DescribeSecret", secret_id), name
        for action in TASK_RESPONSE_ACTIONS:
            assert _grants(statements[name], action, machine_id) == (name in TASK_RESPONDERS), (name, action)
        assert not _grants(statements[name], "s3:PutObject", logs_id), name
    s3_by_bucket = {
        name: {(a, bucket_id) for s in statements[name] for a in _actions(s) if a.startswith("s3:")
               for bucket_id in (outputs_id, logs_id, intake_id) if bucket_id in json.dumps(s["Resource"])}
        for name in functions
    }
    assert s3_by_bucket["persist"] == {(a, outputs_id) for a in (
        "s3:PutObject", "s3:PutObjectTagging", "s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject")}
    # api presigns result downloads; intake reads what is dropped and writes manifest reports; submit presigns
    # the intake objects a job names as its inputs.
    assert s3_by_bucket["api"] == {("s3:GetObject", outputs_id)}
    assert s3_by_bucket["intake"] == {("s3:GetObject", intake_id), ("s3:GetObjectVersion", intake_id),
                                      ("s3:PutObject", outputs_id)}
    assert s3_by_bucket["submit"] == {("s3:GetObject", intake_id), ("s3:GetObjectVersion", intake_id)}
    for name in functions:
        all_s3 = {a for s in statements[name] for a in _actions(s) if a.startswith("s3:")}
        assert all_s3 == {a for a, _bucket in s3_by_bucket[name]}, name  # no S3 action on anything else
    for name in ("poll", "finalize", "callback", "arm"):
        assert not s3_by_bucket[name], name
    for name in ("poll", "persist", "finalize", "callback", "arm", "api", "intake"):
        assert not _grants(statements[name], "states:StartExecution", machine_id), name


def test_the_deployed_code_calls_only_the_granted_dynamodb_operations() -> None:
    """A new DynamoDB call (Query, Scan, DeleteItem, ...) in the Lambda code needs a grant in
    ``infra/mediagen_infra/permissions.py`` (TABLE_ACTIONS): without it, it fails with AccessDenied only in AWS
    (moto does not check IAM). The local stack and the sandbox never ship; ``dynamo.py`` only forwards calls."""
    package = REPO_ROOT / "shared" / "mediagen"
    shipped = [path for path in package.rglob("*.py")
               if not EXCLUDED_PACKAGE_DIRS & set(path.relative_to(package).parts) and path.name != "dynamo.py"]
    sources = "\n".join(path.read_text() for path in [*shipped, *(REPO_ROOT / "functions").rglob("*.py")])
    operations = set(re.findall(
        r"\.(get_item|put_item|update_item|delete_item|query|scan|batch_get_item|batch_write_item|"
        r"transact_get_items|transact_write_items|execute_statement)\(", sources))
    assert {"get_item", "put_item", "update_item"} <= operations  # the scan found the repository's calls
    # JobRepository.scan serves operators (the CLI, the local stack) and two scheduled functions: the sweeper
    # (mediagen.intake.sweep_stale_received, every 15 minutes: RECEIVED jobs a refused queue send left behind)
    # and the reconciler (mediagen.steps.reconcile, every 5 minutes: unpublished events, drifted counters); the
    # table has no status index. Only their roles are granted Scan; no other shipped code may call it.
    callers = sorted(str(path.relative_to(REPO_ROOT)) for path in [*shipped, *(REPO_ROOT / "functions").rglob("*.py")]
                     if path.name != "records.py" and re.search(r"\.scan\(", path.read_text()))
    assert callers == ["shared/mediagen/intake.py", "shared/mediagen/steps/reconcile.py"], \
        "a Lambda would scan the job table without a grant"
    scans = [line for line in (package / "intake.py").read_text().splitlines() if ".scan(" in line]
    assert scans and all("status=" in s and "limit=" in s for s in scans)  # RECEIVED records only, bounded
    assert sorted(name for name, actions in TABLE_ACTIONS.items() if "dynamodb:Scan" in actions) == \
        ["reconcile", "sweep"]
    operations.discard("scan")
    if operations & {"transact_write_items"}:  # authorised per item by the item's own action (UpdateItem)
        operations = (operations - {"transact_write_items"}) | {"update_item"}
    granted = {"dynamodb:" + "".join(part.title() for part in op.split("_")) for op in operations}
    assert granted <= set().union(*TABLE_ACTIONS.values()), sorted(granted)


def test_each_function_has_its_own_role_without_managed_policies(
    resources: dict[str, dict[str, Any]], functions: dict[str, tuple[str, dict[str, Any]]]
) -> None:
    roles = {props["Role"]["Fn::GetAtt"][0] for _lid, props in functions.values()}
    assert len(roles) == len(EXPECTED_FUNCTIONS)
    for role_id in roles:
        role = resources[role_id]["Properties"]
        assert "ManagedPolicyArns" not in role, role_id  # no AWSLambdaBasicExecutionRole (logs:* anywhere)
        assert role["AssumeRolePolicyDocument"]["Statement"] == [
            {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}
        ]


def test_each_function_writes_only_to_its_own_log_group(
    resources: dict[str, dict[str, Any]], functions: dict[str, tuple[str, dict[str, Any]]]
) -> None:
    for name, (_lid, props) in functions.items():
        log_statements = [s for s in _role_statements(resources, props)
                          if any(a.startswith("logs:") for a in _actions(s))]
        assert log_statements == [{
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [props["LoggingConfig"]["LogGroup"]["Ref"], "Arn"]},
        }], name


def _all_role_statements(resources: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    statements = [s for p in _of_type(resources, "AWS::IAM::Policy").values()
                  for s in p["Properties"]["PolicyDocument"]["Statement"]]
    for role in _of_type(resources, "AWS::IAM::Role").values():
        for policy in role["Properties"].get("Policies", []):
            statements += policy["PolicyDocument"]["Statement"]
    return statements


def test_no_role_policy_has_a_wildcard_action(resources: dict[str, dict[str, Any]]) -> None:
    statements = _all_role_statements(resources)
    assert statements
    assert [a for s in statements for a in _actions(s) if "*" in a] == []


def test_only_actions_without_resource_level_permissions_get_resource_star(
    resources: dict[str, dict[str, Any]]
) -> None:
    """X-Ray and CloudWatch Logs vended delivery support no resource ARNs; nothing else may use '*'."""
    allowed = re.compile(r"xray:(PutTraceSegments|PutTelemetryRecords|GetSamplingRules|GetSamplingTargets)|"
                         r"logs:(Create|Get|Update|Delete|List)LogDeliver(y|ies)|"
                         r"logs:(PutResourcePolicy|DescribeResourcePolicies|DescribeLogGroups)")
    star = [s for s in _all_role_statements(resources) if s["Effect"] == "Allow" and s["Resource"] == "*"]
    assert star
    assert [a for s in star for a in _actions(s) if not allowed.fullmatch(a)] == []


def test_callback_and_arm_never_touch_the_secret_or_s3(
    resources: dict[str, dict[str, Any]], functions: dict[str, tuple[str, dict[str, Any]]]
) -> None:
    for name in ("callback", "arm"):
        actions = _allowed_actions(_role_statements(resources, functions[name][1]))
        assert {"states:SendTaskSuccess", "dynamodb:GetItem", "dynamodb:UpdateItem"} <= actions, name
        assert [a for a in actions if a.startswith(("secretsmanager:", "s3:", "kms:"))] == [], name


def test_the_template_has_no_dependency_cycle(resources: dict[str, dict[str, Any]]) -> None:
    """CloudFormation refuses a cycle at deploy time (arm is invoked by, and wakes, the state machine)."""
    graph = {}
    for logical_id, resource in resources.items():
        depends_on = resource.get("DependsOn", [])
        depends_on = [depends_on] if isinstance(depends_on, str) else depends_on
        graph[logical_id] = (_references(resource.get("Properties", {})) | set(depends_on)) & set(resources)

    done: set[str] = set()
    visiting: list[str] = []

    def visit(node: str) -> None:
        if node in done:
            return
        assert node not in visiting, f"dependency cycle: {visiting[visiting.index(node):] + [node]}"
        visiting.append(node)
        for dependency in sorted(graph[node]):
            visit(dependency)
        visiting.pop()
        done.add(node)

    for logical_id in sorted(graph):
        visit(logical_id)


def test_no_policy_allows_every_action(resources: dict[str, dict[str, Any]]) -> None:
    def statements(node: Any) -> list[dict]:
        if isinstance(node, dict):
            found = list(node["Statement"]) if isinstance(node.get("Statement"), list) else []
            return found + [s for value in node.values() for s in statements(value)]
        if isinstance(node, list):
            return [s for value in node for s in statements(value)]
        return []

    all_statements = statements(resources)
    assert all_statements
    assert [s for s in all_statements if s["Effect"] == "Allow" and "*" in _actions(s)] == []


# ------------------------------------------------------------------------------------------- callback API
def _api_named(resources: dict[str, dict[str, Any]], name: str) -> str:
    (api_id,) = [lid for lid, api in _of_type(resources, "AWS::ApiGatewayV2::Api").items()
                 if api["Properties"]["Name"] == name]
    return api_id


def _of_api(resources: dict[str, dict[str, Any]], cfn_type: str, api_id: str) -> dict[str, dict[str, Any]]:
    """The routes (stages, integrations, ...) of one API."""
    return {lid: r for lid, r in _of_type(resources, cfn_type).items() if r["Properties"]["ApiId"] == {"Ref": api_id}}


@pytest.fixture(scope="module")
def http_api_id(resources: dict[str, dict[str, Any]]) -> str:
    """The callback API."""
    assert len(_of_type(resources, "AWS::ApiGatewayV2::Api")) == 2  # callbacks, jobs
    return _api_named(resources, "MediaGen-dev-callbacks")


def test_callback_api_is_an_http_api_named_after_the_stack(
    resources: dict[str, dict[str, Any]], http_api_id: str
) -> None:
    api = resources[http_api_id]["Properties"]
    assert api["ProtocolType"] == "HTTP"
    assert api["Name"] == "MediaGen-dev-callbacks"
    assert "CorsConfiguration" not in api  # server-to-server: no browser calls this API


def test_post_callbacks_token_is_the_only_route_and_goes_to_the_callback_function(
    resources: dict[str, dict[str, Any]], functions: dict[str, tuple[str, dict[str, Any]]], http_api_id: str
) -> None:
    (route,) = _of_api(resources, "AWS::ApiGatewayV2::Route", http_api_id).values()
    props = route["Properties"]
    assert props["RouteKey"] == "POST /callbacks/{token}"
    # No authorizer: the provider cannot sign its callbacks; the unguessable token is the credential.
    assert props["AuthorizationType"] == "NONE"
    assert "AuthorizerId" not in props

    integration_id = {part["Ref"] for part in props["Target"]["Fn::Join"][1] if isinstance(part, dict)}.pop()
    integration = resources[integration_id]["Properties"]
    assert integration["IntegrationType"] == "AWS_PROXY"
    assert integration["PayloadFormatVersion"] == "2.0"
    assert integration["IntegrationUri"] == {"Fn::GetAtt": [functions["callback"][0], "Arn"]}


def test_only_the_callback_route_may_invoke_the_callback_function(
    resources: dict[str, dict[str, Any]], functions: dict[str, tuple[str, dict[str, Any]]], http_api_id: str
) -> None:
    permissions = [p["Properties"] for p in _of_type(resources, "AWS::Lambda::Permission").values()
                   if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [functions["callback"][0], "Arn"]}]
    (permission,) = permissions
    assert permission["Principal"] == "apigateway.amazonaws.com"
    source_arn = permission["SourceArn"]["Fn::Join"][1]
    assert {"Ref": http_api_id} in source_arn
    assert source_arn[-1] == "/*/*/callbacks/{token}"


def test_default_stage_auto_deploys_throttled_with_access_logs_kept_one_month(
    resources: dict[str, dict[str, Any]], http_api_id: str
) -> None:
    (stage,) = _of_api(resources, "AWS::ApiGatewayV2::Stage", http_api_id).values()
    props = stage["Properties"]
    assert props["StageName"] == "$default"
    assert props["AutoDeploy"] is True
    assert props["DefaultRouteSettings"] == {"ThrottlingBurstLimit": 100, "ThrottlingRateLimit": 50}

    log_group_id = props["AccessLogSettings"]["DestinationArn"]["Fn::GetAtt"][0]
    assert resources[log_group_id]["Type"] == "AWS::Logs::LogGroup"
    assert resources[log_group_id]["Properties"]["RetentionInDays"] == 30


def test_access_log_lines_are_json_without_the_path_that_carries_the_token(
    resources: dict[str, dict[str, Any]], http_api_id: str
) -> None:
    (stage,) = _of_api(resources, "AWS::ApiGatewayV2::Stage", http_api_id).values()
    log_format = stage["Properties"]["AccessLogSettings"]["Format"]
    assert "$context.path" not in log_format and "$context.rawPath" not in log_format
    # What API Gateway writes: every $context variable replaced (messageString arrives quoted).
    line = json.loads(
        log_format.replace("$context.error.messageString", '"Internal Server Error"').replace("$context.", "")
    )
    assert {"requestId", "routeKey", "status", "sourceIp", "integrationError", "error"} <= set(line)


def test_submit_learns_the_callback_url_base_from_the_api_endpoint(
    template: Template, functions: dict[str, tuple[str, dict[str, Any]]], http_api_id: str
) -> None:
    expected = {"Fn::Join": ["", [{"Fn::GetAtt": [http_api_id, "ApiEndpoint"]}, "/callbacks"]]}
    variables = functions["submit"][1]["Environment"]["Variables"]
    assert variables["MEDIAGEN_CALLBACK_BASE_URL"] == expected
    assert template.to_json()["Outputs"]["CallbackUrlBase"]["Value"] == expected


# ----------------------------------------------------------------------------------------------- jobs API
JOBS_API_ROUTE_KEYS = {"POST /jobs", "GET /jobs/{job_id}", "POST /jobs/{job_id}/cancel", "GET /models",
                       "GET /models/{model_id}", "GET /openapi.json"}


@pytest.fixture(scope="module")
def jobs_api_id(resources: dict[str, dict[str, Any]]) -> str:
    return _api_named(resources, "MediaGen-dev-jobs")


def test_jobs_api_serves_the_six_routes_signed_with_iam_through_the_api_function(
    resources: dict[str, dict[str, Any]], functions: dict[str, tuple[str, dict[str, Any]]], jobs_api_id: str
) -> None:
    api = resources[jobs_api_id]["Properties"]
    assert api["ProtocolType"] == "HTTP"
    assert "CorsConfiguration" not in api  # SigV4 clients, not browsers
    routes = [r["Properties"] for r in _of_api(resources, "AWS::ApiGatewayV2::Route", jobs_api_id).values()]
    assert {r["RouteKey"] for r in routes} == JOBS_API_ROUTE_KEYS and len(routes) == len(JOBS_API_ROUTE_KEYS)
    # Unsigned requests are refused by API Gateway (403) before the function runs.
    assert {r["RouteKey"]: r["AuthorizationType"] for r in routes} == dict.fromkeys(JOBS_API_ROUTE_KEYS, "AWS_IAM")

    targets = {part["Ref"] for r in routes for part in r["Target"]["Fn::Join"][1] if isinstance(part, dict)}
    (integration_id,) = targets  # one Lambda proxy integration for every route
    integration = resources[integration_id]["Properties"]
    assert (integration["IntegrationType"], integration["PayloadFormatVersion"]) == ("AWS_PROXY", "2.0")
    assert integration["IntegrationUri"] == {"Fn::GetAtt": [functions["api"][0], "Arn"]}


def test_only_the_jobs_api_routes_may_invoke_the_api_function(
    resources: dict[str, dict[str, Any]], functions: dict[str, tuple[str, dict[str, Any]]], jobs_api_id: str
) -> None:
    permissions = [p["Properties"] for p in _of_type(resources, "AWS::Lambda::Permission").values()
                   if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [functions["api"][0], "Arn"]}]
    assert {p["Principal"] for p in permissions} == {"apigateway.amazonaws.com"}
    for permission in permissions:
        assert {"Ref": jobs_api_id} in permission["SourceArn"]["Fn::Join"][1]
    paths = {p["SourceArn"]["Fn::Join"][1][-1].removeprefix("/*/*") for p in permissions}
    assert paths == {key.split(" ")[1] for key in JOBS_API_ROUTE_KEYS}


def test_jobs_api_stage_is_throttled_and_logs_who_signed_each_request(
    resources: dict[str, dict[str, Any]], jobs_api_id: str, http_api_id: str
) -> None:
    (stage,) = _of_api(resources, "AWS::ApiGatewayV2::Stage", jobs_api_id).values()
    props = stage["Properties"]
    assert (props["StageName"], props["AutoDeploy"]) == ("$default", True)
    assert props["DefaultRouteSettings"] == {"ThrottlingBurstLimit": 50, "ThrottlingRateLimit": 25}
    log_group_id = props["AccessLogSettings"]["DestinationArn"]["Fn::GetAtt"][0]
    assert resources[log_group_id]["Properties"]["RetentionInDays"] == 30
    (callback_stage,) = _of_api(resources, "AWS::ApiGatewayV2::Stage", http_api_id).values()
    assert callback_stage["Properties"]["AccessLogSettings"]["DestinationArn"]["Fn::GetAtt"][0] != log_group_id
    log_format = props["AccessLogSettings"]["Format"]
    line = json.loads(
        log_format.replace("$context.error.messageString", '"Forbidden"').replace("$context.", "")
    )
    assert {"requestId", "routeKey", "status", "callerArn", "callerAccount", "error"} <= set(line)
    assert line["callerArn"] == "identity.userArn"


def test_jobs_api_url_is_the_api_endpoint(template: Template, jobs_api_id: str) -> None:
    output = template.to_json()["Outputs"]["JobsApiUrl"]
    assert output["Value"] == {"Fn::GetAtt": [jobs_api_id, "ApiEndpoint"]}
    assert "POST /jobs" in output["Description"]


def test_api_queues_jobs_presigns_results_and_wakes_cancelled_executions(
    resources: dict[str, dict[str, Any]], functions: dict[str, tuple[str, dict[str, Any]]]
) -> None:
    jobs_queue_id = _consumed_queue(resources, functions["submit"][0])
    intake_queue_id = _consumed_queue(resources, functions["intake"][0])
    (machine_id,) = _of_type(resources, "AWS::StepFunctions::StateMachine")
    api = _role_statements(resources, functions["api"][1])
    assert _grants(api, "sqs:SendMessage", jobs_queue_id)
    assert not _grants(api, "sqs:SendMessage", intake_queue_id)
    assert not [a for a in _allowed_actions(api) if a.startswith("sqs:Receive")]
    for action in TASK_RESPONSE_ACTIONS:
        assert _grants(api, action, machine_id), action
    assert not _grants(api, "states:StartExecution", machine_id)  # submit starts executions, the API queues jobs
    variables = functions["api"][1]["Environment"]["Variables"]
    assert variables["MEDIAGEN_JOBS_QUEUE_URL"] == {"Ref": jobs_queue_id}
    assert variables["MEDIAGEN_STATE_MACHINE_ARN"] == {"Ref": machine_id}


def test_the_api_and_intake_functions_never_see_the_api_key(
    resources: dict[str, dict[str, Any]], functions: dict[str, tuple[str, dict[str, Any]]]
) -> None:
    for name in ("api", "intake"):
        actions = _allowed_actions(_role_statements(resources, functions[name][1]))
        assert [a for a in actions if a.startswith(("secretsmanager:", "kms:"))] == [], name
        assert "MEDIAGEN_API_KEY_SECRET_ID" not in functions[name][1]["Environment"]["Variables"], name


def test_jobs_api_props_are_validated() -> None:
    with pytest.raises(ValueError, match=r"jobs_api_auth must be one of 'iam', got 'cognito'"):
        MediaGenPipelineProps(jobs_api_auth="cognito")
    with pytest.raises(ValueError, match=r"jobs_api_auth: .*set allow_unauthenticated=True"):
        MediaGenPipelineProps(jobs_api_auth="none")
    with pytest.raises(ValueError, match=r"operator_principals: 'arn:aws:s3:::bucket' is not an IAM role or user"):
        MediaGenPipelineProps(operator_principals=["arn:aws:s3:::bucket"])
    with pytest.raises(ValueError, match="operator_principals must be a list"):
        MediaGenPipelineProps(operator_principals="arn:aws:iam::123456789012:role/Ops")
    assert MediaGenPipelineProps(operator_principals=["arn:aws:iam::123456789012:role/ops/Ops"]).operator_principals
    with pytest.raises(ValueError, match="jobs_api_throttle"):
        MediaGenPipelineProps(jobs_api_throttle_burst=-1)
    with pytest.raises(ValueError, match="jobs_api_throttle"):
        MediaGenPipelineProps(jobs_api_throttle_rate=-5)
    assert MediaGenPipelineProps(allow_unauthenticated=True, jobs_api_throttle_rate=0).allow_unauthenticated


# ------------------------------------------------------------------------------------------------- intake
def test_intake_bucket_is_private_encrypted_versioned_and_logged_under_intake(
    resources: dict[str, dict[str, Any]], template: Template
) -> None:
    _outputs_id, logs_id, intake_id = _buckets(resources)
    bucket = resources[intake_id]
    props = bucket["Properties"]
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"}
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["LoggingConfiguration"] == {"DestinationBucketName": {"Ref": logs_id}, "LogFilePrefix": "intake/"}
    (rule,) = props["LifecycleConfiguration"]["Rules"]
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("Retain", "Retain")
    assert template.to_json()["Outputs"]["IntakeBucketName"]["Value"] == {"Ref": intake_id}


def test_manifests_and_inbox_files_notify_the_intake_queue(
    resources: dict[str, dict[str, Any]], functions: dict[str, tuple[str, dict[str, Any]]]
) -> None:
    _outputs_id, _logs_id, intake_id = _buckets(resources)
    intake_queue_id = _consumed_queue(resources, functions["intake"][0])
    (notifications,) = _of_type(resources, "Custom::S3BucketNotifications").values()  # the intake bucket only
    props = notifications["Properties"]
    assert props["BucketName"] == {"Ref": intake_id}
    configurations = props["NotificationConfiguration"]["QueueConfigurations"]
    assert set(props["NotificationConfiguration"]) == {"QueueConfigurations"}
    filters = set()
    for configuration in configurations:
        assert configuration["Events"] == ["s3:ObjectCreated:*"]
        assert configuration["QueueArn"] == {"Fn::GetAtt": [intake_queue_id, "Arn"]}
        rules = {rule["Name"]: rule["Value"] for rule in configuration["Filter"]["Key"]["FilterRules"]}
        filters.add((rules["prefix"], rules.get("suffix")))
    assert len(filters) == len(configurations)
    # Manifests (.json, .jsonl under jobs/) and one notification per default inbox rule.
    assert filters == {("jobs/", ".json"), ("jobs/", ".jsonl"), ("inbox/upscale/", None), ("inbox/remove-bg/", None),
                       ("inbox/transcribe/", None), ("inbox/animate/", None)}


def test_intake_queue_has_a_dlq_and_outlasts_the_intake_function(
    resources: dict[str, dict[str, Any]], functions: dict[str, tuple[str, dict[str, Any]]], template: Template
) -> None:
    intake_id, intake = functions["intake"]
    queue_id = _consumed_queue(resources, intake_id)
    queue = resources[queue_id]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["RedrivePolicy"]["maxReceiveCount"] == 5
    dlq_id = queue["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
    assert dlq_id != _consumed_queue(resources, functions["submit"][0])
    assert resources[dlq_id]["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["VisibilityTimeout"] == 6 * intake["Timeout"] == 1800
    (mapping,) = [m["Properties"] for m in _of_type(resources, "AWS::Lambda::EventSourceMapping").values()
                  if m["Properties"]["FunctionName"] == {"Ref": intake_id}]
    assert mapping["BatchSize"] == 10
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert template.to_json()["Outputs"]["IntakeQueueUrl"]["Value"] == {"Ref": queue_id}


def test_only_the_intake_bucket_and_the_manifest_rule_may_send_to_the_intake_queue(
    resources: dict[str, dict[str, Any]], functions: dict[str, tuple[str, dict[str, Any]]]
) -> None:
    _outputs_id, _logs_id, intake_bucket_id = _buckets(resources)
    queue_id = _consumed_queue(resources, functions["intake"][0])
    (policy,) = [p["Properties"] for p in _of_type(resources, "AWS::SQS::QueuePolicy").values()
                 if p["Properties"]["Queues"] == [{"Ref": queue_id}]]
    allows = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    senders = {(s["Principal"]["Service"], json.dumps(s["Condition"], sort_keys=True)) for s in allows}
    (rule_id,) = [lid for lid, r in _of_type(resources, "AWS::Events::Rule").items()
                  if r["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": [queue_id, "Arn"]}]
    assert senders == {
        ("s3.amazonaws.com",
         json.dumps({"ArnLike": {"aws:SourceArn": {"Fn::GetAtt": [intake_bucket_id, "Arn"]}}}, sort_keys=True)),
        ("events.amazonaws.com",
         json.dumps({"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]}}}, sort_keys=True)),
    }


def test_job_events_reach_the_intake_queue(
    resources: dict[str, dict[str, Any]], functions: dict[str, tuple[str, dict[str, Any]]]
) -> None:
    """The intake function writes a manifest's final report when the last of its jobs has ended."""
    (bus_id,) = _of_type(resources, "AWS::Events::EventBus")
    queue_id = _consumed_queue(resources, functions["intake"][0])
    rules = [r["Properties"] for r in _of_type(resources, "AWS::Events::Rule").values()
             if r["Properties"].get("EventBusName") == {"Ref": bus_id}]
    (rule,) = rules
    assert rule["EventPattern"] == {"source": ["mediagen"]}
    assert [t["Arn"] for t in rule["Targets"]] == [{"Fn::GetAtt": [queue_id, "Arn"]}]


def test_intake_function_gets_the_inbox_rules_and_may_only_read_intake_objects(
    resources: dict[str, dict[str, Any]], functions: dict[str, tuple[str, dict[str, Any]]]
) -> None:
    outputs_id, _logs_id, intake_bucket_id = _buckets(resources)
    variables = functions["intake"][1]["Environment"]["Variables"]
    assert json.loads(variables["MEDIAGEN_INBOX_RULES"]) == [rule.to_json() for rule in DEFAULT_INBOX_RULES]
    assert variables["MEDIAGEN_INTAKE_BUCKET"] == {"Ref": intake_bucket_id}
    assert variables["MEDIAGEN_OUTPUTS_BUCKET"] == {"Ref": outputs_id}
    assert variables["MEDIAGEN_JOBS_QUEUE_URL"] == {"Ref": _consumed_queue(resources, functions["submit"][0])}
    statements = _role_statements(resources, functions["intake"][1])
    (read,) = [s for s in statements if "s3:GetObject" in _actions(s)]
    assert read["Resource"] == {"Fn::Join": ["", [{"Fn::GetAtt": [intake_bucket_id, "Arn"]}, "/*"]]}
    (write,) = [s for s in statements if "s3:PutObject" in _actions(s)]
    assert _actions(write) == ["s3:PutObject"]
    # Only the reports it writes (mediagen.intake.report_key): never a job's results.
    assert write["Resource"] == {"Fn::Join": ["", [{"Fn::GetAtt": [outputs_id, "Arn"]}, "/reports/*"]]}
    assert report_key("jobs/team/batch.jsonl").startswith("reports/")
    assert _grants(statements, "sqs:SendMessage", _consumed_queue(resources, functions["submit"][0]))
    assert _grants(statements, "sqs:DeleteMessage", _consumed_queue(resources, functions["intake"][0]))


def test_submit_may_read_the_intake_objects_it_presigns(
    resources: dict[str, dict[str, Any]], functions: dict[str, tuple[str, dict[str, Any]]]
) -> None:
    _outputs_id, _logs_id, intake_bucket_id = _buckets(resources)
    submit = functions["submit"][1]
    assert submit["Environment"]["Variables"]["MEDIAGEN_INTAKE_BUCKET"] == {"Ref": intake_bucket_id}
    (read,) = [s for s in _role_statements(resources, submit) if any(a.startswith("s3:") for a in _actions(s))]
    assert sorted(_actions(read)) == ["s3:GetObject", "s3:GetObjectVersion"]
    # Only the keys submit may presign: the default input_allow, inbox/ and inputs/ (not jobs/ manifests).
    assert read["Resource"] == [{"Fn::Join": ["", [{"Fn::GetAtt": [intake_bucket_id, "Arn"]}, f"/{prefix}*"]]}
                                for prefix in ("inbox/", "inputs/")]


def test_cdk_notifications_handler_may_only_configure_the_intake_bucket(
    resources: dict[str, dict[str, Any]]
) -> None:
    """The one Lambda function that is not the pipeline's: CDK's deploy-time handler of bucket notifications."""
    _outputs_id, _logs_id, intake_bucket_id = _buckets(resources)
    helpers = {lid: r["Properties"] for lid, r in _of_type(resources, "AWS::Lambda::Function").items()
               if not r["Properties"]["Handler"].startswith("functions.")}
    (helper,) = helpers.values()
    assert helper["Handler"] == "index.handler"
    statements = _role_statements(resources, helper)
    assert statements == [{"Action": "s3:PutBucketNotification", "Effect": "Allow",
                           "Resource": {"Fn::GetAtt": [intake_bucket_id, "Arn"]}}]


#: What each default inbox rule's placeholders become for a sample file.
SAMPLE_PLACEHOLDERS = {"object_url": "https://intake.example/inbox/animate/cat.png?X-Amz-Signature=abc",
                       "key": "inbox/animate/cat.png", "filename": "cat.png", "metadata.prompt": "the cat waves"}


def _render(value: Any) -> Any:
    if isinstance(value, str):
        return re.sub(r"\{([^{}]*)\}", lambda m: SAMPLE_PLACEHOLDERS[m.group(1)], value)
    if isinstance(value, dict):
        return {k: _render(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v) for v in value]
    return value


@pytest.mark.parametrize("rule", DEFAULT_INBOX_RULES, ids=lambda rule: rule.prefix)
def test_default_inbox_rules_make_requests_the_catalog_accepts(rule: InboxRule) -> None:
    request = {"model": rule.model, "input": _render(dict(rule.input_template))}
    assert [problem.to_dict() for problem in get_catalog().validate(request)] == []
    assert rule.to_json()["output_prefix"] == f"results/inbox/{rule.prefix}"


def test_inbox_rules_are_normalised_and_serialised_for_the_intake_function() -> None:
    rule = InboxRule("photos", "nano-banana", {"prompt": "studio", "image_urls": ["{object_url}"]})
    assert rule.prefix == "photos/"
    assert rule.to_json() == {"prefix": "photos/", "model": "nano-banana",
                              "input_template": {"prompt": "studio", "image_urls": ["{object_url}"]},
                              "output_prefix": "results/inbox/photos/"}
    custom = InboxRule("a/b/", "recraft-upscaler", {"image": "{object_url}"}, output_prefix="upscaled")
    assert custom.to_json()["output_prefix"] == "upscaled/"


def test_inbox_rules_that_would_misbehave_are_refused() -> None:
    with pytest.raises(ValueError, match=r"inbox rule 'photos/'.*\{object_url\}"):
        InboxRule("photos/", "nano-banana", {"prompt": "a product photo on white"})
    with pytest.raises(ValueError, match=r"inbox rule 'photos/'.*\{objecturl\}"):
        InboxRule("photos/", "nano-banana", {"image_urls": ["{object_url}"], "prompt": "{objecturl}"})
    with pytest.raises(ValueError, match="output_prefix"):
        InboxRule("photos/", "recraft-upscaler", {"image": "{object_url}"}, output_prefix="../elsewhere/")
    upscale = InboxRule("img/", "recraft-upscaler", {"image": "{object_url}"})
    nested = InboxRule("img/raw/", "recraft-remove-bg", {"image": "{object_url}"})
    with pytest.raises(ValueError, match="'img/raw/' is inside 'img/'"):
        MediaGenPipelineProps(inbox_rules=[upscale, nested])
    huge = [InboxRule(f"r{i}/", "recraft-upscaler", {"image": "{object_url}", "note": "x" * 200}) for i in range(20)]
    with pytest.raises(ValueError, match="environment"):
        MediaGenPipelineProps(inbox_rules=huge)
    with pytest.raises(ValueError, match="MEDIAGEN_INBOX_RULES"):
        MediaGenPipelineProps(extra_environment={"MEDIAGEN_INBOX_RULES": "[]"})


# ------------------------------------------------------------------------------------------------ outputs
def test_stack_outputs_have_stable_names(template: Template) -> None:
    assert set(template.to_json()["Outputs"]) == {
        "JobsQueueUrl", "JobsDlqUrl", "TaskTableName", "OutputsBucketName", "EventBusName",
        "StateMachineArn", "ApiKeySecretArn", "CallbackUrlBase", "JobsApiUrl", "IntakeBucketName",
        "IntakeQueueUrl", "AlarmTopicArn", "DashboardName",
    }


def test_props_reject_values_aws_would_reject() -> None:
    with pytest.raises(ValueError, match="submit_batch_size"):
        MediaGenPipelineProps(submit_batch_size=11)
    with pytest.raises(ValueError, match="submit_max_concurrency"):
        MediaGenPipelineProps(submit_max_concurrency=1)
    with pytest.raises(ValueError, match="callback_throttle"):
        MediaGenPipelineProps(callback_throttle_rate=-1)
    with pytest.raises(ValueError, match="dlq_retention"):
        MediaGenPipelineProps(dlq_retention=Duration.days(15))
    with pytest.raises(ValueError, match="daily_credit_budget"):
        MediaGenPipelineProps(daily_credit_budget=0)
    with pytest.raises(ValueError, match="max_jobs_in_flight"):
        MediaGenPipelineProps(max_jobs_in_flight=-3)
    with pytest.raises(ValueError, match="budget_alarm_fraction"):
        MediaGenPipelineProps(budget_alarm_fraction=1.5)
    with pytest.raises(ValueError, match="execution_timeout"):
        MediaGenPipelineProps(execution_timeout=Duration.minutes(10))
    with pytest.raises(ValueError, match="removal_policy"):
        MediaGenPipelineProps(removal_policy=RemovalPolicy.SNAPSHOT)
    with pytest.raises(ValueError, match="MEDIAGEN_TASK_TABLE"):
        MediaGenPipelineProps(extra_environment={"MEDIAGEN_TASK_TABLE": "someone-elses-table"})
    with pytest.raises(ValueError, match="same prefix"):
        MediaGenPipelineProps(inbox_rules=[InboxRule("photos/", "recraft-upscaler", {"image": "{object_url}"}),
                                           InboxRule("photos", "recraft-remove-bg", {"image": "{object_url}"})])
    with pytest.raises(ValueError, match="prefix"):
        InboxRule("../escape/", "nano-banana")


# ---------------------------------------------------------------------------------------------- bundling
def _fake_repo(root: Path) -> Path:
    files = {
        "functions/__init__.py": "",
        "functions/submit/__init__.py": "",
        "functions/submit/app.py": "def lambda_handler(event, context): ...\n",
        "functions/poll/__init__.py": "",
        "functions/poll/app.py": "def lambda_handler(event, context): ...\n",
        "shared/mediagen/__init__.py": "",
        "shared/mediagen/settings.py": "X = 1\n",
        "shared/mediagen/catalog/models.json": "{}",
        "shared/mediagen/sandbox/server.py": "",
        "shared/mediagen/local/stack.py": "",
        "shared/mediagen/__pycache__/settings.cpython-311.pyc": "",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_function_bundle_ships_handler_and_package_without_sandbox_or_local(tmp_path: Path) -> None:
    repo = _fake_repo(tmp_path)
    shipped = [dest for dest, _src in function_bundle_files(repo, "submit")]
    assert shipped == [
        "functions/__init__.py",
        "functions/submit/__init__.py",
        "functions/submit/app.py",
        "mediagen/__init__.py",
        "mediagen/settings.py",
        "mediagen/catalog/models.json",
    ]


@pytest.mark.slow
def test_local_bundling_of_a_function_code_asset(tmp_path: Path) -> None:
    """Runs CDK's real (Docker-free) bundling of the submit code asset into a cloud assembly."""
    outdir = tmp_path / "cdk.out"
    app = App(outdir=str(outdir))
    stack = Stack(app, "BundlingProbe")
    lambda_.Function(stack, "Submit", runtime=lambda_.Runtime.PYTHON_3_12,
                     handler="functions.submit.app.lambda_handler", code=function_code(REPO_ROOT, "submit"))
    app.synth()

    (function,) = Template.from_stack(stack).find_resources("AWS::Lambda::Function").values()
    asset_dir = outdir / f"asset.{function['Properties']['Code']['S3Key'].removesuffix('.zip')}"
    assert (asset_dir / "functions" / "__init__.py").is_file()
    assert (asset_dir / "functions" / "submit" / "app.py").is_file()
    assert (asset_dir / "mediagen" / "__init__.py").is_file()
    assert not (asset_dir / "mediagen" / "sandbox").exists()
    assert not (asset_dir / "mediagen" / "local").exists()
    # Byte code for the runtime only (compiled at bundling, see test_bundling.py), never the checkout's caches.
    assert {p.name.split(".")[-2] for p in asset_dir.rglob("*.pyc")} <= {"cpython-312"}
    assert not (asset_dir / "functions" / "poll").exists(), "other handlers must not ship"


def test_code_asset_hash_follows_the_shipped_files(tmp_path: Path) -> None:
    """Editing shared code re-deploys the functions; editing the sandbox does not."""
    repo = _fake_repo(tmp_path)

    def hashes() -> dict[str, str]:
        app = App()
        keys = {}
        for spec in FUNCTION_SPECS[:2]:  # submit, poll
            config = function_code(repo, spec.name).bind(Stack(app, f"HashProbe-{spec.name}"))
            assert config.s3_location is not None
            keys[spec.name] = config.s3_location.object_key
        return keys

    before = hashes()
    assert before["submit"] != before["poll"]
    (repo / "shared/mediagen/sandbox/server.py").write_text("changed = True\n")
    assert hashes() == before
    (repo / "shared/mediagen/settings.py").write_text("X = 2\n")
    after = hashes()
    assert after["submit"] != before["submit"] and after["poll"] != before["poll"]


def _probe_stack(*, skip_bundling: bool) -> Stack:
    app = App(post_cli_context={"aws:cdk:bundling-stacks": []} if skip_bundling else None)
    return Stack(app, "MissingHandlerProbe")


def test_a_missing_handler_gets_a_placeholder_only_when_bundling_is_skipped(tmp_path: Path) -> None:
    """The template (and the local stack's definition) can be synthesized before a handler is written."""
    repo = _fake_repo(tmp_path)  # has submit and poll, no functions/arm/
    stack = _probe_stack(skip_bundling=True)
    build_function(stack, ARM, source_root=repo, layers=[], environment={})
    (function,) = Template.from_stack(stack).find_resources("AWS::Lambda::Function").values()
    assert function["Properties"]["Handler"] == "functions.arm.app.lambda_handler"
    warnings = Annotations.from_stack(stack).find_warning(
        "*", Match.string_like_regexp("functions/arm/app.py does not exist")
    )
    assert len(warnings) == 1

    with pytest.raises(FileNotFoundError, match="arm"):
        build_function(_probe_stack(skip_bundling=False), ARM, source_root=repo, layers=[], environment={})


def test_every_function_spec_has_its_handler_in_the_repository() -> None:
    missing = [spec.name for spec in FUNCTION_SPECS
               if not (REPO_ROOT / "functions" / spec.name / "app.py").is_file()]
    assert missing == []


def test_executions_that_end_outside_the_workflow_are_recorded_by_finalize(
        resources: dict[str, dict[str, Any]], functions: dict[str, tuple[str, dict[str, Any]]]) -> None:
    """The backstop: FAILED / TIMED_OUT / ABORTED executions of this state machine reach finalize."""
    (machine_id,) = _of_type(resources, "AWS::StepFunctions::StateMachine")
    rules = [r["Properties"] for r in _of_type(resources, "AWS::Events::Rule").values()
             if r["Properties"].get("EventPattern", {}).get("source") == ["aws.states"]]
    assert len(rules) == 1
    pattern, targets = rules[0]["EventPattern"], rules[0]["Targets"]
    assert pattern["detail-type"] == ["Step Functions Execution Status Change"]
    assert sorted(pattern["detail"]["status"]) == ["ABORTED", "FAILED", "TIMED_OUT"]
    assert pattern["detail"]["stateMachineArn"] == [{"Ref": machine_id}]
    assert [t["Arn"] for t in targets] == [{"Fn::GetAtt": [functions["finalize"][0], "Arn"]}]
    permissions = [p["Properties"] for p in _of_type(resources, "AWS::Lambda::Permission").values()]
    assert any(p["Principal"] == "events.amazonaws.com"
               and p["FunctionName"] == {"Fn::GetAtt": [functions["finalize"][0], "Arn"]} for p in permissions)
