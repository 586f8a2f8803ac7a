"""`MemoryDynamoDB`: an in-memory DynamoDB client implementing the expression semantics the ledger
uses (conditions, SET/ADD/REMOVE, `if_not_exists`, transactions with cancellation reasons and
ALL_OLD), so that the monitor benchmark's 10,000-shard scatter runs the real ledger adapters in
seconds. Only the benchmarks use it; `tests/integration/test_monitor_scatter.py` holds it to moto
on the same scatter (same items, same calls)."""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

_TOKEN = re.compile(
    r"\s*(?:(?P<op><>|<=|>=|=|<|>)|(?P<punct>[(),+\-])|(?P<word>[#:]?[A-Za-z_][A-Za-z0-9_.]*))"
)


def _tokens(expression: str) -> list[str]:
    return list(_parsed_tokens(expression))


@functools.lru_cache(maxsize=4096)
def _parsed_tokens(expression: str) -> tuple[str, ...]:
    """Expressions repeat (the ledger builds the same ones for every event): parse each once."""
    out: list[str] = []
    pos = 0
    while pos < len(expression):
        if expression[pos:].strip() == "":
            break
        match = _TOKEN.match(expression, pos)
        if not match:
            raise ValueError(f"cannot parse {expression[pos:]!r}")
        out.append(match.group(match.lastgroup or "word"))
        pos = match.end()
    return tuple(out)


def _plain(av: Mapping[str, Any]) -> Any:
    ((kind, value),) = av.items()
    if kind == "N":
        return Decimal(value)
    if kind == "M":
        return {k: _plain(v) for k, v in value.items()}
    if kind == "L":
        return [_plain(v) for v in value]
    if kind == "NULL":
        return None
    return value


def _error(code: str, message: str, **extra: Any) -> ClientError:
    response: dict[str, Any] = {"Error": {"Code": code, "Message": message}, **extra}
    return ClientError(response, "MemoryDynamoDB")  # type: ignore[arg-type]


class _Cond:
    """Recursive-descent evaluation of a condition over one item (attribute-value form)."""

    def __init__(self, expr: str, names: Mapping[str, str], values: Mapping[str, Any]) -> None:
        self.t = _tokens(expr)
        self.i = 0
        self.names = names
        self.values = values

    def _peek(self) -> str | None:
        return self.t[self.i] if self.i < len(self.t) else None

    def _next(self) -> str:
        tok = self.t[self.i]
        self.i += 1
        return tok

    def name(self, tok: str) -> str:
        return self.names[tok] if tok.startswith("#") else tok

    def evaluate(self, item: Mapping[str, Any] | None) -> bool:
        self.i = 0
        result = self._or(item or {})
        assert self.i == len(self.t), f"trailing tokens in condition: {self.t[self.i :]}"
        return result

    def _or(self, item: Mapping[str, Any]) -> bool:
        result = self._and(item)
        while self._peek() and self._peek().upper() == "OR":  # type: ignore[union-attr]
            self._next()
            right = self._and(item)
            result = result or right
        return result

    def _and(self, item: Mapping[str, Any]) -> bool:
        result = self._not(item)
        while self._peek() and self._peek().upper() == "AND":  # type: ignore[union-attr]
            self._next()
            right = self._not(item)
            result = result and right
        return result

    def _not(self, item: Mapping[str, Any]) -> bool:
        if self._peek() and self._peek().upper() == "NOT":  # type: ignore[union-attr]
            self._next()
            return not self._not(item)
        return self._primary(item)

    def _operand(self, item: Mapping[str, Any]) -> Any:
        tok = self._next()
        if tok.startswith(":"):
            return _plain(self.values[tok])
        attr = item.get(self.name(tok))
        return None if attr is None else _plain(attr)

    def _primary(self, item: Mapping[str, Any]) -> bool:
        tok = self._peek()
        if tok == "(":
            self._next()
            result = self._or(item)
            assert self._next() == ")"
            return result
        if tok in ("attribute_exists", "attribute_not_exists", "begins_with"):
            func = self._next()
            assert self._next() == "("
            if func == "begins_with":
                left = self._operand(item)
                assert self._next() == ","
                right = self._operand(item)
                assert self._next() == ")"
                return isinstance(left, str) and left.startswith(right)
            attr = self.name(self._next())
            assert self._next() == ")"
            return (attr in item) == (func == "attribute_exists")
        left = self._operand(item)
        op = self._next()
        right = self._operand(item)
        if left is None or right is None or type(left) is not type(right):
            return op == "<>" and not (left is None and right is None)
        return {
            "=": left == right,
            "<>": left != right,
            "<": left < right,
            "<=": left <= right,
            ">": left > right,
            ">=": left >= right,
        }[op]


