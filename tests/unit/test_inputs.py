"""``s3://`` inputs (finding 8): only media fields, only allow-listed locations, one refusal for missing and
forbidden objects; a prompt that mentions ``s3://`` stays text. On moto's S3 and the pipeline's submit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from mediagen.catalog import get_catalog
from mediagen.errors import ConfigurationError, InvalidJob
from mediagen.inputs import (
    REFUSAL,
    InputLocation,
    S3Inputs,
    input_allow_from_env,
    parse_input_allow,
    s3_references,
)
from mediagen.provider import GenerateAccepted
from mediagen.settings import Settings
from mediagen.steps.core import Ports
from mediagen.steps.submit import submit_job
from tests.fakes import InMemoryJobs, RecordingEvents, RecordingStarter, ScriptedProvider

INTAKE = "intake-bucket"
PRIVATE = "private-bucket"
ALLOW = (InputLocation(INTAKE, "inbox/"), InputLocation(INTAKE, "inputs/"))


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        for bucket in (INTAKE, PRIVATE):
            client.create_bucket(Bucket=bucket)
        client.put_object(Bucket=INTAKE, Key="inputs/cat.png", Body=b"png")
        client.put_object(Bucket=INTAKE, Key="jobs/batch.jsonl", Body=b"{}")
        client.put_object(Bucket=PRIVATE, Key="payroll.png", Body=b"secret")
        yield client


def upscale(image: str) -> dict[str, Any]:
    return {"model": "recraft-upscaler", "input": {"image": image}}


def refusal(request: dict[str, Any], s3: Any, allow: tuple[InputLocation, ...] = ALLOW) -> list[dict[str, str]]:
    with pytest.raises(InvalidJob) as caught:
        S3Inputs(lambda: s3, allow=allow).resolve(request)
    return list(caught.value.problems)


def test_finding_08_only_catalog_media_fields_may_carry_s3_inputs() -> None:
    catalog = get_catalog()
    assert catalog.media_fields("recraft-upscaler") == frozenset({"input.image"})
    assert "input.image_urls[]" in catalog.media_fields("nano-banana")
    assert "input.kling_elements[].element_input_urls[]" in catalog.media_fields("kling-3")
    assert "input.prompt" not in catalog.media_fields("nano-banana")
    assert catalog.media_fields("no-such-model") == frozenset()
    request = {"model": "nano-banana", "input": {
        "prompt": "s3://intake-bucket/inputs/cat.png", "image_urls": ["https://e.com/a.png", "s3://b/k.png"]}}
    assert s3_references(request) == [("input.image_urls[1]", "s3://b/k.png")]
    assert s3_references({"model": "unknown", "input": {"image": "s3://b/k.png"}}) == []


def test_finding_08_a_prompt_holding_an_s3_uri_stays_text_and_reaches_the_provider_as_written(s3: Any) -> None:
    prompt = "describe s3://private-bucket/payroll.png in the style of s3://intake-bucket/inputs/cat.png"
    request = {"model": "nano-banana", "input": {"prompt": prompt, "output_format": "png", "image_size": "1:1"}}
    assert S3Inputs(lambda: s3, allow=ALLOW).resolve(request) is request  # nothing looked up, nothing signed

    provider = ScriptedProvider(generate=[GenerateAccepted("t-1")])
    ports = Ports(settings=Settings(), jobs=InMemoryJobs(), events=RecordingEvents(), provider=lambda: provider,
                  executions=RecordingStarter(), inputs=None)  # a deployment without s3:// inputs at all
    record = submit_job(json.dumps({"job_id": "p-1", "request": request}), delivery_id="m", ports=ports)
    assert record["status"] == "SUBMITTED"
    assert provider.generate_bodies[0]["input"]["prompt"] == prompt


def test_finding_08_an_allowed_media_input_is_presigned_in_that_field_only(s3: Any) -> None:
    uri = "s3://intake-bucket/inputs/cat.png"
    request = {"model": "nano-banana", "input": {"prompt": uri, "image_urls": [uri], "output_format": "png"}}
    resolved = S3Inputs(lambda: s3, allow=ALLOW).resolve(request)
    assert resolved["input"]["image_urls"][0].startswith("https://") and "Signature" in resolved["input"][
        "image_urls"][0]
    assert resolved["input"]["prompt"] == uri  # the same text in a prompt is not replaced
    assert request["input"]["image_urls"] == [uri]  # the job's own document is untouched


def test_finding_08_missing_and_forbidden_objects_get_the_same_refusal(s3: Any) -> None:
    missing = "s3://intake-bucket/inputs/no-such.png"
    outside_prefix = "s3://intake-bucket/jobs/batch.jsonl"  # exists, but not an input location
    other_bucket = "s3://private-bucket/payroll.png"  # exists, another bucket
    dotted = "s3://intake-bucket/inputs/../jobs/batch.jsonl"
    messages = {uri: refusal(upscale(uri), s3)[0]["message"] for uri in (missing, outside_prefix, other_bucket,
                                                                         dotted)}
    for uri, message in messages.items():
        assert message == REFUSAL.format(uri=uri)
    assert len({message.replace(uri, "") for uri, message in messages.items()}) == 1  # nothing tells them apart
    assert refusal(upscale(missing), s3)[0]["field"] == "input.image"


def test_finding_08_a_forbidden_object_is_never_looked_up(s3: Any) -> None:
    class Recording:
        def __init__(self) -> None:
            self.calls: list[str] = []

        def head_object(self, **params: Any) -> dict[str, Any]:
            self.calls.append(f"s3://{params['Bucket']}/{params['Key']}")
            return {}

    client = Recording()
    with pytest.raises(InvalidJob):
        S3Inputs(lambda: client, allow=ALLOW).resolve(upscale("s3://private-bucket/payroll.png"))
    assert client.calls == []


def test_finding_08_a_refused_input_ends_the_job_rejected_with_nothing_spent(s3: Any) -> None:
    provider = ScriptedProvider(generate=[GenerateAccepted("t-1")])
    ports = Ports(settings=Settings(), jobs=InMemoryJobs(), events=RecordingEvents(), provider=lambda: provider,
                  executions=RecordingStarter(), inputs=S3Inputs(lambda: s3, allow=ALLOW))
    record = submit_job(json.dumps({"job_id": "f-1", "request": upscale("s3://private-bucket/payroll.png")}),
                        delivery_id="m", ports=ports)
    assert record["status"] == "REJECTED" and provider.generate_bodies == []
    assert record["error"]["problems"][0]["message"] == REFUSAL.format(uri="s3://private-bucket/payroll.png")


def test_finding_08_the_allow_list_comes_from_the_environment_with_the_intake_bucket_as_default() -> None:
    assert input_allow_from_env({"MEDIAGEN_INTAKE_BUCKET": INTAKE}) == ALLOW
    assert input_allow_from_env({}) == ()
    assert input_allow_from_env({"MEDIAGEN_INPUT_ALLOW": "s3://media-lib/shared/, s3://bkt/",
                                 "MEDIAGEN_INTAKE_BUCKET": INTAKE}) == (
        InputLocation("media-lib", "shared/"), InputLocation("bkt", ""))
    for bad in ("https://b/x/", "s3://b/no-slash", "s3://Bad_Bucket/x/", "s3://b/../x/"):
        with pytest.raises(ConfigurationError, match="MEDIAGEN_INPUT_ALLOW"):
            parse_input_allow(bad)
