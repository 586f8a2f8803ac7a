"""DynamoDB transactions in the local stack's moto at a cost that does not grow with the table.

moto (5.2) makes TransactWriteItems all-or-nothing by deep-copying each table a transaction
names, once per operation and with every stream record the table ever produced, and putting the
copies back when an operation is refused. With the ledger's stream on, a table of a few hundred
tasks already costs a fifth of a second per transaction, and a 10,000-shard scatter never ends.

`ItemSnapshotTransactions` keeps the outcome and saves only what a transaction touches: each named
item as it was (or its absence) and the length of each table's stream. Every operation goes
through the backend's own `get_item`, `put_item`, `update_item` and `delete_item`, with its
condition, so conditions, update expressions and stream records are moto's. When an operation
is refused, the saved items are put back, the stream records the transaction added are dropped,
and `TransactionCanceledException` carries one reason per operation (`None` for the ones that
would have succeeded, `ALL_OLD` items where asked), as DynamoDB answers.

Transactions are isolated from each other, as DynamoDB's are: one at a time per backend (moto's
server answers each request on a thread of its own). A refused transaction puts back only the items
its own operations wrote and drops only the stream records they added, so a write that another
request made meanwhile (a run of the same batch ending in the same instant) is never undone.

`install` sets it as the `transact_write_items` of one account and region's backend, which is
where moto's request handler looks it up; the stack calls it after moto is reset (a reset
rebuilds the backend). `tests/integration/test_local_transactions.py` runs the same transactions on plain moto
and on this backend and compares answers, items and stream records.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends

OPERATIONS = frozenset({"ConditionCheck", "Put", "Delete", "Update"})
MAX_OPERATIONS = 100

#: (code, message, item) per operation, as moto's TransactionCanceledException takes them.
Reason = tuple[str, str, dict[str, Any] | None] | tuple[None, None, None]
Saved = dict[tuple[str, str], tuple[str, dict[str, Any], dict[str, Any] | None]]


class ItemSnapshotTransactions:
    """TransactWriteItems for one moto DynamoDB backend, through the backend's item operations."""

    def __init__(self, backend: DynamoDBBackend) -> None:
        self.backend = backend
        self.lock = threading.Lock()

    def __call__(self, transact_items: list[dict[str, Any]]) -> None:
        if len(transact_items) > MAX_OPERATIONS:
            raise TooManyTransactionsException()
        with self.lock:
            self._transact(transact_items)

    def _transact(self, transact_items: list[dict[str, Any]]) -> None:
        saved: Saved = {}
        written: Saved = {}
        added: list[tuple[str, Any]] = []
        reasons: list[Reason] = []
        try:
            for entry in transact_items:
                if len(entry) != 1:
                    raise TransactWriteSingleOpException
                ((kind, operation),) = entry.items()
                reason = self._apply(kind, operation, saved, added)
                if reason[0] is None and kind != "ConditionCheck":
                    target = next(reversed(saved))
                    written[target] = saved[target]
                reasons.append(reason)
        except BaseException:
            self._put_back(written, added)
            raise
        if any(code is not None for code, _, _ in reasons):
            self._put_back(written, added)
            raise TransactionCanceledException(reasons)

    def _apply(self, kind: str, op: dict[str, Any], saved: Saved, added: list[tuple[str, Any]]) -> Reason:
        current = None
        try:
            if kind not in OPERATIONS:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            table = self.backend.get_table(table_name)
            key = _key(table, kind, op)
            target = (str(table_name), str(dict(sorted(key.items()))))
            if target in saved:
                raise MultipleTransactionsException()
            current = self.backend.get_item(table_name, key)
            saved[target] = (table_name, key, _attributes(current))
            shard = table.stream_shard
            before = len(shard.items) if shard is not None else 0
            condition = {
                "condition_expression": op.get("ConditionExpression"),
                "expression_attribute_names": op.get("ExpressionAttributeNames"),
                "expression_attribute_values": op.get("ExpressionAttributeValues"),
            }
            if kind == "ConditionCheck":
                check = get_filter_expression(
                    condition["condition_expression"],
                    condition["expression_attribute_names"],
                    condition["expression_attribute_values"],
                )
                if not check.expr(current):
                    raise ConditionalCheckFailed()
            elif kind == "Put":
                self.backend.put_item(table_name, op["Item"], **condition)
            elif kind == "Delete":
                self.backend.delete_item(table_name, key, **condition)
            else:
                self.backend.update_item(
                    table_name,
                    key,
                    update_expression=op["UpdateExpression"],
                    expression_attribute_names=condition["expression_attribute_names"],
                    expression_attribute_values=condition["expression_attribute_values"],
                    condition_expression=condition["condition_expression"],
                )
            if shard is not None:
                added.extend((table_name, record) for record in shard.items[before:])
        except (MultipleTransactionsException, MockValidationException):
            raise
        except ConditionalCheckFailed as refused:
            old = None
            if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current is not None:
                old = current.to_json()["Attributes"]
            return ("ConditionalCheckFailed", str(refused.message), old)
        except Exception as error:  # any other refusal cancels the transaction with its reason
            return (type(error).__name__, str(error), None)
        return (None, None, None)

    def _put_back(self, written: Saved, added: list[tuple[str, Any]]) -> None:
        """Undo what the transaction's own operations did: the items they wrote, as they were,
        and the stream records they added (putting an item back adds none)."""
        for table_name, key, attributes in written.values():
            shard = self.backend.get_table(table_name).stream_shard
            before = len(shard.items) if shard is not None else 0
            if attributes is not None:
                self.backend.put_item(table_name, attributes)
            elif self.backend.get_item(table_name, key) is not None:
                self.backend.delete_item(table_name, key)
            if shard is not None:
                del shard.items[before:]
        for table_name, record in added:
            shard = self.backend.get_table(table_name).stream_shard
            if shard is not None:
                shard.items[:] = [item for item in shard.items if item is not record]


def _key(table: Any, kind: str, op: dict[str, Any]) -> dict[str, Any]:
    if kind != "Put":
        return dict(op["Key"])
    item = op["Item"]
    key = {table.hash_key_attr: item[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = item[table.range_key_attr]
    return key


def _attributes(item: Any) -> dict[str, Any] | None:
    return None if item is None else copy.deepcopy(item.to_json()["Attributes"])


def install(account: str, region: str) -> DynamoDBBackend:
    """Give the moto DynamoDB backend of `account` and `region` item-snapshot transactions."""
    backend = dynamodb_backends[account][region]
    backend.transact_write_items = ItemSnapshotTransactions(backend)  # type: ignore[method-assign]
    return backend
