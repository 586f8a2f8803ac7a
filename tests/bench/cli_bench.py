"""Benchmark: the `courier` command over a large ledger (moto's server in a process of its own).

`courier runs` (its first page, 20 runs with their cost estimates) over a ledger of 10,000 runs,
and `courier show` (and `courier report`) of a run of 10,000 tasks: wall time of the command as a
user runs it (`--json`; the rich table for `runs` too) and tracemalloc's peak in a second run.
moto serves DynamoDB from another process on this machine, so the peak is the command's alone and
the times include moto's work and the HTTP round trips (slower per request than DynamoDB).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import boto3
from click.testing import CliRunner
from rich.console import Console

from courier.ledger import schema as s
from courier.ledger._codec import iso, to_item
from courier_cli.app import Session, cli
from courier_cli.deployment import Connection, Deployment, Location
from tests.support.ledger_table import create_ledger_table

TABLE = "courier-ledger"
BUCKET = "courier-runs"
T0 = datetime(2026, 11, 1, tzinfo=UTC)
BIG = "99999999-9999-5999-8999-999999999999"
TASKS_PER_LISTED_RUN = 5


def _run_item(i: int, workflow_id: str, *, tasks: int) -> dict[str, Any]:
    submitted = T0 + timedelta(minutes=i)
    failed = i % 7 == 0
    return {
        s.PK: s.run_pk(workflow_id),
        s.SK: s.RUN_SK,
        s.TYPE: s.ITEM_RUN,
        "workflow_id": workflow_id,
        "workflow_name": f"rnaseq_{i % 13}",
        "status": "Failed" if failed else "Succeeded",
        "status_rank": 9,
        "origin": "dropped",
        "source_bucket": BUCKET,
        "inputs_key": f"runs/project{i % 40}/sample{i}.inputs.json",
        "run_folder": f"runs/project{i % 40}/",
        "requester": "ada",
        "submitted_at": iso(submitted),
        "started_at": iso(submitted + timedelta(seconds=20)),
        "ended_at": iso(submitted + timedelta(minutes=30)),
        "tasks_SUCCEEDED": tasks - (1 if failed else 0),
        **({"tasks_FAILED": 1} if failed else {}),
    }


def _task_item(workflow_id: str, n: int, call: str, shard: int, start: datetime) -> dict[str, Any]:
    failed = n % 50 == 7
    started = start + timedelta(seconds=5 + n % 90)
    return {
        s.PK: s.run_pk(workflow_id),
        s.SK: s.task_sk(f"job-{workflow_id[:8]}-{n:06d}"),
        s.TYPE: s.ITEM_TASK,
        "job_id": f"job-{workflow_id[:8]}-{n:06d}",
        "call": call,
        "shard": shard,
        "attempt": 1,
        "status": "FAILED" if failed else "SUCCEEDED",
        "status_reason": "Essential container in task exited",
        "exit_code": 1 if failed else 0,
        "created_at": iso(start),
        "started_at": iso(started),
        "stopped_at": iso(started + timedelta(seconds=60 + n % 600)),
        "vcpus": 2,
        "memory_mib": 4096,
        "queue": "genomics-spot",
        "log_group": "/aws/batch/job",
        "log_stream": f"rnaseq/default/{n}",
    }


def _write(client: Any, items: Iterator[dict[str, Any]]) -> int:
    batch: list[dict[str, Any]] = []
    count = 0
    for item in items:
        batch.append({"PutRequest": {"Item": to_item(item)}})
        count += 1
        if len(batch) == 25:
            client.batch_write_item(RequestItems={TABLE: batch})
            batch = []
    if batch:
        client.batch_write_item(RequestItems={TABLE: batch})
    return count


def _runs(count: int) -> Iterator[dict[str, Any]]:
    for i in range(count):
        workflow_id = f"{i:08x}-0000-5000-8000-{i:012x}"
        yield _run_item(i, workflow_id, tasks=TASKS_PER_LISTED_RUN)
        if i >= count - 20:  # the first page: its runs' tasks are read for the cost estimate
            start = T0 + timedelta(minutes=i, seconds=30)
            for n in range(TASKS_PER_LISTED_RUN):
                yield _task_item(workflow_id, n, "rnaseq.align", n, start)


def _big_run(tasks: int) -> Iterator[dict[str, Any]]:
    item = _run_item(0, BIG, tasks=tasks)
    item["submitted_at"] = iso(T0 - timedelta(days=1))
    item["tasks_SUCCEEDED"] = tasks - tasks // 50
    item["tasks_FAILED"] = tasks // 50
    yield item
    for n in range(tasks):
        call = "rnaseq.align" if n < tasks - 2 else ("rnaseq.prepare" if n == tasks - 2 else "rnaseq.merge")
        yield _task_item(BIG, n, call, n if call == "rnaseq.align" else -1, T0)


class Requests:
    """Counts the AWS requests the command's clients send."""

    def __init__(self, *clients: Any) -> None:
        self.count = 0
        for client in clients:
            client.meta.events.register("before-send.*.*", self._sent)

    def _sent(self, **_: Any) -> None:
        self.count += 1


