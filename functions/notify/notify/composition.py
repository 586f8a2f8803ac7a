"""The notify function composed: settings, clients, adapters and the Notifier, in one place.

The Lambda handler, the local stack and the tests all build the notifier here. Settings are
loaded when `compose` is called (not when a module is imported); clients not passed in are the
container's, with the shared retry configuration of `courier.clients`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from courier import clients
from courier.costs import Prices
from courier.ledger.deliveries import AlertGates, DeliveryLedger
from courier.ledger.pipeline import PipelineLedger
from courier.ledger.views import RunViews
from courier.secrets import SECRETS_MANAGER_PREFIX, SecretReader
from courier.settings import load_settings
from courier.storage import ObjectStore
from notify.adapters import (
    S3StderrReader,
    SlackPoster,
    SnsPublisher,
    make_poster,
    parse_slack_secret,
)
from notify.artifacts import RunArtifacts
from notify.batch_delivery import BatchDigests
from notify.delivery import Notifier, NotifyOptions
from notify.digest import DigestBuilder
from notify.grouping import AlertGrouping
from notify.pipeline import NextSteps
from notify.settings import NotifySettings
from notify.summary import SummaryBuilder, SummaryOptions


def compose(
    settings: NotifySettings | None = None,
    *,
    dynamodb: Any = None,
    sns: Any = None,
    s3: Any = None,
    secrets: Any = None,
    slack_base_url: str | None = None,
    slack_backoff: float = 0.5,
) -> Notifier:
    """The Notifier over the ledger, SNS, S3 (stderr tails) and, when a Slack secret is set, Slack.

    `settings`: loaded from the environment when not given. Clients: the container's when not
    given; tests pass moto clients, and a local Slack URL as `slack_base_url`.
    """
    config = settings or load_settings(NotifySettings)
    table = dynamodb or clients.dynamodb()
    views = RunViews(config.table_name, table)
    s3_client = s3 or clients.s3()
    prices = Prices(
        config.on_demand_vcpu_hour,
        config.on_demand_gb_hour,
        config.spot_vcpu_hour,
        config.spot_gb_hour,
    )
    summaries = SummaryBuilder(
        views,
        SummaryOptions(prices=prices, stderr_lines=config.stderr_tail_lines),
        stderr=S3StderrReader(s3_client, max_bytes=config.stderr_max_bytes),
    )
    artifacts = None
    if config.runs_bucket:
        artifacts = RunArtifacts(
            views,
            ObjectStore(s3_client),
            bucket=config.runs_bucket,
            region=config.console_region,
            prices=prices,
        )
    slack = None
    if config.slack_secret_arn:
        # Read through the shared reader: kept for its max age, so a rotated secret is picked up
        # without a cold start; the poster is rebuilt only when the value changes.
        reader = SecretReader(secrets_client=secrets or clients.aws("secretsmanager"))
        reference = SECRETS_MANAGER_PREFIX + config.slack_secret_arn
        cache: dict[str, SlackPoster] = {}

        def slack_poster() -> SlackPoster:
            secret = reader.require(reference).reveal()
            if secret not in cache:
                cache.clear()
                cache[secret] = make_poster(
                    parse_slack_secret(secret), base_url=slack_base_url, backoff=slack_backoff
                )
            return cache[secret]

        slack = slack_poster
    digests = BatchDigests(DigestBuilder(views, summaries), ObjectStore(s3_client), views)
    grouping = None
    if config.alert_group_seconds:
        gates = AlertGates(config.table_name, table, period=timedelta(seconds=config.alert_group_seconds))
        grouping = AlertGrouping(gates, views)
    pipeline = NextSteps(
        PipelineLedger(config.table_name, table, retention_days=config.retention_days),
        ObjectStore(s3_client),
        max_depth=config.max_chain_depth,
    )
    return Notifier(
        DeliveryLedger(config.table_name, table),
        summaries,
        digests=digests,
        grouping=grouping,
        sns=SnsPublisher(sns or clients.aws("sns"), config.topic_arn),
        slack=slack,
        options=NotifyOptions(region=config.console_region, notify_submitted=config.notify_submitted),
        artifacts=artifacts,
        pipeline=pipeline,
    )
