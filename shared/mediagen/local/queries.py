"""Queries of the embedded stack: what the pipeline left behind (task records, queue depths, executions, the
events published, the outputs and the handlers' logs). Reads only; mixed into
:class:`mediagen.local.stack.EmbeddedStack`.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from mediagen.local.provisioning import OUTPUTS_BUCKET, TASK_TABLE


class StackQueries:
    """Reads of the embedded stack's resources (moto must be running)."""

    session: Any
    queue_url: str
    intake_queue_url: str
    names: dict[str, str]
    state_machine_arn: str
    events_tap_url: str
    log_path: Path | None
    log_buffer: io.StringIO

    def records(self) -> list[dict[str, Any]]:
        """Every job record, newest first (a scan: fine for local runs)."""
        from mediagen.records import DynamoJobRepository

        return DynamoJobRepository(TASK_TABLE, self.session.client("dynamodb")).scan()

    def record(self, job_id: str) -> dict[str, Any] | None:
        """One job record (None when there is none)."""
        from mediagen.records import DynamoJobRepository

        return DynamoJobRepository(TASK_TABLE, self.session.client("dynamodb")).get(job_id)

    def queue_depth(self, *, intake: bool = False) -> int:
        """Messages in the jobs queue (and, with ``intake``, the intake queue): visible, in flight or delayed."""
        depth = 0
        for url in (self.queue_url, self.intake_queue_url if intake and "intake" in self.names else None):
            if url is None:
                continue
            attrs = self.session.client("sqs").get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                                              "ApproximateNumberOfMessagesDelayed"])
            depth += sum(int(v) for v in attrs["Attributes"].values())
        return depth


    def _running_executions(self) -> bool:
        sfn = self.session.client("stepfunctions")
        return bool(sfn.list_executions(stateMachineArn=self.state_machine_arn, statusFilter="RUNNING")["executions"])

    def executions(self) -> list[dict[str, Any]]:
        sfn = self.session.client("stepfunctions")
        return sfn.list_executions(stateMachineArn=self.state_machine_arn)["executions"]

    def events(self) -> list[dict[str, Any]]:
        """The EventBridge events published so far (drained from the tap queue)."""
        sqs = self.session.client("sqs")
        out: list[dict[str, Any]] = []
        while True:
            msgs = sqs.receive_message(QueueUrl=self.events_tap_url, MaxNumberOfMessages=10).get("Messages", [])
            if not msgs:
                return out
            for m in msgs:
                out.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=self.events_tap_url, ReceiptHandle=m["ReceiptHandle"])

    def read_object(self, key: str, bucket: str = OUTPUTS_BUCKET) -> bytes:
        return self.session.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()

    def download_outputs(self, record: dict[str, Any], dest: Path) -> list[Path]:
        """Copy a job's outputs and manifest from the local bucket into ``dest/<job_id>/``."""
        from mediagen.ops.paths import write_file

        s3 = self.session.client("s3")
        prefix = f"{record.get('output_prefix', '')}{record['job_id']}/"
        paths = []
        for obj in s3.list_objects_v2(Bucket=OUTPUTS_BUCKET, Prefix=prefix).get("Contents", []):
            paths.append(write_file(dest, record["job_id"], obj["Key"][len(prefix):],
                                    data=self.read_object(obj["Key"])))
        return paths

    def logs(self) -> str:
        """The handlers' log lines captured so far (when no ``log_path`` was given)."""
        if self.log_path is not None and self.log_path.exists():
            return self.log_path.read_text()
        return self.log_buffer.getvalue()

