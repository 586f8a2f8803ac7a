"""The contract between the functions: what the ledger adapters write for a run (submit's record,
the monitor's task transitions, alerts and end of the run) is what notify reads, field by field.

The items are written through `RunLedger` and `TaskLedger` against moto, exactly as the monitor
writes them, then read back through `RunViews` and notify's `SummaryBuilder`: every field the
monitor writes must reach the message model (and the rendered messages)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from courier.failures import FailureKind
from courier.ledger import RunLedger, RunRecord
from courier.ledger.records import OutboxEvent, QueueBlockedPayload, StuckPayload, TaskSummary
from courier.ledger.tasks import RunPlan, StoredTask, TaskLedger, TaskWrite
from courier.ledger.views import RunViews
from courier.models import CallSource, NotificationKind, RunStatus, TaskStatus, task_order
from notify.render_email import render_email
from notify.render_slack import render_slack
from notify.summary import RunSummary, SummaryBuilder, SummaryOptions
from tests.support.ledger_table import create_ledger_table
from tests.support.notify_fixtures import PRICES, Clock, FakeStderr

pytestmark = pytest.mark.integration

TABLE = "courier-ledger"
REGION = "us-east-1"
FAILED_RUN = "c0ffee00-0000-5000-8000-000000000001"
GOOD_RUN = "c0ffee00-0000-5000-8000-000000000002"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
BASE = f"s3://cromwell-exec/germline/{FAILED_RUN}/"
SPOT = "arn:aws:batch:us-east-1:123456789012:job-queue/courier-spot"


@dataclass
class Ledger:
    client: Any
    clock: Clock
    runs: RunLedger
    tasks: TaskLedger
    stored: dict[str, StoredTask]

    def record(self, workflow_id: str, name: str) -> None:
        assert self.runs.record_submitted(
            RunRecord(
                workflow_id=workflow_id,
                workflow_name=name,
                source_bucket="lab-runs",
                inputs_key=f"runs/{name}/inputs.json",
                run_folder=f"runs/{name}/",
                requester="arn:aws:iam::123456789012:user/alice",
                labels={"project": "genomics"},
                routing={"project": "genomics", "slack_channel": "C0LAB"},
                main_wdl=f"runs/{name}/main.wdl",
            )
        )

    def move(
        self,
        workflow_id: str,
        job_id: str,
        status: TaskStatus,
        *,
        call: str,
        shard: int = -1,
        plan: RunPlan | None = None,
        **fields: Any,
    ) -> None:
        """One Batch event of a job, written as the monitor's tracker writes it."""
        previous = self.stored.get(job_id)
        order = task_order(status, 0)
        task = TaskWrite(
            job_id=job_id,
            job_name=call.replace(".", "_"),
            call=call,
            shard=shard,
            attempt=1,
            workflow_id=workflow_id,
            root_workflow_id=workflow_id,
            status=status,
            order=order,
            batch_attempts=0,
            event_time=self.clock.now,
            queue=SPOT,
            log_group="/aws/batch/job",
            attribution="job-tags",
            call_source=CallSource.TASK_ID_TAG.value,
            created_at=T0,
            log_stream=f"cromwell/default/{job_id}",
            **fields,
        )
        assert self.tasks.transition(task, previous, plan or RunPlan()).applied
        self.stored[job_id] = StoredTask(status, order)


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_ledger_table(client, TABLE)
        clock = Clock(T0)
        yield Ledger(
            client,
            clock,
            RunLedger(TABLE, client, clock=clock),
            TaskLedger(TABLE, client, clock=clock),
            {},
        )