def _split_top(tokens: list[str]) -> list[list[str]]:
    parts: list[list[str]] = [[]]
    depth = 0
    for tok in tokens:
        if tok == "(":
            depth += 1
        elif tok == ")":
            depth -= 1
        if tok == "," and depth == 0:
            parts.append([])
        else:
            parts[-1].append(tok)
    return [p for p in parts if p]


def _apply_update(
    item: dict[str, Any], expression: str, names: Mapping[str, str], values: Mapping[str, Any]
) -> None:
    tokens = _tokens(expression)
    clauses: dict[str, list[str]] = {}
    current = None
    for tok in tokens:
        if tok.upper() in ("SET", "ADD", "REMOVE", "DELETE"):
            current = tok.upper()
            assert current not in clauses, f"{current} twice"
            clauses[current] = []
        else:
            assert current is not None
            clauses[current].append(tok)

    def nm(tok: str) -> str:
        return names[tok] if tok.startswith("#") else tok

    def val(toks: list[str], before: dict[str, Any]) -> Any:
        if toks[0] == "if_not_exists":
            inner = _split_top(toks[2:-1])
            attr = nm(inner[0][0])
            return before[attr] if attr in before else val(inner[1], before)
        if len(toks) == 3 and toks[1] in "+-":
            left, right = Decimal(val([toks[0]], before)["N"]), Decimal(val([toks[2]], before)["N"])
            return {"N": str(left + right if toks[1] == "+" else left - right)}
        assert len(toks) == 1, toks
        if toks[0].startswith(":"):
            return values[toks[0]]
        return before[nm(toks[0])]

    before = dict(item)  # read only; every clause below replaces whole attributes
    touched: list[str] = []
    for part in _split_top(clauses.get("SET", [])):
        attr = nm(part[0])
        assert part[1] == "="
        touched.append(attr)
        item[attr] = copy.deepcopy(val(part[2:], before))
    for part in _split_top(clauses.get("ADD", [])):
        attr = nm(part[0])
        touched.append(attr)
        delta = Decimal(values[part[1]]["N"])
        current = Decimal(item[attr]["N"]) if attr in item else Decimal(0)
        item[attr] = {"N": str(current + delta)}
    for part in _split_top(clauses.get("REMOVE", [])):
        attr = nm(part[0])
        touched.append(attr)
        item.pop(attr, None)
    if len(touched) != len(set(touched)):
        raise _error("ValidationException", "Two document paths overlap with each other")


