"""Plain Python values <-> DynamoDB attribute values (floats become Decimal and back), and what
every ledger adapter shares: timestamps, paged queries, condition failures."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

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


def iso(ts: datetime) -> str:
    """The ledger's timestamp format: UTC, milliseconds, `Z` (sorts as text)."""
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def conditional_failure(exc: ClientError) -> bool:
    """A single write refused by its condition."""
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def cancelled_by_condition(exc: ClientError) -> list[bool]:
    """For a cancelled transaction: which of its items failed their condition. Any other error,
    or a cancellation for another reason (throttling, conflict), is raised again."""
    if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        raise exc
    reasons = exc.response.get("CancellationReasons") or []
    if not reasons:  # some emulators omit the reasons; treat as a condition failure on the first item
        return [True]
    if any(r.get("Code") not in ("None", "ConditionalCheckFailed", None) for r in reasons):
        raise exc
    return [r.get("Code") == "ConditionalCheckFailed" for r in reasons]


_TRANSIENT = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})


def transient_conflict(exc: ClientError) -> bool:
    """A transaction cancelled because another one held its items (or throttled): try again."""
    code = exc.response.get("Error", {}).get("Code")
    if code in ("TransactionConflictException", "ThrottlingException"):
        return True
    if code != "TransactionCanceledException":
        return False
    reasons = exc.response.get("CancellationReasons") or []
    if not reasons:
        message = exc.response.get("Error", {}).get("Message", "")
        return any(name in message for name in _TRANSIENT)
    return any(r.get("Code") in _TRANSIENT for r in reasons)


def transact(
    client: Any, items: Sequence[Mapping[str, Any]], *, sleep: Callable[[float], None], attempts: int = 8
) -> None:
    """One `TransactWriteItems`; a cancellation because another transaction held its items (runs
    of a batch ending together, files of a folder dropped together) is tried again after a
    jittered pause, at most `attempts` times in all. A condition failure is raised at once."""
    for attempt in range(1, attempts + 1):
        try:
            client.transact_write_items(TransactItems=list(items))
            return
        except ClientError as exc:
            if not transient_conflict(exc) or attempt == attempts:
                raise
            sleep(min(1.0, 0.02 * 2.0**attempt) * random.random())  # noqa: S311  # nosec B311: retry jitter, not a secret
