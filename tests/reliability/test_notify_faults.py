"""Fault injection on the notify function beyond what tests/integration/test_notify_delivery.py
covers (SNS and Slack outages, rate limits, replays): the instance stopped between claim, send
and mark; the ledger throttled at each of those writes; and storms of duplicated, reordered
stream records. The count that matters: messages per outbox event and channel.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from courier.ledger.deliveries import DeliveryLedger
from courier.ledger.records import ChannelDelivery, DeliveryState
from courier.ledger.views import RunViews
from notify.adapters import SnsPublisher
from notify.delivery import Notifier, NotifyOptions
from notify.handler import lambda_handler
from notify.summary import SummaryBuilder, SummaryOptions
from tests.reliability.conftest import Tally
from tests.reliability.harness import FlakyClient, Killed, Tripwire, throttled
from tests.support.notify_fixtures import (
    PRICES,
    REGION,
    TABLE,
    TOPIC_NAME,
    Clock,
    FakeContext,
    FakePoster,
    FakeStderr,
    RecordingSns,
    event_item,
    put,
    run_item,
    stream_record,
    task_item,
)

pytestmark = pytest.mark.integration


@dataclass
class NotifyWorld:
    ddb: Any
    sns: Any
    topic: str
    poster: FakePoster
    clock: Clock
    delivered: int = 0

    def notifier(self, ddb: Any = None, *, wrap_ledger: Any = None) -> Notifier:
        client = ddb or self.ddb
        ledger: Any = DeliveryLedger(TABLE, client, clock=self.clock)
        views = RunViews(TABLE, client)
        summaries = SummaryBuilder(views, SummaryOptions(prices=PRICES), stderr=FakeStderr())
        if wrap_ledger is not None:
            ledger = wrap_ledger(ledger)
        return Notifier(
            ledger,
            summaries,
            sns=SnsPublisher(self.sns, self.topic),
            slack=lambda: self.poster,
            options=NotifyOptions(region=REGION, max_lease=timedelta(minutes=5)),
            clock=self.clock,
        )

    def invoke(self, records: list[dict[str, Any]], notifier: Notifier) -> list[str]:
        self.delivered += len(records)
        answer = lambda_handler({"Records": records}, FakeContext(), notifier=notifier)
        return [f["itemIdentifier"] for f in answer["batchItemFailures"]]

    def seed(self, workflow_id: str, kinds: list[str]) -> list[dict[str, Any]]:
        put(self.ddb, run_item(workflow_id, status="Failed", status_rank=9))
        put(self.ddb, task_item(workflow_id, "job-0"))
        events = []
        for kind in kinds:
            base, _, disc = kind.partition("#")
            item = event_item(workflow_id, base, {"status": "Failed"} if base == "ENDED" else {}, disc)
            put(self.ddb, item)
            events.append(item)
        return events

    def sns_messages(self) -> int:
        return len(self.sns.calls)

    def delivery(self, workflow_id: str, sk: str) -> dict[str, ChannelDelivery]:
        event = RunViews(TABLE, self.ddb).event(workflow_id, sk)
        assert event is not None
        return dict(event.delivery)


@pytest.fixture
def nworld(aws: tuple[Any, Any]) -> NotifyWorld:
    """The ledger table of `tests.support.submit_fixtures`, and an SNS topic."""
    sns = boto3.client("sns", region_name=REGION)
    topic = sns.create_topic(Name=TOPIC_NAME)["TopicArn"]
    clock = Clock(datetime(2026, 3, 2, 12, 0, tzinfo=UTC))
    return NotifyWorld(aws[1], RecordingSns(sns), topic, FakePoster(), clock)


WF = "7e57ab1e-0000-5000-8000-00000000a001"


def seq(record: dict[str, Any]) -> str:
    """How a partial batch response names a stream record."""
    return str(record["dynamodb"]["SequenceNumber"])


@pytest.mark.parametrize(
    ("method", "when", "sns_sent_before_retry"),
    [("claim", "after", 0), ("mark_sent", "before", 1), ("mark_sent", "after", 1)],
)
def test_stopped_between_claim_send_and_mark(
    nworld: NotifyWorld, tally: Tally, method: str, when: str, sns_sent_before_retry: int
) -> None:
    """The instance stops around the first channel's claim or mark; the stream retries."""
    (ended,) = nworld.seed(WF, ["ENDED"])
    record = stream_record(ended, 1)
    stopping = nworld.notifier(wrap_ledger=lambda inner: Tripwire(inner, method, when=when))
    with pytest.raises(Killed):
        nworld.invoke([record], stopping)
    assert nworld.sns_messages() == sns_sent_before_retry
    marked = when == "after" and method == "mark_sent"
    # within the dead instance's lease, the retry may not send: it fails and is retried later
    if not marked:
        assert nworld.delivery(WF, ended["sk"])["sns"].state is DeliveryState.CLAIMED
        assert nworld.invoke([record], nworld.notifier()) == [seq(record)]
    nworld.clock.now += timedelta(minutes=10)  # the lease has run out
    assert nworld.invoke([record], nworld.notifier()) == []
    assert nworld.invoke([record], nworld.notifier()) == [], "a late duplicate record sends nothing"
    delivery = nworld.delivery(WF, ended["sk"])
    assert {c: d.state for c, d in delivery.items()} == dict.fromkeys(("sns", "slack"), DeliveryState.SENT)
    assert len(nworld.poster.posts) == 1
    # the one documented duplicate window: sent, then stopped before the mark was written
    expected_sns = 2 if (method, when) == ("mark_sent", "before") else 1
    assert nworld.sns_messages() == expected_sns
    tally.set(events_delivered=nworld.delivered, messages=nworld.sns_messages() + len(nworld.poster.posts))
    tally.note = "duplicate window" if expected_sns == 2 else ""


