"""Fault injection on the monitor functions (Batch events through SQS, the callback, the
reconciler) against the moto ledger and the local Cromwell server.

Redelivery is modelled as SQS does it: a record listed in `batchItemFailures` comes back alone;
an invocation that dies returns its whole batch. After every scenario each run has one task item
per job, task counts that add up, and at most one ENDED outbox event.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from courier.cromwell import CromwellClient
from courier.ledger import RunLedger, RunRecord
from courier.ledger import schema as s
from courier.ledger._codec import from_item
from local.cromwell_api import CromwellTestServer
from monitor import batch_events, callback
from monitor.composition import (
    CallbackService,
    MonitorService,
    compose_batch_events,
    compose_callback,
    compose_reconciler,
)
from monitor.settings import CallbackSettings, MonitorSettings, ReconcilerSettings
from monitor.sweep import Reconciler
from tests.reliability.conftest import Tally
from tests.reliability.harness import FlakyClient, Killed, Tripwire, throttled
from tests.support.monitor_fixtures import Ctx, FakeTags, Job, function_url_request, lifecycle, sqs_batch
from tests.support.submit_fixtures import TABLE

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:No application metrics:UserWarning"),
]

ENV = {"LEDGER_TABLE": TABLE, "CROMWELL_URL": "http://cromwell.invalid:8000"}
TOKEN = "reliability-callback-token-0123456789abcdef0123"


class MonitorWorld:
    def __init__(self, ddb: Any, server: CromwellTestServer) -> None:
        self.ddb = ddb
        self.server = server
        self.delivered = 0

    def client(self) -> CromwellClient:
        return CromwellClient(self.server.url, timeout=(1.0, 2.0), max_attempts=2, sleep=lambda _s: None)

    def run(self, name: str, shards: int) -> tuple[str, list[Job]]:
        root = self.server.backend.add(name=name, status="Running").id
        RunLedger(TABLE, self.ddb).record_submitted(
            RunRecord(root, name, "courier-runs", f"runs/{name}/inputs.json", f"runs/{name}/")
        )
        return root, [Job(f"{name}.step", root, shard=i, root_name=name) for i in range(shards)]

    def service(self, ddb: Any = None) -> MonitorService:
        return compose_batch_events(
            MonitorSettings.model_validate(ENV),
            dynamodb=ddb or self.ddb,
            tags=FakeTags(),
        )

    def reconciler(self, *, minutes: int = 2) -> Reconciler:
        """The reconciler `minutes` from now: past the end checks the last task ends asked for."""
        later = datetime.now(UTC) + timedelta(minutes=minutes)
        settings = ReconcilerSettings.model_validate(ENV)
        return compose_reconciler(settings, dynamodb=self.ddb, cromwell=self.client(), clock=lambda: later)

    def callback(self, ddb: Any) -> CallbackService:
        settings = CallbackSettings.model_validate({**ENV, "CALLBACK_TOKEN_SECRET": "arn:x"})
        return compose_callback(settings, dynamodb=ddb, cromwell=self.client(), token=lambda: TOKEN)

    def deliver(self, batch: dict[str, Any], service: MonitorService) -> list[str]:
        """One invocation; the message ids SQS will deliver again."""
        self.delivered += len(batch["Records"])
        answer = batch_events.lambda_handler(batch, Ctx(), service=service)
        return [f["itemIdentifier"] for f in answer.get("batchItemFailures", [])]

    def partition(self, root: str) -> dict[str, dict[str, Any]]:
        page = self.ddb.query(
            TableName=TABLE,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": s.run_pk(root)}},
        )
        return {from_item(i)[s.SK]: from_item(i) for i in page["Items"]}

    def check(self, root: str, jobs: list[Job], *, final: str, ended: str | None) -> dict[str, int]:
        items = self.partition(root)
        run = items[s.RUN_SK]
        tasks = [v for k, v in items.items() if k.startswith("TASK#")]
        assert sorted(t["job_id"] for t in tasks) == sorted(j.job_id for j in jobs), "one task per job"
        assert all(t["status"] == final for t in tasks)
        counts = {
            k[len(s.TASK_COUNT_PREFIX) :]: int(v) for k, v in run.items() if k.startswith(s.TASK_COUNT_PREFIX)
        }
        assert {k: v for k, v in counts.items() if v} == {final: len(jobs)}, counts
        events = [v["kind"] for k, v in items.items() if k.startswith("EVENT#")]
        assert events.count("ENDED") == (1 if ended else 0)
        if ended:
            assert run["status"] == ended
        return {"ledger_items": len(items), "tasks": len(tasks), "outbox_events": len(events)}


@pytest.fixture
def mworld(aws: tuple[Any, Any], cromwell_server: CromwellTestServer) -> MonitorWorld:
    """The ledger table of `tests.support.submit_fixtures` and the local Cromwell server."""
    return MonitorWorld(aws[1], cromwell_server)


def all_events(jobs: list[Job], final: str = "SUCCEEDED") -> list[dict[str, Any]]:
    return [event for job in jobs for event in lifecycle(job, final=final)]


def test_throttled_records_come_back_alone_and_count_once(mworld: MonitorWorld, tally: Tally) -> None:
    """Three transactions of a batch are throttled; only their records are delivered again."""
    root, jobs = mworld.run("throttle", 4)
    batch = sqs_batch(all_events(jobs))
    flaky = FlakyClient(mworld.ddb).fail("transact_write_items", *(throttled("TransactWriteItems"),) * 3)
    failed = mworld.deliver(batch, mworld.service(flaky))
    assert len(failed) == 3
    again = {"Records": [r for r in batch["Records"] if r["messageId"] in failed]}
    assert mworld.deliver(again, mworld.service(flaky)) == []
    tally.set(events_delivered=mworld.delivered, **mworld.check(root, jobs, final="SUCCEEDED", ended=None))


def test_stopped_after_a_write_the_whole_batch_comes_back(mworld: MonitorWorld, tally: Tally) -> None:
    """The instance stops right after its second write; SQS returns the whole batch to another."""
    root, jobs = mworld.run("killed", 3)
    mworld.server.backend.set_status(root, "Succeeded")
    batch = sqs_batch(all_events(jobs))
    wire = Tripwire(mworld.ddb, "transact_write_items", when="after", skip=1)
    with pytest.raises(Killed):
        mworld.deliver(batch, mworld.service(wire))
    assert wire.fired == 1
    assert mworld.deliver(batch, mworld.service()) == []
    assert mworld.deliver(batch, mworld.service()) == [], "and once more, as a late duplicate"
    assert mworld.reconciler().sweep().ended == 1, "the end check the last task end asked for"
    counts = mworld.check(root, jobs, final="SUCCEEDED", ended="Succeeded")
    tally.set(events_delivered=mworld.delivered, **counts)


def test_two_instances_interleave_one_runs_events(mworld: MonitorWorld, tally: Tally) -> None:
    """Two instances, each with its own caches, get one run's events shuffled between them."""
    root, jobs = mworld.run("interleave", 6)
    events = all_events(jobs)
    random.Random(7).shuffle(events)
    first, second = mworld.service(), mworld.service()
    for i in range(0, len(events), 3):
        target = first if (i // 3) % 2 == 0 else second
        assert mworld.deliver(sqs_batch(events[i : i + 3]), target) == []
    tally.set(events_delivered=mworld.delivered, **mworld.check(root, jobs, final="SUCCEEDED", ended=None))


def test_cromwell_down_at_the_last_task_the_reconciler_ends_the_run(
    mworld: MonitorWorld, tally: Tally
) -> None:
    """Cromwell cannot be asked at the end check after the last task; the next sweep ends the run
    once."""
    root, jobs = mworld.run("down", 2)
    mworld.server.backend.set_status(root, "Succeeded")
    mworld.server.fail_next(100, status=503)
    assert mworld.deliver(sqs_batch(all_events(jobs)), mworld.service()) == []
    sweeper = mworld.reconciler()
    report = sweeper.sweep()
    assert (report.ended, len(report.errors)) == (0, 1)
    assert mworld.partition(root)[s.RUN_SK]["status"] == "Running", "not ended while Cromwell is down"
    mworld.server.clear_faults()
    assert sweeper.sweep().ended == 1
    assert sweeper.sweep().ended == 0
    tally.set(
        events_delivered=mworld.delivered, **mworld.check(root, jobs, final="SUCCEEDED", ended="Succeeded")
    )


def callback_request(workflow_id: str, state: str, token: str | None = TOKEN) -> dict[str, Any]:
    body = {"workflowId": workflow_id, "state": state, "outputs": {"wf.out": 1}, "failures": []}
    return function_url_request(body, token=token, b64=True)


def test_callback_ledger_failure_answers_500_and_cromwells_retry_ends_once(
    mworld: MonitorWorld, tally: Tally
) -> None:
    """The ledger write of a callback is throttled: 500, Cromwell retries, the run ends once."""
    root, jobs = mworld.run("callback", 1)
    assert mworld.deliver(sqs_batch(all_events(jobs)), mworld.service()) == []
    flaky = FlakyClient(mworld.ddb).fail("transact_write_items", throttled("TransactWriteItems"))
    service = mworld.callback(flaky)
    answers = []
    for _try in range(3):  # the first fails, the retry ends the run, a late repeat changes nothing
        mworld.delivered += 1
        answers.append(callback.lambda_handler(callback_request(root, "Succeeded"), Ctx(), service=service))
    assert [a["statusCode"] for a in answers] == [500, 200, 200]
    assert [json.loads(a["body"]).get("result") for a in answers[1:]] == ["ended", "already-ended"]
    tally.set(
        events_delivered=mworld.delivered, **mworld.check(root, jobs, final="SUCCEEDED", ended="Succeeded")
    )


def test_a_callback_without_the_token_changes_nothing_even_for_a_live_run(
    mworld: MonitorWorld, tally: Tally
) -> None:
    """A callback with no token, or a wrong one, for a run in progress writes nothing."""
    root, jobs = mworld.run("notoken", 1)
    assert mworld.deliver(sqs_batch(all_events(jobs)[:3]), mworld.service()) == []
    before = mworld.partition(root)
    counting = FlakyClient(mworld.ddb)
    service = mworld.callback(counting)
    for token in (None, "", TOKEN[:-1], TOKEN + "x", TOKEN.upper()):
        answer = callback.lambda_handler(
            callback_request(root, "Failed", token=token), Ctx(), service=service
        )
        assert answer["statusCode"] == 403
    assert sum(counting.calls.values()) == 0, "not even a read"
    assert mworld.server.calls("status") == 0
    assert mworld.partition(root) == before
    tally.set(events_delivered=5, ledger_items=len(before), outbox_events=0)
