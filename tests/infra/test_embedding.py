"""The construct in someone else's CDK app, and a second stage beside the first.

* A platform team's app embeds ``MediaGenPipeline`` in its own stack with non-default props: an existing
  SSE-KMS bucket, an existing secret, its own alarm topic, x86_64, budgets, a year of logs, ``DESTROY``. It
  runs cdk-nag itself (the construct's acknowledgments travel with it) and synthesizes once.
* ``MediaGen-prod`` is synthesized from ``-c`` context options, and compared with ``MediaGen-dev``: two
  deployments in one account must not collide on any name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Duration, Environment, RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns

from mediagen_infra import InboxRule, MediaGenPipeline, MediaGenPipelineProps, add_security_checks, build_app
from mediagen_infra.context import props_from_context

ACCOUNT, REGION = "111122223333", "eu-west-1"
BUCKET = "acme-media-results"
BUCKET_KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0b7e61d2-1111-2222-3333-444455556666"
SECRET_NAME = "acme/cliprise-api-key"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:platform-ops-alarms"
INBOX = InboxRule("photos/", "nano-banana", {"prompt": "a product photo on white"})


def _of_type(resources: dict[str, dict[str, Any]], cfn_type: str) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in resources.items() if r["Type"] == cfn_type}


def _statements(resources: dict[str, dict[str, Any]], role_id: str) -> list[dict[str, Any]]:
    return [s for p in _of_type(resources, "AWS::IAM::Policy").values() if {"Ref": role_id} in p["Properties"]["Roles"]
            for s in p["Properties"]["PolicyDocument"]["Statement"]]


def _flat(value: Any) -> str:
    """An ``Fn::Join`` of strings and pseudo-parameter refs as one string (``{AWS::Partition}``)."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return "{" + str(value["Ref"]) + "}"
    delimiter, parts = value["Fn::Join"]
    return str(delimiter).join(_flat(part) for part in parts)


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


# ------------------------------------------------------------------------------------- the platform's app
@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> tuple[MediaGenPipeline, dict[str, Any], Path]:
    outdir = tmp_path_factory.mktemp("platform.out")
    # The platform's own app: its feature flags (none), its own cdk-nag run; no asset bundling in tests.
    app = App(outdir=str(outdir), post_cli_context={"aws:cdk:bundling-stacks": []})
    add_security_checks(app)
    stack = Stack(app, "PlatformMedia", env=Environment(account=ACCOUNT, region=REGION))
    bucket = s3.Bucket.from_bucket_attributes(
        stack, "Results", bucket_name=BUCKET, encryption_key=kms.Key.from_key_arn(stack, "ResultsKey", BUCKET_KEY_ARN)
    )
    pipeline = MediaGenPipeline(stack, "MediaGen", MediaGenPipelineProps(
        outputs_bucket=bucket,
        api_key_secret=secretsmanager.Secret.from_secret_name_v2(stack, "ApiKey", SECRET_NAME),
        alarm_topic=sns.Topic.from_topic_arn(stack, "Ops", TOPIC_ARN),
        architecture=lambda_.Architecture.X86_64,
        daily_credit_budget=5000,
        max_jobs_in_flight=20,
        budget_alarm_fraction=0.9,
        max_receive_count=3,
        submit_batch_size=5,
        submit_max_concurrency=4,
        oldest_message_alarm_age=Duration.minutes(30),
        log_retention=logs.RetentionDays.ONE_YEAR,
        removal_policy=RemovalPolicy.DESTROY,
        log_removal_policy=RemovalPolicy.DESTROY,
        dashboard=False,
        inbox_rules=[INBOX],
        extra_environment={"MEDIAGEN_POLL_MAX_SECONDS": "30"},
    ))
    app.synth()  # raises on a cdk-nag finding the construct did not acknowledge
    template = json.loads((outdir / "PlatformMedia.template.json").read_text())
    return pipeline, template["Resources"], outdir


