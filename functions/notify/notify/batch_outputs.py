"""A batch's outputs table, written beside its sheet when the batch ends: `outputs.tsv` (one row
per sample, one column per workflow output, s3:// URIs or values) and `outputs.json` (the same
rows as JSON); a re-run's are `rerun.outputs.tsv` and `rerun.outputs.json` beside its rerun.json.
A folder window's are `batch-<opened, UTC>.outputs.tsv` (and `.json`) in its folder.
A cell a spreadsheet would run as a formula is written with a leading single quote.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC
from typing import Any, Protocol

from courier.ledger.schema import BATCH_KIND_FOLDER
from notify.digest import BatchDigest, outputs_rows

OUTPUTS_TSV = "outputs.tsv"
OUTPUTS_JSON = "outputs.json"
#: What makes a spreadsheet read a cell as a formula (OWASP's CSV-injection list).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


class OutputsSink(Protocol):
    """Where the files go (`courier.storage.ObjectStore`)."""

    def put_text(self, bucket: str, key: str, text: str, *, content_type: str) -> None: ...


def cell(value: Any) -> str:
    """One TSV cell: a value as text (JSON for lists and maps), on one line, never a formula."""
    if value is None:
        text = ""
    elif isinstance(value, str):
        text = value
    elif isinstance(value, bool | int | float):
        text = json.dumps(value)
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = text.replace("\t", " ").replace("\r", " ").replace("\n", " ")
    if text.startswith(_FORMULA_STARTS) and not _is_number(text):
        text = "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def outputs_tsv(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> str:
    header = ["sample", "workflow_id", "status", *columns]
    lines = ["\t".join(cell(h) for h in header)]
    for row in rows:
        values = [row["sample"], row["workflow_id"], row["status"], *(row["outputs"].get(c) for c in columns)]
        lines.append("\t".join(cell(v) for v in values))
    return "\n".join(lines) + "\n"


def outputs_json(digest: BatchDigest, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> str:
    document = {
        "batch_id": digest.batch.batch_id,
        "workflow_name": digest.batch.workflow_name,
        "columns": list(columns),
        "samples": list(rows),
    }
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def table_prefix(digest: BatchDigest) -> str:
    """What the table's names start with: a re-run's is its own (`rerun.outputs.tsv`: the table
    of the batch it re-runs stays whole), and so is each folder window's
    (`batch-<opened, UTC>.outputs.tsv`: one folder may hold several windows)."""
    if digest.is_rerun:
        return "rerun."
    opened = digest.batch.opened_at
    if digest.batch.kind == BATCH_KIND_FOLDER and opened is not None:
        return f"batch-{opened.astimezone(UTC):%Y%m%dT%H%M%SZ}."
    return ""


def write_outputs(digest: BatchDigest, sink: OutputsSink) -> str | None:
    """Write the two files beside the batch's source (its folder); return the TSV's s3:// URI.
    Written again, the files are the same (the batch has ended: its members no longer change)."""
    batch = digest.batch
    if not batch.bucket:
        return None
    columns, rows = outputs_rows(digest.samples)
    folder = (batch.folder or "") + table_prefix(digest)
    tsv = outputs_tsv(columns, rows)
    sink.put_text(batch.bucket, folder + OUTPUTS_TSV, tsv, content_type="text/tab-separated-values")
    document = outputs_json(digest, columns, rows)
    sink.put_text(batch.bucket, folder + OUTPUTS_JSON, document, content_type="application/json")
    return f"s3://{batch.bucket}/{folder}{OUTPUTS_TSV}"
