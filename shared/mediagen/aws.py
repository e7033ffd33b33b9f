"""Every boto3 client mediagen makes, from one factory with one retry configuration.

- :func:`client` -- a client for ``service`` with :data:`AWS_RETRIES` (bounded, jittered: botocore's
  "standard" mode), from the default session unless another is given.
- :func:`presign_client` -- the S3 client that signs the URLs handed to the provider and to users: regional
  endpoint (``https://s3.<region>.amazonaws.com``; ``amazonaws.com.cn`` in the China partition),
  virtual-hosted addressing and SigV4, so a URL reads ``https://<bucket>.s3.<region>.amazonaws.com/<key>?
  X-Amz-Algorithm=AWS4-HMAC-SHA256&…`` in every region, the opt-in ones (e.g. ``ap-east-1``) included, where a
  global-endpoint or SigV2 URL fails.
"""

from __future__ import annotations

import threading
from typing import Any

#: Bounded, jittered retries for every AWS call (botocore "standard" mode).
AWS_RETRIES: dict[str, Any] = {"mode": "standard", "max_attempts": 5}

# boto3's default session creates clients without a lock; submit builds them from worker threads.
_lock = threading.Lock()


def client(service: str, *, region: str | None = None, session: Any | None = None, **config: Any) -> Any:
    """A boto3 client for ``service`` with the shared retry configuration.

    Args:
        region: the region (default: the session's).
        session: a ``boto3.session.Session`` (default: boto3's default session).
        config: more ``botocore.config.Config`` options (e.g. ``signature_version``).
    """
    import boto3
    from botocore.config import Config

    with _lock:
        maker = session if session is not None else boto3
        return maker.client(service, region_name=region, config=Config(retries=AWS_RETRIES, **config))


def dns_suffix(region: str) -> str:
    """The partition's DNS suffix of ``region``: ``amazonaws.com.cn`` in China, ``amazonaws.com`` elsewhere."""
    return "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"


def presign_client(region: str | None = None, *, session: Any | None = None) -> Any:
    """The S3 client for presigned URLs: regional endpoint, virtual-hosted addressing, SigV4.

    Raises:
        mediagen.errors.ConfigurationError: no region is configured (``AWS_REGION``).
    """
    import boto3
    from botocore.config import Config

    from mediagen.errors import ConfigurationError

    region = region or (session or boto3.session.Session()).region_name
    if not region:
        raise ConfigurationError("no AWS region for presigned S3 URLs (set AWS_REGION)")
    with _lock:
        maker = session if session is not None else boto3
        return maker.client("s3", region_name=region, endpoint_url=f"https://s3.{region}.{dns_suffix(region)}",
                            config=Config(retries=AWS_RETRIES, signature_version="s3v4",
                                          s3={"addressing_style": "virtual"}))
