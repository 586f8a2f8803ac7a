"""Rows function: the rows of sample sheets, from their SQS queue, each submitted as one run.

Thin on purpose: parse the SQS batch, call `RowService.handle`, report the rows to try again
(`batchItemFailures`: Cromwell was unreachable; they come back after a growing delay and, after
the queue's maxReceiveCount, wait on its dead-letter queue for `make replay`). The SQS records are
read as the plain mappings Lambda passes (Powertools' data classes cost a cold start each).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from courier.observability import logger, metrics, tracer
from submit.sheet_composition import default_row_service
from submit.sheet_service import RowMessage, RowService


def _receive_count(value: str | None) -> int:
    return int(value) if value and value.isdigit() else 1


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, service: RowService | None = None
) -> dict[str, Any]:
    service = service or default_row_service()
    messages = [
        RowMessage(
            message_id=str(record.get("messageId") or ""),
            receipt_handle=str(record.get("receiptHandle") or ""),
            body=str(record.get("body") or ""),
            receive_count=_receive_count((record.get("attributes") or {}).get("ApproximateReceiveCount")),
        )
        for record in event.get("Records") or []
    ]
    result = service.handle(messages)
    for status in set(result.outcomes.values()):
        count = sum(1 for s in result.outcomes.values() if s == status)
        metrics.add_metric(name=f"Rows{status}", unit=MetricUnit.Count, value=count)
    if result.failed:
        metrics.add_metric(name="RowsRetried", unit=MetricUnit.Count, value=len(result.failed))
        logger.warning("Cromwell unavailable; rows go back to the queue", extra={"rows": len(result.failed)})
    if result.invalid:
        metrics.add_metric(name="RowsInvalid", unit=MetricUnit.Count, value=len(result.invalid))
    for problem in result.invalid:
        logger.error("unusable row message dropped", extra={"problem": problem})
    logger.info("rows handled", extra={"outcomes": result.outcomes})
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in result.failed]}
