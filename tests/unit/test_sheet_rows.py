"""The rows of sample sheets with fakes: the pacer holds Cromwell to its rate, a row met by an
unreachable Cromwell stops its batch and hands every row left back with a growing delay, a row
already decided is not submitted again, and the receipts are rewritten when due."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from courier.errors import CromwellUnavailable
from courier.ledger.sheets import QUEUED, SUBMITTED, RowRecord, SheetRecord
from submit.sheet_adapters import Pacer
from submit.sheet_service import (
    ROW_MESSAGE_KIND,
    InvalidRowMessage,
    RowMessage,
    RowService,
    SheetOptions,
    parse_row_message,
)

T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


def test_pacer_spaces_calls_by_the_rate() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = Pacer(4.0, monotonic=lambda: now[0], sleep=sleep)
    for _ in range(5):
        pacer.wait()
    assert slept == [0.25, 0.25, 0.25, 0.25]
    now[0] += 10  # idle for a while: no catching up in a burst beyond the rate
    pacer.wait()
    pacer.wait()
    assert slept[-1] == 0.25
    with pytest.raises(ValueError, match="positive"):
        Pacer(0)


class FakeBook:
    def __init__(self, rows: int) -> None:
        self.items = {n: {"line": n, "sample": f"S{n}", "status": QUEUED} for n in range(2, rows + 2)}
        self.sheet_item: dict[str, Any] = {"sheet_id": "sheet", "bucket": "b", "key": "runs/x/samples.tsv"}
        self.marks: list[dict[str, Any]] = []

    def _counts(self) -> dict[str, Any]:
        counts = {f"rows_{s}": 0 for s in ("Queued", "Waiting", "Submitted", "Rejected")}
        for row in self.items.values():
            counts[f"rows_{row['status']}"] += 1
        return counts

    def sheet(self, sheet_id: str) -> dict[str, Any] | None:
        return {**self.sheet_item, "rows": len(self.items), **self._counts()}

    def row(self, sheet_id: str, line: int) -> dict[str, Any] | None:
        return self.items.get(line)

    def rows(self, sheet_id: str) -> list[dict[str, Any]]:
        return [self.items[n] for n in sorted(self.items)]

    def create(self, sheet: SheetRecord, rows: Sequence[RowRecord]) -> None:
        raise AssertionError("rows never create sheets")

    def settle_row(
        self, sheet_id: str, line: int, status: str, *, workflow_id: str, reasons: Sequence[str] = ()
    ) -> bool:
        self.items[line] = {**self.items[line], "status": status, "workflow_id": workflow_id}
        return True

    def mark(self, sheet_id: str, **fields: Any) -> None:
        self.marks.append(fields)
        self.sheet_item.update(fields)


class FakeFiles:
    def __init__(self) -> None:
        self.written: list[str] = []

    def write_receipts(self, bucket: str, sheet_key: str, document: Mapping[str, Any], table: str) -> None:
        self.written.append(document["status"])


class FakeQueue:
    def __init__(self) -> None:
        self.delays: list[tuple[str, int]] = []

    def send(self, messages: Sequence[Mapping[str, Any]]) -> None:
        raise AssertionError("rows are never queued by the rows function")

    def retry_later(self, receipt_handle: str, seconds: int) -> None:
        self.delays.append((receipt_handle, seconds))


class Outcome:
    def __init__(self, status: str) -> None:
        self.status = status


class FakeService:
    """Stands for the inputs-file service: submits (or fails) and reports the row's verdict."""

    def __init__(self, verdicts: Any, submitted: list[str], down: bool) -> None:
        self.verdicts = verdicts
        self.submitted = submitted
        self.down = down

    def handle(self, upload: Any) -> Outcome:
        if self.down:
            raise CromwellUnavailable("Cromwell answered 503")
        self.submitted.append(upload.key)
        self.verdicts.book.settle_row("sheet", self.verdicts.line, SUBMITTED, workflow_id="wf")
        return Outcome("Submitted")


def message(line: int, receive_count: int = 1) -> RowMessage:
    body = {
        "kind": ROW_MESSAGE_KIND,
        "sheet_id": "sheet",
        "bucket": "b",
        "key": "runs/x/samples.tsv",
        "line": line,
        "inputs": {"wf.x": line},
    }
    return RowMessage(f"m{line}", f"h{line}", json.dumps(body), receive_count)


def service(
    book: FakeBook,
    files: FakeFiles,
    queue: FakeQueue,
    *,
    down: list[bool],
    submitted: list[str],
    now: list[datetime],
) -> RowService:
    return RowService(
        folders=object(),  # type: ignore[arg-type]
        book=book,
        files=files,  # type: ignore[arg-type]
        queue=queue,
        make_service=lambda _folders, verdicts, _member: FakeService(verdicts, submitted, down[0]),  # type: ignore[arg-type,return-value]
        options=SheetOptions(render_every_seconds=20),
        clock=lambda: now[0],
    )


def test_cromwell_down_stops_the_batch_and_delays_every_row_left() -> None:
    book, files, queue, submitted = FakeBook(4), FakeFiles(), FakeQueue(), []
    rows = service(book, files, queue, down=[True], submitted=submitted, now=[T0])
    result = rows.handle([message(2, receive_count=3), message(3), message(4)])
    assert result.failed == ["m2", "m3", "m4"]
    assert queue.delays == [("h2", 120), ("h3", 30), ("h4", 30)]
    assert submitted == []
    assert files.written == ["InProgress"]  # a batch that met an outage is shown at once


def test_rows_already_decided_are_not_submitted_and_receipts_come_when_due() -> None:
    book, files, queue, submitted = FakeBook(3), FakeFiles(), FakeQueue(), []
    now = [T0]
    rows = service(book, files, queue, down=[False], submitted=submitted, now=now)
    first = rows.handle([message(2), message(2)])
    assert first.outcomes == {"m2": "Duplicate"}  # the same message twice in one batch
    assert submitted == ["runs/x/samples.tsv:line-2"]
    assert files.written == ["InProgress"]  # never rendered before
    rows.handle([message(3)])
    assert files.written == ["InProgress"]  # pending, rendered less than 20 s ago
    now[0] = T0 + timedelta(seconds=21)
    rows.handle([message(3)])  # a redelivery: nothing submitted, but the receipts are due
    assert submitted == ["runs/x/samples.tsv:line-2", "runs/x/samples.tsv:line-3"]
    assert files.written == ["InProgress", "InProgress"]
    rows.handle([message(4)])  # the last row: rendered at once
    assert files.written[-1] == "Done"


def test_unusable_messages_are_dropped_with_the_reason() -> None:
    book, files, queue, submitted = FakeBook(1), FakeFiles(), FakeQueue(), []
    rows = service(book, files, queue, down=[False], submitted=submitted, now=[T0])
    result = rows.handle([RowMessage("m1", "h1", "not json"), message(9)])
    assert result.failed == []
    assert [i.split(":")[0] for i in result.invalid] == ["m1", "m9"]
    assert "not in the ledger" in result.invalid[1]
    with pytest.raises(InvalidRowMessage, match="'line' is missing"):
        parse_row_message(json.dumps({"kind": ROW_MESSAGE_KIND, "sheet_id": "s", "bucket": "b", "key": "k"}))
