"""Least privilege for the pipeline's functions and state machine: each gets exactly what its handler calls.

:func:`grant_least_privilege` is called once by :class:`mediagen_infra.pipeline.MediaGenPipeline`, when every
function exists; each wildcard resource it leaves is acknowledged (cdk-nag) with its reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager

from mediagen.intake import REPORTS_PREFIX

from .compliance import acknowledge, acknowledge_wildcard_resource

if TYPE_CHECKING:
    from .pipeline import MediaGenPipeline

#: Functions that end jobs (and so give back an in-flight slot): they need ``MEDIAGEN_MAX_IN_FLIGHT``.
#: (``api`` ends a job it cancels.)
JOB_ENDERS: tuple[str, ...] = ("submit", "poll", "persist", "finalize", "api")
#: Functions that publish job events on the bus (``intake`` publishes the rejection of a bad manifest line).
EVENT_PUBLISHERS: tuple[str, ...] = ("submit", "poll", "persist", "finalize", "api", "intake", "reconcile")
#: Functions that read the providers' API keys (Cliprise's, and Clipia's when it is offered).
SECRET_READERS: tuple[str, ...] = ("submit", "poll", "persist")
#: DynamoDB actions per function (the job repository calls only these; TransactWriteItems -- a status change
#: with its spend counters -- is authorised per item by UpdateItem): submit, api and
#: intake create records; everyone else reads and updates them; intake reads a manifest's records in batches.
TABLE_ACTIONS: Mapping[str, tuple[str, ...]] = {
    "submit": ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"),
    "poll": ("dynamodb:GetItem", "dynamodb:UpdateItem"),
    "persist": ("dynamodb:GetItem", "dynamodb:UpdateItem"),
    "finalize": ("dynamodb:GetItem", "dynamodb:UpdateItem"),
    "callback": ("dynamodb:GetItem", "dynamodb:UpdateItem"),
    "arm": ("dynamodb:GetItem", "dynamodb:UpdateItem"),
    "api": ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"),
    "intake": ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchGetItem"),
    # The one scheduled reader of the whole table (mediagen.steps.reconcile); PutItem rewrites a drifted counter.
    "reconcile": ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Scan"),
}
#: What persist may do to objects of the outputs bucket: write results (single or multipart: PutObject
#: covers Create/UploadPart/Complete), tag them with their SHA-256, abort a failed multipart upload,
#: delete a truncated result (a delete marker on the versioned bucket; never s3:DeleteObjectVersion) and
#: read a stored zip result back with ranged GETs to unpack it (no staging on local disk).
PERSIST_OBJECT_ACTIONS: tuple[str, ...] = (
    "s3:PutObject", "s3:PutObjectTagging", "s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject",
)


def grant_least_privilege(pipeline: MediaGenPipeline) -> None:
    """Give each function of ``pipeline`` exactly what its handler calls, and explain each wildcard resource.

    Only submit may start executions; only callback, api and arm may answer the executions' task tokens.
    """
    for name, function in pipeline.functions.items():
        pipeline.task_table.grant(function, *TABLE_ACTIONS[name])
    for name in EVENT_PUBLISHERS:
        pipeline.event_bus.grant_put_events_to(pipeline.functions[name])
    for name in SECRET_READERS:
        grant_secret_value(pipeline.api_key_secret, pipeline.functions[name])
        if pipeline.clipia_api_key_secret is not None:
            grant_secret_value(pipeline.clipia_api_key_secret, pipeline.functions[name])
    if pipeline.clipia_webhook_secret is not None:  # only callback verifies Clipia's signed webhooks
        grant_secret_value(pipeline.clipia_webhook_secret, pipeline.functions["callback"])

    persist = pipeline.functions["persist"]
    objects = pipeline.outputs_bucket.arn_for_objects("*")
    persist.add_to_role_policy(iam.PolicyStatement(actions=list(PERSIST_OBJECT_ACTIONS), resources=[objects]))
    if pipeline.outputs_bucket.encryption_key is not None:
        # SSE-KMS bucket: a data key per object, and Decrypt to complete a multipart upload.
        pipeline.outputs_bucket.encryption_key.grant(persist, "kms:GenerateDataKey", "kms:Decrypt")
    acknowledge_wildcard_resource(
        _role(persist), objects,
        "Results are written under <prefix><job_id>/ where the prefix comes from each job, so the object "
        "ARN ends in /*; only object writes, tagging, abort, delete and the ranged reads of a stored zip result "
        "it unpacks (s3:GetObject) are allowed (no list, no version delete).",
    )

    _grant_api_and_intake(pipeline)

    pipeline.state_machine.grant_start_execution(pipeline.functions["submit"])
    # The reconciler starts the execution of a submitted job whose every start failed (the same name, so one).
    pipeline.state_machine.grant_start_execution(pipeline.functions["reconcile"])
    # states:SendTaskSuccess/Failure/Heartbeat: callback wakes the waiting execution; arm ends the
    # wait itself when a callback came first or the job is no longer waiting; api's cancel wakes it too.
    pipeline.state_machine.grant_task_response(pipeline.functions["callback"])
    pipeline.state_machine.grant_task_response(pipeline.functions["api"])
    # Not on arm's own role policy: the state machine references arm's ARN, and a Lambda function
    # depends on its role's default policy, so that policy naming the state machine would close a
    # dependency cycle (StateMachine -> ArmFunction -> ArmRole DefaultPolicy -> StateMachine). The
    # grant goes to a separate inline policy of the same role, which nothing depends on.
    pipeline.state_machine.grant_task_response(
        iam.Role.from_role_name(pipeline, "ArmRoleForTaskResponse", _role(pipeline.functions["arm"]).role_name)
    )

    machine_role = pipeline.state_machine.role
    acknowledge(
        machine_role, "AwsSolutions-IAM5[Resource::*]",
        "X-Ray tracing (xray:PutTraceSegments, PutTelemetryRecords, GetSamplingRules, GetSamplingTargets) and "
        "CloudWatch Logs vended delivery (logs:*LogDelivery*, PutResourcePolicy, DescribeResourcePolicies, "
        "DescribeLogGroups) support no resource-level permissions; CDK adds exactly these for tracing and "
        "logging.",
    )
    for task_function in (pipeline.functions[name] for name in ("arm", "poll", "persist", "finalize")):
        acknowledge_wildcard_resource(
            machine_role, f"{task_function.function_arn}:*",
            "lambda:InvokeFunction on the qualified ARNs (versions, aliases) of a function this state "
            "machine's tasks invoke; added by CDK's LambdaInvoke task for that one function.",
        )


def _grant_api_and_intake(pipeline: MediaGenPipeline) -> None:
    """The jobs API and the intake queue jobs (SendMessage); api presigns result downloads (GetObject on
    the outputs), intake writes manifest reports (PutObject on the outputs' ``reports/``, where
    :func:`mediagen.intake.report_key` puts them); submit reads intake objects."""
    api, intake, submit = pipeline.functions["api"], pipeline.functions["intake"], pipeline.functions["submit"]
    for function in (api, intake):
        pipeline.jobs_queue.grant_send_messages(function)

    objects = pipeline.outputs_bucket.arn_for_objects("*")
    api.add_to_role_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[objects]))
    reports = pipeline.outputs_bucket.arn_for_objects(f"{REPORTS_PREFIX}*")
    intake.add_to_role_policy(iam.PolicyStatement(actions=["s3:PutObject"], resources=[reports]))
    if pipeline.outputs_bucket.encryption_key is not None:
        pipeline.outputs_bucket.encryption_key.grant(api, "kms:Decrypt")
        pipeline.outputs_bucket.encryption_key.grant(intake, "kms:GenerateDataKey")
    acknowledge_wildcard_resource(
        _role(api), objects,
        "The jobs API presigns download URLs of a job's results, which lie under <prefix><job_id>/ with the "
        "prefix chosen by each job, so the object ARN ends in /*; read only (s3:GetObject): no list, no write.",
    )
    acknowledge_wildcard_resource(
        _role(intake), reports,
        f"The intake function writes each manifest's report at {REPORTS_PREFIX}<manifest path>/report.json, "
        f"one key per manifest, so the object ARN ends in {REPORTS_PREFIX}*; s3:PutObject only there: no write "
        "to the results, no read, list or delete.",
    )

    pipeline.intake.grant_read_inputs(
        submit,
        "submit presigns the s3:// input URLs of jobs that point into the intake bucket (the inbox rules' "
        "{object_url}, manifest inputs), so the provider can fetch them; any key under a prefix input_allow "
        "names may be, so the object ARN ends in <prefix>*. Read only (GetObject, GetObjectVersion).",
    )


def grant_secret_value(secret: secretsmanager.ISecret, function: lambda_.IFunction) -> None:
    """``secretsmanager:GetSecretValue`` on ``secret`` -- the one call Powertools' ``get_secret`` makes.

    (CDK's ``grant_read`` would add ``DescribeSecret`` too.) A secret imported by name has a partial ARN; the
    six-character suffix Secrets Manager appends is matched with ``-??????``, as CDK does. A secret with its
    own KMS key also gets ``kms:Decrypt`` through Secrets Manager only.
    """
    arn = secret.secret_full_arn or f"{secret.secret_arn}-??????"
    function.add_to_role_policy(iam.PolicyStatement(actions=["secretsmanager:GetSecretValue"], resources=[arn]))
    if secret.encryption_key is not None:
        stack = Stack.of(function)
        secret.encryption_key.grant(
            iam.PrincipalWithConditions(_role(function), {
                "StringEquals": {"kms:ViaService": f"secretsmanager.{stack.region}.{stack.url_suffix}"},
            }),
            "kms:Decrypt",
        )


def _role(function: lambda_.IFunction) -> iam.IRole:
    if function.role is None:  # build_function gives every function its own role: never None
        raise RuntimeError(f"{function.node.path} has no execution role")
    return function.role
