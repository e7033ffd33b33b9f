"""A thread-safe stand-in for ``boto3.resource("dynamodb").Table``.

boto3 resources are not thread-safe; clients are. The submit step processes a batch's records on threads,
so the adapters talk to DynamoDB through a client and (de)serialize values themselves, with the same call
shapes as ``Table`` (``put_item(Item=…)``, ``get_item(Key=…)``, ``update_item(…)``) and plain Python values
(numbers as ``Decimal``) in and out.
"""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _ser(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in values.items()}


def _de(values: dict[str, Any] | None) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in (values or {}).items()}


class DynamoTable:
    """``Table``-shaped calls on a DynamoDB client.

    Args:
        dynamodb: a ``boto3.client("dynamodb")``, or a ``boto3.resource("dynamodb")`` (its client is used).
    """

    def __init__(self, dynamodb: Any, table_name: str) -> None:
        meta = getattr(dynamodb, "meta", None)
        if meta is not None and hasattr(meta, "client"):
            # A resource's own client (de)serializes values itself; use a plain client in the same region.
            import boto3

            dynamodb = boto3.client("dynamodb", region_name=meta.client.meta.region_name)
        self.client = dynamodb
        self.name = table_name

    def put_item(self, *, Item: dict[str, Any], **kwargs: Any) -> dict[str, Any]:  # noqa: N803 - boto3 shape
        return dict(self.client.put_item(TableName=self.name, Item=_ser(Item), **kwargs))

    def get_item(self, *, Key: dict[str, Any], **kwargs: Any) -> dict[str, Any]:  # noqa: N803
        response = self.client.get_item(TableName=self.name, Key=_ser(Key), **kwargs)
        return {"Item": _de(response["Item"])} if "Item" in response else {}

    def update_item(self, *, Key: dict[str, Any], ExpressionAttributeValues: dict[str, Any] | None = None,  # noqa: N803
                    **kwargs: Any) -> dict[str, Any]:
        if ExpressionAttributeValues:
            kwargs["ExpressionAttributeValues"] = _ser(ExpressionAttributeValues)
        response = self.client.update_item(TableName=self.name, Key=_ser(Key), **kwargs)
        return {"Attributes": _de(response.get("Attributes"))}

    def scan(self, **kwargs: Any) -> dict[str, Any]:
        response = self.client.scan(TableName=self.name, **kwargs)
        out: dict[str, Any] = {"Items": [_de(i) for i in response.get("Items", [])]}
        if "LastEvaluatedKey" in response:
            out["LastEvaluatedKey"] = response["LastEvaluatedKey"]
        return out
