"""What notify does for batches, beside its messages about runs: the digest of a batch that has
ended (built, its outputs table written, then sent on each channel like any event) and the
choice to leave a batch run's own end message to that digest (`courier_notify`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol

from courier.ledger.records import BatchEndedPayload, BatchView, EndedPayload, OutboxEvent, RunView
from courier.ledger.schema import event_sk
from courier.models import NotificationKind
from notify.adapters import SlackPoster
from notify.batch_outputs import OutputsSink, write_outputs
from notify.digest import BatchDigest, BatchReads, DigestBuilder
from notify.render_digest import render_digest_slack


class BatchThreads(Protocol):
    def set_batch_thread(self, batch_id: str, channel: str, ts: str) -> tuple[str, str]: ...


ENDED_SK: Final = event_sk(NotificationKind.ENDED.value)


class RunEvents(Protocol):
    def event(self, workflow_id: str, event_sk: str) -> OutboxEvent | None: ...


@dataclass(frozen=True, slots=True)
class LoneRun:
    """The end of a folder batch whose window took one inputs file: no digest. `ended` is the
    run's ENDED event when its own end message is still to be sent (it ended while the window
    was open, so its end was left to the batch); None when that message went out already (the
    run ended after the window closed, or asked for its own message) or the run was refused."""

    ended: OutboxEvent | None


class BatchDigests:
    """Builds a batch's digest and writes its outputs table (the same files on every retry)."""

    def __init__(
        self, builder: DigestBuilder, outputs: OutputsSink | None, events: RunEvents | None = None
    ) -> None:
        self.builder = builder
        self.outputs = outputs
        self.events = events

    def lone(self, event: OutboxEvent) -> LoneRun | None:
        """For the end of a folder batch of one run, what tells it (None: any other batch)."""
        payload = event.payload
        if not isinstance(payload, BatchEndedPayload) or self.events is None:
            return None
        batch = self.builder.reads.batch(payload.batch_id)
        if batch is None or not batch.lone:
            return None
        member = next(iter(self.builder.reads.members(batch.batch_id)), None)
        ended = self.events.event(member.workflow_id, ENDED_SK) if member is not None else None
        told = ended is None or not isinstance(ended.payload, EndedPayload) or ended.payload.per_run
        return LoneRun(None if told else ended)

    def build(self, event: OutboxEvent) -> BatchDigest:
        digest = self.builder.build(event)
        if self.outputs is not None:
            digest.outputs_uri = write_outputs(digest, self.outputs)
        return digest


@dataclass(frozen=True, slots=True)
class Thread:
    """Where a message goes on Slack: a channel, and the thread it replies in (None: it starts
    one, to be recorded on the run or, for a batch's run, on the batch)."""

    channel: str | None
    ts: str | None
    batch_id: str | None = None


def thread_of(run: RunView, reads: BatchReads | None) -> Thread:
    """One thread per batch: a batch run's messages (alerts, an end asked for per run) go in its
    batch's thread; another run's in its own thread."""
    batch = reads.batch(run.batch_id) if reads is not None and run.batch_id else None
    if reads is None or batch is None:
        return Thread(run.slack_thread_channel or run.slack_channel, run.slack_thread_ts)
    replaced = reads.batch(batch.rerun_of) if batch.rerun_of else None
    return batch_thread(batch, replaced, run.slack_channel)


def batch_thread(batch: BatchView, replaced: BatchView | None, channel: str | None) -> Thread:
    """The thread of a batch: the thread of the batch it re-runs, else its own (None: not
    started yet; the first message starts it, recorded on `batch`)."""
    for holder in (replaced, batch):
        if holder is not None and holder.slack_thread_ts:
            return Thread(holder.slack_thread_channel or channel, holder.slack_thread_ts, batch.batch_id)
    return Thread(channel, None, batch.batch_id)


def left_to_digest(event: OutboxEvent, run: RunView | None = None) -> bool:
    """True for the end of a batch's run whose options leave its end to the batch's digest."""
    payload = event.payload
    return isinstance(payload, EndedPayload) and payload.left_to_digest(run)


def post_digest(poster: SlackPoster, digest: BatchDigest, threads: BatchThreads, *, region: str) -> str:
    """Post the digest on Slack in the batch's thread: a reply (broadcast to the channel) when the
    batch, or the batch it re-runs, has a thread already (its runs' alerts start it); else a new
    message whose thread is recorded on the batch."""
    payload = render_digest_slack(digest, region=region)
    if not poster.threads:
        poster.post(payload, channel=None, thread_ts=None, broadcast=False)
        return "webhook"
    channel = next((x.run.slack_channel for x in digest.samples if x.run and x.run.slack_channel), None)
    thread = batch_thread(digest.batch, digest.replaced, channel)
    if thread.ts:
        return poster.post(payload, channel=thread.channel, thread_ts=thread.ts, broadcast=True).ts
    posted = poster.post(payload, channel=thread.channel, thread_ts=None, broadcast=False)
    if posted.ts and posted.channel:
        threads.set_batch_thread(digest.batch.batch_id, posted.channel, posted.ts)
    return posted.ts
