"""Task items, the task counts on run items, and jobs not tied to a run yet.

One Batch event becomes at most one `TransactWriteItems` call:

* the task item, `Update` conditioned on the state the caller believes is stored: absent
  (`attribute_not_exists(pk)`) or a given `order` (`#order = :previous`). The caller only writes
  when the new order is higher, so a task never moves backwards; pinning the previous order makes
  the count update exact without reading the item inside the write;
* the run item, `Update` with `ADD tasks_<new> 1, tasks_<previous> -1` (exact because the task
  condition pins the previous status), `last_change`, `first_failure` (`if_not_exists`), and when
  asked the move to Running (conditioned on `status_rank < Running`) or the creation of an adopted
  run (conditioned on `attribute_not_exists(pk)`);
* optionally the EARLY_FAILURE outbox event (`attribute_not_exists`), with the run conditioned on
  having no `first_failure` and not being finished;
* optionally the unattributed item of the job, turned into a pointer to its run.

When a condition fails, DynamoDB cancels the whole transaction and (with
`ReturnValuesOnConditionCheckFailure = ALL_OLD`) returns what is stored, so the caller can
correct its belief and try again without an extra read. `TransactionConflict` (another
transaction on the same items) is retried here with jittered backoff.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from courier.errors import LedgerError
from courier.ledger import schema as s
from courier.ledger._codec import conditional_failure, from_item, iso, query_items, serialize, to_item
from courier.models import NotificationKind, RunStatus, TaskStatus

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

#: Task items outlive their run's retention by this much (written with the item; no bulk TTL).
TASK_EXTRA_RETENTION: Final = timedelta(days=30)
UNATTRIBUTED_RETENTION: Final = timedelta(days=14)
EARLY_FAILURE_DISCRIMINATOR: Final = "first"
ORIGIN_ADOPTED: Final = "adopted"

_RETRYABLE_REASONS: Final = frozenset(
    {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
)
_NON_TERMINAL: Final = tuple(st for st in TaskStatus if not st.terminal)


def _opt_iso(ts: datetime | None) -> str | None:
    return iso(ts) if ts is not None else None


@dataclass(frozen=True, slots=True)
class StoredTask:
    """What the ledger holds for a task, as far as ordering is concerned."""

    status: TaskStatus
    order: int

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> StoredTask | None:
        try:
            return cls(TaskStatus(item["status"]), int(item["order"]))
        except (KeyError, ValueError, TypeError):
            return None


@dataclass(frozen=True, slots=True)
class TaskWrite:
    """One task item as the latest Batch event describes it."""

    job_id: str
    job_name: str
    call: str
    shard: int
    attempt: int
    workflow_id: str
    root_workflow_id: str
    status: TaskStatus
    order: int
    batch_attempts: int
    event_time: datetime
    queue: str
    log_group: str
    attribution: str
    call_source: str
    status_reason: str | None = None
    exit_code: int | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    vcpus: float | None = None
    memory_mib: int | None = None
    log_stream: str | None = None

    def summary(self) -> dict[str, Any]:
        """The task as the run item's `last_change` / `first_failure` and alert payloads show it."""
        return {
            "job_id": self.job_id,
            "call": self.call,
            "shard": self.shard,
            "attempt": self.attempt,
            "status": self.status.value,
            "status_reason": self.status_reason,
            "exit_code": self.exit_code,
            "queue": self.queue,
            "log_group": self.log_group,
            "log_stream": self.log_stream,
            "at": iso(self.event_time),
        }


@dataclass(frozen=True, slots=True)
class Adoption:
    """Create the run item (origin `adopted`) when a run's jobs are seen before it is recorded."""

    submitted_at: datetime
    workflow_name: str | None = None


@dataclass(frozen=True, slots=True)
class RunPlan:
    """What the run side of one transition does besides the counts."""

    promote_running: bool = False
    early_failure: bool = False
    adopt: Adoption | None = None


@dataclass(frozen=True, slots=True)
class Pointer:
    """Turn the job's unattributed item into a pointer to its run, in the same transaction.
    `seen_order` is the order of the unattributed item the caller replays."""

    seen_order: int


@dataclass(slots=True)
class TransitionResult:
    applied: bool
    #: The task condition failed; `task_item` is what is stored (None: the item is absent).
    task_conflict: bool = False
    task_item: dict[str, Any] | None = None
    #: The run condition failed; `run_item` is what is stored (None: the run is absent).
    run_conflict: bool = False
    run_item: dict[str, Any] | None = None
    event_conflict: bool = False
    pointer_conflict: bool = False
    write_calls: int = 0


