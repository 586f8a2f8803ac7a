"""A large scatter through the monitor handler: shuffled events, one in ten delivered twice,
Cromwell retries (new jobId, attempt 2) and Batch retries (same jobId, RUNNING -> RUNNABLE),
spread over three containers (each with its own caches). The ledger must end exactly right.

The full 10,000-shard run (about 50,000 events) goes over the fake ledger of the unit tests; the
same scenario at a smaller scale runs against moto, and the benchmark's in-memory DynamoDB must
end it with the same items and the same calls as moto."""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from typing import Any

import boto3
import pytest
from moto import mock_aws

from courier.ledger import RunLedger, RunRecord
from courier.ledger._codec import query_items
from monitor import batch_events
from monitor.composition import MonitorService, compose_batch_events
from monitor.settings import MonitorSettings
from tests.bench.memory_dynamodb import MemoryDynamoDB
from tests.support.ledger_table import create_ledger_table
from tests.support.monitor_fakes import FakeLedger
from tests.support.monitor_fixtures import (
    T0,
    CountingClient,
    Ctx,
    FakeCromwell,
    FakeTags,
    Job,
    lifecycle,
    sqs_batch,
)

TABLE = "courier-ledger"
SETTINGS = MonitorSettings.model_validate({"LEDGER_TABLE": TABLE, "CROMWELL_URL": "http://cromwell:8000"})


def scenario(root: str, shards: int, seed: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Events of a `shards`-wide scatter and what the ledger must say at the end."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    expected_status: dict[str, str] = {}
    batch_retried = 0
    for shard in range(shards):
        job = Job("big.work", root, shard=shard, job_id=str(uuid.UUID(int=rng.getrandbits(128))))
        if shard % 97 == 5:  # Cromwell retry: attempt 1 fails, attempt 2 is a new job
            events += lifecycle(job, final="FAILED")
            expected_status[job.job_id] = "FAILED"
            job = Job(
                "big.work", root, shard=shard, attempt=2, job_id=str(uuid.UUID(int=rng.getrandbits(128)))
            )
        if shard % 89 == 7:  # Batch retry inside one job
            batch_retried += 1
            events += [
                job.event("RUNNABLE"),
                job.event("RUNNING"),
                job.event("RUNNABLE", batch_attempts=1),
                job.event("RUNNING", batch_attempts=1),
                job.event("SUCCEEDED", batch_attempts=1, exit_code=0),
            ]
        else:
            events += lifecycle(job)
        expected_status[job.job_id] = "SUCCEEDED"
    duplicates = [e for e in events if rng.random() < 0.1]
    events += duplicates
    rng.shuffle(events)
    counts = Counter(expected_status.values())
    expected = {
        "status": expected_status,
        "counts": counts,
        "duplicates": len(duplicates),
        "batch_retried": batch_retried,
    }
    return events, expected


def deliver(services: list[MonitorService], events: list[dict[str, Any]], batch: int = 100) -> int:
    failures = 0
    for n, start in enumerate(range(0, len(events), batch)):
        service = services[n % len(services)]
        answer = batch_events.lambda_handler(sqs_batch(events[start : start + batch]), Ctx(), service=service)
        failures += len(answer["batchItemFailures"])
    return failures


def run_scatter(client: Any, shards: int, seed: int = 7, containers: int = 3) -> dict[str, Any]:
    root = str(uuid.UUID(int=seed))
    RunLedger(TABLE, client, clock=lambda: T0).record_submitted(
        RunRecord(root, "big", "bucket", "runs/big/inputs.json", "runs/big")
    )
    events, expected = scenario(root, shards, seed)
    cromwell = FakeCromwell()
    cromwell.status_of[root] = "Running"
    counting = CountingClient(client)
    services = [
        compose_batch_events(SETTINGS, dynamodb=counting, tags=FakeTags(), clock=lambda: T0)
        for _ in range(containers)
    ]
    started = time.perf_counter()
    failures = deliver(services, events)
    elapsed = time.perf_counter() - started
    return {
        "root": root,
        "events": events,
        "expected": expected,
        "failures": failures,
        "elapsed": elapsed,
        "counting": counting,
        "cromwell": cromwell,
    }


def ledger_state(client: Any, root: str, table: str = TABLE) -> dict[str, dict[str, Any]]:
    request = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": f"RUN#{root}"}},
    }
    return {str(item["sk"]): item for item in query_items(client, request)}


