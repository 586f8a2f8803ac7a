"""Re-run the failures of a batch (or one run): a `rerun.json` dropped into the runs bucket.

    rerun.json -> read it ({"batch": id} or {"run": workflow id}, optional "failed_only")
               -> the runs it replaces (a batch's failed members, or all of them; or the run)
               -> open a batch of kind `rerun` -> one SubmitService.handle per replaced run, with
                  the replaced run's own inputs (its inputs file, or its sheet row read again), call
                  caching asked for (read_from_cache, write_to_cache) and the label
                  `courier-rerun-of` -> `rerun.json.receipt.json`, naming every new run

Exactly once: a new run's workflow id derives from the rerun.json upload and the run it replaces,
so a redelivered rerun.json finds its runs recorded (and writes the same receipt); the batch is
opened with `if_not_exists` fields. The `courier rerun` command writes the same rerun.json.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from courier.conventions import receipt_key, requested_workflow_id
from courier.ledger.records import BatchMember, BatchOpening, BatchView, RunView
from courier.ledger.schema import BATCH_KIND_RERUN
from courier.models import RunStatus
from submit.folder import Findings, shown
from submit.receipt import Receipt
from submit.service import FolderSource, Membership, SubmitService
from submit.sheet_service import RejectionBook, RowFolders, SheetService
from submit.upload import Upload

#: A rerun.json is a few names; anything larger is not one.
MAX_RERUN_BYTES = 4096
#: Runs one rerun.json may start (each is submitted within the invocation).
MAX_RERUN_RUNS = 200


class RerunReads(Protocol):
    """The ledger reads a re-run needs (`courier.ledger.views.RunViews`)."""

    def batch(self, batch_id: str) -> BatchView | None: ...
    def members(self, batch_id: str) -> Iterator[BatchMember]: ...
    def run(self, workflow_id: str) -> RunView | None: ...


class RerunFiles(Protocol):
    def read_text(self, upload: Upload, max_bytes: int) -> bytes | str:
        """The file's bytes at the uploaded version, or a sentence saying why they cannot be read."""
        ...

    def write_receipt(self, bucket: str, key: str, document: Mapping[str, Any]) -> None: ...


class SheetRows(Protocol):
    def row_inputs(self, bucket: str, sheet_key: str, version: str | None) -> dict[int, dict[str, Any]] | str:
        """The inputs of every row of a sheet read again (line -> inputs), or why it cannot be."""
        ...


@dataclass(frozen=True, slots=True)
class RerunRequest:
    batch: str | None
    run: str | None
    failed_only: bool = False


def parse_rerun(name: str, body: bytes, findings: Findings) -> RerunRequest | None:
    """rerun.json: {"batch": "<id>"} or {"run": "<workflow id>"}, optional {"failed_only": bool}
    (false by default: every run of the batch; true: the runs that did not succeed)."""
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        findings.refuse(f"{name} is not JSON: {shown(str(exc), 200)}")
        return None
    if not isinstance(document, dict):
        findings.refuse(f'{name} must be a JSON object such as {{"batch": "<batch id>"}}')
        return None
    unknown = sorted(set(document) - {"batch", "run", "failed_only"})
    if unknown:
        findings.refuse(
            f"{name}: unknown key(s) {', '.join(shown(k, 40) for k in unknown)} "
            "(known: batch, run, failed_only)"
        )
    batch, run = document.get("batch"), document.get("run")
    if (batch is None) == (run is None):
        findings.refuse(
            f'{name} must name either a batch ("batch": "<batch id>") or a run ("run": "<workflow id>")'
        )
    for key, value in (("batch", batch), ("run", run)):
        if value is not None and (not isinstance(value, str) or not value.strip() or len(value) > 100):
            findings.refuse(f"{name}: '{key}' must be an id (a string of at most 100 characters)")
    failed_only = document.get("failed_only", False)
    if not isinstance(failed_only, bool):
        findings.refuse(f"{name}: 'failed_only' must be true or false")
    if findings.reasons:
        return None
    return RerunRequest(batch=batch, run=run, failed_only=bool(failed_only))


