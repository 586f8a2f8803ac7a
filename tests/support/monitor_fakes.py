"""A fake of the monitor's ledger ports (`monitor.ports.RunBook` and `TaskBook`) for unit tests:
plain Python state with the ledger's rules (a task never moves backwards, counts move by one,
one event per key, conditional fills and marks), and no DynamoDB expressions. The real
expressions are tested against moto by the integration and fault suites, and built in
`courier.ledger.transactions` (unit-tested on their own).

One `FakeLedger` plays both ports, as the one table does: pass it as `ledger=(fake, fake)` to a
`monitor.composition.compose_*` function.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from courier.ledger import schema as s
from courier.ledger._codec import iso
from courier.ledger.records import (
    EarlyFailurePayload,
    EndedPayload,
    Payload,
    StuckPayload,
    TaskSummary,
    TaskView,
    payload_kind,
)
from courier.ledger.runs import ActiveRun
from courier.ledger.task_types import (
    EARLY_FAILURE_DISCRIMINATOR,
    Pointer,
    RunCounts,
    RunPlan,
    StoredTask,
    TaskWrite,
    TransitionResult,
    UnattributedJob,
)
from courier.models import CallSource, RunStatus, TaskStatus


@dataclass
class FakeRun:
    workflow_id: str
    status: RunStatus = RunStatus.SUBMITTED
    workflow_name: str | None = None
    origin: str = "dropped"
    submitted_at: datetime | None = None
    counts: Counter[str] = field(default_factory=Counter)
    first_failure: TaskSummary | None = None
    last_change: TaskSummary | None = None
    report: dict[str, Any] = field(default_factory=dict)
    ended_by: str | None = None
    updated_at: datetime | None = None
    end_check_at: datetime | None = None
    last_asked_at: datetime | None = None
    silent_asks: int = 0

    def item(self) -> dict[str, Any]:
        """The run as `RunLedger.get_run` returns it: plain attributes of the stored item."""
        item: dict[str, Any] = {
            "workflow_id": self.workflow_id,
            "status": self.status.value,
            "status_rank": self.status.rank,
            "silent_asks": self.silent_asks,
        }
        item.update({f"{s.TASK_COUNT_PREFIX}{k}": v for k, v in self.counts.items()})
        for name in ("submitted_at", "updated_at", "end_check_at", "last_asked_at"):
            value = getattr(self, name)
            if value is not None:
                item[name] = iso(value)
        return item


@dataclass
class FakeTask:
    write: TaskWrite
    call_source: str
    runnable_at: datetime | None = None
    stuck_alerted: datetime | None = None

    def view(self) -> TaskView:
        w = self.write
        return TaskView(
            job_id=w.job_id,
            call=w.call,
            shard=w.shard,
            attempt=w.attempt,
            job_name=w.job_name,
            workflow_id=w.workflow_id,
            root_workflow_id=w.root_workflow_id,
            status=w.status,
            order=w.order,
            batch_attempts=w.batch_attempts,
            status_reason=w.status_reason,
            queue=w.queue,
            runnable_at=self.runnable_at,
            call_source=CallSource(self.call_source),
            stuck_alerted=self.stuck_alerted,
        )


class FakeLedger:
    """The run ledger and the task ledger in memory. `calls` counts every method called."""

    def __init__(self, clock: Any = None) -> None:
        self.clock = clock or (lambda: datetime.now(UTC))
        self.runs: dict[str, FakeRun] = {}
        self.tasks: dict[tuple[str, str], FakeTask] = {}
        self.events: dict[tuple[str, str], Payload] = {}
        self.unattributed: dict[str, UnattributedJob] = {}
        self.calls: Counter[str] = Counter()

    # -- set-up --------------------------------------------------------------------------------

    def add_run(self, workflow_id: str, status: RunStatus = RunStatus.SUBMITTED, **fields: Any) -> FakeRun:
        run = self.runs[workflow_id] = FakeRun(workflow_id, status, **fields)
        return run

    def event_keys(self, workflow_id: str) -> list[str]:
        return sorted(sk for wid, sk in self.events if wid == workflow_id)

    # -- RunBook -------------------------------------------------------------------------------

    def list_active(self) -> Iterator[ActiveRun]:
        self.calls["list_active"] += 1
        for run in self.runs.values():
            if not run.status.terminal:
                yield ActiveRun(run.workflow_id, run.status.value, run.workflow_name, None)

    def get_run(self, workflow_id: str) -> dict[str, Any] | None:
        self.calls["get_run"] += 1
        run = self.runs.get(workflow_id)
        return run.item() if run else None

    def request_end_check(self, workflow_id: str, due: datetime) -> bool:
        self.calls["request_end_check"] += 1
        run = self.runs.get(workflow_id)
        if run is None or run.status.terminal or (run.end_check_at is not None and run.end_check_at >= due):
            return False
        run.end_check_at = due
        return True

    def note_asked(
        self, workflow_id: str, at: datetime, *, silent_asks: int, end_check_at: datetime | None
    ) -> bool:
        self.calls["note_asked"] += 1
        run = self.runs.get(workflow_id)
        if run is None or run.status.terminal:
            return False
        run.last_asked_at, run.silent_asks, run.end_check_at = at, silent_asks, end_check_at
        return True

    def advance_status(self, workflow_id: str, status: RunStatus, at: datetime | None = None) -> bool:
        self.calls["advance_status"] += 1
        run = self.runs.get(workflow_id)
        if run is None or run.status.rank >= status.rank:
            return False
        run.status = status
        return True

    def finish(
        self,
        workflow_id: str,
        status: RunStatus,
        *,
        report: Mapping[str, Any] | None = None,
        ended_at: datetime | None = None,
        source: str = "",
    ) -> bool:
        self.calls["finish"] += 1
        run = self.runs.get(workflow_id) or FakeRun(workflow_id, RunStatus.SUBMITTED)
        if run.status.terminal:
            return False
        self.runs[workflow_id] = replace(run, status=status, report=dict(report or {}), ended_by=source)
        self.events[(workflow_id, s.event_sk("ENDED"))] = EndedPayload(status=status, source=source)
        return True

    def put_event(self, workflow_id: str, payload: Payload, discriminator: str = "") -> bool:
        self.calls["put_event"] += 1
        key = (workflow_id, s.event_sk(payload_kind(payload).value, discriminator))
        if key in self.events:
            return False
        self.events[key] = payload
        return True

    # -- TaskBook: reads -----------------------------------------------------------------------

    def get_task(self, root_workflow_id: str, job_id: str) -> StoredTask | None:
        self.calls["get_task"] += 1
        task = self.tasks.get((root_workflow_id, job_id))
        return StoredTask(task.write.status, task.write.order) if task else None

    def run_counts(self, workflow_id: str) -> RunCounts:
        self.calls["run_counts"] += 1
        run = self.runs.get(workflow_id)
        if run is None:
            return RunCounts.absent()
        return RunCounts(
            status=run.status,
            status_rank=run.status.rank,
            counts={k: v for k, v in run.counts.items() if v},
            has_first_failure=run.first_failure is not None,
            workflow_name=run.workflow_name,
        )

    def get_unattributed(self, job_id: str) -> UnattributedJob | None:
        self.calls["get_unattributed"] += 1
        return self.unattributed.get(job_id)

    def pending_unattributed(self, limit: int = 1000) -> list[UnattributedJob]:
        self.calls["pending_unattributed"] += 1
        return [job for job in self.unattributed.values() if not job.attributed_to][:limit]

    def stuck_candidates(
        self, workflow_id: str, entered_before: datetime, limit: int = 200
    ) -> list[TaskView]:
        self.calls["stuck_candidates"] += 1
        found = [
            task.view()
            for (wid, _), task in self.tasks.items()
            if wid == workflow_id
            and task.write.status is TaskStatus.RUNNABLE
            and task.runnable_at is not None
            and task.runnable_at < entered_before
            and (task.stuck_alerted is None or task.stuck_alerted < task.runnable_at)
        ]
        return found[:limit]

    def job_name_tasks(self, workflow_id: str, limit: int = 50_000) -> list[str]:
        self.calls["job_name_tasks"] += 1
        return [
            job
            for (wid, job), task in self.tasks.items()
            if wid == workflow_id and task.call_source == CallSource.JOB_NAME.value
        ][:limit]

    # -- TaskBook: writes ----------------------------------------------------------------------

    def transition(
        self,
        task: TaskWrite,
        previous: StoredTask | None,
        plan: RunPlan = RunPlan(),  # noqa: B008 - frozen
        *,
        pointer: Pointer | None = None,
    ) -> TransitionResult:
        self.calls["transition"] += 1
        if previous is not None and task.order <= previous.order:
            raise ValueError("a transition must move a task forward")
        root, result = task.root_workflow_id, TransitionResult(applied=False, write_calls=1)
        stored = self.tasks.get((root, task.job_id))
        if (stored is None) != (previous is None) or (
            stored is not None and previous is not None and stored.write.order != previous.order
        ):
            result.task_conflict = True
            result.task_returned = stored is not None
            result.stored_task = StoredTask(stored.write.status, stored.write.order) if stored else None
        run = self.runs.get(root)
        run_ok = run is None if plan.adopt is not None else run is not None
        if run is not None and plan.adopt is None:
            if plan.promote_running and run.status.rank >= RunStatus.RUNNING.rank:
                run_ok = False
            if plan.early_failure and (run.first_failure is not None or run.status.terminal):
                run_ok = False
        if not run_ok:
            result.run_conflict = True
            result.stored_run = self.run_counts(root) if run is not None else None
        early_key = (root, s.event_sk("EARLY_FAILURE", EARLY_FAILURE_DISCRIMINATOR))
        if plan.early_failure and early_key in self.events:
            result.event_conflict = True
        job = self.unattributed.get(task.job_id)
        if pointer is not None and (job is None or job.order != pointer.seen_order or job.attributed_to):
            result.pointer_conflict = True
        if result.task_conflict or result.run_conflict or result.event_conflict or result.pointer_conflict:
            return result
        self._apply(task, previous, plan, pointer)
        result.applied = True
        return result

    def _apply(
        self, task: TaskWrite, previous: StoredTask | None, plan: RunPlan, pointer: Pointer | None
    ) -> None:
        root = task.root_workflow_id
        old = self.tasks.get((root, task.job_id))
        runnable_at = (
            task.event_time if task.status is TaskStatus.RUNNABLE else (old.runnable_at if old else None)
        )
        self.tasks[(root, task.job_id)] = FakeTask(
            task, task.call_source, runnable_at, old.stuck_alerted if old else None
        )
        if plan.adopt is not None:
            status = RunStatus.RUNNING if plan.promote_running else RunStatus.SUBMITTED
            self.add_run(root, status, origin="adopted", workflow_name=plan.adopt.workflow_name)
        run = self.runs[root]
        if plan.promote_running and run.status.rank < RunStatus.RUNNING.rank:
            run.status = RunStatus.RUNNING
        if previous is None or previous.status is not task.status:
            run.counts[task.status.value] += 1
            if previous is not None:
                run.counts[previous.status.value] -= 1
        run.last_change = task.summary()
        if task.status is TaskStatus.FAILED and run.first_failure is None:
            run.first_failure = task.summary()
        if plan.early_failure:
            payload = EarlyFailurePayload(task=task.summary(), sub_workflow_id=task.workflow_id)
            self.events[(root, s.event_sk("EARLY_FAILURE", EARLY_FAILURE_DISCRIMINATOR))] = payload
        if pointer is not None:
            self.unattributed[task.job_id] = replace(
                self.unattributed[task.job_id],
                attributed_to=root,
                workflow_id=task.workflow_id,
                call=task.call,
                shard=task.shard,
                attempt=task.attempt,
            )

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
        self.calls["keep_unattributed"] += 1
        stored = self.unattributed.get(job_id)
        if stored is not None and (stored.attributed_to or stored.order >= order):
            return False, stored
        self.unattributed[job_id] = UnattributedJob(job_id, job_name, order, status.value, event_json)
        return True, None

    def mark_attributed(self, task: TaskWrite, pointer: Pointer) -> bool:
        self.calls["mark_attributed"] += 1
        job = self.unattributed.get(task.job_id)
        if job is None or job.order != pointer.seen_order or job.attributed_to:
            return False
        self.unattributed[task.job_id] = replace(job, attributed_to=task.root_workflow_id)
        return True

    def adopt_run(
        self, workflow_id: str, *, status: RunStatus, workflow_name: str | None, submitted_at: datetime
    ) -> bool:
        self.calls["adopt_run"] += 1
        if workflow_id in self.runs:
            return False
        self.add_run(
            workflow_id, status, origin="adopted", workflow_name=workflow_name, submitted_at=submitted_at
        )
        return True

    def raise_stuck(self, workflow_id: str, task: TaskView, payload: StuckPayload) -> bool:
        self.calls["raise_stuck"] += 1
        stored = self.tasks.get((workflow_id, task.job_id))
        key = (workflow_id, s.event_sk("STUCK", s.attempt_discriminator(task.job_id, task.batch_attempts)))
        if (
            key in self.events
            or stored is None
            or stored.write.status is not TaskStatus.RUNNABLE
            or stored.runnable_at != task.runnable_at
        ):
            return False
        self.events[key] = payload
        stored.stuck_alerted = max(self.clock(), stored.runnable_at or self.clock())
        return True

    def fill_call(
        self, workflow_id: str, job_id: str, *, call: str, shard: int, attempt: int, sub_workflow_id: str
    ) -> bool:
        self.calls["fill_call"] += 1
        task = self.tasks.get((workflow_id, job_id))
        if task is None or task.call_source != CallSource.JOB_NAME.value:
            return False
        task.write = replace(task.write, call=call, shard=shard, attempt=attempt, workflow_id=sub_workflow_id)
        task.call_source = CallSource.METADATA.value
        return True