def _timed(action: Callable[[], Any], requests: Requests) -> dict[str, Any]:
    """Wall and CPU seconds of one run of the command (its process only: moto's server has its
    own), the AWS requests it sent, then tracemalloc's peak over a second run."""
    before = requests.count
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    sent = requests.count - before
    tracemalloc.start()
    action()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"seconds": round(wall, 3), "cpu_seconds": round(cpu, 3), "requests": sent, "peak_bytes": peak}


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's server in a process of its own, on a free loopback port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.05)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def measure(runs: int = 10_000, tasks: int = 10_000) -> dict[str, Any]:
    with moto_server() as url, TemporaryDirectory() as tmp:
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        )
        client = session.client("dynamodb", endpoint_url=url)
        create_ledger_table(client, TABLE)
        started = time.perf_counter()
        items = _write(client, _runs(runs)) + _write(client, _big_run(tasks))
        loaded = time.perf_counter() - started
        deployment = Deployment(
            table=TABLE, bucket=BUCKET, described_as="benchmark", region="us-east-1", endpoint_url=url
        )
        conn = Connection(deployment, session)
        requests = Requests(conn.client("dynamodb"), conn.client("s3"))
        conn.client("s3").create_bucket(Bucket=BUCKET)

        def courier(*args: str, console: Console | None = None) -> str:
            obj = Session(Location(environ={}, cwd=Path(tmp)), console=console, conn=conn)
            result = CliRunner().invoke(cli, list(args), obj=obj, catch_exceptions=False)
            assert result.exit_code == 0, result.output
            return result.output

        first_page = json.loads(courier("runs", "--json"))["runs"]
        assert len(first_page) == 20
        assert first_page[0]["workflow_id"].startswith(f"{runs - 1:08x}")
        shown = json.loads(courier("show", BIG, "--json"))
        assert shown["tasks"]["total"] == tasks

        def table() -> None:
            courier("runs", console=Console(file=open("/dev/null", "w"), width=160))  # noqa: SIM115

        figures: dict[str, Any] = {
            "runs": runs,
            "tasks": tasks,
            "items": items,
            "load_seconds": round(loaded, 1),
        }
        for name, action in (
            ("runs_json", lambda: courier("runs", "--json")),
            ("runs_table", table),
            ("runs_no_cost", lambda: courier("runs", "--no-cost", "--json")),
            ("runs_failed", lambda: courier("runs", "--status", "Failed", "--json")),
            ("show_json", lambda: courier("show", BIG, "--json")),
            ("show_view", lambda: courier("show", BIG)),
            ("report_html", lambda: courier("report", BIG, "--html", f"{tmp}/big.html", "--json")),
        ):
            figures[name] = _timed(action, requests)
        figures["report_bytes"] = Path(f"{tmp}/big.html").stat().st_size
        return figures


def render(fig: dict[str, Any]) -> list[str]:
    rows = (
        ("runs_json", f"`courier runs --json`: first page of 20 of {fig['runs']:,} runs, with costs"),
        ("runs_table", "`courier runs`: the same, as the rich table"),
        ("runs_no_cost", "`courier runs --no-cost --json`"),
        ("runs_failed", "`courier runs --status Failed --json` (a filter on the index)"),
        ("show_json", f"`courier show --json` of a {fig['tasks']:,}-task run"),
        ("show_view", "`courier show` of the same run, as rich panels"),
        ("report_html", f"`courier report --html` of the same run ({fig['report_bytes'] / 1e6:.1f} MB page)"),
    )
    lines = [
        "The `courier` command against moto's server in another process (a ledger of"
        f" {fig['runs']:,} runs on the `runs` index, one of them with {fig['tasks']:,} tasks;"
        f" {fig['items']:,} items loaded in {fig['load_seconds']} s). Wall seconds include moto's"
        " work, which grows with the table (each of its queries walks the whole table, where DynamoDB"
        " reads one partition), and the HTTP round trips; CPU seconds are the command's own process;"
        " requests are the AWS calls it sent (one DynamoDB page each); peak memory is tracemalloc's"
        " peak in the command's process over a second run of the same command.",
        "",
        "| command | wall seconds | CPU seconds | requests | peak memory MB |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {label} | {fig[key]['seconds']} | {fig[key]['cpu_seconds']} | {fig[key]['requests']}"
        f" | {fig[key]['peak_bytes'] / 1e6:.1f} |"
        for key, label in rows
    ]
    return lines
