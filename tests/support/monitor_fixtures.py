"""Fixtures for the monitor tests: Batch events as each Cromwell generation produces them, a fake
Cromwell, a call-counting DynamoDB wrapper, and `MemoryDynamoDB`, an in-memory DynamoDB client
implementing the expression semantics the ledger uses (conditions, SET/ADD/REMOVE,
`if_not_exists`, transactions with cancellation reasons and ALL_OLD), checked against moto by
`tests/integration/test_monitor_scatter.py`."""

from __future__ import annotations

import base64
import copy
import functools
import json
import re
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from courier.conventions import job_name_for_call, script_prefix
from courier.errors import CromwellNotFound
from local.stack.wiring import function_url_event

ACCOUNT = "123456789012"
REGION = "us-east-1"
QUEUE_ARN = f"arn:aws:batch:{REGION}:{ACCOUNT}:job-queue/cromwell-default"
T0 = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)


def ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


class Ctx:
    """A Lambda context for the Powertools decorators."""

    function_name = "monitor"
    memory_limit_in_mb = 512
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:monitor"
    aws_request_id = "req-1"
    function_version = "$LATEST"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


# -- Batch events ------------------------------------------------------------------------------


@dataclass
class Job:
    """One Batch job Cromwell submitted, and the generation-specific way it identifies itself."""

    call: str
    root: str
    shard: int = -1
    attempt: int = 1
    workflow_id: str | None = None  # sub-workflow's own id
    job_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    generation: int = 92  # 85 (nothing), 86-90 (callback only), 91 (script prefix), 92+ (tags)
    tags_in_event: bool = True  # Cromwell 92: tags on the event; False: only via ListTagsForResource
    vcpus: int = 2
    memory: int = 4096
    root_name: str = "wf"

    @property
    def arn(self) -> str:
        return f"arn:aws:batch:{REGION}:{ACCOUNT}:job/{self.job_id}"

    @property
    def task_id(self) -> str:
        shard = "None" if self.shard < 0 else f"Some_{self.shard}_"
        return f"{self.call}-{shard}-{self.attempt}"

    def tags(self) -> dict[str, str]:
        return {
            "cromwell-root-workflow-id": self.root,
            "cromwell-root-workflow-name": self.root_name,
            "cromwell-workflow-id": self.workflow_id or self.root,
            "cromwell-workflow-name": self.call.split(".")[0],
            "cromwell-task-id": self.task_id,
        }

    def script_url(self) -> str:
        prefix = script_prefix(self.root) if self.generation >= 91 else "scripts/"
        return f"s3://cromwell-scripts/{prefix}{uuid.uuid5(uuid.NAMESPACE_URL, self.job_id).hex}"

    def event(
        self,
        status: str,
        *,
        at: datetime | None = None,
        batch_attempts: int = 0,
        exit_code: int | None = None,
        reason: str | None = None,
        kind: str = "Batch Job State Change",
        log_group: str | None = None,
    ) -> dict[str, Any]:
        at = at or T0
        container: dict[str, Any] = {
            "image": "ubuntu:22.04",
            "command": ["/bin/bash", "-c", "..."],
            "volumes": [],
            "environment": [
                {"name": "BATCH_FILE_TYPE", "value": "script"},
                {"name": "BATCH_FILE_S3_URL", "value": self.script_url()},
            ],
            "mountPoints": [],
            "ulimits": [],
            "networkInterfaces": [],
            "resourceRequirements": [
                {"value": str(self.vcpus), "type": "VCPU"},
                {"value": str(self.memory), "type": "MEMORY"},
            ],
            "secrets": [],
        }
        if log_group:
            container["logConfiguration"] = {
                "logDriver": "awslogs",
                "options": {"awslogs-group": log_group},
                "secretOptions": [],
            }
        detail: dict[str, Any] = {
            "jobArn": self.arn,
            "jobName": job_name_for_call(self.call),
            "jobId": self.job_id,
            "jobQueue": QUEUE_ARN,
            "status": status,
            "attempts": [
                {
                    "container": {"exitCode": 137, "logStreamName": f"cromwell/default/{self.job_id}-{i}"},
                    "startedAt": ms(at) - 60_000,
                    "stoppedAt": ms(at) - 30_000,
                    "statusReason": "Host EC2 terminated",
                }
                for i in range(batch_attempts)
            ],
            "createdAt": ms(T0),
            "retryStrategy": {"attempts": 3, "evaluateOnExit": []},
            "dependsOn": [],
            "jobDefinition": f"arn:aws:batch:{REGION}:{ACCOUNT}:job-definition/cromwell_ubuntu_22_04_abc:1",
            "parameters": {},
            "container": container,
            "propagateTags": False,
            "platformCapabilities": [],
            "eksAttempts": [],
        }
        if reason:
            detail["statusReason"] = reason
        if status in ("STARTING", "RUNNING", "SUCCEEDED", "FAILED") and reason != "cromwell abort called":
            detail["startedAt"] = ms(at) - 1000
            container["logStreamName"] = f"cromwell/default/{self.job_id}"
        if status in ("SUCCEEDED", "FAILED"):
            detail["stoppedAt"] = ms(at)
            if exit_code is not None:
                container["exitCode"] = exit_code
        if self.generation >= 92 and self.tags_in_event:
            detail["tags"] = {"resourceArn": self.arn, **self.tags()}
        else:
            detail["tags"] = {"resourceArn": self.arn}
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": kind,
            "source": "aws.batch",
            "account": ACCOUNT,
            "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": REGION,
            "resources": [self.arn] + ([QUEUE_ARN] if kind != "Batch Job State Change" else []),
            "detail": detail,
        }


