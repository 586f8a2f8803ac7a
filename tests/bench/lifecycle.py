"""Cromwell calls per tracked workflow over its whole life, and the time from Cromwell's end to the
ENDED event, with and without Cromwell's callback.

Every count is read from the request log of the Cromwell-compatible server
(`local.cromwell_api.CromwellTestServer`) while the real code runs:

* submit: the submit handler with its real adapters over moto S3/DynamoDB, once (`SubmitWorld`);
* the life of one run (`simulate`), on a simulated clock, through the real monitor handler (Batch
  events in SQS batches), the real reconciler (`Reconciler.sweep`, once a minute, the template's
  default) and, with the callback, the real callback service; the ledger is the in-memory
  DynamoDB of the tests. With 1,000 active runs, 999 others run beside it, each with one long
  task, dropped in ten cohorts at random times in the 48 hours before.

A /query asking about k runs counts 1/k for each (a run's share); a call about one workflow counts
1 for it. Sweep passes in which `AskPolicy.due_at` says no run is due are not simulated: such a pass
reads the ledger and makes no Cromwell call (`tests/unit/test_monitor_asking.py`,
`tests/integration/test_monitor_reconciler.py`).

Failed runs: one task fails (Batch FAILED, exit code 3), Cromwell submits no task after it and
the workflow is Failed; the end report then needs the failing task, its reason and its log
(`FAILED_SCENARIOS`; each checks that the run item names them).

Cromwell's timing in the model (seeded random, per task and run): the first task is submitted
30 s after the run; each next task 10 to 40 s after the previous one ended (at most a fifth of
its slot, for runs of many short tasks); the run is terminal 5 to 40 s after its last task ended;
the callback reaches the function 2 s after that. Sweep passes start at a random second of each
minute.
"""

from __future__ import annotations

import heapq
import random
import statistics
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from courier.cromwell import CromwellClient
from courier.ledger import RunLedger, RunRecord
from courier.models import RunStatus
from local.cromwell_api import CromwellTestServer
from monitor import batch_events as monitor_handler
from monitor.asking import AskPolicy, RunClock
from monitor.composition import compose_batch_events, compose_callback, compose_reconciler
from monitor.ending import CallbackData, EndSource
from monitor.settings import CallbackSettings, MonitorSettings, ReconcilerSettings
from tests.bench.memory_dynamodb import MemoryDynamoDB
from tests.support.ledger_table import create_ledger_table
from tests.support.monitor_fixtures import T0, Ctx, FakeTags, Job, sqs_batch
from tests.support.submit_fixtures import TABLE, make_world

POLL_SECONDS = 30
COHORTS = 10  # the other active runs were dropped in this many batches
TARGETS = {"without callback": 4, "with callback": 3}
#: (hours, tasks, the task that fails, counted from 1) of the failed runs simulated
FAILED_SCENARIOS = ((1, 1, 1), (100, 1, 1), (10, 10, 5))
FAILURE_REASON = "Essential container in task exited"
LATENCY_TARGET_S = 120  # without the callback
HELLO = Path(__file__).resolve().parents[1] / "fixtures" / "wdl" / "hello"


def _client(server: CromwellTestServer) -> CromwellClient:
    return CromwellClient(server.url, max_attempts=1, timeout=(2, 5))


def submit_calls() -> dict[str, int]:
    """Cromwell calls of one submission through the real submit handler."""
    with mock_aws(), CromwellTestServer() as server:
        s3 = boto3.client("s3", region_name="us-east-1")
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_ledger_table(dynamodb, TABLE)
        world = make_world((s3, dynamodb), server)
        world.put("runs/hello/hello.wdl", (HELLO / "hello.wdl").read_bytes())
        world.invoke(world.put("runs/hello/inputs.json", (HELLO / "inputs.json").read_bytes()))
        return dict(Counter(r.operation or "unmatched" for r in server.requests))


