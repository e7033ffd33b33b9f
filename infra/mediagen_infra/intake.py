"""S3 intake: files dropped in a bucket become jobs, and job manifests get a report when their jobs end.

Shapes (the ``intake`` function reads every message of the intake queue)::

    s3://<intake bucket>/jobs/<name>.json          one job document, or a JSON array of them   (a manifest)
    s3://<intake bucket>/jobs/<name>.jsonl         one job document per line                    (a manifest)
    s3://<intake bucket>/inbox/<rule prefix><file> one job per file, built from the inbox rule whose prefix
                                                   matches: {"model": rule.model, "input": rule.input_template
                                                   with {object_url} (the file: its s3:// URI, which submit
                                                   presigns for the provider), {key}, {filename},
                                                   {metadata.NAME} filled in}, results under the rule's
                                                   output_prefix

Resources:

* The intake bucket (private, SSE-S3, TLS only, versioned, owner-enforced, server access logs under ``intake/``
  of the access-logs bucket, old versions expire) -- or yours (notifications are added to it through CDK's
  ``Custom::S3BucketNotifications``, which keeps the notifications it did not create).
* The intake queue (SSE-SQS, TLS only) and its dead-letter queue (after ``max_receive_count`` receives).
* S3 ``OBJECT_CREATED`` notifications to the queue: ``jobs/`` + ``.json``, ``jobs/`` + ``.jsonl``, and one per
  inbox rule, ``inbox/<rule prefix>`` (none without rules).
* An EventBridge rule on the pipeline's bus: every job event (each is a job's terminal transition) goes to the
  same queue, so the intake function marks the job's line done in the manifests it belongs to and writes a
  manifest's report once all its lines have ended. All of them, not only those of jobs that came from a
  manifest: a manifest line may name a job id first sent through another channel (one cheap lookup each).

The consumer (:meth:`S3Intake.consume_with`) reads the queue with partial batch failures and may read the
bucket's objects (``s3:GetObject``, ``s3:GetObjectVersion``); :meth:`S3Intake.grant_read_inputs` gives submit
the same read of the keys ``input_allow`` names (it presigns ``s3://`` inputs that point into the bucket).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from constructs import Construct, IConstruct

from .compliance import acknowledge, acknowledge_wildcard_resource, skip_checkov
from .storage import private_bucket, queue_with_dlq

#: Job manifests are put under this key prefix, with one of :data:`MANIFEST_SUFFIXES`.
JOBS_PREFIX = "jobs/"
MANIFEST_SUFFIXES: tuple[str, ...] = (".json", ".jsonl")
#: Inbox files are put under ``inbox/<rule prefix>``.
INBOX_PREFIX = "inbox/"
#: Prefixes of the intake bucket that jobs' ``s3://`` inputs may name by default (see ``input_allow``).
DEFAULT_INPUT_PREFIXES: tuple[str, ...] = ("inbox/", "inputs/")
#: submit's variable listing the allowed ``s3://bucket/prefix/`` input locations (``mediagen.inputs``).
ENV_INPUT_ALLOW = "MEDIAGEN_INPUT_ALLOW"
#: The intake queue's batch size (issue 15: ``benchmarks/intake_batch.py`` measures a batch of the largest
#: manifests, 2,000 lines each, against the intake function's timeout; see docs/channels.md).
INTAKE_BATCH_SIZE = 10
#: What a consumer of the bucket's objects may do (read a version-pinned object: the notification names it).
OBJECT_READ_ACTIONS: tuple[str, ...] = ("s3:GetObject", "s3:GetObjectVersion")
#: Intake messages are kept this long in the intake queue.
QUEUE_RETENTION = Duration.days(4)

#: The construct id prefix CDK gives its stack-wide S3 notifications handler (a singleton per stack).
_NOTIFICATIONS_HANDLER_PREFIX = "BucketNotificationsHandler"
_QUEUE_ENCRYPTION_COMMENT = (
    "Encrypted at rest with SSE-SQS (SqsManagedSseEnabled: true), which this check does not recognise; SSE-SQS "
    "needs no key policy, so S3 and EventBridge can send to the queue."
)


class S3Intake(Construct):
    """The intake bucket (or yours), its queue and DLQ, its notifications and the manifest-report rule.

    Args:
        scope: parent construct (the pipeline).
        construct_id: construct id.
        event_bus: the pipeline's job event bus.
        event_source: the ``source`` of the pipeline's job events (``MEDIAGEN_EVENT_SOURCE``, ``mediagen``).
        inbox_prefixes: the inbox rules' prefixes (each ends with ``/``; none is a prefix of another).
        visibility_timeout: the intake queue's visibility timeout (at least 6x the consumer's timeout).
        bucket: an existing intake bucket; ``None`` creates one.
        access_logs_bucket: where a created bucket writes its server access logs (prefix ``intake/``); required
            when ``bucket`` is ``None``.
        max_receive_count: receives of an intake message before it moves to the dead-letter queue.
        dlq_retention: how long dead-lettered intake messages are kept.
        removal_policy: what happens to a created bucket when the stack is deleted.
        outputs_bucket: the pipeline's outputs bucket; it may not be the intake bucket (the intake would read
            back the results and reports mediagen writes there as new jobs).
        input_allow: the ``s3://bucket/prefix/`` locations jobs' ``s3://`` inputs may name (submit's
            ``MEDIAGEN_INPUT_ALLOW``); ``None``: the intake bucket's :data:`DEFAULT_INPUT_PREFIXES`.

    Attributes:
        bucket: the intake bucket.
        queue: the intake queue.
        dead_letter_queue: its dead-letter queue.
        manifest_events_rule: the EventBridge rule sending manifest jobs' events to the queue.
        input_allow: the allowed input locations (:attr:`input_allow_env` joins them for the environment).

    Raises:
        ValueError: ``bucket`` and ``access_logs_bucket`` are both ``None``; ``bucket`` is ``outputs_bucket``;
            an ``input_allow`` entry is not ``s3://<bucket>/<prefix>/``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        event_bus: events.IEventBus,
        event_source: str,
        inbox_prefixes: Sequence[str],
        visibility_timeout: Duration,
        bucket: s3.IBucket | None = None,
        access_logs_bucket: s3.IBucket | None = None,
        max_receive_count: int = 5,
        dlq_retention: Duration | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        outputs_bucket: s3.IBucket | None = None,
        input_allow: Sequence[str] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        if bucket is not None and outputs_bucket is not None and _same_bucket(bucket, outputs_bucket):
            raise ValueError(
                f"intake_bucket and outputs_bucket are the same bucket ({bucket.bucket_name}): the intake would "
                "read back the results and reports mediagen writes to the outputs bucket as new jobs; give the "
                "intake its own bucket (or leave intake_bucket unset to create one)")
        for entry in input_allow or ():
            if not Token.is_unresolved(entry):
                _check_input_location(entry)
        if bucket is None:
            if access_logs_bucket is None:
                raise ValueError("a created intake bucket needs an access_logs_bucket for its server access logs")
            bucket = private_bucket(self, "Bucket", access_logs_bucket=access_logs_bucket,
                                    access_logs_prefix="intake/", removal_policy=removal_policy)
        self.bucket: s3.IBucket = bucket
        self.input_allow: list[str] = (list(input_allow) if input_allow is not None else
                                       [f"s3://{bucket.bucket_name}/{prefix}" for prefix in DEFAULT_INPUT_PREFIXES])
        self.input_prefixes = _input_prefixes(bucket, input_allow)

        self.queue, self.dead_letter_queue = queue_with_dlq(
            self,
            "Queue",
            "Dlq",
            visibility_timeout=visibility_timeout,
            retention=QUEUE_RETENTION,
            dlq_retention=dlq_retention or Duration.days(14),
            max_receive_count=max_receive_count,
            encryption_comment=_QUEUE_ENCRYPTION_COMMENT,
        )

        # The S3 -> SQS notifications; CDK adds the queue policy that lets this bucket (only) send.
        destination = s3n.SqsDestination(self.queue)
        for suffix in MANIFEST_SUFFIXES:
            self.bucket.add_event_notification(
                s3.EventType.OBJECT_CREATED, destination, s3.NotificationKeyFilter(prefix=JOBS_PREFIX, suffix=suffix)
            )
        for prefix in inbox_prefixes:
            self.bucket.add_event_notification(
                s3.EventType.OBJECT_CREATED, destination, s3.NotificationKeyFilter(prefix=INBOX_PREFIX + prefix)
            )
        _acknowledge_notifications_handler(Stack.of(self))

        # Job events: the consumer marks manifest lines done and writes a manifest's report when all are done.
        self.manifest_events_rule = events.Rule(
            self,
            "ManifestJobEvents",
            description="mediagen: job events -> the intake queue (manifest lines done, manifest reports)",
            event_bus=event_bus,
            event_pattern=events.EventPattern(source=[event_source]),
        )
        self.manifest_events_rule.add_target(events_targets.SqsQueue(self.queue))

    @property
    def input_allow_env(self) -> str:
        """:attr:`input_allow` as submit's ``MEDIAGEN_INPUT_ALLOW`` (comma-separated)."""
        return ",".join(self.input_allow)

    def consume_with(self, function: lambda_.Function, *, batch_size: int = INTAKE_BATCH_SIZE) -> None:
        """Let ``function`` consume the intake queue (partial batch failures) and read the bucket's objects."""
        function.add_event_source(
            event_sources.SqsEventSource(self.queue, batch_size=batch_size, report_batch_item_failures=True)
        )
        self.grant_read_objects(
            function,
            "The intake function reads the manifest or inbox file each S3 notification names; any key under "
            "jobs/ or inbox/ may arrive, so the object ARN ends in /*. Read only (GetObject, GetObjectVersion): "
            "no list, write or delete.",
        )

    def grant_read_objects(self, function: lambda_.IFunction, reason: str, *, prefixes: Sequence[str] = ("",)) -> None:
        """``s3:GetObject`` and ``s3:GetObjectVersion`` on the bucket's objects under ``prefixes`` (default: every
        object; none: no grant) plus ``kms:Decrypt`` when the bucket is yours with its ``encryption_key``; each
        ``<prefix>*`` acknowledged with ``reason``."""
        if not prefixes:
            return
        objects = [self.bucket.arn_for_objects(f"{prefix}*") for prefix in dict.fromkeys(prefixes)]
        function.add_to_role_policy(iam.PolicyStatement(actions=list(OBJECT_READ_ACTIONS), resources=objects))
        if self.bucket.encryption_key is not None:
            self.bucket.encryption_key.grant(function, "kms:Decrypt")
        if function.role is None:  # build_function gives every function its own role: never None
            raise RuntimeError(f"{function.node.path} has no execution role")
        for resource in objects:
            acknowledge_wildcard_resource(function.role, resource, reason)

    def grant_read_inputs(self, function: lambda_.IFunction, reason: str) -> None:
        """:meth:`grant_read_objects` limited to :attr:`input_prefixes` (the keys of this bucket ``input_allow``
        names: what submit may presign), or every object when they are not known at synth time."""
        self.grant_read_objects(function, reason, prefixes=("",) if self.input_prefixes is None else
                                self.input_prefixes)


