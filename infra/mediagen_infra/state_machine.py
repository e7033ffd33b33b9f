"""The per-job workflow: a Standard state machine that polls the provider, persists, or records a failure.

The local stack executes this exact definition (taken from ``cdk.out``) on moto, and the handlers
implement its I/O contract, so state names and paths are part of the contract::

    WaitBeforeNextCheck (Wait, SecondsPath $.wait_seconds)
      -> CheckStatus (poll; Catch States.ALL -> RecordFailure, ResultPath $.error)
      -> Route (Choice on $.phase)
           "processing" -> WaitBeforeNextCheck
           "ready"      -> Persist (persist; Catch States.ALL -> RecordFailure) -> JobSucceeded
           otherwise    -> JobEnded            (poll already recorded FAILED / TIMED_OUT itself)
    RecordFailure (finalize; Retry States.ALL x3, 2 s, backoff 2) -> PipelineFailed

Execution input (written by submit)::

    {"job_id", "task_id", "model", "modality", "deadline": <epoch s>, "wait_seconds": <int>, "polls": 0}

Each Lambda task receives the whole state as its payload and its return value becomes the next state.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

# State names (the contract with the handlers and the local stack).
WAIT_BEFORE_NEXT_CHECK = "WaitBeforeNextCheck"
CHECK_STATUS = "CheckStatus"
ROUTE = "Route"
PERSIST = "Persist"
RECORD_FAILURE = "RecordFailure"
JOB_ENDED = "JobEnded"
JOB_SUCCEEDED = "JobSucceeded"
PIPELINE_FAILED = "PipelineFailed"

#: ``$.phase`` values the poll step returns.
PHASE_PROCESSING = "processing"
PHASE_READY = "ready"

#: Where a caught error is put in the state before ``RecordFailure`` runs.
ERROR_RESULT_PATH = "$.error"


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
        poll: the ``poll`` function (``CheckStatus``).
        persist: the ``persist`` function (``Persist``).
        finalize: the ``finalize`` function (``RecordFailure``).
        timeout: execution-level backstop; the poll step enforces the per-job deadline itself.
        log_retention: retention of the execution log group (errors only, no execution data).

    Attributes:
        state_machine: the state machine.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        poll: lambda_.IFunction,
        persist: lambda_.IFunction,
        finalize: lambda_.IFunction,
        timeout: Duration,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
    ) -> None:
        super().__init__(scope, construct_id)

        pipeline_failed = sfn.Fail(self, PIPELINE_FAILED, error="PipelineFailed", cause="see the task record")
        record_failure = _invoke(self, RECORD_FAILURE, finalize)
        record_failure.add_retry(
            errors=[sfn.Errors.ALL], max_attempts=3, interval=Duration.seconds(2), backoff_rate=2
        )
        record_failure.next(pipeline_failed)

        wait = sfn.Wait(self, WAIT_BEFORE_NEXT_CHECK, time=sfn.WaitTime.seconds_path("$.wait_seconds"))
        check_status = _invoke(self, CHECK_STATUS, poll)
        check_status.add_catch(record_failure, errors=[sfn.Errors.ALL], result_path=ERROR_RESULT_PATH)
        persist_results = _invoke(self, PERSIST, persist)
        persist_results.add_catch(record_failure, errors=[sfn.Errors.ALL], result_path=ERROR_RESULT_PATH)

        route = (
            sfn.Choice(self, ROUTE)
            .when(sfn.Condition.string_equals("$.phase", PHASE_PROCESSING), wait)
            .when(
                sfn.Condition.string_equals("$.phase", PHASE_READY),
                persist_results.next(sfn.Succeed(self, JOB_SUCCEEDED)),
            )
            .otherwise(sfn.Succeed(self, JOB_ENDED))
        )
        definition = wait.next(check_status).next(route)

        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            comment="mediagen: one execution per job (poll, persist, record failures)",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            state_machine_type=sfn.StateMachineType.STANDARD,
            tracing_enabled=True,
            timeout=timeout,
            logs=sfn.LogOptions(
                destination=logs.LogGroup(self, "ExecutionLogs", retention=log_retention),
                level=sfn.LogLevel.ERROR,
                include_execution_data=False,
            ),
        )
