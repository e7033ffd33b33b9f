"""What an operator relies on in ``MediaGen-dev``: the alarm set and where it notifies, the dashboard,
tracing, execution logging and log retention. Reads the session's one synth (``dev_assembly``)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from mediagen_infra.monitoring import METRICS_NAMESPACE, OUTCOME_METRICS, SERVICE_NAME

REPO = Path(__file__).resolve().parents[2]


def _of_type(resources: dict[str, dict[str, Any]], cfn_type: str) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in resources.items() if r["Type"] == cfn_type}


def _only(resources: dict[str, dict[str, Any]], cfn_type: str) -> str:
    (logical_id,) = _of_type(resources, cfn_type)
    return logical_id


@pytest.fixture(scope="module")
def resources(dev_template_json: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(dev_template_json["Resources"])


@pytest.fixture(scope="module")
def alarms(resources: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {lid: r["Properties"] for lid, r in _of_type(resources, "AWS::CloudWatch::Alarm").items()}


def _pipeline_functions(resources: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The pipeline's functions (not CDK's deploy-time helpers, e.g. the S3 notifications handler)."""
    return {lid: r for lid, r in _of_type(resources, "AWS::Lambda::Function").items()
            if r["Properties"]["Handler"].startswith("functions.")}


@pytest.fixture(scope="module")
def functions(resources: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Function name (from the handler) -> logical id."""
    return {r["Properties"]["Handler"].split(".")[1]: lid for lid, r in _pipeline_functions(resources).items()}


def _alarm_on(alarms: dict[str, dict[str, Any]], namespace: str, metric: str,
              dimensions: list[dict[str, Any]]) -> dict[str, Any]:
    found = [a for a in alarms.values()
             if (a["Namespace"], a["MetricName"], a["Dimensions"]) == (namespace, metric, dimensions)]
    assert len(found) == 1, f"expected one alarm on {namespace}/{metric} {dimensions}, found {len(found)}"
    return found[0]


# --------------------------------------------------------------------------------------------------- alarms
def test_the_alarm_set_covers_queue_executions_deadlines_and_every_function(
    resources: dict[str, dict[str, Any]], alarms: dict[str, dict[str, Any]], functions: dict[str, str]
) -> None:
    queues = _of_type(resources, "AWS::SQS::Queue")
    jobs_id, intake_id = (lid for lid, q in queues.items() if "RedrivePolicy" in q["Properties"])
    assert "Intake" in intake_id and "Intake" not in jobs_id
    dlq_id, intake_dlq_id = (queues[lid]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
                             for lid in (jobs_id, intake_id))
    machine_id = _only(resources, "AWS::StepFunctions::StateMachine")

    def queue(lid: str) -> list[dict[str, Any]]:
        return [{"Name": "QueueName", "Value": {"Fn::GetAtt": [lid, "QueueName"]}}]

    expected = [  # (alarm, statistic, comparison, threshold)
        (_alarm_on(alarms, "AWS/SQS", "ApproximateNumberOfMessagesVisible", queue(dlq_id)),
         "Maximum", "GreaterThanOrEqualToThreshold", 1),
        (_alarm_on(alarms, "AWS/SQS", "ApproximateAgeOfOldestMessage", queue(jobs_id)),
         "Maximum", "GreaterThanOrEqualToThreshold", 15 * 60),
        # Files dropped in the intake bucket that were never turned into jobs (or reports).
        (_alarm_on(alarms, "AWS/SQS", "ApproximateNumberOfMessagesVisible", queue(intake_dlq_id)),
         "Maximum", "GreaterThanOrEqualToThreshold", 1),
        (_alarm_on(alarms, "AWS/States", "ExecutionsFailed",
                   [{"Name": "StateMachineArn", "Value": {"Ref": machine_id}}]),
         "Sum", "GreaterThanOrEqualToThreshold", 1),
        (_alarm_on(alarms, "AWS/States", "ExecutionsTimedOut",
                   [{"Name": "StateMachineArn", "Value": {"Ref": machine_id}}]),
         "Sum", "GreaterThanOrEqualToThreshold", 1),
        # "jobs past their deadline": the handlers count TIMED_OUT jobs.
        (_alarm_on(alarms, "MediaGen/dev", "JobsTimedOut", [{"Name": "service", "Value": "mediagen-dev"}]),
         "Sum", "GreaterThanThreshold", 0),
    ]
    for name, function_id in functions.items():
        dimensions = [{"Name": "FunctionName", "Value": {"Ref": function_id}}]
        for metric in ("Errors", "Throttles"):
            alarm = _alarm_on(alarms, "AWS/Lambda", metric, dimensions)
            assert name in alarm["AlarmDescription"]
            expected.append((alarm, "Sum", "GreaterThanOrEqualToThreshold", 1))

    assert len(alarms) == len(expected) == 6 + 2 * 10  # two per function (ten: sweep and reconcile included)
    for alarm, statistic, comparison, threshold in expected:
        assert (alarm["Statistic"], alarm["ComparisonOperator"], alarm["Threshold"]) == (
            statistic, comparison, threshold), alarm["AlarmDescription"]
        assert (alarm["Period"], alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (300, 1, 1)
        assert alarm["TreatMissingData"] == "notBreaching"  # an idle pipeline stays green
        assert alarm["AlarmDescription"].startswith("mediagen MediaGen-dev: ")


def test_no_budget_alarm_without_a_budget(alarms: dict[str, dict[str, Any]]) -> None:
    assert [a for a in alarms.values() if a["MetricName"] == "DailyCreditsSpent"] == []


def test_every_alarm_notifies_the_alarm_topic_when_it_fires_and_when_it_recovers(
    resources: dict[str, dict[str, Any]], alarms: dict[str, dict[str, Any]], dev_template_json: dict[str, Any]
) -> None:
    topic_id = _only(resources, "AWS::SNS::Topic")
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]
        assert alarm["OKActions"] == [{"Ref": topic_id}]
    assert dev_template_json["Outputs"]["AlarmTopicArn"]["Value"] == {"Ref": topic_id}


def test_the_created_alarm_topic_is_encrypted_tls_only_and_publishable_by_cloudwatch_only(
    resources: dict[str, dict[str, Any]]
) -> None:
    topic_id = _only(resources, "AWS::SNS::Topic")
    key_id = _only(resources, "AWS::KMS::Key")
    assert resources[topic_id]["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    key = resources[key_id]["Properties"]
    assert key["EnableKeyRotation"] is True
    cloudwatch_use = [s for s in key["KeyPolicy"]["Statement"]
                      if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
    assert [sorted(s["Action"]) for s in cloudwatch_use] == [["kms:Decrypt", "kms:GenerateDataKey*"]]
    assert cloudwatch_use[0]["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}

    (policy,) = _of_type(resources, "AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
               for s in statements)
    (allow,) = [s for s in statements if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == "sns:Publish"
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}


def test_alarms_watch_metrics_the_handlers_really_emit() -> None:
    """An alarm on a metric nobody emits never fires: check names, namespace and service against the code."""
    from mediagen.observability import SERVICE, get_metrics

    sources = "\n".join(p.read_text() for p in (REPO / "shared" / "mediagen").rglob("*.py"))
    for name in ("JobsTimedOut", "DailyCreditsSpent", *OUTCOME_METRICS, "JobsRejected", "CreditsSpent",
                 "DetectionLagMs", "PollsPerJob", "BytesPersisted"):
        assert re.search(rf"[\"']{name}[\"']", sources), f"no handler emits {name}"
    assert SERVICE == SERVICE_NAME
    assert get_metrics().namespace == METRICS_NAMESPACE


# ------------------------------------------------------------------------------------------------ dashboard
def _dashboard(resources: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The dashboard body as CloudWatch reads it; a reference becomes ``<LogicalId>``."""
    dashboard_id = _only(resources, "AWS::CloudWatch::Dashboard")
    body = resources[dashboard_id]["Properties"]["DashboardBody"]
    parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]
    text = "".join(p if isinstance(p, str) else f"<{_references(p)}>" for p in parts)
    return dict(json.loads(text))


