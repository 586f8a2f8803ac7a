"""Plain Python values <-> DynamoDB attribute values (floats become Decimal and back)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_ser = TypeSerializer()
_de = TypeDeserializer()


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, Mapping):
        return {k: _to_dynamo(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    if isinstance(value, set):
        return {_from_dynamo(v) for v in value}
    return value


def serialize(value: Any) -> dict[str, Any]:
    """One attribute value."""
    return dict(_ser.serialize(_to_dynamo(value)))


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    """A whole item; None values are left out."""
    return {k: serialize(v) for k, v in values.items() if v is not None}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _from_dynamo(_de.deserialize(v)) for k, v in item.items()}


def query_items(
    client: Any, request: Mapping[str, Any], limit: int | None = None
) -> Iterator[dict[str, Any]]:
    """The items of a DynamoDB Query, page after page, decoded; at most `limit` of them, and no
    page is read once `limit` items are out."""
    kwargs = dict(request)
    count = 0
    while limit is None or count < limit:
        resp = client.query(**kwargs)
        for raw in resp.get("Items", []):
            if limit is not None and count >= limit:
                return
            count += 1
            yield from_item(raw)
        last = resp.get("LastEvaluatedKey")
        if not last:
            return
        kwargs["ExclusiveStartKey"] = last