def sweep_calls(runs: int) -> dict[str, Any]:
    """Reconciler passes over `runs` active runs (in-memory ledger): one in which every run is due
    (silent for longer than `AskPolicy.idle_after`), then one right after, with none due."""
    client = MemoryDynamoDB(TABLE)
    ledger = RunLedger(TABLE, client, clock=lambda: T0)
    later = T0 + AskPolicy().idle_after + timedelta(minutes=1)
    with CromwellTestServer() as server:
        for n in range(runs):
            wid = str(uuid.UUID(int=n + 1))
            ledger.record_submitted(RunRecord(wid, "wf", "bucket", f"runs/{n}/inputs.json", f"runs/{n}"))
            server.backend.add(wid, name="wf", status="Running")
        settings = ReconcilerSettings.model_validate({"LEDGER_TABLE": TABLE, "CROMWELL_URL": server.url})
        service = compose_reconciler(settings, dynamodb=client, cromwell=_client(server), clock=lambda: later)
        report = service.sweep()
        ops = Counter(r.operation or "unmatched" for r in server.requests)
        server.reset_log()
        again = service.sweep()
        return {
            "active_runs": report.active,
            "asked": report.asked,
            "calls": sum(ops.values()),
            "by_operation": dict(ops),
            "calls_nothing_due": len(server.requests),
            "asked_nothing_due": again.asked,
        }


@dataclass(order=True)
class _Step:
    at: datetime
    seq: int
    action: Callable[[], None] = field(compare=False)


@dataclass(frozen=True)
class Scenario:
    hours: int
    tasks: int
    active: int
    callback: bool
    seed: int = 1
    fails_at: int | None = None  # the task (from 1) that fails; None: the run succeeds

    @property
    def ran(self) -> int:
        """Tasks that ran: all of them, or up to the failing one (Cromwell starts none after it)."""
        return self.tasks if self.fails_at is None else min(self.fails_at, self.tasks)