@dataclass(frozen=True, slots=True)
class RunCounts:
    status: RunStatus | None
    status_rank: int
    counts: Mapping[str, int] = field(default_factory=dict)
    has_first_failure: bool = False
    workflow_name: str | None = None
    exists: bool = True

    @property
    def unfinished_tasks(self) -> int:
        return sum(max(0, int(self.counts.get(st.value, 0))) for st in _NON_TERMINAL)

    @property
    def total_tasks(self) -> int:
        return sum(max(0, int(n)) for n in self.counts.values())


class TaskLedger:
    """Adapter over the ledger table for task items and unattributed jobs. Client injected."""

    def __init__(
        self,
        table_name: str,
        client: DynamoDBClient,
        *,
        retention_days: int = 90,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_conflict_retries: int = 6,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.table_name = table_name
        self.client = client
        self.retention = timedelta(days=retention_days)
        self.clock = clock
        self.max_conflict_retries = max_conflict_retries
        self._sleep = sleep
        self._rand = rand

    # -- reads ---------------------------------------------------------------------------------

    def get_task(self, root_workflow_id: str, job_id: str) -> StoredTask | None:
        resp = self.client.get_item(
            TableName=self.table_name,
            Key=to_item({s.PK: s.run_pk(root_workflow_id), s.SK: s.task_sk(job_id)}),
            ConsistentRead=True,
            ProjectionExpression="#st, #o",
            ExpressionAttributeNames={"#st": "status", "#o": "order"},
        )
        item = resp.get("Item")
        return StoredTask.from_item(from_item(item)) if item else None

    def get_task_item(self, root_workflow_id: str, job_id: str) -> dict[str, Any] | None:
        resp = self.client.get_item(
            TableName=self.table_name,
            Key=to_item({s.PK: s.run_pk(root_workflow_id), s.SK: s.task_sk(job_id)}),
            ConsistentRead=True,
        )
        item = resp.get("Item")
        return from_item(item) if item else None

    def run_counts(self, workflow_id: str) -> RunCounts:
        """Status, rank, task counts and whether a first failure is recorded (one GetItem)."""
        resp = self.client.get_item(
            TableName=self.table_name,
            Key=to_item({s.PK: s.run_pk(workflow_id), s.SK: s.RUN_SK}),
            ConsistentRead=True,
        )
        raw = resp.get("Item")
        if not raw:
            return RunCounts(status=None, status_rank=0, exists=False)
        return run_counts_from_item(from_item(raw))

    def get_unattributed(self, job_id: str) -> dict[str, Any] | None:
        resp = self.client.get_item(
            TableName=self.table_name,
            Key=to_item({s.PK: s.UNATTRIBUTED_PK, s.SK: s.unattributed_sk(job_id)}),
            ConsistentRead=True,
        )
        item = resp.get("Item")
        return from_item(item) if item else None

    def pending_unattributed(self, limit: int = 1000) -> list[dict[str, Any]]:
        """Unattributed jobs not tied to a run yet (pointers left out), at most `limit`."""
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "#pk = :pk",
            "FilterExpression": "attribute_not_exists(#to)",
            "ExpressionAttributeNames": {"#pk": s.PK, "#to": "attributed_to"},
            "ExpressionAttributeValues": {":pk": serialize(s.UNATTRIBUTED_PK)},
            "ConsistentRead": True,
        }
        return list(query_items(self.client, kwargs, limit))

    # -- writes --------------------------------------------------------------------------------

    def transition(
        self,
        task: TaskWrite,
        previous: StoredTask | None,
        plan: RunPlan = RunPlan(),
        *,
        pointer: Pointer | None = None,
    ) -> TransitionResult:
        """Write one task transition and its run counts in one transaction (see module doc).

        The caller guarantees `task.order > previous.order`. Returns `applied=False` with what
        is stored when a condition failed; nothing was written then.
        """
        if previous is not None and task.order <= previous.order:
            raise ValueError("a transition must move a task forward")
        items: list[dict[str, Any]] = [
            self._task_update(task, previous),
            self._run_update(task, previous, plan),
        ]
        event_index = pointer_index = -1
        if plan.early_failure:
            event_index = len(items)
            items.append(self._early_failure_put(task))
        if pointer is not None:
            pointer_index = len(items)
            items.append(self._pointer_update(task, pointer))
        result = TransitionResult(applied=False)
        for attempt in range(1, self.max_conflict_retries + 1):
            result.write_calls += 1
            try:
                self.client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
                result.applied = True
                return result
            except ClientError as exc:
                reasons = _cancellation_reasons(exc)
                codes = [r.get("Code") for r in reasons]
                if any(code in _RETRYABLE_REASONS for code in codes) or (not reasons and _is_conflict(exc)):
                    if attempt < self.max_conflict_retries:
                        self._sleep(self._backoff(attempt))
                        continue
                    raise LedgerError(
                        f"task {task.job_id}: transaction kept conflicting after {attempt} tries"
                    ) from exc
                if not any(code == "ConditionalCheckFailed" for code in codes):
                    raise
                failed = [code == "ConditionalCheckFailed" for code in codes]
                if failed[0]:
                    result.task_conflict = True
                    result.task_item = _old_item(reasons[0])
                if len(failed) > 1 and failed[1]:
                    result.run_conflict = True
                    result.run_item = _old_item(reasons[1])
                if event_index > 0 and len(failed) > event_index and failed[event_index]:
                    result.event_conflict = True
                if pointer_index > 0 and len(failed) > pointer_index and failed[pointer_index]:
                    result.pointer_conflict = True
                return result
        return result  # pragma: no cover - the loop always returns or raises

    def keep_unattributed(
        self,
        *,
        job_id: str,
        job_name: str,
        status: TaskStatus,
        order: int,
        event_time: datetime,
        event_json: str,
        reason: str,
        queue: str,
    ) -> tuple[bool, dict[str, Any] | None]:
        """Keep the latest event of a job not tied to a run yet (pk UNATTRIBUTED, sk JOB#<id>).

        Returns (written, stored). `stored` is the item already there when nothing was written:
        a pointer (`attributed_to` set: the reconciler tied the job meanwhile) or a later event.
        """
        now = self.clock()
        values = {
            s.TYPE: s.ITEM_UNATTRIBUTED,
            "job_id": job_id,
            "job_name": job_name,
            "status": status.value,
            "order": order,
            "queue": queue,
            "event": event_json,
            "reason": reason,
            "event_time": iso(event_time),
            "updated_at": iso(now),
            s.TTL_ATTR: int((event_time + self.retention + UNATTRIBUTED_RETENTION).timestamp()),
        }
        names, vals, sets = _set_clause(values)
        names.update({"#pk": s.PK, "#o": "order", "#to": "attributed_to", "#fs": "first_seen"})
        vals[":fs"] = serialize(iso(now))
        sets.append("#fs = if_not_exists(#fs, :fs)")
        vals[":new_order"] = serialize(order)
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=to_item({s.PK: s.UNATTRIBUTED_PK, s.SK: s.unattributed_sk(job_id)}),
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression=(
                    "attribute_not_exists(#pk) OR (attribute_not_exists(#to) AND #o < :new_order)"
                ),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=vals,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return True, None
        except ClientError as exc:
            if not conditional_failure(exc):
                raise
            old: Any = exc.response.get("Item")
            if isinstance(old, Mapping) and old:
                return False, from_item(old)
            return False, self.get_unattributed(job_id)

    def mark_attributed(self, task: TaskWrite, pointer: Pointer) -> bool:
        """Turn a job's unattributed item into a pointer when its task is recorded already."""
        update = self._pointer_update(task, pointer)["Update"]
        try:
            self.client.update_item(**update)
            return True
        except ClientError as exc:
            if conditional_failure(exc):
                return False
            raise

    def adopt_run(
        self, workflow_id: str, *, status: RunStatus, workflow_name: str | None, submitted_at: datetime
    ) -> bool:
        """Create the run item of a workflow found running in Cromwell but unknown to the ledger."""
        if status.terminal:
            raise ValueError("adopt only unfinished runs")
        now = self.clock()
        item = {
            s.PK: s.run_pk(workflow_id),
            s.SK: s.RUN_SK,
            s.TYPE: s.ITEM_RUN,
            "workflow_id": workflow_id,
            "workflow_name": workflow_name,
            "status": status.value,
            "status_rank": status.rank,
            "origin": ORIGIN_ADOPTED,
            "submitted_at": iso(submitted_at),
            "updated_at": iso(now),
            s.ACTIVE_PK: s.ACTIVE_PARTITION,
            s.ACTIVE_SK: f"{iso(submitted_at)}#{workflow_id}",
        }
        if status is RunStatus.RUNNING:
            item["started_at"] = iso(now)
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=to_item(item),
                ConditionExpression="attribute_not_exists(#pk)",
                ExpressionAttributeNames={"#pk": s.PK},
            )
            return True
        except ClientError as exc:
            if conditional_failure(exc):
                return False
            raise

    # -- transaction items ---------------------------------------------------------------------

    def _task_update(self, task: TaskWrite, previous: StoredTask | None) -> dict[str, Any]:
        values: dict[str, Any] = {
            s.TYPE: s.ITEM_TASK,
            "job_id": task.job_id,
            "job_name": task.job_name,
            "call": task.call,
            "shard": task.shard,
            "attempt": task.attempt,
            "workflow_id": task.workflow_id,
            "root_workflow_id": task.root_workflow_id,
            "status": task.status.value,
            "order": task.order,
            "batch_attempts": task.batch_attempts,
            "status_reason": task.status_reason,
            "exit_code": task.exit_code,
            "created_at": _opt_iso(task.created_at),
            "started_at": _opt_iso(task.started_at),
            "stopped_at": _opt_iso(task.stopped_at),
            "vcpus": task.vcpus,
            "memory_mib": task.memory_mib,
            "queue": task.queue,
            "log_group": task.log_group,
            "log_stream": task.log_stream,
            "attribution": task.attribution,
            "call_source": task.call_source,
            "event_time": iso(task.event_time),
            "updated_at": iso(self.clock()),
            s.TTL_ATTR: int((task.event_time + self.retention + TASK_EXTRA_RETENTION).timestamp()),
        }
        if task.status is TaskStatus.RUNNABLE:
            values["runnable_at"] = iso(task.event_time)
        names, vals, sets = _set_clause(values)
        names["#pk"] = s.PK
        if previous is None:
            condition = "attribute_not_exists(#pk)"
        else:
            names["#prev_o"] = "order"
            vals[":prev_o"] = serialize(previous.order)
            condition = "#prev_o = :prev_o"
        _prune(names, vals, "SET " + ", ".join(sets), condition)
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": to_item({s.PK: s.run_pk(task.root_workflow_id), s.SK: s.task_sk(task.job_id)}),
                "UpdateExpression": "SET " + ", ".join(sets),
                "ConditionExpression": condition,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": vals,
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def _run_update(self, task: TaskWrite, previous: StoredTask | None, plan: RunPlan) -> dict[str, Any]:
        now = self.clock()
        summary = task.summary()
        values: dict[str, Any] = {"updated_at": iso(now), "last_change": summary}
        names, vals, sets = _set_clause(values, prefix="r")
        names.update({"#pk": s.PK, "#rank": "status_rank", "#st": "status"})
        conditions: list[str] = []
        if task.status is TaskStatus.FAILED:
            names["#ff"] = "first_failure"
            vals[":ff"] = serialize(summary)
            sets.append("#ff = if_not_exists(#ff, :ff)")
        if plan.adopt is not None:
            status = RunStatus.RUNNING if plan.promote_running else RunStatus.SUBMITTED
            adopted = {
                "workflow_id": task.root_workflow_id,
                s.TYPE: s.ITEM_RUN,
                "origin": ORIGIN_ADOPTED,
                "submitted_at": iso(plan.adopt.submitted_at),
                s.ACTIVE_PK: s.ACTIVE_PARTITION,
                s.ACTIVE_SK: f"{iso(plan.adopt.submitted_at)}#{task.root_workflow_id}",
                "workflow_name": plan.adopt.workflow_name,
            }
            more_names, more_vals, more_sets = _set_clause(adopted, prefix="a")
            names.update(more_names)
            vals.update(more_vals)
            sets.extend(more_sets)
            vals[":st"] = serialize(status.value)
            vals[":rank"] = serialize(status.rank)
            sets += ["#st = :st", "#rank = :rank"]
            if plan.promote_running:
                vals[":started"] = serialize(iso(task.started_at or task.event_time))
                sets.append("started_at = :started")
            conditions.append("attribute_not_exists(#pk)")
        else:
            conditions.append("attribute_exists(#pk)")
            if plan.promote_running:
                vals[":st"] = serialize(RunStatus.RUNNING.value)
                vals[":rank"] = serialize(RunStatus.RUNNING.rank)
                vals[":started"] = serialize(iso(task.started_at or task.event_time))
                sets += ["#st = :st", "#rank = :rank", "started_at = if_not_exists(started_at, :started)"]
                conditions.append("#rank < :rank")
            if plan.early_failure:
                names["#ff"] = "first_failure"
                vals[":final"] = serialize(RunStatus.SUCCEEDED.rank)
                conditions.append("attribute_not_exists(#ff) AND #rank < :final")
        new_count = s.count_attr(task.status.value)
        names["#cnew"] = new_count
        vals[":one"] = serialize(1)
        adds = ["#cnew :one"]
        if previous is not None and previous.status is not task.status:
            names["#cold"] = s.count_attr(previous.status.value)
            vals[":minus"] = serialize(-1)
            adds.append("#cold :minus")
        elif previous is not None:
            adds = []
            del names["#cnew"], vals[":one"]
        expression = "SET " + ", ".join(sets) + (" ADD " + ", ".join(adds) if adds else "")
        condition = " AND ".join(conditions)
        _prune(names, vals, expression, condition)
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": to_item({s.PK: s.run_pk(task.root_workflow_id), s.SK: s.RUN_SK}),
                "UpdateExpression": expression,
                "ConditionExpression": condition,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": vals,
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def _early_failure_put(self, task: TaskWrite) -> dict[str, Any]:
        now = self.clock()
        item = {
            s.PK: s.run_pk(task.root_workflow_id),
            s.SK: s.event_sk(NotificationKind.EARLY_FAILURE.value, EARLY_FAILURE_DISCRIMINATOR),
            s.TYPE: s.ITEM_EVENT,
            "kind": NotificationKind.EARLY_FAILURE.value,
            "workflow_id": task.root_workflow_id,
            "created_at": iso(now),
            "payload": {"task": task.summary(), "sub_workflow_id": task.workflow_id},
            s.TTL_ATTR: int((now + self.retention).timestamp()),
        }
        return {
            "Put": {
                "TableName": self.table_name,
                "Item": to_item(item),
                "ConditionExpression": "attribute_not_exists(#pk)",
                "ExpressionAttributeNames": {"#pk": s.PK},
            }
        }

    def _pointer_update(self, task: TaskWrite, pointer: Pointer) -> dict[str, Any]:
        values = {
            "attributed_to": task.root_workflow_id,
            "workflow_id": task.workflow_id,
            "call": task.call,
            "shard": task.shard,
            "attempt": task.attempt,
            "attributed_at": iso(self.clock()),
        }
        names, vals, sets = _set_clause(values, prefix="p")
        names.update({"#o": "order", "#to": "attributed_to"})
        vals[":seen"] = serialize(pointer.seen_order)
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": to_item({s.PK: s.UNATTRIBUTED_PK, s.SK: s.unattributed_sk(task.job_id)}),
                "UpdateExpression": "SET " + ", ".join(sets),
                "ConditionExpression": "#o = :seen AND attribute_not_exists(#to)",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": vals,
            }
        }

    def _backoff(self, attempt: int) -> float:
        return min(1.0, 0.02 * 2.0 ** (attempt - 1)) * self._rand()


