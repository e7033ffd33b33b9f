"""The sweeper on a schedule: every 15 minutes the ``sweep`` function re-enqueues RECEIVED jobs a refused queue send
left behind, with a role that may do exactly that (the only Scan of the job table)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mediagen_infra.sweeper import SWEEP, SWEEP_QUEUE_ACTIONS, SWEEP_TABLE_ACTIONS


@pytest.fixture(scope="module")
def resources(dev_template_json: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dev_template_json["Resources"]


def _of_type(resources: dict[str, dict[str, Any]], cfn_type: str) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in resources.items() if r["Type"] == cfn_type}


def _sweep(resources: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    (found,) = [(lid, r["Properties"]) for lid, r in _of_type(resources, "AWS::Lambda::Function").items()
                if r["Properties"].get("Handler") == SWEEP.handler]
    return found


def test_a_rule_runs_the_sweep_function_every_15_minutes_with_its_minimum_age(
        resources: dict[str, dict[str, Any]]) -> None:
    sweep_id, props = _sweep(resources)
    assert props["Handler"] == "functions.sweep.app.lambda_handler" and props["Timeout"] == 120
    (rule,) = [r["Properties"] for r in _of_type(resources, "AWS::Events::Rule").values()
               if r["Properties"].get("ScheduleExpression")
               and r["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": [sweep_id, "Arn"]}]
    assert rule["ScheduleExpression"] == "rate(15 minutes)" and rule["State"] == "ENABLED"
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [sweep_id, "Arn"]}
    assert json.loads(target["Input"]) == {"older_than_seconds": 900}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 2
    permissions = [p["Properties"] for p in _of_type(resources, "AWS::Lambda::Permission").values()
                   if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [sweep_id, "Arn"]}]
    assert [p["Principal"] for p in permissions] == ["events.amazonaws.com"]


def test_the_sweep_role_may_scan_read_and_mark_jobs_and_send_to_the_jobs_queue_only(
        resources: dict[str, dict[str, Any]]) -> None:
    _sweep_id, props = _sweep(resources)
    role_id = props["Role"]["Fn::GetAtt"][0]
    statements = [s for p in _of_type(resources, "AWS::IAM::Policy").values()
                  if {"Ref": role_id} in p["Properties"]["Roles"] for s in p["Properties"]["PolicyDocument"]["Statement"]]
    (table_id,) = _of_type(resources, "AWS::DynamoDB::Table")
    jobs_queue = [lid for lid, fn in _of_type(resources, "AWS::Lambda::EventSourceMapping").items()
                  if "JobsQueue" in json.dumps(fn["Properties"]["EventSourceArn"])]
    assert jobs_queue, "submit consumes the jobs queue"
    by_action: dict[str, list[str]] = {}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        for action in actions:
            by_action.setdefault(action, []).append(json.dumps(statement["Resource"]))
    dynamodb = {a for a in by_action if a.startswith("dynamodb:")}
    assert dynamodb == set(SWEEP_TABLE_ACTIONS)
    assert all(table_id in r for a in dynamodb for r in by_action[a])
    assert {a for a in by_action if a.startswith("sqs:")} == set(SWEEP_QUEUE_ACTIONS)
    assert all("JobsQueue" in r and "Dlq" not in r for r in by_action["sqs:SendMessage"])
    assert set(by_action) - dynamodb - {"sqs:SendMessage"} == {
        "logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords"}
    # No other role may Scan the job table but the reconciler's (the other scheduled reader).
    scanners = [lid for lid, p in _of_type(resources, "AWS::IAM::Policy").items()
                if "dynamodb:Scan" in json.dumps(p["Properties"]["PolicyDocument"])]
    assert len(scanners) == 2 and any({"Ref": role_id} in resources[s]["Properties"]["Roles"] for s in scanners)
    assert [s for s in scanners if "Sweep" not in s][0].startswith("PipelineReconcile")
