"""The reconciler's sweep: what events cannot tell.

1. The unfinished runs in the ledger (`RunLedger.list_active`) that are due to be asked about
   (`monitor.asking.AskPolicy`: an end check asked for by the last task end, or a silence) are
   looked up in Cromwell through /query, 100 ids per call (not one call per run). Terminal ->
   `Ender.end` (this catches workflows served wholly from call cache, workflows aborted while
   queued, missed callbacks, and ends runs without a callback); a later non-terminal status
   (Running, Aborting) -> `RunLedger.advance_status`; still going -> the ask is recorded, so
   that the next one waits longer. Runs not due cost no Cromwell call.
2. Runs still going whose counts show RUNNABLE tasks: tasks RUNNABLE for longer than
   STUCK_AFTER_MINUTES raise a STUCK outbox event, once per RUNNABLE period. A Batch retry
   (same jobId) moves a task from RUNNING back to RUNNABLE with a new `runnable_at`, and each
   period may alert: a task is a candidate when it was never alerted or its `stuck_alerted` mark
   is older than its `runnable_at`; the alert (`STUCK#<jobId>`, `STUCK#<jobId>#<n>` after n Batch
   retries) and the mark are written together, conditioned on the task still being RUNNABLE with
   the `runnable_at` the sweep saw (`TaskLedger.raise_stuck`).
3. Unattributed jobs (older Cromwell: no tags, no script prefix) are matched against the jobIds in
   the filtered metadata of active runs (`includeKey` jobId, shardIndex, attempt), at most
   `max_metadata_calls` runs per sweep, those whose name matches the job name first. A matched
   job's stored event is replayed as a normal transition and its item becomes a pointer, so later
   events of the job are tied without Cromwell.
0. Folder batches whose window has closed (`courier.ledger.folders`) are closed: their expected
   count set, and the batch ended when its runs have all ended already (else its last run's end
   ends it). A DynamoDB Query of the `active` index and a write per window; no Cromwell call.
4. With TRACK_ALL_WORKFLOWS, Running root workflows Cromwell knows and the ledger does not are
   adopted (run item with origin `adopted`): at most once every `adopt_every` per container,
   a fixed cost that does not grow with the runs watched.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from courier.conventions import job_name_for_call
from courier.errors import CromwellError, CromwellUnavailable, InvalidEvent
from courier.ledger.records import StuckPayload, TaskView, parse_time
from courier.ledger.runs import ActiveRun
from courier.ledger.task_types import Pointer, RunCounts
from courier.models import RunStatus, TaskStatus
from monitor.asking import AskPolicy, AskReason, RunClock
from monitor.attribution import Attribution
from monitor.ending import Ender, EndOutcome, EndSource
from monitor.events import parse_event
from monitor.metadata_index import METADATA_KEYS, index_jobs
from monitor.ports import Cromwell, FolderWindowBook, RunBook, TaskBook
from monitor.tracking import Tracker, TrackOutcome


@dataclass(slots=True)
class SweepReport:
    active: int = 0
    asked: int = 0
    cromwell_calls: int = 0
    ended: int = 0
    advanced: int = 0
    unknown_to_cromwell: int = 0
    stuck_alerts: int = 0
    attributed: int = 0
    still_unattributed: int = 0
    adopted: int = 0
    windows_closed: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "active": self.active,
            "asked": self.asked,
            "cromwell_calls": self.cromwell_calls,
            "ended": self.ended,
            "advanced": self.advanced,
            "unknown_to_cromwell": self.unknown_to_cromwell,
            "stuck_alerts": self.stuck_alerts,
            "attributed": self.attributed,
            "still_unattributed": self.still_unattributed,
            "adopted": self.adopted,
            "windows_closed": self.windows_closed,
            "errors": self.errors[:20],
        }


class Reconciler:
    def __init__(
        self,
        runs: RunBook,
        tasks: TaskBook,
        cromwell: Cromwell,
        ender: Ender,
        tracker: Tracker,
        *,
        track_all_workflows: bool,
        stuck_after: timedelta,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_metadata_calls: int = 25,
        max_unattributed: int = 500,
        max_adoption_pages: int = 5,
        policy: AskPolicy | None = None,
        adopt_every: timedelta = timedelta(hours=1),
        windows: FolderWindowBook | None = None,
    ) -> None:
        self.windows = windows
        self.runs = runs
        self.tasks = tasks
        self.cromwell = cromwell
        self.ender = ender
        self.tracker = tracker
        self.track_all = track_all_workflows
        self.stuck_after = stuck_after
        self.clock = clock
        self.max_metadata_calls = max_metadata_calls
        self.max_unattributed = max_unattributed
        self.max_adoption_pages = max_adoption_pages
        self.policy = policy or AskPolicy()
        self.adopt_every = adopt_every
        self._adopted_at: datetime | None = None

    def sweep(self) -> SweepReport:
        report = SweepReport()
        calls_before = self.ender.cromwell_calls
        now = self.clock()
        self._close_windows(now, report)
        active = list(self.runs.list_active())
        report.active = len(active)
        items = {run.workflow_id: self.runs.get_run(run.workflow_id) for run in active}
        clocks = {wid: RunClock.from_run(wid, item) for wid, item in items.items()}
        due = {wid: reason for wid, c in clocks.items() if (reason := self.policy.reason(c, now))}
        report.asked = len(due)
        statuses: Mapping[str, str] = {}
        if due:
            try:
                statuses = self.cromwell.statuses(list(due))
                report.cromwell_calls += -(-len(due) // 100)
            except CromwellUnavailable as exc:
                report.errors.append(f"status sweep: {exc}")
                return report
        going: list[ActiveRun] = []
        for run in active:
            reason = due.get(run.workflow_id)
            if reason is None:
                if not clocks[run.workflow_id].ended:
                    going.append(run)
                continue
            if self._reconcile_run(run, statuses.get(run.workflow_id), reason, report, going):
                asks, end_check_at = self.policy.after_ask(clocks[run.workflow_id], reason, now)
                self.runs.note_asked(run.workflow_id, now, silent_asks=asks, end_check_at=end_check_at)
        for run in going:
            item = items.get(run.workflow_id)
            if item is not None:
                self._stuck(run, RunCounts.from_item(item), report)
        self._attribute(active, report)
        if self.track_all and (self._adopted_at is None or now - self._adopted_at >= self.adopt_every):
            self._adopted_at = now
            self._adopt({run.workflow_id for run in active}, report)
        report.cromwell_calls += self.ender.cromwell_calls - calls_before
        return report

    # -- 0. folder windows ------------------------------------------------------------------------

    def _close_windows(self, now: datetime, report: SweepReport) -> None:
        if self.windows is None:
            return
        for batch_id in self.windows.due(now):
            try:
                report.windows_closed += self.windows.close(batch_id)
            except Exception as exc:  # one window's failure leaves the others and the sweep alone
                report.errors.append(f"folder batch {batch_id}: window not closed: {exc}")

    # -- 1. statuses ---------------------------------------------------------------------------

    def _reconcile_run(
        self, run: ActiveRun, raw: str | None, reason: AskReason, report: SweepReport, going: list[ActiveRun]
    ) -> bool:
        """Apply Cromwell's answer; True when the run is still going (the ask is recorded)."""
        if raw is None:
            report.unknown_to_cromwell += 1  # not visible yet (early 404) or unknown to Cromwell
            going.append(run)
            return True
        try:
            status = RunStatus(raw)
        except ValueError:
            report.errors.append(f"{run.workflow_id}: unknown status {raw!r}")
            return True
        if status.terminal:
            source = EndSource.END_CHECK if reason is AskReason.END_CHECK else EndSource.RECONCILER
            try:
                outcome = self.ender.end(run.workflow_id, status, source=source)
            except CromwellUnavailable as exc:
                report.errors.append(f"{run.workflow_id}: report data unavailable: {exc}")
                return False
            report.ended += outcome is EndOutcome.ENDED
            return False
        try:
            ledger_rank = RunStatus(run.status).rank
        except ValueError:
            ledger_rank = 0
        if status.rank > ledger_rank and self.runs.advance_status(run.workflow_id, status):
            report.advanced += 1
        going.append(run)
        return True

    # -- 2. stuck tasks ------------------------------------------------------------------------

    def _stuck(self, run: ActiveRun, counts: RunCounts, report: SweepReport) -> None:
        if counts.counts.get(TaskStatus.RUNNABLE.value, 0) <= 0:
            return
        now = self.clock()
        for task in self.tasks.stuck_candidates(run.workflow_id, now - self.stuck_after):
            if self.tasks.raise_stuck(run.workflow_id, task, stuck_payload(task, now)):
                report.stuck_alerts += 1

    # -- 3. unattributed jobs ------------------------------------------------------------------

    def _attribute(self, active: list[ActiveRun], report: SweepReport) -> None:
        pending = self.tasks.pending_unattributed(self.max_unattributed)
        if not pending:
            return
        search = _JobSearch(self.cromwell, active, self.max_metadata_calls, report)
        for job in pending:
            who = search.find(job.job_id, job.job_name)
            if who is None:
                report.still_unattributed += 1
                continue
            try:
                event = parse_event(json.loads(job.event_json))
            except (InvalidEvent, ValueError) as exc:
                report.errors.append(f"job {job.job_id}: stored event unusable: {exc}")
                continue
            result = self.tracker.apply(event, who, pointer=Pointer(seen_order=job.order))
            if result.outcome in (TrackOutcome.RECORDED, TrackOutcome.DUPLICATE):
                report.attributed += 1
            else:
                report.still_unattributed += 1

    # -- 4. adoption ---------------------------------------------------------------------------

    def _adopt(self, known: set[str], report: SweepReport) -> None:
        try:
            rows = self.cromwell.query(
                [("status", "Running"), ("includeSubworkflows", "false")], page_size=100
            )
            seen = 0
            for row in rows:
                seen += 1
                if seen > 100 * self.max_adoption_pages:
                    break
                if row.id in known or row.parent_workflow_id:
                    continue
                submitted = parse_time(row.submission) or self.clock()
                if self.tasks.adopt_run(
                    row.id, status=RunStatus.RUNNING, workflow_name=row.name, submitted_at=submitted
                ):
                    report.adopted += 1
            report.cromwell_calls += max(1, -(-seen // 100))
        except CromwellError as exc:
            report.errors.append(f"adoption query: {exc}")


def stuck_payload(task: TaskView, now: datetime) -> StuckPayload:
    """The STUCK alert of a task RUNNABLE since `task.runnable_at`, raised at `now`."""
    since = task.runnable_at
    return StuckPayload(
        job_id=task.job_id,
        queue=task.queue,
        call=task.call,
        shard=task.shard,
        attempt=task.attempt,
        batch_attempts=task.batch_attempts,
        status_reason=task.status_reason,
        runnable_since=since,
        runnable_seconds=int((now - since).total_seconds()) if since else None,
    )


class _JobSearch:
    """jobId -> run, from the filtered metadata of active runs; each run fetched once a sweep,
    at most `budget` runs."""

    def __init__(self, cromwell: Cromwell, active: list[ActiveRun], budget: int, report: SweepReport) -> None:
        self.cromwell = cromwell
        self.active = active
        self.budget = budget
        self.report = report
        self.index: dict[str, Attribution] = {}
        self.fetched: set[str] = set()

    def find(self, job_id: str, job_name: str) -> Attribution | None:
        if job_id in self.index:
            return self.index[job_id]
        for run in _candidates(job_name, self.active):
            if run.workflow_id in self.fetched:
                continue
            if self.budget <= 0:
                return None
            self.budget -= 1
            self.fetched.add(run.workflow_id)
            try:
                self.report.cromwell_calls += 1
                metadata = self.cromwell.metadata(
                    run.workflow_id, include_keys=METADATA_KEYS, expand_subworkflows=True
                )
            except CromwellError as exc:
                self.report.errors.append(f"{run.workflow_id}: metadata: {exc}")
                continue
            self.index.update(index_jobs(metadata, run.workflow_id))
            if job_id in self.index:
                return self.index[job_id]
        return None


def _candidates(job_name: str, active: Iterable[ActiveRun]) -> list[ActiveRun]:
    """Runs whose (sanitised) workflow name starts the job name first, then all others."""
    first: list[ActiveRun] = []
    rest: list[ActiveRun] = []
    for run in active:
        prefix = job_name_for_call(run.workflow_name or "") + "_"
        (first if run.workflow_name and job_name.startswith(prefix) else rest).append(run)
    return first + rest
