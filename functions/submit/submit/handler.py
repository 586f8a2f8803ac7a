"""Submit function: an S3 "Object Created" event for an inputs file -> one Cromwell run.

Thin on purpose: parse the event, call `SubmitService.handle`, map the outcome. Settings are
validated when the module loads (cold start); clients are built at the first invocation, or
passed in by tests through `service=`.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from courier import clients
from courier.conventions import requested_workflow_id
from courier.cromwell import CromwellClient
from courier.errors import CromwellUnavailable, InvalidEvent
from courier.ledger import RunLedger
from courier.observability import logger, metrics, tracer
from courier.settings import load_settings
from courier.storage import ObjectStore
from submit.adapters import CromwellSubmitter, S3Folders, S3InputChecker, S3Receipts
from submit.plan import Limits
from submit.service import SubmitOptions, SubmitService
from submit.settings import SubmitSettings
from submit.sheet_composition import default_sheet_service
from submit.sheet_entry import sheet_upload
from submit.sheet_service import SheetService
from submit.upload import is_inputs_file, parse_upload

SETTINGS = load_settings(SubmitSettings)


def _callback_uri(settings: SubmitSettings) -> str | None:
    if not settings.callback_url or not settings.callback_token_secret:
        return None
    token = clients.secret_reader().require(_as_reference(settings.callback_token_secret))
    separator = "&" if "?" in settings.callback_url else "?"
    return f"{settings.callback_url}{separator}token={token.reveal()}"


def _as_reference(secret: str) -> str:
    return secret if secret.startswith(("ssm:", "secretsmanager:")) else f"secretsmanager:{secret}"


def build_service(
    settings: SubmitSettings,
    *,
    s3: Any,
    dynamodb: Any,
    cromwell: CromwellClient,
    callback_uri: str | None,
    **service_options: Any,
) -> SubmitService:
    """The service wired to its adapters. The handler's default uses the container's clients;
    tests and the local stack pass their own (moto, a local Cromwell) and may pass `clock`,
    `sleep` and `monotonic` through `service_options`."""
    store = ObjectStore(s3)
    return SubmitService(
        folders=S3Folders(store),
        cromwell=CromwellSubmitter(cromwell),
        ledger=RunLedger(settings.table_name, dynamodb, retention_days=settings.retention_days),
        receipts=S3Receipts(store),
        objects=S3InputChecker(store),
        limits=Limits(
            max_file_bytes=settings.max_file_bytes,
            max_total_bytes=10 * settings.max_file_bytes,
            max_s3_checks=settings.max_s3_checks,
        ),
        options=SubmitOptions(
            check_s3_inputs=settings.check_s3_inputs,
            wdl_wait_seconds=settings.wdl_wait_seconds,
            poll_seconds=settings.poll_seconds,
            callback_uri=callback_uri,
        ),
        **service_options,
    )


@cache
def default_service() -> SubmitService:
    settings = SETTINGS
    return build_service(
        settings,
        s3=clients.s3(),
        dynamodb=clients.dynamodb(),
        cromwell=clients.cromwell(
            settings.cromwell_url, settings.cromwell_ca_bundle, max_attempts=settings.cromwell_max_attempts
        ),
        callback_uri=_callback_uri(settings),
    )


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(
    event: dict[str, Any],
    context: LambdaContext,
    service: SubmitService | None = None,
    sheets: SheetService | None = None,
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
    if not is_inputs_file(upload.key):
        logger.info("not an inputs file; nothing to do", extra={"key": upload.key})
        return {"status": "Ignored", "key": upload.key}
    try:
        outcome = service.handle(upload)
    except CromwellUnavailable as exc:
        metrics.add_metric(name="CromwellUnavailable", unit=MetricUnit.Count, value=1)
        logger.warning("Cromwell unavailable; the run waits for a retry or replay", extra={"error": str(exc)})
        raise
    logger.append_keys(workflow_id=outcome.workflow_id)
    metrics.add_metric(name=f"Runs{outcome.status}", unit=MetricUnit.Count, value=1)
    logger.info("run handled", extra={"outcome": outcome.status, "reasons": outcome.receipt.reasons})
    return {"status": outcome.status, "workflow_id": outcome.workflow_id, "key": upload.key}


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
