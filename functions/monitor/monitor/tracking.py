"""One Batch event -> one task transition in the ledger, exactly counted.

Write budget (see docs/monitor.md): a non-terminal event costs at most one DynamoDB write call
(`TransactWriteItems`: task item + run counts), never a call to Cromwell or to Batch Describe
APIs. What the transaction must assume about the stored task and run comes from per-container
caches, filled by one consistent `GetItem` the first time this container sees the job or the
run. A cached belief that turns out stale costs one more try, with the stored values taken from
the cancelled transaction itself (`ALL_OLD`), not from another read.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final

from courier.errors import LedgerError
from courier.ledger import schema as s
from courier.ledger.records import QueueBlockedPayload
from courier.ledger.task_types import (
    Adoption,
    Pointer,
    RunCounts,
    RunPlan,
    StoredTask,
    TaskWrite,
    TransitionResult,
)
from courier.models import RunStatus, TaskStatus
from monitor.attribution import Attribution, Attributor, from_pointer
from monitor.events import BatchJobEvent, EventKind
from monitor.ports import RunBook, TaskBook

MAX_TRIES: Final = 8
UNKNOWN_RUN_TTL_SECONDS: Final = 60.0


class TrackOutcome(StrEnum):
    """What became of one Batch event."""

    RECORDED = "recorded"
    DUPLICATE = "duplicate"
    UNATTRIBUTED = "unattributed"
    UNTRACKED = "untracked"
    POINTER_MOVED = "pointer-moved"


@dataclass(frozen=True, slots=True)
class TrackResult:
    outcome: TrackOutcome
    root_workflow_id: str | None = None
    status: TaskStatus | None = None
    alerted: bool = False

    @property
    def ended_a_task(self) -> bool:
        return self.outcome is TrackOutcome.RECORDED and self.status is not None and self.status.terminal


@dataclass(slots=True)
class KnownRun:
    """What this container knows of a run. `rank` is a lower bound (ranks only grow)."""

    exists: bool
    rank: int = 0
    has_failure: bool = False


@dataclass(slots=True)
class TrackerStats:
    events: int = 0
    transactions: int = 0
    task_reads: int = 0
    run_reads: int = 0
    stale_beliefs: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)


class _Lru[K, V]:
    def __init__(self, size: int) -> None:
        self._size = size
        self._data: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        if len(self._data) > self._size:
            self._data.popitem(last=False)

    def pop(self, key: K) -> None:
        self._data.pop(key, None)


def reached_running(event: BatchJobEvent) -> bool:
    """The job ran: it is RUNNING, or it ended after starting."""
    return event.status is TaskStatus.RUNNING or (event.status.terminal and event.started_at is not None)


def task_write(event: BatchJobEvent, who: Attribution) -> TaskWrite:
    return TaskWrite(
        job_id=event.job_id,
        job_name=event.job_name,
        call=who.call,
        shard=who.shard,
        attempt=who.attempt,
        workflow_id=who.workflow_id,
        root_workflow_id=who.root_workflow_id,
        status=event.status,
        order=event.order,
        batch_attempts=event.batch_attempts,
        event_time=event.time,
        queue=event.queue,
        log_group=event.log_group,
        attribution=who.source.value,
        call_source=who.call_source.value,
        status_reason=event.status_reason,
        exit_code=event.exit_code,
        created_at=event.created_at,
        started_at=event.started_at,
        stopped_at=event.stopped_at,
        vcpus=event.vcpus,
        memory_mib=event.memory_mib,
        log_stream=event.log_stream,
    )


class Tracker:
    """Records Batch events in the ledger. One instance per container: it owns the caches."""

    def __init__(
        self,
        tasks: TaskBook,
        runs: RunBook,
        attributor: Attributor,
        *,
        track_all_workflows: bool,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
        task_cache_entries: int = 200_000,
        run_cache_entries: int = 20_000,
    ) -> None:
        self.tasks = tasks
        self.runs = runs
        self.attributor = attributor
        self.track_all = track_all_workflows
        self.clock = clock
        self._monotonic = monotonic
        self._task_cache: _Lru[str, StoredTask] = _Lru(task_cache_entries)
        self._run_cache: _Lru[str, KnownRun] = _Lru(run_cache_entries)
        self._unknown_runs: _Lru[str, float] = _Lru(run_cache_entries)
        self.stats = TrackerStats()

    # -- entry points --------------------------------------------------------------------------

    def track(self, event: BatchJobEvent) -> TrackResult:
        """Record one event from the queue."""
        self.stats.events += 1
        who = self.attributor.attribute(event)
        if who is None:
            result = self._keep_unattributed(event)
        else:
            result = self.apply(event, who)
            if event.kind is EventKind.QUEUE_BLOCKED and result.outcome is not TrackOutcome.UNTRACKED:
                alerted = self._queue_blocked(event, who)
                result = TrackResult(result.outcome, result.root_workflow_id, result.status, alerted)
        self.stats.by_outcome[result.outcome.value] = self.stats.by_outcome.get(result.outcome.value, 0) + 1
        return result

    def apply(self, event: BatchJobEvent, who: Attribution, *, pointer: Pointer | None = None) -> TrackResult:
        """Write the transition of an attributed event (also used to replay unattributed jobs)."""
        root = who.root_workflow_id
        run = self._known_run(root)
        if run is None:
            return TrackResult(TrackOutcome.UNTRACKED, root, event.status)
        task = task_write(event, who)
        previous = self._stored_task(root, event.job_id)
        for _ in range(MAX_TRIES):
            if previous is not None and previous.order >= task.order:
                self._task_cache.put(event.job_id, previous)
                if pointer is not None:
                    self.tasks.mark_attributed(task, pointer)
                return TrackResult(TrackOutcome.DUPLICATE, root, event.status)
            plan = RunPlan(
                promote_running=reached_running(event) and run.rank < RunStatus.RUNNING.rank,
                early_failure=event.status is TaskStatus.FAILED
                and not run.has_failure
                and run.rank < RunStatus.SUCCEEDED.rank,
                adopt=None
                if run.exists
                else Adoption(
                    submitted_at=event.created_at or event.time, workflow_name=who.root_workflow_name
                ),
            )
            self.stats.transactions += 1
            result = self.tasks.transition(task, previous, plan, pointer=pointer)
            if result.applied:
                self._applied(event, root, run, plan)
                return TrackResult(TrackOutcome.RECORDED, root, event.status)
            self.stats.stale_beliefs += 1
            if result.pointer_conflict and not (result.task_conflict or result.run_conflict):
                return TrackResult(TrackOutcome.POINTER_MOVED, root, event.status)
            previous = self._after_task_conflict(result, root, event.job_id, previous)
            refreshed = self._after_run_conflict(result, root, run)
            if refreshed is None:
                return TrackResult(TrackOutcome.UNTRACKED, root, event.status)
            run = refreshed
        raise LedgerError(f"task {event.job_id}: no consistent transition after {MAX_TRIES} tries")

    # -- caches and reads ----------------------------------------------------------------------

    def _known_run(self, root: str) -> KnownRun | None:
        """The run as this container knows it; None when it is not tracked (and must not be)."""
        cached = self._run_cache.get(root)
        if cached is not None:
            return cached
        if not self.track_all:
            seen_missing = self._unknown_runs.get(root)
            if seen_missing is not None and self._monotonic() - seen_missing < UNKNOWN_RUN_TTL_SECONDS:
                return None
        self.stats.run_reads += 1
        counts = self.tasks.run_counts(root)
        if not counts.exists:
            if not self.track_all:
                self._unknown_runs.put(root, self._monotonic())
                return None
            return KnownRun(exists=False)
        view = KnownRun(exists=True, rank=counts.status_rank, has_failure=counts.has_first_failure)
        self._run_cache.put(root, view)
        return view

    def _stored_task(self, root: str, job_id: str) -> StoredTask | None:
        cached = self._task_cache.get(job_id)
        if cached is not None:
            return cached
        self.stats.task_reads += 1
        return self.tasks.get_task(root, job_id)

    def _applied(self, event: BatchJobEvent, root: str, run: KnownRun, plan: RunPlan) -> None:
        self._task_cache.put(event.job_id, StoredTask(event.status, event.order))
        run.exists = True
        if plan.adopt is not None:
            run.rank = RunStatus.RUNNING.rank if plan.promote_running else RunStatus.SUBMITTED.rank
        elif plan.promote_running:
            run.rank = max(run.rank, RunStatus.RUNNING.rank)
        if event.status is TaskStatus.FAILED:
            run.has_failure = True
        self._run_cache.put(root, run)

    def _after_task_conflict(
        self, result: TransitionResult, root: str, job_id: str, believed: StoredTask | None
    ) -> StoredTask | None:
        if not result.task_conflict:
            return believed
        if result.task_returned:
            stored = result.stored_task
        elif believed is None:
            # Our "absent" belief was wrong but the store did not say what is there: read it.
            self.stats.task_reads += 1
            stored = self.tasks.get_task(root, job_id)
        else:
            stored = None  # the condition pinned an order and nothing is stored
        self._task_cache.pop(job_id)
        return stored

    def _after_run_conflict(self, result: TransitionResult, root: str, run: KnownRun) -> KnownRun | None:
        if result.event_conflict:
            run.has_failure = True
        if not result.run_conflict:
            return run
        stored = result.stored_run
        if stored is None and run.exists:
            self.stats.run_reads += 1
            counts = self.tasks.run_counts(root)
            if counts.exists:
                stored = RunCounts(status=None, status_rank=counts.status_rank)
                run.has_failure = run.has_failure or counts.has_first_failure
        if stored is None:
            self._run_cache.pop(root)
            if not self.track_all:
                self._unknown_runs.put(root, self._monotonic())
                return None
            return KnownRun(exists=False)
        view = KnownRun(
            exists=True,
            rank=max(run.rank if run.exists else 0, stored.status_rank),
            has_failure=run.has_failure or stored.has_first_failure,
        )
        self._run_cache.put(root, view)
        return view

    # -- unattributed jobs and alerts ----------------------------------------------------------

    def _keep_unattributed(self, event: BatchJobEvent) -> TrackResult:
        reason = "no Cromwell tags on the event or the job, no Courier script prefix, not matched yet"
        written, stored = self.tasks.keep_unattributed(
            job_id=event.job_id,
            job_name=event.job_name,
            status=event.status,
            order=event.order,
            event_time=event.time,
            event_json=json.dumps(dict(event.raw), separators=(",", ":"), default=str),
            reason=reason,
            queue=event.queue,
        )
        if not written and stored is not None and stored.attributed_to:
            who = from_pointer(stored)
            if who is not None:
                self.attributor.remember(event.job_id, who)
                return self.apply(event, who)
        return TrackResult(TrackOutcome.UNATTRIBUTED, None, event.status)

    def _queue_blocked(self, event: BatchJobEvent, who: Attribution) -> bool:
        waited = None
        if event.created_at is not None:
            waited = max(0, int((event.time - event.created_at).total_seconds()))
        payload = QueueBlockedPayload(
            job_id=event.job_id,
            queue=event.queue,
            call=who.call,
            shard=who.shard,
            attempt=who.attempt,
            batch_attempts=event.batch_attempts,
            status_reason=event.status_reason,
            runnable_seconds=waited,
            at=event.time,
        )
        # One alert per job and Batch attempt: a job that blocks again after a Batch retry alerts again.
        return self.runs.put_event(
            who.root_workflow_id,
            payload,
            discriminator=s.attempt_discriminator(event.job_id, event.batch_attempts),
        )
