"""The reconciler's sweep: /query in batches, ends what events could not, stuck tasks, adoption."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from courier.ledger import RunLedger, RunRecord
from courier.ledger._codec import from_item
from courier.ledger.records import EarlyFailurePayload, EndedPayload, QueueBlockedPayload, StuckPayload
from courier.ledger.tasks import TaskLedger
from courier.ledger.views import RunViews
from courier.models import NotificationKind, RunStatus, TaskStatus
from monitor import batch_events
from monitor.composition import MonitorService, compose_batch_events, compose_reconciler
from monitor.settings import MonitorSettings, ReconcilerSettings
from tests.support.monitor_fixtures import T0, Ctx, FakeCromwell, FakeTags, Job, sqs_batch

TABLE = "courier-ledger"
ENV = {"LEDGER_TABLE": TABLE, "CROMWELL_URL": "http://cromwell:8000", "STUCK_AFTER_MINUTES": "30"}


def wid(n: int) -> str:
    return str(uuid.UUID(int=n + 1))


def record(client: Any, workflow_id: str, clock: Any = None) -> None:
    RunLedger(TABLE, client, clock=clock or (lambda: T0)).record_submitted(
        RunRecord(workflow_id, "wf", "bucket", f"runs/{workflow_id}/inputs.json", f"runs/{workflow_id}")
    )


def run_item(client: Any, workflow_id: str) -> dict[str, Any]:
    raw = client.get_item(TableName=TABLE, Key={"pk": {"S": f"RUN#{workflow_id}"}, "sk": {"S": "RUN"}})[
        "Item"
    ]
    return from_item(raw)


def monitor_for(client: Any) -> MonitorService:
    return compose_batch_events(MonitorSettings.model_validate(ENV), dynamodb=client, tags=FakeTags())


def running(client: Any, root: str) -> tuple[FakeCromwell, MonitorService]:
    """The run recorded and Running in Cromwell, and a monitor service over both."""
    record(client, root)
    cromwell = FakeCromwell()
    cromwell.status_of[root] = "Running"
    return cromwell, monitor_for(client)


def outbox(client: Any, prefix: str) -> dict[str, dict[str, Any]]:
    """The ledger's items whose sort key starts with `prefix`, by sort key."""
    items = (from_item(raw) for raw in client.scan(TableName=TABLE)["Items"])
    return {item["sk"]: item for item in items if item["sk"].startswith(prefix)}


@pytest.fixture
def moto_client(aws: tuple[Any, Any]) -> Any:
    """The ledger table of `tests.support.submit_fixtures`."""
    return aws[1]


def test_stuck_runnable_task_alerts_once(moto_client: Any) -> None:
    root = wid(1)
    cromwell, monitor = running(moto_client, root)
    stuck = Job("wf.big", root, shard=4)
    fresh = Job("wf.big", root, shard=5)
    batch_events.lambda_handler(
        sqs_batch([stuck.event("RUNNABLE", at=T0), fresh.event("RUNNABLE", at=T0 + timedelta(minutes=50))]),
        Ctx(),
        service=monitor,
    )
    now = T0 + timedelta(minutes=55)
    sweep = compose_reconciler(
        ReconcilerSettings.model_validate(ENV), dynamodb=moto_client, cromwell=cromwell, clock=lambda: now
    )
    assert sweep.sweep().stuck_alerts == 1
    assert sweep.sweep().stuck_alerts == 0
    raw = moto_client.get_item(
        TableName=TABLE, Key={"pk": {"S": f"RUN#{root}"}, "sk": {"S": f"EVENT#STUCK#{stuck.job_id}"}}
    )["Item"]
    payload = from_item(raw)["payload"]
    assert payload["runnable_seconds"] == 55 * 60
    assert payload["shard"] == 4
    assert payload["queue"] == "cromwell-default"


def test_track_all_adopts_running_workflows_and_their_events_count(moto_client: Any) -> None:
    cromwell = FakeCromwell()
    stranger = wid(77)
    cromwell.status_of[stranger] = "Running"
    cromwell.names[stranger] = "other"
    settings = ReconcilerSettings.model_validate({**ENV, "TRACK_ALL_WORKFLOWS": "true"})
    report = compose_reconciler(settings, dynamodb=moto_client, cromwell=cromwell).sweep()
    assert report.adopted == 1
    item = run_item(moto_client, stranger)
    assert (item["origin"], item["status"], item["active_pk"]) == ("adopted", "Running", "ACTIVE")
    assert [r.workflow_id for r in RunLedger(TABLE, moto_client).list_active()] == [stranger]


