"""MonitorFunction: AWS Batch events (EventBridge -> SQS) -> task transitions in the ledger.

Thin: parse each message at the edge, hand it to the `Tracker`, report partial batch failures
(`batchItemFailures`: a record that raised is retried by SQS, then parked in the DLQ; an unusable
event is dropped and logged). After the batch, each run that saw a task end and shows no
unfinished task asks for an end check (`monitor.asking.EndCheckRequests`); this function never
calls Cromwell.

Lean at cold start: the SQS records are read as the plain mappings Lambda passes (no Powertools
data classes, no BatchProcessor, whose module loads asyncio), and the composition builds no
Cromwell client. The service is put together by `monitor.composition.compose_batch_events` at the
first invocation (settings validated then, clients built), or passed in through `service=`.
"""

from __future__ import annotations

from collections import Counter
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
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
) -> list[tuple[str, BatchJobEvent | InvalidEvent]]:
    """(messageId, its event or why it is unusable) of every record, parsed once, ordered so
    that each job's latest event comes first: the older ones then cost nothing (the task is
    already further along)."""
    parsed: list[tuple[str, BatchJobEvent | InvalidEvent]] = []
    for record in records:
        try:
            value: BatchJobEvent | InvalidEvent = parse_sqs_body(str(record.get("body") or ""))
        except InvalidEvent as exc:
            value = exc
        parsed.append((str(record["messageId"]), value))

    def order(item: tuple[str, BatchJobEvent | InvalidEvent]) -> int:
        return -item[1].order if isinstance(item[1], BatchJobEvent) else 0

    return sorted(parsed, key=order)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, service: MonitorService | None = None
) -> dict[str, Any]:
    service = service or default_service()
    outcomes: Counter[str] = Counter()
    moved_to: Counter[str] = Counter()  # tasks by the Batch status they reached
    ended_tasks: list[str] = []
    failed: list[str] = []
    for message_id, value in _parsed(list(event.get("Records") or [])):
        if isinstance(value, InvalidEvent):
            outcomes["invalid"] += 1
            logger.error(
                "unusable Batch event; dropped", extra={"error": str(value), "message_id": message_id}
            )
            continue
        try:
            result = service.tracker.track(value)
        except Exception:
            # whatever it was, SQS gives the record back later, then parks it in the DLQ
            logger.exception("Batch event not recorded; retried", extra={"message_id": message_id})
            failed.append(message_id)
            continue
        outcomes[result.outcome.value] += 1
        if result.outcome is TrackOutcome.RECORDED and result.status is not None:
            moved_to[result.status.value] += 1
        if result.ended_a_task and result.root_workflow_id:
            ended_tasks.append(result.root_workflow_id)
    if ended_tasks:
        for workflow_id in service.end_checks.after_task_ends(ended_tasks):
            logger.info("end check asked for after the last task", extra={"workflow_id": workflow_id})
    for name, count in outcomes.items():
        metrics.add_metric(name=f"BatchEvents_{name}", unit=MetricUnit.Count, value=count)
    for status, count in moved_to.items():
        metrics.add_metric(name=f"Tasks_{status}", unit=MetricUnit.Count, value=count)
    if failed:
        metrics.add_metric(name="BatchEventFailures", unit=MetricUnit.Count, value=len(failed))
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}
