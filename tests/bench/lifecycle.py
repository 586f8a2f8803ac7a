"""Cromwell calls per tracked workflow over its life, against a client polling /status every 30 s,
and Cromwell calls per reconciler sweep.

Every count is read from the request log of the Cromwell-compatible server
(`local.cromwell_api.CromwellTestServer`) while the real code runs:

* submit: the submit handler with its real adapters over moto S3/DynamoDB (`SubmitWorld`);
* tasks: the monitor handler receives the Batch events of `tasks` sequential tasks (after each
  task ends with no unfinished task left, it asks /status once);
* the end: the last task's SUCCEEDED event finds the workflow Succeeded (status + outputs);
* sweeps: the reconciler's sweep with `n` active runs, for the per-run share of its /query calls.

The hours table then scales the measured sweep share by the number of sweeps in the run's life
(template default: one sweep every `ReconcileIntervalMinutes` = 5 minutes).
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from courier.cromwell import CromwellClient
from courier.ledger import RunLedger, RunRecord
from local.cromwell_api import CromwellTestServer
from monitor import batch_events as monitor_handler
from monitor.composition import compose_batch_events, compose_reconciler
from monitor.settings import MonitorSettings, ReconcilerSettings
from tests.bench.memory_dynamodb import MemoryDynamoDB
from tests.support.ledger_table import create_ledger_table
from tests.support.monitor_fixtures import T0, Ctx, FakeTags, Job, lifecycle, sqs_batch
from tests.support.submit_fixtures import TABLE, make_world

POLL_SECONDS = 30
RECONCILE_MINUTES = 5  # template.yaml: ReconcileIntervalMinutes default
HELLO = Path(__file__).resolve().parents[1] / "fixtures" / "wdl" / "hello"


def _client(server: CromwellTestServer) -> CromwellClient:
    return CromwellClient(server.url, max_attempts=1, timeout=(2, 5))


def _ops(server: CromwellTestServer) -> Counter[str]:
    return Counter(r.operation or "unmatched" for r in server.requests)


def one_workflow(tasks: int = 10) -> dict[str, Any]:
    """Submit one run, deliver the Batch events of its tasks, end it; Cromwell calls per phase."""
    phases: dict[str, dict[str, int]] = {}
    with mock_aws(), CromwellTestServer() as server:
        s3 = boto3.client("s3", region_name="us-east-1")
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_ledger_table(dynamodb, TABLE)
        world = make_world((s3, dynamodb), server)
        world.put("runs/hello/hello.wdl", (HELLO / "hello.wdl").read_bytes())
        answer = world.invoke(world.put("runs/hello/inputs.json", (HELLO / "inputs.json").read_bytes()))
        workflow_id = answer["workflow_id"]
        phases["submit"] = dict(_ops(server))
        server.reset_log()

        server.backend.set_status(workflow_id, "Running")
        cromwell = _client(server)
        settings = MonitorSettings.model_validate({"LEDGER_TABLE": TABLE, "CROMWELL_URL": server.url})
        service = compose_batch_events(settings, dynamodb=dynamodb, cromwell=cromwell, tags=FakeTags())
        for n in range(tasks):
            job = Job(f"hello.step{n}", workflow_id, root_name="hello")
            if n == tasks - 1:
                server.backend.set_outputs(workflow_id, {"hello.out": "s3://bucket/out.txt"})
                phases["tasks"] = dict(_ops(server))
                server.reset_log()
                server.backend.set_status(workflow_id, "Succeeded")
            events = lifecycle(job, start=T0 + timedelta(minutes=10 * n))
            monitor_handler.lambda_handler(sqs_batch(events), Ctx(), service=service)
        phases["end"] = dict(_ops(server))
        item = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": f"RUN#{workflow_id}"}, "sk": {"S": "RUN"}})
        status = item["Item"]["status"]["S"]
    return {
        "tasks": tasks,
        "phases": phases,
        "ledger_status": status,
        "calls": {name: sum(ops.values()) for name, ops in phases.items()},
    }


def sweep_calls(runs: int) -> dict[str, Any]:
    """One reconciler sweep over `runs` active runs (ledger: the in-memory DynamoDB)."""
    client = MemoryDynamoDB(TABLE)
    ledger = RunLedger(TABLE, client, clock=lambda: T0)
    with CromwellTestServer() as server:
        for n in range(runs):
            wid = str(uuid.UUID(int=n + 1))
            ledger.record_submitted(RunRecord(wid, "wf", "bucket", f"runs/{n}/inputs.json", f"runs/{n}"))
            server.backend.add(wid, name="wf", status="Running")
        settings = ReconcilerSettings.model_validate({"LEDGER_TABLE": TABLE, "CROMWELL_URL": server.url})
        service = compose_reconciler(settings, dynamodb=client, cromwell=_client(server), clock=lambda: T0)
        service.sweep()  # the first sweep moves every run from Submitted to Running
        server.reset_log()
        report = service.sweep()
        ops = _ops(server)
    return {"active_runs": report.active, "calls": sum(ops.values()), "by_operation": dict(ops)}


def measure(tasks: int = 10, concurrency: tuple[int, ...] = (1, 100, 1000)) -> dict[str, Any]:
    life = one_workflow(tasks)
    sweeps = {n: sweep_calls(n) for n in concurrency}
    table = []
    for hours in (1, 10, 100):
        polling = 1 + hours * 3600 // POLL_SECONDS + 1  # submit, /status every 30 s, outputs at the end
        n_sweeps = hours * 60 // RECONCILE_MINUTES
        row: dict[str, Any] = {"hours": hours, "polling": polling, "sweeps": n_sweeps, "courier": {}}
        for n, sweep in sweeps.items():
            share = sweep["calls"] / max(sweep["active_runs"], 1)
            courier = sum(life["calls"].values()) + n_sweeps * share
            row["courier"][n] = {"calls": round(courier, 1), "ratio": round(polling / courier, 1)}
        table.append(row)
    return {"workflow": life, "sweeps": sweeps, "table": table, "reconcile_minutes": RECONCILE_MINUTES}


def _ops_text(ops: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in ops.items())


def render(fig: dict[str, Any]) -> list[str]:
    life = fig["workflow"]
    phases = life["phases"]

    def ops(name: str) -> str:
        return ", ".join(f"{op} {count}" for op, count in sorted(phases.get(name, {}).items())) or "none"

    concurrency = list(fig["sweeps"])
    lines = [
        f"One run of {life['tasks']} sequential tasks through the real handlers (Cromwell calls from the "
        "server's request log): submit: "
        f"{life['calls'].get('submit', 0)} ({ops('submit')}); during the tasks (monitor handler, one /status "
        f"after each task that leaves no unfinished task): {life['calls'].get('tasks', 0)} ({ops('tasks')}); "
        f"at the end: {life['calls'].get('end', 0)} ({ops('end')}).",
        "",
        "Reconciler sweep (one sweep every "
        f"{fig['reconcile_minutes']} min), measured: "
        + "; ".join(
            f"{n} active run(s): {s['calls']} call(s) ({_ops_text(s['by_operation'])})"
            for n, s in fig["sweeps"].items()
        )
        + ". Each run's share is calls / active runs.",
        "",
        "| Run length | polling client (30 s) | sweeps | "
        + " | ".join(f"Courier, {n} active | ratio" for n in concurrency)
        + " |",
        "|---|---:|---:|" + "---:|---:|" * len(concurrency),
    ]
    for row in fig["table"]:
        cells = " | ".join(
            f"{row['courier'][n]['calls']} | {row['courier'][n]['ratio']}x" for n in concurrency
        )
        lines.append(f"| {row['hours']} h | {row['polling']} | {row['sweeps']} | {cells} |")
    lines += [
        "",
        "The polling client counts 1 submit + one /status per 30 s + 1 outputs. Courier's per-run "
        "figure is the measured submit, task and end calls plus the run's share of every sweep "
        "during its life; a Cromwell with the callback configured ends the run without the status call.",
    ]
    return lines
