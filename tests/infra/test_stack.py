"""Assertions on the synthesized ``MediaGen-dev`` template (what a deploy would create).

The app is synthesized once per module with bundling skipped through the same switch the local stack
uses (``MEDIAGEN_SKIP_BUNDLING=1``); asset hashes do not depend on it, so the template is the deployed one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Match, Template

from mediagen.settings import Settings
from mediagen_infra import MediaGenPipelineProps, build_app
from mediagen_infra.bundling import REPO_ROOT, function_bundle_files, function_code
from mediagen_infra.lambdas import FUNCTION_SPECS

EXPECTED_FUNCTIONS = {
    # name: (timeout s, memory MB, MEDIAGEN_* variables)
    "submit": (60, 256, {"MEDIAGEN_TASK_TABLE", "MEDIAGEN_EVENT_BUS", "MEDIAGEN_STATE_MACHINE_ARN",
                         "MEDIAGEN_API_KEY_SECRET_ID"}),
    "poll": (30, 256, {"MEDIAGEN_TASK_TABLE", "MEDIAGEN_EVENT_BUS", "MEDIAGEN_API_KEY_SECRET_ID"}),
    "persist": (900, 1024, {"MEDIAGEN_TASK_TABLE", "MEDIAGEN_EVENT_BUS", "MEDIAGEN_API_KEY_SECRET_ID",
                            "MEDIAGEN_OUTPUTS_BUCKET"}),
    "finalize": (30, 256, {"MEDIAGEN_TASK_TABLE", "MEDIAGEN_EVENT_BUS"}),
}
STATE_TYPES = {
    "WaitBeforeNextCheck": "Wait",
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
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEDIAGEN_SKIP_BUNDLING", "1")
        patch.delenv("CDK_CONTEXT_JSON", raising=False)
        _app, stack = build_app(outdir=str(tmp_path_factory.mktemp("cdk.out")))
        assert stack.stack_name == "MediaGen-dev"
        return Template.from_stack(stack)


@pytest.fixture(scope="module")
def resources(template: Template) -> dict[str, dict[str, Any]]:
    return template.to_json()["Resources"]


@pytest.fixture(scope="module")
def functions(resources: dict[str, dict[str, Any]]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Function name (from the handler) -> (logical id, properties)."""
    found = {}
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::Lambda::Function":
            name = resource["Properties"]["Handler"].split(".")[1]
            found[name] = (logical_id, resource["Properties"])
    return found


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


# ----------------------------------------------------------------------------------------- queue + DLQ
def test_jobs_queue_redrives_to_an_encrypted_dlq_after_five_receives(
    resources: dict[str, dict[str, Any]], functions: dict[str, tuple[str, dict[str, Any]]]
) -> None:
    queues = _of_type(resources, "AWS::SQS::Queue")
    assert len(queues) == 2
    (main_id,) = [lid for lid, q in queues.items() if "RedrivePolicy" in q["Properties"]]
    (dlq_id,) = set(queues) - {main_id}
    main, dlq = queues[main_id]["Properties"], queues[dlq_id]["Properties"]

    assert main["SqsManagedSseEnabled"] is True and dlq["SqsManagedSseEnabled"] is True
    assert main["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]}, "maxReceiveCount": 5,
    }
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600
    submit_timeout = functions["submit"][1]["Timeout"]
    assert main["VisibilityTimeout"] >= 6 * submit_timeout


def test_both_queues_refuse_requests_without_tls(template: Template) -> None:
    queue_policies = template.find_resources("AWS::SQS::QueuePolicy")
    assert len(queue_policies) == 2
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