@dataclass(slots=True)
class RerunLine:
    sample: str | None
    replaces: str
    workflow_id: str = ""
    status: str = ""
    reasons: list[str] = field(default_factory=list)

    def to_map(self) -> dict[str, Any]:
        return {
            "sample": self.sample,
            "replaces": self.replaces,
            "workflow_id": self.workflow_id,
            "status": self.status,
            "reasons": list(self.reasons),
        }


@dataclass(frozen=True, slots=True)
class RerunOutcome:
    """`Submitted` (runs started; some may be refused), `Rejected`, or `Nothing` (no run to redo)."""

    status: str
    batch_id: str
    runs: tuple[RerunLine, ...] = ()
    reasons: tuple[str, ...] = ()


class Verdicts:
    """The receipt sink of one re-run: its verdict is kept for the rerun.json's receipt."""

    def __init__(self) -> None:
        self.receipt: Receipt | None = None

    def write(self, bucket: str, key: str, receipt: Receipt) -> None:
        del bucket, key
        self.receipt = receipt


RerunServiceFactory = Callable[[FolderSource, Verdicts, Membership], SubmitService]


def _now() -> datetime:
    return datetime.now(UTC)


class RerunService:
    def __init__(
        self,
        *,
        reads: RerunReads,
        runs: RejectionBook,
        files: RerunFiles,
        sheets: SheetRows,
        folders: FolderSource,
        make_service: RerunServiceFactory,
        clock: Callable[[], datetime] = _now,
        max_runs: int = MAX_RERUN_RUNS,
    ) -> None:
        self.reads = reads
        self.runs = runs
        self.files = files
        self.sheets = sheets
        self.folders = folders
        self.make_service = make_service
        self.clock = clock
        self.max_runs = max_runs

    def handle(self, upload: Upload) -> RerunOutcome:
        rerun_id = requested_workflow_id(upload.bucket, upload.key, upload.version_id, upload.sequencer)
        findings = Findings()
        request = self._request(upload, findings)
        replaced: list[RunView] = []
        batch: BatchView | None = None
        if request is not None:
            batch, replaced = self._targets(request, findings)
        if findings.reasons:
            return self._answer(
                upload, RerunOutcome("Rejected", rerun_id, reasons=tuple(findings.reasons)), request
            )
        if not replaced:
            reason = "every run of the batch succeeded: nothing to re-run"
            return self._answer(upload, RerunOutcome("Nothing", rerun_id, reasons=(reason,)), request)
        self.runs.open_batch(
            rerun_id,
            BatchOpening(
                kind=BATCH_KIND_RERUN,
                bucket=upload.bucket,
                folder=upload.folder,
                source_key=upload.key,
                expected=len(replaced),
                workflow_name=(batch.workflow_name if batch else None) or replaced[0].workflow_name,
                rerun_of=batch.batch_id if batch else replaced[0].batch_id,
            ),
        )
        rows: dict[str, dict[int, dict[str, Any]] | str] = {}
        lines = [self._one(upload, rerun_id, run, rows) for run in replaced]
        return self._answer(upload, RerunOutcome("Submitted", rerun_id, runs=tuple(lines)), request)

    def _request(self, upload: Upload, findings: Findings) -> RerunRequest | None:
        body = self.files.read_text(upload, MAX_RERUN_BYTES)
        if isinstance(body, str):
            findings.refuse(body)
            return None
        return parse_rerun(upload.name, body, findings)

    def _targets(self, request: RerunRequest, findings: Findings) -> tuple[BatchView | None, list[RunView]]:
        if request.run is not None:
            return self._run_target(request.run, request.failed_only, findings)
        return self._batch_targets(request.batch or "", request.failed_only, findings)

    def _run_target(
        self, workflow_id: str, failed_only: bool, findings: Findings
    ) -> tuple[BatchView | None, list[RunView]]:
        run = self.reads.run(workflow_id)
        if run is None:
            findings.refuse(f"no run {shown(workflow_id, 100)} in the ledger (expired, or a typo?)")
            return None, []
        if not run.ended:
            findings.refuse(
                f"run {run.workflow_id} has not ended ({run.status or 'unknown'}); re-run it once it has"
            )
        elif failed_only and run.status is RunStatus.SUCCEEDED:
            return None, []
        return (self.reads.batch(run.batch_id) if run.batch_id else None), [run]

    def _batch_targets(
        self, batch_id: str, failed_only: bool, findings: Findings
    ) -> tuple[BatchView | None, list[RunView]]:
        batch = self.reads.batch(batch_id)
        if batch is None:
            findings.refuse(f"no batch {shown(batch_id, 100)} in the ledger (expired, or a typo?)")
            return None, []
        if not batch.ended_by:
            findings.refuse(
                f"batch {batch_id} has not ended ({batch.ended:,} of {batch.expected or batch.runs:,} "
                "runs ended); re-run its failures once it has"
            )
            return batch, []
        members = [
            m for m in self.reads.members(batch_id) if not (failed_only and m.status is RunStatus.SUCCEEDED)
        ]
        if len(members) > self.max_runs:
            findings.refuse(
                f"the batch has {len(members):,} runs to re-run; "
                f"one rerun.json starts at most {self.max_runs:,}"
            )
            return batch, []
        runs = [run for m in members if (run := self.reads.run(m.workflow_id)) is not None]
        return batch, runs

    def _one(self, upload: Upload, rerun_id: str, run: RunView, rows: dict[str, Any]) -> RerunLine:
        line = RerunLine(sample=run.sample, replaces=run.workflow_id)
        if not run.source_bucket or not run.inputs_key:
            line.status, line.reasons = (
                "Rejected",
                [f"run {run.workflow_id} has no inputs file to read again"],
            )
            return line
        inputs_key = run.inputs_key
        folders: FolderSource = self.folders
        sheet_key, _, row = inputs_key.rpartition(":line-")
        if sheet_key and row.isdigit():
            found = self._row_inputs(run, sheet_key, int(row), rows)
            if isinstance(found, str):
                line.status, line.reasons = "Rejected", [found]
                return line
            folders = RowFolders(self.folders, found)
        identity = f"rerun:{upload.version_id or upload.sequencer or ''}:{upload.key}:{run.workflow_id}"
        target = Upload(run.source_bucket, inputs_key, None, identity, None, upload.requester, None)
        verdicts = Verdicts()
        member = Membership(rerun_id, run.sample, rerun_of=run.workflow_id)
        outcome = self.make_service(folders, verdicts, member).handle(target)
        line.workflow_id, line.status = outcome.workflow_id, outcome.status
        line.reasons = list(outcome.receipt.reasons)
        return line

    def _row_inputs(
        self, run: RunView, sheet_key: str, line: int, rows: dict[str, Any]
    ) -> dict[str, Any] | str:
        if sheet_key not in rows:
            rows[sheet_key] = self.sheets.row_inputs(run.source_bucket or "", sheet_key, None)
        table = rows[sheet_key]
        if isinstance(table, str):
            return table
        found = table.get(line)
        if found is None:
            return (
                f"line {line} of {shown(sheet_key)} is no longer a valid row; fix the sheet and drop it again"
            )
        return dict(found)

    def _answer(self, upload: Upload, outcome: RerunOutcome, request: RerunRequest | None) -> RerunOutcome:
        document = {
            "status": outcome.status,
            "rerun": upload.uri,
            "batch_id": outcome.batch_id,
            "rerun_of": (request.batch or request.run) if request else None,
            "failed_only": request.failed_only if request else None,
            "runs": [line.to_map() for line in outcome.runs],
            "reasons": list(outcome.reasons),
            "call_caching": "read_from_cache and write_to_cache asked for; see docs/call-caching.md",
            "at": self.clock().isoformat(),
        }
        self.files.write_receipt(upload.bucket, receipt_key(upload.key), document)
        return outcome


def sheet_rows_of(sheets: SheetService) -> SheetRows:
    """The sheet service as the reader of a sheet's rows, read again as when it was dropped."""
    return _SheetRowReader(sheets)


class _SheetRowReader:
    def __init__(self, sheets: SheetService) -> None:
        self.sheets = sheets

    def row_inputs(self, bucket: str, sheet_key: str, version: str | None) -> dict[int, dict[str, Any]] | str:
        upload = Upload(bucket, sheet_key, version, None, None, None, None)
        findings = Findings()
        _package, _common, sheet = self.sheets.read_rows(upload, findings)
        if sheet is None or findings.reasons:
            return f"{shown(upload.name)} cannot be read again: " + "; ".join(findings.reasons or ["no rows"])
        return {row.line: dict(row.inputs) for row in sheet.rows if row.ok and row.inputs is not None}
