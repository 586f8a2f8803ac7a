"""Every sample event in events/monitor/ through its handler, against the moto ledger, with the
behaviour each Cromwell generation's events must produce."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("CALLBACK_TOKEN_SECRET", "arn:aws:secretsmanager:us-east-1:123456789012:secret:token")

from courier.ledger import RunLedger, RunRecord
from courier.ledger._codec import from_item
from courier.ledger.tasks import TaskLedger
from monitor import batch_events, callback, schedule
from monitor.composition import CallbackService, compose_batch_events, compose_callback, compose_reconciler
from monitor.settings import CallbackSettings, MonitorSettings, ReconcilerSettings
from monitor.sweep import Reconciler
from tests.support.monitor_fixtures import (
    CALLBACK_TOKEN,
    ROOT85,
    ROOT88,
    ROOT91,
    ROOT92,
    ROOT_ABORT,
    ROOT_BLOCKED,
    ROOT_RETRY,
    SUB92,
    Ctx,
    FakeCromwell,
    FakeTags,
    Job,
    sample_id,
)

pytestmark = pytest.mark.integration

EVENTS = Path(__file__).resolve().parents[2] / "events" / "monitor"
TABLE = "courier-ledger"
ENV = {"LEDGER_TABLE": TABLE, "CROMWELL_URL": "http://cromwell:8000"}


def load(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


class World:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.cromwell = FakeCromwell()
        qc = Job("rnaseq.qc", ROOT92, job_id=sample_id("qc-0"), root_name="rnaseq")
        self.tags = FakeTags({qc.arn: qc.tags()})
        self.runs = RunLedger(TABLE, client)
        self.tasks = TaskLedger(TABLE, client)
        for root, name in [
            (ROOT92, "rnaseq"),
            (ROOT91, "hello"),
            (ROOT85, "hello"),
            (ROOT88, "hello"),
            (ROOT_RETRY, "rnaseq"),
            (ROOT_ABORT, "rnaseq"),
            (ROOT_BLOCKED, "rnaseq"),
        ]:
            self.runs.record_submitted(
                RunRecord(root, name, "bucket", f"runs/{name}/inputs.json", f"runs/{name}")
            )
            self.cromwell.status_of[root] = "Running"
            self.cromwell.names[root] = name
        self.monitor = compose_batch_events(
            MonitorSettings.model_validate(ENV), dynamodb=client, tags=self.tags
        )

    def monitor_event(self, name: str) -> dict[str, Any]:
        return batch_events.lambda_handler(load(name), Ctx(), service=self.monitor)

    def sweep_later(self, *, minutes: int) -> Reconciler:
        """The reconciler, `minutes` from now."""
        later = datetime.now(UTC) + timedelta(minutes=minutes)
        settings = ReconcilerSettings.model_validate(ENV)
        return compose_reconciler(settings, dynamodb=self.client, cromwell=self.cromwell, clock=lambda: later)

    def callback_service(self) -> CallbackService:
        return compose_callback(
            CallbackSettings.model_validate({**ENV, "CALLBACK_TOKEN_SECRET": "arn:secret"}),
            dynamodb=self.client,
            cromwell=self.cromwell,
            token=lambda: CALLBACK_TOKEN,
        )

    def partition(self, root: str) -> dict[str, dict[str, Any]]:
        page = self.client.query(
            TableName=TABLE,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"RUN#{root}"}},
        )
        return {from_item(i)["sk"]: from_item(i) for i in page["Items"]}

    def tasks_of(self, root: str) -> list[dict[str, Any]]:
        return [v for k, v in self.partition(root).items() if k.startswith("TASK#")]

    def scan(self) -> list[dict[str, Any]]:
        return sorted(
            (from_item(i) for i in self.client.scan(TableName=TABLE)["Items"]),
            key=lambda i: (i["pk"], i["sk"]),
        )


@pytest.fixture
def world(aws: tuple[Any, Any]) -> World:
    """The sample runs in the ledger table of `tests.support.submit_fixtures`."""
    return World(aws[1])


def test_every_sample_event_file_is_covered_here() -> None:
    covered = {
        "sqs-cromwell92-scatter-tags.json",
        "sqs-cromwell92-subworkflow.json",
        "sqs-cromwell91-script-prefix.json",
        "sqs-cromwell85-no-tags.json",
        "sqs-cromwell88-no-tags.json",
        "callback-cromwell88-succeeded.json",
        "sqs-batch-retry.json",
        "sqs-cromwell-retry.json",
        "sqs-abort.json",
        "sqs-queue-blocked.json",
        "callback-succeeded.json",
        "callback-failed-base64.json",
        "scheduled-reconcile.json",
        "env.json",
    }
    assert {p.name for p in EVENTS.glob("*.json")} == covered
    env = load("env.json")
    assert set(env) == {"MonitorFunction", "CallbackFunction", "ReconcilerFunction"}
    MonitorSettings.model_validate(env["MonitorFunction"])
    CallbackSettings.model_validate(env["CallbackFunction"])
    ReconcilerSettings.model_validate(env["ReconcilerFunction"])


def test_cromwell92_scatter_with_tags(world: World) -> None:
    assert world.monitor_event("sqs-cromwell92-scatter-tags.json") == {"batchItemFailures": []}
    tasks = sorted(world.tasks_of(ROOT92), key=lambda t: t["shard"])
    assert [(t["call"], t["shard"], t["attempt"], t["status"]) for t in tasks] == [
        ("rnaseq.align", 0, 1, "SUCCEEDED"),
        ("rnaseq.align", 1, 1, "RUNNING"),
        ("rnaseq.align", 2, 1, "RUNNING"),
    ]
    assert all(t["attribution"] == "event-tags" for t in tasks)
    assert tasks[0]["vcpus"] == 2
    assert tasks[0]["memory_mib"] == 4096
    assert tasks[0]["exit_code"] == 0
    assert tasks[0]["log_group"] == "/aws/batch/job"
    assert tasks[0]["log_stream"].startswith("cromwell/default/")
    run = world.partition(ROOT92)["RUN"]
    assert (run["status"], run["tasks_RUNNING"], run["tasks_SUCCEEDED"], run.get("tasks_RUNNABLE", 0)) == (
        "Running",
        2,
        1,
        0,
    )
    assert world.cromwell.calls == []  # two tasks still run: no status check


def test_cromwell92_subworkflow_and_tags_read_from_batch(world: World) -> None:
    assert world.monitor_event("sqs-cromwell92-subworkflow.json") == {"batchItemFailures": []}
    tasks = {t["call"]: t for t in world.tasks_of(ROOT92)}
    assert tasks["quant.salmon"]["workflow_id"] == SUB92
    assert tasks["quant.salmon"]["root_workflow_id"] == ROOT92
    assert tasks["quant.salmon"]["status"] == "SUCCEEDED"
    assert tasks["rnaseq.qc"]["attribution"] == "job-tags"
    assert world.tags.calls == 1  # only the job whose event carried no Cromwell tags


def test_cromwell91_script_prefix(world: World) -> None:
    world.monitor_event("sqs-cromwell91-script-prefix.json")
    (task,) = world.tasks_of(ROOT91)
    assert (task["call"], task["shard"], task["attempt"]) == ("hello_say", -1, 0)
    assert (task["attribution"], task["call_source"]) == ("script-prefix", "job-name")
    # Its only task ended: no Cromwell call now, one end check a minute later.
    assert world.cromwell.calls == []
    run = world.partition(ROOT91)["RUN"]
    assert run["end_check_at"] > run["updated_at"]
    report = world.sweep_later(minutes=2).sweep()
    assert (report.asked, report.ended) == (1, 0)  # Cromwell still says Running
    assert world.cromwell.count("query") == 1
    assert world.partition(ROOT91)["RUN"]["silent_asks"] == 1


def test_cromwell85_jobs_wait_unattributed_then_the_reconciler_ties_them(world: World) -> None:
    world.monitor_event("sqs-cromwell85-no-tags.json")
    assert world.tasks_of(ROOT85) == []
    job_id = sample_id("say-85")
    kept = world.tasks.get_unattributed(job_id)
    assert kept is not None
    assert kept.status == "RUNNING"
    assert kept.job_name == "hello_say"
    world.cromwell.metadata_of[ROOT85] = {
        "id": ROOT85,
        "calls": {"hello.say": [{"jobId": job_id, "shardIndex": -1, "attempt": 1}]},
    }
    sweep = compose_reconciler(
        ReconcilerSettings.model_validate(ENV), dynamodb=world.client, cromwell=world.cromwell
    )
    report = schedule.lambda_handler(load("scheduled-reconcile.json"), Ctx(), service=sweep)
    assert report["attributed"] == 1
    (task,) = world.tasks_of(ROOT85)
    assert (task["call"], task["shard"], task["attempt"], task["status"]) == ("hello.say", -1, 1, "RUNNING")
    assert world.tasks.get_unattributed(job_id).attributed_to == ROOT85
    # Later events of that job are tied through the pointer, without Cromwell.
    world.cromwell.calls.clear()
    job = Job("hello.say", ROOT85, job_id=job_id, generation=85)
    batch_events.lambda_handler(
        {
            "Records": [
                dict(
                    load("sqs-cromwell85-no-tags.json")["Records"][0],
                    body=json.dumps(job.event("SUCCEEDED", exit_code=0)),
                )
            ]
        },
        Ctx(),
        service=world.monitor,
    )
    (task,) = world.tasks_of(ROOT85)
    assert task["status"] == "SUCCEEDED"
    assert task["call"] == "hello.say"
    assert world.partition(ROOT85)["RUN"]["tasks_SUCCEEDED"] == 1


def test_batch_retry_moves_back_to_runnable_once_and_counts_once(world: World) -> None:
    world.monitor_event("sqs-batch-retry.json")
    (task,) = world.tasks_of(ROOT_RETRY)
    assert (task["status"], task["batch_attempts"]) == ("SUCCEEDED", 1)
    run = world.partition(ROOT_RETRY)["RUN"]
    assert run["tasks_SUCCEEDED"] == 1
    assert all(run[k] == 0 for k in run if k.startswith("tasks_") and k != "tasks_SUCCEEDED")


def test_cromwell_retry_is_a_new_task_and_raises_one_early_failure(world: World) -> None:
    world.monitor_event("sqs-cromwell-retry.json")
    world.monitor_event("sqs-cromwell-retry.json")  # redelivered whole
    tasks = sorted(world.tasks_of(ROOT_RETRY), key=lambda t: t["attempt"])
    assert [(t["attempt"], t["status"], t.get("exit_code")) for t in tasks] == [
        (1, "FAILED", 1),
        (2, "SUCCEEDED", 0),
    ]
    part = world.partition(ROOT_RETRY)
    assert (part["RUN"]["tasks_FAILED"], part["RUN"]["tasks_SUCCEEDED"]) == (1, 1)
    assert part["RUN"]["first_failure"]["job_id"] == sample_id("cromwell-retry-1")
    early = part["EVENT#EARLY_FAILURE#first"]
    assert early["payload"]["task"]["call"] == "rnaseq.align"
    assert early["payload"]["task"]["shard"] == 3


def test_abort_records_failed_tasks_and_ends_the_run_once_cromwell_says_aborted(world: World) -> None:
    world.cromwell.status_of[ROOT_ABORT] = "Aborted"
    world.monitor_event("sqs-abort.json")
    assert world.cromwell.calls == []  # the end check waits a minute
    assert world.sweep_later(minutes=2).sweep().ended == 1
    part = world.partition(ROOT_ABORT)
    assert {t["status_reason"] for k, t in part.items() if k.startswith("TASK#")} == {"cromwell abort called"}
    assert part["RUN"]["status"] == "Aborted"
    assert part["RUN"]["ended_by"] == "end-check"
    assert "active_pk" not in part["RUN"]
    assert part["EVENT#ENDED"]["payload"]["status"] == "Aborted"
    assert world.cromwell.count("query") == 1


def test_queue_blocked_raises_one_alert(world: World) -> None:
    world.monitor_event("sqs-queue-blocked.json")
    world.monitor_event("sqs-queue-blocked.json")
    part = world.partition(ROOT_BLOCKED)
    alert = part[f"EVENT#QUEUE_BLOCKED#{sample_id('blocked')}"]
    assert alert["payload"]["queue"] == "cromwell-default"
    assert alert["payload"]["status_reason"].startswith("MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT")
    assert alert["payload"]["runnable_seconds"] == 600
    assert alert["payload"]["call"] == "rnaseq.align"
    assert [k for k in part if k.startswith("EVENT#QUEUE_BLOCKED")] == [
        f"EVENT#QUEUE_BLOCKED#{sample_id('blocked')}"
    ]


def test_callback_files_end_their_runs(world: World) -> None:
    service = world.callback_service()
    answer = callback.lambda_handler(load("callback-succeeded.json"), Ctx(), service=service)
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"])["result"] == "ended"
    run = world.partition(ROOT91)["RUN"]
    assert run["status"] == "Succeeded"
    assert run["ended_by"] == "callback"
    assert run["outputs"] == {"hello.say.out": f"s3://cromwell/hello/{ROOT91}/call-say/out.txt"}
    world.cromwell.failed_of[ROOT_RETRY] = {
        "id": ROOT_RETRY,
        "calls": {
            "rnaseq.align": [
                {
                    "executionStatus": "Failed",
                    "shardIndex": 3,
                    "attempt": 2,
                    "jobId": "j-2",
                    "returnCode": 1,
                    "failures": [{"message": "exited with return code 1", "causedBy": []}],
                }
            ]
        },
    }
    answer = callback.lambda_handler(load("callback-failed-base64.json"), Ctx(), service=service)
    assert answer["statusCode"] == 200
    run = world.partition(ROOT_RETRY)["RUN"]
    assert run["status"] == "Failed"
    assert run["failures"][0]["message"] == "exited with return code 1"
    assert run["failures_count"] == 1
    assert run["workflow_failures"] == ["Workflow failed", "Job rnaseq.align:3:2 exited with return code 1"]
    again = callback.lambda_handler(load("callback-failed-base64.json"), Ctx(), service=service)
    assert json.loads(again["body"])["result"] == "already-ended"
    assert [k for k in world.partition(ROOT_RETRY) if k == "EVENT#ENDED"] == ["EVENT#ENDED"]


def test_scheduled_event_sweeps_and_ends_call_cached_runs(world: World) -> None:
    world.cromwell.status_of[ROOT91] = "Succeeded"  # served from call cache: no Batch event at all
    world.cromwell.outputs_of[ROOT91] = {"hello.say.out": "cached"}
    sweep = world.sweep_later(minutes=20)  # silent for longer than AskPolicy.idle_after
    report = schedule.lambda_handler(load("scheduled-reconcile.json"), Ctx(), service=sweep)
    assert report["active"] == 7
    assert report["ended"] == 1
    run = world.partition(ROOT91)["RUN"]
    assert run["status"] == "Succeeded"
    assert run["ended_by"] == "reconciler"
    assert run["outputs_count"] == 1
    assert world.cromwell.count("query") == 1


def test_cromwell88_run_ended_by_its_callback_gets_its_jobs_tied_first(world: World) -> None:
    """Cromwell 86-90: no tags, no script prefix, but a callback that arrives within seconds,
    before any sweep could tie the jobs. The end of the run ties them from the filtered metadata."""
    assert world.monitor_event("sqs-cromwell88-no-tags.json") == {"batchItemFailures": []}
    assert world.tasks_of(ROOT88) == []
    jobs = [sample_id("say88-0"), sample_id("say88-1")]
    assert [world.tasks.get_unattributed(j).status for j in jobs]  # type: ignore[union-attr] == ["SUCCEEDED", "SUCCEEDED"]
    assert world.cromwell.calls == []  # the event path never calls Cromwell
    world.cromwell.metadata_of[ROOT88] = {
        "id": ROOT88,
        "calls": {
            "hello.say": [
                {"jobId": jobs[0], "shardIndex": 0, "attempt": 1},
                {"jobId": jobs[1], "shardIndex": 1, "attempt": 1},
            ]
        },
    }
    service = world.callback_service()
    answer = callback.lambda_handler(load("callback-cromwell88-succeeded.json"), Ctx(), service=service)
    assert json.loads(answer["body"])["result"] == "ended"
    part = world.partition(ROOT88)
    tasks = sorted((v for k, v in part.items() if k.startswith("TASK#")), key=lambda t: t["shard"])
    assert [(t["call"], t["shard"], t["attempt"], t["status"]) for t in tasks] == [
        ("hello.say", 0, 1, "SUCCEEDED"),
        ("hello.say", 1, 1, "SUCCEEDED"),
    ]
    assert part["RUN"]["tasks_SUCCEEDED"] == 2
    assert part["RUN"]["status"] == "Succeeded"
    assert part["RUN"]["outputs"]["hello.greetings"][1].endswith("shard-1/out.txt")
    assert [world.tasks.get_unattributed(j).attributed_to for j in jobs]  # type: ignore[union-attr] == [ROOT88, ROOT88]
    # One filtered metadata call; the outputs came with the callback's body.
    assert world.cromwell.calls == [
        ("metadata", (ROOT88, ("jobId", "shardIndex", "attempt", "subWorkflowId"), ()))
    ]
    again = callback.lambda_handler(load("callback-cromwell88-succeeded.json"), Ctx(), service=service)
    assert json.loads(again["body"])["result"] == "already-ended"
    assert world.cromwell.count("metadata") == 1