@pytest.fixture(scope="module")
def resources(platform: tuple[MediaGenPipeline, dict[str, Any], Path]) -> dict[str, dict[str, Any]]:
    return platform[1]


@pytest.fixture(scope="module")
def functions(resources: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["Properties"]["Handler"].split(".")[1]: r["Properties"]
            for r in _of_type(resources, "AWS::Lambda::Function").values()}


def test_existing_bucket_secret_and_topic_are_used_not_created(resources: dict[str, dict[str, Any]]) -> None:
    for cfn_type in ("AWS::S3::Bucket", "AWS::SecretsManager::Secret", "AWS::SNS::Topic", "AWS::KMS::Key",
                     "AWS::CloudWatch::Dashboard"):
        assert _of_type(resources, cfn_type) == {}, cfn_type


def test_persist_writes_to_the_existing_bucket_with_its_kms_key(
    resources: dict[str, dict[str, Any]], functions: dict[str, dict[str, Any]]
) -> None:
    persist = functions["persist"]
    assert persist["Environment"]["Variables"]["MEDIAGEN_OUTPUTS_BUCKET"] == BUCKET
    statements = _statements(resources, persist["Role"]["Fn::GetAtt"][0])
    (s3_statement,) = [s for s in statements if any(a.startswith("s3:") for a in _actions(s))]
    assert sorted(_actions(s3_statement)) == ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:PutObject",
                                              "s3:PutObjectTagging"]
    assert s3_statement["Resource"] == {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":s3:::{BUCKET}/*"]]}
    (kms_statement,) = [s for s in statements if any(a.startswith("kms:") for a in _actions(s))]
    assert sorted(_actions(kms_statement)) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert kms_statement["Resource"] == BUCKET_KEY_ARN
    for name in ("submit", "poll", "finalize", "callback", "arm"):
        role_id = functions[name]["Role"]["Fn::GetAtt"][0]
        assert not [a for s in _statements(resources, role_id) for a in _actions(s) if a.startswith(("s3:", "kms:"))]


def test_only_submit_poll_and_persist_read_the_existing_secret(
    resources: dict[str, dict[str, Any]], functions: dict[str, dict[str, Any]]
) -> None:
    secret_arn = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"},
                                    f":secretsmanager:{REGION}:{ACCOUNT}:secret:{SECRET_NAME}"]]}
    for name, props in functions.items():
        statements = _statements(resources, props["Role"]["Fn::GetAtt"][0])
        reads = [s for s in statements if "secretsmanager:GetSecretValue" in _actions(s)]
        if name in ("submit", "poll", "persist"):
            assert props["Environment"]["Variables"]["MEDIAGEN_API_KEY_SECRET_ID"] == secret_arn
            # Imported by name: the ARN's random suffix is matched by exactly six characters.
            (read,) = reads
            assert _flat(read["Resource"]) == _flat(secret_arn) + "-??????", name
        else:
            assert reads == [] and "MEDIAGEN_API_KEY_SECRET_ID" not in props["Environment"]["Variables"], name