class MemoryDynamoDB:
    """An in-memory DynamoDB client for one table with (pk, sk) keys and the `active` GSI."""

    def __init__(
        self, table_name: str, gsi: tuple[str, str, str] = ("active", "active_pk", "active_sk")
    ) -> None:
        self.table_name = table_name
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self.gsi = gsi

    # -- helpers -------------------------------------------------------------------------------

    def _key(self, key: Mapping[str, Any]) -> tuple[str, str]:
        return key["pk"]["S"], key["sk"]["S"]

    def _check_table(self, name: str) -> None:
        if name != self.table_name:
            raise _error("ResourceNotFoundException", f"no table {name}")

    @staticmethod
    def _validate(op: Mapping[str, Any]) -> None:
        """Like DynamoDB: every name and value given must be used by an expression."""
        text = " ".join(
            str(op.get(k) or "")
            for k in (
                "UpdateExpression",
                "ConditionExpression",
                "KeyConditionExpression",
                "FilterExpression",
                "ProjectionExpression",
            )
        )
        used = set(re.findall(r"[#:][A-Za-z0-9_]+", text))
        unused = [
            k
            for k in (
                *(op.get("ExpressionAttributeNames") or {}),
                *(op.get("ExpressionAttributeValues") or {}),
            )
            if k not in used
        ]
        if unused:
            raise _error(
                "ValidationException",
                f"Value provided in ExpressionAttribute* unused in expressions: {unused}",
            )

    def _condition_holds(self, op: Mapping[str, Any], current: dict[str, Any] | None) -> bool:
        self._validate(op)
        expr = op.get("ConditionExpression")
        if not expr:
            return True
        return _Cond(
            expr, op.get("ExpressionAttributeNames") or {}, op.get("ExpressionAttributeValues") or {}
        ).evaluate(current)

    def _updated(self, key: tuple[str, str], op: Mapping[str, Any]) -> dict[str, Any]:
        # A shallow copy is enough: an update replaces whole attribute values, never edits them.
        current = dict(self.items.get(key) or {"pk": {"S": key[0]}, "sk": {"S": key[1]}})
        _apply_update(
            current,
            op["UpdateExpression"],
            op.get("ExpressionAttributeNames") or {},
            op.get("ExpressionAttributeValues") or {},
        )
        return current

    # -- API -----------------------------------------------------------------------------------

    def get_item(self, *, TableName: str, Key: Mapping[str, Any], **op: Any) -> dict[str, Any]:
        self._check_table(TableName)
        self._validate(op)
        item = self.items.get(self._key(Key))
        return {"Item": copy.deepcopy(item)} if item is not None else {}

    def put_item(self, *, TableName: str, Item: Mapping[str, Any], **op: Any) -> dict[str, Any]:
        self._check_table(TableName)
        key = self._key(Item)
        current = self.items.get(key)
        if not self._condition_holds(op, current):
            raise _error("ConditionalCheckFailedException", "The conditional request failed")
        self.items[key] = copy.deepcopy(dict(Item))
        return {}

    def update_item(self, *, TableName: str, Key: Mapping[str, Any], **op: Any) -> dict[str, Any]:
        self._check_table(TableName)
        key = self._key(Key)
        current = self.items.get(key)
        if not self._condition_holds(op, current):
            extra = {}
            if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current is not None:
                extra["Item"] = copy.deepcopy(current)
            raise _error("ConditionalCheckFailedException", "The conditional request failed", **extra)
        new = self._updated(key, op)
        self.items[key] = new
        if op.get("ReturnValues") == "ALL_NEW":
            return {"Attributes": copy.deepcopy(new)}
        return {}

    def delete_item(self, *, TableName: str, Key: Mapping[str, Any], **op: Any) -> dict[str, Any]:
        self._check_table(TableName)
        key = self._key(Key)
        if not self._condition_holds(op, self.items.get(key)):
            raise _error("ConditionalCheckFailedException", "The conditional request failed")
        self.items.pop(key, None)
        return {}

    def transact_write_items(self, *, TransactItems: Sequence[Mapping[str, Any]], **_: Any) -> dict[str, Any]:
        if len(TransactItems) > 100:
            raise _error("ValidationException", "too many items")
        keys = set()
        staged: list[tuple[tuple[str, str], dict[str, Any] | None]] = []
        reasons: list[dict[str, Any]] = []
        failed = False
        for entry in TransactItems:
            ((kind, op),) = entry.items()
            self._check_table(op["TableName"])
            key = self._key(op["Item"] if kind == "Put" else op["Key"])
            if key in keys:
                raise _error(
                    "ValidationException",
                    "Transaction request cannot include multiple operations on one item",
                )
            keys.add(key)
            current = self.items.get(key)
            if not self._condition_holds(op, current):
                failed = True
                reason: dict[str, Any] = {
                    "Code": "ConditionalCheckFailed",
                    "Message": "The conditional request failed",
                }
                if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current is not None:
                    reason["Item"] = copy.deepcopy(current)
                reasons.append(reason)
                continue
            reasons.append({"Code": "None"})
            if kind == "Put":
                staged.append((key, copy.deepcopy(dict(op["Item"]))))
            elif kind == "Update":
                staged.append((key, self._updated(key, op)))
            elif kind == "Delete":
                staged.append((key, None))
        if failed:
            codes = ", ".join(r["Code"] for r in reasons)
            raise _error(
                "TransactionCanceledException",
                f"Transaction cancelled, please refer cancellation reasons for specific reasons [{codes}]",
                CancellationReasons=reasons,
            )
        for key, value in staged:
            if value is None:
                self.items.pop(key, None)
            else:
                self.items[key] = value
        return {}

    def query(self, **op: Any) -> dict[str, Any]:
        self._check_table(op["TableName"])
        self._validate(op)
        names = op.get("ExpressionAttributeNames") or {}
        values = op.get("ExpressionAttributeValues") or {}
        key_cond = _Cond(op["KeyConditionExpression"], names, values)
        filt = _Cond(op["FilterExpression"], names, values) if op.get("FilterExpression") else None
        index = op.get("IndexName")
        if index:
            _, hash_attr, range_attr = self.gsi
            candidates = [it for it in self.items.values() if hash_attr in it and range_attr in it]
            candidates.sort(key=lambda it: (it[hash_attr]["S"], it[range_attr]["S"], it["pk"]["S"]))
        else:
            candidates = [self.items[k] for k in sorted(self.items)]
        matched = [it for it in candidates if key_cond.evaluate(it)]
        start = 0
        if op.get("ExclusiveStartKey"):
            last = self._key(op["ExclusiveStartKey"])
            for i, it in enumerate(matched):
                if self._key(it) == last:
                    start = i + 1
                    break
        limit = op.get("Limit") or len(matched)
        page = matched[start : start + limit]
        out = [copy.deepcopy(it) for it in page if filt is None or filt.evaluate(it)]
        response: dict[str, Any] = {"Items": out, "Count": len(out)}
        if start + limit < len(matched):
            response["LastEvaluatedKey"] = {"pk": page[-1]["pk"], "sk": page[-1]["sk"]}
        return response