class _Life:
    """One simulated run (and its neighbours) on a simulated clock."""

    def __init__(self, server: CromwellTestServer, scenario: Scenario) -> None:
        self.server = server
        self.s = scenario
        self.rng = random.Random(f"{scenario}")
        self.now = T0
        self.ddb = MemoryDynamoDB(TABLE)
        env = {"LEDGER_TABLE": TABLE, "CROMWELL_URL": server.url}
        cromwell = _client(server)
        clock = self.clock
        self.monitor = compose_batch_events(
            MonitorSettings.model_validate(env),
            dynamodb=self.ddb,
            tags=FakeTags(),
            clock=clock,
        )
        self.sweeper = compose_reconciler(
            ReconcilerSettings.model_validate(env), dynamodb=self.ddb, cromwell=cromwell, clock=clock
        )
        callback_env = {**env, "CALLBACK_TOKEN_SECRET": "arn:secret"}
        self.callback = compose_callback(
            CallbackSettings.model_validate(callback_env),
            dynamodb=self.ddb,
            cromwell=cromwell,
            token=lambda: "token",
            clock=clock,
        )
        self.runs = RunLedger(TABLE, self.ddb, clock=clock)
        self.policy = AskPolicy()
        self.steps: list[_Step] = []
        self.seq = 0
        self.sweep_second = self.rng.uniform(0, 60)
        self.due: dict[str, datetime | None] = {}
        self.workflow_id = str(uuid.UUID(int=self.rng.getrandbits(128)))
        self.cromwell_end: datetime | None = None
        self.sweeps = 0

    def clock(self) -> datetime:
        return self.now

    def at(self, when: datetime, action: Callable[[], None]) -> None:
        self.seq += 1
        heapq.heappush(self.steps, _Step(when, self.seq, action))

    # -- the world -------------------------------------------------------------------------------

    def submit(self, workflow_id: str, when: datetime, status: str = "Submitted") -> None:
        self.now = when
        self.server.backend.add(workflow_id, name="wf", status=status)
        self.runs.record_submitted(
            RunRecord(workflow_id, "wf", "bucket", f"runs/{workflow_id}/inputs.json", "r")
        )

    def deliver(self, events: list[dict[str, Any]]) -> None:
        monitor_handler.lambda_handler(sqs_batch(events), Ctx(), service=self.monitor)

    def job_events(self, job: Job, start: datetime, end: datetime | None, *, fails: bool = False) -> None:
        running = start + (end - start) / 10 if end else start + timedelta(seconds=3)
        self.at(
            start,
            lambda: self.deliver([job.event(st, at=start) for st in ("PENDING", "RUNNABLE", "STARTING")]),
        )
        self.at(running, lambda: self.deliver([job.event("RUNNING", at=running)]))
        if end is not None and fails:
            self.at(
                end, lambda: self.deliver([job.event("FAILED", at=end, exit_code=3, reason=FAILURE_REASON)])
            )
        elif end is not None:
            self.at(end, lambda: self.deliver([job.event("SUCCEEDED", at=end, exit_code=0)]))

    def neighbours(self) -> None:
        """active - 1 other runs, each with one long task: ten cohorts (runs dropped together),
        each submitted at a random time in the 48 hours before."""
        others = self.s.active - 1
        cohorts = [T0 - timedelta(seconds=self.rng.uniform(60, 48 * 3600)) for _ in range(COHORTS)]
        for n in range(others):
            start = cohorts[n % COHORTS]
            wid = str(uuid.UUID(int=self.rng.getrandbits(128)))
            self.submit(wid, start, status="Running")
            job = Job("wf.long", wid, root_name="wf")
            self.now = start + timedelta(seconds=30)
            self.deliver(
                [job.event(st, at=self.now) for st in ("PENDING", "RUNNABLE", "STARTING", "RUNNING")]
            )

    def the_run(self) -> None:
        wid, s, rng = self.workflow_id, self.s, self.rng
        self.submit(wid, T0)
        self.at(T0 + timedelta(seconds=20), lambda: self.server.backend.set_status(wid, "Running"))
        finish = rng.uniform(5, 40)
        slot = (s.hours * 3600 - 30 - finish) / s.tasks
        t = T0 + timedelta(seconds=30)
        jobs: list[Job] = []
        for n in range(s.ran):
            gap = rng.uniform(10, 40) if n else 0.0
            gap = min(gap, slot / 5) if n else 0.0
            start = t + timedelta(seconds=gap)
            end = t + timedelta(seconds=slot)
            jobs.append(Job(f"wf.step{n}", wid, root_name="wf"))
            self.job_events(jobs[-1], start, end, fails=n + 1 == s.fails_at)
            t = end
        done = t + timedelta(seconds=finish)
        self.cromwell_end = done
        failed = s.fails_at is not None

        def cromwell_ends() -> None:
            if failed:
                self.cromwell_fails(wid, jobs)
            else:
                self.server.backend.set_outputs(wid, {"wf.out": "s3://bucket/out.txt"})
                self.server.backend.set_status(wid, "Succeeded")

        self.at(done, cromwell_ends)
        if s.callback:
            data = CallbackData(
                outputs={} if failed else {"wf.out": "s3://bucket/out.txt"},
                failures=[_workflow_failure(jobs[-1])] if failed else [],
            )
            status = RunStatus.FAILED if failed else RunStatus.SUCCEEDED
            self.at(
                done + timedelta(seconds=2),
                lambda: self.callback.ender.end(wid, status, source=EndSource.CALLBACK, callback=data),
            )

    def cromwell_fails(self, workflow_id: str, jobs: list[Job]) -> None:
        """Cromwell's metadata of the run: every task Done but the last, which Failed."""
        backend = self.server.backend
        for job in jobs:
            failing = job is jobs[-1]
            backend.add_call(
                workflow_id,
                job.call,
                status="Failed" if failing else "Done",
                job_id=job.job_id,
                return_code=3 if failing else 0,
                failures=[_job_failure(job)] if failing else [],
                **{
                    "logConfig:logGroupName": "/aws/batch/job",
                    "logConfig:logStreamName": f"cromwell/default/{job.job_id}",
                },
            )
        failure = _workflow_failure(jobs[-1])
        backend.fail(workflow_id, failure["message"], *(c["message"] for c in failure["causedBy"]))

    # -- the reconciler --------------------------------------------------------------------------

    def refresh_due(self, workflow_ids: Iterable[str]) -> None:
        for wid in workflow_ids:
            self.due[wid] = self.policy.due_at(RunClock.from_run(wid, self.runs.get_run(wid)))

    def next_sweep(self, after: datetime) -> datetime | None:
        due = [d for d in self.due.values() if d is not None]
        if not due:
            return None
        first = max(min(due), after)
        minute = first.replace(second=0, microsecond=0) + timedelta(seconds=self.sweep_second)
        return minute if minute >= first else minute + timedelta(minutes=1)

    def run(self) -> dict[str, Any]:
        self.server.reset_log()
        if self.s.active > 1:
            self.neighbours()
        self.the_run()
        self.refresh_due([r.workflow_id for r in self.runs.list_active()])
        self.server.reset_log()
        horizon = T0 + timedelta(hours=self.s.hours * 3)
        while True:
            ended = self.ended_at()
            if ended is not None and not self.steps:
                break
            step_at = self.steps[0].at if self.steps else None
            sweep_at = self.next_sweep(self.now)
            if sweep_at is not None and (step_at is None or sweep_at <= step_at) and sweep_at <= horizon:
                self.now = sweep_at
                self.sweeper.sweep()
                self.sweeps += 1
                # a pass changes only the runs it asked about: those that were due
                self.refresh_due(
                    [wid for wid, due in self.due.items() if due is not None and due <= self.now]
                )
                self.due = {k: v for k, v in self.due.items() if v is not None}
                continue
            if step_at is None:
                break
            step = heapq.heappop(self.steps)
            self.now = step.at
            step.action()
            self.refresh_due([self.workflow_id])
        return self.figures()

    def ended_at(self) -> datetime | None:
        run = self.runs.get_run(self.workflow_id) or {}
        value = run.get("ended_at")
        return datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else None

    def figures(self) -> dict[str, Any]:
        share = 0.0
        ops: Counter[str] = Counter()
        for request in self.server.requests:
            ids = _ids(request)
            if self.workflow_id in ids:
                share += 1 / len(ids)
                ops[request.operation or "unmatched"] += 1
        ended = self.ended_at()
        assert self.cromwell_end is not None
        figures: dict[str, Any] = {
            "calls": round(share, 3),
            "by_operation": dict(ops),
            "ended": ended is not None,
            "latency_s": round((ended - self.cromwell_end).total_seconds(), 1) if ended else None,
            "sweeps_with_work": self.sweeps,
            "all_calls": len(self.server.requests),
        }
        if self.s.fails_at is not None:
            figures["failure_reported"] = self.failure_reported()
        return figures

    def failure_reported(self) -> bool:
        """The run item says Failed and names the failing task, its reason and its log, as the
        end-of-run message shows them."""
        run = self.runs.get_run(self.workflow_id) or {}
        failing = f"wf.step{self.s.ran - 1}"
        entries = run.get("failures") or []
        return (
            run.get("status") == RunStatus.FAILED.value
            and run.get("failures_count") == 1
            and len(entries) == 1
            and entries[0].get("call") == failing
            and "exited with return code 3" in str(entries[0].get("message"))
            and str(entries[0].get("log_stream", "")).startswith("cromwell/default/")
            and bool(run.get("workflow_failures"))
        )


