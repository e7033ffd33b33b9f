"""Spend guards: a deployment-wide daily credit budget and a limit on jobs in flight.

Both are atomic counters (DynamoDB conditional ``ADD``) stored in the job table under reserved keys that
no job id can take (job ids never contain ``#``): ``#budget:<YYYY-MM-DD>`` and ``#in-flight``.

- The budget is charged with a job's credit estimate before generate is called and refunded when the
  provider definitively refused it (nothing spent). A job whose estimate is unknown is charged 0.
- A job takes an in-flight slot before generate and gives it back when it ends (any terminal status) or
  when it goes back to the queue. The provider's own concurrent-job limit answers 429 ([000:132-139]:
  "Plan limits control requests/min, concurrent jobs, and queue depth. Exceeded -> 429"); holding
  jobs in the queue instead avoids collecting those 429s.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

from mediagen.errors import MediagenError

BUDGET_KEY_PREFIX = "#budget:"
IN_FLIGHT_KEY = "#in-flight"


class OverBudget(MediagenError):
    """The job's estimate does not fit in what is left of today's budget."""

    code = "over_daily_budget"


def today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


class SpendGuard(Protocol):
    def charge(self, credits: int, *, limit: int, day: str) -> int:
        """Add ``credits`` to the day's total if it stays within ``limit``; return the new total.

        Raises:
            OverBudget: it would not fit (message gives spent, limit and estimate).
        """
        ...

    def refund(self, credits: int, *, day: str) -> None: ...

    def acquire_slot(self, *, limit: int) -> bool:
        """Take one in-flight slot if fewer than ``limit`` are taken."""
        ...

    def release_slot(self) -> None: ...


class DynamoSpendGuard:
    """``SpendGuard`` on the job table (reserved keys, see module docstring)."""

    def __init__(self, table_name: str, dynamodb_resource: Any | None = None) -> None:
        if dynamodb_resource is None:
            from mediagen import aws

            dynamodb_resource = aws.client("dynamodb")
        from mediagen.dynamo import DynamoTable

        self._table = DynamoTable(dynamodb_resource, table_name)
        from botocore.exceptions import ClientError

        self._client_error = ClientError

    def _add(self, key: str, amount: int, condition: str | None, values: dict[str, Any]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "Key": {"job_id": key}, "UpdateExpression": "ADD #n :a", "ExpressionAttributeNames": {"#n": "n"},
            "ExpressionAttributeValues": {":a": amount, **values}, "ReturnValues": "ALL_NEW"}
        if condition:
            kwargs["ConditionExpression"] = condition
        return dict(self._table.update_item(**kwargs)["Attributes"])

    def charge(self, credits: int, *, limit: int, day: str) -> int:
        if credits > limit:
            raise OverBudget(f"estimated {credits} credits exceed the whole daily budget of {limit}")
        key = BUDGET_KEY_PREFIX + day
        try:
            item = self._add(key, credits, "attribute_not_exists(#n) OR #n <= :room",
                             {":room": limit - credits})
        except self._client_error as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            spent = int(self._table.get_item(Key={"job_id": key}, ConsistentRead=True).get("Item", {}).get("n", 0))
            raise OverBudget(f"estimated {credits} credits do not fit in today's budget: {spent} of {limit} "
                             f"already committed on {day} (UTC)") from exc
        return int(item["n"])

    def refund(self, credits: int, *, day: str) -> None:
        if credits:
            self._add(BUDGET_KEY_PREFIX + day, -credits, None, {})

    def acquire_slot(self, *, limit: int) -> bool:
        try:
            self._add(IN_FLIGHT_KEY, 1, "attribute_not_exists(#n) OR #n < :limit", {":limit": limit})
        except self._client_error as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def release_slot(self) -> None:
        try:
            self._add(IN_FLIGHT_KEY, -1, "#n > :zero", {":zero": 0})
        except self._client_error as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