def failed_run(ledger: Ledger) -> None:
    """A scatter of two shards: shard 0 succeeds, shard 1 fails early (the run goes on); a third
    job waits in RUNNABLE and is alerted on twice (stuck, queue blocked); then the run fails."""
    clock = ledger.clock
    ledger.record(FAILED_RUN, "germline")
    clock.now = T0 + timedelta(minutes=5)
    for job, shard in (("job-a", 0), ("job-b", 1)):
        ledger.move(FAILED_RUN, job, TaskStatus.RUNNABLE, call="germline.call", shard=shard)
    ledger.move(FAILED_RUN, "job-c", TaskStatus.RUNNABLE, call="germline.joint")
    clock.now = T0 + timedelta(minutes=10)
    started = {"started_at": clock.now, "vcpus": 4.0, "memory_mib": 8192}
    ledger.move(
        FAILED_RUN,
        "job-a",
        TaskStatus.RUNNING,
        call="germline.call",
        shard=0,
        plan=RunPlan(promote_running=True),
        **started,
    )
    ledger.move(FAILED_RUN, "job-b", TaskStatus.RUNNING, call="germline.call", shard=1, **started)
    clock.now = T0 + timedelta(minutes=70)
    ledger.move(
        FAILED_RUN,
        "job-a",
        TaskStatus.SUCCEEDED,
        call="germline.call",
        shard=0,
        exit_code=0,
        stopped_at=clock.now,
        **started,
    )
    ledger.move(
        FAILED_RUN,
        "job-b",
        TaskStatus.FAILED,
        call="germline.call",
        shard=1,
        plan=RunPlan(early_failure=True),
        exit_code=137,
        status_reason="OutOfMemoryError: Container killed due to memory usage",
        stopped_at=clock.now,
        **started,
    )
    clock.now = T0 + timedelta(minutes=95)
    waiting = {"job_id": "job-c", "queue": SPOT, "call": "germline.joint", "attempt": 1}
    stuck = StuckPayload(
        **waiting,
        status_reason="waiting for capacity",
        runnable_since=T0 + timedelta(minutes=5),
        runnable_seconds=90 * 60,
    )
    assert ledger.runs.put_event(FAILED_RUN, stuck, "job-c")
    blocked = QueueBlockedPayload(
        **waiting,
        status_reason="MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - needs 128 vCPUs",
        runnable_seconds=1500,
    )
    assert ledger.runs.put_event(FAILED_RUN, blocked, "job-c")
    clock.now = T0 + timedelta(hours=2)
    report = {  # what the monitor stores from Cromwell's failed-jobs metadata and root failures
        "failures": [
            {
                "call": "germline.call",
                "workflow_id": FAILED_RUN,
                "shard": 1,
                "attempt": 1,
                "job_id": "job-b",
                "return_code": 137,
                "status": "Failed",
                "message": "Job germline.call:1:1 exited with return code 137",
                "stderr": f"{BASE}call-call/shard-1/call-1-stderr.log",
                "log_stream": "cromwell/default/job-b",
                "log_group": "/aws/batch/job",
            },
            {"call": "germline.gather", "workflow_id": FAILED_RUN, "message": "Failed to evaluate inputs"},
        ],
        "failures_count": 2,
        "workflow_failures": ["Workflow failed"],
    }
    assert ledger.runs.finish(FAILED_RUN, RunStatus.FAILED, report=report, source="callback")


def succeeded_run(ledger: Ledger) -> None:
    ledger.record(GOOD_RUN, "align")
    ledger.clock.now = T0 + timedelta(hours=1)
    outputs = {"align.bam": f"s3://lab-out/align/{GOOD_RUN}/out.bam", "align.reads": 1200}
    report = {"outputs": outputs, "outputs_count": 3, "outputs_clipped": 0, "outputs_left_out": 1}
    assert ledger.runs.finish(GOOD_RUN, RunStatus.SUCCEEDED, report=report, source="reconciler")


def summaries(ledger: Ledger, workflow_id: str, stderr: FakeStderr) -> dict[NotificationKind, RunSummary]:
    views = RunViews(TABLE, ledger.client, page_size=2)
    builder = SummaryBuilder(views, SummaryOptions(prices=PRICES), stderr=stderr)
    events: list[OutboxEvent] = list(views.events(workflow_id))
    assert len({e.kind for e in events}) == len(events)
    return {event.kind: builder.build(event) for event in events}


def test_the_run_item_as_written_is_the_run_view_read(ledger: Ledger) -> None:
    failed_run(ledger)
    run = RunViews(TABLE, ledger.client).run(FAILED_RUN)
    assert run is not None
    assert (run.workflow_id, run.workflow_name, run.status) == (FAILED_RUN, "germline", RunStatus.FAILED)
    assert run.source == "s3://lab-runs/runs/germline/inputs.json"
    assert (run.run_folder, run.main_wdl, run.origin) == (
        "runs/germline/",
        "runs/germline/main.wdl",
        "dropped",
    )
    assert run.requester == "arn:aws:iam::123456789012:user/alice"
    assert (run.project, run.slack_channel) == ("genomics", "C0LAB")
    assert (run.submitted_at, run.started_at) == (T0, T0 + timedelta(minutes=10))
    assert (run.ended_at, run.ended_by) == (T0 + timedelta(hours=2), "callback")
    assert run.counts == {"SUCCEEDED": 1, "FAILED": 1, "RUNNABLE": 1}
    assert run.first_failure == TaskSummary(
        job_id="job-b",
        call="germline.call",
        shard=1,
        attempt=1,
        status=TaskStatus.FAILED,
        status_reason="OutOfMemoryError: Container killed due to memory usage",
        exit_code=137,
        queue=SPOT,
        log_group="/aws/batch/job",
        log_stream="cromwell/default/job-b",
        at=T0 + timedelta(minutes=70),
    )
    assert run.last_change is not None
    assert run.last_change.job_id == "job-b"
    assert [(f.call, f.shard, f.job_id, f.return_code) for f in run.failures] == [
        ("germline.call", 1, "job-b", 137),
        ("germline.gather", -1, None, None),
    ]
    assert (run.failures_count, run.workflow_failures) == (2, ("Workflow failed",))
    task = RunViews(TABLE, ledger.client).task(FAILED_RUN, "job-c")
    assert task is not None
    assert (task.status, task.runnable_at, task.call_source) == (
        TaskStatus.RUNNABLE,
        T0 + timedelta(minutes=5),
        CallSource.TASK_ID_TAG,
    )


