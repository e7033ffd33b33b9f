"""The construct in someone else's CDK app, and a second stage beside the first.

* A platform team's app embeds ``MediaGenPipeline`` in its own stack with non-default props: an existing
  SSE-KMS outputs bucket, an existing secret, its own alarm topic, x86_64, budgets, a year of logs, ``DESTROY``,
  a jobs API without auth (behind its own gateway). Its app has none of this repository's feature flags; the
  construct still creates the intake bucket (and a logs bucket for it). It runs cdk-nag itself (the construct's
  acknowledgments travel with it) and synthesizes once.
* The S3 intake on an existing SSE-KMS bucket: notifications added beside the bucket's own, reads decrypted.
* ``MediaGen-prod`` is synthesized from ``-c`` context options (an existing outputs bucket, its own inbox
  rules), and compared with ``MediaGen-dev``: two deployments in one account must not collide on any name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Duration, Environment, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Annotations, Match, Template

from mediagen_infra import (
    DEFAULT_INBOX_RULES,
    InboxRule,
    MediaGenPipeline,
    MediaGenPipelineProps,
    add_security_checks,
    build_app,
)
from mediagen_infra.context import props_from_context
from mediagen_infra.intake import S3Intake

ACCOUNT, REGION = "111122223333", "eu-west-1"
BUCKET = "acme-media-results"
BUCKET_KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0b7e61d2-1111-2222-3333-444455556666"
SECRET_NAME = "acme/cliprise-api-key"
#: The platform's operators' role (may read and cancel every job through the jobs API).
OPERATOR = f"arn:aws:iam::{ACCOUNT}:role/MediagenOps"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:platform-ops-alarms"
DROP_BUCKET = "acme-media-drop"  # an existing intake bucket (the S3Intake test)
DROP_KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/7f3a0c4e-aaaa-bbbb-cccc-ddddeeeeffff"
INBOX = InboxRule("photos/", "nano-banana", {"prompt": "a product photo on white", "image_urls": ["{object_url}"]})


def _of_type(resources: dict[str, dict[str, Any]], cfn_type: str) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in resources.items() if r["Type"] == cfn_type}


def _statements(resources: dict[str, dict[str, Any]], role_id: str) -> list[dict[str, Any]]:
    return [s for p in _of_type(resources, "AWS::IAM::Policy").values() if {"Ref": role_id} in p["Properties"]["Roles"]
            for s in p["Properties"]["PolicyDocument"]["Statement"]]


def _flat(value: Any) -> str:
    """An ``Fn::Join`` of strings, refs and attributes as one string (``{AWS::Partition}``, ``{Bucket.Arn}``)."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return "{" + str(value["Ref"]) + "}"
    if "Fn::GetAtt" in value:
        return "{" + ".".join(value["Fn::GetAtt"]) + "}"
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
        allow_unauthenticated=True,
        operator_principals=[OPERATOR],
        jobs_api_throttle_burst=200,
        jobs_api_throttle_rate=100,
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
    """The pipeline's functions by name (CDK's S3 notifications handler left out)."""
    return {r["Properties"]["Handler"].split(".")[1]: r["Properties"]
            for r in _of_type(resources, "AWS::Lambda::Function").values()
            if r["Properties"]["Handler"].startswith("functions.")}


def test_existing_bucket_secret_and_topic_are_used_not_created(resources: dict[str, dict[str, Any]]) -> None:
    for cfn_type in ("AWS::SecretsManager::Secret", "AWS::SNS::Topic", "AWS::KMS::Key", "AWS::CloudWatch::Dashboard"):
        assert _of_type(resources, cfn_type) == {}, cfn_type
    # Only the intake bucket (none was given) and the access-logs bucket it logs to are created.
    buckets = _of_type(resources, "AWS::S3::Bucket")
    assert len(buckets) == 2
    (intake_id,) = [lid for lid, b in buckets.items() if "LoggingConfiguration" in b["Properties"]]
    (logs_id,) = set(buckets) - {intake_id}
    assert buckets[intake_id]["Properties"]["LoggingConfiguration"] == {
        "DestinationBucketName": {"Ref": logs_id}, "LogFilePrefix": "intake/"}


