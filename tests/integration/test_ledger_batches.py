"""Batches in the ledger, over moto: a sheet's runs counted exactly once per transition whatever
the redelivery and the order, and ONE BATCH_ENDED event, with the transition of the last run."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from courier.ledger import RunLedger, RunRecord
from courier.ledger.deliveries import AlertGates, GateAnswer
from courier.ledger.records import BatchEndedPayload, BatchOpening, EndedPayload
from courier.ledger.schema import BATCH_KIND_SHEET
from courier.ledger.views import RunViews
from courier.models import NotificationKind, RunStatus
from tests.support.ledger_table import ConflictOnce, moto_ledger

pytestmark = pytest.mark.integration

TABLE = "courier-ledger"
BATCH = "5a5a5a5a-0000-5000-8000-00000000b001"


@pytest.fixture
def client() -> Iterator[Any]:
    with moto_ledger(TABLE) as ddb:
        yield ddb


def run_id(i: int) -> str:
    return f"5a5a5a5a-0000-5000-8000-{i:012d}"


def record(i: int, *, notify: str | None = None) -> RunRecord:
    return RunRecord(
        workflow_id=run_id(i),
        workflow_name="germline",
        source_bucket="lab-runs",
        inputs_key=f"cohort/samples.tsv:line-{i + 2}",
        run_folder="cohort/",
        routing={"notify": notify} if notify else {},
        batch_id=BATCH,
        sample=f"S{i:02d}",
        reasons=("refused",),
    )


def open_batch(ledger: RunLedger, expected: int) -> None:
    for _ in range(2):  # a redelivered sheet opens it again: nothing changes
        ledger.open_batch(
            BATCH,
            BatchOpening(BATCH_KIND_SHEET, "lab-runs", "cohort/", "cohort/samples.tsv", expected, "germline"),
        )


def batch_events(views: RunViews, ids: list[str]) -> list[str]:
    return [e.workflow_id for wf in ids for e in views.events(wf) if e.kind is NotificationKind.BATCH_ENDED]


def test_counts_once_under_redelivery_and_one_digest(client: Any) -> None:
    ledger = RunLedger(TABLE, client)
    views = RunViews(TABLE, client)
    open_batch(ledger, 4)
    ids = [run_id(i) for i in range(4)]
    for i in range(3):
        assert ledger.record_submitted(record(i))
        assert not ledger.record_submitted(record(i))  # redelivered
    assert ledger.record_rejected(record(3))
    assert not ledger.record_rejected(record(3))
    batch = views.batch(BATCH)
    assert batch is not None
    assert (batch.runs, batch.ended, batch.counts.get("Rejected")) == (4, 1, 1)
    assert ledger.finish(ids[0], RunStatus.SUCCEEDED, source="callback")
    assert not ledger.finish(ids[0], RunStatus.SUCCEEDED, source="reconciler")
    assert ledger.finish(ids[1], RunStatus.FAILED, source="callback")
    assert batch_events(views, ids) == []
    assert ledger.finish(ids[2], RunStatus.SUCCEEDED, source="callback")
    assert not ledger.finish(ids[2], RunStatus.FAILED, source="reconciler")
    batch = views.batch(BATCH)
    assert batch is not None
    assert (batch.runs, batch.ended) == (4, 4)
    assert dict(batch.counts) == {"Succeeded": 2, "Failed": 1, "Rejected": 1}
    assert batch.ended_by == ids[2]
    assert batch_events(views, ids) == [ids[2]]
    event = next(e for e in views.events(ids[2]) if e.kind is NotificationKind.BATCH_ENDED)
    assert event.payload == BatchEndedPayload(BATCH)
    members = {m.sample: m.status for m in views.members(BATCH)}
    assert members == {
        "S00": RunStatus.SUCCEEDED,
        "S01": RunStatus.FAILED,
        "S02": RunStatus.SUCCEEDED,
        "S03": RunStatus.REJECTED,
    }


def test_order_never_matters_a_run_ends_before_a_later_row_is_submitted(client: Any) -> None:
    ledger = RunLedger(TABLE, client)
    views = RunViews(TABLE, client)
    open_batch(ledger, 3)
    ids = [run_id(i) for i in range(3)]
    assert ledger.record_submitted(record(0))
    assert ledger.finish(ids[0], RunStatus.SUCCEEDED)
    assert ledger.record_submitted(record(1))
    assert ledger.finish(ids[1], RunStatus.FAILED)
    assert batch_events(views, ids) == []  # the sheet expects a third run
    assert ledger.record_submitted(record(2))
    assert ledger.finish(ids[2], RunStatus.ABORTED)
    assert batch_events(views, ids) == [ids[2]]


def test_shuffled_redelivered_transitions_give_one_digest(client: Any) -> None:
    """Every transition delivered twice, in a shuffled order (a run's end never before its record,
    as the ledger's own conditions require of Cromwell's ids)."""
    ledger = RunLedger(TABLE, client)
    views = RunViews(TABLE, client)
    n = 8
    open_batch(ledger, n)
    steps: list[tuple[str, int]] = [(kind, i) for i in range(n) for kind in ("record", "end")] * 2
    random.Random(13).shuffle(steps)
    recorded: set[int] = set()
    pending: list[tuple[str, int]] = []
    for step in steps:
        pending.append(step)
        for kind, i in list(pending):
            if kind == "end" and i not in recorded:
                continue
            pending.remove((kind, i))
            if kind == "record":
                ledger.record_submitted(record(i))
                recorded.add(i)
            else:
                ledger.finish(run_id(i), RunStatus.SUCCEEDED if i % 3 else RunStatus.FAILED)
    batch = views.batch(BATCH)
    assert batch is not None
    assert (batch.runs, batch.ended) == (n, n)
    assert batch.counts.get("Failed") == 3
    assert batch.counts.get("Succeeded") == 5
    assert len(batch_events(views, [run_id(i) for i in range(n)])) == 1


def test_ended_event_says_whether_the_run_sends_its_own_message(client: Any) -> None:
    ledger = RunLedger(TABLE, client)
    views = RunViews(TABLE, client)
    open_batch(ledger, 2)
    ledger.record_submitted(record(0))
    ledger.record_submitted(record(1, notify="both"))
    ledger.finish(run_id(0), RunStatus.SUCCEEDED)
    ledger.finish(run_id(1), RunStatus.SUCCEEDED)
    ended = {
        e.workflow_id: e.payload
        for i in range(2)
        for e in views.events(run_id(i))
        if e.kind is NotificationKind.ENDED
    }
    assert ended[run_id(0)] == EndedPayload(RunStatus.SUCCEEDED, None, batch_id=BATCH, per_run=False)
    assert ended[run_id(1)] == EndedPayload(RunStatus.SUCCEEDED, None, batch_id=BATCH, per_run=True)
    run = views.run(run_id(0))
    assert run is not None
    assert (run.batch_id, run.sample) == (BATCH, "S00")


def test_a_run_outside_any_batch_is_unchanged(client: Any) -> None:
    ledger = RunLedger(TABLE, client)
    views = RunViews(TABLE, client)
    plain = RunRecord("5a5a5a5a-0000-5000-8000-0000000000ff", "w", "b", "f/inputs.json", "f/")
    assert ledger.record_submitted(plain)
    assert ledger.finish(plain.workflow_id, RunStatus.SUCCEEDED, ended_at=datetime(2026, 1, 1, tzinfo=UTC))
    events = {e.kind: e.payload for e in views.events(plain.workflow_id)}
    assert events[NotificationKind.ENDED] == EndedPayload(RunStatus.SUCCEEDED, None)


def test_a_run_that_ends_before_submit_records_it_is_counted_once(client: Any) -> None:
    """The local engine (or a fast Cromwell) may call back before submit's record: the monitor
    writes the end without knowing the batch, and submit's record then counts it, once."""
    ledger = RunLedger(TABLE, client)
    views = RunViews(TABLE, client)
    open_batch(ledger, 2)
    assert ledger.finish(run_id(0), RunStatus.FAILED, source="callback")  # no run item yet
    assert not ledger.record_submitted(record(0))
    assert not ledger.record_submitted(record(0))  # redelivered
    assert ledger.record_submitted(record(1))
    assert ledger.finish(run_id(1), RunStatus.SUCCEEDED)
    batch = views.batch(BATCH)
    assert batch is not None
    assert (batch.runs, batch.ended, dict(batch.counts)) == (2, 2, {"Failed": 1, "Succeeded": 1})
    assert batch_events(views, [run_id(0), run_id(1)]) == [run_id(1)]
    assert {m.sample: m.status for m in views.members(BATCH)} == {
        "S00": RunStatus.FAILED,
        "S01": RunStatus.SUCCEEDED,
    }