def run_counts_from_item(item: Mapping[str, Any]) -> RunCounts:
    counts = {
        key[len(s.TASK_COUNT_PREFIX) :]: int(value)
        for key, value in item.items()
        if key.startswith(s.TASK_COUNT_PREFIX) and isinstance(value, int | float)
    }
    raw_status = item.get("status")
    try:
        status: RunStatus | None = RunStatus(raw_status) if raw_status else None
    except ValueError:
        status = None
    return RunCounts(
        status=status,
        status_rank=int(item.get("status_rank") or 0),
        counts=counts,
        has_first_failure="first_failure" in item,
        workflow_name=item.get("workflow_name"),
    )


def _set_clause(
    values: Mapping[str, Any], prefix: str = "f"
) -> tuple[dict[str, str], dict[str, Any], list[str]]:
    names: dict[str, str] = {}
    vals: dict[str, Any] = {}
    sets: list[str] = []
    for i, (key, value) in enumerate(values.items()):
        if value is None:
            continue
        names[f"#{prefix}{i}"] = key
        vals[f":{prefix}{i}"] = serialize(value)
        sets.append(f"#{prefix}{i} = :{prefix}{i}")
    return names, vals, sets


def _prune(names: dict[str, str], values: dict[str, Any], *expressions: str) -> None:
    """DynamoDB refuses names and values an expression does not use."""
    used = set(re.findall(r"[#:][A-Za-z0-9_]+", " ".join(expressions)))
    for key in [k for k in names if k not in used]:
        del names[key]
    for key in [k for k in values if k not in used]:
        del values[key]


def _cancellation_reasons(exc: ClientError) -> Sequence[Mapping[str, Any]]:
    if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        if _is_conflict(exc):
            return []
        raise exc
    reasons = exc.response.get("CancellationReasons")
    if reasons:
        return list(reasons)
    # Some clients leave the reasons out of the parsed response: read them from the message.
    message = exc.response.get("Error", {}).get("Message", "")
    inside = message[message.find("[") + 1 : message.rfind("]")] if "[" in message else ""
    return [{"Code": code.strip()} for code in inside.split(",") if code.strip()]


def _is_conflict(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in (
        "TransactionConflictException",
        "ThrottlingException",
    )


def _old_item(reason: Mapping[str, Any]) -> dict[str, Any] | None:
    item = reason.get("Item")
    return from_item(item) if item else None
