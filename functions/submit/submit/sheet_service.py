"""What happens to a sample sheet, and to each of its rows. Pure orchestration over ports.

    sheet upload -> already queued? -> read folder (workflow, options, inputs.json) -> read sheet
                 -> record the sheet and its rows (bad rows Rejected) -> queue the good rows
                 -> receipts (+ one REJECTED notification naming every refused row)

    row message  -> row already decided? -> SubmitService.handle (the inputs file path: plan,
                    check s3:// inputs, submit, ledger) with the row as its inputs file
                 -> the row's verdict into the sheet's ledger -> receipts when due

Exactly once: a row's workflow id derives from the sheet upload and the row's line
(`sheet_row_key`), as an inputs file's does from its upload; the run ledger and Cromwell's
"already in use" answer keep a redelivered row from being submitted twice, and the sheet ledger
counts each row's verdict once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from courier.conventions import (
    SAMPLE_SHEET_NAMES,
    receipt_key,
    requested_workflow_id,
    rows_receipt_key,
    sheet_row_key,
)
from courier.errors import CromwellUnavailable
from courier.ledger.records import BatchOpening, parse_time
from courier.ledger.schema import BATCH_KIND_SHEET
from courier.ledger.sheets import FINAL, QUEUED, REJECTED, SUBMITTED, WAITING, RowRecord, SheetRecord
from courier.models import RunRecord
from submit.folder import Findings, Limits, RunFolder, shown
from submit.plan import analyse_folder
from submit.receipt import Receipt
from submit.service import FolderSource, Membership, SubmitService
from submit.sheet_receipts import rows_table, sheet_receipt
from submit.upload import INPUTS_NAME, Upload

if TYPE_CHECKING:
    from submit.sheet import Sheet, SheetRow

ROW_MESSAGE_KIND = "courier-sheet-row"
#: A row travels in one SQS message (at most 256 KiB, with room for the attributes).
MAX_ROW_MESSAGE_BYTES = 250_000
#: Row refusals named in the sheet's one notification; the receipts table has them all.
_NOTIFIED_ROWS = 20


class SheetBook(Protocol):
    def sheet(self, sheet_id: str) -> dict[str, Any] | None: ...
    def row(self, sheet_id: str, line: int) -> dict[str, Any] | None: ...
    def rows(self, sheet_id: str) -> list[dict[str, Any]]: ...
    def create(self, sheet: SheetRecord, rows: Sequence[RowRecord]) -> None: ...
    def settle_row(
        self, sheet_id: str, line: int, status: str, *, workflow_id: str, reasons: Sequence[str] = ()
    ) -> bool: ...
    def mark(self, sheet_id: str, **fields: Any) -> None: ...


class RejectionBook(Protocol):
    def record_rejected(self, run: RunRecord) -> bool: ...
    def open_batch(self, batch_id: str, opening: BatchOpening) -> None: ...


class SheetFiles(Protocol):
    def named_sheet(self, bucket: str, folder: str) -> str | None:
        """The sheet options.json names (`courier_sample_sheet`), if it names one."""
        ...

    def folder_names(self, bucket: str, folder: str) -> set[str]:
        """The names of the files directly in the folder."""
        ...

    def read_sheet(self, upload: Upload, max_bytes: int) -> bytes | str:
        """The sheet's bytes at the uploaded version, or a sentence saying why they cannot be read."""
        ...

    def write_receipts(
        self, bucket: str, sheet_key: str, document: Mapping[str, Any], table: str
    ) -> None: ...


class RowQueue(Protocol):
    def send(self, messages: Sequence[Mapping[str, Any]]) -> None:
        """Queue the row messages (in batches; a message whose send failed raises)."""
        ...

    def retry_later(self, receipt_handle: str, seconds: int) -> None: ...


@dataclass(frozen=True, slots=True)
class SheetOptions:
    max_rows: int = 5000
    wdl_wait_seconds: float = 60.0
    poll_seconds: float = 5.0
    render_every_seconds: float = 20.0


@dataclass(frozen=True, slots=True)
class SheetOutcome:
    """`Queued` (rows went to the queue; some may be refused), `Rejected` (the sheet as a whole),
    `Duplicate` (handled before: receipts rewritten), or `Ignored` (not this folder's sheet)."""

    status: str
    sheet_id: str
    queued: int = 0
    refused: int = 0
    reasons: tuple[str, ...] = ()


