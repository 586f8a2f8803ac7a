"""Domain vocabulary shared by the three functions: run and task statuses and their order."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class RunStatus(StrEnum):
    """Cromwell's workflow states, plus Courier's `Rejected` (refused before reaching Cromwell)."""

    ON_HOLD = "On Hold"
    SUBMITTED = "Submitted"
    RUNNING = "Running"
    ABORTING = "Aborting"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    ABORTED = "Aborted"
    REJECTED = "Rejected"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_RUN_STATUSES

    @property
    def rank(self) -> int:
        """Position in the life of a run; a status never moves to a lower rank."""
        return _RUN_RANK[self]


TERMINAL_RUN_STATUSES = frozenset(
    {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.ABORTED, RunStatus.REJECTED}
)
_RUN_RANK = {
    RunStatus.ON_HOLD: 1,
    RunStatus.SUBMITTED: 2,
    RunStatus.RUNNING: 3,
    RunStatus.ABORTING: 4,
    RunStatus.SUCCEEDED: 9,
    RunStatus.FAILED: 9,
    RunStatus.ABORTED: 9,
    RunStatus.REJECTED: 9,
}


class TaskStatus(StrEnum):
    """AWS Batch job statuses."""

    SUBMITTED = "SUBMITTED"
    PENDING = "PENDING"
    RUNNABLE = "RUNNABLE"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"

    @property
    def terminal(self) -> bool:
        return self in (TaskStatus.SUCCEEDED, TaskStatus.FAILED)


_TASK_RANK = {
    TaskStatus.SUBMITTED: 1,
    TaskStatus.PENDING: 2,
    TaskStatus.RUNNABLE: 3,
    TaskStatus.STARTING: 4,
    TaskStatus.RUNNING: 5,
    TaskStatus.SUCCEEDED: 8,
    TaskStatus.FAILED: 9,
}

#: Terminal task states sort above any number of Batch-level retries.
TERMINAL_TASK_ORDER = 1_000_000


def task_order(status: TaskStatus, batch_attempts: int) -> int:
    """Total order of the events of one Batch job.

    A Batch-level retry keeps the jobId and moves RUNNING back to RUNNABLE, but the event then
    lists one more finished attempt in `detail.attempts`; ordering by (attempts, status) lets that
    legitimate step back through while a late, duplicated or reordered event never moves a task
    backwards. SUCCEEDED and FAILED are final: nothing orders above them.
    """
    if status.terminal:
        return TERMINAL_TASK_ORDER + _TASK_RANK[status]
    return batch_attempts * 10 + _TASK_RANK[status]


class CallSource(StrEnum):
    """Where a task item's call, shard and attempt came from (`call_source` in the ledger)."""

    TASK_ID_TAG = "task-id-tag"
    METADATA = "metadata"
    JOB_NAME = "job-name"  # only the Batch job name: shard and attempt not known yet


class NotificationKind(StrEnum):
    """Kinds of ledger outbox events the notify function turns into messages."""

    REJECTED = "REJECTED"
    SUBMITTED = "SUBMITTED"
    EARLY_FAILURE = "EARLY_FAILURE"
    STUCK = "STUCK"
    QUEUE_BLOCKED = "QUEUE_BLOCKED"
    ENDED = "ENDED"
    #: The last run of a batch ended: the batch's digest (in the partition of the run that ended it).
    BATCH_ENDED = "BATCH_ENDED"


@dataclass(frozen=True, slots=True)
class RunRecord:
    """What submit knows of a run when it records it."""

    workflow_id: str
    workflow_name: str
    source_bucket: str
    inputs_key: str
    run_folder: str
    requester: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    main_wdl: str | None = None
    receipt_key: str | None = None
    routing: Mapping[str, str] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()
    #: The batch the run belongs to (a sample sheet's id), and its sample's name in that batch.
    batch_id: str | None = None
    sample: str | None = None
    #: The run's place in a pipeline (`courier.pipeline`): `next`, `next_inputs`, `chain`,
    #: `parents`, `parent_batch`, kept on the run item as they are.
    pipeline: Mapping[str, Any] = field(default_factory=dict)
