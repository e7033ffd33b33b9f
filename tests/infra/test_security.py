"""What a security reviewer runs on the synthesized template: cdk-nag, cfn-lint and checkov.

* cdk-nag (``AwsSolutionsChecks``) runs inside the session's synth (``dev_assembly``): the synth itself
  fails on a finding nobody acknowledged. Here: the report is clean, every acknowledgment has a reason, and
  the set of acknowledged findings is exactly the reviewed one (a new acknowledgment is a deliberate change).
* cfn-lint (this venv) on the template: no error.
* checkov (its own venv, ``.venv-checkov``: it pins an old boto3) on the template: no failed check; every
  skip is in the template metadata with a comment, and the set of skips is exactly the reviewed one.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_s3 as s3

from mediagen_infra import add_security_checks
from mediagen_infra.compliance import acknowledge, nag_flatten, skip_checkov

REPO = Path(__file__).resolve().parents[2]
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
CFN_LINT = Path(sys.executable).parent / "cfn-lint"

#: Every cdk-nag finding the pipeline accepts, and on how many resources (reviewed; reasons are in code).
EXPECTED_ACKNOWLEDGED = {
    # X-Ray (all 11 roles) and Logs vended delivery (state machine role) have no resource-level permissions.
    "AwsSolutions-IAM5[Resource::*]": 11,
    # python3.12 pinned together with the layer's wheels (10 functions, sweep and reconcile included).
    "AwsSolutions-L1": 10,
    # Third-party API key: no rotation API.
    "AwsSolutions-SMG4": 1,
    # Provider callbacks cannot be authenticated: the per-job token is the credential. (The jobs API's six
    # routes are signed with IAM: nothing to acknowledge.)
    "AwsSolutions-APIG4": 1,
    # Results under <prefix><job_id>/: object ARN ends in /* (persist writes, api presigns).
    "AwsSolutions-IAM5[Resource::<PipelineOutputsBucket2E7BE85D.Arn>/*]": 2,
    # Manifest reports: one key per manifest under reports/ (intake writes nothing else).
    "AwsSolutions-IAM5[Resource::<PipelineOutputsBucket2E7BE85D.Arn>/reports/*]": 1,
    # Any dropped file may be read (intake).
    "AwsSolutions-IAM5[Resource::<PipelineIntakeBucketC51F3860.Arn>/*]": 1,
    # Any input under the default input_allow prefixes may be presigned (submit).
    "AwsSolutions-IAM5[Resource::<PipelineIntakeBucketC51F3860.Arn>/inbox/*]": 1,
    "AwsSolutions-IAM5[Resource::<PipelineIntakeBucketC51F3860.Arn>/inputs/*]": 1,
    # CDK's deploy-time S3 notifications handler comes with AWSLambdaBasicExecutionRole.
    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]": 1,
    # CDK's LambdaInvoke grants the function's qualified ARNs.
    "AwsSolutions-IAM5[Resource::<PipelineArmFunction3A07FE6E.Arn>:*]": 1,
    "AwsSolutions-IAM5[Resource::<PipelinePollFunctionF2E53E32.Arn>:*]": 1,
    "AwsSolutions-IAM5[Resource::<PipelinePersistFunction1C313BE3.Arn>:*]": 1,
    "AwsSolutions-IAM5[Resource::<PipelineFinalizeFunction86B73F0B.Arn>:*]": 1,
}
#: Every checkov check the template skips, and on how many resources (reviewed; comments are in metadata).
EXPECTED_CHECKOV_SKIPS = {
    # 10 pipeline functions (sweep and reconcile included) + CDK's S3 notifications handler (no environment).
    ("CKV_AWS_115", "AWS::Lambda::Function"): 11,  # reserved concurrency
    ("CKV_AWS_116", "AWS::Lambda::Function"): 11,  # function DLQ (async invocations only)
    ("CKV_AWS_117", "AWS::Lambda::Function"): 11,  # VPC
    ("CKV_AWS_173", "AWS::Lambda::Function"): 10,  # environment KMS key
    ("CKV_AWS_158", "AWS::Logs::LogGroup"): 13,  # log group KMS key
    ("CKV_AWS_27", "AWS::SQS::Queue"): 4,  # SSE-SQS not recognised
    ("CKV_AWS_119", "AWS::DynamoDB::Table"): 1,  # table CMK
    ("CKV_AWS_149", "AWS::SecretsManager::Secret"): 1,  # secret CMK
    ("CKV_AWS_18", "AWS::S3::Bucket"): 1,  # the access log bucket itself
}


@pytest.fixture(scope="module")
def validation_report(dev_assembly: Path) -> dict[str, Any]:
    return dict(json.loads((dev_assembly / "validation-report.json").read_text()))


def _plugin(report: dict[str, Any], name: str) -> dict[str, Any]:
    (plugin,) = [p for p in report["pluginReports"] if p["pluginName"] == name]
    return dict(plugin)


# -------------------------------------------------------------------------------------------------- cdk-nag
def test_cdk_nag_reports_no_unacknowledged_finding(validation_report: dict[str, Any]) -> None:
    nag = _plugin(validation_report, "AwsSolutions")
    assert nag["conclusion"] == "success"
    assert nag["violations"] == []


def test_every_acknowledged_finding_carries_a_reason_and_is_a_reviewed_one(
    validation_report: dict[str, Any]
) -> None:
    suppressed = _plugin(validation_report, "AwsSolutions")["suppressedViolations"]
    for finding in suppressed:
        assert len(finding["reason"]) >= 60, finding["ruleName"]  # a sentence, not "ok"
        assert finding["acknowledgedId"] == f"AwsSolutions::{finding['ruleName']}"
    counts = Counter()
    for finding in suppressed:
        counts[finding["ruleName"]] += len(finding["violatingConstructs"])
    assert dict(counts) == EXPECTED_ACKNOWLEDGED


def test_an_unacknowledged_finding_fails_the_synth(tmp_path: Path) -> None:
    """The checks are not advisory: a bucket without TLS enforcement or access logs stops the synth."""
    app = App(outdir=str(tmp_path))
    add_security_checks(app)
    stack = Stack(app, "Probe")
    s3.Bucket(stack, "Careless")
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    rules = {v["ruleName"] for v in _plugin(report, "AwsSolutions")["violations"]}
    assert {"AwsSolutions-S1", "AwsSolutions-S10"} <= rules


def test_acknowledgments_and_skips_refuse_an_empty_reason() -> None:
    stack = Stack(App(), "Probe")
    bucket = s3.Bucket(stack, "Bucket")
    with pytest.raises(ValueError, match="reason"):
        acknowledge(bucket, "AwsSolutions-S1", "")
    with pytest.raises(ValueError, match="reason"):
        skip_checkov(bucket, "CKV_AWS_18", "n/a")


def test_nag_finding_ids_are_flattened_like_cdk_nag_does() -> None:
    joined = {"Fn::Join": ["", [{"Fn::GetAtt": ["Bucket12", "Arn"]}, "/*"]]}
    assert nag_flatten(joined) == "<Bucket12.Arn>/*"
    assert nag_flatten({"Fn::Join": [":", ["arn", {"Ref": "AWS::Partition"}, "s3"]]}) == "arn:<AWS::Partition>:s3"
    assert nag_flatten("${Token}/*") == "<Token>/*"


# ------------------------------------------------------------------------------------------------- cfn-lint
def test_cfn_lint_reports_no_error(dev_template_path: Path) -> None:
    assert CFN_LINT.exists(), f"{CFN_LINT} is missing: `make test` installs cfn-lint with the infra extra"
    result = subprocess.run([str(CFN_LINT), "--format", "json", str(dev_template_path)],
                            capture_output=True, text=True, timeout=300)
    findings = json.loads(result.stdout or "[]")
    errors = [f"{f['Rule']['Id']} {f['Message']} ({f['Location']['Path']})"
              for f in findings if f["Level"] == "Error"]
    assert errors == []
    # Exit code 0 (clean) or 4 (warnings only, e.g. W3005 on CDK's explicit role dependencies), never 2 (errors).
    assert result.returncode in (0, 4), result.stderr


# -------------------------------------------------------------------------------------------------- checkov
@pytest.fixture(scope="module")
def checkov_results(dev_template_path: Path) -> dict[str, Any]:
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: run `make .venv-checkov/.installed` (checkov has its own venv "
                    "because it pins an old boto3); `make test` does this for you")
    result = subprocess.run(
        [str(CHECKOV), "--file", str(dev_template_path), "--framework", "cloudformation", "--skip-download",
         "--output", "json"],
        capture_output=True, text=True, timeout=600, cwd=dev_template_path.parent,
    )
    assert result.returncode in (0, 1), result.stderr  # 1 = failed checks (reported below), else a crash
    output = json.loads(result.stdout)
    assert output["summary"]["parsing_errors"] == 0
    return dict(output["results"])


def test_checkov_reports_no_failed_check(checkov_results: dict[str, Any]) -> None:
    failed = [f"{c['check_id']} {c['check_name']} ({c['resource']})" for c in checkov_results["failed_checks"]]
    assert failed == []
    assert len(checkov_results["passed_checks"]) > 100  # it really looked at the resources


def test_every_checkov_skip_is_explained_in_the_template_and_is_a_reviewed_one(
    checkov_results: dict[str, Any]
) -> None:
    skipped = checkov_results["skipped_checks"]
    for check in skipped:
        assert len(check["check_result"].get("suppress_comment", "")) >= 60, (check["check_id"], check["resource"])
    counts = Counter((c["check_id"], c["resource"].split(".")[0]) for c in skipped)
    assert dict(counts) == EXPECTED_CHECKOV_SKIPS
