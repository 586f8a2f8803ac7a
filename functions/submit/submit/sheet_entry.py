"""The submit function's door for sample sheets: which uploads are a folder's sheet (or the
`inputs.json` that gives its rows their common values), and what the handler answers for them."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from courier.conventions import ROWS_RECEIPT_SUFFIX, SAMPLE_SHEET_SUFFIXES
from courier.observability import logger, metrics
from submit.upload import INPUTS_NAME, Upload

if TYPE_CHECKING:
    from submit.sheet_service import SheetService


def may_be_sheet(key: str) -> bool:
    """A .tsv or .csv file other than a sheet's own receipts table."""
    lowered = key.lower()
    return lowered.endswith(SAMPLE_SHEET_SUFFIXES) and not lowered.endswith(ROWS_RECEIPT_SUFFIX)


def sheet_upload(upload: Upload, sheets: Callable[[], SheetService]) -> dict[str, Any] | None:
    """The handler's answer for a sheet, or for the `inputs.json` beside one; None for any other
    upload (the inputs-file path takes it)."""
    if may_be_sheet(upload.key):
        service = sheets()
        if not service.is_sheet(upload):
            logger.info("not this folder's sample sheet; nothing to do", extra={"key": upload.key})
            return {"status": "Ignored", "key": upload.key}
        outcome = service.handle(upload)
        metrics.add_metric(name=f"Sheets{outcome.status}", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="RowsQueued", unit=MetricUnit.Count, value=outcome.queued)
        logger.info(
            "sample sheet handled",
            extra={"outcome": outcome.status, "queued": outcome.queued, "refused": outcome.refused},
        )
        return {
            "status": outcome.status,
            "sheet_id": outcome.sheet_id,
            "queued": outcome.queued,
            "refused": outcome.refused,
            "key": upload.key,
        }
    if upload.name == INPUTS_NAME and sheets().takes_common_values(upload):
        logger.info(
            "inputs.json of a folder with a sample sheet: common values, no run", extra={"key": upload.key}
        )
        return {
            "status": "Ignored",
            "key": upload.key,
            "reason": "common values of the folder's sample sheet",
        }
    return None
