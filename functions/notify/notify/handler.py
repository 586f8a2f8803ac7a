"""Lambda entry point: ledger stream records (INSERT of outbox events) -> messages.

Thin: parse each record's new image into an `OutboxEvent` with the ledger's codec, hand it to the
Notifier, count what was sent, and report the records that failed (`batchItemFailures`, by
sequence number) so that Lambda retries only those (and the ones after them). The notifier is
composed at the first invocation (`notify.composition.compose`), or passed in by tests through
`notifier=`.

Lean at cold start: the stream records are read as the plain mappings Lambda passes (no
Powertools data classes, no BatchProcessor, whose module loads asyncio).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from courier.ledger.records import OutboxEvent
from courier.observability import logger, metrics, tracer
from notify.composition import compose
from notify.delivery import SLACK, SNS, DeliveryIncomplete, DeliveryOutcome, Notifier

#: Delivery metrics (Count), one data point per channel; names an operator dashboard relies on.
SENT_METRICS = {SNS: "NotifySentSns", SLACK: "NotifySentSlack"}
FAILED_METRICS = {SNS: "NotifyFailedSns", SLACK: "NotifyFailedSlack"}
SKIPPED_METRIC = "NotifySkipped"


class Deferred(Exception):
    """An earlier record of the same run failed in this batch: keep the run's messages in order."""


@cache
def default_notifier() -> Notifier:
    return compose()


def _deadline(context: LambdaContext | None) -> datetime | None:
    try:
        remaining = int(context.get_remaining_time_in_millis()) if context is not None else None
    except (AttributeError, TypeError, ValueError):
        remaining = None
    return datetime.now(UTC) + timedelta(milliseconds=remaining) if remaining else None


def _count(names: dict[str, str], channels: Iterable[str]) -> None:
    for channel in channels:
        metrics.add_metric(name=names[channel], unit=MetricUnit.Count, value=1)


def _count_outcome(outcome: DeliveryOutcome) -> None:
    _count(SENT_METRICS, outcome.sent)
    # A channel that needed no message (sent before), or an event that needs none on any channel.
    skipped = len(outcome.skipped) or (0 if outcome.sent else 1)
    if skipped:
        metrics.add_metric(name=SKIPPED_METRIC, unit=MetricUnit.Count, value=skipped)


def _new_image(record: dict[str, Any]) -> OutboxEvent | None:
    """The outbox event an INSERT record carries; None for any other record."""
    if record.get("eventName") != "INSERT":
        return None
    image = (record.get("dynamodb") or {}).get("NewImage")
    return OutboxEvent.from_stream_image(image) if image else None


def _sequence_number(record: dict[str, Any]) -> str:
    return str((record.get("dynamodb") or {}).get("SequenceNumber") or "")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, *, notifier: Notifier | None = None
) -> dict[str, Any]:
    active = notifier or default_notifier()
    deadline = _deadline(context)
    failed_runs: set[str] = set()
    failed: list[str] = []

    def handle(record: dict[str, Any]) -> None:
        outbox = _new_image(record)
        if outbox is None:
            return
        if outbox.workflow_id in failed_runs:
            raise Deferred(f"{outbox.event_sk}: an earlier message of this run is pending")
        try:
            outcome = active.deliver(outbox, deadline=deadline)
        except Exception as exc:
            if isinstance(exc, DeliveryIncomplete):
                _count(SENT_METRICS, exc.sent)
                _count(FAILED_METRICS, exc.errors)
            failed_runs.add(outbox.workflow_id)
            logger.exception("notification not delivered", extra={"event_sk": outbox.event_sk})
            raise
        _count_outcome(outcome)
        logger.info(
            "notification handled",
            extra={
                "event_sk": outcome.event_sk,
                "sent": outcome.sent,
                "skipped": outcome.skipped,
                "note": outcome.reason,
            },
        )

    for record in event.get("Records") or []:
        try:
            handle(record)
        except Exception as exc:
            # the stream gives the record back (and those after it) on the next invocation
            if isinstance(exc, Deferred):
                logger.info(str(exc))
            failed.append(_sequence_number(record))
    return {"batchItemFailures": [{"itemIdentifier": number} for number in failed]}
