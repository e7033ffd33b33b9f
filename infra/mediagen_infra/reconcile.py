"""The reconciler: every 5 minutes, publish the events of terminal jobs left unpublished (the outbox) and
recompute the spend counters from the job records (``mediagen.steps.reconcile``, docs/reliability.md).

:class:`Reconciler` schedules the ``reconcile`` function (created by the pipeline, like every function) with
an EventBridge ``rate(5 minutes)`` rule. Its grants (least privilege) are in ``permissions.py``: the job table
(GetItem, UpdateItem, PutItem for a recomputed counter, Scan: it is the one scheduled reader of the table),
PutEvents on the bus, and StartExecution on the job state machine (for a submitted job whose every start failed).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

#: How often the reconciler runs.
RECONCILE_RATE = Duration.minutes(5)


class Reconciler(Construct):
    """An EventBridge schedule that invokes ``function`` every :data:`RECONCILE_RATE`.

    Attributes:
        rule: the schedule rule.
    """

    def __init__(self, scope: Construct, construct_id: str, *, function: lambda_.IFunction,
                 rate: Duration = RECONCILE_RATE) -> None:
        super().__init__(scope, construct_id)
        self.rule = events.Rule(
            self, "Schedule", description="mediagen: publish unpublished job events, recompute spend counters",
            schedule=events.Schedule.rate(rate))
        # One run at a time is enough; a missed run is made up by the next one.
        self.rule.add_target(events_targets.LambdaFunction(function, retry_attempts=0,
                                                           max_event_age=Duration.minutes(5)))
