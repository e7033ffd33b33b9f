"""The intake construct refuses at synth time every ``input_allow`` entry submit's
:func:`mediagen.inputs.parse_input_allow` refuses at run time (a deployed stack whose submit cannot start)."""

from __future__ import annotations

import pytest
from aws_cdk import App, Duration, Environment, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_s3 as s3

from mediagen.errors import ConfigurationError
from mediagen.inputs import parse_input_allow
from mediagen_infra.intake import S3Intake

ENV = Environment(account="123456789012", region="us-east-1")


def make_intake(input_allow: list[str] | None) -> S3Intake:
    scope = Stack(App(post_cli_context={"aws:cdk:bundling-stacks": []}), "IntakeTest", env=ENV)
    return S3Intake(scope, "Intake", event_bus=events.EventBus(scope, "Bus"), event_source="mediagen",
                    inbox_prefixes=[], visibility_timeout=Duration.minutes(30),
                    bucket=s3.Bucket.from_bucket_name(scope, "Drop", "acme-drop"), input_allow=input_allow)


@pytest.mark.parametrize("entry", ["s3://acme-library/a/../", "s3://acme-library/../", "s3://acme-library/./x/",
                                   "s3://acme-library/a/./b/", "s3://acme-library/a?x=1/"])
def test_input_allow_with_a_dot_segment_or_query_is_refused_at_synth_like_at_run_time(entry: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_input_allow(entry)  # what submit would do with it, once deployed
    with pytest.raises(ValueError, match=r"input_allow: .*acme-library"):
        make_intake(["s3://acme-library/shared/", entry])


@pytest.mark.parametrize("entry", ["s3://acme-library/shared/", "s3://acme-library/", "s3://acme.lib/a..b/c/"])
def test_input_allow_entries_submit_takes_are_accepted(entry: str) -> None:
    assert parse_input_allow(entry)
    assert make_intake([entry]).input_allow_env == entry


def read_grants(intake: S3Intake) -> set[tuple[str, str]]:
    """(flattened resource, action) of the object reads granted to a function given :meth:`S3Intake.grant_read_inputs`."""
    from aws_cdk import aws_lambda as lambda_
    from aws_cdk.assertions import Template

    from mediagen_infra.compliance import nag_flatten

    scope = Stack.of(intake)
    reader = lambda_.Function(scope, "Submit", runtime=lambda_.Runtime.PYTHON_3_12, handler="index.handler",
                              code=lambda_.Code.from_inline("def handler(event, context): ..."))
    intake.grant_read_inputs(reader, "submit presigns the inputs input_allow names")
    policies = Template.from_stack(scope).find_resources("AWS::IAM::Policy")
    statements = [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]
    return {(nag_flatten(r), a) for s in statements
            for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
            for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]) if a.startswith("s3:GetObject")}


def objects(bucket: str, *prefixes: str) -> set[tuple[str, str]]:
    return {(f"arn:<AWS::Partition>:s3:::{bucket}/{p}*", a) for p in prefixes
            for a in ("s3:GetObject", "s3:GetObjectVersion")}


def test_submit_reads_only_the_intake_keys_input_allow_names() -> None:
    assert read_grants(make_intake(None)) == objects("acme-drop", "inbox/", "inputs/")  # the runtime's default
    assert read_grants(make_intake(["s3://acme-drop/shared/", "s3://acme-library/any/"])) == objects(
        "acme-drop", "shared/")
    assert read_grants(make_intake(["s3://acme-library/any/"])) == set()  # nothing of the intake bucket
    assert read_grants(make_intake(["s3://acme-drop/"])) == objects("acme-drop", "")  # the whole bucket, by choice