def test_the_last_run_recorded_after_its_end_sends_the_digest(client: Any) -> None:
    ledger = RunLedger(TABLE, client)
    views = RunViews(TABLE, client)
    open_batch(ledger, 2)
    assert ledger.record_submitted(record(0))
    assert ledger.finish(run_id(0), RunStatus.SUCCEEDED)
    assert ledger.finish(run_id(1), RunStatus.SUCCEEDED)
    assert batch_events(views, [run_id(0), run_id(1)]) == []
    assert not ledger.record_submitted(record(1))
    assert batch_events(views, [run_id(0), run_id(1)]) == [run_id(1)]
    batch = views.batch(BATCH)
    assert batch is not None
    assert (batch.runs, batch.ended) == (2, 2)


T0 = datetime(2026, 12, 4, 6, 0, tzinfo=UTC)


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


def test_one_alert_per_scope_per_period_and_the_opener_passes_again(client: Any) -> None:
    clock = Clock()
    gates = AlertGates(TABLE, client, period=timedelta(minutes=5), clock=clock)
    assert gates.admit("BATCH#b#EARLY_FAILURE", "e1") == GateAnswer(True, None)
    assert gates.admit("BATCH#b#EARLY_FAILURE", "e1") == GateAnswer(True, None)  # its retry
    assert not gates.admit("BATCH#b#EARLY_FAILURE", "e2").passed
    assert gates.admit("RUN#r#STUCK", "e2").passed  # another scope
    clock.now = T0 + timedelta(minutes=6)
    assert gates.admit("BATCH#b#EARLY_FAILURE", "e3") == GateAnswer(True, T0)
    assert not gates.admit("BATCH#b#EARLY_FAILURE", "e4").passed


def test_a_transaction_cancelled_by_a_conflicting_one_is_tried_again(client: Any) -> None:
    pauses: list[float] = []
    ledger = RunLedger(TABLE, ConflictOnce(client, fail=2), sleep=pauses.append)  # type: ignore[arg-type]
    views = RunViews(TABLE, client)
    open_batch(RunLedger(TABLE, client), 1)
    assert ledger.record_submitted(record(0))
    ledger.client.fail = 2  # type: ignore[attr-defined]
    assert ledger.finish(run_id(0), RunStatus.SUCCEEDED)
    assert len(pauses) == 4
    batch = views.batch(BATCH)
    assert batch is not None
    assert (batch.ended, batch.ended_by) == (1, run_id(0))