def test_every_field_the_monitor_writes_reaches_the_messages(ledger: Ledger) -> None:
    failed_run(ledger)
    stderr = FakeStderr({f"{BASE}call-call/shard-1/call-1-stderr.log": "java.lang.OutOfMemoryError"})
    by_kind = summaries(ledger, FAILED_RUN, stderr)
    assert set(by_kind) == {
        NotificationKind.SUBMITTED,
        NotificationKind.EARLY_FAILURE,
        NotificationKind.STUCK,
        NotificationKind.QUEUE_BLOCKED,
        NotificationKind.ENDED,
    }

    early = by_kind[NotificationKind.EARLY_FAILURE]
    (first,) = early.failed
    assert (first.job_id, first.call, first.shard, first.attempt) == ("job-b", "germline.call", 1, 1)
    assert (first.exit_code, first.queue, first.log_stream) == (137, SPOT, "cromwell/default/job-b")
    assert first.classification.kind is FailureKind.OUT_OF_MEMORY
    assert first.stderr_uri == f"{BASE}call-call/shard-1/call-1-stderr.log"
    assert early.counts == {"SUCCEEDED": 1, "FAILED": 1, "RUNNABLE": 1}

    stuck = by_kind[NotificationKind.STUCK].alert
    assert stuck is not None
    assert (stuck.job_id, stuck.call, stuck.queue, stuck.task_status) == (
        "job-c",
        "germline.joint",
        SPOT,
        "RUNNABLE",
    )
    assert (stuck.runnable_since, stuck.runnable_seconds) == (T0 + timedelta(minutes=5), 90 * 60)
    assert stuck.reason == "waiting for capacity"
    blocked = by_kind[NotificationKind.QUEUE_BLOCKED].alert
    assert blocked is not None
    assert blocked.runnable_seconds == 1500
    assert blocked.runnable_since == T0 + timedelta(minutes=5)  # the task item's runnable_at
    assert blocked.reason == "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - needs 128 vCPUs"
    mail = render_email(by_kind[NotificationKind.STUCK], region=REGION, now=T0 + timedelta(hours=3))
    assert "For:          1 h 30 min" in mail.body
    assert "Since:        2026-03-02 09:05:00 UTC" in mail.body

    ended = by_kind[NotificationKind.ENDED]
    assert (ended.status, ended.severity, ended.run.ended_at) == (
        RunStatus.FAILED,
        "failure",
        T0 + timedelta(hours=2),
    )
    assert ended.counts == {"SUCCEEDED": 1, "FAILED": 1, "RUNNABLE": 1}
    assert ended.failed_total == 1
    (failed,) = ended.failed
    assert failed.message == "Job germline.call:1:1 exited with return code 137"
    assert failed.stderr_tail == ("java.lang.OutOfMemoryError",)
    assert ended.cromwell_errors == ["Failed to evaluate inputs"]
    assert ended.causes == {"out_of_memory": 1, "cromwell_error": 1}
    assert ended.cost is not None
    assert ended.cost.tasks_priced == 2
    body = render_email(ended, region=REGION, now=T0 + timedelta(hours=3)).body
    assert "Job germline.call:1:1 exited with return code 137" in body
    assert "Failed to evaluate inputs" in body
    slack = render_slack(ended, region=REGION, now=T0 + timedelta(hours=3))
    assert "java.lang.OutOfMemoryError" in str(slack)

    submitted = by_kind[NotificationKind.SUBMITTED]
    assert (submitted.run.project, submitted.run.slack_channel) == ("genomics", "C0LAB")


def test_outputs_reach_the_end_message(ledger: Ledger) -> None:
    succeeded_run(ledger)
    ended = summaries(ledger, GOOD_RUN, FakeStderr())[NotificationKind.ENDED]
    assert (ended.status, ended.run.ended_by) == (RunStatus.SUCCEEDED, "reconciler")
    assert [(o.name, o.value) for o in ended.outputs] == [
        ("align.bam", f"s3://lab-out/align/{GOOD_RUN}/out.bam"),
        ("align.reads", "1200"),
    ]
    assert ended.outputs_total == 3
    body = render_email(ended, region=REGION, now=T0 + timedelta(hours=2)).body
    assert "Outputs (2 of 3)" in body


def test_a_run_failed_by_cromwell_alone_shows_the_workflow_failures(ledger: Ledger) -> None:
    """No task failed and no call was listed: the workflow's own failures are the message."""
    ledger.record(FAILED_RUN, "germline")
    report = {"failures": [], "failures_count": 0, "workflow_failures": ["Required input 'x' missing"]}
    assert ledger.runs.finish(FAILED_RUN, RunStatus.FAILED, report=report, source="callback")
    ended = summaries(ledger, FAILED_RUN, FakeStderr())[NotificationKind.ENDED]
    assert ended.cromwell_errors == ["Required input 'x' missing"]
    assert ended.causes == {"cromwell_error": 1}
