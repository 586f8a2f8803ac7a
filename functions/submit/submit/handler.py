"""Submit function: an S3 "Object Created" event for an inputs file -> one Cromwell run.

Thin on purpose: parse the event, call `SubmitService.handle`, map the outcome. The service is
put together by `submit.composition.compose` at the first invocation (settings validated then,
clients built), or passed in by tests and the local stack through `service=`.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from courier.conventions import RERUN_NAME, requested_workflow_id
from courier.errors import CromwellUnavailable, InvalidEvent
from courier.observability import logger, metrics, tracer
from submit.composition import compose
from submit.service import SubmitService
from submit.sheet_entry import sheet_upload
from submit.upload import Upload, is_inputs_file, parse_upload

if TYPE_CHECKING:
    from submit.rerun import RerunService
    from submit.sheet_service import SheetService


@cache
def default_service() -> SubmitService:
    """The service of this container, put together at its first invocation."""
    return compose()


def default_sheet_service() -> SheetService:
    """The sheets' service, loaded by the first sheet upload (most uploads are inputs files)."""
    from submit.sheet_composition import default_sheet_service as sheets  # noqa: PLC0415

    return sheets()


def default_rerun_service() -> RerunService:
    """The re-runs' service, loaded by the first `rerun.json`."""
    from submit.sheet_composition import default_rerun_service as reruns  # noqa: PLC0415

    return reruns()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(
    event: dict[str, Any],
    context: LambdaContext,
    service: SubmitService | None = None,
    sheets: SheetService | None = None,
    reruns: RerunService | None = None,
) -> dict[str, Any]:
    try:
        upload = parse_upload(event)
    except InvalidEvent as exc:
        return _invalid_event(exc, service or default_service())
    logger.append_keys(inputs_key=upload.key, bucket=upload.bucket, run_folder=upload.folder)
    # An injected inputs-file service without a sheet service (a test's) sees no sheets.
    sheet_service = (lambda: sheets) if sheets else (default_sheet_service if service is None else None)
    service = service or default_service()
    answer = sheet_upload(upload, sheet_service) if sheet_service else None
    if answer is not None:
        return answer
    if upload.name == RERUN_NAME:
        return _rerun(upload, reruns or default_rerun_service())
    if not is_inputs_file(upload.key):
        logger.info("not an inputs file; nothing to do", extra={"key": upload.key})
        return {"status": "Ignored", "key": upload.key}
    try:
        outcome = service.handle(upload)
    except CromwellUnavailable as exc:
        # counted as `CromwellUnavailable` by the client's call metrics (courier.observability)
        logger.warning("Cromwell unavailable; the run waits for a retry or replay", extra={"error": str(exc)})
        raise
    logger.append_keys(workflow_id=outcome.workflow_id)
    metrics.add_metric(name=f"Runs{outcome.status}", unit=MetricUnit.Count, value=1)
    logger.info("run handled", extra={"outcome": outcome.status, "reasons": outcome.receipt.reasons})
    return {"status": outcome.status, "workflow_id": outcome.workflow_id, "key": upload.key}


def _rerun(upload: Upload, reruns: RerunService) -> dict[str, Any]:
    """A rerun.json: the failures of a batch (or one run) started again."""
    outcome = reruns.handle(upload)
    metrics.add_metric(name=f"Reruns{outcome.status}", unit=MetricUnit.Count, value=1)
    logger.info("re-run handled", extra={"outcome": outcome.status, "runs": len(outcome.runs)})
    return {
        "status": outcome.status,
        "batch_id": outcome.batch_id,
        "runs": len(outcome.runs),
        "key": upload.key,
    }


def _invalid_event(exc: InvalidEvent, service: SubmitService) -> dict[str, Any]:
    """An event that cannot be used: refuse with a receipt when the file can be named, and log
    and count it in every case. It is never retried: the same event would fail the same way."""
    metrics.add_metric(name="InvalidEvents", unit=MetricUnit.Count, value=1)
    salvaged = exc.event if isinstance(exc.event, tuple) else None
    if salvaged is None:
        logger.error("unusable S3 event: no bucket and key to answer to", extra={"error": str(exc)})
        return {"status": "Invalid", "error": str(exc)}
    bucket, key = salvaged
    if not is_inputs_file(key):
        logger.error("unusable S3 event for a file that is not an inputs file", extra={"key": key})
        return {"status": "Invalid", "error": str(exc), "key": key}
    workflow_id = requested_workflow_id(bucket, key, None, f"invalid-event:{exc}")
    outcome = service.refuse(bucket, key, [str(exc)], workflow_id=workflow_id)
    logger.error("unusable S3 event; refused with a receipt", extra={"key": key, "error": str(exc)})
    return {"status": outcome.status, "workflow_id": outcome.workflow_id, "key": key}
