"""Exactly one message per outbox event and channel.

For each event: read its delivery record; build the summary only if a channel still needs it; for
each such channel claim, send, then mark sent (or release on failure). A channel that succeeded
is never sent again, whatever happens to the other one; a failed channel makes the record fail,
so Lambda retries it (partial batch response) and only that channel is sent on the retry. See
`courier.ledger.deliveries` for the claim and its one duplicate window.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from courier.errors import CourierError
from courier.ledger.deliveries import Claim, ClaimOutcome
from courier.ledger.records import BatchView, ChannelDelivery, OutboxEvent, RunView
from courier.models import NotificationKind
from courier.observability import logger
from courier.pipeline import NextStep
from notify.adapters import DeliveryError, SlackPoster
from notify.artifacts import ReportLink
from notify.batch_delivery import LoneRun, left_to_digest, post_digest, thread_of
from notify.digest import BatchDigest, DigestBuilder
from notify.grouping import AlertGrouping
from notify.render_digest import render_digest_email
from notify.render_email import EmailMessage, render_email
from notify.render_slack import render_slack
from notify.summary import RunSummary

SNS = "sns"
SLACK = "slack"


class Deliveries(Protocol):
    """The delivery records of outbox events (`courier.ledger.deliveries.DeliveryLedger`)."""

    def delivery(self, workflow_id: str, event_sk: str) -> Mapping[str, ChannelDelivery] | None: ...
    def claim(
        self, workflow_id: str, event_sk: str, channel: str, *, token: str, lease_until: datetime
    ) -> Claim: ...
    def mark_sent(
        self, workflow_id: str, event_sk: str, channel: str, *, token: str, ref: str = ""
    ) -> bool: ...
    def release(self, workflow_id: str, event_sk: str, channel: str, *, token: str, error: str) -> bool: ...
    def set_thread(self, workflow_id: str, channel: str, ts: str) -> tuple[str, str]: ...
    def set_batch_thread(self, batch_id: str, channel: str, ts: str) -> tuple[str, str]: ...


class Publisher(Protocol):
    def publish(self, message: EmailMessage) -> str: ...


class Artifacts(Protocol):
    """Writes what a run leaves beside its inputs file when it ends (`notify.artifacts.RunArtifacts`)."""

    def write(self, run: RunView) -> ReportLink | None: ...


class Pipeline(Protocol):
    """Starts a pipeline's next step at a run's or a batch's end (`notify.pipeline.NextSteps`)."""

    def after_run(self, run: RunView) -> NextStep | None: ...
    def after_batch(
        self, batch: BatchView, runs: Sequence[RunView], left_out: int = 0
    ) -> NextStep | None: ...


class Summaries(Protocol):
    def build(self, event: OutboxEvent) -> RunSummary: ...


class Digests(Protocol):
    @property
    def builder(self) -> DigestBuilder: ...
    def build(self, event: OutboxEvent) -> BatchDigest: ...
    def lone(self, event: OutboxEvent) -> LoneRun | None: ...


class DeliveryIncomplete(CourierError):
    """At least one channel did not take the message; the stream record must be retried. `sent`:
    the channels that did take it (they are not sent again on the retry)."""

    def __init__(self, event_sk: str, errors: Mapping[str, str], sent: Sequence[str] = ()) -> None:
        self.event_sk = event_sk
        self.errors = dict(errors)
        self.sent = list(sent)
        super().__init__(f"{event_sk}: " + "; ".join(f"{k}: {v}" for k, v in self.errors.items()))


@dataclass(slots=True)
class DeliveryOutcome:
    """What became of one outbox event: the channels sent now, those skipped, and why."""

    event_sk: str
    sent: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    reason: str = ""


@dataclass(frozen=True, slots=True)
class NotifyOptions:
    region: str
    notify_submitted: bool = False
    #: The longest a claim is held when the invocation's deadline is unknown or far away.
    max_lease: timedelta = timedelta(minutes=5)


