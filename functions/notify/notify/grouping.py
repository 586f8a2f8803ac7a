"""Alerts grouped: at most one early-failure alert per batch, one stuck-task alert per run and one
queue-blocked alert per queue in a period (`ALERT_GROUP_SECONDS`). The alert that passes names
what it stands for: the samples of the batch that failed since the previous alert, or how many
jobs wait and for how long. An alert held back is not lost: the next one, or the batch's digest
(and for waiting jobs, the run's end), tells it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from courier.ledger.deliveries import GateAnswer
from courier.ledger.records import (
    BatchMember,
    EarlyFailurePayload,
    OutboxEvent,
    QueueBlockedPayload,
    RunView,
    StuckPayload,
    TaskView,
)
from courier.models import TaskStatus
from notify.render_email import fmt_duration
from notify.summary import RunSummary
from notify.text import one_line

#: Samples named in one grouped early-failure alert.
MAX_NAMED = 20


class Gates(Protocol):
    def admit(self, scope: str, event_key: str) -> GateAnswer: ...


class GroupReads(Protocol):
    def members(self, batch_id: str) -> Iterator[BatchMember]: ...
    def run(self, workflow_id: str) -> RunView | None: ...
    def tasks(self, workflow_id: str, attributes: Sequence[str] | None = ...) -> Iterator[TaskView]: ...


def scope_of(event: OutboxEvent, run: RunView) -> str | None:
    """The group an alert belongs to; None for an event that is not grouped."""
    payload = event.payload
    if isinstance(payload, EarlyFailurePayload):
        return f"BATCH#{run.batch_id}#EARLY_FAILURE" if run.batch_id else None
    if isinstance(payload, StuckPayload):
        return f"RUN#{run.workflow_id}#STUCK"
    if isinstance(payload, QueueBlockedPayload):
        return f"QUEUE#{payload.queue or '-'}#QUEUE_BLOCKED"
    return None


class AlertGrouping:
    def __init__(self, gates: Gates, reads: GroupReads) -> None:
        self.gates = gates
        self.reads = reads

    def admit(self, event: OutboxEvent, summary: RunSummary, now: datetime) -> bool:
        """False when an alert of the same group went out within the period; else True, with
        `summary.group_note` saying what the alert stands for."""
        scope = scope_of(event, summary.run)
        if scope is None:
            return True
        answer = self.gates.admit(scope, f"{event.workflow_id}/{event.event_sk}")
        if not answer.passed:
            return False
        if isinstance(event.payload, EarlyFailurePayload):
            summary.group_note = self._failed_since(summary.run, answer.since)
        else:
            queue = event.payload.queue if isinstance(event.payload, QueueBlockedPayload) else None
            summary.group_note = self._waiting(summary.run.workflow_id, queue, now)
        return True

    def _failed_since(self, run: RunView, since: datetime | None) -> str | None:
        names: list[str] = []
        for member in self.reads.members(run.batch_id or ""):
            if member.workflow_id == run.workflow_id:
                continue
            other = self.reads.run(member.workflow_id)
            failed = other.first_failure if other else None
            if failed is None or (since is not None and failed.at is not None and failed.at < since):
                continue
            names.append(one_line(member.label, 60))
        if not names:
            return None
        shown = ", ".join(sorted(names)[:MAX_NAMED]) + (
            f" and {len(names) - MAX_NAMED} more" if len(names) > MAX_NAMED else ""
        )
        when = "since the previous alert" if since else "so far"
        return f"Other samples of the batch with a failed task {when}: {shown}."

    def _waiting(self, workflow_id: str, queue: str | None, now: datetime) -> str | None:
        count, longest = 0, timedelta(0)
        for task in self.reads.tasks(workflow_id):
            if task.status is not TaskStatus.RUNNABLE or (queue and task.queue and task.queue != queue):
                continue
            count += 1
            if task.runnable_at is not None:
                longest = max(longest, now - task.runnable_at)
        if count == 0:
            return None
        where = f" in {one_line(queue, 200)}" if queue else ""
        return (
            f"{count:,} job(s) of this run wait in RUNNABLE{where}, the longest for {fmt_duration(longest)}."
        )