@pytest.mark.parametrize("operation", ["get_item", "update_item", "query"])
def test_throttled_ledger_fails_the_record_and_the_retry_sends_once(
    nworld: NotifyWorld, tally: Tally, operation: str
) -> None:
    """The ledger is throttled on the delivery read, a claim/mark write or the report query."""
    (ended,) = nworld.seed(WF, ["ENDED"])
    record = stream_record(ended, 1)
    flaky = FlakyClient(nworld.ddb).fail(operation, throttled(operation))
    assert nworld.invoke([record], nworld.notifier(flaky)) == [seq(record)]
    for _ in range(2):
        failed = nworld.invoke([record], nworld.notifier(flaky))
        if not failed:
            break
        nworld.clock.now += timedelta(minutes=10)  # a claim left behind by the failure expires
    assert failed == []
    # a throttled mark after the send is the documented duplicate window; anything else sends once
    assert nworld.sns_messages() + len(nworld.poster.posts) in (2, 3)
    assert len(nworld.poster.posts) == 1
    if operation != "update_item":
        assert nworld.sns_messages() == 1
    tally.set(events_delivered=nworld.delivered, messages=nworld.sns_messages() + len(nworld.poster.posts))


def test_storm_of_duplicated_reordered_records_sends_one_message_each(
    nworld: NotifyWorld, tally: Tally
) -> None:
    """20 runs x 3 outbox events, each record delivered 5 times, shuffled across 4 instances."""
    items: list[dict[str, Any]] = []
    for i in range(20):
        wid = f"7e57ab1e-0000-5000-8000-{i:012d}"
        items += nworld.seed(
            wid, ["REJECTED", "EARLY_FAILURE", "ENDED"] if i % 2 else ["EARLY_FAILURE", "ENDED"]
        )
    records = [stream_record(item, n) for n, item in enumerate(items, start=1)] * 5
    random.Random(11).shuffle(records)
    notifiers = [nworld.notifier() for _ in range(4)]
    pending = records
    rounds = 0
    while pending:
        rounds += 1
        assert rounds < 10
        retry: list[dict[str, Any]] = []
        for start in range(0, len(pending), 25):
            chunk = pending[start : start + 25]
            failed = set(nworld.invoke(chunk, notifiers[(start // 25) % 4]))
            retry += [r for r in chunk if seq(r) in failed]
        pending = retry
    assert nworld.sns_messages() == len(items)
    assert len(nworld.poster.posts) == len(items)
    for item in items:
        states = {c: d.state for c, d in nworld.delivery(item["workflow_id"], item["sk"]).items()}
        assert states == dict.fromkeys(("sns", "slack"), DeliveryState.SENT)
    tally.set(
        events_delivered=nworld.delivered,
        outbox_events=len(items),
        messages=nworld.sns_messages() + len(nworld.poster.posts),
    )
