"""Rendering of every message type on both channels (e-mail through SNS, Slack Block Kit)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest

from courier.failures import FailureKind
from courier.ledger.records import OutboxEvent
from courier.models import NotificationKind
from notify.render_email import SUBJECT_MAX, render_email
from notify.render_slack import render_slack
from notify.summary import RunSummary, SummaryBuilder, SummaryOptions
from tests.support.notify_fixtures import (
    PRICES,
    T0,
    FakeStderr,
    MemoryLedger,
    event_item,
    iso,
    run_item,
    task_item,
)

WF = "0b7c2f3e-8c1a-5d7e-9f00-111111111111"
NOW = T0 + timedelta(hours=3)
BASE = f"s3://cromwell-exec/germline/{WF}/"
LINK = re.compile(r"<https?://[^|<>\s]+\|[^<>]*>")


def build(
    kind: str,
    run: dict[str, Any] | None,
    tasks: list[dict[str, Any]] | None = None,
    payload: dict[str, Any] | None = None,
    discriminator: str = "",
    stderr: FakeStderr | None = None,
) -> RunSummary:
    ledger = MemoryLedger(run, tasks or [])
    builder = SummaryBuilder(
        ledger, SummaryOptions(prices=PRICES), stderr=stderr or FakeStderr(), clock=lambda: NOW
    )
    event = OutboxEvent.from_item(event_item(WF, kind, payload, discriminator))
    return builder.build(event)


def email_of(report: RunSummary) -> Any:
    return render_email(report, region="us-east-1", now=NOW)


def slack_of(report: RunSummary) -> dict[str, Any]:
    return render_slack(report, region="us-east-1", now=NOW)


def row(body: str, label: str) -> str:
    """The value of a `Label   value` summary row of an e-mail body."""
    match = re.search(rf"^{re.escape(label)} +(.*)$", body, re.MULTILINE)
    assert match, f"no {label} row"
    return match.group(1)


def mrkdwn_texts(payload: dict[str, Any]) -> list[str]:
    out = []
    for att in payload["attachments"]:
        for block in att["blocks"]:
            if isinstance(block.get("text"), dict) and block["text"]["type"] == "mrkdwn":
                out.append(block["text"]["text"])
            out += [f["text"] for f in block.get("fields", [])]
            out += [e["text"] for e in block.get("elements", []) if e.get("type") == "mrkdwn"]
    return out


def assert_slack_limits(payload: dict[str, Any]) -> None:
    """Slack's documented limits, checked independently of the renderer's own constants."""
    json.dumps(payload)
    assert 0 < len(payload["text"]) <= 40_000
    total = 0
    for att in payload["attachments"]:
        assert re.fullmatch(r"#[0-9a-f]{6}", att["color"])
        blocks = att["blocks"]
        assert 1 <= len(blocks) <= 50
        for block in blocks:
            if block["type"] == "header":
                assert block["text"]["type"] == "plain_text"
                assert 1 <= len(block["text"]["text"]) <= 150
                assert "\n" not in block["text"]["text"]
            elif block["type"] == "section":
                assert "text" in block or "fields" in block
                if "text" in block:
                    assert 1 <= len(block["text"]["text"]) <= 3000
                for f in block.get("fields", []):
                    assert 1 <= len(f["text"]) <= 2000
                assert len(block.get("fields", [])) <= 10
            elif block["type"] == "context":
                assert 1 <= len(block["elements"]) <= 10
                for e in block["elements"]:
                    assert 1 <= len(e["text"]) <= 3000
            else:
                pytest.fail(f"unexpected block {block['type']}")
            total += sum(len(t) for t in mrkdwn_texts({"attachments": [{"blocks": [block]}]}))
    assert total + len(payload["text"]) <= 40_000
    for text in mrkdwn_texts(payload):
        bare = LINK.sub("", text)
        assert "<" not in bare, text
        assert ">" not in bare, text
        assert not re.search(r"&(?!amp;|lt;|gt;)", bare), text


def failed_run() -> tuple[dict[str, Any], list[dict[str, Any]], FakeStderr]:
    failures = [
        {
            "call": "germline.call_variants",
            "shard": i,
            "attempt": 1,
            "job_id": f"job-{i}",
            "stderr": f"{BASE}call-call_variants/shard-{i}/call_variants-{i}-stderr.log",
            "message": "Job exited with a non-zero return code",
        }
        for i in (0, 1)
    ]
    failures.append({"message": "Workflow has invalid declarations: oops"})
    run = run_item(
        WF,
        status="Failed",
        status_rank=9,
        ended_at=iso(T0 + timedelta(hours=2)),
        tasks_SUCCEEDED=10,
        tasks_FAILED=3,
        failures=failures,
        labels={"project": "genomics-east"},
        routing={"project": "genomics-east", "slack_channel": "#lab-runs"},
    )
    tasks = [task_item(WF, f"ok-{i}", call="germline.align", shard=i) for i in range(10)]
    reasons = [
        ("Essential container in task exited", 1),
        ("OutOfMemoryError: Container killed due to memory usage", 137),
        ("Host EC2 (instance i-0abc123) terminated.", None),
    ]
    for i, (reason, code) in enumerate(reasons):
        tasks.append(
            task_item(
                WF,
                f"job-{i}",
                call="germline.call_variants",
                shard=i,
                attempt=1,
                status="FAILED",
                status_reason=reason,
                exit_code=code,
                stopped_at=iso(T0 + timedelta(minutes=70 + i)),
                queue="arn:aws:batch:us-east-1:123456789012:job-queue/courier-spot",
            )
        )
    stderr = FakeStderr(
        {
            f"{BASE}call-call_variants/shard-0/call_variants-0-stderr.log": (
                "line a\nline b\nValueError: bad <input> & more"
            ),
            f"{BASE}call-call_variants/shard-2/call_variants-2-stderr.log": "killed",
        }
    )
    return run, tasks, stderr


class TestFailedRun:
    def test_three_failed_shards_each_with_cause_links_and_stderr(self) -> None:
        run, tasks, stderr = failed_run()
        report = build("ENDED", run, tasks, {"status": "Failed"}, stderr=stderr)
        assert report.failed_total == 3
        assert [t.shard for t in report.failed] == [0, 1, 2]
        kinds = [t.classification.kind for t in report.failed]
        assert kinds == [FailureKind.SCRIPT_FAILED, FailureKind.OUT_OF_MEMORY, FailureKind.SPOT_INTERRUPTION]
        # shard 2 has no stderr in the failures list: derived from Cromwell's S3 layout
        assert report.failed[2].stderr_uri == f"{BASE}call-call_variants/shard-2/call_variants-2-stderr.log"
        assert report.failed[0].stderr_tail == ("line a", "line b", "ValueError: bad <input> & more")
        assert report.failed[1].stderr_tail is None  # listed but not readable
        assert report.cromwell_errors == ["Workflow has invalid declarations: oops"]
        assert report.counts == {"SUCCEEDED": 10, "FAILED": 3}

        mail = email_of(report)
        assert mail.subject == "Courier: Run failed: germline"
        for shard in (0, 1, 2):
            assert f"germline.call_variants, shard {shard}, attempt 1" in mail.body
        assert "Out of memory" in mail.body
        assert "Spot interruption" in mail.body
        assert "Exit code:    137" in mail.body
        assert "Host EC2 (instance i-0abc123) terminated." in mail.body
        assert "   | ValueError: bad <input> & more" in mail.body
        assert (
            "log-group/$252Faws$252Fbatch$252Fjob/log-events/cromwell_ubuntu$252Fdefault$252Fjob-0"
            in mail.body
        )
        assert "/s3/buckets/cromwell-exec?region=us-east-1&prefix=germline%2F" in mail.body
        assert "Cost (estimate)" in mail.body
        assert "Estimate: ~$" in mail.body
        assert row(mail.body, "Source") == "s3://lab-runs/runs/sample-1/inputs.json"
        assert row(mail.body, "Dropped by") == "arn:aws:iam::123456789012:user/alice"
        assert row(mail.body, "Duration") == "1 h 58 min"
        assert row(mail.body, "Project") == "genomics-east"
        assert mail.attributes == {
            "event_type": "ENDED",
            "status": "Failed",
            "workflow_name": "germline",
            "project": "genomics-east",
            "severity": "failure",
        }
        structure = json.loads(mail.sns_message())
        assert set(structure) == {"default", "email"}
        assert structure["email"] == mail.body

        slack = slack_of(report)
        assert_slack_limits(slack)
        assert slack["attachments"][0]["color"] == "#e01e5a"
        texts = "\n".join(mrkdwn_texts(slack))
        assert "ValueError: bad &lt;input&gt; &amp; more" in texts
        assert "|Log stream>" in texts
        assert "|Call folder>" in texts
        assert "Failures by cause" in texts


class TestSuccess:
    def test_500_outputs_are_bounded_with_console_links(self) -> None:
        outputs = {f"germline.vcf_{i}": f"s3://lab-out/germline/{WF}/out_{i}.vcf.gz" for i in range(499)}
        outputs["germline.count"] = 42
        run = run_item(
            WF,
            status="Succeeded",
            status_rank=9,
            ended_at=iso(T0 + timedelta(hours=1)),
            outputs=outputs,
            outputs_count=500,
        )
        tasks = [task_item(WF, f"j{i}", shard=i) for i in range(4)]
        report = build("ENDED", run, tasks, {"status": "Succeeded"})
        assert report.outputs_total == 500
        assert len(report.outputs) == 50
        assert report.failed == []
        assert report.severity == "info"
        assert report.cost is not None
        assert report.cost.tasks_priced == 4
        # 4 tasks x 1 h x 4 vCPU on an on-demand queue
        assert report.cost.vcpu_hours == pytest.approx(16.0)
        assert report.cost.gb_hours == pytest.approx(32.0)
        assert not report.cost.ambiguous

        mail = email_of(report)
        assert mail.subject == "Courier: Run succeeded: germline"
        assert "Outputs (50 of 500)" in mail.body
        assert "... and 450 more." in mail.body
        assert (
            "https://us-east-1.console.aws.amazon.com/s3/object/lab-out?region=us-east-1&prefix=germline%2F"
            in mail.body
        )
        assert "Estimate: ~$0.77 for 16.00 vCPU-hours, 32.00 GB-hours over 4 task(s)." in mail.body

        slack = slack_of(report)
        assert_slack_limits(slack)
        assert slack["attachments"][0]["color"] == "#2eb67d"
        texts = "\n".join(mrkdwn_texts(slack))
        assert "… and 450 more output(s)." in texts
        assert texts.count("|s3://lab-out/") == 50


class TestOtherKinds:
    def test_rejected_lists_the_reasons(self) -> None:
        run = run_item(WF, status="Rejected", status_rank=9, reasons=["no WDL file in the folder"])
        report = build(
            "REJECTED", run, payload={"reasons": ["no WDL file in the folder", "inputs.json: line 3: <bad>"]}
        )
        assert report.reasons == ["no WDL file in the folder", "inputs.json: line 3: <bad>"]
        mail = email_of(report)
        assert mail.subject == "Courier: Run rejected: germline"
        assert "* inputs.json: line 3: <bad>" in mail.body
        assert mail.attributes["status"] == "Rejected"
        assert mail.attributes["severity"] == "failure"
        slack = slack_of(report)
        assert_slack_limits(slack)
        assert "line 3: &lt;bad&gt;" in "\n".join(mrkdwn_texts(slack))

    def test_submitted(self) -> None:
        report = build("SUBMITTED", run_item(WF, status="Submitted", started_at=None))
        mail = email_of(report)
        assert mail.subject == "Courier: Run submitted: germline"
        assert "germline was submitted to Cromwell." in mail.body
        assert mail.attributes["severity"] == "info"
        slack = slack_of(report)
        assert_slack_limits(slack)
        assert slack["attachments"][0]["color"] == "#36c5f0"

    def test_early_failure_uses_the_task_item_and_payload(self) -> None:
        run = run_item(
            WF,
            tasks_RUNNING=5,
            tasks_FAILED=1,
            failures=[{"call": "germline.sort", "stderr": f"{BASE}call-sort/sort-stderr.log"}],
        )
        task = task_item(
            WF,
            "job-x",
            call="germline.align",
            shard=3,
            attempt=2,
            status="FAILED",
            status_reason="CannotPullContainerError: pull access denied",
            exit_code=None,
        )
        payload = {"task": {"call": "germline.align", "shard": 3, "attempt": 2, "job_id": "job-x"}}
        report = build("EARLY_FAILURE", run, [task], payload, "first")
        assert len(report.failed) == 1
        failed = report.failed[0]
        assert failed.classification.kind is FailureKind.CONTAINER_ERROR
        assert failed.stderr_uri == f"{BASE}call-align/shard-3/attempt-2/align-3-stderr.log"
        assert failed.log_stream == "cromwell_ubuntu/default/job-x"
        mail = email_of(report)
        assert mail.subject == "Courier: A task failed: germline"
        assert "First failed task" in mail.body
        assert "Container or image error" in mail.body
        assert row(mail.body, "Tasks") == "failed 1, running 5 (total 6)"
        assert_slack_limits(slack_of(report))

    @pytest.mark.parametrize("kind", ["STUCK", "QUEUE_BLOCKED"])
    def test_stuck_and_blocked_name_queue_task_duration_reason(self, kind: str) -> None:
        task = task_item(
            WF,
            "job-9",
            call="germline.joint",
            status="RUNNABLE",
            queue="arn:aws:batch:us-east-1:123456789012:job-queue/courier-spot",
        )
        payload = {
            "job_id": "job-9",
            "runnable_since": iso(T0 + timedelta(minutes=10)),
            "status_reason": "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - needs 128 vCPUs",
        }
        report = build(kind, run_item(WF), [task], payload, discriminator="job-9")
        assert report.alert is not None
        assert report.alert.runnable_seconds == pytest.approx(110 * 60)
        mail = email_of(report)
        assert "Queue:        arn:aws:batch:us-east-1:123456789012:job-queue/courier-spot" in mail.body
        assert "For:          1 h 50 min" in mail.body
        assert "needs 128 vCPUs" in mail.body
        assert "Task:         germline.joint" in mail.body
        assert mail.attributes["event_type"] == kind
        assert mail.attributes["severity"] == "warning"
        slack = slack_of(report)
        assert_slack_limits(slack)
        assert slack["attachments"][0]["color"] == "#ecb22e"

    def test_aborted_run_is_grey_and_tasks_classified_aborted(self) -> None:
        run = run_item(WF, status="Aborted", status_rank=9, ended_at=iso(T0 + timedelta(hours=1)))
        tasks = [task_item(WF, "j1", status="FAILED", status_reason="cromwell abort called", exit_code=None)]
        report = build("ENDED", run, tasks, {"status": "Aborted"})
        assert report.failed[0].classification.kind is FailureKind.ABORTED
        assert report.severity == "warning"
        assert slack_of(report)["attachments"][0]["color"] == "#8d8d8d"
        assert email_of(report).subject == "Courier: Run aborted: germline"

    def test_adopted_run_without_source_fields(self) -> None:
        run = {"pk": f"RUN#{WF}", "sk": "RUN", "workflow_id": WF, "status": "Succeeded", "origin": "adopted"}
        report = build("ENDED", run, [], {"status": "Succeeded"})
        mail = email_of(report)
        assert row(mail.body, "Source") == "-"
        assert row(mail.body, "Workflow") == "(unnamed workflow)"
        assert "project" not in mail.attributes
        assert_slack_limits(slack_of(report))

    def test_missing_run_item_still_renders(self) -> None:
        report = build("ENDED", None, [], {"status": "Failed"})
        assert report.status == "Failed"
        assert email_of(report).attributes["status"] == "Failed"
        assert_slack_limits(slack_of(report))


HOSTILE = [
    "<script>alert(1)</script>",
    "R&D <b>pipeline</b> & co",
    "genome 🧬🔥 run",
    "\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627",  # Hebrew and Arabic
    "evil\u202egnp.exe",
    "line one\nline two\r\nSubject: injected",
    "x" * 5000,
    "\x00\x07\x1b[31m",
    "",
]


@pytest.mark.parametrize("name", HOSTILE)
@pytest.mark.parametrize("kind", ["ENDED", "REJECTED", "STUCK"])
def test_hostile_names_render_safely(name: str, kind: str) -> None:
    run_fields = {"workflow_name": name, "labels": {"project": name}, "requester": name, "inputs_key": name}
    if kind == "ENDED":
        run_fields |= {"status": "Failed", "outputs": {name: f"s3://b/{name}"}}
    run = run_item(WF, **run_fields)
    tasks = [task_item(WF, "j1", call=name, status="FAILED", status_reason=name, exit_code=3)]
    report = build(kind, run, tasks, {"reasons": [name], "job_id": "j1", "status_reason": name}, "j1")
    mail = email_of(report)
    assert 0 < len(mail.subject) <= SUBJECT_MAX
    assert all(32 <= ord(c) < 127 for c in mail.subject)
    for value in mail.attributes.values():
        assert value
        assert "\n" not in value
        assert len(value) <= 256
    assert "\u202e" not in mail.body
    assert "\x1b" not in mail.body
    assert "\x00" not in mail.body
    slack = slack_of(report)
    assert_slack_limits(slack)
    assert "<script>" not in json.dumps(slack)
    header = slack["attachments"][0]["blocks"][0]["text"]["text"]
    assert "\n" not in header
    assert "\u202e" not in header


def test_subject_transliterates_accents() -> None:
    report = build("ENDED", run_item(WF, workflow_name="Étude café naïve", status="Succeeded"), [], {})
    assert email_of(report).subject == "Courier: Run succeeded: Etude cafe naive"


def test_email_fits_sns_size_limit_with_huge_stderr() -> None:
    run, tasks, _ = failed_run()
    many = [
        task_item(
            WF, f"f{i}", call="germline.x", shard=i, status="FAILED", status_reason="é" * 3000, exit_code=1
        )
        for i in range(40)
    ]
    stderr = FakeStderr({})
    report = build("ENDED", run, tasks + many, {}, stderr=stderr)
    assert len(report.failed) == 20
    assert report.failed_total == 43
    mail = email_of(report)
    assert len(mail.sns_message().encode("utf-8")) <= 240_000
    assert_slack_limits(slack_of(report))


def test_slack_truncates_many_long_failures_without_failing() -> None:
    tasks = [
        task_item(
            WF,
            f"f{i:02d}",
            call="c" * 3000,
            shard=i,
            status="FAILED",
            status_reason="&<>" * 2000,
            exit_code=1,
            stopped_at=iso(T0 + timedelta(minutes=i)),
        )
        for i in range(30)
    ]
    files = {
        f"{BASE}call-{'c' * 3000}/shard-{i}/{'c' * 3000}-{i}-stderr.log": ("<&>" * 200 + "\n") * 50
        for i in range(3)
    }
    run = run_item(
        WF,
        status="Failed",
        failures=[{"stderr": f"{BASE}x"}],
        outputs={f"o{i}": "v" * 2000 for i in range(60)},
    )
    report = build("ENDED", run, tasks, {}, stderr=FakeStderr(files))
    slack = slack_of(report)
    assert_slack_limits(slack)
    blocks = slack["attachments"][0]["blocks"]
    assert "shortened" in blocks[-1]["elements"][0]["text"] or len(blocks) < 50


def test_counts_come_from_the_tasks_when_streamed() -> None:
    run = run_item(WF, status="Succeeded", tasks_SUCCEEDED=1)  # stale counter on the run item
    tasks = [task_item(WF, f"j{i}") for i in range(3)]
    report = build("ENDED", run, tasks, {})
    assert report.counts == {"SUCCEEDED": 3}


def test_non_ended_reports_use_the_run_counters() -> None:
    report = build(NotificationKind.SUBMITTED.value, run_item(WF, tasks_RUNNABLE=2, tasks_FAILED=0), [], {})
    assert report.counts == {"RUNNABLE": 2}


def test_monitor_payloads_as_the_monitor_writes_them() -> None:
    """The early failure carries the task's summary under `task`; the stuck alert is flat."""
    summary = {
        "job_id": "job-7",
        "call": "germline.sort",
        "shard": 4,
        "attempt": 1,
        "status": "FAILED",
        "status_reason": "Host EC2 (instance i-0feed) terminated.",
        "exit_code": None,
        "queue": "courier-spot",
        "log_group": "/aws/batch/job",
        "log_stream": "cromwell/default/job-7",
        "at": iso(T0 + timedelta(minutes=30)),
    }
    report = build("EARLY_FAILURE", run_item(WF), [], {"task": summary, "sub_workflow_id": WF}, "first")
    failed = report.failed[0]
    assert (failed.call, failed.shard, failed.job_id) == ("germline.sort", 4, "job-7")
    assert failed.classification.kind is FailureKind.SPOT_INTERRUPTION
    assert failed.log_stream == "cromwell/default/job-7"

    stuck = {
        "job_id": "job-7",
        "queue": "courier-spot",
        "call": "germline.sort",
        "shard": 4,
        "attempt": 1,
        "batch_attempts": 0,
        "status_reason": "waiting for capacity",
        "runnable_seconds": 90 * 60,
        "runnable_since": iso(T0 + timedelta(minutes=30)),
    }
    alert = build("STUCK", run_item(WF), [], stuck, "job-7").alert
    assert alert is not None
    assert (alert.call, alert.queue, alert.task_status) == ("germline.sort", "courier-spot", "RUNNABLE")
    assert alert.runnable_seconds == pytest.approx(90 * 60)
    assert alert.reason == "waiting for capacity"