def _input_prefixes(bucket: s3.IBucket, input_allow: Sequence[str] | None) -> tuple[str, ...] | None:
    """The key prefixes of ``bucket`` that ``input_allow`` names (``""``: the whole bucket; none: it names only
    other buckets), or None when that is not known at synth time (a created bucket's name, a token entry)."""
    from mediagen.inputs import parse_input_allow

    if input_allow is None:
        return DEFAULT_INPUT_PREFIXES
    name = bucket.bucket_name
    if Token.is_unresolved(name) or any(Token.is_unresolved(entry) for entry in input_allow):
        return None
    locations = parse_input_allow(",".join(input_allow))
    return tuple(dict.fromkeys(location.prefix for location in locations if location.bucket == name))


def _check_input_location(entry: str) -> None:
    """Refuse at synth time an ``input_allow`` entry submit would refuse at run time
    (:func:`mediagen.inputs.parse_input_allow`: a ``.`` or ``..`` segment, a query, a prefix not ending in ``/``),
    and one that is not a single location once the entries are joined with commas.

    Raises:
        ValueError: names ``input_allow`` and the entry.
    """
    from mediagen.errors import ConfigurationError
    from mediagen.inputs import parse_input_allow

    problem = f"input_allow: {entry!r} is not s3://<bucket>/<prefix>/ (the prefix ends with '/'"
    if not re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/([^,\s]*/)?", entry):
        raise ValueError(f"{problem})")
    try:
        parse_input_allow(entry)
    except ConfigurationError as exc:
        raise ValueError(f"{problem}; no '.' or '..' segment, no query): submit would refuse it") from exc


