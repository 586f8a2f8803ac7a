"""Tasks the Batch events could not fully describe are filled in from Cromwell's filtered
metadata before the run's terminal transition: script-prefix tasks (Cromwell 91: call from the
job name, shard and attempt unknown) and jobs not tied yet (Cromwell 85-90)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from courier.errors import CromwellUnavailable
from courier.ledger import RunLedger, RunRecord
from courier.ledger._codec import from_item
from courier.ledger.tasks import TaskLedger
from courier.models import RunStatus
from monitor import batch_events
from monitor.composition import CallbackService, compose_batch_events, compose_callback, compose_reconciler
from monitor.ending import EndSource
from monitor.settings import CallbackSettings, MonitorSettings, ReconcilerSettings
from tests.support.monitor_fixtures import T0, Ctx, FakeCromwell, FakeTags, Job, lifecycle, sqs_batch

pytestmark = pytest.mark.integration

TABLE = "courier-ledger"
ENV = {"LEDGER_TABLE": TABLE, "CROMWELL_URL": "http://cromwell:8000"}
KEYS = ("jobId", "shardIndex", "attempt", "subWorkflowId")
FILLED = ("call", "shard", "attempt", "call_source", "workflow_id")


def wid(n: int) -> str:
    return str(uuid.UUID(int=0xF111 + n))


def callback_for(client: Any, cromwell: FakeCromwell) -> CallbackService:
    return compose_callback(
        CallbackSettings.model_validate({**ENV, "CALLBACK_TOKEN_SECRET": "arn:secret"}),
        dynamodb=client,
        cromwell=cromwell,
        token=lambda: "token",
    )


class World:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.cromwell = FakeCromwell()
        self.monitor = compose_batch_events(
            MonitorSettings.model_validate(ENV), dynamodb=client, tags=FakeTags()
        )
        self.callback = callback_for(client, self.cromwell)

    def record(self, root: str, name: str = "big") -> None:
        RunLedger(TABLE, self.client, clock=lambda: T0).record_submitted(
            RunRecord(root, name, "bucket", f"runs/{root}/inputs.json", f"runs/{root}")
        )
        self.cromwell.status_of[root] = "Running"

    def deliver(self, events: list[dict[str, Any]]) -> None:
        for start in range(0, len(events), 100):
            answer = batch_events.lambda_handler(
                sqs_batch(events[start : start + 100]), Ctx(), service=self.monitor
            )
            assert answer == {"batchItemFailures": []}

    def tasks(self, root: str) -> dict[str, dict[str, Any]]:
        page = self.client.query(
            TableName=TABLE,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :t)",
            ExpressionAttributeValues={":pk": {"S": f"RUN#{root}"}, ":t": {"S": "TASK#"}},
        )
        return {from_item(i)["job_id"]: from_item(i) for i in page["Items"]}

    def item(self, root: str, sk: str) -> dict[str, Any] | None:
        raw = self.client.get_item(TableName=TABLE, Key={"pk": {"S": f"RUN#{root}"}, "sk": {"S": sk}})
        return from_item(raw["Item"]) if "Item" in raw else None


@pytest.fixture
def world(aws: tuple[Any, Any]) -> World:
    """Over the ledger table of `tests.support.submit_fixtures`."""
    return World(aws[1])


def cromwell91_scatter(root: str, sub: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Three shards (shard 1 fails, then its attempt 2 succeeds) and a sub-workflow call, as
    Cromwell 91 submits them: no tags, the run's id in the script prefix."""
    jobs = [
        Job("big.work", root, shard=n, job_id=str(uuid.UUID(int=100 + n)), generation=91) for n in range(3)
    ]
    retry = Job("big.work", root, shard=1, attempt=2, job_id=str(uuid.UUID(int=200)), generation=91)
    nested = Job("inner.step", root, workflow_id=sub, job_id=str(uuid.UUID(int=300)), generation=91)
    events = lifecycle(jobs[0]) + lifecycle(jobs[2]) + lifecycle(nested)
    events += lifecycle(jobs[1], final="FAILED")
    events += lifecycle(retry, start=T0 + timedelta(minutes=5))
    entries = [
        {"jobId": job.job_id, "shardIndex": job.shard, "attempt": job.attempt} for job in [*jobs, retry]
    ]
    metadata = {
        "id": root,
        "calls": {
            "big.work": entries,
            "big.inner": [
                {
                    "shardIndex": -1,
                    "attempt": 1,
                    "subWorkflowId": sub,
                    "subWorkflowMetadata": {
                        "id": sub,
                        "calls": {"inner.step": [{"jobId": nested.job_id, "shardIndex": -1, "attempt": 1}]},
                    },
                }
            ],
        },
    }
    return events, metadata


