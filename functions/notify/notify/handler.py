"""Lambda entry point: ledger stream records (INSERT of outbox events) -> messages.

Thin: parse the records with Powertools, hand each event image to the Notifier, report the
records that failed so that Lambda retries only those (and the ones after them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from courier.ledger import schema
from courier.ledger.reader import LedgerReader
from courier.observability import logger
from courier.settings import load_settings
from notify.adapters import (
    S3StderrReader,
    SecretSource,
    SlackPoster,
    SnsPublisher,
    make_poster,
    parse_slack_secret,
)
from notify.delivery import Notifier, NotifyOptions
from notify.report import Prices, ReportBuilder, ReportOptions
from notify.settings import NotifySettings

settings = load_settings(NotifySettings)


class Deferred(Exception):
    """An earlier record of the same run failed in this batch: keep the run's messages in order."""


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [_plain(v) for v in value]
    return value


def build_notifier(
    config: NotifySettings,
    *,
    dynamodb: Any = None,
    sns: Any = None,
    s3: Any = None,
    secrets: Any = None,
    slack_base_url: str | None = None,
    slack_backoff: float = 0.5,
) -> Notifier:
    """The production wiring; tests pass their own clients (moto) and a local Slack URL."""
    ledger = LedgerReader(config.table_name, dynamodb or boto3.client("dynamodb"))
    reports = ReportBuilder(
        ledger,
        ReportOptions(
            prices=Prices(
                config.on_demand_vcpu_hour,
                config.on_demand_gb_hour,
                config.spot_vcpu_hour,
                config.spot_gb_hour,
            ),
            stderr_lines=config.stderr_tail_lines,
        ),
        stderr=S3StderrReader(s3 or boto3.client("s3"), max_bytes=config.stderr_max_bytes),
    )
    slack = None
    if config.slack_secret_arn:
        source = SecretSource(secrets or boto3.client("secretsmanager"), config.slack_secret_arn)
        cache: dict[str, SlackPoster] = {}

        def slack_poster() -> SlackPoster:
            secret = source.get()
            if secret not in cache:
                cache.clear()
                cache[secret] = make_poster(
                    parse_slack_secret(secret), base_url=slack_base_url, backoff=slack_backoff
                )
            return cache[secret]

        slack = slack_poster
    return Notifier(
        ledger,
        reports,
        sns=SnsPublisher(sns or boto3.client("sns"), config.topic_arn),
        slack=slack,
        options=NotifyOptions(region=config.console_region, notify_submitted=config.notify_submitted),
    )


_notifier: Notifier | None = None


def _default_notifier() -> Notifier:
    global _notifier  # noqa: PLW0603 - built once per container, on first use
    if _notifier is None:
        _notifier = build_notifier(settings)
    return _notifier


def _deadline(context: LambdaContext | None) -> datetime | None:
    try:
        remaining = int(context.get_remaining_time_in_millis()) if context is not None else None
    except (AttributeError, TypeError, ValueError):
        remaining = None
    return datetime.now(UTC) + timedelta(milliseconds=remaining) if remaining else None


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, *, notifier: Notifier | None = None
) -> dict[str, Any]:
    active = notifier or _default_notifier()
    deadline = _deadline(context)
    failed_runs: set[str] = set()
    processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)

    def record_handler(record: DynamoDBRecord) -> None:
        stream = record.dynamodb
        if stream is None or record.event_name is None or record.event_name.name != "INSERT":
            return
        image = _plain(stream.new_image)
        if image.get(schema.TYPE) != schema.ITEM_EVENT:
            return
        workflow_id = str(image.get("workflow_id") or "")
        if workflow_id in failed_runs:
            raise Deferred(f"{image.get('sk')}: an earlier message of this run is pending")
        try:
            outcome = active.deliver(image, deadline=deadline)
        except Exception:
            failed_runs.add(workflow_id)
            logger.exception("notification not delivered", extra={"event_sk": image.get("sk")})
            raise
        logger.info(
            "notification handled",
            extra={
                "event_sk": outcome.event_sk,
                "sent": outcome.sent,
                "skipped": outcome.skipped,
                "note": outcome.reason,
            },
        )

    return dict(
        process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    )
