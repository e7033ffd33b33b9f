"""The job record: one DynamoDB item per job, and the repository port in front of it.

Item shape (DESIGN.md "Contracts" -> Job record)::

    job_id            str   partition key
    status            str   a JobStatus value
    model, modality   str
    provider_task_id  str   Cliprise taskId, once accepted
    created_at, updated_at             ISO-8601 UTC
    transitions       {STATUS: ISO-8601}  when each status was entered
    polls, callbacks  int
    credits_estimate  int | null
    outputs           [{uri, key, bytes, content_type, sha256}]
    error             {code, message, problems?}
    metadata          object (the job's, echoed)
    request           object (the documented request, secrets redacted)
    request_hash      str   (conflict detection)
    output_prefix, execution_arn, deadline (epoch s), callback_token, provider_completed_at
    source            {channel: sqs|api|s3-manifest|s3-drop, ...}  where the job came from (absent: sqs)

Every job reaches one of the terminal statuses; transitions are conditional writes, so two workers can
never both move a job out of the same status.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

from mediagen.errors import JobNotFound, RepositoryError, StatusConflict


class JobStatus(StrEnum):
    """Lifecycle of a job. Terminal statuses say who decided the outcome and whether credits were at risk."""

    RECEIVED = "RECEIVED"            #: envelope and request valid, recorded; not yet sent
    SUBMITTING = "SUBMITTING"        #: a worker is calling generate right now
    SUBMITTED = "SUBMITTED"          #: the provider accepted it (taskId); polling
    PERSISTING = "PERSISTING"        #: the provider finished; copying the result into S3
    SUCCEEDED = "SUCCEEDED"          #: outputs are in S3
    REJECTED = "REJECTED"            #: refused before any credit was spent (bad input, budget, provider 4xx)
    FAILED = "FAILED"                #: the provider reported the generation failed
    PIPELINE_FAILED = "PIPELINE_FAILED"  #: the provider succeeded but mediagen could not deliver (e.g. download)
    TIMED_OUT = "TIMED_OUT"          #: no terminal provider status before the deadline
    OUTCOME_UNKNOWN = "OUTCOME_UNKNOWN"  #: generate may have reached the provider (may have charged); not retried
    CANCELLED = "CANCELLED"          #: cancelled by a user (POST /jobs/{job_id}/cancel); polling stopped

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL: frozenset[JobStatus] = frozenset({
    JobStatus.SUCCEEDED, JobStatus.REJECTED, JobStatus.FAILED, JobStatus.PIPELINE_FAILED,
    JobStatus.TIMED_OUT, JobStatus.OUTCOME_UNKNOWN, JobStatus.CANCELLED,
})


#: Job record fields that are credentials (the callback and wait tokens) or bookkeeping; never shown to users
#: (the HTTP API, ``mediagen status``/``jobs``/``run-local``).
INTERNAL_FIELDS: frozenset[str] = frozenset({
    "callback_token", "wake_token", "request_hash", "holds_slot", "event_published", "wake_pending",
    "charged_day", "credits_charged",
})


def utcnow() -> str:
    """Current time, ISO-8601 UTC with milliseconds (``2026-11-21T05:10:00.123Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class JobRepository(Protocol):
    """Port for job records. Adapters translate storage errors to ``RepositoryError`` subclasses."""

    def create(self, record: dict[str, Any]) -> dict[str, Any] | None:
        """Insert ``record`` unless a record with its ``job_id`` exists.

        Returns:
            None when created; the existing record otherwise (nothing is changed).
        """
        ...

    def get(self, job_id: str) -> dict[str, Any] | None: ...

    def transition(
        self,
        job_id: str,
        to: JobStatus | None,
        *,
        expect: set[JobStatus] | frozenset[JobStatus] | None = None,
        set_fields: dict[str, Any] | None = None,
        add: dict[str, int] | None = None,
        remove: tuple[str, ...] = (),
        unless_set: str | None = None,
    ) -> dict[str, Any]:
        """Atomically move the job to ``to`` (or keep the status when ``to`` is None), setting
        ``set_fields``, adding to counters in ``add`` and removing the attributes in ``remove``.

        Args:
            expect: the statuses the job must be in; otherwise ``StatusConflict`` and nothing changes.
            unless_set: an attribute that must not exist yet (a "first time only" write); otherwise
                ``StatusConflict``.

        Returns:
            the record after the update.

        Raises:
            StatusConflict: the job is not in an expected status.
            JobNotFound: no such job.
        """
        ...

    def take(self, job_id: str, attribute: str) -> Any:
        """Atomically remove ``attribute`` and return the value it had (None when it was not set).

        Two concurrent callers never both get the value: this is how a wake-up token is used once.
        """
        ...


def _to_dynamo(value: Any) -> Any:
    """JSON-compatible value -> DynamoDB-compatible (floats become Decimal)."""
    return json.loads(json.dumps(value), parse_float=Decimal)


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    return value


class DynamoJobRepository:
    """``JobRepository`` on a DynamoDB table whose partition key is ``job_id`` (S).

    Args:
        table_name: the job table.
        dynamodb_resource: an injectable ``boto3.client("dynamodb")`` or resource (tests, other regions);
            calls go through the client, so the repository is safe to share between threads.
    """

    def __init__(self, table_name: str, dynamodb_resource: Any | None = None) -> None:
        if dynamodb_resource is None:
            import boto3

            dynamodb_resource = boto3.client("dynamodb")
        from mediagen.dynamo import DynamoTable

        self._table = DynamoTable(dynamodb_resource, table_name)
        from botocore.exceptions import ClientError

        self._client_error = ClientError

    def create(self, record: dict[str, Any]) -> dict[str, Any] | None:
        now = utcnow()
        item = {"created_at": now, "updated_at": now, "polls": 0, "callbacks": 0,
                "transitions": {record["status"]: now}, **record}
        try:
            self._table.put_item(Item=_to_dynamo(item), ConditionExpression="attribute_not_exists(job_id)")
        except self._client_error as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                existing = self.get(record["job_id"])
                return existing or {}
            raise RepositoryError(f"could not create job {record['job_id']}: {exc.response['Error']['Code']}") from exc
        return None

    def get(self, job_id: str) -> dict[str, Any] | None:
        try:
            item = self._table.get_item(Key={"job_id": job_id}, ConsistentRead=True).get("Item")
        except self._client_error as exc:
            raise RepositoryError(f"could not read job {job_id}: {exc.response['Error']['Code']}") from exc
        return _from_dynamo(item) if item else None

    def transition(
        self,
        job_id: str,
        to: JobStatus | None,
        *,
        expect: set[JobStatus] | frozenset[JobStatus] | None = None,
        set_fields: dict[str, Any] | None = None,
        add: dict[str, int] | None = None,
        remove: tuple[str, ...] = (),
        unless_set: str | None = None,
    ) -> dict[str, Any]:
        now = utcnow()
        names: dict[str, str] = {"#updated_at": "updated_at"}
        values: dict[str, Any] = {":now": now}
        sets = ["#updated_at = :now"]
        if to is not None:
            names |= {"#status": "status", "#transitions": "transitions", "#to": str(to)}
            values[":to"] = str(to)
            sets += ["#status = :to", "#transitions.#to = :now"]
        for i, (key, val) in enumerate((set_fields or {}).items()):
            names[f"#s{i}"] = key
            values[f":s{i}"] = _to_dynamo(val)
            sets.append(f"#s{i} = :s{i}")
        expression = "SET " + ", ".join(sets)
        adds = []
        for i, (key, amount) in enumerate((add or {}).items()):
            names[f"#a{i}"] = key
            values[f":a{i}"] = amount
            adds.append(f"#a{i} :a{i}")
        if adds:
            expression += " ADD " + ", ".join(adds)
        if remove:
            for i, key in enumerate(remove):
                names[f"#r{i}"] = key
            expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(remove)))
        condition = "attribute_exists(job_id)"
        if unless_set:
            names["#unless"] = unless_set
            condition += " AND attribute_not_exists(#unless)"
        if expect:
            names["#status"] = "status"
            placeholders = []
            for i, status in enumerate(sorted(expect)):
                values[f":e{i}"] = str(status)
                placeholders.append(f":e{i}")
            condition += f" AND #status IN ({', '.join(placeholders)})"
        try:
            result = self._table.update_item(
                Key={"job_id": job_id}, UpdateExpression=expression, ConditionExpression=condition,
                ExpressionAttributeNames=names, ExpressionAttributeValues=values, ReturnValues="ALL_NEW",
            )
        except self._client_error as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                current = self.get(job_id)
                if current is None:
                    raise JobNotFound(f"no job {job_id}") from exc
                raise StatusConflict(
                    f"job {job_id} is {current.get('status')}; expected one of {sorted(str(s) for s in expect or ())}"
                    + (f" without {unless_set}" if unless_set else "")
                ) from exc
            raise RepositoryError(f"could not update job {job_id}: {exc.response['Error']['Code']}") from exc
        return _from_dynamo(result["Attributes"])

    def take(self, job_id: str, attribute: str) -> Any:
        try:
            result = self._table.update_item(
                Key={"job_id": job_id}, UpdateExpression="REMOVE #a", ConditionExpression="attribute_exists(#a)",
                ExpressionAttributeNames={"#a": attribute}, ReturnValues="UPDATED_OLD",
            )
        except self._client_error as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise RepositoryError(f"could not update job {job_id}: {exc.response['Error']['Code']}") from exc
        return _from_dynamo(result.get("Attributes", {}).get(attribute))
