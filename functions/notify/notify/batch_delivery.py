"""What notify does for batches, beside its messages about runs: the digest of a batch that has
ended (built, its outputs table written, then sent on each channel like any event) and the
choice to leave a batch run's own end message to that digest (`courier_notify`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol

from courier.ledger.records import BatchEndedPayload, EndedPayload, OutboxEvent, RunView
from courier.ledger.schema import event_sk
from courier.models import NotificationKind
from notify.adapters import SlackPoster
from notify.batch_outputs import OutputsSink, write_outputs
from notify.digest import BatchDigest, DigestBuilder
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


def left_to_digest(event: OutboxEvent, run: RunView | None = None) -> bool:
    """True for the end of a batch's run whose options leave its end to the batch's digest."""
    payload = event.payload
    return isinstance(payload, EndedPayload) and payload.left_to_digest(run)


def post_digest(poster: SlackPoster, digest: BatchDigest, threads: BatchThreads, *, region: str) -> str:
    """Post the digest on Slack as the batch's thread: a reply (broadcast to the channel) when the
    batch, or the batch it re-runs, has a thread already; else a new message whose thread is
    recorded on the batch."""
    payload = render_digest_slack(digest, region=region)
    if not poster.threads:
        poster.post(payload, channel=None, thread_ts=None, broadcast=False)
        return "webhook"
    batch = digest.batch
    replaced = digest.replaced
    thread = replaced if replaced is not None and replaced.slack_thread_ts else batch
    channel = next((x.run.slack_channel for x in digest.samples if x.run and x.run.slack_channel), None)
    if thread.slack_thread_ts:
        posted = poster.post(
            payload,
            channel=thread.slack_thread_channel or channel,
            thread_ts=thread.slack_thread_ts,
            broadcast=True,
        )
        return posted.ts
    posted = poster.post(payload, channel=channel, thread_ts=None, broadcast=False)
    if posted.ts and posted.channel:
        threads.set_batch_thread(batch.batch_id, posted.channel, posted.ts)
    return posted.ts
