"""The per-job workflow: a Standard state machine that waits for a callback or a timeout, checks the
provider's status, persists, or records a failure.

The local stack executes this exact definition (taken from ``cdk.out``) on moto, and the handlers
implement its I/O contract, so state names and paths are part of the contract::

    WaitForResult (arm, lambda:invoke.waitForTaskToken, TimeoutSecondsPath $.wait_seconds, ResultPath null)
        payload {"job_id", "task_token": $$.Task.Token, "wait_seconds"}
        Catch States.Timeout -> CheckStatus (ResultPath null: the state is unchanged)
        Catch States.ALL     -> RecordFailure (ResultPath $.error)
      -> CheckStatus (poll; Catch States.ALL -> RecordFailure, ResultPath $.error)
      -> Route (Choice on $.phase, a mediagen.steps.phases.Phase)
           "processing" -> WaitForResult
           "ready"      -> Persist (persist; Catch States.ALL -> RecordFailure) -> JobSucceeded
           otherwise    -> JobEnded            (poll already recorded FAILED / TIMED_OUT itself)
    RecordFailure (finalize; Retry States.ALL x3, 2 s, backoff 2) -> PipelineFailed

Execution input (written by submit)::

    {"job_id", "provider_task_id", "model", "modality", "deadline": <epoch s>, "wait_seconds": <int>, "polls": 0}

``WaitForResult`` ends early when the ``callback`` function (or ``arm`` itself, when a callback already
arrived) sends ``SendTaskSuccess`` with the stored token; otherwise it ends with ``States.Timeout`` after
``$.wait_seconds``. Either way the next state is ``CheckStatus`` with the state unchanged: a callback is
only a hint, the status endpoint is the truth. ``$.wait_seconds`` must be a positive integer (a
``TimeoutSecondsPath`` rule; anything else is a ``States.Runtime`` error, which no ``Catch`` handles).

``CheckStatus``, ``Persist`` and ``RecordFailure`` receive the whole state as their payload and their
return value becomes the next state.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from mediagen.steps.phases import Phase

from .compliance import skip_log_group_checks

# State names (the contract with the handlers and the local stack).
WAIT_FOR_RESULT = "WaitForResult"
CHECK_STATUS = "CheckStatus"
ROUTE = "Route"
PERSIST = "Persist"
RECORD_FAILURE = "RecordFailure"
JOB_ENDED = "JobEnded"
JOB_SUCCEEDED = "JobSucceeded"
PIPELINE_FAILED = "PipelineFailed"

#: The state field the poll step writes its :class:`~mediagen.steps.phases.Phase` into (``Route`` reads it).
PHASE_PATH = "$.phase"

#: Where a caught error is put in the state before ``RecordFailure`` runs.
ERROR_RESULT_PATH = "$.error"
#: The state field holding the seconds to wait before the next status check (set by submit and poll).
WAIT_SECONDS_PATH = "$.wait_seconds"


def _invoke(scope: Construct, state_name: str, function: lambda_.IFunction) -> tasks.LambdaInvoke:
    """A Lambda task that sends the whole state and continues with the function's return value.

    CDK's default retries on Lambda service exceptions are kept.
    """
    return tasks.LambdaInvoke(
        scope,
        state_name,
        lambda_function=function,
        payload=sfn.TaskInput.from_json_path_at("$"),
        output_path="$.Payload",
    )


class JobWorkflow(Construct):
    """The Standard state machine that drives one job from submitted to a terminal status.

    Args:
        scope: parent construct.
        construct_id: construct id.
        arm: the ``arm`` function (``WaitForResult``: stores the task token).
        poll: the ``poll`` function (``CheckStatus``).
        persist: the ``persist`` function (``Persist``).
        finalize: the ``finalize`` function (``RecordFailure``).
        timeout: execution-level backstop; the poll step enforces the per-job deadline itself.
        log_retention: retention of the execution log group (every event, never the execution data: state
            payloads carry job requests and provider URLs).
        log_removal_policy: what happens to the execution log group when the stack is deleted.

    Each Lambda task has no ``TimeoutSeconds`` of its own: it lasts at most the function's timeout (poll 30 s,
    persist 900 s, finalize 30 s), well inside ``timeout``.

    Attributes:
        state_machine: the state machine.
        execution_logs: its log group.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        arm: lambda_.IFunction,
        poll: lambda_.IFunction,
        persist: lambda_.IFunction,
        finalize: lambda_.IFunction,
        timeout: Duration,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        log_removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        super().__init__(scope, construct_id)

        pipeline_failed = sfn.Fail(self, PIPELINE_FAILED, error="PipelineFailed", cause="see the job record")
        record_failure = _invoke(self, RECORD_FAILURE, finalize)
        record_failure.add_retry(
            errors=[sfn.Errors.ALL], max_attempts=3, interval=Duration.seconds(2), backoff_rate=2
        )
        record_failure.next(pipeline_failed)

        check_status = _invoke(self, CHECK_STATUS, poll)
        check_status.add_catch(record_failure, errors=[sfn.Errors.ALL], result_path=ERROR_RESULT_PATH)

        # Callback or timeout: arm stores the token; the callback function (or arm) sends SendTaskSuccess.
        # Both endings lead to CheckStatus with the state as it was (the arm result is discarded).
        wait = tasks.LambdaInvoke(
            self,
            WAIT_FOR_RESULT,
            lambda_function=arm,
            integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
            payload=sfn.TaskInput.from_object({
                "job_id": sfn.JsonPath.string_at("$.job_id"),
                "task_token": sfn.JsonPath.task_token,
                "wait_seconds": sfn.JsonPath.number_at(WAIT_SECONDS_PATH),
            }),
            task_timeout=sfn.Timeout.at(WAIT_SECONDS_PATH),
            result_path=sfn.JsonPath.DISCARD,
        )
        # Order matters: Step Functions takes the first matching Catch, and States.ALL matches a timeout too.
        wait.add_catch(check_status, errors=[sfn.Errors.TIMEOUT], result_path=sfn.JsonPath.DISCARD)
        wait.add_catch(record_failure, errors=[sfn.Errors.ALL], result_path=ERROR_RESULT_PATH)
        persist_results = _invoke(self, PERSIST, persist)
        persist_results.add_catch(record_failure, errors=[sfn.Errors.ALL], result_path=ERROR_RESULT_PATH)

        route = (
            sfn.Choice(self, ROUTE)
            .when(sfn.Condition.string_equals(PHASE_PATH, Phase.PROCESSING.value), wait)
            .when(
                sfn.Condition.string_equals(PHASE_PATH, Phase.READY.value),
                persist_results.next(sfn.Succeed(self, JOB_SUCCEEDED)),
            )
            .otherwise(sfn.Succeed(self, JOB_ENDED))
        )
        definition = wait.next(check_status).next(route)

        self.execution_logs = logs.LogGroup(
            self, "ExecutionLogs", retention=log_retention, removal_policy=log_removal_policy
        )
        skip_log_group_checks(self.execution_logs)
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            comment="mediagen: one execution per job (wait for a callback or a timeout, poll, persist, "
                    "record failures)",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            state_machine_type=sfn.StateMachineType.STANDARD,
            tracing_enabled=True,
            timeout=timeout,
            logs=sfn.LogOptions(
                destination=self.execution_logs,
                level=sfn.LogLevel.ALL,
                include_execution_data=False,
            ),
        )
