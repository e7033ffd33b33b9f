"""The presigned URLs users and the provider receive work in every region: regional, virtual-hosted, SigV4."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from mediagen.aws import presign_client


@pytest.mark.parametrize(("region", "host"), [
    ("eu-west-1", "outputs-bucket.s3.eu-west-1.amazonaws.com"),
    ("ap-east-1", "outputs-bucket.s3.ap-east-1.amazonaws.com"),  # opt-in region: no global endpoint, SigV4 only
    ("us-east-1", "outputs-bucket.s3.us-east-1.amazonaws.com"),
    ("cn-north-1", "outputs-bucket.s3.cn-north-1.amazonaws.com.cn"),
])
def test_presigned_urls_are_regional_virtual_hosted_and_sigv4(region: str, host: str) -> None:
    url = presign_client(region).generate_presigned_url(
        "get_object", Params={"Bucket": "outputs-bucket", "Key": "jobs/a b/output.png"}, ExpiresIn=900)
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert parts.scheme == "https" and parts.hostname == host
    assert parts.path == "/jobs/a%20b/output.png"
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"] and query["X-Amz-Expires"] == ["900"]
    assert f"/{region}/s3/aws4_request" in query["X-Amz-Credential"][0]