def _now() -> datetime:
    return datetime.now(UTC)


def is_sheet_name(name: str, named: str | None) -> bool:
    return name == named if named else name in SAMPLE_SHEET_NAMES


class Receipts:
    """Rewrites a sheet's two receipts from its ledger partition."""

    def __init__(self, book: SheetBook, files: SheetFiles, clock: Callable[[], datetime]) -> None:
        self.book = book
        self.files = files
        self.clock = clock

    def render(self, sheet_id: str) -> dict[str, Any] | None:
        sheet = self.book.sheet(sheet_id)
        if sheet is None:
            return None
        now = self.clock()
        document = sheet_receipt(sheet, receipts_key=rows_receipt_key(str(sheet["key"])), at=now)
        self.files.write_receipts(
            str(sheet["bucket"]),
            str(sheet["key"]),
            document.to_document(),
            rows_table(self.book.rows(sheet_id)),
        )
        self.book.mark(sheet_id, rendered_at=now.isoformat())
        return sheet


class SheetService:
    def __init__(
        self,
        *,
        folders: FolderSource,
        files: SheetFiles,
        book: SheetBook,
        runs: RejectionBook,
        queue: RowQueue,
        limits: Limits,
        options: SheetOptions,
        clock: Callable[[], datetime] = _now,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.folders = folders
        self.files = files
        self.book = book
        self.runs = runs
        self.queue = queue
        self.limits = limits
        self.options = options
        self.clock = clock
        self.sleep = sleep
        self.monotonic = monotonic
        self.receipts = Receipts(book, files, clock)

    # -- which uploads are sheets ----------------------------------------------------------------

    def is_sheet(self, upload: Upload) -> bool:
        return is_sheet_name(upload.name, self.files.named_sheet(upload.bucket, upload.folder))

    def takes_common_values(self, upload: Upload) -> bool:
        """True when `upload` is the `inputs.json` of a folder holding a sample sheet: it gives
        the values common to the sheet's rows and starts no run of its own."""
        if upload.name != INPUTS_NAME:
            return False
        named = self.files.named_sheet(upload.bucket, upload.folder)
        if named:
            return True
        return bool(self.files.folder_names(upload.bucket, upload.folder) & set(SAMPLE_SHEET_NAMES))

    # -- the sheet -------------------------------------------------------------------------------

    def handle(self, upload: Upload) -> SheetOutcome:
        sheet_id = requested_workflow_id(upload.bucket, upload.key, upload.version_id, upload.sequencer)
        known = self.book.sheet(sheet_id)
        if known is not None and known.get("enqueued_at"):
            self.receipts.render(sheet_id)
            return SheetOutcome("Duplicate", sheet_id)
        findings = Findings()
        package, common, sheet = self._read(upload, findings)
        if sheet is not None:
            for reason in sheet.reasons:
                findings.refuse(reason)
            for warning in sheet.warnings:
                findings.warn(warning)
        if common is not None:
            findings.warn(f"{INPUTS_NAME} gives the values common to every row; it starts no run of its own")
        rows = [
            _within_message_size(row, self._message(upload, sheet_id, row))
            for row in (sheet.rows if sheet is not None and not sheet.refused else ())
        ]
        records = [
            RowRecord(
                line=row.line,
                sample=row.sample,
                status=QUEUED if row.ok else REJECTED,
                workflow_id=self._row_id(upload, row.line),
                reasons=row.reasons,
            )
            for row in rows
        ]
        self.book.create(
            SheetRecord(
                sheet_id=sheet_id,
                bucket=upload.bucket,
                key=upload.key,
                version=upload.version_id or upload.sequencer,
                run_folder=upload.folder,
                workflow_name=package.workflow_name if package else None,
                main_wdl=package.main_wdl if package else None,
                reasons=tuple(findings.reasons),
                warnings=tuple(findings.warnings),
            ),
            records,
        )
        queued = [row for row in rows if row.ok]
        if queued:  # the sheet's batch: its runs are counted there, and its digest sent when they end
            opening = BatchOpening(
                kind=BATCH_KIND_SHEET,
                bucket=upload.bucket,
                folder=upload.folder,
                source_key=upload.key,
                expected=len(queued),
                workflow_name=package.workflow_name if package else None,
            )
            self.runs.open_batch(sheet_id, opening)
        self.queue.send([self._message(upload, sheet_id, row) for row in queued])
        self.book.mark(sheet_id, enqueued_at=self.clock().isoformat())
        self.receipts.render(sheet_id)
        refused = [r for r in rows if not r.ok]
        if findings.reasons or refused:
            self._notify(
                upload,
                sheet_id=sheet_id,
                package=package,
                sheet_reasons=findings.reasons,
                refused=refused,
                total=len(rows),
            )
        if findings.reasons:
            return SheetOutcome("Rejected", sheet_id, reasons=tuple(findings.reasons))
        return SheetOutcome("Queued", sheet_id, queued=len(rows) - len(refused), refused=len(refused))

    def read_rows(
        self, upload: Upload, findings: Findings
    ) -> tuple[Any, dict[str, Any] | None, Sheet | None]:
        """The folder's workflow, the common values and the sheet read against them (a re-run
        reads a sheet's rows again through this)."""
        return self._read(upload, findings)

    def _read(self, upload: Upload, findings: Findings) -> tuple[Any, dict[str, Any] | None, Sheet | None]:
        """The folder's workflow, the common values and the sheet read against them. A sheet
        whose required inputs are neither columns nor in a (not yet uploaded) inputs.json waits a
        bounded time for inputs.json, as a run waits for its WDL."""
        deadline = self.monotonic() + self.options.wdl_wait_seconds
        while True:
            attempt = Findings()
            package, common = self._workflow(upload, attempt)
            sheet: Sheet | None = None
            if package is not None:
                # miniwdl is loaded only by the uploads that need it (see plan_submission)
                from submit.sheet import read_sheet  # noqa: PLC0415

                body = self.files.read_sheet(upload, self.limits.max_total_bytes)
                if isinstance(body, str):
                    attempt.refuse(body)
                else:
                    sheet = read_sheet(
                        upload.name,
                        body,
                        workflow=package.workflow,
                        common=common,
                        common_name=INPUTS_NAME,
                        max_rows=self.options.max_rows,
                    )
            waiting = sheet is not None and sheet.needs_common and common is None
            if waiting and self.monotonic() < deadline:
                self.sleep(self.options.poll_seconds)
                continue
            if waiting and self.options.wdl_wait_seconds > 0:
                attempt.refuse(
                    f"waited {self.options.wdl_wait_seconds:g} s for an {INPUTS_NAME} with the values common "
                    f"to every row; upload it, then {upload.name} again"
                )
            for reason in attempt.reasons:
                findings.refuse(reason)
            for warning in attempt.warnings:
                findings.warn(warning)
            return package, common, sheet

    def _workflow(self, upload: Upload, findings: Findings) -> tuple[Any, dict[str, Any] | None]:
        """The folder's workflow and its common values; waits a bounded time for a folder still
        being copied (no WDL yet, an import missing), as an inputs file does."""
        common_upload = Upload(upload.bucket, upload.folder + INPUTS_NAME, None, None, None, None, None)
        deadline = self.monotonic() + self.options.wdl_wait_seconds
        while True:
            attempt = Findings()
            folder: RunFolder = self.folders.read_folder(common_upload, self.limits)
            package, _courier, common = analyse_folder(folder, self.limits, attempt)
            if attempt.reasons and attempt.missing_files and self.monotonic() < deadline:
                self.sleep(self.options.poll_seconds)
                continue
            for reason in attempt.reasons:
                findings.refuse(reason, missing=None)
            for warning in attempt.warnings:
                findings.warn(warning)
            if attempt.reasons:
                return None, common
            return package, common

    @staticmethod
    def _row_id(upload: Upload, line: int) -> str:
        return requested_workflow_id(
            upload.bucket, sheet_row_key(upload.key, line), upload.version_id, upload.sequencer
        )

    @staticmethod
    def _message(upload: Upload, sheet_id: str, row: Any) -> dict[str, Any]:
        return {
            "kind": ROW_MESSAGE_KIND,
            "schema_version": 1,
            "sheet_id": sheet_id,
            "bucket": upload.bucket,
            "key": upload.key,
            "version_id": upload.version_id,
            "sequencer": upload.sequencer,
            "requester": upload.requester,
            "line": row.line,
            "sample": row.sample,
            "inputs": row.inputs,
        }

    def _notify(
        self,
        upload: Upload,
        *,
        sheet_id: str,
        package: Any,
        sheet_reasons: Sequence[str],
        refused: Sequence[Any],
        total: int,
    ) -> None:
        """One REJECTED notification for the sheet: the sheet's own reasons, or the rows refused
        (the others were queued), at most `_NOTIFIED_ROWS` of them by name."""
        reasons = list(sheet_reasons)
        if refused:
            reasons.append(
                f"{upload.name}: {len(refused)} of {total} rows were refused and not submitted; the other "
                f"{total - len(refused)} were queued (see {upload.name}.receipts.tsv)"
            )
            reasons.extend(r for row in refused[:_NOTIFIED_ROWS] for r in row.reasons)
            if len(refused) > _NOTIFIED_ROWS:
                reasons.append(f"... and {len(refused) - _NOTIFIED_ROWS} more refused rows")
        self.runs.record_rejected(
            RunRecord(
                workflow_id=sheet_id,
                workflow_name=package.workflow_name if package else "",
                source_bucket=upload.bucket,
                inputs_key=upload.key,
                run_folder=upload.folder,
                requester=upload.requester,
                labels={},
                main_wdl=package.main_wdl if package else None,
                receipt_key=receipt_key(upload.key),
                routing={},
                reasons=tuple(reasons),
            )
        )


# -- rows ------------------------------------------------------------------------------------


class InvalidRowMessage(ValueError):
    """A queued message that is not a row of a recorded sheet: it can never succeed."""


@dataclass(frozen=True, slots=True)
class RowMessage:
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int = 1


@dataclass(slots=True)
class RowBatchResult:
    failed: list[str] = field(default_factory=list)
    outcomes: dict[str, str] = field(default_factory=dict)  # message id -> Submitted/Rejected/...
    invalid: list[str] = field(default_factory=list)


class RowFolders:
    """The run folder of a row: the folder as an inputs file sees it, with the row's inputs (the
    common values and its cells) as the inputs file."""

    def __init__(self, folders: FolderSource, inputs: Mapping[str, Any]) -> None:
        self.folders = folders
        self.inputs = json.dumps(dict(inputs), ensure_ascii=False).encode()

    def read_folder(self, upload: Upload, limits: Limits) -> RunFolder:
        folder = self.folders.read_folder(upload, limits)
        return RunFolder(
            prefix=folder.prefix,
            files={**folder.files, folder.inputs_name: self.inputs},
            inputs_name=folder.inputs_name,
            oversized={k: v for k, v in folder.oversized.items() if k != folder.inputs_name},
            truncated=folder.truncated,
            skipped_wdl=folder.skipped_wdl,
        )


class RowVerdicts:
    """The receipt sink of a row: its verdict goes to the sheet's ledger, not to an S3 file."""

    _STATUS = {"Submitted": SUBMITTED, "Rejected": REJECTED, "Waiting": WAITING}

    def __init__(self, book: SheetBook, sheet_id: str, line: int) -> None:
        self.book = book
        self.sheet_id = sheet_id
        self.line = line

    def write(self, bucket: str, key: str, receipt: Receipt) -> None:
        del bucket, key
        self.book.settle_row(
            self.sheet_id,
            self.line,
            self._STATUS[receipt.status],
            workflow_id=receipt.workflow_id,
            reasons=receipt.reasons,
        )


ServiceFactory = Callable[[FolderSource, RowVerdicts, Membership], SubmitService]


class RowService:
    """Submits queued rows, one `SubmitService.handle` each; stops at the first sign that
    Cromwell is down and hands the rest back to the queue with a growing delay."""

    def __init__(
        self,
        *,
        folders: FolderSource,
        book: SheetBook,
        files: SheetFiles,
        queue: RowQueue,
        make_service: ServiceFactory,
        options: SheetOptions,
        retry_base_seconds: int = 30,
        retry_max_seconds: int = 900,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.folders = folders
        self.book = book
        self.queue = queue
        self.make_service = make_service
        self.options = options
        self.retry_base = retry_base_seconds
        self.retry_max = retry_max_seconds
        self.clock = clock
        self.receipts = Receipts(book, files, clock)

    def handle(self, messages: Sequence[RowMessage]) -> RowBatchResult:
        result = RowBatchResult()
        touched: dict[str, None] = {}
        down = False
        for message in messages:
            if down:
                result.failed.append(message.message_id)
                self.queue.retry_later(message.receipt_handle, self.delay(message.receive_count))
                continue
            try:
                body = parse_row_message(message.body)
                touched[body["sheet_id"]] = None
                result.outcomes[message.message_id] = self._one(body)
            except InvalidRowMessage as exc:
                result.invalid.append(f"{message.message_id}: {exc}")
            except CromwellUnavailable:
                down = True
                result.failed.append(message.message_id)
                self.queue.retry_later(message.receipt_handle, self.delay(message.receive_count))
        for sheet_id in touched:  # rows waiting for Cromwell are shown at once
            self._render_when_due(sheet_id, now=down)
        return result

    def delay(self, receive_count: int) -> int:
        """Seconds before a row whose submission met an unreachable Cromwell is tried again."""
        return int(min(self.retry_max, self.retry_base * 2 ** max(0, receive_count - 1)))

    def _one(self, body: Mapping[str, Any]) -> str:
        sheet_id, line = body["sheet_id"], body["line"]
        row = self.book.row(sheet_id, line)
        if row is None:
            raise InvalidRowMessage(f"line {line} of sheet {sheet_id} is not in the ledger")
        if row.get("status") in FINAL:
            return "Duplicate"
        upload = Upload(
            bucket=body["bucket"],
            key=sheet_row_key(body["key"], line),
            version_id=body.get("version_id"),
            sequencer=body.get("sequencer"),
            size=None,
            requester=body.get("requester"),
            event_time=None,
        )
        service = self.make_service(
            RowFolders(self.folders, body["inputs"]),
            RowVerdicts(self.book, sheet_id, line),
            Membership(sheet_id, str(body.get("sample") or row.get("sample") or "") or None),
        )
        return service.handle(upload).status

    def _render_when_due(self, sheet_id: str, *, now: bool = False) -> None:
        """Rewrite the receipts when the sheet is done, or every `render_every_seconds` while
        rows are pending. A pending rendering that finds the sheet done right after is redone, so
        the last rendering written is never older than the last row's verdict."""
        sheet = self.book.sheet(sheet_id)
        if sheet is None:
            return
        if _pending(sheet) and not now:
            last = parse_time(sheet.get("rendered_at"))
            if last is not None and (self.clock() - last).total_seconds() < self.options.render_every_seconds:
                return
        rendered = self.receipts.render(sheet_id)
        if rendered is not None and _pending(rendered):
            again = self.book.sheet(sheet_id)
            if again is not None and not _pending(again):
                self.receipts.render(sheet_id)


def _pending(sheet: Mapping[str, Any]) -> bool:
    return bool(int(sheet.get(f"rows_{QUEUED}") or 0) or int(sheet.get(f"rows_{WAITING}") or 0))


def _within_message_size(row: SheetRow, message: Mapping[str, Any]) -> SheetRow:
    """The row, or the row refused when its inputs do not fit in one queue message."""
    size = len(json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode())
    if not row.ok or size <= MAX_ROW_MESSAGE_BYTES:
        return row
    reason = (
        f"line {row.line} ({shown(row.sample, 60)}): its inputs are {size:,} bytes; a row may carry at most "
        f"{MAX_ROW_MESSAGE_BYTES:,} (put large values in a file and give its s3:// path)"
    )
    return replace(row, inputs=None, reasons=(reason,))


def parse_row_message(text: str) -> dict[str, Any]:
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise InvalidRowMessage(f"not JSON: {shown(str(exc))}") from None
    if not isinstance(body, dict) or body.get("kind") != ROW_MESSAGE_KIND:
        raise InvalidRowMessage("not a sample-sheet row message")
    for name, kind in (("sheet_id", str), ("bucket", str), ("key", str), ("line", int), ("inputs", dict)):
        if not isinstance(body.get(name), kind):
            raise InvalidRowMessage(f"'{name}' is missing or not a {kind.__name__}")
    return body
