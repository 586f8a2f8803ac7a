"""A batch's digest with fakes: what it counts and lists, the e-mail and Slack renderings (user
text escaped), the outputs table (formulas neutralised), and the notifier's choices (a batch
run's own end left to the digest unless options.json asks, one digest per channel)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, timedelta
from typing import Any

from courier.conventions import LABEL_RERUN_OF
from courier.failures import Classification, FailureKind
from courier.ledger.deliveries import Claim, ClaimOutcome
from courier.ledger.records import (
    BatchEndedPayload,
    BatchMember,
    BatchView,
    ChannelDelivery,
    EndedPayload,
    OutboxEvent,
    RunView,
)
from courier.ledger.schema import BATCH_KIND_FOLDER, BATCH_KIND_RERUN, BATCH_KIND_SHEET, event_sk
from courier.models import NotificationKind, RunStatus
from courier.pipeline import NextStep
from notify.batch_delivery import BatchDigests
from notify.batch_outputs import cell, outputs_tsv, write_outputs
from notify.delivery import Notifier, NotifyOptions
from notify.digest import BatchDigest, DigestBuilder, outputs_rows
from notify.render_digest import render_digest_email, render_digest_slack
from notify.summary import FailedTask, RunSummary
from tests.support.notify_fixtures import T0, FakePoster

BATCH = "b0000000-0000-5000-8000-000000000001"
FAILED_TEXT = '<!channel> & *bold* =HYPERLINK("http://evil")'


def wf(i: int) -> str:
    return f"b0000000-0000-5000-8000-{i:012d}"


def run(i: int, status: RunStatus, **fields: Any) -> RunView:
    return RunView(
        workflow_id=wf(i),
        workflow_name="germline",
        status=status,
        started_at=T0,
        ended_at=T0 + timedelta(minutes=10 + i),
        routing={"slack_channel": "C0LAB"},
        batch_id=BATCH,
        **fields,
    )


@dataclass
class FakeReads:
    batch_view: BatchView
    members_list: list[BatchMember]
    others: dict[str, BatchView] = field(default_factory=dict)

    def batch(self, batch_id: str) -> BatchView | None:
        return self.batch_view if batch_id == self.batch_view.batch_id else self.others.get(batch_id)

    def members(self, batch_id: str) -> Iterator[BatchMember]:
        yield from self.members_list


@dataclass
class FakeSummaries:
    runs: dict[str, RunView]
    failed: dict[str, list[FailedTask]] = field(default_factory=dict)
    built: list[str] = field(default_factory=list)

    def build(self, event: OutboxEvent) -> RunSummary:
        self.built.append(event.workflow_id)
        view = self.runs[event.workflow_id]
        failed = self.failed.get(event.workflow_id, [])
        return RunSummary(
            kind=event.kind,
            event_sk=event.event_sk,
            run=view,
            created_at=T0,
            failed=failed,
            failed_total=len(failed),
        )


def failed_task(message: str) -> FailedTask:
    return FailedTask(
        job_id="job-1",
        call="germline.align",
        shard=-1,
        attempt=1,
        exit_code=1,
        status_reason="Essential container in task exited",
        classification=Classification(FailureKind.SCRIPT_FAILED, "Script failed", "x"),
        log_stream="align/default/abc",
        message=message,
    )


def cohort(kind: str = BATCH_KIND_SHEET, **batch_fields: Any) -> tuple[FakeReads, FakeSummaries]:
    statuses = [RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.SUCCEEDED, RunStatus.REJECTED]
    runs = {
        wf(i): run(
            i,
            st,
            sample=f"S{i}",
            outputs={"germline.vcf": f"s3://out/S{i}.vcf", "germline.note": "=1+1"}
            if st is RunStatus.SUCCEEDED
            else {},
            reasons=("line 5: wrong type",) if st is RunStatus.REJECTED else (),
        )
        for i, st in enumerate(statuses)
    }
    members = [BatchMember(BATCH, wf(i), sample=f"S{i}", status=st) for i, st in enumerate(statuses)]
    members[1] = BatchMember(BATCH, wf(1), sample=FAILED_TEXT, status=RunStatus.FAILED)
    batch = BatchView(
        batch_id=BATCH,
        kind=kind,
        bucket="lab-runs",
        folder="cohort/",
        source_key="cohort/samples.tsv",
        workflow_name="germline <b>",
        expected=4,
        runs=4,
        ended=4,
        counts={"Succeeded": 2, "Failed": 1, "Rejected": 1},
        **batch_fields,
    )
    summaries = FakeSummaries(runs, failed={wf(1): [failed_task(FAILED_TEXT)]})
    return FakeReads(batch, members), summaries


def event() -> OutboxEvent:
    return OutboxEvent(
        workflow_id=wf(3),
        kind=NotificationKind.BATCH_ENDED,
        event_sk=event_sk(NotificationKind.BATCH_ENDED.value, BATCH),
        payload=BatchEndedPayload(BATCH),
        created_at=T0,
        discriminator=BATCH,
    )


def build(kind: str = BATCH_KIND_SHEET, **batch_fields: Any) -> BatchDigest:
    reads, summaries = cohort(kind, **batch_fields)
    return DigestBuilder(reads, summaries).build(event())


def test_digest_lists_every_sample_failures_first_with_totals_from_the_batch() -> None:
    digest = build()
    assert [line.status for line in digest.samples[:2]] == [RunStatus.FAILED, RunStatus.REJECTED]
    assert {line.sample for line in digest.samples} == {"S0", FAILED_TEXT, "S2", "S3"}
    assert digest.totals == {"Failed": 1, "Rejected": 1, "Succeeded": 2}
    assert not digest.all_succeeded
    assert digest.headline == "Batch ended: 2 of 4 not succeeded"
    assert digest.rerun_commands() == (
        f"courier rerun {BATCH} --failed",
        f'echo \'{{"batch": "{BATCH}", "failed_only": true}}\' | aws s3 cp - s3://lab-runs/cohort/rerun.json',
    )


def test_digest_reads_no_more_samples_than_its_cap_and_says_so() -> None:
    reads, summaries = cohort()
    digest = DigestBuilder(reads, summaries, max_samples=2).build(event())
    assert len(digest.samples) == 2
    assert digest.left_out == 2
    assert len(summaries.built) == 2
    assert "and 2 more sample(s)" in render_digest_email(digest, region="us-east-1").body


def test_email_is_plain_text_with_the_table_the_failures_and_the_rerun_command() -> None:
    message = render_digest_email(build(), region="us-east-1")
    body = message.body
    assert message.subject == "Courier: Batch ended: 2 of 4 not succeeded: germline <b>"
    assert "succeeded 2" in body
    assert "failed 1" in body
    assert "germline.align, attempt 1" in body
    assert "line 5: wrong type" in body
    assert "console.aws.amazon.com/cloudwatch" in body
    assert f"courier rerun {BATCH} --failed" in body
    assert "10 min 00 s" in body  # S0's duration
    assert message.attributes["severity"] == "failure"


def test_slack_escapes_user_text_and_keeps_links_its_own() -> None:
    payload = render_digest_slack(build(), region="us-east-1")
    text = json.dumps(payload)
    assert "<!channel>" not in text
    assert "&lt;!channel&gt; &amp;" in text
    assert "germline &lt;b&gt;" in text
    assert "|log>" in text
    assert payload["attachments"][0]["color"] == "#e01e5a"


def test_a_rerun_digest_says_what_it_recovered() -> None:
    reads, summaries = cohort(BATCH_KIND_RERUN, rerun_of="a-batch")
    summaries.runs[wf(0)] = run(0, RunStatus.SUCCEEDED, sample="S0", labels={LABEL_RERUN_OF: "old-0"})
    digest = DigestBuilder(reads, summaries).build(event())
    assert [line.sample for line in digest.recovered] == ["S0"]
    assert "recovered 1 of 4 sample(s); 2 still failed." in render_digest_email(digest, region="r").body


def test_outputs_table_one_row_per_sample_one_column_per_output_formulas_escaped() -> None:
    digest = build()
    columns, rows = outputs_rows(digest.samples)
    assert columns == ["germline.vcf", "germline.note"]
    tsv = outputs_tsv(columns, rows).splitlines()
    assert tsv[0] == "sample\tworkflow_id\tstatus\tgermline.vcf\tgermline.note"
    assert f"S0\t{wf(0)}\tSucceeded\ts3://out/S0.vcf\t'=1+1" in tsv
    assert f"{FAILED_TEXT}\t{wf(1)}\tFailed\t\t" in tsv
    assert cell("-3.5") == "-3.5"
    assert cell("-x") == "'-x"
    assert cell("@SUM(A1)") == "'@SUM(A1)"
    assert cell(["a", 1]) == '["a",1]'
    assert cell("two\nlines") == "two lines"


@dataclass
class MemorySink:
    files: dict[str, str] = field(default_factory=dict)

    def put_text(self, bucket: str, key: str, text: str, *, content_type: str) -> None:
        self.files[f"s3://{bucket}/{key}"] = text


def test_outputs_written_beside_the_sheet() -> None:
    sink = MemorySink()
    uri = write_outputs(build(), sink)
    assert uri == "s3://lab-runs/cohort/outputs.tsv"
    document = json.loads(sink.files["s3://lab-runs/cohort/outputs.json"])
    assert document["columns"] == ["germline.vcf", "germline.note"]
    assert [s["sample"] for s in document["samples"]] == sorted(["S0", FAILED_TEXT, "S2", "S3"])


@dataclass
class FakeDeliveries:
    sent: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    batch_threads: dict[str, tuple[str, str]] = field(default_factory=dict)

    def delivery(self, workflow_id: str, event_sk: str) -> dict[str, ChannelDelivery]:
        return {}

    def claim(self, workflow_id: str, event_sk: str, channel: str, *, token: str, lease_until: Any) -> Any:
        return Claim(ClaimOutcome.CLAIMED, channel, token)

    def mark_sent(self, workflow_id: str, event_sk: str, channel: str, *, token: str, ref: str = "") -> bool:
        self.sent.setdefault((workflow_id, event_sk), []).append(channel)
        return True

    def release(self, workflow_id: str, event_sk: str, channel: str, *, token: str, error: str) -> bool:
        return True

    def set_thread(self, workflow_id: str, channel: str, ts: str) -> tuple[str, str]:
        return channel, ts

    def set_batch_thread(self, batch_id: str, channel: str, ts: str) -> tuple[str, str]:
        self.batch_threads[batch_id] = (channel, ts)
        return channel, ts


@dataclass
class Emails:
    messages: list[Any] = field(default_factory=list)

    def publish(self, message: Any) -> str:
        self.messages.append(message)
        return f"m-{len(self.messages)}"


def notifier(reads: FakeReads, summaries: FakeSummaries, poster: FakePoster, emails: Emails) -> Notifier:
    return Notifier(
        FakeDeliveries(),
        summaries,
        sns=emails,
        slack=lambda: poster,
        options=NotifyOptions(region="us-east-1"),
        digests=BatchDigests(DigestBuilder(reads, summaries), MemorySink()),
    )


def test_notifier_sends_the_digest_on_both_channels_and_starts_the_batch_thread() -> None:
    reads, summaries = cohort()
    poster, emails = FakePoster(), Emails()
    n = notifier(reads, summaries, poster, emails)
    outcome = n.deliver(event())
    assert sorted(outcome.sent) == ["slack", "sns"]
    assert emails.messages[0].subject.startswith("Courier: Batch ended")
    assert "Outputs   s3://lab-runs/cohort/outputs.tsv" in emails.messages[0].body
    assert poster.posts[0]["channel"] == "C0LAB"
    assert poster.posts[0]["thread_ts"] is None
    assert n.ledger.batch_threads[BATCH] == ("C0LAB", poster.posts[0]["ts"])  # type: ignore[attr-defined]


def test_a_rerun_digest_replies_in_the_thread_of_the_batch_it_reruns() -> None:
    reads, summaries = cohort(BATCH_KIND_RERUN, rerun_of="first")
    reads.others["first"] = BatchView("first", slack_thread_channel="C0LAB", slack_thread_ts="111.222")
    poster = FakePoster()
    notifier(reads, summaries, poster, Emails()).deliver(event())
    assert (poster.posts[0]["thread_ts"], poster.posts[0]["broadcast"]) == ("111.222", True)


def test_a_batch_runs_end_is_left_to_the_digest_unless_asked() -> None:
    reads, summaries = cohort()
    poster, emails = FakePoster(), Emails()
    n = notifier(reads, summaries, poster, emails)

    def ended(per_run: bool) -> OutboxEvent:
        return OutboxEvent(
            wf(0),
            NotificationKind.ENDED,
            event_sk("ENDED"),
            EndedPayload(RunStatus.SUCCEEDED, batch_id=BATCH, per_run=per_run),
        )

    assert n.deliver(ended(False)).reason.startswith("the batch's digest reports")
    assert (poster.posts, emails.messages) == ([], [])
    assert sorted(n.deliver(ended(True)).sent) == ["slack", "sns"]


# -- folder windows ----------------------------------------------------------------------------------


@dataclass
class FakeEvents:
    events: dict[tuple[str, str], OutboxEvent] = field(default_factory=dict)

    def event(self, workflow_id: str, sk: str) -> OutboxEvent | None:
        return self.events.get((workflow_id, sk))


def lone_window(per_run: bool | None) -> tuple[FakeReads, FakeSummaries, FakeEvents]:
    """A folder window closed on one inputs file whose run failed; its ENDED event left its end to
    the batch (per_run False), told it (True), or is absent (None: the run was refused)."""
    the_run = run(0, RunStatus.FAILED, sample="sampleA")
    batch = BatchView(
        batch_id=BATCH,
        kind=BATCH_KIND_FOLDER,
        bucket="lab-runs",
        folder="runs/rna/",
        source_key="runs/rna/",
        expected=1,
        runs=1,
        ended=1,
        assigned=1,
        counts={"Failed": 1},
    )
    reads = FakeReads(batch, [BatchMember(BATCH, wf(0), sample="sampleA", status=RunStatus.FAILED)])
    events = FakeEvents()
    if per_run is not None:
        sk = event_sk(NotificationKind.ENDED.value)
        payload = EndedPayload(RunStatus.FAILED, batch_id=BATCH, per_run=per_run)
        events.events[wf(0), sk] = OutboxEvent(wf(0), NotificationKind.ENDED, sk, payload)
    return reads, FakeSummaries({wf(0): the_run}), events


def folder_notifier(
    reads: FakeReads, summaries: FakeSummaries, events: FakeEvents, emails: Emails
) -> Notifier:
    return Notifier(
        FakeDeliveries(),
        summaries,
        sns=emails,
        slack=FakePoster,
        options=NotifyOptions(region="us-east-1"),
        digests=BatchDigests(DigestBuilder(reads, summaries), MemorySink(), events),
    )


def window_ended() -> OutboxEvent:
    return OutboxEvent(
        wf(0),
        NotificationKind.BATCH_ENDED,
        event_sk(NotificationKind.BATCH_ENDED.value, BATCH),
        BatchEndedPayload(BATCH),
    )


def test_a_folder_window_of_one_run_left_to_the_batch_sends_the_runs_own_end_message() -> None:
    emails = Emails()
    outcome = folder_notifier(*lone_window(per_run=False), emails).deliver(window_ended())
    assert sorted(outcome.sent) == ["slack", "sns"]
    (message,) = emails.messages
    assert not message.subject.startswith("Courier: Batch")
    assert message.subject == "Courier: Run failed: germline"


def test_a_folder_window_of_one_run_sends_nothing_more_when_the_run_told_its_end() -> None:
    for per_run in (True, None):  # its own end message went out, or it was refused (REJECTED told it)
        emails = Emails()
        outcome = folder_notifier(*lone_window(per_run=per_run), emails).deliver(window_ended())
        assert outcome.sent == []
        assert outcome.reason == "a folder window of one run: its own messages told its end"
        assert emails.messages == []


@dataclass
class FakePipeline:
    """Starts a `when: batch` next step for any batch it is given (`notify.pipeline.NextSteps`)."""

    batches: list[tuple[str, list[str]]] = field(default_factory=list)

    def after_run(self, run: RunView) -> NextStep | None:
        return None

    def after_batch(self, batch: BatchView, runs: Sequence[RunView], left_out: int = 0) -> NextStep | None:
        self.batches.append((batch.batch_id, [r.workflow_id for r in runs]))
        return NextStep("lab-runs", f"runs/joint/from-{batch.batch_id}.inputs.json", started=True)


def test_a_folder_window_of_one_run_still_starts_its_batch_mode_next_step() -> None:
    """Told as its run's own end (no digest), a window of one is still a batch of one: a
    `when: batch` next step starts from its run, and the message says so when it is still to go."""
    for per_run in (False, True):
        emails, pipeline = Emails(), FakePipeline()
        n = folder_notifier(*lone_window(per_run=per_run), emails)
        n.pipeline = pipeline
        n.deliver(window_ended())
        assert pipeline.batches == [(BATCH, [wf(0)])]
        if not per_run:  # the run's own end message goes out now, and names the next step
            (message,) = emails.messages
            assert f"runs/joint/from-{BATCH}.inputs.json" in message.body
        else:
            assert emails.messages == []


def test_a_folder_window_of_two_runs_is_a_digest_named_by_its_runs_with_its_own_outputs_table() -> None:
    reads, summaries = cohort(BATCH_KIND_FOLDER, opened_at=T0, assigned=4)
    reads.batch_view = replace(reads.batch_view, workflow_name=None, expected=4)
    emails = Emails()
    n = folder_notifier(reads, summaries, FakeEvents(), emails)
    assert sorted(n.deliver(event()).sent) == ["slack", "sns"]
    (message,) = emails.messages
    assert message.subject == "Courier: Batch ended: 2 of 4 not succeeded: germline"
    stamp = f"{T0.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    assert f"Outputs   s3://lab-runs/cohort/batch-{stamp}.outputs.tsv" in message.body


def test_a_batch_runs_alert_starts_the_batch_thread_and_the_digest_replies_in_it() -> None:
    """One thread per batch: the first message about any of its runs starts it."""
    reads, summaries = cohort()
    poster, emails = FakePoster(), Emails()
    n = notifier(reads, summaries, poster, emails)
    alert = OutboxEvent(wf(1), NotificationKind.EARLY_FAILURE, event_sk("EARLY_FAILURE"), None)
    assert "slack" in n.deliver(alert).sent
    first = poster.posts[0]
    assert (first["channel"], first["thread_ts"]) == ("C0LAB", None)
    assert n.ledger.batch_threads[BATCH] == ("C0LAB", first["ts"])  # type: ignore[attr-defined]
    # the ledger now holds the batch's thread: the digest replies in it, broadcast to the channel
    reads.batch_view = replace(reads.batch_view, slack_thread_channel="C0LAB", slack_thread_ts=first["ts"])
    n.deliver(event())
    digest = poster.posts[1]
    assert (digest["thread_ts"], digest["broadcast"]) == (first["ts"], True)
    # and so does a later alert of another run of the batch, not a thread of its own
    n.deliver(OutboxEvent(wf(0), NotificationKind.EARLY_FAILURE, event_sk("EARLY_FAILURE"), None))
    assert poster.posts[2]["thread_ts"] == first["ts"]
