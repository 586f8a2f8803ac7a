"""Grouped alerts with fakes: one per group, and what the alert that passes says (samples failed
since the previous one, jobs waiting and for how long). The gate itself: tests/integration/
test_ledger_batches.py."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from courier.ledger.deliveries import GateAnswer
from courier.ledger.records import (
    BatchMember,
    EarlyFailurePayload,
    OutboxEvent,
    QueueBlockedPayload,
    RunView,
    StuckPayload,
    TaskSummary,
    TaskView,
)
from courier.models import NotificationKind, RunStatus, TaskStatus
from notify.grouping import AlertGrouping
from notify.render_email import render_email
from notify.summary import RunSummary

T0 = datetime(2026, 12, 4, 6, 0, tzinfo=UTC)


@dataclass
class Gates:
    open: set[str] = field(default_factory=set)
    since: datetime | None = None

    def admit(self, scope: str, event_key: str) -> GateAnswer:
        if scope in self.open:
            return GateAnswer(False)
        self.open.add(scope)
        return GateAnswer(True, self.since)


def run(i: int, failed_at: datetime | None = None) -> RunView:
    return RunView(
        workflow_id=f"w{i}",
        workflow_name="qc",
        status=RunStatus.RUNNING,
        batch_id="b",
        sample=f"S{i}",
        first_failure=TaskSummary(job_id=f"j{i}", call="qc.count", at=failed_at) if failed_at else None,
    )


@dataclass
class Reads:
    runs: dict[str, RunView]
    waiting: list[TaskView] = field(default_factory=list)

    def members(self, batch_id: str) -> Iterator[BatchMember]:
        for view in self.runs.values():
            yield BatchMember("b", view.workflow_id, sample=view.sample)

    def run(self, workflow_id: str) -> RunView | None:
        return self.runs.get(workflow_id)

    def tasks(self, workflow_id: str, attributes: Sequence[str] | None = None) -> Iterator[TaskView]:
        yield from self.waiting


def summary(view: RunView, kind: NotificationKind) -> RunSummary:
    return RunSummary(kind=kind, event_sk=f"EVENT#{kind.value}", run=view, created_at=T0)


def event(view: RunView, payload: Any) -> OutboxEvent:
    kind = type(payload).kind
    return OutboxEvent(view.workflow_id, kind, f"EVENT#{kind.value}", payload)


def test_an_early_failure_names_the_samples_failed_since_the_previous_alert() -> None:
    runs = {
        "w1": run(1, T0),
        "w2": run(2, T0 + timedelta(minutes=1)),
        "w3": run(3, T0 - timedelta(hours=1)),  # before the previous alert: named then
        "w4": run(4),
    }
    grouping = AlertGrouping(Gates(since=T0 - timedelta(minutes=10)), Reads(runs))
    first = summary(runs["w1"], NotificationKind.EARLY_FAILURE)
    assert grouping.admit(event(runs["w1"], EarlyFailurePayload()), first, T0)
    assert first.group_note == "Other samples of the batch with a failed task since the previous alert: S2."
    assert "S2." in render_email(first, region="us-east-1", now=T0).body
    second = summary(runs["w2"], NotificationKind.EARLY_FAILURE)
    assert not grouping.admit(event(runs["w2"], EarlyFailurePayload()), second, T0)


def test_a_run_outside_a_batch_is_not_grouped_for_early_failures() -> None:
    lone = RunView(workflow_id="w9", status=RunStatus.RUNNING)
    grouping = AlertGrouping(Gates(), Reads({}))
    for _ in range(2):
        assert grouping.admit(
            event(lone, EarlyFailurePayload()), summary(lone, NotificationKind.EARLY_FAILURE), T0
        )


@pytest.mark.parametrize(
    ("payload", "note"),
    [
        (StuckPayload(job_id="j1"), "2 job(s) of this run wait in RUNNABLE, the longest for 1 h 00 min."),
        (
            QueueBlockedPayload(job_id="j1", queue="q1"),
            "1 job(s) of this run wait in RUNNABLE in q1, the longest for 1 h 00 min.",
        ),
    ],
)
def test_waiting_jobs_are_counted_once_per_period(payload: Any, note: str) -> None:
    waiting = [
        TaskView(job_id="j1", status=TaskStatus.RUNNABLE, queue="q1", runnable_at=T0 - timedelta(hours=1)),
        TaskView(job_id="j2", status=TaskStatus.RUNNABLE, queue="q2", runnable_at=T0 - timedelta(minutes=5)),
        TaskView(job_id="j3", status=TaskStatus.RUNNING, queue="q1"),
    ]
    view = run(1)
    grouping = AlertGrouping(Gates(), Reads({}, waiting))
    first = summary(view, type(payload).kind)
    assert grouping.admit(event(view, payload), first, T0)
    assert first.group_note == note
    assert not grouping.admit(event(view, payload), summary(view, type(payload).kind), T0)
