"""Clipia on the embedded stack: the Clipia emulator runs beside Cliprise's with a live-looking key kept in
Secrets Manager (as deployed), the functions are pointed at it, and the persist function stores every output of
a Clipia request from the job's provider port (own key, real content type, SHA-256), naming the provider in the
record and in result.json. The submit and poll steps are not involved (their move to the port is separate)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from mediagen.local.stack import OUTPUTS_BUCKET, TASK_TABLE, EmbeddedStack
from mediagen.provider.clipia import ClipiaProvider
from mediagen.provider.port import idempotency_key
from mediagen.wiring import configured_providers

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(synthesized_template: Any) -> Iterator[EmbeddedStack]:
    with EmbeddedStack(template_path=synthesized_template, processing_seconds=0.2) as local:
        yield local


def test_the_clipia_emulator_runs_with_a_live_key_held_in_secrets_manager(stack: EmbeddedStack) -> None:
    from mediagen.settings import Settings

    assert stack.clipia is not None and stack.clipia_api_key.startswith("clipia_live_")
    assert os.environ["MEDIAGEN_CLIPIA_BASE_URL"] == stack.clipia.base_url
    assert "CLIPIA_API_KEY" not in os.environ  # read from the secret, as deployed
    secret = stack.session.client("secretsmanager").get_secret_value(
        SecretId=os.environ["MEDIAGEN_CLIPIA_API_KEY_SECRET_ID"])["SecretString"]
    assert secret == stack.clipia_api_key
    assert configured_providers(Settings.from_env()) == {"cliprise", "clipia"}


def test_persist_stores_every_output_of_a_clipia_request(stack: EmbeddedStack) -> None:
    from mediagen.records import DynamoJobRepository, JobStatus

    job_id = "clipia-persist-1"
    key = idempotency_key("clipia", job_id)
    with ClipiaProvider(stack.clipia_api_key, base_url=stack.clipia.base_url) as clipia:
        rid = clipia.submit({"model": "nano-banana-2", "input": {"prompt": "two red kites", "num_images": 2}},
                            idempotency_key=key).provider_task_id
    deadline = time.monotonic() + 20
    while stack.clipia.request_status(rid) != "COMPLETED":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    jobs = DynamoJobRepository(TASK_TABLE, stack.session.client("dynamodb"))
    jobs.create({"job_id": job_id, "status": "RECEIVED", "model": "nano-banana-2", "output_prefix": "clipia/"})
    jobs.transition(job_id, JobStatus.SUBMITTED, set_fields={"provider_task_id": rid})

    stack.invoke("persist", {"job_id": job_id, "provider_task_id": rid, "provider": "clipia"})

    record = stack.record(job_id)
    assert record["status"] == "SUCCEEDED" and record["delivered_by"] == "clipia"
    assert [o["key"] for o in record["outputs"]] == [f"clipia/{job_id}/output-1.png", f"clipia/{job_id}/output-2.png"]
    s3 = stack.session.client("s3")
    for output in record["outputs"]:
        body = s3.get_object(Bucket=OUTPUTS_BUCKET, Key=output["key"])["Body"].read()
        assert body.startswith(b"\x89PNG") and hashlib.sha256(body).hexdigest() == output["sha256"]
        assert output["content_type"] == "image/png"
    manifest = json.loads(s3.get_object(Bucket=OUTPUTS_BUCKET, Key=f"clipia/{job_id}/result.json")["Body"].read())
    assert (manifest["provider"], manifest["provider_task_id"]) == ("clipia", rid)
    assert stack.clipia_api_key not in json.dumps(manifest) + json.dumps(record)
    # exactly one request at the emulator for the job, and the pipeline's requests were counted
    assert stack.clipia.accepted_requests() == [rid] and stack.clipia.charges(key) == 1
    assert stack.provider_requests("clipia", job_id, path_part="/v1/models/")


def test_the_local_callback_route_hands_clipia_s_signature_headers_and_raw_body_to_the_callback_function(
        stack: EmbeddedStack, monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    seen: list[dict[str, Any]] = []
    logical_id = stack.names["callback"]
    real = stack._handlers[logical_id]

    def recording(event: dict[str, Any], context: Any) -> Any:
        seen.append(event)
        return real(event, context)

    monkeypatch.setitem(stack._handlers, logical_id, recording)
    raw = '{"request_id": "r-1", "status": "COMPLETED", "output": {"images": []}}'
    httpx.post(f"{stack.callbacks.base_url}/{'0' * 40}", content=raw,
               headers={"Content-Type": "application/json", "X-Clipia-Signature": "t=1,v1=abc",
                        "X-Clipia-Webhook-Id": "wh-1"}, timeout=10)
    (event,) = seen
    assert event["headers"]["x-clipia-signature"] == "t=1,v1=abc" and event["headers"]["x-clipia-webhook-id"] == "wh-1"
    assert event["body"] == raw


def test_a_clipia_job_cancelled_through_the_api_while_generating_is_cancelled_and_refunded_at_clipia(
        stack: EmbeddedStack) -> None:
    import httpx

    job_id = "clipia-cancel-running"
    document = {"job_id": job_id, "provider": "clipia", "request": {"model": "nano-banana-2", "input": {
        "prompt": "a slow one [sandbox:slow=30] [sandbox:no-webhook]"}}}
    assert httpx.post(f"{stack.api_url}/jobs", json=document).status_code == 202
    stack.pump_queue()
    record = stack.record(job_id)
    assert record["status"] == "SUBMITTED" and record["provider"] == "clipia"
    rid = record["provider_task_id"]

    response = httpx.post(f"{stack.api_url}/jobs/{job_id}/cancel")
    assert response.status_code == 200
    assert response.json()["cancelled_from"] == "SUBMITTED" and "refunded by Clipia" in response.json()["credits"]
    stack.run_until_done(timeout=30)  # the woken execution's status check asks Clipia to cancel, then ends

    record = stack.record(job_id)
    assert record["status"] == "CANCELLED" and not record.get("outputs")
    assert record["provider_cancel"] == {"outcome": "requested"}
    assert stack.clipia.request_status(rid) == "CANCELED"
    key = idempotency_key("clipia", job_id)
    assert [e["kind"] for e in stack.clipia.ledger() if e["idempotency_key"] == key] == ["charge", "refund"]
