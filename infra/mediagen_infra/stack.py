"""``MediaGenStack``: the deployable stack, one per stage (``MediaGen-<stage>``)."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack, Tags
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from .context import alarm_email, props_from_context
from .pipeline import MediaGenPipeline
from .props import MediaGenPipelineProps


class MediaGenStack(Stack):
    """The mediagen pipeline and its outputs.

    Outputs (stable ids, for scripts and ``mediagen submit``/``status``): ``JobsQueueUrl``,
    ``JobsDlqUrl``, ``TaskTableName``, ``OutputsBucketName``, ``EventBusName``, ``StateMachineArn``,
    ``ApiKeySecretArn``, ``CallbackUrlBase``, ``JobsApiUrl``, ``IntakeBucketName``, ``IntakeQueueUrl``,
    ``AlarmTopicArn`` and, with the dashboard, ``DashboardName``.

    Args:
        scope: the app.
        construct_id: the stack name, ``MediaGen-<stage>``.
        stage: deployment stage (``dev``, ``prod``, ...); tagged on every resource.
        pipeline_props: options of the pipeline construct; ``None`` reads them from the CDK context
            (see :mod:`mediagen_infra.context`).
        **kwargs: passed to :class:`aws_cdk.Stack` (``env``, ``synthesizer``, ...).

    Raises:
        ValueError: a context option is malformed.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str = "dev",
        pipeline_props: MediaGenPipelineProps | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault(
            "description", f"mediagen: generative-media job pipeline on Cliprise (stage {stage})"
        )
        super().__init__(scope, construct_id, **kwargs)
        self.stage = stage
        Tags.of(self).add("project", "mediagen")
        Tags.of(self).add("stage", stage)

        pipeline = MediaGenPipeline(self, "Pipeline", pipeline_props or props_from_context(self))
        self.pipeline = pipeline
        email = alarm_email(self)
        if email is not None:
            pipeline.alarm_topic.add_subscription(subscriptions.EmailSubscription(email))

        outputs = {
            "JobsQueueUrl": (pipeline.jobs_queue.queue_url, "Send jobs (JSON) to this SQS queue"),
            "JobsDlqUrl": (
                pipeline.dead_letter_queue.queue_url,
                f"Job messages received {pipeline.props.max_receive_count} times without being submitted",
            ),
            "TaskTableName": (pipeline.task_table.table_name, "DynamoDB table of task records (key job_id)"),
            "OutputsBucketName": (pipeline.outputs_bucket.bucket_name, "S3 bucket receiving job results"),
            "EventBusName": (pipeline.event_bus.event_bus_name, "EventBridge bus of job terminal events"),
            "StateMachineArn": (pipeline.state_machine.state_machine_arn, "One execution per job"),
            "ApiKeySecretArn": (
                pipeline.api_key_secret.secret_arn,
                "Put the Cliprise API key here (aws secretsmanager put-secret-value)",
            ),
            **({"ClipiaApiKeySecretArn": (
                pipeline.clipia_api_key_secret.secret_arn,
                "Put the Clipia API key here (aws secretsmanager put-secret-value)",
            )} if pipeline.clipia_api_key_secret is not None else {}),
            **({"ClipiaWebhookSecretArn": (
                pipeline.clipia_webhook_secret.secret_arn,
                "Put the Clipia webhook signing secret here (aws secretsmanager put-secret-value)",
            )} if pipeline.clipia_webhook_secret is not None else {}),
            "CallbackUrlBase": (
                pipeline.callback_api.callback_url_base,
                "Provider callbacks: POST <CallbackUrlBase>/<token> (submit sets callBackUrl)",
            ),
            "JobsApiUrl": (
                pipeline.jobs_api.api_url,
                "Jobs HTTP API: POST /jobs, GET /jobs/{job_id}, POST /jobs/{job_id}/cancel, GET /models, "
                f"GET /models/{{model_id}}, GET /openapi.json (auth: "
                f"{'none' if pipeline.props.allow_unauthenticated else pipeline.props.jobs_api_auth})",
            ),
            "IntakeBucketName": (
                pipeline.intake.bucket.bucket_name,
                "Put job manifests under jobs/ (.json, .jsonl) and files under inbox/<rule prefix>",
            ),
            "IntakeQueueUrl": (pipeline.intake.queue.queue_url, "S3 intake notifications for the intake function"),
            "AlarmTopicArn": (pipeline.alarm_topic.topic_arn, "SNS topic every alarm notifies (subscribe to it)"),
        }
        if pipeline.dashboard is not None:
            outputs["DashboardName"] = (pipeline.dashboard.dashboard_name, "CloudWatch dashboard of the pipeline")
        for output_id, (value, description) in outputs.items():
            CfnOutput(self, output_id, value=value, description=description)