def lifecycle(job: Job, *, final: str = "SUCCEEDED", start: datetime = T0) -> list[dict[str, Any]]:
    """The events of one job from RUNNABLE to the end (Batch sends none for SUBMITTED)."""
    steps = ["PENDING", "RUNNABLE", "STARTING", "RUNNING", final]
    return [
        job.event(st, at=start + timedelta(seconds=i), exit_code=0 if final == "SUCCEEDED" else 1)
        for i, st in enumerate(steps)
    ]


def sqs_batch(events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """An SQS event as Lambda delivers it, one EventBridge event per message."""
    records = []
    for i, event in enumerate(events):
        body = json.dumps(event)
        records.append(
            {
                "messageId": str(uuid.uuid5(uuid.NAMESPACE_OID, f"{i}-{body}")),
                "receiptHandle": f"AQEB{i}",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1772445600000",
                    "SenderId": "AIDAEVENTBRIDGE",
                    "ApproximateFirstReceiveTimestamp": "1772445600001",
                },
                "messageAttributes": {},
                "md5OfBody": "0" * 32,
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:courier-batch-events",
                "awsRegion": REGION,
            }
        )
    return {"Records": records}


# -- Cromwell ----------------------------------------------------------------------------------


@dataclass
class Row:
    id: str
    status: str
    name: str | None = None
    submission: str | None = None
    parent_workflow_id: str | None = None


