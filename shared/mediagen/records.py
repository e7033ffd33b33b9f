"""The job record: one DynamoDB item per job (:class:`JobRecord`), and the repository port in front of it.

Every job reaches one of the terminal statuses; transitions are conditional writes, so two workers can
never both move a job out of the same status.
"""

from __future__ import annotations

import copy
import json
import random
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, NoReturn, Protocol, TypedDict

from mediagen.budget import CounterChange, CounterLimitReached
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
    EXPIRED = "EXPIRED"              #: waited longer than MEDIAGEN_MAX_WAIT_SECONDS to be sent; nothing spent

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL: frozenset[JobStatus] = frozenset({
    JobStatus.SUCCEEDED, JobStatus.REJECTED, JobStatus.FAILED, JobStatus.PIPELINE_FAILED,
    JobStatus.TIMED_OUT, JobStatus.OUTCOME_UNKNOWN, JobStatus.CANCELLED, JobStatus.EXPIRED,
})


class JobRecord(TypedDict, total=False):
    """Every field a job record may hold (the DynamoDB item; times are ISO-8601 UTC strings).

    A test runs the steps on fakes and checks that every key they write is declared here.
    """

    # Identity and the job as received
    job_id: str                       #: partition key: the job's idempotency key
    status: str                       #: a :class:`JobStatus` value
    model: str                        #: the request's ``model``
    modality: str                     #: image | video | audio (from the catalog)
    request: dict[str, Any]           #: the documented request body, secrets redacted
    request_hash: str                 #: SHA-256 of what is paid for; a different hash under one id is a conflict
    output_prefix: str                #: S3 key prefix of the results (``<prefix><job_id>/``)
    metadata: dict[str, Any]          #: the job's own metadata, echoed in events
    max_credits: int | None           #: refuse the job when its estimate is higher
    allow_unpriced: bool              #: send it even when no price or upper bound is known (limits set)
    retry_unknown_outcome: bool       #: re-send after an ambiguous generate failure (the job asked for it)
    provider: str                     #: the provider of the current (last) attempt: cliprise | clipia
    fallbacks: list[dict[str, Any]]   #: ``[{"provider", "request"}]`` tried in order after a refusal
    attempt: int                      #: index of the current attempt (0: the job's own request)
    attempts: list[dict[str, Any]]    #: ``[{provider, day, credits, outcome, provider_task_id?, error?}]``
    credits_bound: int | None         #: the cost charged before sending: the estimate, or an upper bound
    allow_unknown_fields: bool        #: fields the catalog does not know are sent
    credits_estimate: int | None      #: the catalog's estimate (None: unpriced)
    source: dict[str, Any]            #: where the job came from: ``{"channel": "api"|"s3-manifest"|…, …}``
    owner: str                        #: who may see it: the API caller's IAM principal, ``s3:<bucket>``, ``sqs``
    # Bookkeeping written by the repository
    created_at: str                   #: when the record was created
    updated_at: str                   #: when it last changed
    transitions: dict[str, str]       #: status -> when it was entered
    polls: int                        #: status checks made
    callbacks: int                    #: provider callbacks accepted
    # Submit
    callback_token: str               #: the secret in the callback URL (a credential: never shown)
    holds_slot: str                   #: the provider whose in-flight slot the job holds (absent: none)
    credits_charged: int              #: credits charged to the budget for this job, every attempt (net)
    charged_day: str                  #: the UTC day (YYYY-MM-DD) of the last charge
    provider_task_id: str             #: the provider's taskId, once generate accepted the job
    orphan_provider_task_id: str      #: a taskId accepted after this worker's claim expired (money trail)
    deadline: int                     #: epoch seconds by which the provider must have finished
    execution_arn: str                #: the job's Step Functions execution
    last_error: dict[str, Any]        #: why the last delivery failed (``{"code", "message"}``)
    failed_deliveries: int            #: deliveries that failed (the message may end in the DLQ)
    unknown_outcomes: int             #: ambiguous generate failures retried (``retry_unknown_outcome``)
    # Waiting for the provider
    callback_received_at: str         #: when the latest valid callback arrived before completion
    provider_reported: dict[str, Any]  #: what the callback payload claimed (diagnosis only, never acted upon)
    wake_token: str                   #: the armed wait's Step Functions task token (a credential)
    wake_pending: bool                #: (no longer written: see ``wake_pending_at``)
    wake_pending_at: str              #: the latest callback; the next wait ends at once unless a check started after
    last_check_at: str                #: when the latest status check started (a callback before it was seen by it)
    webhook_deliveries: list[str]     #: ids of signed webhook deliveries already handled (the last 20)
    queue_position: int | None        #: the provider's queue position at the latest check, when it says
    progress: int | None              #: percent done (0-100) at the latest check, when the provider says
    provider_completed_at: str        #: when a status check first saw the provider's terminal status
    # Persist
    persist_started_at: str           #: when persist started copying the result
    outputs: list[dict[str, Any]]     #: ``[{uri, key, bytes, content_type, sha256, unpacked_from?}]``
    manifest_uri: str                 #: ``s3://…/result.json``
    detection_lag_ms: int | None      #: provider completion signal -> persist start
    delivered_by: str                 #: the provider whose outputs were persisted (``cliprise`` | ``clipia``)
    unpack_error: dict[str, Any]      #: ``{code, message, key}``: a zip result kept but not unpacked (over a limit)
    # End
    error: dict[str, Any]             #: ``{code, message, problems?}`` of a job that did not succeed
    cancelled_from: str               #: the status a cancelled job was in
    provider_cancel: dict[str, Any]   #: ``{outcome, code?, message?}``: the provider's answer when mediagen gave
    #: up a request still running there (cancelled or timed out) and asked it to cancel (Clipia)
    swept_at: str                     #: when the sweeper last put this RECEIVED job back on the jobs queue
    event_published: bool             #: its terminal event was published (claimed once)