def test_a_task_known_only_by_its_batch_job_name_is_shown_as_such() -> None:
    """Cromwell 91 tasks tied through the script prefix, before the monitor fills them in: the
    call is the job name, shard and attempt are unknown, and no stderr path is guessed."""
    run = run_item(WF, tasks_FAILED=1, failures=[{"call": "germline.sort", "stderr": f"{BASE}call-sort/x"}])
    task = task_item(
        WF,
        "job-91",
        call="germline_align",
        shard=-1,
        attempt=0,
        call_source="job-name",
        status="FAILED",
        exit_code=1,
        status_reason="Essential container in task exited",
    )
    report = build("EARLY_FAILURE", run, [task], {"task": {"job_id": "job-91"}}, "first")
    failed = report.failed[0]
    assert (failed.call, failed.shard, failed.attempt, failed.stderr_uri) == (
        "germline_align (Batch job name)",
        -1,
        None,
        None,
    )
    assert failed.label == "germline_align (Batch job name)"
    assert "attempt 0" not in email_of(report).body
    ended = build("ENDED", {**run, "status": "Failed", "status_rank": 9}, [task])
    assert ended.failed[0].label == "germline_align (Batch job name)"
    filled = {**task, "call": "germline.align", "attempt": 1, "call_source": "metadata"}
    ended = build("ENDED", {**run, "status": "Failed", "status_rank": 9}, [filled])
    assert ended.failed[0].label == "germline.align, attempt 1"
    assert ended.failed[0].stderr_uri == f"{BASE}call-align/align-stderr.log"


