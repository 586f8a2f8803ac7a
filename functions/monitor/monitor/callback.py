"""CallbackFunction: Cromwell's workflow-state callback through a Lambda function URL.

Submit sets the workflow option `workflow_callback_uri` to `<function URL>callback?token=<secret>`.
The request is checked by `monitor.inbound.read_callback` (403 token, 413 size, 400 shape) before
anything is written; a valid one ends the run through `Ender.end` (idempotent: a repeated
callback answers 200 `already-ended`). A ledger failure answers 500, so Cromwell retries.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from courier.errors import LedgerError
from courier.models import RunStatus
from courier.observability import logger, metrics, tracer
from monitor.composition import CallbackService, compose_callback
from monitor.ending import CallbackData, EndSource
from monitor.inbound import Refusal, read_callback


@cache
def default_service() -> CallbackService:
    """The service of this container, put together at its first invocation."""
    return compose_callback()


def _answer(status_code: int, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": status_code,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body),
    }


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, service: CallbackService | None = None
) -> dict[str, Any]:
    service = service or default_service()
    checked = read_callback(event, service.token(), service.max_body_bytes)
    if isinstance(checked, Refusal):
        metrics.add_metric(name=f"CallbackRefused{checked.status_code}", unit=MetricUnit.Count, value=1)
        logger.warning(
            "callback refused", extra={"status_code": checked.status_code, "reason": checked.message}
        )
        return _answer(checked.status_code, {"message": checked.message})
    workflow_id = str(checked.workflow_id)
    logger.append_keys(workflow_id=workflow_id)
    try:
        outcome = service.ender.end(
            workflow_id,
            RunStatus(checked.state),
            source=EndSource.CALLBACK,
            callback=CallbackData(outputs=checked.outputs, failures=checked.failures),
        )
    except (ClientError, BotoCoreError, LedgerError) as exc:
        logger.exception("ledger write failed; Cromwell will retry the callback")
        return _answer(500, {"message": f"not recorded: {type(exc).__name__}"})
    metrics.add_metric(name=f"Callback_{outcome.value}", unit=MetricUnit.Count, value=1)
    return _answer(200, {"workflowId": workflow_id, "result": outcome.value})
