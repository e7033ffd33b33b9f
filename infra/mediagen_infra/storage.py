"""The bucket and queue shapes the pipeline creates more than once, so each is secured in one place.

* :func:`private_bucket`: the outputs and intake buckets -- private (``BLOCK_ALL``, owner-enforced), SSE-S3,
  TLS only, versioned, server access logs into the access-logs bucket under a prefix of their own, old versions
  expire after :data:`NONCURRENT_VERSION_EXPIRATION`, unfinished multipart uploads after 7 days.
* :func:`queue_with_dlq`: the jobs and intake queues -- SSE-SQS, TLS only, each with its own dead-letter queue.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from .compliance import skip_checkov

#: Old versions of overwritten or deleted objects are kept this long, then expire.
NONCURRENT_VERSION_EXPIRATION = Duration.days(30)
#: Parts of multipart uploads that never completed are deleted after this long.
INCOMPLETE_UPLOAD_EXPIRATION = Duration.days(7)


def private_bucket(
    scope: Construct,
    construct_id: str,
    *,
    access_logs_bucket: s3.IBucket,
    access_logs_prefix: str,
    removal_policy: RemovalPolicy,
) -> s3.Bucket:
    """A private, SSE-S3, TLS-only, versioned bucket that logs its requests to ``access_logs_bucket``.

    Args:
        scope: parent construct.
        construct_id: construct id.
        access_logs_bucket: the server access logs target (SSE-S3, delivery allowed by its bucket policy).
        access_logs_prefix: where in it this bucket's logs go (e.g. ``outputs/``).
        removal_policy: what happens to the bucket when the stack is deleted or the resource replaced.
    """
    return s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        enforce_ssl=True,
        versioned=True,
        removal_policy=removal_policy,
        server_access_logs_bucket=access_logs_bucket,
        server_access_logs_prefix=access_logs_prefix,
        lifecycle_rules=[s3.LifecycleRule(
            # Results and large inputs arrive in parts: do not pay for parts of uploads that never completed.
            abort_incomplete_multipart_upload_after=INCOMPLETE_UPLOAD_EXPIRATION,
            noncurrent_version_expiration=NONCURRENT_VERSION_EXPIRATION,
        )],
    )


def queue_with_dlq(
    scope: Construct,
    queue_id: str,
    dlq_id: str,
    *,
    visibility_timeout: Duration,
    retention: Duration,
    dlq_retention: Duration,
    max_receive_count: int,
    encryption_comment: str,
) -> tuple[sqs.Queue, sqs.Queue]:
    """An SSE-SQS, TLS-only queue and its own dead-letter queue (created first); returns ``(queue, dlq)``.

    Args:
        scope: parent construct.
        queue_id: construct id of the queue.
        dlq_id: construct id of the dead-letter queue.
        visibility_timeout: the queue's visibility timeout (at least 6x its consumer's timeout).
        retention: how long a message may wait in the queue.
        dlq_retention: how long dead-lettered messages are kept.
        max_receive_count: receives of a message before it moves to the dead-letter queue.
        encryption_comment: why SSE-SQS is the right encryption here (checkov ``CKV_AWS_27`` does not see it).
    """
    dead_letter_queue = sqs.Queue(
        scope,
        dlq_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=dlq_retention,
    )
    queue = sqs.Queue(
        scope,
        queue_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        visibility_timeout=visibility_timeout,
        retention_period=retention,
        dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=max_receive_count, queue=dead_letter_queue),
    )
    for created in (dead_letter_queue, queue):
        skip_checkov(created, "CKV_AWS_27", encryption_comment)
    return queue, dead_letter_queue