class FakeCromwell:
    """Answers like CromwellClient; records every call."""

    def __init__(self) -> None:
        self.status_of: dict[str, str] = {}
        self.outputs_of: dict[str, dict[str, Any]] = {}
        self.failed_of: dict[str, dict[str, Any]] = {}
        self.metadata_of: dict[str, dict[str, Any]] = {}
        self.names: dict[str, str] = {}
        self.calls: list[tuple[str, Any]] = []

    def status(self, workflow_id: str) -> str:
        self.calls.append(("status", workflow_id))
        if workflow_id not in self.status_of:
            raise CromwellNotFound("Unrecognized workflow ID", http_status=404)
        return self.status_of[workflow_id]

    def statuses(self, workflow_ids: Sequence[str]) -> dict[str, str]:
        ids = list(dict.fromkeys(workflow_ids))
        for start in range(0, len(ids), 100):
            self.calls.append(("query", len(ids[start : start + 100])))
        return {wid: self.status_of[wid] for wid in ids if wid in self.status_of}

    def outputs(self, workflow_id: str) -> dict[str, Any]:
        self.calls.append(("outputs", workflow_id))
        return dict(self.outputs_of.get(workflow_id, {}))

    def failed_jobs(self, workflow_id: str) -> dict[str, Any]:
        self.calls.append(("failed_jobs", workflow_id))
        return self.failed_of.get(workflow_id, {"id": workflow_id, "calls": {}})

    def metadata(
        self,
        workflow_id: str,
        include_keys: Sequence[str] = (),
        exclude_keys: Sequence[str] = (),
        *,
        expand_subworkflows: bool = False,
    ) -> dict[str, Any]:
        assert include_keys or exclude_keys, "metadata must always be filtered"
        self.calls.append(("metadata", (workflow_id, tuple(include_keys), tuple(exclude_keys))))
        if workflow_id not in self.metadata_of and workflow_id not in self.status_of:
            raise CromwellNotFound("Unrecognized workflow ID", http_status=404)
        return self.metadata_of.get(workflow_id, {"id": workflow_id})

    def query(self, filters: Sequence[tuple[str, str]], *, page_size: int = 100) -> Iterable[Row]:
        self.calls.append(("query", tuple(filters)))
        wanted = {v for k, v in filters if k == "status"}
        for wid, st in self.status_of.items():
            if not wanted or st in wanted:
                yield Row(wid, st, self.names.get(wid, "wf"), "2026-03-02T09:00:00.000Z")

    def count(self, name: str) -> int:
        return sum(1 for call, _ in self.calls if call == name)


class FakeTags:
    def __init__(self, tags: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self.by_arn = dict(tags or {})
        self.calls = 0

    def tags(self, job_arn: str) -> Mapping[str, str]:
        self.calls += 1
        return self.by_arn.get(job_arn, {})


# -- DynamoDB call counting --------------------------------------------------------------------


class CountingClient:
    """Wraps a DynamoDB client (moto or MemoryDynamoDB) and counts calls by operation."""

    WRITES = frozenset({"put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item"})

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.counts: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._inner, name)
        if not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            self.counts[name] += 1
            return target(*args, **kwargs)

        return call

    @property
    def writes(self) -> int:
        return sum(n for op, n in self.counts.items() if op in self.WRITES)

    @property
    def reads(self) -> int:
        return sum(n for op, n in self.counts.items() if op not in self.WRITES)

    def reset(self) -> None:
        self.counts.clear()


# -- in-memory DynamoDB ------------------------------------------------------------------------

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


# -- sample events in events/monitor/ ----------------------------------------------------------


def sample_id(name: str) -> str:
    """The ids used by the sample event files (uuid5 of a readable name)."""
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"courier-sample-{name}"))


ROOT92 = sample_id("root92")
SUB92 = sample_id("sub92")
ROOT91 = sample_id("root91")
ROOT85 = sample_id("root85")
ROOT_RETRY = sample_id("retry")
ROOT_ABORT = sample_id("abort")
ROOT_BLOCKED = sample_id("blocked")
CALLBACK_TOKEN = "local-callback-token-0123456789abcdef"
ROOT88 = sample_id("root88")


def function_url_request(
    body: Any,
    *,
    token: str | None = CALLBACK_TOKEN,
    b64: bool = False,
    length: int | None = None,
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Cromwell's callback as Lambda hands it to the function (a function URL request, payload
    format 2.0, every field Lambda sends). `body` is JSON-encoded unless it is text already;
    `length` overrides the Content-Length header."""
    raw = body if isinstance(body, str) else json.dumps(body)
    declared = str(len(raw.encode()) if length is None else length)
    sent = {"content-type": "application/json", "content-length": declared, **(headers or {})}
    query = f"token={token}" if token is not None else ""
    event = function_url_event(method, "/callback", query, sent, b"", HOST)
    event["body"] = base64.b64encode(raw.encode()).decode() if b64 else raw
    event["isBase64Encoded"] = b64
    return event


HOST = "abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws"