def _references(node: Any) -> str:
    if isinstance(node, dict):
        if "Ref" in node:
            return str(node["Ref"])
        if "Fn::GetAtt" in node:
            return str(node["Fn::GetAtt"][0])
        return "".join(_references(v) for v in node.values())
    if isinstance(node, list):
        return "".join(_references(v) for v in node)
    return ""


def test_the_dashboard_shows_jobs_spend_queue_executions_functions_and_alarms(
    resources: dict[str, dict[str, Any]], alarms: dict[str, dict[str, Any]], dev_template_json: dict[str, Any]
) -> None:
    widgets = _dashboard(resources)["widgets"]
    metric_names, expressions, alarm_arns = set(), [], []
    for widget in widgets:
        properties = widget["properties"]
        for metric in properties.get("metrics", []):
            if isinstance(metric[0], dict):  # a math expression
                expressions.append(metric[0]["expression"])
            else:  # [namespace, metric name, dimension name, value, ..., {options}]
                metric_names.add((metric[0], metric[1]))
        alarm_arns += properties.get("alarms", [])
    mediagen = {name for namespace, name in metric_names if namespace == "MediaGen/dev"}
    assert {*OUTCOME_METRICS, "CreditsSpent", "DailyCreditsSpent", "DetectionLagMs", "PollsPerJob",
            "BytesPersisted"} <= mediagen
    assert {("AWS/SQS", "ApproximateAgeOfOldestMessage"), ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
            ("AWS/States", "ExecutionsFailed"), ("AWS/States", "ExecutionsTimedOut"), ("AWS/Lambda", "Errors"),
            ("AWS/Lambda", "Throttles")} <= metric_names
    # Rejected jobs, one line per reason: a SEARCH over the `reason` dimension.
    assert any("{MediaGen/dev,reason,service}" in e and 'MetricName="JobsRejected"' in e
               and 'service="mediagen-dev"' in e for e in expressions)
    assert sorted(alarm_arns) == sorted(f"<{alarm_id}>" for alarm_id in alarms)  # the alarm status widget
    assert dev_template_json["Outputs"]["DashboardName"]["Value"] == {"Ref": _only(resources,
                                                                                   "AWS::CloudWatch::Dashboard")}


