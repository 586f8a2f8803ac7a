"""The ledger's typed records: lenient parsing of stored items, and payloads that round-trip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from courier.ledger.records import (
    ChannelDelivery,
    DeliveryState,
    EarlyFailurePayload,
    EndedPayload,
    OutboxEvent,
    QueueBlockedPayload,
    RejectedPayload,
    RunView,
    StuckPayload,
    TaskSummary,
    TaskView,
    parse_time,
)
from courier.models import CallSource, NotificationKind, RunStatus, TaskStatus


def test_run_view_reads_a_stored_run_item() -> None:
    run = RunView.from_item(
        {
            "pk": "RUN#wf-1",
            "sk": "RUN",
            "workflow_id": "wf-1",
            "workflow_name": "Align",
            "status": "Running",
            "source_bucket": "runs",
            "inputs_key": "runs/a/s1.inputs.json",
            "labels": {"project": "p1"},
            "routing": {},
            "submitted_at": "2026-01-01T00:00:00.000Z",
            "tasks_SUCCEEDED": 3,
            "tasks_RUNNING": 1,
            "tasks_FAILED": 0,
            "first_failure": {"job_id": "j1", "call": "Align.bwa", "shard": 2, "status": "FAILED"},
            "failures": [{"call": "Align.bwa", "shard": 2, "message": "boom"}, "junk"],
        }
    )
    assert run.status is RunStatus.RUNNING
    assert run.counts == {"SUCCEEDED": 3, "RUNNING": 1}
    assert run.total_tasks == 4
    assert run.finished_tasks == 3
    assert run.source == "s3://runs/runs/a/s1.inputs.json"
    assert run.project == "p1"
    assert run.first_failure == TaskSummary(job_id="j1", call="Align.bwa", shard=2, status=TaskStatus.FAILED)
    assert [f.message for f in run.failures] == ["boom"]
    assert run.failures[0].call_key == ("Align.bwa", 2, 1)


def test_run_view_takes_bad_values_as_absent() -> None:
    run = RunView.from_item(
        {"pk": "RUN#wf-2", "status": "Exploded", "submitted_at": "yesterday", "labels": 3}
    )
    assert run.workflow_id == "wf-2"
    assert run.status is None
    assert run.submitted_at is None
    assert run.labels == {}
    assert run.name == "(unnamed workflow)"


def test_task_view_from_item() -> None:
    task = TaskView.from_item(
        {
            "sk": "TASK#job-9",
            "call": "wf.t",
            "shard": "4",
            "attempt": 0,
            "status": "SUCCEEDED",
            "created_at": "2026-01-01T00:00:00Z",
            "started_at": "2026-01-01T00:01:00Z",
            "stopped_at": "2026-01-01T00:03:00Z",
            "vcpus": 2,
            "call_source": "job-name",
        }
    )
    assert task.job_id == "job-9"
    assert task.shard == 4
    assert task.attempt is None  # 0: not known
    assert task.from_job_name
    assert task.call_source is CallSource.JOB_NAME
    assert task.queued_for == timedelta(minutes=1)
    assert task.ran_for == timedelta(minutes=2)
    assert task.label == "wf.t[4]"


@pytest.mark.parametrize(
    "payload",
    [
        RejectedPayload(reasons=("bad input", "missing WDL")),
        EndedPayload(status=RunStatus.FAILED, source="callback"),
        EarlyFailurePayload(task=TaskSummary(job_id="j", call="w.t", exit_code=1), sub_workflow_id="sub"),
        StuckPayload(
            job_id="j",
            queue="q",
            call="w.t",
            shard=1,
            batch_attempts=1,
            runnable_since=datetime(2026, 1, 1, tzinfo=UTC),
            runnable_seconds=3600,
        ),
        QueueBlockedPayload(job_id="j", queue="q", status_reason="MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT"),
    ],
)
def test_payloads_round_trip_through_an_event_item(payload: object) -> None:
    kind = payload.kind  # type: ignore[attr-defined]
    item = {
        "pk": "RUN#wf",
        "sk": f"EVENT#{kind.value}#x"
        if kind in (NotificationKind.STUCK, NotificationKind.QUEUE_BLOCKED)
        else f"EVENT#{kind.value}",
        "kind": kind.value,
        "workflow_id": "wf",
        "created_at": "2026-01-01T00:00:00.000Z",
        "payload": payload.to_map(),  # type: ignore[attr-defined]
    }
    event = OutboxEvent.from_item(item)
    assert event.kind is kind
    assert event.payload == payload
    assert event.created_at == parse_time("2026-01-01T00:00:00Z")


def test_not_an_event() -> None:
    with pytest.raises(ValueError, match="not an outbox event"):
        OutboxEvent.from_item({"sk": "TASK#j", "kind": "TASK"})


def test_the_delivery_record_of_an_event() -> None:
    event = OutboxEvent.from_item(
        {
            "sk": "EVENT#ENDED",
            "pk": "RUN#wf",
            "kind": "ENDED",
            "payload": {"status": "Failed"},
            "delivery": {
                "sns": {"state": "sent", "token": "t", "attempts": 2, "sent_at": "2026-01-01T00:00:00Z"},
                "slack": {"state": "exploded", "attempts": "x", "last_error": "HTTP 503"},
            },
        }
    )
    assert event.delivery["sns"] == ChannelDelivery(
        state=DeliveryState.SENT, token="t", attempts=2, sent_at=datetime(2026, 1, 1, tzinfo=UTC)
    )
    assert event.delivery["sns"].sent
    assert event.delivery["slack"] == ChannelDelivery(last_error="HTTP 503")
    assert not event.delivery["slack"].sent


def test_an_event_from_a_stream_image() -> None:
    image = {
        "pk": {"S": "RUN#wf"},
        "sk": {"S": "EVENT#STUCK#job-1#2"},
        "type": {"S": "event"},
        "kind": {"S": "STUCK"},
        "workflow_id": {"S": "wf"},
        "payload": {"M": {"job_id": {"S": "job-1"}, "shard": {"N": "3"}, "runnable_seconds": {"N": "1800"}}},
    }
    event = OutboxEvent.from_stream_image(image)
    assert event is not None
    assert (event.kind, event.discriminator) == (NotificationKind.STUCK, "job-1#2")
    assert event.payload == StuckPayload(job_id="job-1", shard=3, runnable_seconds=1800)
    assert OutboxEvent.from_stream_image({**image, "type": {"S": "run"}}) is None
    unknown = {**image, "kind": {"S": "LATER"}, "sk": {"S": "EVENT#LATER"}}
    assert OutboxEvent.from_stream_image(unknown) is None