def test_events_of_unknown_runs_are_ignored_unless_tracking_all(moto_client: Any) -> None:
    root = wid(9)
    job = Job("other.task", root)
    ignoring = monitor_for(moto_client)
    batch_events.lambda_handler(sqs_batch([job.event("RUNNING")]), Ctx(), service=ignoring)
    assert moto_client.scan(TableName=TABLE)["Count"] == 0
    adopting = compose_batch_events(
        MonitorSettings.model_validate({**ENV, "TRACK_ALL_WORKFLOWS": "true"}),
        dynamodb=moto_client,
        tags=FakeTags(),
    )
    batch_events.lambda_handler(sqs_batch([job.event("RUNNING")]), Ctx(), service=adopting)
    item = run_item(moto_client, root)
    assert (item["origin"], item["status"], item["tasks_RUNNING"], item["workflow_name"]) == (
        "adopted",
        "Running",
        1,
        "wf",
    )
    assert [r.workflow_id for r in RunLedger(TABLE, moto_client).list_active()] == [root]
    # submit recording the run afterwards keeps the counts and fills in the source
    record(moto_client, root)
    item = run_item(moto_client, root)
    assert (item["origin"], item["tasks_RUNNING"], item["inputs_key"]) == (
        "dropped",
        1,
        f"runs/{root}/inputs.json",
    )


def test_unattributed_jobs_are_never_dropped(moto_client: Any) -> None:
    job = Job("old.task", wid(5), generation=85)
    monitor = monitor_for(moto_client)
    batch_events.lambda_handler(
        sqs_batch([job.event("RUNNING"), job.event("RUNNABLE")]), Ctx(), service=monitor
    )
    kept = TaskLedger(TABLE, moto_client).pending_unattributed()
    assert [(k.job_id, k.status) for k in kept] == [(job.job_id, "RUNNING")]


def test_a_task_stuck_again_after_a_batch_retry_is_alerted_again(moto_client: Any) -> None:
    root = wid(2)
    cromwell, monitor = running(moto_client, root)
    job = Job("wf.big", root, shard=7)

    def sweep_at(minutes: int) -> int:
        now = T0 + timedelta(minutes=minutes)
        sweep = compose_reconciler(
            ReconcilerSettings.model_validate(ENV), dynamodb=moto_client, cromwell=cromwell, clock=lambda: now
        )
        return sweep.sweep().stuck_alerts

    def deliver(*events: dict[str, Any]) -> None:
        batch_events.lambda_handler(sqs_batch(list(events)), Ctx(), service=monitor)

    deliver(job.event("RUNNABLE", at=T0))
    assert sweep_at(40) == 1
    assert sweep_at(45) == 0
    # Batch retries the job (same jobId): it ran, was lost with its host, and waits again.
    deliver(job.event("RUNNING", at=T0 + timedelta(minutes=50)))
    deliver(
        job.event("RUNNABLE", at=T0 + timedelta(minutes=52), batch_attempts=1, reason="Host EC2 terminated")
    )
    assert sweep_at(70) == 0  # RUNNABLE again for 18 minutes only
    assert sweep_at(90) == 1
    assert sweep_at(95) == 0
    # A duplicate of the earlier RUNNABLE event changes nothing.
    deliver(job.event("RUNNABLE", at=T0))
    assert sweep_at(100) == 0
    alerts = {sk: item["payload"] for sk, item in outbox(moto_client, "EVENT#STUCK#").items()}
    assert sorted(alerts) == [f"EVENT#STUCK#{job.job_id}", f"EVENT#STUCK#{job.job_id}#1"]
    again = alerts[f"EVENT#STUCK#{job.job_id}#1"]
    assert (again["batch_attempts"], again["runnable_seconds"], again["shard"]) == (1, 38 * 60, 7)