# ------------------------------------------------------------------------------------- tracing and logging
def test_every_function_and_the_state_machine_are_traced_with_permission_to_send_traces(
    resources: dict[str, dict[str, Any]]
) -> None:
    roles_with_xray = set()
    for policy in _of_type(resources, "AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if "xray:PutTraceSegments" in actions:
                roles_with_xray |= {r["Ref"] for r in policy["Properties"]["Roles"]}
    for function in _pipeline_functions(resources).values():
        assert function["Properties"]["TracingConfig"] == {"Mode": "Active"}
        assert function["Properties"]["Role"]["Fn::GetAtt"][0] in roles_with_xray
    (machine,) = _of_type(resources, "AWS::StepFunctions::StateMachine").values()
    assert machine["Properties"]["TracingConfiguration"] == {"Enabled": True}
    assert machine["Properties"]["RoleArn"]["Fn::GetAtt"][0] in roles_with_xray


def test_state_machine_logs_every_event_but_never_the_execution_data(resources: dict[str, dict[str, Any]]) -> None:
    """State payloads hold job requests and provider URLs: logged events carry names and types only."""
    (machine,) = _of_type(resources, "AWS::StepFunctions::StateMachine").values()
    config = machine["Properties"]["LoggingConfiguration"]
    assert config["Level"] == "ALL"
    assert config["IncludeExecutionData"] is False
    (destination,) = config["Destinations"]
    group_id = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    assert resources[group_id]["Properties"]["RetentionInDays"] == 30


def test_each_providers_budget_has_its_own_alarm_on_its_own_series() -> None:
    """Clipia's credits are not Cliprise's: its budget alarm watches the ``provider=clipia`` series the submit
    step emits (``DailyCreditsSpent`` with that dimension), at the same share of Clipia's own budget."""
    from aws_cdk import App, Duration, Stack
    from aws_cdk import aws_sqs as sqs
    from aws_cdk import aws_stepfunctions as sfn
    from aws_cdk.assertions import Template

    from mediagen_infra.monitoring import PipelineMonitoring

    stack = Stack(App(), "Probe", env={"account": "123456789012", "region": "eu-west-1"})
    queue = sqs.Queue.from_queue_arn(stack, "Q", "arn:aws:sqs:eu-west-1:123456789012:jobs")
    PipelineMonitoring(
        stack, "Monitoring", functions={}, jobs_queue=queue, dead_letter_queue=queue, alarm_topic=None,
        state_machine=sfn.StateMachine.from_state_machine_arn(
            stack, "M", "arn:aws:states:eu-west-1:123456789012:stateMachine:jobs"),
        oldest_message_age=Duration.minutes(30), daily_credit_budget=5000, clipia_daily_credit_budget=800,
        budget_alarm_fraction=0.8, dashboard=False)
    alarms = [a["Properties"] for a in Template.from_stack(stack).find_resources("AWS::CloudWatch::Alarm").values()]
    budgets = {json.dumps(a["Dimensions"], sort_keys=True): a for a in alarms if a["MetricName"] == "DailyCreditsSpent"}
    service = {"Name": "service", "Value": SERVICE_NAME}
    cliprise = budgets.pop(json.dumps([service], sort_keys=True))
    (clipia,) = budgets.values()
    assert clipia["Dimensions"] == [{"Name": "provider", "Value": "clipia"}, service]
    assert (cliprise["Threshold"], clipia["Threshold"]) == (4000, 640)
    assert all(a["Statistic"] == "Maximum" and a["Namespace"] == METRICS_NAMESPACE for a in (cliprise, clipia))
    assert "Clipia credits" in clipia["AlarmDescription"]
