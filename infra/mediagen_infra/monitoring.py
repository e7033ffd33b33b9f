"""Alarms and a CloudWatch dashboard for one pipeline: what an operator wants to hear before users do.

Alarms (keys of :attr:`PipelineMonitoring.alarms`; each notifies the alarm topic when it fires *and* when it
recovers; missing data is "not breaching", so an idle pipeline stays green):

======================================  ===========================================================  ===========
key                                     metric                                                       fires when
======================================  ===========================================================  ===========
``DlqNotEmpty``                         DLQ ``ApproximateNumberOfMessagesVisible`` (Maximum, 5 min)  >= 1
``OldestJobTooOld``                     jobs queue ``ApproximateAgeOfOldestMessage`` (Max, 5 min)    >= the prop
``IntakeDlqNotEmpty``                   intake DLQ ``ApproximateNumberOfMessagesVisible`` (Max)      >= 1
``ExecutionsFailed``                    state machine ``ExecutionsFailed`` (Sum, 5 min)              >= 1
``ExecutionsTimedOut``                  state machine ``ExecutionsTimedOut`` (Sum, 5 min)            >= 1
``JobsPastDeadline``                    ``<namespace>/JobsTimedOut`` (Sum, 5 min)                    > 0
``DailyCreditBudgetNearlySpent``        ``<namespace>/DailyCreditsSpent`` (Maximum, 5 min)           >= 80 % of
                                                                                                     the budget
``ClipiaDailyCreditBudgetNearlySpent``  the same, dimension ``provider=clipia`` (Clipia's credits)   >= 80 % of
                                                                                                     Clipia's
``<Function>Errors``                    Lambda ``Errors`` per function (Sum, 5 min)                  >= 1
``<Function>Throttles``                 Lambda ``Throttles`` per function (Sum, 5 min)               >= 1
======================================  ===========================================================  ===========

A budget alarm exists only when that provider's daily credit budget is set (each provider's credits are its own
series, never added together); the intake DLQ alarm only with an intake.
Custom metrics are the handlers' Powertools EMF metrics, in the namespace and with the ``service`` dimension of
the pipeline's :class:`Telemetry` (``JobsRejected`` also carries a ``reason`` dimension). The functions get the
same two values as ``POWERTOOLS_METRICS_NAMESPACE`` / ``POWERTOOLS_SERVICE_NAME``, so alarms and dashboard
watch exactly what the handlers emit. ``MediaGen-<stage>`` uses ``MediaGen/<stage>`` and ``mediagen-<stage>``
(:meth:`Telemetry.for_stage`), so two stages in one account never mix their figures; an embedding app's
default is ``MediaGen`` / ``mediagen``.

When no topic is given, one is created: encrypted with its own customer-managed KMS key (CloudWatch cannot
publish to a topic encrypted with the AWS managed ``alias/aws/sns`` key), TLS-only, and publishable by
CloudWatch alarms of this account only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

#: Default namespace of the handlers' business metrics (``mediagen.observability``), and the prefix of a stage's.
METRICS_NAMESPACE = "MediaGen"
#: Default ``service`` dimension Powertools adds to every business metric (``POWERTOOLS_SERVICE_NAME``), and the
#: prefix of a stage's.
SERVICE_NAME = "mediagen"
#: A CloudWatch namespace: up to 255 of these characters (and not under ``AWS/``, which is AWS's own).
_NAMESPACE = re.compile(r"[A-Za-z0-9.\-_/#:]{1,255}")
_SERVICE = re.compile(r"[A-Za-z0-9._-]{1,64}")
#: Period of every alarm and graph.
PERIOD = Duration.minutes(5)

#: Business metrics counted per job outcome (graphed together).
OUTCOME_METRICS = ("JobsSubmitted", "JobsSucceeded", "JobsFailed", "JobsPipelineFailed", "JobsTimedOut",
                   "JobsOutcomeUnknown")


@dataclass(frozen=True)
class Telemetry:
    """Where a pipeline's business metrics go: the CloudWatch namespace and the Powertools ``service`` name.

    Attributes:
        namespace: CloudWatch namespace (letters, digits, ``. - _ / # :``; at most 255; not ``AWS/...``).
        service: the ``service`` dimension of every metric, and the service name in log lines and traces
            (letters, digits, ``. _ -``; at most 64).

    Raises:
        ValueError: a value CloudWatch would reject (the message names the field).
    """

    namespace: str = METRICS_NAMESPACE
    service: str = SERVICE_NAME

    def __post_init__(self) -> None:
        if not _NAMESPACE.fullmatch(self.namespace) or self.namespace.startswith("AWS/"):
            raise ValueError(f"telemetry namespace {self.namespace!r}: use up to 255 letters, digits and . - _ / # :, "
                             "not starting with AWS/")
        if not _SERVICE.fullmatch(self.service):
            raise ValueError(f"telemetry service {self.service!r}: use up to 64 letters, digits and . _ -")

    @classmethod
    def for_stage(cls, stage: str) -> Telemetry:
        """``MediaGen/<stage>`` and ``mediagen-<stage>``: the telemetry of stack ``MediaGen-<stage>``."""
        return cls(namespace=f"{METRICS_NAMESPACE}/{stage}", service=f"{SERVICE_NAME}-{stage}")

    @property
    def environment(self) -> dict[str, str]:
        """The function environment that makes Powertools emit into this namespace, with this service."""
        return {"POWERTOOLS_METRICS_NAMESPACE": self.namespace, "POWERTOOLS_SERVICE_NAME": self.service}


def job_metric(name: str, statistic: str = "Sum", *, label: str | None = None,
               telemetry: Telemetry | None = None, provider: str | None = None) -> cloudwatch.Metric:
    """A business metric of the handlers (``telemetry``'s namespace and ``service``), per 5 minutes; with
    ``provider``, that provider's own series (the ``provider`` dimension, as ``DailyCreditsSpent`` for Clipia)."""
    telemetry = telemetry or Telemetry()
    return cloudwatch.Metric(
        namespace=telemetry.namespace,
        metric_name=name,
        dimensions_map={"service": telemetry.service, **({"provider": provider} if provider else {})},
        statistic=statistic,
        period=PERIOD,
        label=label,
    )


def rejected_by_reason(telemetry: Telemetry | None = None) -> cloudwatch.MathExpression:
    """``JobsRejected`` summed per ``reason`` dimension value (one line per reason seen)."""
    telemetry = telemetry or Telemetry()
    search = (f"SEARCH('{{{telemetry.namespace},reason,service}} MetricName=\"JobsRejected\" "
              f"service=\"{telemetry.service}\"', 'Sum', {int(PERIOD.to_seconds())})")
    return cloudwatch.MathExpression(expression=search, using_metrics={}, label="rejected", period=PERIOD)


def budget_alarm_threshold(daily_credit_budget: int, fraction: float) -> int:
    """The ``DailyCreditsSpent`` value the budget alarm fires at: ``ceil(fraction × budget)``, at least 1."""
    return max(1, math.ceil(daily_credit_budget * fraction))


class PipelineMonitoring(Construct):
    """The alarm set, the alarm topic (given or created) and the dashboard of one pipeline.

    Args:
        scope: the pipeline construct.
        construct_id: construct id.
        functions: the pipeline functions by name (``submit``, ``poll``, ...).
        state_machine: the per-job state machine.
        jobs_queue: the jobs queue.
        dead_letter_queue: its dead-letter queue.
        alarm_topic: where alarms notify; ``None`` creates an encrypted topic.
        oldest_message_age: ``OldestJobTooOld`` fires when a job message waits this long.
        daily_credit_budget: Cliprise credits per UTC day, or ``None`` (no budget alarm).
        budget_alarm_fraction: share of a budget at which its ``...DailyCreditBudgetNearlySpent`` alarm fires.
        clipia_daily_credit_budget: Clipia credits per UTC day, or ``None`` (no Clipia budget alarm).
        dashboard: whether to create the dashboard.
        intake_dead_letter_queue: the S3 intake's dead-letter queue, or ``None`` (no intake alarm).
        telemetry: namespace and ``service`` of the business metrics (default ``MediaGen`` / ``mediagen``).

    Attributes:
        telemetry: the namespace and ``service`` the alarms and graphs watch.
        topic: the alarm topic.
        alarms: the alarms by key (see the module docstring).
        dashboard: the dashboard, or ``None``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Mapping[str, lambda_.IFunction],
        state_machine: sfn.IStateMachine,
        jobs_queue: sqs.IQueue,
        dead_letter_queue: sqs.IQueue,
        alarm_topic: sns.ITopic | None,
        oldest_message_age: Duration,
        daily_credit_budget: int | None,
        budget_alarm_fraction: float,
        dashboard: bool = True,
        intake_dead_letter_queue: sqs.IQueue | None = None,
        telemetry: Telemetry | None = None,
        clipia_daily_credit_budget: int | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.telemetry = telemetry or Telemetry()
        self.topic = alarm_topic or self._create_topic()

        alarms: dict[str, cloudwatch.Alarm] = {}

        def alarm(key: str, metric: cloudwatch.IMetric, threshold: float, description: str, *,
                  operator: cloudwatch.ComparisonOperator = (
                      cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD)) -> None:
            created = cloudwatch.Alarm(
                self,
                key,
                metric=metric,
                threshold=threshold,
                comparison_operator=operator,
                evaluation_periods=1,
                datapoints_to_alarm=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description=f"mediagen {Stack.of(self).stack_name}: {description}",
            )
            created.add_alarm_action(cw_actions.SnsAction(self.topic))
            created.add_ok_action(cw_actions.SnsAction(self.topic))
            alarms[key] = created

        alarm("DlqNotEmpty",
              dead_letter_queue.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
              1, "job messages reached the dead-letter queue (never submitted): inspect and redrive them")
        alarm("OldestJobTooOld",
              jobs_queue.metric_approximate_age_of_oldest_message(period=PERIOD, statistic="Maximum"),
              oldest_message_age.to_seconds(),
              f"a job message has waited {int(oldest_message_age.to_seconds())} s or more in the jobs queue "
              "(submit failing, throttled, or waiting for an in-flight slot)")
        if intake_dead_letter_queue is not None:
            alarm("IntakeDlqNotEmpty",
                  intake_dead_letter_queue.metric_approximate_number_of_messages_visible(
                      period=PERIOD, statistic="Maximum"),
                  1, "intake messages (S3 notifications of manifests or inbox files, manifest job events) reached "
                     "the intake dead-letter queue: those files were not turned into jobs or reported")
        alarm("ExecutionsFailed", state_machine.metric_failed(period=PERIOD, statistic="Sum"), 1,
              "job executions failed (PIPELINE_FAILED: see the job record's error)")
        alarm("ExecutionsTimedOut", state_machine.metric_timed_out(period=PERIOD, statistic="Sum"), 1,
              "job executions hit the state machine's backstop timeout")
        alarm("JobsPastDeadline", self._metric("JobsTimedOut"), 0,
              "jobs passed their deadline without a provider result (TIMED_OUT)",
              operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD)
        if daily_credit_budget:
            threshold = budget_alarm_threshold(daily_credit_budget, budget_alarm_fraction)
            alarm("DailyCreditBudgetNearlySpent", self._metric("DailyCreditsSpent", "Maximum"), threshold,
                  f"{threshold} of today's {daily_credit_budget} credits are committed (UTC day); further jobs "
                  "are rejected once the budget is spent")
        if clipia_daily_credit_budget:
            threshold = budget_alarm_threshold(clipia_daily_credit_budget, budget_alarm_fraction)
            alarm("ClipiaDailyCreditBudgetNearlySpent",
                  job_metric("DailyCreditsSpent", "Maximum", telemetry=self.telemetry, provider="clipia"), threshold,
                  f"{threshold} of today's {clipia_daily_credit_budget} Clipia credits are committed (UTC day); "
                  "further Clipia jobs are rejected once that budget is spent")
        for name, function in functions.items():
            title = name.title()
            alarm(f"{title}Errors", function.metric_errors(period=PERIOD, statistic="Sum"), 1,
                  f"the {name} function raised errors")
            alarm(f"{title}Throttles", function.metric_throttles(period=PERIOD, statistic="Sum"), 1,
                  f"the {name} function was throttled")
        self.alarms = alarms

        self.dashboard = (
            self._create_dashboard(functions, state_machine, jobs_queue, dead_letter_queue, daily_credit_budget,
                                   budget_alarm_fraction, intake_dead_letter_queue)
            if dashboard else None
        )

    def _metric(self, name: str, statistic: str = "Sum", *, label: str | None = None) -> cloudwatch.Metric:
        """:func:`job_metric` in this pipeline's namespace, with its ``service``."""
        return job_metric(name, statistic, label=label, telemetry=self.telemetry)

    def _create_topic(self) -> sns.Topic:
        """An SNS topic only this account's CloudWatch alarms may publish to, encrypted, TLS only."""
        stack = Stack.of(self)
        key = kms.Key(
            self,
            "AlarmTopicKey",
            description=f"mediagen {stack.stack_name}: encrypts the alarm topic",
            enable_key_rotation=True,
            # Only encrypts notifications in flight through SNS: nothing stored needs it after the stack is gone.
            removal_policy=RemovalPolicy.DESTROY,
            pending_window=Duration.days(7),
        )
        key.add_to_resource_policy(iam.PolicyStatement(
            sid="CloudWatchAlarmsPublishToTheEncryptedTopic",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            # As AWS documents for alarms on an encrypted topic (re:Post knowledge center,
            # "cloudwatch-configure-alarm-sns"); in a key policy, "*" is this key.
            actions=["kms:Decrypt", "kms:GenerateDataKey*"],
            resources=["*"],
            conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
        ))
        topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name=f"mediagen alarms ({stack.stack_name})",
            master_key=key,
            enforce_ssl=True,
        )
        topic.add_to_resource_policy(iam.PolicyStatement(
            sid="CloudWatchAlarmsOfThisAccount",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            conditions={
                "StringEquals": {"aws:SourceAccount": stack.account},
                "ArnLike": {"aws:SourceArn": stack.format_arn(
                    service="cloudwatch", resource="alarm", resource_name="*",
                    arn_format=ArnFormat.COLON_RESOURCE_NAME)},
            },
        ))
        return topic

    def _create_dashboard(
        self,
        functions: Mapping[str, lambda_.IFunction],
        state_machine: sfn.IStateMachine,
        jobs_queue: sqs.IQueue,
        dead_letter_queue: sqs.IQueue,
        daily_credit_budget: int | None,
        budget_alarm_fraction: float,
        intake_dead_letter_queue: sqs.IQueue | None,
    ) -> cloudwatch.Dashboard:
        stack_name = Stack.of(self).stack_name
        dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=Duration.hours(24))
        budget_lines = []
        if daily_credit_budget:
            budget_lines = [
                cloudwatch.HorizontalAnnotation(value=daily_credit_budget, label="daily budget"),
                cloudwatch.HorizontalAnnotation(
                    value=budget_alarm_threshold(daily_credit_budget, budget_alarm_fraction), label="alarm"),
            ]
        dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=f"# mediagen {stack_name}\nJobs, spend, queue, executions and functions; "
                         "every figure per 5 minutes. Alarms notify the alarm topic.",
                width=24, height=2),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Jobs by outcome", width=8,
                                   left=[self._metric(name, label=name.removeprefix("Jobs"))
                                         for name in OUTCOME_METRICS]),
            cloudwatch.GraphWidget(title="Jobs rejected, by reason", width=8,
                                   left=[rejected_by_reason(self.telemetry)]),
            cloudwatch.GraphWidget(
                title="Credits", width=8,
                left=[self._metric("CreditsSpent", label="spent (estimates of submitted jobs)"),
                      self._metric("DailyCreditsSpent", "Maximum", label="committed today (UTC)")],
                left_annotations=budget_lines),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Detection lag (provider done -> pipeline knows), ms", width=8,
                left=[self._metric("DetectionLagMs", stat, label=stat) for stat in ("p50", "p90", "Maximum")]),
            cloudwatch.GraphWidget(
                title="Status checks per job", width=8,
                left=[self._metric("PollsPerJob", stat, label=stat) for stat in ("Average", "Maximum")]),
            cloudwatch.GraphWidget(
                title="Bytes persisted / callbacks", width=8,
                left=[self._metric("BytesPersisted", label="bytes persisted")],
                right=[self._metric("CallbacksReceived", label="callbacks received")]),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Jobs queue", width=8,
                left=[jobs_queue.metric_approximate_number_of_messages_visible(
                          period=PERIOD, statistic="Maximum", label="waiting"),
                      jobs_queue.metric_approximate_number_of_messages_not_visible(
                          period=PERIOD, statistic="Maximum", label="being submitted")],
                right=[jobs_queue.metric_approximate_age_of_oldest_message(
                           period=PERIOD, statistic="Maximum", label="oldest message age (s)")]),
            cloudwatch.GraphWidget(
                title="Dead-letter queues", width=8,
                left=[dead_letter_queue.metric_approximate_number_of_messages_visible(
                          period=PERIOD, statistic="Maximum", label="dead-lettered jobs"),
                      *([intake_dead_letter_queue.metric_approximate_number_of_messages_visible(
                          period=PERIOD, statistic="Maximum", label="dead-lettered intake messages")]
                        if intake_dead_letter_queue is not None else [])]),
            cloudwatch.GraphWidget(
                title="Job executions", width=8,
                left=[state_machine.metric_started(period=PERIOD, statistic="Sum", label="started"),
                      state_machine.metric_succeeded(period=PERIOD, statistic="Sum", label="succeeded"),
                      state_machine.metric_failed(period=PERIOD, statistic="Sum", label="failed"),
                      state_machine.metric_timed_out(period=PERIOD, statistic="Sum", label="timed out")]),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Function errors", width=8,
                left=[fn.metric_errors(period=PERIOD, statistic="Sum", label=name) for name, fn in functions.items()]),
            cloudwatch.GraphWidget(
                title="Function throttles", width=8,
                left=[fn.metric_throttles(period=PERIOD, statistic="Sum", label=name)
                      for name, fn in functions.items()]),
            cloudwatch.GraphWidget(
                title="Function duration p90 (ms)", width=8,
                left=[fn.metric_duration(period=PERIOD, statistic="p90", label=name)
                      for name, fn in functions.items()]),
        )
        dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms.values()), width=24, height=4),
        )
        return dashboard
