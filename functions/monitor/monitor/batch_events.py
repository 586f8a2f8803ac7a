"""MonitorFunction: AWS Batch events (EventBridge -> SQS) -> task transitions in the ledger.

Thin: parse each message at the edge, hand it to the `Tracker`, report partial batch failures
with Powertools' BatchProcessor (a failed record is retried by SQS, then parked in the DLQ).
After the batch, runs that saw a task end and show no unfinished task get one `/status` check.
The service is put together by `monitor.composition.compose_batch_events` at the first
invocation (settings validated then, clients built), or passed in through `service=`.
"""

from __future__ import annotations

from collections import Counter
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from courier.errors import InvalidEvent
from courier.observability import logger, metrics, tracer
from monitor.composition import MonitorService, compose_batch_events
from monitor.events import BatchJobEvent, parse_sqs_body
from monitor.tracking import TrackOutcome


@cache
def default_service() -> MonitorService:
    """The service of this container, put together at its first invocation."""
    return compose_batch_events()


def _parsed(
    records: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], dict[str, BatchJobEvent | InvalidEvent]]:
    """Parse every body once, and order the batch so that each job's latest event comes first:
    the older ones then cost nothing (the task is already further along)."""
    parsed: dict[str, BatchJobEvent | InvalidEvent] = {}
    for record in records:
        try:
            parsed[record["messageId"]] = parse_sqs_body(record.get("body", ""))
        except InvalidEvent as exc:
            parsed[record["messageId"]] = exc

    def order(record: dict[str, Any]) -> int:
        value = parsed.get(record["messageId"])
        return -value.order if isinstance(value, BatchJobEvent) else 0

    return sorted(records, key=order), parsed


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, service: MonitorService | None = None
) -> dict[str, Any]:
    service = service or default_service()
    records, parsed = _parsed(list(event.get("Records") or []))
    outcomes: Counter[str] = Counter()
    moved_to: Counter[str] = Counter()  # tasks by the Batch status they reached
    ended_tasks: list[str] = []

    def record_handler(record: SQSRecord) -> str:
        value = parsed.get(record.message_id)
        if value is None:
            value = parsed[record.message_id] = _parse_late(record.body)
        if isinstance(value, InvalidEvent):
            outcomes["invalid"] += 1
            logger.error(
                "unusable Batch event; dropped", extra={"error": str(value), "message_id": record.message_id}
            )
            return "invalid"
        result = service.tracker.track(value)
        outcomes[result.outcome.value] += 1
        if result.outcome is TrackOutcome.RECORDED and result.status is not None:
            moved_to[result.status.value] += 1
        if result.ended_a_task and result.root_workflow_id:
            ended_tasks.append(result.root_workflow_id)
        return result.outcome.value

    response = process_partial_response(
        event={"Records": records},
        record_handler=record_handler,
        processor=BatchProcessor(EventType.SQS),
        context=context,
    )
    if ended_tasks:
        for workflow_id, outcome in service.ender.check_after_tasks(ended_tasks).items():
            logger.info(
                "status checked after the last task", extra={"workflow_id": workflow_id, "outcome": outcome}
            )
    for name, count in outcomes.items():
        metrics.add_metric(name=f"BatchEvents_{name}", unit=MetricUnit.Count, value=count)
    for status, count in moved_to.items():
        metrics.add_metric(name=f"Tasks_{status}", unit=MetricUnit.Count, value=count)
    failures = len(response.get("batchItemFailures", []))
    if failures:
        metrics.add_metric(name="BatchEventFailures", unit=MetricUnit.Count, value=failures)
    return dict(response)


def _parse_late(body: str) -> BatchJobEvent | InvalidEvent:
    try:
        return parse_sqs_body(body)
    except InvalidEvent as exc:
        return exc