def test_logs_are_delivered_by_bucket_policy_even_without_the_feature_flag(
    resources: dict[str, dict[str, Any]]
) -> None:
    """The platform's app lacks ``@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy``: without the construct
    setting it, CDK would grant log delivery with an ACL, which a BucketOwnerEnforced bucket refuses."""
    for bucket in _of_type(resources, "AWS::S3::Bucket").values():
        assert "AccessControl" not in bucket["Properties"]
        assert bucket["Properties"]["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    grants = [s for p in _of_type(resources, "AWS::S3::BucketPolicy").values()
              for s in p["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert [g["Principal"] for g in grants] == [{"Service": "logging.s3.amazonaws.com"}]


def test_persist_writes_to_the_existing_bucket_with_its_kms_key(
    resources: dict[str, dict[str, Any]], functions: dict[str, dict[str, Any]]
) -> None:
    persist = functions["persist"]
    assert persist["Environment"]["Variables"]["MEDIAGEN_OUTPUTS_BUCKET"] == BUCKET
    statements = _statements(resources, persist["Role"]["Fn::GetAtt"][0])
    (s3_statement,) = [s for s in statements if any(a.startswith("s3:") for a in _actions(s))]
    assert sorted(_actions(s3_statement)) == ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject",
                                              "s3:PutObject", "s3:PutObjectTagging"]
    assert s3_statement["Resource"] == {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":s3:::{BUCKET}/*"]]}
    (kms_statement,) = [s for s in statements if any(a.startswith("kms:") for a in _actions(s))]
    assert sorted(_actions(kms_statement)) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert kms_statement["Resource"] == BUCKET_KEY_ARN
    for name in ("poll", "finalize", "callback", "arm"):
        role_id = functions[name]["Role"]["Fn::GetAtt"][0]
        assert not [a for s in _statements(resources, role_id) for a in _actions(s) if a.startswith(("s3:", "kms:"))]


def _s3_and_kms(resources: dict[str, dict[str, Any]], function: dict[str, Any]) -> dict[str, set[str]]:
    """Resource (flattened) -> the s3:/kms: actions a function's role has on it."""
    found: dict[str, set[str]] = {}
    for statement in _statements(resources, function["Role"]["Fn::GetAtt"][0]):
        actions = {a for a in _actions(statement) if a.startswith(("s3:", "kms:"))}
        if actions:
            found.setdefault(_flat(statement["Resource"]), set()).update(actions)
    return found


def test_results_in_the_existing_bucket_are_presigned_and_reported_with_its_key(
    resources: dict[str, dict[str, Any]], functions: dict[str, dict[str, Any]]
) -> None:
    result_objects = f"arn:{{AWS::Partition}}:s3:::{BUCKET}/*"
    assert _s3_and_kms(resources, functions["api"]) == {result_objects: {"s3:GetObject"}, BUCKET_KEY_ARN: {"kms:Decrypt"}}
    intake = _s3_and_kms(resources, functions["intake"])
    reports = f"arn:{{AWS::Partition}}:s3:::{BUCKET}/reports/*"  # the intake writes only its manifests' reports
    assert intake[reports] == {"s3:PutObject"} and intake[BUCKET_KEY_ARN] == {"kms:GenerateDataKey"}
    assert result_objects not in intake
    assert json.loads(functions["intake"]["Environment"]["Variables"]["MEDIAGEN_INBOX_RULES"]) == [INBOX.to_json()]


def test_the_intake_on_an_existing_sse_kms_bucket() -> None:
    """Notifications are merged into the bucket's own (unmanaged); readers may decrypt with the bucket's key."""
    stack = Stack(App(), "IntakeProbe", env=Environment(account=ACCOUNT, region=REGION))
    drop = s3.Bucket.from_bucket_attributes(
        stack, "Drop", bucket_name=DROP_BUCKET, encryption_key=kms.Key.from_key_arn(stack, "DropKey", DROP_KEY_ARN))
    intake = S3Intake(stack, "Intake", event_bus=events.EventBus(stack, "Bus"), event_source="acme.media",
                      inbox_prefixes=["photos/"], visibility_timeout=Duration.minutes(30), bucket=drop)
    reader = lambda_.Function(stack, "Reader", runtime=lambda_.Runtime.PYTHON_3_12, handler="index.handler",
                              code=lambda_.Code.from_inline("def handler(event, context): ..."))
    intake.consume_with(reader)
    template = Template.from_stack(stack).to_json()
    resources = template["Resources"]
    assert _of_type(resources, "AWS::S3::Bucket") == {}
    (notifications,) = _of_type(resources, "Custom::S3BucketNotifications").values()
    props = notifications["Properties"]
    assert (props["BucketName"], props["Managed"]) == (DROP_BUCKET, False)
    filters = {tuple(sorted((r["Name"], r["Value"]) for r in c["Filter"]["Key"]["FilterRules"]))
               for c in props["NotificationConfiguration"]["QueueConfigurations"]}
    assert filters == {(("prefix", "jobs/"), ("suffix", ".json")), (("prefix", "jobs/"), ("suffix", ".jsonl")),
                       (("prefix", "inbox/photos/"),)}
    (rule,) = _of_type(resources, "AWS::Events::Rule").values()
    assert rule["Properties"]["EventPattern"]["source"] == ["acme.media"]  # follows MEDIAGEN_EVENT_SOURCE
    (role_id,) = [r["Properties"]["Role"]["Fn::GetAtt"][0] for lid, r in _of_type(resources, "AWS::Lambda::Function").items()
                  if lid.startswith("Reader")]
    granted = {(_flat(s["Resource"]), a) for s in _statements(resources, role_id) for a in _actions(s)
               if a.startswith(("s3:", "kms:"))}
    assert granted == {(f"arn:{{AWS::Partition}}:s3:::{DROP_BUCKET}/*", "s3:GetObject"),
                       (f"arn:{{AWS::Partition}}:s3:::{DROP_BUCKET}/*", "s3:GetObjectVersion"),
                       (DROP_KEY_ARN, "kms:Decrypt")}


