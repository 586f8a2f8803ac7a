"""What notify does for batches, beside its messages about runs: the digest of a batch that has
ended (built, its outputs table written, then sent on each channel like any event) and the
choice to leave a batch run's own end message to that digest (`courier_notify`)."""

from __future__ import annotations

from typing import Protocol

from courier.ledger.records import EndedPayload, OutboxEvent, RunView
from notify.adapters import SlackPoster
from notify.batch_outputs import OutputsSink, write_outputs
from notify.digest import BatchDigest, DigestBuilder
from notify.render_digest import render_digest_slack


class BatchThreads(Protocol):
    def set_batch_thread(self, batch_id: str, channel: str, ts: str) -> tuple[str, str]: ...


class BatchDigests:
    """Builds a batch's digest and writes its outputs table (the same files on every retry)."""

    def __init__(self, builder: DigestBuilder, outputs: OutputsSink | None) -> None:
        self.builder = builder
        self.outputs = outputs

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