def _job_failure(job: Job) -> str:
    return f"Job {job.call}:-1:1 exited with return code 3 which has not been declared as a valid return code"


def _workflow_failure(job: Job) -> dict[str, Any]:
    """Cromwell's `failures` of a workflow one task of which failed."""
    return {"message": "Workflow failed", "causedBy": [{"message": _job_failure(job), "causedBy": []}]}


def _ids(request: Any) -> list[str]:
    if request.operation == "queryPost":
        return [f["id"] for f in request.body or [] if isinstance(f, dict) and "id" in f]
    parts = [p for p in request.path.split("/") if p]
    return [parts[3]] if len(parts) > 3 else []


def simulate(scenario: Scenario, server: CromwellTestServer | None = None) -> dict[str, Any]:
    if server is not None:
        return _Life(server, scenario).run()
    with CromwellTestServer() as own:
        return _Life(own, scenario).run()


def measure(
    hours: tuple[int, ...] = (1, 10, 100),
    tasks: tuple[int, ...] = (1, 10, 1000),
    active: tuple[int, ...] = (1, 1000),
    failed: tuple[tuple[int, int, int], ...] = FAILED_SCENARIOS,
) -> dict[str, Any]:
    """Every (hours, tasks, active) run succeeding, then every `failed` (hours, tasks, failing
    task) run for each `active`, each with and without the callback."""
    submit = submit_calls()
    n_submit = sum(submit.values())
    plans = [(h, n, None) for h in hours for n in tasks] + [(h, n, k) for h, n, k in failed]
    rows = []
    with CromwellTestServer() as server:
        for h, n, fails_at in plans:
            for a in active:
                row: dict[str, Any] = {"hours": h, "tasks": n, "active": a}
                if fails_at is not None:
                    row["fails_at"] = fails_at
                for label, callback in (("without callback", False), ("with callback", True)):
                    life = simulate(Scenario(h, n, a, callback, fails_at=fails_at), server)
                    life["calls"] = round(life["calls"] + n_submit, 3)
                    row[label] = life
                rows.append(row)
    summary = {}
    for label, target in TARGETS.items():
        calls = [r[label]["calls"] for r in rows]
        latency = [r[label]["latency_s"] for r in rows if r[label]["latency_s"] is not None]
        failed_rows = [r[label] for r in rows if "fails_at" in r]
        summary[label] = {
            "target_calls": target,
            "most_calls": max(calls),
            "calls_met": max(calls) <= target and all(r[label]["ended"] for r in rows),
            "most_calls_failed": max((r["calls"] for r in failed_rows), default=None),
            "failures_reported": all(r.get("failure_reported") for r in failed_rows),
            "latency_median_s": round(statistics.median(latency), 1) if latency else None,
            "latency_worst_s": max(latency) if latency else None,
        }
    summary["without callback"]["latency_target_s"] = LATENCY_TARGET_S
    return {
        "submit": submit,
        "policy": _policy(),
        "rows": rows,
        "summary": summary,
    }


