"""The sweeper: every 15 minutes, RECEIVED jobs the jobs queue never got go back on it.

A channel that answers before submitting (the jobs API, the S3 intake) records a job RECEIVED, then sends it to
the jobs queue; when that send is refused (the API's 503, an intake batch that failed until its message was
dead-lettered) the record stays RECEIVED and nothing would ever take it up. An EventBridge schedule
(``rate(15 minutes)``) invokes the ``sweep`` function (``functions/sweep/app.py`` ->
``mediagen.intake.sweep_stale_received``), which re-enqueues RECEIVED jobs older than 15 minutes that submit
never claimed, at most 200 per run, each at most once per period.

Its role is the only one that may ``dynamodb:Scan`` the job table (the table has no status index; one bounded
scan every 15 minutes): :data:`SWEEP_TABLE_ACTIONS` on the job table and ``sqs:SendMessage`` on the jobs queue,
nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from .lambdas import ARCHITECTURE, FunctionSpec, build_function
from .monitoring import Telemetry

SWEEP = FunctionSpec("sweep", "mediagen: put RECEIVED jobs a refused queue send left behind back on the jobs queue",
                     timeout_seconds=120, memory_mb=256)
#: What the sweep function may do on the job table: find RECEIVED records (Scan), read and mark them.
SWEEP_TABLE_ACTIONS: tuple[str, ...] = ("dynamodb:Scan", "dynamodb:GetItem", "dynamodb:UpdateItem")
#: What it may do on the jobs queue (SendMessageBatch is authorised by sqs:SendMessage).
SWEEP_QUEUE_ACTIONS: tuple[str, ...] = ("sqs:SendMessage",)
#: How often the sweep runs, and the minimum age of a job it re-enqueues.
SWEEP_EVERY = Duration.minutes(15)
SWEEP_OLDER_THAN = Duration.minutes(15)


class StaleJobSweeper(Construct):
    """An EventBridge schedule -> the ``sweep`` function, with a least-privilege role.

    Args:
        scope: parent construct.
        construct_id: construct id.
        table: the job table.
        jobs_queue: the jobs queue (SSE-SQS or unencrypted: no KMS grant is made).
        source_root, layers, environment, log_retention, log_removal_policy, architecture, telemetry: as
            :func:`mediagen_infra.lambdas.build_function` (``environment`` must hold ``MEDIAGEN_TASK_TABLE`` and
            ``MEDIAGEN_JOBS_QUEUE_URL``).
        every: the schedule's rate (default 15 minutes).
        older_than: the minimum age of a RECEIVED job re-enqueued (default 15 minutes).

    Attributes:
        function: the ``sweep`` function.
        rule: the schedule.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        table: dynamodb.ITable,
        jobs_queue: sqs.IQueue,
        source_root: Path,
        layers: Sequence[lambda_.ILayerVersion],
        environment: Mapping[str, str],
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        log_removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        architecture: lambda_.Architecture = ARCHITECTURE,
        telemetry: Telemetry | None = None,
        every: Duration = SWEEP_EVERY,
        older_than: Duration = SWEEP_OLDER_THAN,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = build_function(
            self, SWEEP, source_root=source_root, layers=layers, environment=environment,
            log_retention=log_retention, log_removal_policy=log_removal_policy, architecture=architecture,
            telemetry=telemetry,
        )
        table.grant(self.function, *SWEEP_TABLE_ACTIONS)
        self.function.add_to_role_policy(iam.PolicyStatement(actions=list(SWEEP_QUEUE_ACTIONS),
                                                             resources=[jobs_queue.queue_arn]))
        self.rule = events.Rule(
            self, "Schedule", schedule=events.Schedule.rate(every),
            description="mediagen: re-enqueue RECEIVED jobs a refused queue send left behind",
        )
        self.rule.add_target(events_targets.LambdaFunction(
            self.function,
            event=events.RuleTargetInput.from_object({"older_than_seconds": int(older_than.to_seconds())}),
            # A missed run is caught up by the next one: no long retries.
            retry_attempts=2, max_event_age=Duration.minutes(10),
        ))
