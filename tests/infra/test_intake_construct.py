"""The S3 intake construct: it refuses to read the bucket it writes to (finding 5) and hands submit the allowed
``s3://`` input locations (finding 8)."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App, Duration, Environment, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_s3 as s3

from mediagen_infra import MediaGenPipeline, MediaGenPipelineProps
from mediagen_infra.intake import S3Intake

ENV = Environment(account="123456789012", region="us-east-1")


def stack() -> Stack:
    return Stack(App(post_cli_context={"aws:cdk:bundling-stacks": []}), "IntakeTest", env=ENV)


def intake(scope: Stack, **kwargs: Any) -> S3Intake:
    return S3Intake(scope, "Intake", event_bus=events.EventBus(scope, "Bus"), event_source="mediagen",
                    inbox_prefixes=[], visibility_timeout=Duration.minutes(30), **kwargs)


@pytest.mark.parametrize("same", ["object", "name"])
def test_finding_05_the_pipeline_refuses_an_outputs_bucket_that_is_the_intake_bucket(same: str) -> None:
    scope = stack()
    outputs = s3.Bucket.from_bucket_name(scope, "Shared", "acme-media")
    intake_bucket = outputs if same == "object" else s3.Bucket.from_bucket_name(scope, "Again", "acme-media")
    with pytest.raises(ValueError, match=r"intake_bucket and outputs_bucket are the same bucket \(acme-media\)"):
        MediaGenPipeline(scope, "MediaGen", MediaGenPipelineProps(outputs_bucket=outputs, intake_bucket=intake_bucket))


def test_finding_05_distinct_buckets_are_accepted() -> None:
    scope = stack()
    made = intake(scope, bucket=s3.Bucket.from_bucket_name(scope, "Drop", "acme-drop"),
                  outputs_bucket=s3.Bucket.from_bucket_name(scope, "Results", "acme-results"))
    assert made.bucket.bucket_name == "acme-drop"


def test_finding_08_inputs_default_to_the_intake_buckets_inbox_and_inputs_prefixes() -> None:
    scope = stack()
    made = intake(scope, bucket=s3.Bucket.from_bucket_name(scope, "Drop", "acme-drop"))
    assert made.input_allow_env == "s3://acme-drop/inbox/,s3://acme-drop/inputs/"
    custom = intake(stack(), bucket=s3.Bucket.from_bucket_name(scope, "Drop2", "acme-drop"),
                    input_allow=["s3://acme-library/shared/"])
    assert custom.input_allow_env == "s3://acme-library/shared/"
    with pytest.raises(ValueError, match="input_allow"):
        intake(stack(), bucket=s3.Bucket.from_bucket_name(scope, "Drop3", "acme-drop"), input_allow=["acme/x/"])


def test_finding_08_submit_allows_the_intake_buckets_inputs_by_default(dev_template_json: dict[str, Any]) -> None:
    """Without ``input_allow`` the construct sets no ``MEDIAGEN_INPUT_ALLOW``: submit derives the same default
    (``inbox/``, ``inputs/``) from the intake bucket it is given."""
    functions = [r for r in dev_template_json["Resources"].values() if r["Type"] == "AWS::Lambda::Function"
                 and str(r["Properties"].get("Handler", "")).startswith("functions.submit.")]
    (submit,) = functions
    variables = submit["Properties"]["Environment"]["Variables"]
    assert "MEDIAGEN_INPUT_ALLOW" not in variables and "Ref" in variables["MEDIAGEN_INTAKE_BUCKET"]
    from mediagen.inputs import DEFAULT_INPUT_PREFIXES as RUNTIME_DEFAULT
    from mediagen_infra.intake import DEFAULT_INPUT_PREFIXES

    assert DEFAULT_INPUT_PREFIXES == RUNTIME_DEFAULT


def test_finding_08_input_allow_reaches_submit_as_its_environment() -> None:
    from aws_cdk.assertions import Template

    scope = stack()
    MediaGenPipeline(scope, "MediaGen", MediaGenPipelineProps(input_allow=["s3://acme-library/shared/"]))
    functions = Template.from_stack(scope).find_resources("AWS::Lambda::Function")
    (submit,) = [f for f in functions.values() if str(f["Properties"].get("Handler", "")).startswith(
        "functions.submit.")]
    assert submit["Properties"]["Environment"]["Variables"]["MEDIAGEN_INPUT_ALLOW"] == "s3://acme-library/shared/"