def _policy() -> dict[str, str]:
    policy = AskPolicy()
    return {
        name: str(getattr(policy, name))
        for name in ("end_check_delay", "idle_after", "busy_after", "max_wait")
    }


def _polling(hours: int, failed: bool = False) -> int:
    """Submit, /status every 30 s, then outputs (Succeeded) or failed jobs and failures (Failed)."""
    return 1 + hours * 3600 // POLL_SECONDS + (2 if failed else 1)


def _end(row: dict[str, Any]) -> str:
    return f"Failed at task {row['fails_at']}" if "fails_at" in row else "Succeeded"


def render(fig: dict[str, Any]) -> list[str]:
    policy = fig["policy"]
    lines = [
        "Cromwell calls over one run's whole life (submit included), read from the Cromwell-compatible "
        "server's request log while the real submit handler (once), monitor handler, reconciler and "
        "callback run on a simulated clock; a /query about k runs counts 1/k for each. Time to ENDED: "
        "from Cromwell's terminal status to the run's ENDED event in the ledger. Policy "
        f"(`monitor.asking.AskPolicy`): end check {policy['end_check_delay']} after the last task end, "
        f"silent runs asked after {policy['idle_after']} (no unfinished task) or {policy['busy_after']} "
        f"(tasks running), the wait doubling up to {policy['max_wait']}; reconciler every minute. "
        f"Submit: {', '.join(f'{k} {v}' for k, v in fig['submit'].items())}.",
        "",
    ]
    for label, s in fig["summary"].items():
        latency = f"median {s['latency_median_s']} s, worst {s['latency_worst_s']} s"
        if "latency_target_s" in s:
            latency += f" (target <= {s['latency_target_s']} s)"
        failed = ""
        if s.get("most_calls_failed") is not None:
            where = "on the run item" if s["failures_reported"] else "**missing from the run item**"
            failed = (
                f" Failed runs: at most {s['most_calls_failed']:g} calls, the failing task, its reason "
                f"and its log {where}."
            )
        lines.append(
            f"- **{label}**: at most {s['most_calls']:g} calls per workflow (target <= {s['target_calls']}: "
            f"{'met' if s['calls_met'] else '**not met**'}); time to ENDED {latency}.{failed}"
        )
    lines += [
        "",
        "| Run | tasks | end | active runs | polling client (30 s) | calls without callback | by operation "
        "| to ENDED s | calls with callback | by operation | to ENDED s |",
        "|---|---:|---|---:|---:|---:|---|---:|---:|---|---:|",
    ]
    for row in fig["rows"]:
        cells = []
        for label in ("without callback", "with callback"):
            life = row[label]
            ops = ", ".join(f"{k} {v}" for k, v in sorted(life["by_operation"].items())) or "none"
            cells += [f"{life['calls']:g}", ops, f"{life['latency_s']}"]
        polling = _polling(row["hours"], "fails_at" in row)
        lines.append(
            f"| {row['hours']} h | {row['tasks']} | {_end(row)} | {row['active']} | {polling} | "
            + " | ".join(cells)
            + " |"
        )
    lines += [
        "",
        "The polling client counts 1 submit + one /status per 30 s + outputs at the end (Succeeded) or "
        "the failed jobs and the workflow's failures (Failed). The by-operation columns count the "
        "requests that named the run (a shared /query once). Not per workflow: with "
        "TrackAllWorkflows, the reconciler's adoption /query, at most once an hour per container. A "
        "Failed run's report costs one call, as a Succeeded run's outputs do: without the callback one "
        "`/metadata` filtered with `monitor.end_report.FAILURE_KEYS` (the workflow's failures and the "
        "failed calls); with it, `/metadata/failed-jobs` beside the failures in the callback's body.",
    ]
    return lines


def targets(fig: dict[str, Any]) -> list[str]:
    """Calls per workflow and time to ENDED beside their targets."""
    lines = []
    for label, s in fig["summary"].items():
        lines.append(
            f"Cromwell calls per workflow, {label}: at most {s['most_calls']:g} "
            f"(target <= {s['target_calls']}: {'met' if s['calls_met'] else 'NOT met'}); time to ENDED "
            f"median {s['latency_median_s']} s, worst {s['latency_worst_s']} s"
            + (
                f" (target <= {s['latency_target_s']} s: "
                f"{'met' if (s['latency_worst_s'] or 0) <= s['latency_target_s'] else 'NOT met'})"
                if "latency_target_s" in s
                else ""
            )
        )
        if s.get("most_calls_failed") is not None:
            met = s["most_calls_failed"] <= s["target_calls"] and s["failures_reported"]
            lines.append(
                f"Cromwell calls per failed workflow, {label}: at most {s['most_calls_failed']:g} "
                f"(target <= {s['target_calls']}, failing task reported: {'met' if met else 'NOT met'})"
            )
    return lines
