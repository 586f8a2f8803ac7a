"""When the reconciler asks Cromwell about a run (`monitor.asking.AskPolicy`), and when a task end
asks for an end check (`monitor.asking.EndCheckRequests`)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from courier.models import RunStatus
from monitor.asking import AskPolicy, AskReason, EndCheckRequests, RunClock
from tests.support.monitor_fakes import FakeLedger

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
POLICY = AskPolicy()


def clock(**fields: object) -> RunClock:
    values: dict[str, object] = {"ended": False, "unfinished_tasks": 0, "last_activity": T0, **fields}
    return RunClock("wf", **values)  # type: ignore[arg-type]


def test_an_end_check_is_due_only_once_its_time_has_come_and_nothing_is_unfinished() -> None:
    due = T0 + timedelta(seconds=60)
    assert POLICY.reason(clock(end_check_at=due), due - timedelta(seconds=1)) is None
    assert POLICY.reason(clock(end_check_at=due), due) is AskReason.END_CHECK
    # a newer task appeared meanwhile (a sequential workflow's next step): no call
    assert POLICY.reason(clock(end_check_at=due, unfinished_tasks=1), due) is None
    # ended meanwhile (the callback): no call
    assert POLICY.reason(clock(end_check_at=due, ended=True), due) is None


@pytest.mark.parametrize(
    ("unfinished", "after"), [(0, POLICY.idle_after), (3, POLICY.busy_after)], ids=["idle", "busy"]
)
def test_silence_is_asked_about_then_the_wait_doubles_until_activity(
    unfinished: int, after: timedelta
) -> None:
    run = clock(unfinished_tasks=unfinished)
    assert POLICY.reason(run, T0 + after - timedelta(seconds=1)) is None
    first = T0 + after
    assert POLICY.reason(run, first) is AskReason.SILENT
    asks, end_check = POLICY.after_ask(run, AskReason.SILENT, first)
    assert (asks, end_check) == (1, None)
    asked = clock(unfinished_tasks=unfinished, last_asked_at=first, silent_asks=asks)
    assert POLICY.reason(asked, first + 2 * after - timedelta(seconds=1)) is None
    assert POLICY.reason(asked, first + 2 * after) is AskReason.SILENT
    # activity after the ask: the wait starts again from the activity
    active = clock(
        unfinished_tasks=unfinished, last_asked_at=first, silent_asks=5, last_activity=first + after
    )
    assert active.asks_this_silence() == 0
    assert POLICY.reason(active, first + 2 * after) is AskReason.SILENT


def test_an_end_check_that_finds_the_run_going_is_made_again_later_and_later() -> None:
    due = T0 + timedelta(seconds=60)
    run = clock(end_check_at=due)
    asks, again = POLICY.after_ask(run, AskReason.END_CHECK, due)
    assert (asks, again) == (1, due + 2 * POLICY.end_check_delay)
    asks, again = POLICY.after_ask(
        clock(end_check_at=again, last_asked_at=due, silent_asks=1), AskReason.END_CHECK, again
    )
    assert (asks, again) == (2, due + 2 * POLICY.end_check_delay + 4 * POLICY.end_check_delay)


def test_the_wait_is_capped_and_a_long_silence_never_overflows() -> None:
    run = clock(unfinished_tasks=1, last_asked_at=T0, silent_asks=500)
    assert POLICY.next_silent_ask(run) == T0 + POLICY.max_wait


def test_the_clock_is_read_from_the_run_item() -> None:
    item = {
        "status": "Running",
        "status_rank": 3,
        "tasks_RUNNING": 2,
        "tasks_SUCCEEDED": 5,
        "submitted_at": "2026-03-02T09:00:00.000Z",
        "updated_at": "2026-03-02T10:00:00.000Z",
        "end_check_at": "2026-03-02T10:01:00.000Z",
        "silent_asks": 2,
        "last_asked_at": "2026-03-02T09:30:00.000Z",
    }
    run = RunClock.from_run("wf", item)
    assert (run.ended, run.unfinished_tasks, run.last_activity) == (False, 2, T0)
    assert run.end_check_at == T0 + timedelta(minutes=1)
    assert run.asks_this_silence() == 0  # activity at 10:00 came after the ask at 09:30
    assert RunClock.from_run("wf", {**item, "status": "Succeeded", "status_rank": 9}).ended
    assert RunClock.from_run("wf", None).ended


def test_a_task_end_asks_for_one_end_check_only_for_runs_with_nothing_unfinished() -> None:
    ledger = FakeLedger()
    ledger.add_run("done", RunStatus.RUNNING, counts=Counter(SUCCEEDED=3))
    ledger.add_run("next-step", RunStatus.RUNNING, counts=Counter(SUCCEEDED=1, RUNNABLE=1))
    ledger.add_run("ended", RunStatus.SUCCEEDED, counts=Counter(SUCCEEDED=1))
    requests = EndCheckRequests(ledger, ledger, clock=lambda: T0)

    asked = requests.after_task_ends(["done", "next-step", "ended", "unknown", "done"])

    assert asked == ["done"]  # a scatter's many ends in one batch: one request
    assert ledger.runs["done"].end_check_at == T0 + POLICY.end_check_delay
    assert ledger.runs["next-step"].end_check_at is None
    assert ledger.calls["request_end_check"] == 1
    # a later batch's last task end moves the check later, never earlier
    later = EndCheckRequests(ledger, ledger, clock=lambda: T0 + timedelta(seconds=30))
    assert later.after_task_ends(["done"]) == ["done"]
    assert ledger.runs["done"].end_check_at == T0 + timedelta(seconds=90)
    assert EndCheckRequests(ledger, ledger, clock=lambda: T0).after_task_ends(["done"]) == []