def test_a_job_blocking_its_queue_again_after_a_batch_retry_is_alerted_again(moto_client: Any) -> None:
    root = wid(3)
    record(moto_client, root)
    monitor = monitor_for(moto_client)
    job = Job("wf.big", root)
    blocked = "Batch Job Queue Blocked"
    for event in (
        job.event("RUNNABLE", kind=blocked, reason="MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT"),
        job.event("RUNNABLE", kind=blocked, reason="MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT"),
        job.event("RUNNABLE", kind=blocked, batch_attempts=1, at=T0 + timedelta(minutes=9), reason="again"),
    ):
        batch_events.lambda_handler(sqs_batch([event]), Ctx(), service=monitor)
    keys = sorted(outbox(moto_client, "EVENT#QUEUE_BLOCKED#"))
    assert keys == [f"EVENT#QUEUE_BLOCKED#{job.job_id}", f"EVENT#QUEUE_BLOCKED#{job.job_id}#1"]


def test_what_the_monitor_writes_reads_back_as_the_typed_records(moto_client: Any) -> None:
    """The monitor's outbox payloads and run report, read through `RunViews` as notify and the
    other readers do: every field the monitor wrote comes back typed."""
    root = wid(11)
    record(moto_client, root)
    cromwell = FakeCromwell()
    cromwell.status_of[root] = "Running"
    monitor = monitor_for(moto_client)
    waiting, failing = Job("wf.wait", root, shard=2), Job("wf.fail", root)
    blocked_at = T0 + timedelta(minutes=3)
    batch_events.lambda_handler(
        sqs_batch(
            [
                waiting.event("RUNNABLE"),
                waiting.event("RUNNABLE", kind="Batch Job Queue Blocked", at=blocked_at, reason="no CE"),
                failing.event("FAILED", exit_code=3, reason="Essential container exited"),
            ]
        ),
        Ctx(),
        service=monitor,
    )
    now = T0 + timedelta(minutes=45)
    sweep = compose_reconciler(
        ReconcilerSettings.model_validate(ENV), dynamodb=moto_client, cromwell=cromwell, clock=lambda: now
    )
    assert sweep.sweep().stuck_alerts == 1
    cromwell.status_of[root] = "Failed"
    cromwell.metadata_of[root] = {  # /metadata filtered with FAILURE_KEYS
        "id": root,
        "failures": [{"message": "Workflow failed"}],
        "calls": {
            "wf.wait": [
                {"executionStatus": "Aborted", "shardIndex": 2, "attempt": 1, "jobId": waiting.job_id}
            ],
            "wf.fail": [
                {"executionStatus": "Failed", "shardIndex": -1, "attempt": 1, "jobId": failing.job_id}
            ],
        },
    }
    # A run with a task still waiting is asked about once it has been silent for
    # AskPolicy.busy_after (its Batch events would have said more).
    later = max(now, datetime.now(UTC)) + timedelta(hours=49)
    sweep = compose_reconciler(
        ReconcilerSettings.model_validate(ENV), dynamodb=moto_client, cromwell=cromwell, clock=lambda: later
    )
    assert sweep.sweep().ended == 1

    views = RunViews(TABLE, moto_client)
    payloads = {event.kind: event.payload for event in views.events(root)}
    stuck = payloads[NotificationKind.STUCK]
    assert isinstance(stuck, StuckPayload)
    assert (stuck.job_id, stuck.call, stuck.shard, stuck.runnable_since, stuck.runnable_seconds) == (
        waiting.job_id,
        "wf.wait",
        2,
        T0,
        45 * 60,
    )
    blocked = payloads[NotificationKind.QUEUE_BLOCKED]
    assert isinstance(blocked, QueueBlockedPayload)
    assert (blocked.job_id, blocked.status_reason, blocked.at) == (waiting.job_id, "no CE", blocked_at)
    early = payloads[NotificationKind.EARLY_FAILURE]
    assert isinstance(early, EarlyFailurePayload)
    assert early.task is not None
    assert (early.task.job_id, early.task.status, early.task.exit_code) == (
        failing.job_id,
        TaskStatus.FAILED,
        3,
    )
    ended = payloads[NotificationKind.ENDED]
    assert ended == EndedPayload(status=RunStatus.FAILED, source="reconciler")
    run = views.run(root)
    assert run is not None
    assert run.first_failure is not None
    assert run.first_failure.job_id == failing.job_id
    assert [(f.call, f.job_id, f.shard) for f in run.failures] == [("wf.fail", failing.job_id, -1)]
    assert run.workflow_failures == ("Workflow failed",)
