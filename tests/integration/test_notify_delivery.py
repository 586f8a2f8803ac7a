"""The notify handler end to end on moto (DynamoDB, SNS, S3, Secrets Manager) with Slack played
by a local HTTP receiver: exactly one message per event and channel, through duplicates,
replays, outages and retries; Slack threads; the delivery record on the event item."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from courier.ledger.deliveries import ClaimOutcome, DeliveryLedger
from courier.ledger.records import ChannelDelivery, DeliveryState
from courier.ledger.views import RunViews
from courier.models import NotificationKind, TaskStatus
from notify.composition import compose
from notify.delivery import Notifier
from notify.handler import lambda_handler
from tests.support.notify_fixtures import (
    T0,
    TABLE,
    FakeContext,
    NotifyAws,
    event_item,
    invoke,
    iso,
    notify_aws,
    put,
    run_item,
    stream_event,
    task_item,
)

pytestmark = pytest.mark.integration
WF = "5d3c1a2b-0000-5000-8000-000000000001"


class Stack(NotifyAws):
    def notifier(self, *, secret: dict[str, str] | None = None, notify_submitted: bool = False) -> Notifier:
        env: dict[str, str] = {}
        if notify_submitted:
            env["NOTIFY_SUBMITTED"] = "true"
        if secret is not None:
            arn = self.secrets.create_secret(
                Name=f"slack-{len(secret)}-{id(secret)}", SecretString=json.dumps(secret)
            )
            env["SLACK_SECRET_ARN"] = arn["ARN"]
        return self.compose(**env)

    def webhook_secret(self) -> dict[str, str]:
        return {"webhook_url": f"{self.slack.url}/hooks/T000/B000/XXXX"}

    def delivery(self, sk: str, wf: str = WF) -> dict[str, ChannelDelivery]:
        event = RunViews(TABLE, self.ddb).event(wf, sk)
        assert event is not None
        return dict(event.delivery)


@pytest.fixture
def stack() -> Iterator[Stack]:
    with notify_aws(Stack, "cromwell-exec") as aws:
        yield aws


def seed_failed_run(stack: Stack) -> dict[str, Any]:
    base = f"s3://cromwell-exec/germline/{WF}/"
    put(
        stack.ddb,
        run_item(
            WF,
            status="Failed",
            status_rank=9,
            ended_at=iso(T0 + timedelta(hours=2)),
            routing={"project": "genomics", "slack_channel": "C0LAB"},
            failures=[
                {
                    "call": "germline.align",
                    "shard": 1,
                    "attempt": 1,
                    "stderr": f"{base}call-align/shard-1/align-1-stderr.log",
                }
            ],
        ),
    )
    put(stack.ddb, task_item(WF, "ok-0", shard=0))
    put(
        stack.ddb,
        task_item(
            WF,
            "bad-1",
            shard=1,
            status="FAILED",
            status_reason="Essential container in task exited",
            exit_code=3,
        ),
    )
    stack.s3.put_object(
        Bucket="cromwell-exec",
        Key=f"germline/{WF}/call-align/shard-1/align-1-stderr.log",
        Body=b"start\n" + b"x" * 100_000 + b"\nTraceback (most recent call last):\nKeyError: 'sample'\n",
    )
    ended = event_item(WF, "ENDED", {"status": "Failed", "source": "callback"})
    put(stack.ddb, ended)
    return ended


def slack_posts(stack: Stack) -> list[dict[str, Any]]:
    return [r for r in stack.slack.requests if r["path"].startswith(("/hooks", "/api/chat.postMessage"))]


def test_failed_run_one_email_one_slack_with_stderr_tail(stack: Stack) -> None:
    ended = seed_failed_run(stack)
    notifier = stack.notifier(secret=stack.webhook_secret())
    assert invoke(notifier, ended) == []
    assert len(stack.sns.calls) == 1
    call = stack.sns.calls[0]
    assert call["Subject"] == "Courier: Run failed: germline"
    assert call["MessageStructure"] == "json"
    body = json.loads(call["Message"])["email"]
    assert "KeyError: 'sample'" in body
    assert "Traceback (most recent call last):" in body
    assert call["MessageAttributes"]["project"] == {"DataType": "String", "StringValue": "genomics"}
    assert call["MessageAttributes"]["status"]["StringValue"] == "Failed"
    posts = slack_posts(stack)
    assert len(posts) == 1
    assert posts[0]["body"]["attachments"][0]["color"] == "#e01e5a"
    record = stack.delivery(ended["sk"])
    assert record["sns"].state is DeliveryState.SENT
    assert record["slack"].state is DeliveryState.SENT
    assert record["sns"].ref != "-"


def test_duplicates_and_replays_send_once(stack: Stack) -> None:
    ended = seed_failed_run(stack)
    notifier = stack.notifier(secret=stack.webhook_secret())
    assert invoke(notifier, ended, ended) == []  # the same record twice in a batch
    assert invoke(notifier, ended, first_sequence=7) == []  # the stream replays it later
    fresh = stack.notifier(secret=stack.webhook_secret())  # a new container (cold start)
    assert invoke(fresh, ended) == []
    assert len(stack.sns.calls) == 1
    assert len(slack_posts(stack)) == 1


def test_sns_outage_is_retried_and_slack_not_duplicated(stack: Stack) -> None:
    ended = seed_failed_run(stack)
    stack.sns.fail = 1
    notifier = stack.notifier(secret=stack.webhook_secret())
    failures = invoke(notifier, ended)
    assert failures == ["100000000000000000001"]
    record = stack.delivery(ended["sk"])
    assert record["sns"].state is DeliveryState.FAILED
    assert "SNS is down" in (record["sns"].last_error or "")
    assert record["slack"].state is DeliveryState.SENT
    assert stack.sns.calls == []
    assert invoke(notifier, ended) == []  # Lambda retries the record
    assert len(stack.sns.calls) == 1
    assert len(slack_posts(stack)) == 1
    assert stack.delivery(ended["sk"])["sns"].attempts == 2


def test_slack_outage_is_retried_then_recovers(stack: Stack) -> None:
    ended = seed_failed_run(stack)
    stack.slack.script = [(500, {}, "server error")] * 4  # first try + 3 SDK retries
    notifier = stack.notifier(secret=stack.webhook_secret())
    assert invoke(notifier, ended) == ["100000000000000000001"]
    assert len(slack_posts(stack)) == 4
    assert stack.delivery(ended["sk"])["slack"].state is DeliveryState.FAILED
    assert stack.delivery(ended["sk"])["sns"].state is DeliveryState.SENT
    assert invoke(notifier, ended) == []
    assert len(slack_posts(stack)) == 5
    assert len(stack.sns.calls) == 1


def test_slack_rate_limit_is_retried_within_the_invocation(stack: Stack) -> None:
    ended = seed_failed_run(stack)
    stack.slack.script = [(429, {"Retry-After": "0"}, "rate_limited")]
    notifier = stack.notifier(secret=stack.webhook_secret())
    assert invoke(notifier, ended) == []
    assert len(slack_posts(stack)) == 2
    assert stack.delivery(ended["sk"])["slack"].state is DeliveryState.SENT


def test_unreachable_slack_fails_the_record(stack: Stack) -> None:
    ended = seed_failed_run(stack)
    secret = {"webhook_url": "http://127.0.0.1:9/hooks/none"}
    assert invoke(stack.notifier(secret=secret), ended) == ["100000000000000000001"]
    assert stack.delivery(ended["sk"])["slack"].state is DeliveryState.FAILED
    assert len(stack.sns.calls) == 1


def test_bot_token_threads_a_runs_messages(stack: Stack) -> None:
    put(stack.ddb, run_item(WF, status="Running", routing={"slack_channel": "C0LAB"}))
    submitted = event_item(WF, "SUBMITTED", {})
    early = event_item(
        WF, "EARLY_FAILURE", {"call": "germline.align", "shard": -1, "attempt": 1, "job_id": "j1"}
    )
    put(
        stack.ddb,
        task_item(WF, "j1", status="FAILED", exit_code=1, status_reason="Essential container exited"),
    )
    for item in (submitted, early):
        put(stack.ddb, item)
    notifier = stack.notifier(
        secret={"bot_token": "xoxb-test", "channel": "C0DEFAULT"}, notify_submitted=True
    )
    assert invoke(notifier, submitted, early) == []
    ended = event_item(WF, "ENDED", {"status": "Failed"})
    put(stack.ddb, ended)
    assert invoke(notifier, ended, first_sequence=3) == []
    posts = [r["body"] for r in slack_posts(stack)]
    assert len(posts) == 3
    assert posts[0]["channel"] == "C0LAB"
    assert "thread_ts" not in posts[0]
    run = RunViews(TABLE, stack.ddb).run(WF)
    assert run is not None
    thread = run.slack_thread_ts
    assert run.slack_thread_channel == "C0LAB"
    assert posts[1]["thread_ts"] == thread
    assert posts[2]["thread_ts"] == thread
    assert posts[1].get("reply_broadcast") in (False, "false", None)
    assert posts[2]["reply_broadcast"] in (True, "true", "1")
    assert stack.slack.requests[0]["headers"]["Authorization"] == "Bearer xoxb-test"


def test_submitted_is_off_by_default(stack: Stack) -> None:
    put(stack.ddb, run_item(WF, status="Submitted"))
    submitted = event_item(WF, "SUBMITTED", {})
    put(stack.ddb, submitted)
    assert invoke(stack.notifier(secret=stack.webhook_secret()), submitted) == []
    assert stack.sns.calls == []
    assert slack_posts(stack) == []
    assert stack.delivery(submitted["sk"]) == {}


def test_failure_defers_the_rest_of_that_run_only(stack: Stack) -> None:
    other = "5d3c1a2b-0000-5000-8000-000000000002"
    put(stack.ddb, run_item(WF, status="Running"))
    put(stack.ddb, run_item(other, status="Running"))
    first = event_item(WF, "QUEUE_BLOCKED", {"job_id": "j1", "status_reason": "no CE fits"}, "j1")
    second = event_item(WF, "ENDED", {"status": "Failed"})
    third = event_item(other, "ENDED", {"status": "Succeeded"})
    for item in (first, second, third):
        put(stack.ddb, item)
    stack.sns.fail = 1
    failures = invoke(stack.notifier(), first, second, third)
    assert failures == ["100000000000000000001", "100000000000000000002"]
    assert [json.loads(c["Message"])["default"].split(":")[0] for c in stack.sns.calls] == ["Run succeeded"]
    assert invoke(stack.notifier(), first, second, third) == []
    kinds = [c["MessageAttributes"]["event_type"]["StringValue"] for c in stack.sns.calls]
    assert kinds == ["ENDED", "QUEUE_BLOCKED", "ENDED"]


def test_non_insert_and_non_event_records_are_ignored(stack: Stack) -> None:
    put(stack.ddb, run_item(WF))
    event = stream_event(run_item(WF), event_item(WF, "ENDED", {}))
    event["Records"][1]["eventName"] = "MODIFY"
    result = lambda_handler(event, FakeContext(), notifier=stack.notifier())
    assert result["batchItemFailures"] == []
    assert stack.sns.calls == []


def test_expired_event_item_sends_nothing(stack: Stack) -> None:
    assert invoke(stack.notifier(), event_item(WF, "ENDED", {"status": "Failed"})) == []
    assert stack.sns.calls == []


class TestClaims:
    def reader(self, stack: Stack, now: datetime) -> DeliveryLedger:
        return DeliveryLedger(TABLE, stack.ddb, clock=lambda: now)

    def test_claim_lifecycle(self, stack: Stack) -> None:
        ev = event_item(WF, "ENDED", {})
        put(stack.ddb, ev)
        now = datetime(2026, 3, 2, 12, tzinfo=UTC)
        r = self.reader(stack, now)
        lease = now + timedelta(minutes=5)
        assert r.claim(WF, ev["sk"], "sns", token="a", lease_until=lease).outcome is ClaimOutcome.CLAIMED
        assert r.claim(WF, ev["sk"], "sns", token="b", lease_until=lease).outcome is ClaimOutcome.IN_PROGRESS
        assert r.claim(WF, ev["sk"], "slack", token="b", lease_until=lease).outcome is ClaimOutcome.CLAIMED
        assert r.mark_sent(WF, ev["sk"], "sns", token="wrong") is False
        assert r.mark_sent(WF, ev["sk"], "sns", token="a", ref="m-1") is True
        assert r.claim(WF, ev["sk"], "sns", token="c", lease_until=lease).outcome is ClaimOutcome.ALREADY_SENT
        assert r.release(WF, ev["sk"], "slack", token="b", error="boom") is True
        again = r.claim(WF, ev["sk"], "slack", token="d", lease_until=lease)
        assert again.outcome is ClaimOutcome.CLAIMED
        assert again.attempts == 2

    def test_an_abandoned_claim_is_taken_over_after_its_lease(self, stack: Stack) -> None:
        """A crash between send and mark: the retry waits for the lease, then sends again (the
        one documented duplicate window)."""
        ev = event_item(WF, "ENDED", {})
        put(stack.ddb, ev)
        now = datetime(2026, 3, 2, 12, tzinfo=UTC)
        crashed = self.reader(stack, now)
        assert crashed.claim(
            WF, ev["sk"], "sns", token="a", lease_until=now + timedelta(seconds=60)
        ).outcome is (ClaimOutcome.CLAIMED)
        early = self.reader(stack, now + timedelta(seconds=30))
        assert early.claim(
            WF, ev["sk"], "sns", token="b", lease_until=now + timedelta(minutes=5)
        ).outcome is (ClaimOutcome.IN_PROGRESS)
        late = self.reader(stack, now + timedelta(seconds=61))
        assert late.claim(WF, ev["sk"], "sns", token="c", lease_until=now + timedelta(minutes=5)).outcome is (
            ClaimOutcome.CLAIMED
        )
        assert crashed.mark_sent(WF, ev["sk"], "sns", token="a") is False

    def test_missing_event_item(self, stack: Stack) -> None:
        r = self.reader(stack, datetime.now(UTC))
        claim = r.claim(WF, "EVENT#ENDED", "sns", token="a", lease_until=datetime.now(UTC))
        assert claim.outcome is ClaimOutcome.MISSING
        assert RunViews(TABLE, stack.ddb).event(WF, "EVENT#ENDED") is None  # the claim created nothing

    def test_thread_is_recorded_once(self, stack: Stack) -> None:
        put(stack.ddb, run_item(WF))
        r = self.reader(stack, datetime.now(UTC))
        assert r.set_thread(WF, "C1", "111.1") == ("C1", "111.1")
        assert r.set_thread(WF, "C2", "222.2") == ("C1", "111.1")


def test_tasks_paginate_and_project(stack: Stack) -> None:
    put(stack.ddb, run_item(WF))
    for i in range(30):
        put(stack.ddb, task_item(WF, f"job-{i:02d}", shard=i))
    put(stack.ddb, event_item(WF, "ENDED", {}))
    views = RunViews(TABLE, stack.ddb, page_size=7)
    tasks = list(views.tasks(WF, ["job_id", "status"]))
    assert [t.job_id for t in tasks] == [f"job-{i:02d}" for i in range(30)]
    assert {(t.status, t.call, t.shard) for t in tasks} == {(TaskStatus.SUCCEEDED, None, -1)}  # projected
    assert [e.kind for e in views.events(WF)] == [NotificationKind.ENDED]


def test_stderr_reader_reads_only_the_tail(stack: Stack) -> None:
    from notify.adapters import S3StderrReader  # noqa: PLC0415

    body = b"".join(f"line {i}\n".encode() for i in range(20_000)) + b"bad \xff\xfe bytes\n"
    stack.s3.put_object(Bucket="cromwell-exec", Key="a/stderr.log", Body=body)
    stack.s3.put_object(Bucket="cromwell-exec", Key="a/small.log", Body=b"only\nthree\nlines")
    reader = S3StderrReader(stack.s3, max_bytes=1024)
    tail = reader.tail("s3://cromwell-exec/a/stderr.log", 3)
    assert tail == ["line 19998", "line 19999", "bad \ufffd\ufffd bytes"]
    assert reader.tail("s3://cromwell-exec/a/small.log", 20) == ["only", "three", "lines"]
    assert reader.tail("s3://cromwell-exec/a/missing.log", 5) is None
    assert reader.tail("s3://no-such-bucket/x", 5) is None
    everything = reader.tail("s3://cromwell-exec/a/stderr.log", 10_000)
    assert everything is not None
    assert len("\n".join(everything)) <= 1024
    assert everything[0].startswith("line ")  # the line the range cut in two was dropped


def emitted(out: str) -> Counter[str]:
    """The metric values a function printed (CloudWatch embedded metric format), by name."""
    totals: Counter[str] = Counter()
    for line in out.splitlines():
        try:
            blob = json.loads(line)
        except ValueError:
            continue
        if not isinstance(blob, dict) or "_aws" not in blob:
            continue
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                value = blob[metric["Name"]]
                totals[metric["Name"]] += sum(value) if isinstance(value, list) else value
    return totals


def test_delivery_metrics_per_channel(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    """NotifySent*/NotifyFailed* per channel, NotifySkipped for what needed no message."""
    ended = seed_failed_run(stack)
    submitted = event_item(WF, "SUBMITTED", {})
    put(stack.ddb, submitted)
    notifier = stack.notifier(secret=stack.webhook_secret())
    capsys.readouterr()
    stack.sns.fail = 1
    assert invoke(notifier, ended) != []
    assert emitted(capsys.readouterr().out) == {"NotifyFailedSns": 1, "NotifySentSlack": 1}
    assert invoke(notifier, ended) == []  # the retry: SNS only, Slack was sent before
    assert emitted(capsys.readouterr().out) == {"NotifySentSns": 1, "NotifySkipped": 1}
    assert invoke(notifier, ended, submitted) == []  # a replay, and SUBMITTED (off by default)
    assert emitted(capsys.readouterr().out) == {"NotifySkipped": 3}


def test_compose_reads_its_settings_when_called(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOPIC_ARN", stack.topic_arn)
    monkeypatch.setenv("NOTIFY_SUBMITTED", "true")
    notifier = compose(dynamodb=stack.ddb, sns=stack.sns, s3=stack.s3)
    assert notifier.channels() == ["sns"]
    assert notifier.options.notify_submitted
    put(stack.ddb, run_item(WF, status="Submitted"))
    submitted = event_item(WF, "SUBMITTED", {})
    put(stack.ddb, submitted)
    assert invoke(notifier, submitted) == []
    assert [c["TopicArn"] for c in stack.sns.calls] == [stack.topic_arn]
