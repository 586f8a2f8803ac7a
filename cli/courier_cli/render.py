"""How runs look: rich renderables for people, plain dicts for `--json`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from courier.costs import CostEstimate
from courier.digest import STATUS_ORDER, RunDigest
from courier.ledger.records import BatchView, RunView
from courier.models import RunStatus, TaskStatus
from courier.pipeline import NextStep
from courier.run_report import format_duration

RUN_STYLE: Final[Mapping[str, str]] = {
    RunStatus.SUCCEEDED: "bold green",
    RunStatus.FAILED: "bold red",
    RunStatus.REJECTED: "bold red",
    RunStatus.ABORTED: "bold yellow",
    RunStatus.ABORTING: "yellow",
    RunStatus.RUNNING: "bold blue",
    RunStatus.SUBMITTED: "cyan",
    RunStatus.ON_HOLD: "magenta",
}
TASK_STYLE: Final[Mapping[str, str]] = {
    TaskStatus.SUCCEEDED: "green",
    TaskStatus.FAILED: "red",
    TaskStatus.RUNNING: "blue",
    TaskStatus.STARTING: "blue",
    TaskStatus.RUNNABLE: "yellow",
}


def when(ts: datetime | None) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if ts else "-"


def short_when(ts: datetime | None) -> str:
    return ts.astimezone(UTC).strftime("%m-%d %H:%M") if ts else "-"


def iso(ts: datetime | None) -> str | None:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z") if ts else None


def status_text(status: RunStatus | None) -> Text:
    value = status.value if status else "Unknown"
    return Text(value, style=RUN_STYLE.get(value, ""))


def progress(done: int, total: int, *, width: int = 16) -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_row(ProgressBar(total=max(total, 1), completed=done, width=width), Text(f"{done}/{total}"))
    return grid


def run_dict(run: RunView, now: datetime, cost: CostEstimate | None = None) -> dict[str, Any]:
    duration = run.duration(now)
    out: dict[str, Any] = {
        "workflow_id": run.workflow_id,
        "workflow_name": run.workflow_name,
        "status": run.status.value if run.status else None,
        "origin": run.origin,
        "run_folder": run.run_folder,
        "inputs": run.source,
        "requester": run.requester,
        "submitted_at": iso(run.submitted_at),
        "started_at": iso(run.started_at),
        "ended_at": iso(run.ended_at),
        "duration_seconds": round(duration.total_seconds(), 3) if duration is not None else None,
        "tasks": {"done": run.finished_tasks, "total": run.total_tasks, "counts": dict(run.counts)},
    }
    if cost is not None:
        out["cost"] = cost.to_dict()
    return out


def runs_table(runs: Sequence[RunView], costs: Mapping[str, CostEstimate], now: datetime) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False, collapse_padding=True)
    for name, justify in (
        ("ID", "left"),
        ("Workflow", "left"),
        ("Status", "left"),
        ("Tasks", "left"),
        ("Started (UTC)", "left"),
        ("Duration", "right"),
        ("Cost", "right"),
        ("Origin", "left"),
        ("Folder", "left"),
    ):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for run in runs:
        cost = costs.get(run.workflow_id)
        table.add_row(
            run.workflow_id[:8],
            Text(run.name),
            status_text(run.status),
            progress(run.finished_tasks, run.total_tasks, width=8),
            short_when(run.started_at or run.submitted_at),
            format_duration(run.duration(now)),
            cost.short() if cost else "-",
            run.origin or "-",
            Text(run.run_folder or "-"),
        )
    return table


def counts_text(counts: Mapping[str, int]) -> Text:
    text = Text()
    for status in (*STATUS_ORDER, "UNKNOWN"):
        n = counts.get(status, 0)
        if n:
            if text:
                text.append("  ")
            text.append(f"{n} {status.lower()}", style=TASK_STYLE.get(status, "dim"))
    return text


def calls_table(summary: RunDigest) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("Call")
    table.add_column("Shards", justify="right")
    table.add_column("Done")
    table.add_column("By status")
    table.add_column("Cost", justify="right")
    for call in summary.calls.values():
        table.add_row(
            Text(call.call),
            str(len(call.shards)) if call.shards else "-",
            progress(call.done, call.tasks, width=10),
            counts_text(call.counts),
            call.cost.short(),
        )
    return table


def failures_table(summary: RunDigest) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("Task", style="red")
    table.add_column("Exit", justify="right")
    table.add_column("Reason")
    table.add_column("Log")
    for failed in summary.failed:
        task = failed.task
        reason = Text(failed.classification.title, style="bold")
        detail = task.status_reason or failed.message
        if detail:
            reason.append(f"\n{detail}", style="dim")
        log = Text(task.log_stream or "-")
        if failed.log_url:
            log = Text(task.log_stream or "log", style=f"link {failed.log_url}")
        table.add_row(Text(task.label), "-" if task.exit_code is None else str(task.exit_code), reason, log)
    return table


def pipeline_dict(run: RunView, batch: BatchView | None = None) -> dict[str, Any] | None:
    """A run's place in a pipeline (docs/pipelines.md): its chain of run folders, the run or
    batch its inputs were built from, and the next run its end (or its batch's) started, or why
    not; None for a run in no pipeline."""
    steps = [("run", NextStep.from_map(run.next_step))]
    if batch is not None:
        steps.append(("batch", NextStep.from_map(batch.next_step)))
    children = [
        {
            "after": after,
            "inputs": step.uri,
            "started": step.started,
            "workflow_id": step.workflow_id,
            "reasons": list(step.reasons),
        }
        for after, step in steps
        if step is not None
    ]
    if len(run.chain) < 2 and not run.parents and not run.parent_batch and not children:
        return None
    return {
        "chain": list(run.chain),
        "parents": list(run.parents),
        "parent_batch": run.parent_batch,
        "children": children,
    }


def _pipeline_panel(pipeline: Mapping[str, Any]) -> Panel:
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="dim")
    facts.add_column(overflow="fold")
    if pipeline["chain"]:
        facts.add_row("Chain", Text(" -> ".join(pipeline["chain"])))
    if pipeline["parent_batch"]:
        facts.add_row("Parent batch", Text(f"{pipeline['parent_batch']} ({len(pipeline['parents'])} runs)"))
    elif pipeline["parents"]:
        facts.add_row("Parent", Text(", ".join(pipeline["parents"])))
    for child in pipeline["children"]:
        label = "Next run" if child["after"] == "run" else "Batch's next run"
        if child["started"]:
            workflow = f" (workflow {child['workflow_id']})" if child["workflow_id"] else ""
            facts.add_row(label, Text(f"started {child['inputs']}{workflow}"))
        else:
            facts.add_row(label, Text("not started: " + "; ".join(child["reasons"]), style="red"))
    return Panel(facts, title="Pipeline", title_align="left")


def show_view(
    run: RunView,
    summary: RunDigest,
    receipt: Mapping[str, Any] | None,
    now: datetime,
    batch: BatchView | None = None,
) -> RenderableType:
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="dim")
    facts.add_column()
    facts.add_row("Workflow id", run.workflow_id)
    facts.add_row("Status", status_text(run.status))
    facts.add_row("Origin", run.origin or "-")
    facts.add_row("Inputs", Text(run.source or "-"))
    facts.add_row("Dropped by", Text(f"{run.requester or '-'} at {when(run.submitted_at)}"))
    facts.add_row("Started", when(run.started_at))
    facts.add_row("Ended", when(run.ended_at) + (f" ({run.ended_by})" if run.ended_by else ""))
    facts.add_row("Duration", format_duration(run.duration(now)))
    facts.add_row(
        "Tasks",
        progress(summary.counts[TaskStatus.SUCCEEDED] + summary.counts[TaskStatus.FAILED], summary.tasks),
    )
    facts.add_row("Cost", summary.cost.describe())
    if receipt:
        facts.add_row("Receipt", f"{receipt.get('status', '-')} at {receipt.get('decided_at') or '-'}")
    parts: list[RenderableType] = [facts]
    pipeline = pipeline_dict(run, batch)
    if pipeline is not None:
        parts.append(_pipeline_panel(pipeline))
    problems = [*run.reasons, *run.workflow_failures]
    if problems:
        listed = Text("\n".join(f"- {p}" for p in problems))
        parts.append(Panel(listed, title="Reasons", title_align="left", border_style="red"))
    if summary.calls:
        parts.append(Panel(calls_table(summary), title="Tasks by call", title_align="left"))
    if summary.failed:
        title = f"Failed tasks ({summary.failed_total})"
        parts.append(Panel(failures_table(summary), title=title, title_align="left", border_style="red"))
    if run.outputs:
        outputs = Table(box=None, pad_edge=False, show_header=False)
        outputs.add_column(style="bold")
        outputs.add_column(overflow="fold")
        for name, value in run.outputs.items():
            outputs.add_row(Text(name), Text(value if isinstance(value, str) else repr(value)))
        parts.append(Panel(outputs, title="Outputs", title_align="left"))
    heading = Text.assemble((run.name, "bold"), "  ", status_text(run.status))
    return Panel(Group(*parts), title=heading, title_align="left")


def show_dict(
    run: RunView,
    summary: RunDigest,
    receipt: Mapping[str, Any] | None,
    now: datetime,
    batch: BatchView | None = None,
) -> dict[str, Any]:
    out = run_dict(run, now, summary.cost)
    out["tasks"] = {
        "done": summary.counts[TaskStatus.SUCCEEDED] + summary.counts[TaskStatus.FAILED],
        "total": summary.tasks,
        "counts": dict(summary.counts),
    }
    out.update(
        {
            "ended_by": run.ended_by,
            "reasons": list(run.reasons),
            "workflow_failures": list(run.workflow_failures),
            "receipt": dict(receipt) if receipt else None,
            "calls": [c.to_dict() for c in summary.calls.values()],
            "failed": [f.to_dict() for f in summary.failed],
            "failed_total": summary.failed_total,
            "causes": dict(summary.causes),
            "outputs": dict(run.outputs),
            "pipeline": pipeline_dict(run, batch),
        }
    )
    return out


def watch_view(entries: Sequence[tuple[RunView, RunDigest]], now: datetime) -> RenderableType:
    panels: list[RenderableType] = []
    for run, summary in entries:
        body: RenderableType = calls_table(summary) if summary.calls else Text("no task yet", style="dim")
        title = Text.assemble(
            (run.name, "bold"),
            "  ",
            status_text(run.status),
            f"  {run.workflow_id[:8]}  {format_duration(run.duration(now))}",
        )
        panels.append(Panel(body, title=title, title_align="left"))
    return Group(*panels)