def test_a_jobs_api_without_auth_has_open_routes_the_given_throttling_and_a_synth_warning(
    resources: dict[str, dict[str, Any]], platform: tuple[MediaGenPipeline, dict[str, Any], Path]
) -> None:
    (jobs_api_id,) = [lid for lid, a in _of_type(resources, "AWS::ApiGatewayV2::Api").items()
                      if a["Properties"]["Name"] == "PlatformMedia-jobs"]
    routes = [r["Properties"] for r in _of_type(resources, "AWS::ApiGatewayV2::Route").values()
              if r["Properties"]["ApiId"] == {"Ref": jobs_api_id}]
    assert len(routes) == 6
    assert {r["AuthorizationType"] for r in routes} == {"NONE"}
    (stage,) = [s["Properties"] for s in _of_type(resources, "AWS::ApiGatewayV2::Stage").values()
                if s["Properties"]["ApiId"] == {"Ref": jobs_api_id}]
    assert stage["DefaultRouteSettings"] == {"ThrottlingBurstLimit": 200, "ThrottlingRateLimit": 100}
    pipeline, _resources, _outdir = platform
    warnings = Annotations.from_stack(Stack.of(pipeline)).find_warning(
        "*", Match.string_like_regexp("the jobs API has no authentication"))
    assert [w.entry.data for w in warnings] and "allow_unauthenticated=True" in str(warnings[0].entry.data)
    assert [w.id for w in warnings] == ["/PlatformMedia/MediaGen/JobsApi"]


def test_the_operator_principals_reach_only_the_api_function(
    resources: dict[str, dict[str, Any]]
) -> None:
    functions = {lid: f["Properties"] for lid, f in _of_type(resources, "AWS::Lambda::Function").items()}
    given = {str(f["Handler"]).split(".")[1]: f["Environment"]["Variables"].get("MEDIAGEN_OPERATOR_PRINCIPALS")
             for f in functions.values() if str(f.get("Handler", "")).startswith("functions.")}
    assert given.pop("api") == OPERATOR
    assert set(given.values()) == {None}


