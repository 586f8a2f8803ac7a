"""What the monitor's domain logic needs from the outside world, as Protocols. The composition
(`monitor.composition`) wires the real adapters (`courier.ledger.runs.RunLedger`,
`courier.ledger.tasks.TaskLedger`, `courier.cromwell.CromwellClient`,
`courier.batch.JobTagReader`); unit tests pass fakes (`tests/support/monitor_fakes.py`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from courier.ledger.records import Payload, StuckPayload, TaskView
from courier.ledger.runs import ActiveRun
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


class WorkflowRow(Protocol):
    """One row of Cromwell's /query."""

    @property
    def id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def submission(self) -> str | None: ...
    @property
    def parent_workflow_id(self) -> str | None: ...


class Cromwell(Protocol):
    """The Cromwell REST calls the monitor makes. Every metadata read is filtered."""

    def status(self, workflow_id: str) -> str:
        """Raise `courier.errors.CromwellNotFound` when the id is unknown (or not visible yet)."""
        ...

    def statuses(self, workflow_ids: Sequence[str]) -> Mapping[str, str]:
        """Status of many workflows through /query, in chunks; unknown ids are left out."""
        ...

    def outputs(self, workflow_id: str) -> Mapping[str, Any]: ...

    def failed_jobs(self, workflow_id: str) -> Mapping[str, Any]: ...

    def metadata(
        self,
        workflow_id: str,
        include_keys: Sequence[str] = (),
        exclude_keys: Sequence[str] = (),
        *,
        expand_subworkflows: bool = False,
    ) -> Mapping[str, Any]: ...

    def query(self, filters: Sequence[tuple[str, str]], *, page_size: int = 100) -> Iterable[WorkflowRow]: ...


class JobTags(Protocol):
    """Tags of a Batch job by ARN ({} when none or unreadable); cached by the implementation."""

    def tags(self, job_arn: str) -> Mapping[str, str]: ...


class RunBook(Protocol):
    """The run items and outbox events of the ledger (`courier.ledger.runs.RunLedger`)."""

    def list_active(self) -> Iterable[ActiveRun]:
        """Runs not finished yet, oldest first."""
        ...

    def get_run(self, workflow_id: str) -> dict[str, Any] | None:
        """The run item's plain attributes (None: no such run)."""
        ...

    def advance_status(self, workflow_id: str, status: RunStatus, at: datetime | None = None) -> bool:
        """Move a run to a later non-terminal status; False when it is there or further already."""
        ...

    def request_end_check(self, workflow_id: str, due: datetime) -> bool:
        """Ask for one status check of a run at `due` (only ever moved later; False when refused)."""
        ...

    def note_asked(
        self, workflow_id: str, at: datetime, *, silent_asks: int, end_check_at: datetime | None
    ) -> bool:
        """Record that Cromwell was asked about a run still going (monitor.asking)."""
        ...

    def finish(
        self,
        workflow_id: str,
        status: RunStatus,
        *,
        report: Mapping[str, Any] | None = None,
        ended_at: datetime | None = None,
        source: str = "",
    ) -> bool:
        """Write the terminal status and the ENDED event once; False for every later caller."""
        ...

    def put_event(self, workflow_id: str, payload: Payload, discriminator: str = "") -> bool:
        """Add an outbox event once; False when it exists already."""
        ...


class TaskBook(Protocol):
    """Task items, the run's task counts, jobs not tied to a run yet, stuck alerts and tasks
    filled in from Cromwell's metadata (`courier.ledger.tasks.TaskLedger`)."""

    # reads
    def get_task(self, root_workflow_id: str, job_id: str) -> StoredTask | None: ...
    def run_counts(self, workflow_id: str) -> RunCounts: ...
    def get_unattributed(self, job_id: str) -> UnattributedJob | None: ...
    def pending_unattributed(self, limit: int = 1000) -> list[UnattributedJob]: ...
    def stuck_candidates(
        self, workflow_id: str, entered_before: datetime, limit: int = 200
    ) -> list[TaskView]:
        """RUNNABLE tasks of a run since before `entered_before`, not alerted for this period."""
        ...

    def job_name_tasks(self, workflow_id: str, limit: int = 50_000) -> list[str]:
        """jobIds of the run's tasks whose call is only the job name."""
        ...

    # writes (each conditional: a repeated call changes nothing more)
    def transition(
        self,
        task: TaskWrite,
        previous: StoredTask | None,
        plan: RunPlan = ...,
        *,
        pointer: Pointer | None = None,
    ) -> TransitionResult:
        """The task, its run's counts (and the early-failure event, the pointer) in one write;
        `applied=False` with what is stored when the belief `previous` was stale."""
        ...

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
    ) -> tuple[bool, UnattributedJob | None]: ...

    def mark_attributed(self, task: TaskWrite, pointer: Pointer) -> bool: ...

    def adopt_run(
        self, workflow_id: str, *, status: RunStatus, workflow_name: str | None, submitted_at: datetime
    ) -> bool: ...

    def raise_stuck(self, workflow_id: str, task: TaskView, payload: StuckPayload) -> bool:
        """The STUCK alert of the task's current RUNNABLE period and its mark, once."""
        ...

    def fill_call(
        self, workflow_id: str, job_id: str, *, call: str, shard: int, attempt: int, sub_workflow_id: str
    ) -> bool:
        """Complete a task known only by its job name; False when it was filled already."""
        ...


class FolderWindowBook(Protocol):
    """The folder batches' windows (`courier.ledger.folders.FolderWindows`)."""

    def due(self, now: datetime, limit: int = 100) -> list[str]:
        """The folder batches whose window has closed by `now` and is not closed in the ledger."""
        ...

    def close(self, batch_id: str) -> bool:
        """Close a batch's window (and end the batch when its runs have all ended); False when
        it was closed already."""
        ...
