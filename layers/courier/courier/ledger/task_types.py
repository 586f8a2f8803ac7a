"""Values the task ledger takes and returns: what a transition writes, what it assumes is stored,
what it found when a condition failed, a run's task counts and a job not tied to a run yet.

No DynamoDB here: `courier.ledger.transactions` turns these into transaction items and
`courier.ledger.tasks.TaskLedger` sends them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Self

from courier.ledger import schema as s
from courier.ledger.records import NOT_SCATTERED, TaskSummary, as_int, as_str
from courier.models import RunStatus, TaskStatus

#: Task items outlive their run's retention by this much (written with the item; no bulk TTL).
TASK_EXTRA_RETENTION: Final = timedelta(days=30)
UNATTRIBUTED_RETENTION: Final = timedelta(days=14)
EARLY_FAILURE_DISCRIMINATOR: Final = "first"
ORIGIN_ADOPTED: Final = "adopted"

_NON_TERMINAL: Final = tuple(st for st in TaskStatus if not st.terminal)


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

    def summary(self) -> TaskSummary:
        """The task as the run item's `last_change` / `first_failure` and alert payloads show it."""
        return TaskSummary(
            job_id=self.job_id,
            call=self.call,
            shard=self.shard,
            attempt=self.attempt,
            status=self.status,
            status_reason=self.status_reason,
            exit_code=self.exit_code,
            queue=self.queue,
            log_group=self.log_group,
            log_stream=self.log_stream,
            at=self.event_time,
        )


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


@dataclass(frozen=True, slots=True)
class RunCounts:
    status: RunStatus | None
    status_rank: int
    counts: Mapping[str, int] = field(default_factory=dict)
    has_first_failure: bool = False
    workflow_name: str | None = None
    exists: bool = True

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Self:
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
        return cls(
            status=status,
            status_rank=int(item.get("status_rank") or 0),
            counts=counts,
            has_first_failure="first_failure" in item,
            workflow_name=item.get("workflow_name"),
        )

    @classmethod
    def absent(cls) -> Self:
        return cls(status=None, status_rank=0, exists=False)

    @property
    def unfinished_tasks(self) -> int:
        return sum(max(0, int(self.counts.get(st.value, 0))) for st in _NON_TERMINAL)

    @property
    def total_tasks(self) -> int:
        return sum(max(0, int(n)) for n in self.counts.values())


@dataclass(slots=True)
class TransitionResult:
    applied: bool
    #: The task condition failed. `task_returned`: the cancelled transaction said what is stored,
    #: `stored_task` (None: the item is absent, or holds no usable status and order).
    task_conflict: bool = False
    task_returned: bool = False
    stored_task: StoredTask | None = None
    #: The run condition failed; `stored_run` is what is stored (None: absent or not returned).
    run_conflict: bool = False
    stored_run: RunCounts | None = None
    event_conflict: bool = False
    pointer_conflict: bool = False
    write_calls: int = 0


@dataclass(frozen=True, slots=True)
class UnattributedJob:
    """The latest event of a Batch job not tied to a run (pk UNATTRIBUTED, sk JOB#<jobId>), or,
    once the reconciler tied it, a pointer to its run (`attributed_to` and the call)."""

    job_id: str
    job_name: str = ""
    order: int = 0
    status: str | None = None
    #: The Batch event as received (JSON), replayed when the job is tied.
    event_json: str = "{}"
    attributed_to: str | None = None
    workflow_id: str | None = None
    call: str | None = None
    shard: int = NOT_SCATTERED
    attempt: int = 0

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Self:
        shard = as_int(item.get("shard"))
        return cls(
            job_id=as_str(item.get("job_id")) or str(item.get(s.SK, "")).removeprefix("JOB#"),
            job_name=as_str(item.get("job_name")) or "",
            order=as_int(item.get("order")) or 0,
            status=as_str(item.get("status")),
            event_json=as_str(item.get("event")) or "{}",
            attributed_to=as_str(item.get("attributed_to")),
            workflow_id=as_str(item.get("workflow_id")),
            call=as_str(item.get("call")),
            shard=NOT_SCATTERED if shard is None else shard,
            attempt=as_int(item.get("attempt")) or 0,
        )