def test_jobs_api_auth_none_is_refused_naming_allow_unauthenticated() -> None:
    with pytest.raises(ValueError, match="allow_unauthenticated"):
        MediaGenPipelineProps(jobs_api_auth="none")
    with pytest.raises(ValueError, match="jobs_api_auth.*allow_unauthenticated"):
        props_from_context(Stack(App(context={"jobs_api_auth": "NONE"}), "Probe"))


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
    assert len(alarms) == 6 + 1 + 2 * 10  # with the budget alarm; two per function (ten: sweep and reconcile included)
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
        expected = "20" if name in ("submit", "poll", "persist", "finalize", "api") else None
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

    queues = [q for q in _of_type(resources, "AWS::SQS::Queue").values() if "RedrivePolicy" in q["Properties"]]
    assert [q["Properties"]["RedrivePolicy"]["maxReceiveCount"] for q in queues] == [3, 3]  # jobs, intake
    (mapping,) = [m for m in _of_type(resources, "AWS::Lambda::EventSourceMapping").values()
                  if m["Properties"]["BatchSize"] == 5]  # submit's; intake reads 10 at a time
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
    acknowledged = {v["ruleName"]: v for v in nag["suppressedViolations"]}
    # The wildcard is acknowledged for the existing buckets' objects, by their real ARNs.
    assert f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::{BUCKET}/*]" in acknowledged
    assert "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]" \
        in acknowledged  # CDK's S3 notifications handler
    assert "AwsSolutions-SMG4" not in acknowledged  # not our secret: its rotation is the owner's business
    # The callback route, plus the six jobs API routes the platform chose to leave open, each with its reason.
    open_routes = [(v["reason"], c["constructPath"]) for v in nag["suppressedViolations"]
                   if v["ruleName"] == "AwsSolutions-APIG4" for c in v["violatingConstructs"]]
    assert len(open_routes) == 1 + 6
    assert len([path for reason, path in open_routes
                if "allow_unauthenticated=True" in reason and "/JobsApi/" in path]) == 6


# ----------------------------------------------------------------------------------- a second stage: prod
@pytest.fixture(scope="module")
def prod_template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    outdir = tmp_path_factory.mktemp("prod.out")
    context = {"stage": "prod", "daily_credit_budget": "20000", "max_jobs_in_flight": "50",
               "alarm_email": "ops@example.com", "log_retention_days": "90",
               "intake_bucket_name": DROP_BUCKET, "inboxRules": json.dumps([PROD_RULE]),
               "cliprise_base_url": "https://cliprise.example.com/app/cliprise/",
               "clipia_base_url": "https://api.clipia.example.com/v1"}
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("CDK_CONTEXT_JSON", raising=False)
        app, stack = build_app(outdir=str(outdir), skip_bundling=True, context=context)
        app.synth()
    assert stack.stack_name == "MediaGen-prod"
    return dict(json.loads((outdir / "MediaGen-prod.template.json").read_text()))


#: The one inbox rule of MediaGen-prod, as ``-c inboxRules='[...]'`` gives it (prefix without its trailing /).
PROD_RULE = {"prefix": "catalog/shots", "model": "nano-banana",
             "input_template": {"prompt": "{metadata.prompt}", "image_urls": ["{object_url}"]},
             "output_prefix": "catalog/edited/"}


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


def _telemetry(template: dict[str, Any]) -> tuple[set[tuple[str, str]], set[str], set[str]]:
    """``({(namespace, service) of every function}, {custom alarm namespaces}, {dashboard metric namespaces})``."""
    resources = template["Resources"]
    functions = {(f["Properties"]["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"],
                  f["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"])
                 for f in _of_type(resources, "AWS::Lambda::Function").values()
                 if f["Properties"]["Handler"].startswith("functions.")}
    alarms = {a["Properties"]["Namespace"] for a in _of_type(resources, "AWS::CloudWatch::Alarm").values()
              if not a["Properties"]["Namespace"].startswith("AWS/")}
    (dashboard,) = _of_type(resources, "AWS::CloudWatch::Dashboard").values()
    parts = dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]
    body = json.loads("".join(p if isinstance(p, str) else "ref" for p in parts))
    graphed = set()
    for widget in body["widgets"]:
        for metric in widget["properties"].get("metrics", []):
            if isinstance(metric[0], dict):  # SEARCH('{namespace,reason,service} ...')
                graphed.add(metric[0]["expression"].split("{", 1)[1].split(",", 1)[0])
            elif not metric[0].startswith("AWS/") and metric[0] != "...":
                graphed.add(metric[0])
    return functions, alarms, graphed


def test_each_stage_has_its_own_metrics_namespace_and_service(
        dev_template_json: dict[str, Any], prod_template: dict[str, Any]) -> None:
    """Two stages in one account never add up each other's jobs, spend or alarms."""
    assert _telemetry(dev_template_json) == ({("MediaGen/dev", "mediagen-dev")}, {"MediaGen/dev"}, {"MediaGen/dev"})
    assert _telemetry(prod_template) == ({("MediaGen/prod", "mediagen-prod")}, {"MediaGen/prod"}, {"MediaGen/prod"})
    (budget,) = [a["Properties"] for a in _of_type(prod_template["Resources"], "AWS::CloudWatch::Alarm").values()
                 if a["Properties"]["MetricName"] == "DailyCreditsSpent"]
    assert budget["Dimensions"] == [{"Name": "service", "Value": "mediagen-prod"}]


def test_provider_base_urls_reach_only_the_functions_that_call_the_providers(
        dev_template_json: dict[str, Any], prod_template: dict[str, Any]) -> None:
    def base_urls(template: dict[str, Any]) -> dict[str, dict[str, str]]:
        return {f["Properties"]["Handler"].split(".")[1]: {
                    k: v for k, v in f["Properties"]["Environment"]["Variables"].items() if k.endswith("_BASE_URL")
                    and k != "MEDIAGEN_CALLBACK_BASE_URL"}
                for f in _of_type(template["Resources"], "AWS::Lambda::Function").values()
                if f["Properties"]["Handler"].startswith("functions.")}

    expected = {"MEDIAGEN_CLIPRISE_BASE_URL": "https://cliprise.example.com/app/cliprise",
                "MEDIAGEN_CLIPIA_BASE_URL": "https://api.clipia.example.com/v1"}
    prod = base_urls(prod_template)
    assert {name for name, urls in prod.items() if urls} == {"submit", "poll", "persist"}
    assert all(urls == expected for urls in prod.values() if urls)
    assert all(urls == {} for urls in base_urls(dev_template_json).values())  # unset: the providers' defaults


def test_a_provider_base_url_is_https_and_set_only_once() -> None:
    with pytest.raises(ValueError, match="cliprise_base_url"):
        MediaGenPipelineProps(cliprise_base_url="http://cliprise.example.com")
    with pytest.raises(ValueError, match="clipia_base_url"):
        MediaGenPipelineProps(clipia_base_url="https://user:pw@clipia.example.com")
    with pytest.raises(ValueError, match="extra_environment"):
        MediaGenPipelineProps(cliprise_base_url="https://a.example.com",
                              extra_environment={"MEDIAGEN_CLIPRISE_BASE_URL": "https://b.example.com"})


def test_context_inbox_rules_and_intake_bucket_configure_the_intake(prod_template: dict[str, Any]) -> None:
    resources = prod_template["Resources"]
    (intake,) = [f["Properties"] for f in _of_type(resources, "AWS::Lambda::Function").values()
                 if f["Properties"]["Handler"] == "functions.intake.app.lambda_handler"]
    variables = intake["Environment"]["Variables"]
    assert json.loads(variables["MEDIAGEN_INBOX_RULES"]) == [{**PROD_RULE, "prefix": "catalog/shots/"}]
    assert variables["MEDIAGEN_INTAKE_BUCKET"] == DROP_BUCKET
    (notifications,) = _of_type(resources, "Custom::S3BucketNotifications").values()
    assert notifications["Properties"]["BucketName"] == DROP_BUCKET
    prefixes = [rule["Value"] for c in notifications["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
                for rule in c["Filter"]["Key"]["FilterRules"] if rule["Name"] == "prefix"]
    assert sorted(prefixes) == ["inbox/catalog/shots/", "jobs/", "jobs/"]
    # The existing intake bucket is not created; the outputs bucket is (with its logs bucket).
    assert len(_of_type(resources, "AWS::S3::Bucket")) == 2


def test_context_without_inbox_rules_gets_the_defaults_and_an_empty_list_gets_none() -> None:
    assert props_from_context(Stack(App(), "Probe")).inbox_rules == DEFAULT_INBOX_RULES
    assert props_from_context(Stack(App(context={"inboxRules": "[]"}), "Probe")).inbox_rules == ()
    listed = props_from_context(Stack(App(context={"inboxRules": [PROD_RULE]}), "Probe"))  # cdk.json: a list
    assert [rule.to_json() for rule in listed.inbox_rules] == [{**PROD_RULE, "prefix": "catalog/shots/"}]
    opened = props_from_context(Stack(App(context={"allow_unauthenticated": "true",
                                                   "operator_principals": f"{OPERATOR}, {OPERATOR}-2"}), "Probe"))
    assert opened.allow_unauthenticated is True and opened.operator_principals == (OPERATOR, f"{OPERATOR}-2")
    assert props_from_context(Stack(App(), "Probe")).allow_unauthenticated is False


@pytest.mark.parametrize(("key", "value"), [
    ("daily_credit_budget", "lots"), ("architecture", "sparc"), ("log_retention_days", "31"),
    ("removal_policy", "snapshot"), ("alarm_topic_arn", "not-an-arn"), ("outputs_bucket_name", "Bad_Bucket"),
    ("intake_bucket_name", "Bad_Bucket"), ("jobs_api_auth", "cognito"), ("inboxRules", "[{prefix: 1}]"),
    ("allow_unauthenticated", "yes please"), ("operator_principals", "bob"),
    ("cliprise_base_url", "http://cliprise.example.com"), ("clipia_base_url", "clipia.example.com"),
    ("inboxRules", '{"prefix": "a/"}'), ("inboxRules", '[{"prefix": "a/", "model": "m"}]'),
    ("inboxRules", '[{"prefix": "a/", "model": "m", "input_template": {"image": "{object_url}"}, "out": "x"}]'),
    ("inboxRules", '[{"prefix": "a/", "model": "m", "input_template": {"image": "no url"}}]'),
    ("inboxRules", '[{"prefix": "a/", "model": "m", "input_template": {"i": "{object_url}"}},'
                   ' {"prefix": "a/b/", "model": "m", "input_template": {"i": "{object_url}"}}]'),
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
