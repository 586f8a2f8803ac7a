"""Benchmark of the monitor: events per second through the handler for a 10,000-shard scatter
(about 50,000 shuffled events, one in ten twice), DynamoDB calls per event (counted by a
wrapping client), and Cromwell calls per reconciler sweep over 1,000 active runs.

`run(report)` fills `report["monitor"]`; the ledger is the in-memory DynamoDB of the test suite
(the same scenario is checked against moto by tests/integration/test_monitor_scatter.py)."""

from __future__ import annotations

import time
from typing import Any

from courier.ledger import RunLedger, RunRecord
from monitor.adapters import reconciler
from monitor.settings import ReconcilerSettings
from tests.integration.test_monitor_scatter import TABLE, ledger_state, run_scatter
from tests.support.monitor_fixtures import T0, CountingClient, FakeCromwell, MemoryDynamoDB


def scatter(shards: int = 10_000) -> dict[str, Any]:
    client = MemoryDynamoDB(TABLE)
    result = run_scatter(client, shards=shards)
    counting: CountingClient = result["counting"]
    events = len(result["events"])
    state = ledger_state(client, result["root"])
    return {
        "shards": shards,
        "events": events,
        "duplicates": result["expected"]["duplicates"],
        "seconds": round(result["elapsed"], 2),
        "events_per_second": round(events / result["elapsed"]),
        "dynamodb_calls": dict(counting.counts),
        "dynamodb_writes_per_event": round(counting.writes / events, 3),
        "dynamodb_reads_per_event": round(counting.reads / events, 3),
        "cromwell_calls": len(result["cromwell"].calls),
        "tasks": sum(1 for sk in state if sk.startswith("TASK#")),
        "batch_item_failures": result["failures"],
    }


def sweep(runs: int = 1000) -> dict[str, Any]:
    client = MemoryDynamoDB(TABLE)
    cromwell = FakeCromwell()
    ledger = RunLedger(TABLE, client, clock=lambda: T0)
    for n in range(runs):
        wid = f"00000000-0000-4000-8000-{n:012d}"
        ledger.record_submitted(RunRecord(wid, "wf", "b", f"k{n}", f"f{n}"))
        cromwell.status_of[wid] = "Running"
    counting = CountingClient(client)
    settings = ReconcilerSettings.model_validate(
        {"LEDGER_TABLE": TABLE, "CROMWELL_URL": "http://cromwell:8000"}
    )
    service = reconciler(settings, counting, cromwell, clock=lambda: T0)
    service.sweep()  # first sweep moves every run to Running
    cromwell.calls.clear()
    counting.reset()
    started = time.perf_counter()
    report = service.sweep()
    elapsed = time.perf_counter() - started
    return {
        "active_runs": report.active,
        "cromwell_calls_per_sweep": len(cromwell.calls),
        "dynamodb_calls_per_sweep": dict(counting.counts),
        "seconds": round(elapsed, 3),
    }


def run(report: dict[str, Any]) -> None:
    report["monitor"] = {"scatter_10000_shards": scatter(), "reconciler_1000_runs": sweep()}


if __name__ == "__main__":
    import json

    out: dict[str, Any] = {}
    run(out)
    print(json.dumps(out, indent=2))
