"""Folder windows in the ledger, over moto: inputs files dropped into one folder within the window
join one batch, each once whatever the redelivery and the order; the batch cannot end while its
window is open, and ends exactly once, by the closing or by its last run's end, whichever is later."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from courier.ledger import RunLedger, RunRecord
from courier.ledger.folders import FolderWindows, folder_batch_id
from courier.ledger.records import EndedPayload
from courier.ledger.schema import BATCH_KIND_FOLDER, event_sk
from courier.ledger.views import RunViews
from courier.models import NotificationKind, RunStatus
from tests.support.ledger_table import ConflictOnce, moto_ledger
from tests.support.notify_fixtures import Clock

pytestmark = pytest.mark.integration

TABLE = "courier-ledger"
T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
WINDOW = timedelta(seconds=300)
BUCKET, FOLDER = "lab-runs", "runs/rnaseq/"


@pytest.fixture
def client() -> Iterator[Any]:
    with moto_ledger(TABLE) as ddb:
        yield ddb


def wid(i: int) -> str:
    return f"f01de400-0000-5000-8000-{i:012d}"


def record(i: int, batch_id: str | None) -> RunRecord:
    return RunRecord(
        workflow_id=wid(i),
        workflow_name="rnaseq",
        source_bucket=BUCKET,
        inputs_key=f"{FOLDER}s{i}.inputs.json",
        run_folder=FOLDER,
        batch_id=batch_id,
        sample=f"s{i}",
    )


def parts(client: Any, clock: Clock) -> tuple[FolderWindows, RunLedger, RunViews]:
    return (
        FolderWindows(TABLE, client, clock=clock, sleep=lambda _: None),
        RunLedger(TABLE, client, clock=clock, sleep=lambda _: None),
        RunViews(TABLE, client),
    )


def assign(windows: FolderWindows, i: int, at: datetime, folder: str = FOLDER) -> str | None:
    return windows.assign(BUCKET, folder, wid(i), at=at, window=WINDOW)


def batch_ended_events(views: RunViews, ids: list[str]) -> list[str]:
    return [e.workflow_id for w in ids for e in views.events(w) if e.kind is NotificationKind.BATCH_ENDED]


def test_files_in_one_window_join_one_batch_each_once_whatever_the_redelivery(client: Any) -> None:
    clock = Clock(T0)
    windows, _, views = parts(client, clock)
    first = assign(windows, 1, T0)
    assert first == folder_batch_id(wid(1))
    assert assign(windows, 2, T0 + timedelta(seconds=30)) == first
    assert assign(windows, 1, T0) == first  # redelivered: counted once
    assert assign(windows, 2, T0 + timedelta(seconds=30)) == first
    assert assign(windows, 3, T0 + timedelta(seconds=299)) == first
    batch = views.batch(first)
    assert batch is not None
    assert (batch.kind, batch.assigned, batch.expected, batch.folder) == (BATCH_KIND_FOLDER, 3, None, FOLDER)
    assert batch.window_open
    # another folder has windows of its own
    other = assign(windows, 4, T0, folder="runs/other/")
    assert other not in (None, first)


def test_a_file_after_the_window_opens_a_new_batch_and_an_old_straggler_runs_alone(client: Any) -> None:
    clock = Clock(T0)
    windows, _, _ = parts(client, clock)
    first = assign(windows, 1, T0)
    second = assign(windows, 2, T0 + WINDOW)
    assert second not in (None, first)
    # handled late but uploaded just before the second window: joins it (within a window of it)
    assert assign(windows, 3, T0 + WINDOW - timedelta(seconds=10)) == second
    # handled very late, uploaded long before the latest window: alone, and so on redelivery
    assert assign(windows, 4, T0 - timedelta(seconds=1)) is None
    assert assign(windows, 4, T0 - timedelta(seconds=1)) is None


def test_uploads_handled_in_any_order_join_the_same_window(client: Any) -> None:
    clock = Clock(T0)
    windows, _, views = parts(client, clock)
    times = [T0 + timedelta(seconds=s) for s in (0, 20, 40, 60, 80, 100)]
    order = list(range(len(times)))
    random.Random(7).shuffle(order)
    answers = {assign(windows, i, times[i]) for i in order + order}
    assert len(answers) == 1
    (batch_id,) = answers
    assert batch_id is not None
    batch = views.batch(batch_id)
    assert batch is not None
    assert batch.assigned == len(times)


def test_a_window_whose_runs_all_ended_ends_when_it_closes_once(client: Any) -> None:
    clock = Clock(T0)
    windows, ledger, views = parts(client, clock)
    batch_id = assign(windows, 1, T0)
    assert assign(windows, 2, T0 + timedelta(seconds=5)) == batch_id
    ids = [wid(1), wid(2)]
    for i in (1, 2):
        assert ledger.record_submitted(record(i, batch_id))
    clock.now = T0 + timedelta(seconds=60)
    assert ledger.finish(wid(1), RunStatus.SUCCEEDED)
    assert ledger.finish(wid(2), RunStatus.FAILED)
    assert batch_ended_events(views, ids) == []  # the window is open: more files may come
    assert windows.due(clock.now) == []
    # the end of a run in an open window is left to the batch (it may hold more runs)
    ended = views.event(wid(1), event_sk(NotificationKind.ENDED.value))
    assert ended is not None
    assert isinstance(ended.payload, EndedPayload)
    assert not ended.payload.per_run

    clock.now = T0 + WINDOW
    assert windows.due(clock.now) == [batch_id]
    assert windows.close(batch_id)
    assert not windows.close(batch_id)  # the next pass: closed already
    assert windows.due(clock.now) == []
    batch = views.batch(batch_id)
    assert batch is not None
    assert (batch.expected, batch.ended, dict(batch.counts)) == (2, 2, {"Succeeded": 1, "Failed": 1})
    assert batch.ended_by in ids
    assert batch_ended_events(views, ids) == [batch.ended_by]


def test_a_window_closed_before_its_runs_end_ends_with_its_last_run(client: Any) -> None:
    clock = Clock(T0)
    windows, ledger, views = parts(client, clock)
    batch_id = assign(windows, 1, T0)
    assert assign(windows, 2, T0 + timedelta(seconds=5)) == batch_id
    assert ledger.record_submitted(record(1, batch_id))
    clock.now = T0 + WINDOW
    assert windows.close(batch_id)
    # a file of the window handled after the window closed runs alone
    assert assign(windows, 3, T0 + timedelta(seconds=10)) is None
    assert ledger.finish(wid(1), RunStatus.SUCCEEDED)
    assert batch_ended_events(views, [wid(1), wid(2)]) == []
    assert ledger.record_submitted(record(2, batch_id))  # recorded late (Cromwell was down)
    assert ledger.finish(wid(2), RunStatus.SUCCEEDED)
    assert batch_ended_events(views, [wid(1), wid(2)]) == [wid(2)]
    ended = views.event(wid(2), event_sk(NotificationKind.ENDED.value))
    assert ended is not None
    assert isinstance(ended.payload, EndedPayload)
    assert not ended.payload.per_run


def test_a_window_closed_on_one_file_is_no_batch_to_its_run(client: Any) -> None:
    """The run of a lone file ending after its window closed sends its own end message."""
    clock = Clock(T0)
    windows, ledger, views = parts(client, clock)
    batch_id = assign(windows, 1, T0)
    assert ledger.record_submitted(record(1, batch_id))
    clock.now = T0 + WINDOW
    assert windows.close(batch_id)
    batch = views.batch(batch_id)
    assert batch is not None
    assert batch.lone
    assert ledger.finish(wid(1), RunStatus.SUCCEEDED)
    ended = views.event(wid(1), event_sk(NotificationKind.ENDED.value))
    assert ended is not None
    assert isinstance(ended.payload, EndedPayload)
    assert ended.payload.per_run
    assert batch_ended_events(views, [wid(1)]) == [wid(1)]


class BeforeFirstWrite:
    """A DynamoDB client that runs `hook` just before its first transaction: another writer
    getting in between a read and the write that depends on it."""

    def __init__(self, client: Any, hook: Any) -> None:
        self.client = client
        self.hook = hook

    def transact_write_items(self, **kwargs: Any) -> Any:
        hook, self.hook = self.hook, None
        if hook is not None:
            hook()
        return self.client.transact_write_items(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def test_a_run_ending_while_the_window_closes_ends_the_batch_exactly_once(client: Any) -> None:
    """The closing and the last end race: whichever writes second finds the other's write (both
    are pinned on the batch's counts), reads again, and exactly one inserts BATCH_ENDED."""
    clock = Clock(T0)
    windows, _, views = parts(client, clock)
    # the closing gets in between the run's end reading the batch (window open) and its write
    first = assign(windows, 1, T0) or ""
    RunLedger(TABLE, client, clock=clock).record_submitted(record(1, first))
    clock.now = T0 + WINDOW
    racing = RunLedger(TABLE, BeforeFirstWrite(client, lambda: windows.close(first)), clock=clock)  # type: ignore[arg-type]
    assert racing.finish(wid(1), RunStatus.SUCCEEDED)
    assert batch_ended_events(views, [wid(1)]) == [wid(1)]
    batch = views.batch(first)
    assert batch is not None
    assert (batch.expected, batch.ended, batch.ended_by) == (1, 1, wid(1))

    # the run's end gets in between the closing reading the batch (one run going) and its write
    second = assign(windows, 2, T0 + timedelta(days=1)) or ""
    ledger = RunLedger(TABLE, client, clock=clock)
    ledger.record_submitted(record(2, second))
    clock.now = T0 + timedelta(days=1) + WINDOW
    racing_close = FolderWindows(
        TABLE,
        BeforeFirstWrite(client, lambda: ledger.finish(wid(2), RunStatus.FAILED)),  # type: ignore[arg-type]
        clock=clock,
    )
    assert racing_close.close(second)
    assert batch_ended_events(views, [wid(2)]) == [wid(2)]
    batch = views.batch(second)
    assert batch is not None
    assert (batch.expected, batch.ended, batch.ended_by) == (1, 1, wid(2))


def test_files_dropped_together_retry_a_join_cancelled_by_another(client: Any) -> None:
    """Files of one folder dropped together all join its batch item: a join cancelled by another
    transaction on it is tried again after a pause, and counted once."""
    clock = Clock(T0)
    pauses: list[float] = []
    windows = FolderWindows(TABLE, ConflictOnce(client, fail=0), clock=clock, sleep=pauses.append)  # type: ignore[arg-type]
    batch_id = windows.assign(BUCKET, FOLDER, wid(1), at=T0, window=WINDOW)
    windows.client.fail = 3  # type: ignore[attr-defined]
    assert windows.assign(BUCKET, FOLDER, wid(2), at=T0 + timedelta(seconds=1), window=WINDOW) == batch_id
    assert len(pauses) == 3
    batch = RunViews(TABLE, client).batch(batch_id or "")
    assert batch is not None
    assert batch.assigned == 2
