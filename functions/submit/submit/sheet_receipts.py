"""The receipts of a sample sheet, rendered from the ledger's sheet and row items (never appended:
each rendering rewrites both files whole, so a redelivery or a retry cannot add a line twice).

`<sheet>.receipt.json` (`schema_version` 1; fields are only ever added):

- `schema_version` (int): 1.
- `kind` (str): `sample-sheet`.
- `status` (str): `Rejected` (the sheet as a whole was refused: `reasons`; no row was queued),
  `InProgress` (some rows are still queued or waiting for Cromwell) or `Done` (every row was
  submitted or refused).
- `sheet` (str): the sheet's s3:// URI; `sheet_id` (str): the id its rows' workflow ids derive from.
- `run_folder`, `workflow_name`, `main_wdl`: as in an inputs file's receipt.
- `rows` (int): rows read; `counts` (object): rows by status (`Queued`, `Waiting`, `Submitted`,
  `Rejected`).
- `receipts` (str): the key of the per-row table.
- `reasons` (list of str): why the sheet as a whole was refused; `warnings` (list of str).
- `updated_at` (str): when this rendering was made, ISO 8601 UTC. `message` (str): one sentence.

`<sheet>.receipts.tsv`: a header and one line per row, in line order:
`line`, `sample`, `status`, `workflow_id`, `reasons` (joined with ` | `). Tabs and line breaks in
a value become spaces, and a value a spreadsheet would run as a formula is prefixed with `'`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from courier.ledger.sheets import QUEUED, ROW_STATUSES, WAITING, counts_of
from submit.receipt import iso_utc

SCHEMA_VERSION = 1
ROWS_HEADER = ("line", "sample", "status", "workflow_id", "reasons")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

SheetStatus = Literal["Rejected", "InProgress", "Done"]


class SheetReceipt(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = SCHEMA_VERSION
    kind: str = "sample-sheet"
    status: SheetStatus
    sheet: str
    sheet_id: str
    run_folder: str
    workflow_name: str | None = None
    main_wdl: str | None = None
    rows: int
    counts: dict[str, int]
    receipts: str
    reasons: list[str] = []
    warnings: list[str] = []
    updated_at: str
    message: str

    def to_document(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def _message(status: SheetStatus, rows: int, counts: Mapping[str, int], reasons: Sequence[str]) -> str:
    if status == "Rejected":
        n = len(reasons)
        return f"The sample sheet was refused: {n} problem{'s' if n != 1 else ''}; no run was started."
    parts = [f"{counts[st]} {st.lower()}" for st in ROW_STATUSES if counts.get(st)]
    done = "" if status == "Done" else " so far"
    return f"{rows} row{'s' if rows != 1 else ''}: {', '.join(parts) or 'none'}{done}."


def sheet_receipt(sheet: Mapping[str, Any], *, receipts_key: str, at: datetime) -> SheetReceipt:
    counts = counts_of(sheet)
    reasons = [str(r) for r in sheet.get("reasons") or []]
    rows = int(sheet.get("rows") or 0)
    status: SheetStatus
    if reasons and rows == 0:
        status = "Rejected"
    elif counts[QUEUED] or counts[WAITING]:
        status = "InProgress"
    else:
        status = "Done"
    return SheetReceipt(
        status=status,
        sheet=f"s3://{sheet.get('bucket')}/{sheet.get('key')}",
        sheet_id=str(sheet.get("sheet_id")),
        run_folder=str(sheet.get("run_folder") or ""),
        workflow_name=sheet.get("workflow_name"),
        main_wdl=sheet.get("main_wdl"),
        rows=rows,
        counts=counts,
        receipts=receipts_key,
        reasons=reasons,
        warnings=[str(w) for w in sheet.get("warnings") or []],
        updated_at=iso_utc(at),
        message=_message(status, rows, counts, reasons),
    )


def _cell(value: Any) -> str:
    text = " ".join(str(value).replace("\t", " ").splitlines())
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def rows_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The per-row receipts table, one line per row in line order."""
    lines = ["\t".join(ROWS_HEADER)]
    for row in sorted(rows, key=lambda r: int(r.get("line") or 0)):
        reasons = " | ".join(str(r) for r in row.get("reasons") or [])
        cells = (row.get("line"), row.get("sample"), row.get("status"), row.get("workflow_id"), reasons)
        lines.append("\t".join(_cell("" if c is None else c) for c in cells))
    return "\n".join(lines) + "\n"
