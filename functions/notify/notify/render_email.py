"""E-mail through SNS: a plain-text body written for e-mail, a short `default` text for every
other protocol, a Subject SNS accepts for any workflow name, and message attributes to filter on."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from courier.failures import FailureKind, of
from courier.links import DEFAULT_LOG_GROUP, log_stream_url, s3_uri_url
from courier.models import NotificationKind
from notify.summary import Alert, FailedTask, RunSummary
from notify.text import ascii_only, clip, one_line

#: SNS: "Subjects must be ASCII text that begins with a letter, number, or punctuation mark; must
#: not include line breaks or control characters; and must be less than 100 characters long."
SUBJECT_MAX = 99
SUBJECT_FALLBACK = "Cromwell Courier notification"
#: SNS accepts 256 KiB per message, attributes included; keep a margin.
MESSAGE_MAX_BYTES = 240_000
ATTRIBUTE_MAX = 256
RULE = "-" * 72


@dataclass(frozen=True, slots=True)
class EmailMessage:
    subject: str
    body: str
    short: str
    attributes: dict[str, str]

    def sns_message(self) -> str:
        """The `Message` for `MessageStructure=json`."""
        return json.dumps({"default": self.short, "email": self.body}, ensure_ascii=False)


def sns_subject(text: str) -> str:
    """A Subject SNS accepts: printable ASCII, one line, 1..99 characters, starting with a letter,
    digit or punctuation mark. Non-ASCII is transliterated when it can be, else dropped."""
    subject = one_line(ascii_only(one_line(text)))
    subject = "".join(ch for ch in subject if 32 <= ord(ch) < 127).strip()
    subject = clip(subject, SUBJECT_MAX)
    return subject or SUBJECT_FALLBACK


def subject_for(summary: RunSummary) -> str:
    return sns_subject(f"Courier: {summary.headline}: {summary.run.name}")


def attributes_for(summary: RunSummary) -> dict[str, str]:
    """SNS message attributes (String); empty ones are left out, as SNS refuses empty values."""
    values = {
        "event_type": summary.kind.value,
        "status": summary.status,
        "workflow_name": summary.run.name,
        "project": summary.run.project or "",
        "severity": summary.severity,
    }
    out = {}
    for key, value in values.items():
        text = clip(one_line(value), ATTRIBUTE_MAX)
        if text:
            out[key] = text
    return out


# -- formatting -----------------------------------------------------------------------------------


def fmt_time(ts: datetime | None) -> str:
    return ts.strftime("%Y-%m-%d %H:%M:%S UTC") if ts else "-"


def fmt_duration(delta: timedelta | float | None) -> str:
    if delta is None:
        return "-"
    seconds = int(delta.total_seconds() if isinstance(delta, timedelta) else delta)
    days, rest = divmod(max(seconds, 0), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h {minutes:02d} min"
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def fmt_counts(counts: dict[str, int]) -> str:
    if not counts:
        return "none yet"
    order = ["SUCCEEDED", "FAILED", "RUNNING", "STARTING", "RUNNABLE", "PENDING", "SUBMITTED"]
    keys = sorted(counts, key=lambda k: (order.index(k) if k in order else len(order), k))
    total = sum(counts.values())
    return ", ".join(f"{k.lower()} {counts[k]:,}" for k in keys) + f" (total {total:,})"


def task_label(call: str | None, shard: int, attempt: int | None) -> str:
    parts = [one_line(call or "(unknown call)", 300)]
    if shard >= 0:
        parts.append(f"shard {shard}")
    if attempt is not None:
        parts.append(f"attempt {attempt}")
    return ", ".join(parts)


_INTROS = {
    NotificationKind.REJECTED: "Courier did not submit {name}: the run folder has problems (listed below).",
    NotificationKind.SUBMITTED: "{name} was submitted to Cromwell.",
    NotificationKind.EARLY_FAILURE: "A task of {name} failed. The run goes on; Cromwell may retry the task.",
    NotificationKind.STUCK: "A task of {name} has not moved for a long time.",
    NotificationKind.QUEUE_BLOCKED: "A job of {name} blocks its AWS Batch queue: it cannot be placed as is.",
    NotificationKind.ENDED: "{name} ended: {status}.",
}


def intro(summary: RunSummary) -> str:
    name = one_line(summary.run.name, 300)
    template = _INTROS.get(summary.kind, "{name}")
    text = template.format(name=name, status=summary.status or "unknown status")
    return f"{text} {summary.group_note}" if summary.group_note else text


def summary_rows(summary: RunSummary, now: datetime) -> list[tuple[str, str]]:
    run = summary.run
    return [
        ("Workflow", one_line(run.name, 500)),
        ("Id", run.workflow_id),
        ("Status", one_line(run.status, 50) or "-"),
        ("Source", one_line(run.source or "-", 1000)),
        ("Dropped by", one_line(run.requester or "-", 500)),
        ("Submitted", fmt_time(run.submitted_at)),
        ("Started", fmt_time(run.started_at)),
        ("Ended", fmt_time(run.ended_at)),
        ("Duration", fmt_duration(run.duration(now)) + ("" if run.ended_at else " so far")),
        ("Tasks", fmt_counts(summary.counts)),
    ]


def _heading(title: str) -> list[str]:
    return ["", title, "-" * len(title)]


def _failed_lines(task: FailedTask, index: int, region: str) -> list[str]:
    lines = [f"{index}. {task_label(task.call, task.shard, task.attempt)}"]
    lines.append(f"   Cause:        {task.classification.title}. {task.classification.explanation}")
    lines.append(f"   Exit code:    {task.exit_code if task.exit_code is not None else '-'}")
    lines.append(f"   Batch reason: {one_line(task.status_reason or '-', 1000)}")
    if task.message:
        lines.append(f"   Cromwell:     {one_line(task.message, 1000)}")
    if task.job_id:
        lines.append(
            f"   Batch job:    {task.job_id}" + (f" (queue {one_line(task.queue)})" if task.queue else "")
        )
    if task.log_stream:
        lines.append(
            f"   Log stream:   {log_stream_url(region, task.log_stream, task.log_group or DEFAULT_LOG_GROUP)}"
        )
    if task.call_folder:
        lines.append(f"   Call folder:  {s3_uri_url(region, task.call_folder)}")
    if task.stderr_tail is not None:
        lines.append(f"   Last {len(task.stderr_tail)} line(s) of stderr ({task.stderr_uri}):")
        lines.extend(f"   | {line}" for line in task.stderr_tail)
        if not task.stderr_tail:
            lines.append("   | (empty)")
    elif task.stderr_uri:
        lines.append(f"   stderr:       {task.stderr_uri} (could not be read)")
    return lines


def _alert_lines(alert: Alert, summary: RunSummary) -> list[str]:
    label = "Blocking job" if summary.kind is NotificationKind.QUEUE_BLOCKED else "Task"
    return [
        *_heading(label),
        f"Task:         {task_label(alert.call, alert.shard, alert.attempt)}",
        f"Batch job:    {alert.job_id or '-'}",
        f"Queue:        {one_line(alert.queue or '-', 300)}",
        f"State:        {one_line(alert.task_status or '-', 50)}",
        f"Since:        {fmt_time(alert.runnable_since)}",
        f"For:          {fmt_duration(alert.runnable_seconds)}",
        f"Batch reason: {alert.reason or '-'}",
    ]


def _failed_section(summary: RunSummary, region: str) -> list[str]:
    lines: list[str] = []
    title = "First failed task" if summary.kind is NotificationKind.EARLY_FAILURE else "Failed tasks"
    shown = len(summary.failed)
    count = f" ({shown} of {summary.failed_total:,})" if summary.failed_total > shown else f" ({shown})"
    lines += _heading(title + (count if summary.ended else ""))
    for i, task in enumerate(summary.failed, 1):
        lines += _failed_lines(task, i, region)
        lines.append("")
    if summary.failed_total > shown and summary.ended:
        lines.append(f"... and {summary.failed_total - shown:,} more failed task(s).")
    return lines


def _end_sections(summary: RunSummary, region: str) -> list[str]:
    lines: list[str] = []
    if summary.causes:
        lines += _heading("Failures by cause")
        for kind, n in sorted(summary.causes.items(), key=lambda kv: -kv[1]):
            lines.append(f"{n:>7,}  {of(FailureKind(kind)).title}")
    if summary.cromwell_errors:
        lines += _heading("Cromwell's failure messages")
        lines += [f"* {m}" for m in summary.cromwell_errors]
    if summary.outputs:
        lines += _heading(f"Outputs ({len(summary.outputs)} of {summary.outputs_total:,})")
        for out in summary.outputs:
            link = s3_uri_url(region, out.value) if out.is_s3 else None
            lines.append(f"* {out.name} = {out.value}" + (f"\n    {link}" if link else ""))
        if summary.outputs_total > len(summary.outputs):
            lines.append(f"... and {summary.outputs_total - len(summary.outputs):,} more.")
    if summary.cost:
        lines += _heading("Cost (estimate)")
        lines.append(summary.cost.describe())
        lines.append("Computed from each task's vCPUs, memory and run time at the configured prices;")
        lines.append("it leaves out storage, data transfer and idle instances. Not a bill.")
    return lines


def render_email(summary: RunSummary, *, region: str, now: datetime) -> EmailMessage:
    rows = summary_rows(summary, now)
    if summary.run.project:
        rows.append(("Project", one_line(summary.run.project, 200)))
    if summary.report is not None:
        rows.append(("Report", summary.report.url or str(summary.report.error)))
    if summary.next_step is not None:
        rows.append(("Next step", one_line(summary.next_step.line, 2000)))
    width = max(len(k) for k, _ in rows)
    lines = [intro(summary), "", *(f"{k.ljust(width)}  {v}" for k, v in rows)]
    if summary.reasons:
        lines += _heading("Why the run was rejected")
        lines += [f"* {r}" for r in summary.reasons]
        lines += ["", "Fix the files in the run folder and drop the inputs file again."]
    if summary.alert:
        lines += _alert_lines(summary.alert, summary)
    if summary.failed:
        lines += _failed_section(summary, region)
    if summary.ended:
        lines += _end_sections(summary, region)
    lines += ["", RULE, f"Cromwell Courier - {summary.kind.value} event, workflow {summary.run.workflow_id}"]
    body = "\n".join(lines) + "\n"
    short = f"{summary.headline}: {one_line(summary.run.name, 300)} ({summary.run.workflow_id})"
    message = EmailMessage(subject_for(summary), body, short, attributes_for(summary))
    return fit_sns(message)


def fit_sns(message: EmailMessage) -> EmailMessage:
    """Shorten the e-mail body until the whole SNS message fits (never fail on size)."""
    original = message.body
    marker = "\n\n[message shortened to fit the e-mail size limit]\n"
    keep = len(original)
    body = original
    for _ in range(30):
        candidate = EmailMessage(message.subject, body, message.short, message.attributes)
        size = len(candidate.sns_message().encode("utf-8"))
        if size <= MESSAGE_MAX_BYTES:
            return candidate
        keep = max(keep - (size - MESSAGE_MAX_BYTES) - len(marker) - 64, 0)
        body = original[:keep] + marker
    return EmailMessage(message.subject, marker.strip(), message.short, message.attributes)