def _same_bucket(a: s3.IBucket, b: s3.IBucket) -> bool:
    """Whether two bucket constructs name one bucket (the same construct, or the same literal name)."""
    if a is b:
        return True
    names = (a.bucket_name, b.bucket_name)
    return not any(Token.is_unresolved(n) for n in names) and names[0] == names[1]


def _acknowledge_notifications_handler(stack: Stack) -> None:
    """Answer the findings of CDK's stack-wide S3 notifications handler (created by ``add_event_notification``).

    CDK creates one such function per stack (``Custom::S3BucketNotifications``: it calls
    ``PutBucketNotificationConfiguration`` at deploy time only); its code and role are CDK's. Each bucket adds
    its own ``s3:PutBucketNotification`` statement on that bucket's ARN to the role (no wildcard).
    """
    handlers = [c for c in stack.node.children if c.node.id.startswith(_NOTIFICATIONS_HANDLER_PREFIX)]
    for handler in handlers:
        _acknowledge_handler(handler)


def _acknowledge_handler(handler: IConstruct) -> None:
    acknowledge(
        handler, "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                 "AWSLambdaBasicExecutionRole]",
        "CDK's S3 bucket notifications handler (a singleton per stack, run only while CloudFormation deploys) "
        "comes with AWSLambdaBasicExecutionRole for its logs; its role is CDK's and cannot be narrowed from here.",
    )
    function = handler.node.try_find_child("Resource")
    if function is not None:
        skip_checkov(function, "CKV_AWS_115",
                     "CDK's S3 notifications handler runs once per deploy (a CloudFormation custom resource): "
                     "reserved concurrency would only carve capacity out of the account pool.")
        skip_checkov(function, "CKV_AWS_116",
                     "CDK's S3 notifications handler is invoked synchronously by CloudFormation's custom resource "
                     "provider, which reports a failure as a failed deploy; a DLQ would never receive anything.")
        skip_checkov(function, "CKV_AWS_117",
                     "CDK's S3 notifications handler calls only the public S3 API "
                     "(PutBucketNotificationConfiguration); a VPC would only add NAT gateways and cost.")