def test_a_second_stuck_alert_of_a_job_after_a_batch_retry_renders() -> None:
    task = task_item(WF, "job-9", status="RUNNABLE", shard=2, batch_attempts=1)
    payload = {
        "job_id": "job-9",
        "call": "germline.align",
        "shard": 2,
        "attempt": 1,
        "batch_attempts": 1,
        "runnable_seconds": 3600,
        "runnable_since": iso(T0),
        "status_reason": "waiting",
    }
    report = build("STUCK", run_item(WF), [task], payload, "job-9#1")
    assert report.alert is not None
    assert (report.alert.job_id, report.alert.shard, report.alert.reason) == ("job-9", 2, "waiting")
    assert email_of(report).attributes["event_type"] == "STUCK"


class TestWaitingDurations:
    """The stuck and queue-blocked payloads carry `runnable_since` and `runnable_seconds` (what the
    monitor writes): the message shows those, not a time it works out from other fields."""

    def test_stuck_shows_the_written_duration_and_since(self) -> None:
        payload = {
            "job_id": "job-9",
            "call": "germline.joint",
            "shard": -1,
            "attempt": 1,
            "batch_attempts": 0,
            "status_reason": "waiting",
            "runnable_seconds": 4000,
            "runnable_since": iso(T0 + timedelta(minutes=10)),
        }
        report = build("STUCK", run_item(WF), [], payload, "job-9")
        assert report.alert is not None
        assert report.alert.runnable_seconds == 4000
        assert report.alert.runnable_since == T0 + timedelta(minutes=10)
        body = email_of(report).body
        assert "For:          1 h 06 min" in body
        assert "Since:        2026-03-02 09:10:00 UTC" in body
        slack = "\n".join(mrkdwn_texts(slack_of(report)))
        assert "1 h 06 min" in slack

    def test_queue_blocked_without_since_counts_back_from_the_alert(self) -> None:
        """The monitor's queue-blocked payload has the wait and the Batch event's time (`at`),
        not `runnable_since`: the wait ends when the alert was raised."""
        payload = {
            "job_id": "job-9",
            "queue": "courier-spot",
            "call": "germline.joint",
            "shard": 2,
            "attempt": 1,
            "status_reason": "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT",
            "runnable_seconds": 1800,
            "batch_attempts": 0,
            "at": iso(T0 + timedelta(minutes=1)),
        }
        report = build("QUEUE_BLOCKED", run_item(WF), [], payload, "job-9")
        assert report.alert is not None
        assert report.alert.runnable_seconds == 1800
        assert report.alert.runnable_since == T0 + timedelta(hours=2) - timedelta(minutes=30)
        assert "For:          30 min 00 s" in email_of(report).body

    def test_since_from_the_task_item_when_the_payload_has_none(self) -> None:
        task = task_item(WF, "job-9", status="RUNNABLE", runnable_at=iso(T0 + timedelta(minutes=20)))
        report = build("STUCK", run_item(WF), [task], {"job_id": "job-9"}, "job-9")
        assert report.alert is not None
        assert report.alert.runnable_since == T0 + timedelta(minutes=20)
        assert report.alert.runnable_seconds == pytest.approx(100 * 60)

    def test_a_retried_jobs_alert_names_the_job_not_its_discriminator(self) -> None:
        task = task_item(WF, "job-9", status="RUNNABLE", call="germline.joint")
        report = build("STUCK", run_item(WF), [task], {}, "job-9#2")
        assert report.alert is not None
        assert (report.alert.job_id, report.alert.call) == ("job-9", "germline.joint")
