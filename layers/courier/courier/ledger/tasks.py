"""The task ledger: task items, the task counts on run items, jobs not tied to a run yet, stuck
alerts and tasks filled in from Cromwell's metadata. The adapter over DynamoDB (client injected).

The requests it sends are built by `courier.ledger.transactions` (pure, unit-tested); the values
it takes and returns are in `courier.ledger.task_types`. What it adds is the sending: one
`TransactWriteItems` per transition, whose cancellation reasons (with
`ReturnValuesOnConditionCheckFailure = ALL_OLD`) say which condition failed and what is stored,
so the caller can correct its belief and try again without an extra read. `TransactionConflict`
(another transaction on the same items) and throttling are retried here with jittered backoff.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from courier.errors import LedgerError
from courier.ledger import schema as s
from courier.ledger import transactions as tx
from courier.ledger._codec import (
    cancelled_by_condition,
    conditional_failure,
    from_item,
    iso,
    query_items,
    to_item,
)
from courier.ledger.records import StuckPayload, TaskView
from courier.ledger.task_types import (
    Pointer,
    RunCounts,
    RunPlan,
    StoredTask,
    TaskWrite,
    TransitionResult,
    UnattributedJob,
)
from courier.models import RunStatus, TaskStatus

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

#: A transition that only moves the task and its run's counts.
NO_PLAN: Final = RunPlan()

_RETRYABLE_REASONS: Final = frozenset(
    {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
)


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

    def run_counts(self, workflow_id: str) -> RunCounts:
        """Status, rank, task counts and whether a first failure is recorded (one GetItem)."""
        resp = self.client.get_item(
            TableName=self.table_name,
            Key=to_item({s.PK: s.run_pk(workflow_id), s.SK: s.RUN_SK}),
            ConsistentRead=True,
        )
        raw = resp.get("Item")
        return RunCounts.from_item(from_item(raw)) if raw else RunCounts.absent()

    def get_unattributed(self, job_id: str) -> UnattributedJob | None:
        resp = self.client.get_item(
            TableName=self.table_name,
            Key=to_item({s.PK: s.UNATTRIBUTED_PK, s.SK: s.unattributed_sk(job_id)}),
            ConsistentRead=True,
        )
        item = resp.get("Item")
        return UnattributedJob.from_item(from_item(item)) if item else None

    def pending_unattributed(self, limit: int = 1000) -> list[UnattributedJob]:
        """Unattributed jobs not tied to a run yet (pointers left out), at most `limit`."""
        request = tx.pending_unattributed_query(self.table_name)
        return [UnattributedJob.from_item(item) for item in query_items(self.client, request, limit)]

    def stuck_candidates(
        self, workflow_id: str, entered_before: datetime, limit: int = 200
    ) -> list[TaskView]:
        """RUNNABLE tasks of a run since before `entered_before`, not alerted for this period."""
        request = tx.stuck_candidates_query(self.table_name, workflow_id, entered_before)
        return [TaskView.from_item(item) for item in query_items(self.client, request, limit)]

    def job_name_tasks(self, workflow_id: str, limit: int = 50_000) -> list[str]:
        """jobIds of the run's tasks whose call is only the job name."""
        request = tx.job_name_tasks_query(self.table_name, workflow_id)
        return [str(item.get("job_id")) for item in query_items(self.client, request, limit)]

    # -- writes --------------------------------------------------------------------------------

    def transition(
        self,
        task: TaskWrite,
        previous: StoredTask | None,
        plan: RunPlan = NO_PLAN,
        *,
        pointer: Pointer | None = None,
    ) -> TransitionResult:
        """Write one task transition and its run counts in one transaction
        (`courier.ledger.transactions`).

        The caller guarantees `task.order > previous.order`. Returns `applied=False` with what
        is stored when a condition failed; nothing was written then.
        """
        if previous is not None and task.order <= previous.order:
            raise ValueError("a transition must move a task forward")
        items = tx.transition_items(
            self.table_name, task, previous, plan, pointer, now=self.clock(), retention=self.retention
        )
        event_index = 2 if plan.early_failure else -1
        pointer_index = len(items) - 1 if pointer is not None else -1
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
                    stored = _old_item(reasons[0])
                    result.task_returned = stored is not None
                    result.stored_task = StoredTask.from_item(stored) if stored is not None else None
                if len(failed) > 1 and failed[1]:
                    result.run_conflict = True
                    stored = _old_item(reasons[1])
                    result.stored_run = RunCounts.from_item(stored) if stored is not None else None
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
    ) -> tuple[bool, UnattributedJob | None]:
        """Keep the latest event of a job not tied to a run yet (pk UNATTRIBUTED, sk JOB#<id>).

        Returns (written, stored). `stored` is the item already there when nothing was written:
        a pointer (`attributed_to` set: the reconciler tied the job meanwhile) or a later event.
        """
        request = tx.unattributed_update(
            self.table_name,
            job_id=job_id,
            job_name=job_name,
            status=status,
            order=order,
            event_time=event_time,
            event_json=event_json,
            reason=reason,
            queue=queue,
            now=self.clock(),
            retention=self.retention,
        )
        try:
            self.client.update_item(**request)
            return True, None
        except ClientError as exc:
            if not conditional_failure(exc):
                raise
            old: Any = exc.response.get("Item")
            if isinstance(old, Mapping) and old:
                return False, UnattributedJob.from_item(from_item(old))
            return False, self.get_unattributed(job_id)

    def mark_attributed(self, task: TaskWrite, pointer: Pointer) -> bool:
        """Turn a job's unattributed item into a pointer when its task is recorded already."""
        request = tx.pointer_update(self.table_name, task, pointer, now=self.clock())["Update"]
        return self._write_if(self.client.update_item, request)

    def adopt_run(
        self, workflow_id: str, *, status: RunStatus, workflow_name: str | None, submitted_at: datetime
    ) -> bool:
        """Create the run item of a workflow found running in Cromwell but unknown to the ledger."""
        if status.terminal:
            raise ValueError("adopt only unfinished runs")
        request = tx.adopted_run_put(
            self.table_name,
            workflow_id,
            status=status,
            workflow_name=workflow_name,
            submitted_at=submitted_at,
            now=self.clock(),
        )
        return self._write_if(self.client.put_item, request)

    def raise_stuck(self, workflow_id: str, task: TaskView, payload: StuckPayload) -> bool:
        """Insert the STUCK alert of this RUNNABLE period and mark the task, in one transaction.
        False when the alert exists already or the task left that RUNNABLE period.

        The alert is `STUCK#<jobId>` for the job's first Batch attempt and `STUCK#<jobId>#<n>`
        after `n` Batch retries (a retry moves the task back to RUNNABLE with a new
        `runnable_at`, and each such period may alert once)."""
        now = self.clock()
        runnable_at = iso(task.runnable_at) if task.runnable_at is not None else ""
        discriminator = s.attempt_discriminator(task.job_id, task.batch_attempts)
        items = [
            tx.outbox_put(
                self.table_name, workflow_id, payload, discriminator, now=now, retention=self.retention
            ),
            tx.stuck_mark_update(self.table_name, workflow_id, task.job_id, runnable_at, now=now),
        ]
        try:
            self.client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
            return True
        except ClientError as exc:
            if any(cancelled_by_condition(exc)):
                return False
            raise

    def fill_call(
        self, workflow_id: str, job_id: str, *, call: str, shard: int, attempt: int, sub_workflow_id: str
    ) -> bool:
        """Set call, shard, attempt and workflow from Cromwell's metadata on a task known only by
        its job name. False when the task was filled already (or is not such a task)."""
        return self._write_if(
            self.client.update_item,
            tx.call_fill_update(
                self.table_name,
                workflow_id,
                job_id,
                call=call,
                shard=shard,
                attempt=attempt,
                sub_workflow_id=sub_workflow_id,
            ),
        )

    # -- plumbing ------------------------------------------------------------------------------

    @staticmethod
    def _write_if(write: Callable[..., Any], request: Mapping[str, Any]) -> bool:
        """One conditional write (PutItem, UpdateItem): False when its condition failed."""
        try:
            write(**request)
            return True
        except ClientError as exc:
            if conditional_failure(exc):
                return False
            raise

    def _backoff(self, attempt: int) -> float:
        return min(1.0, 0.02 * 2.0 ** (attempt - 1)) * self._rand()


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