#: Every key a :class:`JobRecord` may hold.
JOB_RECORD_FIELDS: frozenset[str] = frozenset(JobRecord.__annotations__)


#: Job record fields that are credentials (the callback and wait tokens) or bookkeeping; never shown to users
#: (the HTTP API, ``mediagen status``/``jobs``/``run-local``).
INTERNAL_FIELDS: frozenset[str] = frozenset({
    "callback_token", "wake_token", "request_hash", "holds_slot", "event_published", "wake_pending",
    "charged_day", "credits_charged", "attempt",
    "wake_pending_at", "last_check_at", "webhook_deliveries",
})


def public_view(record: dict[str, Any], presign: Callable[[str, int], str] | None = None,
                url_seconds: int = 900) -> dict[str, Any]:
    """A job record as users see it (the HTTP API, ``mediagen status``/``jobs``): without
    :data:`INTERNAL_FIELDS`, with ``terminal`` (bool), and -- when ``presign(key, seconds)`` is given -- each
    output with a download ``url`` valid ``url_seconds`` (``url_expires_in``)."""
    shown = {k: copy.deepcopy(v) for k, v in record.items() if k not in INTERNAL_FIELDS}
    shown["terminal"] = record.get("status") in TERMINAL
    outputs = []
    for output in record.get("outputs") or []:
        view = dict(output)
        if presign is not None and output.get("key"):
            view["url"] = presign(output["key"], url_seconds)
            view["url_expires_in"] = url_seconds
        outputs.append(view)
    shown["outputs"] = outputs
    return shown


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
        if_fields: dict[str, Any] | None = None,
        counters: Sequence[CounterChange] = (),
    ) -> dict[str, Any]:
        """Atomically move the job to ``to`` (or keep the status when ``to`` is None), setting
        ``set_fields``, adding to counters in ``add`` and removing the attributes in ``remove``.

        Args:
            expect: the statuses the job must be in; otherwise ``StatusConflict`` and nothing changes.
            unless_set: an attribute that must not exist yet (a "first time only" write); otherwise
                ``StatusConflict``.
            if_fields: attribute -> the value it must have (None: must be absent); otherwise ``StatusConflict``.
            counters: spend counters (:mod:`mediagen.budget`) changed in the same transaction: the job
                update and every counter change commit together, or nothing does.

        Returns:
            the record after the update.

        Raises:
            StatusConflict: the job is not in an expected status.
            JobNotFound: no such job.
            CounterLimitReached: a counter change would pass its limit (``key`` names it); nothing written.
        """
        ...

    def scan(self, *, status: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Job records, newest first (``created_at``), at most ``limit``, optionally only those in ``status``.

        Reads the whole table (the spend guard's and the intake's reserved ``#`` items are left out): for an
        operator's look at a deployment (API listing, CLI, local stack), never a hot path.
        """
        ...

    def counter(self, key: str) -> int:
        """The value of a spend counter (``#in-flight:<provider>``, ``#budget:<provider>:<day>``); 0 if unset."""
        ...

    def counter_state(self, key: str) -> tuple[int, int]:
        """``(value, version)`` of a spend counter: the version grows with every change (``(0, 0)`` if unset), so a
        reader can tell a counter changed between two reads even when its value came back to the same."""
        ...

    def set_counter(self, key: str, value: int, *, version: int | None = None) -> bool:
        """Overwrite a spend counter (only the reconciler, after recomputing it from the job records). With
        ``version``, only if the counter is still at that version (:meth:`counter_state`); returns whether it was
        written (False: a transaction changed it meanwhile)."""
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


#: Attempts of a status-and-counters transaction cancelled only by a concurrent transaction on the same items.
_TRANSACTION_ATTEMPTS = 5


class DynamoJobRepository:
    """``JobRepository`` on a DynamoDB table whose partition key is ``job_id`` (S).

    Args:
        table_name: the job table.
        dynamodb_resource: an injectable ``boto3.client("dynamodb")`` or resource (tests, other regions);
            calls go through the client, so the repository is safe to share between threads.
    """

    def __init__(self, table_name: str, dynamodb_resource: Any | None = None) -> None:
        if dynamodb_resource is None:
            from mediagen import aws

            dynamodb_resource = aws.client("dynamodb")
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
        if_fields: dict[str, Any] | None = None,
        counters: Sequence[CounterChange] = (),
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
        for i, (key, val) in enumerate((if_fields or {}).items()):
            names[f"#c{i}"] = key
            if val is None:
                condition += f" AND attribute_not_exists(#c{i})"
            else:
                values[f":c{i}"] = _to_dynamo(val)
                condition += f" AND #c{i} = :c{i}"
        if counters:
            return self._transact(job_id, counters, expect=expect, unless_set=unless_set, Key={"job_id": job_id},
                                  UpdateExpression=expression, ConditionExpression=condition,
                                  ExpressionAttributeNames=names, ExpressionAttributeValues=values)
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
                raise self._conflict(job_id, current, expect, unless_set) from exc
            raise RepositoryError(f"could not update job {job_id}: {exc.response['Error']['Code']}") from exc
        return _from_dynamo(result["Attributes"])

    @staticmethod
    def _conflict(job_id: str, current: dict[str, Any], expect: Any, unless_set: str | None) -> StatusConflict:
        return StatusConflict(
            f"job {job_id} is {current.get('status')}; expected one of {sorted(str(s) for s in expect or ())}"
            + (f" without {unless_set}" if unless_set else ""))

    def _transact(self, job_id: str, counters: Sequence[CounterChange], *, expect: Any, unless_set: str | None,
                  **update: Any) -> dict[str, Any]:
        """The job update and the counter changes in one ``TransactWriteItems``. A cancelled transaction's
        ``CancellationReasons`` (one per item, in order) say which condition failed."""
        from mediagen.dynamo import _ser

        job_update = {"TableName": self._table.name, **update, "Key": _ser(update["Key"]),
                      "ExpressionAttributeValues": _ser(update["ExpressionAttributeValues"])}
        items: list[dict[str, Any]] = [{"Update": job_update}]
        for change in counters:
            counter: dict[str, Any] = {
                "TableName": self._table.name, "Key": _ser({"job_id": change.key}),
                "UpdateExpression": "ADD #n :a, #v :one", "ExpressionAttributeNames": {"#n": "n", "#v": "v"},
                "ExpressionAttributeValues": {":a": change.amount, ":one": 1}}
            if change.limit is not None and change.amount > 0:
                counter["ConditionExpression"] = "attribute_not_exists(#n) OR #n <= :room"
                counter["ExpressionAttributeValues"][":room"] = change.limit - change.amount
            counter["ExpressionAttributeValues"] = _ser(counter["ExpressionAttributeValues"])
            items.append({"Update": counter})
        for attempt in range(1, _TRANSACTION_ATTEMPTS + 1):
            try:
                self._table.client.transact_write_items(TransactItems=items)
                break
            except self._client_error as exc:
                reasons = [r.get("Code") for r in exc.response.get("CancellationReasons") or []]
                # Every job's claim touches the same counter item: concurrent transactions on it are cancelled
                # with TransactionConflict (nothing written). Try again after a short jittered pause.
                if "TransactionConflict" in reasons and "ConditionalCheckFailed" not in reasons \
                        and attempt < _TRANSACTION_ATTEMPTS:
                    time.sleep(random.uniform(0.02, 0.1) * attempt)
                    continue
                self._transaction_failed(job_id, counters, exc, reasons, expect, unless_set)
        current = self.get(job_id)
        if current is None:
            raise JobNotFound(f"no job {job_id}")
        return current

    def _transaction_failed(self, job_id: str, counters: Sequence[CounterChange], exc: Any, reasons: list[Any],
                            expect: Any, unless_set: str | None) -> NoReturn:
        """Raise the typed error of a cancelled (or failed) transaction."""
        error = exc.response["Error"]["Code"]
        if error == "TransactionCanceledException" and reasons:
            if reasons[0] == "ConditionalCheckFailed":
                current = self.get(job_id)
                if current is None:
                    raise JobNotFound(f"no job {job_id}") from exc
                raise self._conflict(job_id, current, expect, unless_set) from exc
            for change, reason in zip(counters, reasons[1:], strict=False):
                if reason == "ConditionalCheckFailed":
                    assert change.limit is not None
                    raise CounterLimitReached(change.key, f"{change.key} would pass its limit of "
                                                          f"{change.limit} (adding {change.amount})") from exc
        raise RepositoryError(f"could not update job {job_id}: {error} {reasons or ''}".rstrip()) from exc

    def counter(self, key: str) -> int:
        """The value of a spend counter (0 when it was never written)."""
        item = self.get(key)
        return int((item or {}).get("n", 0))

    def counter_state(self, key: str) -> tuple[int, int]:
        item = self.get(key) or {}
        return int(item.get("n", 0)), int(item.get("v", 0))

    def set_counter(self, key: str, value: int, *, version: int | None = None) -> bool:
        """Overwrite a spend counter (the reconciler, after recomputing it from the records)."""
        from mediagen.dynamo import _ser

        kwargs: dict[str, Any] = {}
        if version is not None:  # a counter written before versions existed has none: version 0
            kwargs = {"ConditionExpression": "attribute_not_exists(#v) OR #v = :v" if version == 0 else "#v = :v",
                      "ExpressionAttributeNames": {"#v": "v"}, "ExpressionAttributeValues": _ser({":v": version})}
        try:
            self._table.put_item(Item=_to_dynamo({"job_id": key, "n": value, "v": (version or 0) + 1}), **kwargs)
        except self._client_error as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise RepositoryError(f"could not write counter {key}: {exc.response['Error']['Code']}") from exc
        return True

    def scan(self, *, status: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {"ConsistentRead": True}
        if status:
            kwargs.update(FilterExpression="#s = :s", ExpressionAttributeNames={"#s": "status"},
                          ExpressionAttributeValues={":s": {"S": status}})
        records: list[dict[str, Any]] = []
        try:
            while True:
                page = self._table.scan(**kwargs)
                records.extend(r for r in page["Items"] if not str(r.get("job_id", "")).startswith("#"))
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        except self._client_error as exc:
            raise RepositoryError(f"could not scan the job table: {exc.response['Error']['Code']}") from exc
        records.sort(key=lambda r: str(r.get("created_at", "")), reverse=True)
        return [_from_dynamo(r) for r in (records[:limit] if limit is not None else records)]

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