class Notifier:
    def __init__(
        self,
        ledger: Deliveries,
        summaries: Summaries,
        *,
        sns: Publisher | None,
        slack: Callable[[], SlackPoster | None] | None,
        options: NotifyOptions,
        artifacts: Artifacts | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        digests: Digests | None = None,
        grouping: AlertGrouping | None = None,
        pipeline: Pipeline | None = None,
    ) -> None:
        self.grouping = grouping
        self.pipeline = pipeline
        self.ledger = ledger
        self.summaries = summaries
        self.digests = digests
        self.sns = sns
        self.slack = slack
        self.options = options
        self.artifacts = artifacts
        self.clock = clock

    def channels(self) -> list[str]:
        return [c for c, on in ((SNS, self.sns is not None), (SLACK, self.slack is not None)) if on]

    def deliver(self, event: OutboxEvent, *, deadline: datetime | None = None) -> DeliveryOutcome:
        workflow_id, event_sk = event.workflow_id, event.event_sk
        outcome = DeliveryOutcome(event_sk)
        skip = self._skip(event)
        if skip:
            outcome.reason = skip
            return outcome
        record = self.ledger.delivery(workflow_id, event_sk)
        if record is None:
            logger.warning("outbox event not in the ledger (expired?)", extra={"event_sk": event_sk})
            outcome.reason = "event item missing"
            return outcome
        pending = [c for c in self.channels() if not (c in record and record[c].sent)]
        outcome.skipped = [c for c in self.channels() if c not in pending]
        if not pending:
            outcome.reason = "already delivered"
            return outcome

        summary = self._summary(event)
        now = self.clock()
        held = self._held_back(event, summary, now)
        if held:
            outcome.reason = held
            return outcome
        lease_until = now + self.options.max_lease
        if deadline is not None:
            lease_until = min(lease_until, deadline + timedelta(seconds=5))
        token = uuid.uuid4().hex
        errors: dict[str, str] = {}
        for channel in pending:
            claim = self.ledger.claim(workflow_id, event_sk, channel, token=token, lease_until=lease_until)
            if claim.outcome is ClaimOutcome.ALREADY_SENT or claim.outcome is ClaimOutcome.MISSING:
                outcome.skipped.append(channel)
                continue
            if claim.outcome is ClaimOutcome.IN_PROGRESS:
                errors[channel] = "another attempt holds the claim"
                continue
            try:
                ref = self._send(channel, summary, now)
            except DeliveryError as exc:
                logger.warning(
                    "delivery failed", extra={"channel": channel, "event_sk": event_sk, "error": str(exc)}
                )
                self.ledger.release(workflow_id, event_sk, channel, token=token, error=exc.detail)
                errors[channel] = exc.detail
                continue
            except Exception as exc:
                self.ledger.release(workflow_id, event_sk, channel, token=token, error=type(exc).__name__)
                raise
            if not self.ledger.mark_sent(workflow_id, event_sk, channel, token=token, ref=ref):
                logger.warning("claim lost before it was marked sent", extra={"channel": channel})
            outcome.sent.append(channel)
        if errors:
            raise DeliveryIncomplete(event_sk, errors, outcome.sent)
        return outcome

    def _summary(self, event: OutboxEvent) -> RunSummary | BatchDigest:
        """The message's content, after what the event's end writes and starts (report, next step)."""
        summary = self._with_next(self._with_report(self._build(event)))
        if isinstance(summary, RunSummary) and summary.next_step is None:
            lone_step = self._lone_next(event)
            if lone_step is not None:
                summary = replace(summary, next_step=lone_step)
        return summary

    def _with_report(self, summary: RunSummary | BatchDigest) -> RunSummary | BatchDigest:
        """At the end of a run: its report and receipt written beside its inputs file, and the link."""
        if not isinstance(summary, RunSummary) or not summary.ended or self.artifacts is None:
            return summary
        return replace(summary, report=self.artifacts.write(summary.run))

    def _skip(self, event: OutboxEvent) -> str:
        """`_skip_reason`; a batch run whose end the digest tells still gets its report beside its
        inputs file, and starts its next step (`when: run`)."""
        reason = self._skip_reason(event)
        if reason and (self.artifacts is not None or self.pipeline is not None) and left_to_digest(event):
            self._with_next(self._with_report(self.summaries.build(event)))
        elif reason and event.kind is NotificationKind.BATCH_ENDED:
            self._lone_next(event)
        return reason

    def _lone_next(self, event: OutboxEvent) -> NextStep | None:
        """The end of a folder window that took one inputs file is told as its run's end, not by a
        digest; a `when: batch` next step still starts, from that one run."""
        if self.pipeline is None or self.digests is None or event.kind is not NotificationKind.BATCH_ENDED:
            return None
        if self.digests.lone(event) is None:
            return None
        digest = self.digests.builder.build(event)
        runs = [line.run for line in digest.samples if line.run is not None]
        return self.pipeline.after_batch(digest.batch, runs, digest.left_out)

    def _with_next(self, summary: RunSummary | BatchDigest) -> RunSummary | BatchDigest:
        """At the end of a run (`when: run`) or a batch (`when: batch`): its pipeline's next step
        started, or refused, before the message that says so is rendered."""
        if self.pipeline is None:
            return summary
        if isinstance(summary, BatchDigest):
            runs = [line.run for line in summary.samples if line.run is not None]
            summary.next_step = self.pipeline.after_batch(summary.batch, runs, summary.left_out)
            return summary
        if not summary.ended:
            return summary
        return replace(summary, next_step=self.pipeline.after_run(summary.run))

    def _skip_reason(self, event: OutboxEvent) -> str:
        """Why an event sends nothing ('' when it is to be sent)."""
        if not event.workflow_id:
            return "not a notification event"
        if event.kind is NotificationKind.SUBMITTED and not self.options.notify_submitted:
            return "SUBMITTED messages are off (NOTIFY_SUBMITTED)"
        if left_to_digest(event):
            return "the batch's digest reports this run's end (courier_notify)"
        if event.kind is NotificationKind.BATCH_ENDED and self.digests is None:
            return "batch digests are not configured"
        lone = self.digests.lone(event) if self.digests is not None else None
        if lone is not None and lone.ended is None:
            return "a folder window of one run: its own messages told its end"
        return ""

    def _held_back(self, event: OutboxEvent, summary: RunSummary | BatchDigest, now: datetime) -> str:
        """Why a built message is not sent ('' when it is): a batch run's end told by the digest
        (its batch recorded after its end), or an alert grouped with one sent within the period."""
        if not isinstance(summary, RunSummary):
            return ""
        if left_to_digest(event, summary.run):
            return "the batch's digest reports this run's end (courier_notify)"
        if self.grouping is not None and not self.grouping.admit(event, summary, now):
            return "grouped: an alert of the same batch, run or queue went out within the period"
        return ""

    def _build(self, event: OutboxEvent) -> RunSummary | BatchDigest:
        if event.kind is NotificationKind.BATCH_ENDED and self.digests is not None:
            lone = self.digests.lone(event)
            if lone is not None and lone.ended is not None:
                return self.summaries.build(lone.ended)  # the run's own end message, no digest
            return self.digests.build(event)
        return self.summaries.build(event)

    def _send(self, channel: str, summary: RunSummary | BatchDigest, now: datetime) -> str:
        if isinstance(summary, BatchDigest):
            return self._send_digest(channel, summary)
        if channel == SNS:
            # bandit B101: type narrowing; no -O in Lambda
            assert self.sns is not None  # nosec B101
            return self.sns.publish(render_email(summary, region=self.options.region, now=now))
        poster = self.slack() if self.slack else None
        if poster is None:
            return "not configured"
        payload = render_slack(summary, region=self.options.region, now=now)
        run = summary.run
        if not poster.threads:
            poster.post(payload, channel=None, thread_ts=None, broadcast=False)
            return "webhook"
        thread = thread_of(run, self.digests.builder.reads if self.digests is not None else None)
        if thread.ts:
            posted = poster.post(
                payload, channel=thread.channel, thread_ts=thread.ts, broadcast=summary.ended
            )
            return posted.ts
        posted = poster.post(payload, channel=thread.channel, thread_ts=None, broadcast=False)
        if posted.ts and posted.channel:
            try:  # the message is out: a failure to record its thread must not make it resend
                if thread.batch_id:
                    self.ledger.set_batch_thread(thread.batch_id, posted.channel, posted.ts)
                else:
                    self.ledger.set_thread(run.workflow_id, posted.channel, posted.ts)
            except Exception:
                logger.exception("could not record the Slack thread of the run")
        return posted.ts

    def _send_digest(self, channel: str, digest: BatchDigest) -> str:
        if channel == SNS:
            assert self.sns is not None  # nosec B101
            return self.sns.publish(render_digest_email(digest, region=self.options.region))
        poster = self.slack() if self.slack else None
        if poster is None:
            return "not configured"
        return post_digest(poster, digest, self.ledger, region=self.options.region)
