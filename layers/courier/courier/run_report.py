"""The run report: one self-contained HTML page about a run, to look at rather than read.

Summary, a timeline of every task (one bar per call, shard and attempt: the wait in the queue
drawn apart from the run time, coloured by outcome), the cost by call, the failures and the
outputs. Inline CSS, inline SVG and a few lines of inline JavaScript; a Content-Security-Policy
that forbids loading anything, so opening the file fetches nothing. Every text that comes from a
user, a WDL, Cromwell or Batch is escaped.

`render_report` is a pure function of the run's typed views: the `courier report` command calls
it, and so can whatever writes the report beside a run's receipt when the run ends.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any, Final

from courier.costs import Prices
from courier.digest import STATUS_ORDER, RunDigest, call_name, digest
from courier.ledger.records import RunView, TaskView
from courier.links import s3_uri_url
from courier.models import RunStatus, TaskStatus

_LABEL_WIDTH: Final = 220
_CHART_WIDTH: Final = 790
#: Seconds between the timeline's ticks: the first that gives at most eight.
_NICE_STEPS: Final = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)
_AXIS_HEIGHT: Final = 26
_GROUP_LABEL_HEIGHT: Final = 16
_MAX_OUTPUTS: Final = 200
_MAX_TEXT: Final = 4000

_STATUS_CLASS: Final[Mapping[str, str]] = {
    TaskStatus.SUCCEEDED: "ok",
    TaskStatus.FAILED: "failed",
    TaskStatus.RUNNING: "running",
    TaskStatus.STARTING: "running",
}
_RUN_CLASS: Final[Mapping[str, str]] = {
    RunStatus.SUCCEEDED: "ok",
    RunStatus.FAILED: "failed",
    RunStatus.ABORTED: "aborted",
    RunStatus.ABORTING: "aborted",
    RunStatus.REJECTED: "failed",
    RunStatus.RUNNING: "running",
}


def _e(value: Any) -> str:
    text = "" if value is None else str(value)
    if len(text) > _MAX_TEXT:
        text = text[:_MAX_TEXT] + "..."
    return escape(text, quote=True)


def _when(ts: datetime | None) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if ts else "-"


def format_duration(span: timedelta | None) -> str:
    """`42s`, `3m 05s`, `2h 07m`, `3d 4h`."""
    if span is None:
        return "-"
    seconds = int(span.total_seconds())
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


def _in_order(tasks: Iterable[TaskView]) -> list[TaskView]:
    """Calls in the order they began (their first task's creation), then shard and attempt."""
    listed = list(tasks)
    far = datetime.max.replace(tzinfo=UTC)
    began: dict[str, datetime] = {}
    for task in listed:
        at = task.created_at or task.started_at or far
        name = call_name(task)
        began[name] = min(began.get(name, far), at)
    return sorted(
        listed, key=lambda t: (began[call_name(t)], call_name(t), t.shard, t.attempt or 1, t.job_id)
    )


def render_report(
    run: RunView,
    tasks: Iterable[TaskView],
    *,
    generated_at: datetime,
    prices: Prices | None = None,
    region: str | None = None,
    receipt: Mapping[str, Any] | None = None,
) -> str:
    """The report of `run` as one HTML document (a str). `region`: for console links."""
    ordered = _in_order(tasks)
    summary = digest(ordered, prices=prices, failures=run.failures, region=region, max_failed=100)
    body = "\n".join(
        [
            _header(run),
            _summary(run, summary, generated_at, receipt),
            _timeline(run, ordered, generated_at),
            _costs(summary),
            _failures(run, summary),
            _outputs(run, region),
        ]
    )
    title = f"{run.name}: {run.status.value if run.status else 'unknown'}"
    return _PAGE.format(
        title=_e(title),
        style=_STYLE,
        body=body,
        script=_SCRIPT,
        generated=_e(_when(generated_at)),
        tasks=len(ordered),
    )


# -- sections --------------------------------------------------------------------------------------


def _header(run: RunView) -> str:
    status = run.status.value if run.status else "Unknown"
    css = _RUN_CLASS.get(status, "pending")
    return (
        '<header><div class="title"><h1>'
        + _e(run.name)
        + f'</h1><span class="pill {css}">{_e(status)}</span></div>'
        + f'<div class="id">workflow <code>{_e(run.workflow_id)}</code></div></header>'
    )


def _summary(run: RunView, summary: RunDigest, now: datetime, receipt: Mapping[str, Any] | None) -> str:
    counts = summary.counts
    done = counts[TaskStatus.SUCCEEDED] + counts[TaskStatus.FAILED]
    total = summary.tasks or run.total_tasks
    rows = [
        ("Origin", "dropped into S3" if run.origin == "dropped" else (run.origin or "-")),
        ("Inputs", run.source or "-"),
        ("Dropped by", run.requester or "-"),
        ("Submitted", _when(run.submitted_at)),
        ("Started", _when(run.started_at)),
        ("Ended", _when(run.ended_at)),
        ("Duration", format_duration(run.duration(now))),
        ("Cost", summary.cost.describe()),
    ]
    if receipt:
        rows.append(("Receipt", f"{receipt.get('status', '-')} at {receipt.get('decided_at') or '-'}"))
    cells = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in rows)
    bar = _progress(counts, total)
    chips = "".join(
        f'<span class="chip {_STATUS_CLASS.get(st, "pending")}">{_e(st.value.lower())} {counts[st]}</span>'
        for st in STATUS_ORDER
        if counts[st]
    )
    reasons = ""
    problems = list(run.reasons) + list(run.workflow_failures)
    if problems:
        items = "".join(f"<li>{_e(r)}</li>" for r in problems)
        reasons = f'<div class="problems"><h3>What Cromwell or Courier said</h3><ul>{items}</ul></div>'
    return (
        '<section class="summary"><div class="card"><h2>Summary</h2>'
        f"<dl>{cells}</dl></div>"
        f'<div class="card"><h2>Tasks</h2><div class="big">{done}<small> of {total} done</small></div>'
        f'{bar}<div class="chips">{chips}</div></div></section>{reasons}'
    )


