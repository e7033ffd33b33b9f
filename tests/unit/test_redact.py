"""Finding 15: redaction is by value, never by field name.

Before, every dict value under a key named like a secret (``key``, ``token``, ``password``...) became ``***``, so
each ``outputs[].key`` of an EventBridge event was ``***`` while a secret under an innocent name passed. Now
secrets are found by their value wherever they are, and no field is blanked for its name.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import boto3
from hypothesis import given, settings
from hypothesis import strategies as st

from mediagen.events import job_event_detail
from mediagen.redact import REDACTED, SECRET_PARAMS, redact, redact_text, register_secret

ACCESS_KEY = "AKIASENTINEL7Q2W3E4R"
SECRET_KEY = "sentinel-secret-access-key-0c9e"  # noqa: S105 - a test value
SESSION_TOKEN = "IQoJb3JpZ2luX2VjSENTINELsessiontoken9f8e7d"  # noqa: S105


def _presigned_url() -> str:
    s3 = boto3.client("s3", region_name="eu-west-1", aws_access_key_id=ACCESS_KEY,
                      aws_secret_access_key=SECRET_KEY, aws_session_token=SESSION_TOKEN,
                      config=boto3.session.Config(signature_version="s3v4"))
    return str(s3.generate_presigned_url("get_object", Params={"Bucket": "out", "Key": "jobs/j-1/output.png"},
                                          ExpiresIn=900))


def _record(**extra: object) -> dict[str, object]:
    return {"job_id": "j-1", "status": "SUCCEEDED", "model": "nano-banana", "created_at": "2026-01-01T00:00:00Z",
            "outputs": [{"uri": "s3://out/jobs/j-1/output.png", "key": "jobs/j-1/output.png", "bytes": 10,
                         "content_type": "image/png", "sha256": "ab" * 32}],
            "metadata": {"token": "order-77", "password_hint": "the usual", "key": "customer/42"}, **extra}


def test_finding_15_event_outputs_key_is_the_real_s3_key() -> None:
    detail = job_event_detail(_record())
    assert detail["outputs"][0]["key"] == "jobs/j-1/output.png"
    # The class: no field is blanked for its name, whatever the name.
    assert detail["metadata"] == {"token": "order-77", "password_hint": "the usual", "key": "customer/42"}


@settings(deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(SECRET_PARAMS | {"apiKey", "Authorization", "secret_key", "note"})),
                       st.text(max_size=60) | st.sampled_from(["jobs/j-1/output.png", "order-77", "https://h/x?a=1"])))
def test_finding_15_no_value_is_redacted_for_the_name_of_its_field(fields: dict[str, str]) -> None:
    """Whatever a field is called, its value is treated exactly as the same text anywhere else."""
    by_value = {name: redact_text(value) for name, value in fields.items()}
    assert redact(fields) == by_value
    assert redact([{"outputs": [fields]}]) == [{"outputs": [by_value]}]


def test_finding_15_a_record_holding_a_presigned_url_keeps_the_url_but_not_the_signature() -> None:
    url = _presigned_url()
    assert SESSION_TOKEN in url or SESSION_TOKEN in url.replace("%2F", "/")  # the URL really carries them
    record = redact(_record(source_url=url, outputs=[{"key": "jobs/j-1/output.png", "url": url}]))
    text = json.dumps(record)
    for secret in (ACCESS_KEY, SESSION_TOKEN, parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]):
        assert secret not in text
    kept = urlsplit(record["source_url"])
    assert (kept.scheme, kept.netloc, kept.path) == tuple(urlsplit(url)[:3])
    query = parse_qs(kept.query)
    assert query["X-Amz-Signature"] == query["X-Amz-Credential"] == query["X-Amz-Security-Token"] == [REDACTED]
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"] and query["X-Amz-Expires"] == ["900"]
    assert record["outputs"][0]["key"] == "jobs/j-1/output.png"


def test_finding_15_a_registered_secret_is_redacted_under_any_field_name() -> None:
    secret = "sk-live-SENTINEL-5d1f0a9b7c"  # noqa: S105
    register_secret(secret)
    record = redact(_record(error={"code": "x", "message": f"provider said: bad key {secret}"},
                            metadata={"note": secret, secret: "as a key"}))
    assert secret not in json.dumps(record)
    assert record["metadata"]["note"] == REDACTED and record["error"]["message"].endswith(REDACTED)
    assert redact({"apiKey": secret}, secrets=[secret]) == {"apiKey": REDACTED}


def test_finding_15_query_keys_bearer_sigv4_callback_tokens_and_passwords_are_found_in_text() -> None:
    text = ("GET https://api.example/app/cliprise/status?apiKey=k-123456&taskId=t1 "
            "Authorization: Bearer eyJhbGciOi.J9.abc "
            "Authorization: AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20260101/us-east-1/s3/aws4_request, "
            "SignedHeaders=host, Signature=0123abcd "
            "POST https://x.example/callbacks/ai0x.AbCdEfGhIjKlMnOpQrStUv "
            "https://user:hunter2@cdn.example/a.png https://b.example/x?sig=azure1&se=2026")
    out = redact_text(text)
    for secret in ("k-123456", "eyJhbGciOi", "AKIAEXAMPLE", "0123abcd", "AbCdEfGhIjKlMnOpQrStUv", "hunter2",
                   "azure1"):
        assert secret not in out
    assert "taskId=t1" in out and "/callbacks/***" in out and "https://user:***@cdn.example/a.png" in out
    assert "SignedHeaders=host" in out and "se=2026" in out