def test_every_alarm_notifies_the_given_topic_and_the_budget_alarm_fires_at_the_given_share(
    resources: dict[str, dict[str, Any]]
) -> None:
    alarms = [a["Properties"] for a in _of_type(resources, "AWS::CloudWatch::Alarm").values()]
    assert len(alarms) == 5 + 1 + 2 * 6  # with the budget alarm
    for alarm in alarms:
        assert alarm["AlarmActions"] == [TOPIC_ARN] and alarm["OKActions"] == [TOPIC_ARN]
    (budget,) = [a for a in alarms if a["MetricName"] == "DailyCreditsSpent"]
    assert (budget["Namespace"], budget["Statistic"], budget["Threshold"]) == ("MediaGen", "Maximum", 4500)
    assert budget["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    (oldest,) = [a for a in alarms if a["MetricName"] == "ApproximateAgeOfOldestMessage"]
    assert oldest["Threshold"] == 30 * 60


def test_spend_guards_reach_the_functions_that_enforce_them(functions: dict[str, dict[str, Any]]) -> None:
    for name, props in functions.items():
        variables = props["Environment"]["Variables"]
        # The budget is charged (and refunded) at submit only.
        assert variables.get("MEDIAGEN_DAILY_CREDIT_BUDGET") == ("5000" if name == "submit" else None), name
        # Every function that can end a job gives its in-flight slot back.
        expected = "20" if name in ("submit", "poll", "persist", "finalize") else None
        assert variables.get("MEDIAGEN_MAX_IN_FLIGHT") == expected, name
        assert variables["MEDIAGEN_POLL_MAX_SECONDS"] == "30", name


def test_architecture_queue_settings_retention_and_removal_follow_the_props(
    resources: dict[str, dict[str, Any]], functions: dict[str, dict[str, Any]], dev_template_json: dict[str, Any]
) -> None:
    for props in functions.values():
        assert props["Architectures"] == ["x86_64"]
    (layer,) = _of_type(resources, "AWS::Lambda::LayerVersion").values()
    assert layer["Properties"]["CompatibleArchitectures"] == ["x86_64"]
    # x86_64 wheels are a different layer zip from the default arm64 one.
    (dev_layer,) = _of_type(dev_template_json["Resources"], "AWS::Lambda::LayerVersion").values()
    assert layer["Properties"]["Content"]["S3Key"] != dev_layer["Properties"]["Content"]["S3Key"]

    (queue,) = [q for q in _of_type(resources, "AWS::SQS::Queue").values() if "RedrivePolicy" in q["Properties"]]
    assert queue["Properties"]["RedrivePolicy"]["maxReceiveCount"] == 3
    (mapping,) = _of_type(resources, "AWS::Lambda::EventSourceMapping").values()
    assert mapping["Properties"]["BatchSize"] == 5
    assert mapping["Properties"]["ScalingConfig"] == {"MaximumConcurrency": 4}

    for group in _of_type(resources, "AWS::Logs::LogGroup").values():
        assert group["Properties"]["RetentionInDays"] == 365
        assert group["DeletionPolicy"] == "Delete"
    (table,) = _of_type(resources, "AWS::DynamoDB::Table").values()
    assert table["DeletionPolicy"] == "Delete"
    assert table["Properties"]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_the_construct_keeps_its_inbox_rules_and_passes_cdk_nag_in_the_platform_app(
    platform: tuple[MediaGenPipeline, dict[str, Any], Path]
) -> None:
    pipeline, _resources, outdir = platform
    assert pipeline.inbox_rules == (INBOX,)
    report = json.loads((outdir / "validation-report.json").read_text())
    (nag,) = [p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    assert nag["violations"] == []
    acknowledged = {v["ruleName"] for v in nag["suppressedViolations"]}
    # The wildcard is acknowledged for the existing bucket's objects, by its real ARN.
    assert f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::{BUCKET}/*]" in acknowledged
    assert "AwsSolutions-SMG4" not in acknowledged  # not our secret: its rotation is the owner's business


# ----------------------------------------------------------------------------------- a second stage: prod
@pytest.fixture(scope="module")
def prod_template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    outdir = tmp_path_factory.mktemp("prod.out")
    context = {"stage": "prod", "daily_credit_budget": "20000", "max_jobs_in_flight": "50",
               "alarm_email": "ops@example.com", "log_retention_days": "90"}
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("CDK_CONTEXT_JSON", raising=False)
        app, stack = build_app(outdir=str(outdir), skip_bundling=True, context=context)
        app.synth()
    assert stack.stack_name == "MediaGen-prod"
    return dict(json.loads((outdir / "MediaGen-prod.template.json").read_text()))


#: The property holding a resource's physical name, where that name must be unique in an account and region.
PHYSICAL_NAMES = {
    "AWS::SQS::Queue": "QueueName", "AWS::DynamoDB::Table": "TableName", "AWS::S3::Bucket": "BucketName",
    "AWS::Lambda::Function": "FunctionName", "AWS::StepFunctions::StateMachine": "StateMachineName",
    "AWS::SecretsManager::Secret": "Name", "AWS::Logs::LogGroup": "LogGroupName", "AWS::IAM::Role": "RoleName",
    "AWS::Lambda::LayerVersion": "LayerName", "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::CloudWatch::Dashboard": "DashboardName", "AWS::SNS::Topic": "TopicName", "AWS::Events::EventBus": "Name",
    "AWS::ApiGatewayV2::Api": "Name",
}


def _names(template: dict[str, Any]) -> set[str]:
    """Every physical name the template sets (what would collide in one account)."""
    found = set()
    for resource in template["Resources"].values():
        key = PHYSICAL_NAMES.get(resource["Type"])
        if key is not None and key in resource.get("Properties", {}):
            found.add(f"{resource['Type']}:{json.dumps(resource['Properties'][key])}")
    return found


def test_dev_and_prod_coexist_in_one_account(dev_template_json: dict[str, Any], prod_template: dict[str, Any]) -> None:
    dev, prod = _names(dev_template_json), _names(prod_template)
    assert dev and prod
    assert dev & prod == set()  # e.g. the event bus and the callback API are named after the stack
    assert 'AWS::ApiGatewayV2::Api:"MediaGen-prod-callbacks"' in prod


def test_context_options_configure_the_stage(prod_template: dict[str, Any]) -> None:
    resources = prod_template["Resources"]
    (subscription,) = _of_type(resources, "AWS::SNS::Subscription").values()
    assert (subscription["Properties"]["Protocol"], subscription["Properties"]["Endpoint"]) == (
        "email", "ops@example.com")
    (budget,) = [a for a in _of_type(resources, "AWS::CloudWatch::Alarm").values()
                 if a["Properties"]["MetricName"] == "DailyCreditsSpent"]
    assert budget["Properties"]["Threshold"] == 16000
    for group in _of_type(resources, "AWS::Logs::LogGroup").values():
        assert group["Properties"]["RetentionInDays"] == 90
    submit = [f for f in _of_type(resources, "AWS::Lambda::Function").values()
              if f["Properties"]["Handler"] == "functions.submit.app.lambda_handler"][0]
    assert submit["Properties"]["Environment"]["Variables"]["MEDIAGEN_MAX_IN_FLIGHT"] == "50"


@pytest.mark.parametrize(("key", "value"), [
    ("daily_credit_budget", "lots"), ("architecture", "sparc"), ("log_retention_days", "31"),
    ("removal_policy", "snapshot"), ("alarm_topic_arn", "not-an-arn"), ("outputs_bucket_name", "Bad_Bucket"),
])
def test_a_malformed_context_option_stops_the_synth_and_names_the_key(key: str, value: str) -> None:
    stack = Stack(App(context={key: value}), "Probe")
    with pytest.raises(ValueError, match=key):
        props_from_context(stack)


def test_context_can_point_at_existing_resources() -> None:
    stack = Stack(App(context={"outputs_bucket_name": BUCKET, "api_key_secret_name": SECRET_NAME,
                               "alarm_topic_arn": TOPIC_ARN, "architecture": "x86_64", "removal_policy": "destroy"}),
                  "Probe")
    props = props_from_context(stack)
    assert props.outputs_bucket is not None and props.api_key_secret is not None and props.alarm_topic is not None
    assert stack.resolve(props.alarm_topic.topic_arn) == TOPIC_ARN
    assert props.architecture.name == "x86_64"
    assert props.removal_policy == props.log_removal_policy == RemovalPolicy.DESTROY