def _progress(counts: Mapping[str, int], total: int) -> str:
    if total <= 0:
        return '<div class="progress"></div>'
    parts = []
    for status in STATUS_ORDER:
        n = counts.get(status, 0)
        if n:
            css = _STATUS_CLASS.get(status, "pending")
            parts.append(f'<span class="{css}" style="width:{100 * n / total:.3f}%"></span>')
    return f'<div class="progress">{"".join(parts)}</div>'


def _timeline(run: RunView, tasks: list[TaskView], now: datetime) -> str:
    if not tasks:
        return '<section><h2>Timeline</h2><p class="muted">No task ran.</p></section>'
    starts = [t for task in tasks for t in (task.created_at, task.started_at) if t is not None]
    ends = [t for task in tasks for t in (task.stopped_at, task.started_at, task.created_at) if t]
    t0 = min([*starts, *([run.submitted_at] if run.submitted_at else [])], default=now)
    t1 = max([*ends, *([run.ended_at] if run.ended_at else [])], default=now)
    if not run.ended:
        t1 = max(t1, now)
    span = max((t1 - t0).total_seconds(), 1.0)
    row = 18 if len(tasks) <= 120 else max(2, min(12, 2400 // len(tasks)))
    labelled = row >= 10
    bar_y, bar_h = (1, row - 2) if labelled else (0, max(row - 1, 1))

    def x(ts: datetime) -> float:
        return _LABEL_WIDTH + (ts - t0).total_seconds() / span * _CHART_WIDTH

    parts: list[str] = []
    y = _AXIS_HEIGHT
    previous_call = None
    group_top = y
    for task in tasks:
        name = call_name(task)
        if name != previous_call:
            if previous_call is not None:
                if not labelled:  # room for the group's label, however few its rows
                    y = max(y, group_top + _GROUP_LABEL_HEIGHT)
                width = _LABEL_WIDTH + _CHART_WIDTH
                parts.append(f'<line class="sep" x1="0" x2="{width}" y1="{y + 0.5}" y2="{y + 0.5}"/>')
            if not labelled:
                parts.append(f'<text class="group" x="4" y="{y + 12}">{_e(_clip(name, 30))}</text>')
            previous_call = name
            group_top = y
        status = task.status.value if task.status else "UNKNOWN"
        css = _STATUS_CLASS.get(status, "pending")
        end = task.stopped_at or (now if not run.ended else run.ended_at or now)
        tip = (
            f"{task.label} - {status.lower()}; queued {format_duration(task.queued_for)},"
            f" ran {format_duration(task.ran_for)}"
            + (f"; exit code {task.exit_code}" if task.exit_code is not None else "")
        )
        shapes = []
        queued_from = task.created_at or task.started_at
        if queued_from is not None:
            wait_end = task.started_at or end
            shapes.append(
                f'<rect class="wait" x="{x(queued_from):.1f}" y="{y + bar_y}"'
                f' width="{max(x(wait_end) - x(queued_from), 1):.1f}" height="{bar_h}"/>'
            )
        if task.started_at is not None:
            shapes.append(
                f'<rect class="ran {css}" x="{x(task.started_at):.1f}" y="{y + bar_y}"'
                f' width="{max(x(end) - x(task.started_at), 1.5):.1f}" height="{bar_h}"/>'
            )
        label = ""
        if labelled:
            label = f'<text x="4" y="{y + row - 5}">{_e(_clip(task.label, 34))}</text>'
        parts.append(
            f'<g class="task" data-status="{_e(status)}" data-job="{_e(task.job_id)}">'
            f"<title>{_e(tip)}</title>{label}{''.join(shapes)}</g>"
        )
        y += row
    if not labelled:
        y = max(y, group_top + _GROUP_LABEL_HEIGHT)
    height = y + 4
    ticks = _axis(span, height)
    legend = (
        '<div class="legend"><span><i class="wait"></i>waiting in the queue</span>'
        '<span><i class="ok"></i>ran, succeeded</span><span><i class="failed"></i>ran, failed</span>'
        '<span><i class="running"></i>running</span><span><i class="pending"></i>other</span>'
        f'<span class="muted">from {_e(_when(t0))}</span></div>'
    )
    svg = (
        f'<svg class="timeline" viewBox="0 0 {_LABEL_WIDTH + _CHART_WIDTH} {height}"'
        f' width="{_LABEL_WIDTH + _CHART_WIDTH}" height="{height}" role="img"'
        f' aria-label="timeline of {len(tasks)} tasks">{"".join(ticks)}{"".join(parts)}</svg>'
    )
    return (
        f"<section><h2>Timeline <small>{len(tasks)} task(s)</small></h2>{legend}"
        f'<div class="scroll">{svg}</div><div id="task-detail" class="muted">'
        "Point at a bar to see its task.</div></section>"
    )


def _axis(span: float, height: int) -> list[str]:
    """The timeline's ticks: a line and an offset from the start every nice step."""
    ticks = []
    step = next((s for s in _NICE_STEPS if span / s <= 8), span / 6)
    for i in range(int(span // step) + 1):
        tx = _LABEL_WIDTH + i * step / span * _CHART_WIDTH
        anchor = "start" if i == 0 else ("end" if tx > _LABEL_WIDTH + _CHART_WIDTH - 30 else "middle")
        ticks.append(
            f'<line class="tick" x1="{tx:.1f}" x2="{tx:.1f}" y1="{_AXIS_HEIGHT - 4}" y2="{height}"/>'
            f'<text class="axis" x="{tx:.1f}" y="14" text-anchor="{anchor}">'
            f"{_tick_label(i * step)}</text>"
        )
    return ticks


def _tick_label(seconds: float) -> str:
    """`0`, `+30s`, `+5m`, `+1h30m`, `+2d`: the offsets on the timeline's axis."""
    whole = int(seconds)
    if whole == 0:
        return "0"
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    return "+" + "".join(f"{n}{unit}" for n, unit in parts if n)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def _costs(summary: RunDigest) -> str:
    if not summary.calls:
        return ""
    most = max((c.cost.on_demand_total for c in summary.calls.values()), default=0.0) or 1.0
    rows = []
    for call in summary.calls.values():
        share = 100 * call.cost.on_demand_total / most
        counts = ", ".join(f"{call.counts[st]} {st.value.lower()}" for st in STATUS_ORDER if call.counts[st])
        rows.append(
            f"<tr><td><code>{_e(call.call)}</code></td><td class=num>{call.tasks}</td>"
            f"<td class=num>{len(call.shards) or '-'}</td><td>{_e(counts)}</td>"
            f"<td class=num>{call.cost.vcpu_hours:,.2f}</td><td class=num>{call.cost.gb_hours:,.2f}</td>"
            f'<td class=num>{_e(call.cost.short())}</td><td class="barcell"><span style="width:{share:.1f}%">'
            "</span></td></tr>"
        )
    return (
        f"<section><h2>Cost by call</h2><p class=muted>{_e(summary.cost.describe())}</p>"
        "<table><thead><tr><th>call</th><th>tasks</th><th>shards</th><th>status</th>"
        "<th>vCPU-h</th><th>GB-h</th><th>estimate</th><th></th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )


def _failures(run: RunView, summary: RunDigest) -> str:
    if not summary.failed_total:
        return ""
    rows = []
    for failed in summary.failed:
        task = failed.task
        log = (
            f'<a href="{_e(failed.log_url)}">{_e(task.log_stream)}</a>'
            if failed.log_url
            else _e(task.log_stream or "-")
        )
        detail = "\n".join(x for x in (task.status_reason, failed.message) if x)
        rows.append(
            f"<tr><td><code>{_e(task.label)}</code></td>"
            f"<td class=num>{_e(task.exit_code if task.exit_code is not None else '-')}</td>"
            f"<td><b>{_e(failed.classification.title)}</b><div class=muted>"
            f"{_e(failed.classification.explanation)}</div></td>"
            f"<td><div class=pre>{_e(detail or '-')}</div></td><td class=log>{log}</td></tr>"
        )
    more = ""
    if summary.failed_total > len(summary.failed):
        more = f"<p class=muted>and {summary.failed_total - len(summary.failed)} more failed task(s).</p>"
    return (
        f"<section><h2>Failures <small>{summary.failed_total}</small></h2>"
        '<table class="failures"><colgroup><col style="width:18%"><col style="width:6%">'
        '<col style="width:27%"><col style="width:29%"><col style="width:20%"></colgroup>'
        "<thead><tr><th>task</th><th>exit</th><th>reason</th><th>what was said</th>"
        f"<th>log</th></tr></thead><tbody>{''.join(rows)}</tbody></table>{more}</section>"
    )


def _outputs(run: RunView, region: str | None) -> str:
    if not run.outputs:
        return ""
    rows = []
    for name, value in list(run.outputs.items())[:_MAX_OUTPUTS]:
        text = value if isinstance(value, str) else _json_text(value)
        url = s3_uri_url(region, text) if region and isinstance(value, str) else None
        shown = f'<a href="{_e(url)}">{_e(text)}</a>' if url else _e(text)
        rows.append(f"<tr><td><code>{_e(name)}</code></td><td><div class=pre>{shown}</div></td></tr>")
    more = max(run.outputs_count, len(run.outputs)) - len(rows)
    tail = f"<p class=muted>and {more} more output(s).</p>" if more > 0 else ""
    return (
        "<section><h2>Outputs</h2><table><thead><tr><th>output</th><th>value</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>{tail}</section>"
    )


def _json_text(value: Any) -> str:
    import json  # noqa: PLC0415

    return json.dumps(value, default=str, ensure_ascii=False)


# -- page ------------------------------------------------------------------------------------------

_STYLE: Final = """
:root { --ok:#2f9e5b; --failed:#d64545; --running:#3b82f6; --aborted:#b7791f; --pending:#9aa5b1;
  --wait:#d8dee6; --ink:#1f2933; --muted:#637381; --line:#e4e7eb; --bg:#f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--ink); background: var(--bg); }
main { max-width: 1120px; margin: 0 auto; padding: 24px 28px 40px; }
header { display: flex; flex-wrap: wrap; align-items: baseline; justify-content: space-between;
  gap: 8px; margin-bottom: 18px; }
.title { display: flex; align-items: center; gap: 12px; }
h1 { font-size: 26px; margin: 0; }
h2 { font-size: 16px; margin: 0 0 10px; }
h2 small, .muted { color: var(--muted); font-weight: normal; }
h3 { font-size: 14px; margin: 0 0 6px; }
code { font: 12.5px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.id { color: var(--muted); }
section { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 16px 18px;
  margin: 0 0 16px; }
section.summary { display: grid; grid-template-columns: 2fr 1fr; gap: 16px; background: none;
  border: 0; padding: 0; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 16px 18px; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
dt { color: var(--muted); } dd { margin: 0; overflow-wrap: anywhere; }
.big { font-size: 34px; font-weight: 600; margin: 4px 0 10px; }
.big small { font-size: 14px; color: var(--muted); font-weight: normal; }
.pill { padding: 3px 12px; border-radius: 999px; color: #fff; font-weight: 600; font-size: 13px; }
.pill.ok, .progress .ok, .chip.ok::before, .legend .ok, .barcell span { background: var(--ok); }
.pill.failed, .progress .failed, .chip.failed::before, .legend .failed { background: var(--failed); }
.pill.running, .progress .running, .chip.running::before, .legend .running { background: var(--running); }
.pill.aborted { background: var(--aborted); }
.pill.pending, .progress .pending, .chip.pending::before, .legend .pending { background: var(--pending); }
.progress { display: flex; height: 12px; border-radius: 6px; overflow: hidden; background: var(--line); }
.progress span { display: block; height: 100%; }
.chips { display: flex; flex-wrap: wrap; gap: 6px 12px; margin-top: 10px; color: var(--muted); }
.chip::before { content: ""; display: inline-block; width: 9px; height: 9px; border-radius: 2px;
  margin-right: 5px; }
.problems { background: #fff5f5; border: 1px solid #f5c2c2; border-radius: 10px; padding: 12px 18px;
  margin: 0 0 16px; }
.problems ul { margin: 0; padding-left: 20px; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 16px; margin-bottom: 8px; color: var(--muted); }
.legend i { display: inline-block; width: 14px; height: 10px; border-radius: 2px; margin-right: 5px;
  vertical-align: -1px; }
.legend i.wait { background: var(--wait); }
.scroll { overflow-x: auto; }
svg.timeline { display: block; max-width: 100%; height: auto;
  font: 11.5px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
svg .axis { fill: var(--muted); }
svg .tick { stroke: var(--line); }
svg .sep { stroke: #c9d1d9; stroke-dasharray: 2 3; }
svg .group { fill: var(--ink); font-weight: 600; }
svg .task text { fill: var(--ink); }
svg .task:hover rect.ran, svg .task.hot rect.ran { stroke: #111; stroke-width: 1; }
svg rect.wait { fill: var(--wait); }
svg rect { rx: 2; }
svg rect.ok { fill: var(--ok); } svg rect.failed { fill: var(--failed); }
svg rect.running { fill: var(--running); } svg rect.pending { fill: var(--pending); }
#task-detail { min-height: 20px; margin-top: 8px; font-size: 13px; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: 12px; text-transform: uppercase;
  letter-spacing: .03em; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.barcell { width: 120px; }
.barcell span { display: block; height: 8px; border-radius: 4px; min-width: 2px; }
.pre { white-space: pre-wrap; overflow-wrap: anywhere; font: 12px ui-monospace, Menlo, Consolas, monospace; }
a { color: #1d5fbf; }
table.failures { table-layout: fixed; }
td.log, table.failures code { overflow-wrap: anywhere; word-break: break-all; font-size: 12px; }
footer { color: var(--muted); font-size: 12px; text-align: center; }
@media (max-width: 800px) { section.summary { grid-template-columns: 1fr; } }
"""

_SCRIPT: Final = """
(function () {
  var root = document.documentElement;
  var tasks = document.querySelectorAll("svg.timeline g.task");
  var detail = document.getElementById("task-detail");
  var i;
  for (i = 0; i < tasks.length; i++) {
    tasks[i].addEventListener("mouseenter", function (event) {
      var title = event.currentTarget.querySelector("title");
      if (detail && title) { detail.textContent = title.textContent; }
    });
  }
  var check = document.getElementById("report-check");
  if (check) { check.textContent = "tasks drawn: " + tasks.length; }
  root.setAttribute("data-tasks-drawn", String(tasks.length));
  root.setAttribute("data-report-ready", "yes");
})();
"""

_PAGE: Final = """<!DOCTYPE html>
<html lang="en" data-tasks-expected="{tasks}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>{title}</title>
<script>
window.addEventListener("error", function () {{
  var root = document.documentElement;
  root.setAttribute("data-script-errors", String(Number(root.getAttribute("data-script-errors") || 0) + 1));
}});
</script>
<style>{style}</style>
</head>
<body>
<main>
{body}
<footer>Run report by Cromwell Courier, {generated}. <span id="report-check"></span></footer>
</main>
<script>{script}</script>
</body>
</html>
"""