def assert_exact(state: dict[str, dict[str, Any]], expected: dict[str, Any]) -> None:
    run = state["RUN"]
    tasks = {sk[5:]: item for sk, item in state.items() if sk.startswith("TASK#")}
    assert {job: t["status"] for job, t in tasks.items()} == expected["status"]
    counts = {k[6:]: v for k, v in run.items() if k.startswith("tasks_") and v}
    assert counts == dict(expected["counts"])
    assert all(v >= 0 for k, v in run.items() if k.startswith("tasks_"))
    assert run["status"] == "Running"
    failures = [sk for sk in state if sk.startswith("EVENT#EARLY_FAILURE")]
    if expected["counts"].get("FAILED"):  # Cromwell retried a shard: one early-failure alert
        assert run["first_failure"]["status"] == "FAILED"
        assert failures == ["EVENT#EARLY_FAILURE#first"]
        assert {t["attempt"] for t in tasks.values()} == {1, 2}
    else:
        assert "first_failure" not in run
        assert failures == []
    retried = [t for t in tasks.values() if t["batch_attempts"] == 1]
    assert len(retried) == expected["batch_retried"]
    assert all(t["status"] == "SUCCEEDED" for t in retried)


def fake_state(ledger: FakeLedger, root: str) -> dict[str, dict[str, Any]]:
    """The fake ledger's run partition in the shape of `ledger_state`."""
    run = ledger.runs[root]
    state: dict[str, dict[str, Any]] = {
        "RUN": {
            "status": run.status.value,
            **{f"tasks_{k}": v for k, v in run.counts.items()},
            **({"first_failure": run.first_failure.to_map()} if run.first_failure else {}),
        }
    }
    for (wid, job_id), task in ledger.tasks.items():
        if wid == root:
            w = task.write
            state[f"TASK#{job_id}"] = {
                "status": w.status.value,
                "attempt": w.attempt,
                "batch_attempts": w.batch_attempts,
            }
    state.update({sk: {} for sk in ledger.event_keys(root)})
    return state


def test_ten_thousand_shard_scatter_ends_exactly_right() -> None:
    """The monitor's decisions at full scale, over the fake ledger; the expressions themselves are
    held to moto on the same scenario below (and run at full scale by the monitor benchmark)."""
    root = str(uuid.UUID(int=7))
    ledger = FakeLedger(clock=lambda: T0)
    ledger.add_run(root)
    events, expected = scenario(root, 10_000, seed=7)
    assert len(events) >= 50_000
    cromwell = FakeCromwell()
    cromwell.status_of[root] = "Running"
    services = [
        compose_batch_events(SETTINGS, tags=FakeTags(), ledger=(ledger, ledger), clock=lambda: T0)
        for _ in range(3)
    ]
    assert deliver(services, events) == 0
    assert_exact(fake_state(ledger, root), expected)
    # At most one ledger write per event, stale beliefs included; no Cromwell call per event.
    assert ledger.calls["transition"] <= len(events)
    assert ledger.calls["put_event"] == 0
    assert cromwell.count("status") <= len(events) / 100


@pytest.mark.integration
def test_the_benchmarks_memory_backend_matches_moto_on_the_same_scatter() -> None:
    with mock_aws():
        moto = boto3.client("dynamodb", region_name="us-east-1")
        create_ledger_table(moto, TABLE)
        on_moto = run_scatter(moto, shards=60, seed=11)
        moto_state = ledger_state(moto, on_moto["root"])
    memory = MemoryDynamoDB(TABLE)
    in_memory = run_scatter(memory, shards=60, seed=11)
    memory_state = ledger_state(memory, in_memory["root"])
    assert on_moto["failures"] == in_memory["failures"] == 0
    assert_exact(moto_state, on_moto["expected"])
    assert moto_state == memory_state
    assert on_moto["counting"].counts == in_memory["counting"].counts
