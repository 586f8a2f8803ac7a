"""When Cromwell is asked about a run: rarely, and all due runs in one /query.

Events tell nearly everything: Batch events move the tasks, Cromwell's callback ends the run. Two
things they cannot tell, and only these cost Cromwell calls:

* **The end without a callback.** A task end that leaves no unfinished task does not ask at once:
  it sets the run's `end_check_at` to `end_check_delay` later (`EndCheckRequests`, in the
  Batch-events function, which calls no one; the last task end wins, so a scatter's thousand
  ends are one check). When the check is due, the run is asked about only if it still has no
  unfinished task: a newer task (a sequential workflow's next step) makes the check cost
  nothing, and so does a callback that ended the run meanwhile. A run still going at its check
  is checked again after twice the delay, then four times, ...
* **Silence.** A run with no activity (no Batch event, no ask) for `idle_after` (no unfinished task:
  a workflow that never reached Batch, served from call cache, or aborted while queued) or
  `busy_after` (tasks still running: their Batch events will come, this is only the safety net for
  a lost event) is asked about; while it stays silent the wait doubles after each ask, up to
  `max_wait`. Any activity starts the wait again from `idle_after` or `busy_after`.

`AskPolicy` decides from a `RunClock` (what the ledger's run item says); `monitor.sweep.Reconciler`
reads the clocks of active runs, asks Cromwell about the due ones in one `statuses` call (/query
with many `id` filters, 100 per call) and records each ask through the `AskLog` port.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from courier.ledger.records import parse_time
from courier.ledger.task_types import RunCounts
from courier.models import RunStatus
from monitor.ports import TaskBook

END_CHECK_DELAY = timedelta(seconds=60)
_MAX_DOUBLINGS = 16  # 2**16 times any base is past max_wait


class AskReason(StrEnum):
    END_CHECK = "end-check"
    SILENT = "silent"


@dataclass(frozen=True, slots=True)
class RunClock:
    """What the ledger says of a run, as far as asking Cromwell about it goes."""

    workflow_id: str
    ended: bool
    unfinished_tasks: int
    last_activity: datetime | None
    end_check_at: datetime | None = None
    last_asked_at: datetime | None = None
    silent_asks: int = 0

    @classmethod
    def from_run(cls, workflow_id: str, run: Mapping[str, Any] | None) -> RunClock:
        """From the run item's plain attributes (`RunLedger.get_run`); a missing item has ended."""
        if run is None:
            return cls(workflow_id, ended=True, unfinished_tasks=0, last_activity=None)
        counts = RunCounts.from_item(run)
        activity = [t for t in (parse_time(run.get("updated_at")), parse_time(run.get("submitted_at"))) if t]
        return cls(
            workflow_id,
            ended=counts.status_rank >= RunStatus.SUCCEEDED.rank,
            unfinished_tasks=counts.unfinished_tasks,
            last_activity=max(activity) if activity else None,
            end_check_at=parse_time(run.get("end_check_at")),
            last_asked_at=parse_time(run.get("last_asked_at")),
            silent_asks=int(run.get("silent_asks") or 0),
        )

    def asks_this_silence(self) -> int:
        """Asks since the last activity (an older ask belongs to an earlier silence)."""
        if self.last_asked_at is None or self.silent_asks <= 0:
            return 0
        if self.last_activity is not None and self.last_activity > self.last_asked_at:
            return 0
        return self.silent_asks


@dataclass(frozen=True, slots=True)
class AskPolicy:
    end_check_delay: timedelta = END_CHECK_DELAY
    idle_after: timedelta = timedelta(minutes=15)
    busy_after: timedelta = timedelta(hours=48)
    max_wait: timedelta = timedelta(days=7)

    def reason(self, run: RunClock, now: datetime) -> AskReason | None:
        """Why the run is to be asked about now, or None (it costs no call)."""
        if run.ended:
            return None
        if run.end_check_at is not None and run.end_check_at <= now and run.unfinished_tasks == 0:
            return AskReason.END_CHECK
        next_ask = self.next_silent_ask(run)
        if next_ask is not None and next_ask <= now:
            return AskReason.SILENT
        return None

    def due_at(self, run: RunClock) -> datetime | None:
        """When the run is next due to be asked about, as things stand (None: never, it ended)."""
        if run.ended:
            return None
        due = [t for t in (self.next_silent_ask(run),) if t is not None]
        if run.end_check_at is not None and run.unfinished_tasks == 0:
            due.append(run.end_check_at)
        return min(due) if due else None

    def next_silent_ask(self, run: RunClock) -> datetime | None:
        asks = run.asks_this_silence()
        base = self.busy_after if run.unfinished_tasks > 0 else self.idle_after
        if asks and run.last_asked_at is not None:
            return run.last_asked_at + min(base * _doubled(asks), self.max_wait)
        return run.last_activity + base if run.last_activity is not None else None

    def after_ask(self, run: RunClock, reason: AskReason, now: datetime) -> tuple[int, datetime | None]:
        """For a run asked about at `now` and still going: (asks this silence, next end check)."""
        asks = run.asks_this_silence() + 1
        if reason is AskReason.END_CHECK:
            return asks, now + min(self.end_check_delay * _doubled(asks), self.max_wait)
        return asks, run.end_check_at if run.end_check_at and run.end_check_at > now else None


class AskLog(Protocol):
    """Where the asks are recorded (`courier.ledger.runs.RunLedger`)."""

    def note_asked(
        self, workflow_id: str, at: datetime, *, silent_asks: int, end_check_at: datetime | None
    ) -> bool: ...


class EndChecks(Protocol):
    """Where a task end asks for the run's end check (`courier.ledger.runs.RunLedger`)."""

    def request_end_check(self, workflow_id: str, due: datetime) -> bool: ...


class EndCheckRequests:
    """After a batch of Batch events: each run that saw a task end and whose counts show no
    unfinished task asks for one end check `delay` from now. Reads the run's counts, writes
    `end_check_at`; no Cromwell call."""

    def __init__(
        self,
        tasks: TaskBook,
        end_checks: EndChecks,
        *,
        delay: timedelta = END_CHECK_DELAY,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.tasks = tasks
        self.end_checks = end_checks
        self.delay = delay
        self.clock = clock

    def after_task_ends(self, workflow_ids: Iterable[str]) -> list[str]:
        """The runs whose end check was asked for; a run ended, unknown or with a task still
        unfinished is left alone."""
        asked: list[str] = []
        for workflow_id in dict.fromkeys(workflow_ids):
            counts = self.tasks.run_counts(workflow_id)
            if not counts.exists or counts.status_rank >= RunStatus.SUCCEEDED.rank:
                continue
            if counts.unfinished_tasks > 0:
                continue
            if self.end_checks.request_end_check(workflow_id, self.clock() + self.delay):
                asked.append(workflow_id)
        return asked


def _doubled(times: int) -> int:
    return 1 << min(max(times, 0), _MAX_DOUBLINGS)