def test_outputs_bucket_is_private_encrypted_versioned_and_retained(template: Template) -> None:
    template.resource_count_is("AWS::S3::Bucket", 1)
    template.has_resource(
        "AWS::S3::Bucket",
        {
            "Properties": {
                "BucketEncryption": {"ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                ]},
                "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": True, "BlockPublicPolicy": True,
                    "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
                },
                "VersioningConfiguration": {"Status": "Enabled"},
            },
            "DeletionPolicy": "Retain",
        },
    )
    template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {"PolicyDocument": {"Statement": Match.array_with([Match.object_like({
            "Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        })])}},
    )


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
    name_properties = {
        "AWS::SQS::Queue": "QueueName", "AWS::DynamoDB::Table": "TableName", "AWS::S3::Bucket": "BucketName",
        "AWS::Lambda::Function": "FunctionName", "AWS::StepFunctions::StateMachine": "StateMachineName",
        "AWS::SecretsManager::Secret": "Name", "AWS::Logs::LogGroup": "LogGroupName",
        "AWS::IAM::Role": "RoleName", "AWS::Lambda::LayerVersion": "LayerName",
    }
    named = [lid for lid, r in resources.items()
             if name_properties.get(r["Type"]) in r.get("Properties", {})]
    assert named == []


# ---------------------------------------------------------------------------------------------- functions
def test_four_functions_with_the_documented_runtime_and_handlers(
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
    assert len(groups) == 4
    for group in groups:
        assert resources[group]["Type"] == "AWS::Logs::LogGroup"
        assert resources[group]["Properties"]["RetentionInDays"] == 30


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
    assert len(code_keys) == 4, "functions must not share one code zip"
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
        assert variables["POWERTOOLS_SERVICE_NAME"] == "mediagen"
        assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "MediaGen"
        assert variables["POWERTOOLS_LOG_LEVEL"] == "INFO"


def test_submit_consumes_the_jobs_queue_with_partial_batch_failures(
    resources: dict[str, dict[str, Any]], functions: dict[str, tuple[str, dict[str, Any]]]
) -> None:
    (mapping,) = _of_type(resources, "AWS::Lambda::EventSourceMapping").values()
    props = mapping["Properties"]
    assert props["FunctionName"] == {"Ref": functions["submit"][0]}
    assert props["BatchSize"] == 10
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    queue_id = props["EventSourceArn"]["Fn::GetAtt"][0]
    assert "RedrivePolicy" in resources[queue_id]["Properties"]  # the jobs queue, not the DLQ


# ------------------------------------------------------------------------------------------ state machine
def test_state_machine_is_standard_traced_with_a_three_hour_backstop(
    template: Template, definition: dict[str, Any]
) -> None:
    template.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {"StateMachineType": "STANDARD", "TracingConfiguration": {"Enabled": True}},
    )
    assert definition["TimeoutSeconds"] == 3 * 3600


def test_definition_has_exactly_the_contract_states(definition: dict[str, Any]) -> None:
    states = definition["States"]
    assert definition["StartAt"] == "WaitBeforeNextCheck"
    assert {name: state["Type"] for name, state in states.items()} == STATE_TYPES
    assert states["WaitBeforeNextCheck"] == {
        "Type": "Wait", "SecondsPath": "$.wait_seconds", "Next": "CheckStatus",
    }
    assert states["CheckStatus"]["Next"] == "Route"
    assert states["Persist"]["Next"] == "JobSucceeded"
    assert states["RecordFailure"]["Next"] == "PipelineFailed"
    assert states["PipelineFailed"] == {
        "Type": "Fail", "Error": "PipelineFailed", "Cause": "see the task record",
    }


def test_route_loops_while_processing_persists_when_ready_and_ends_otherwise(
    definition: dict[str, Any]
) -> None:
    route = definition["States"]["Route"]
    assert route["Choices"] == [
        {"Variable": "$.phase", "StringEquals": "processing", "Next": "WaitBeforeNextCheck"},
        {"Variable": "$.phase", "StringEquals": "ready", "Next": "Persist"},
    ]
    assert route["Default"] == "JobEnded"


def test_lambda_tasks_pass_the_whole_state_and_invoke_the_right_function(
    definition: dict[str, Any], functions: dict[str, tuple[str, dict[str, Any]]]
) -> None:
    expected = {"CheckStatus": "poll", "Persist": "persist", "RecordFailure": "finalize"}
    for state_name, function_name in expected.items():
        state = definition["States"][state_name]
        assert state["Resource"] == "arn:aws:states:::lambda:invoke"
        assert state["Parameters"] == {"FunctionName": functions[function_name][0], "Payload.$": "$"}
        assert state["OutputPath"] == "$.Payload"


def test_every_task_but_record_failure_catches_everything_into_record_failure(
    definition: dict[str, Any]
) -> None:
    for name, state in definition["States"].items():
        if state["Type"] != "Task":
            continue
        if name == "RecordFailure":
            assert "Catch" not in state
            continue
        assert state["Catch"] == [
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordFailure"}
        ]


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
    (bucket_id,) = _of_type(resources, "AWS::S3::Bucket")
    (table_id,) = _of_type(resources, "AWS::DynamoDB::Table")
    (bus_id,) = _of_type(resources, "AWS::Events::EventBus")
    (secret_id,) = _of_type(resources, "AWS::SecretsManager::Secret")
    statements = {name: _role_statements(resources, props) for name, (_lid, props) in functions.items()}

    assert _grants(statements["submit"], "states:StartExecution", machine_id)
    assert _grants(statements["persist"], "s3:PutObject", bucket_id)
    for name in functions:
        assert _grants(statements[name], "dynamodb:UpdateItem", table_id), name
        assert _grants(statements[name], "events:PutEvents", bus_id), name
        reads_secret = _grants(statements[name], "secretsmanager:GetSecretValue", secret_id)
        assert reads_secret == (name != "finalize"), name
    for name in ("submit", "poll", "finalize"):
        assert not _grants(statements[name], "s3:PutObject", bucket_id), name
    for name in ("poll", "persist", "finalize"):
        assert not _grants(statements[name], "states:StartExecution", machine_id), name


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


# ------------------------------------------------------------------------------------------------ outputs
def test_stack_outputs_have_stable_names(template: Template) -> None:
    assert set(template.to_json()["Outputs"]) == {
        "JobsQueueUrl", "JobsDlqUrl", "TaskTableName", "OutputsBucketName", "EventBusName",
        "StateMachineArn", "ApiKeySecretArn",
    }


def test_props_reject_values_aws_would_reject() -> None:
    with pytest.raises(ValueError, match="submit_batch_size"):
        MediaGenPipelineProps(submit_batch_size=11)
    with pytest.raises(ValueError, match="submit_max_concurrency"):
        MediaGenPipelineProps(submit_max_concurrency=1)


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
    assert not list(asset_dir.rglob("__pycache__"))
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