def test_script_prefix_tasks_are_filled_in_before_the_run_ends(world: World) -> None:
    root, sub = wid(1), wid(2)
    world.record(root)
    events, metadata = cromwell91_scatter(root, sub)
    world.deliver(events)
    before = world.tasks(root)
    assert {(t["call"], t["shard"], t["attempt"], t["call_source"]) for t in before.values()} == {
        ("big_work", -1, 0, "job-name"),
        ("inner_step", -1, 0, "job-name"),
    }
    world.cromwell.metadata_of[root] = metadata
    world.cromwell.status_of[root] = "Succeeded"
    world.cromwell.calls.clear()
    outcome = world.callback.ender.end(root, RunStatus.SUCCEEDED, source=EndSource.CALLBACK)
    assert outcome.value == "ended"
    after = world.tasks(root)
    shown = sorted(
        (t["call"], t["shard"], t["attempt"], t["status"], t["workflow_id"]) for t in after.values()
    )
    assert shown == [
        ("big.work", 0, 1, "SUCCEEDED", root),
        ("big.work", 1, 1, "FAILED", root),
        ("big.work", 1, 2, "SUCCEEDED", root),
        ("big.work", 2, 1, "SUCCEEDED", root),
        ("inner.step", -1, 1, "SUCCEEDED", sub),
    ]
    assert {t["call_source"] for t in after.values()} == {"metadata"}
    # Everything else about the tasks is as the events left it.
    for job_id, task in after.items():
        assert {k: v for k, v in task.items() if k not in FILLED} == {
            k: v for k, v in before[job_id].items() if k not in FILLED
        }
    assert world.cromwell.count("metadata") == 1
    assert ("metadata", (root, KEYS, ())) in world.cromwell.calls
    run = world.item(root, "RUN")
    assert run is not None
    assert (run["status"], run["tasks_SUCCEEDED"], run["tasks_FAILED"]) == ("Succeeded", 4, 1)
    # Ending again (the reconciler after the callback) asks nothing more and writes nothing.
    assert world.callback.ender.end(root, RunStatus.SUCCEEDED, source=EndSource.RECONCILER).value == (
        "already-ended"
    )
    assert world.cromwell.count("metadata") == 1


def test_the_reconciler_ending_a_run_fills_it_in_too(world: World) -> None:
    root, sub = wid(3), wid(4)
    world.record(root)
    events, metadata = cromwell91_scatter(root, sub)
    world.deliver(events)
    world.cromwell.metadata_of[root] = metadata
    world.cromwell.status_of[root] = "Failed"
    # The last task end asked for an end check a minute later; the sweep after it makes it.
    later = datetime.now(UTC) + timedelta(minutes=2)
    sweep = compose_reconciler(
        ReconcilerSettings.model_validate(ENV),
        dynamodb=world.client,
        cromwell=world.cromwell,
        clock=lambda: later,
    )
    report = sweep.sweep()
    assert report.ended == 1
    failed = [t for t in world.tasks(root).values() if t["status"] == "FAILED"]
    assert [(t["call"], t["shard"], t["attempt"]) for t in failed] == [("big.work", 1, 1)]
    assert world.item(root, "EVENT#ENDED") is not None


def test_runs_that_need_nothing_cost_no_metadata_call(world: World) -> None:
    root = wid(5)
    world.record(root)
    world.deliver(lifecycle(Job("big.work", root, shard=0)) + lifecycle(Job("big.work", root, shard=1)))
    world.cromwell.status_of[root] = "Succeeded"
    world.cromwell.calls.clear()
    world.callback.ender.end(root, RunStatus.SUCCEEDED, source=EndSource.CALLBACK)
    assert world.cromwell.count("metadata") == 0
    assert world.item(root, "RUN")["status"] == "Succeeded"  # type: ignore[index]


def test_jobs_of_other_runs_stay_unattributed(world: World) -> None:
    mine, other = wid(6), wid(7)
    world.record(mine)
    world.record(other)
    own = Job("big.work", mine, job_id=str(uuid.UUID(int=600)), generation=85)
    stranger = Job("big.work", other, job_id=str(uuid.UUID(int=700)), generation=85)
    world.deliver(lifecycle(own) + lifecycle(stranger))
    world.cromwell.metadata_of[mine] = {
        "id": mine,
        "calls": {"big.work": [{"jobId": own.job_id, "shardIndex": -1, "attempt": 1}]},
    }
    world.callback.ender.end(mine, RunStatus.SUCCEEDED, source=EndSource.CALLBACK)
    assert [(t["call"], t["status"]) for t in world.tasks(mine).values()] == [("big.work", "SUCCEEDED")]
    ledger = TaskLedger(TABLE, world.client)
    assert [j.job_id for j in ledger.pending_unattributed()] == [stranger.job_id]
    assert world.tasks(other) == {}


class DownForMetadata(FakeCromwell):
    def metadata(self, workflow_id: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("metadata", workflow_id))
        raise CromwellUnavailable("Cromwell is restarting")


def test_the_run_still_ends_when_cromwell_cannot_say(world: World) -> None:
    root = wid(8)
    world.record(root)
    world.cromwell = DownForMetadata()
    world.callback = callback_for(world.client, world.cromwell)
    world.deliver(lifecycle(Job("big.work", root, generation=91)))
    outcome = world.callback.ender.end(root, RunStatus.SUCCEEDED, source=EndSource.CALLBACK)
    assert outcome.value == "ended"
    (task,) = world.tasks(root).values()
    assert (task["call"], task["call_source"], task["status"]) == ("big_work", "job-name", "SUCCEEDED")
