"""Slack: Block Kit inside a coloured attachment, user text escaped, always within Slack's limits
(a message that would exceed them is shortened, never refused)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from courier.failures import FailureKind, of
from courier.links import DEFAULT_LOG_GROUP, log_stream_url, s3_uri_url
from courier.models import NotificationKind, RunStatus
from notify.render_email import fmt_counts, fmt_duration, fmt_time, intro, task_label
from notify.summary import FailedTask, RunSummary
from notify.text import clean_block, clip, clip_mrkdwn, one_line, slack_escape

# Slack's limits (Block Kit reference and chat.postMessage).
MAX_BLOCKS = 50
MAX_HEADER = 150
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_CONTEXT_ELEMENTS = 10
MAX_CONTEXT_TEXT = 2000
MAX_MESSAGE_TEXT = 40_000
#: Budget for the sum of all texts in the blocks, well under the message limit.
MAX_TOTAL_BLOCK_TEXT = 36_000

SLACK_FAILED_TASKS = 5
SLACK_STDERR_TASKS = 3
SLACK_OUTPUTS = 50

COLOURS = {
    "success": "#2eb67d",
    "failure": "#e01e5a",
    "warning": "#ecb22e",
    "info": "#36c5f0",
    "neutral": "#8d8d8d",
}


def colour(summary: RunSummary) -> str:
    if summary.kind is NotificationKind.ENDED:
        if summary.status == RunStatus.SUCCEEDED:
            return COLOURS["success"]
        if summary.status == RunStatus.ABORTED:
            return COLOURS["neutral"]
    return COLOURS[summary.severity]


_END_EMOJI: dict[RunStatus | None, str] = {
    RunStatus.SUCCEEDED: ":white_check_mark:",
    RunStatus.FAILED: ":red_circle:",
    RunStatus.ABORTED: ":black_square_for_stop:",
}


def emoji(summary: RunSummary) -> str:
    match summary.kind:
        case NotificationKind.REJECTED:
            return ":no_entry:"
        case NotificationKind.SUBMITTED:
            return ":rocket:"
        case NotificationKind.EARLY_FAILURE:
            return ":x:"
        case NotificationKind.STUCK | NotificationKind.QUEUE_BLOCKED:
            return ":warning:"
        case _:
            pass
    return _END_EMOJI.get(summary.status, ":information_source:")


def esc(value: object, limit: int = 0) -> str:
    """One line of user-controlled text, escaped for mrkdwn."""
    return slack_escape(one_line(value, limit))


def link(url: str | None, label: str) -> str:
    if not url:
        return slack_escape(label)
    return f"<{slack_escape(url)}|{slack_escape(label.replace('|', '/'))}>"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(*texts: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": t} for t in texts]}


def _fields(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "type": "section",
        "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in pairs],
    }


def _summary(summary: RunSummary, now: datetime) -> list[dict[str, Any]]:
    run = summary.run
    duration = fmt_duration(run.duration(now)) + ("" if run.ended_at else " so far")
    source = esc(run.source, 1500) if run.source else "-"
    pairs = [
        ("Workflow", esc(run.name, 500)),
        ("Status", esc(run.status or "-", 50)),
        ("Workflow id", f"`{run.workflow_id}`"),
        ("Dropped by", esc(run.requester or "-", 500)),
        ("Source", source),
        ("Submitted", fmt_time(run.submitted_at)),
        ("Started", fmt_time(run.started_at)),
        ("Ended", fmt_time(run.ended_at)),
        ("Duration", duration),
        ("Tasks", esc(fmt_counts(summary.counts))),
    ]
    return [_fields(pairs)]


def _failed_blocks(task: FailedTask, index: int, region: str, with_stderr: bool) -> list[dict[str, Any]]:
    lines = [
        f"*{index}. {esc(task_label(task.call, task.shard, task.attempt))}*: {task.classification.title}",
        f"Exit code `{task.exit_code if task.exit_code is not None else '-'}`"
        + (f" · Batch: {esc(task.status_reason, 600)}" if task.status_reason else ""),
    ]
    if task.message:
        lines.append(f"Cromwell: {esc(task.message, 600)}")
    links = []
    if task.log_stream:
        links.append(
            link(log_stream_url(region, task.log_stream, task.log_group or DEFAULT_LOG_GROUP), "Log stream")
        )
    if task.call_folder:
        links.append(link(s3_uri_url(region, task.call_folder), "Call folder"))
    if links:
        lines.append(" · ".join(links))
    lines.append(f"_{slack_escape(task.classification.explanation)}_")
    blocks = [_section(clip_mrkdwn("\n".join(lines), MAX_SECTION_TEXT))]
    if with_stderr and task.stderr_tail:
        tail = slack_escape(clean_block("\n".join(task.stderr_tail)).replace("```", "'''"))
        budget = MAX_SECTION_TEXT - 40
        if len(tail) > budget:  # keep the end: the last lines matter most
            tail = tail[-budget:]
            tail = tail[tail.find("\n") + 1 :] if "\n" in tail else tail
        blocks.append(_section(f"stderr (last lines):\n```{tail}```"))
    return blocks


def _routing(summary: RunSummary) -> list[str]:
    """The context line under the summary: project, the run report, the pipeline's next step."""
    routing = []
    if summary.run.project:
        routing.append(f"Project: *{esc(summary.run.project, 200)}*")
    if summary.report is not None:
        report = summary.report
        routing.append(
            link(report.url, "Run report") if report.url else esc(f"The run report {report.error}", 300)
        )
    if summary.next_step is not None:
        routing.append(esc(summary.next_step.line, 1500))
    return routing


def render_slack(summary: RunSummary, *, region: str, now: datetime) -> dict[str, Any]:
    name = one_line(summary.run.name)
    # Slack decodes &amp; &lt; &gt; in every text object, plain_text included: escape there too.
    header = clip_mrkdwn(slack_escape(f"{summary.headline}: {name}"), MAX_HEADER - len(emoji(summary)) - 1)
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": f"{emoji(summary)} {header}", "emoji": True},
        },
        _section(slack_escape(intro(summary))),
        *_summary(summary, now),
    ]
    routing = _routing(summary)
    if routing:
        blocks.append(_context(*routing))
    if summary.reasons:
        text = "*Why the run was rejected*\n" + "\n".join(f"• {esc(r, 1000)}" for r in summary.reasons)
        blocks.append(_section(text))
    if summary.alert:
        a = summary.alert
        pairs = [
            ("Task", esc(task_label(a.call, a.shard, a.attempt), 500)),
            ("Queue", esc(a.queue or "-", 300)),
            ("State", esc(a.task_status or "-", 50)),
            ("For", fmt_duration(a.runnable_seconds)),
            ("Since", fmt_time(a.runnable_since)),
            ("Batch job", f"`{esc(a.job_id or '-', 100)}`"),
        ]
        blocks.append(_fields(pairs))
        blocks.append(_section(f"*Batch's reason*\n{esc(a.reason or '-', 2000)}"))
    if summary.failed:
        shown = summary.failed[:SLACK_FAILED_TASKS]
        for i, task in enumerate(shown, 1):
            blocks += _failed_blocks(task, i, region, with_stderr=i <= SLACK_STDERR_TASKS)
        more = summary.failed_total - len(shown)
        if more > 0 and summary.ended:
            blocks.append(_context(f"… and {more:,} more failed task(s); the e-mail lists up to 20."))
    if summary.causes and summary.ended:
        parts = [
            f"{n:,} x {of(FailureKind(k)).title}"
            for k, n in sorted(summary.causes.items(), key=lambda kv: -kv[1])
        ]
        blocks.append(_context("Failures by cause: " + ", ".join(parts)))
    if summary.cromwell_errors:
        text = "*Cromwell's failure messages*\n" + "\n".join(
            f"• {esc(m, 800)}" for m in summary.cromwell_errors
        )
        blocks.append(_section(text))
    if summary.outputs:
        blocks += _output_blocks(summary, region)
    if summary.cost and summary.ended:
        blocks.append(_context(":moneybag: " + slack_escape(summary.cost.describe())))
    blocks.append(_context(f"Cromwell Courier · {summary.kind.value} · `{summary.run.workflow_id}`"))
    fallback = clip(f"{summary.headline}: {name} ({summary.run.workflow_id})", 1000)
    payload: dict[str, Any] = {
        "text": slack_escape(fallback),
        "attachments": [{"color": colour(summary), "fallback": slack_escape(fallback), "blocks": blocks}],
        "unfurl_links": False,
        "unfurl_media": False,
    }
    return fit_slack(payload)


def _output_blocks(summary: RunSummary, region: str) -> list[dict[str, Any]]:
    lines = []
    for out in summary.outputs[:SLACK_OUTPUTS]:
        value = link(s3_uri_url(region, out.value), out.value) if out.is_s3 else esc(out.value, 300)
        lines.append(f"• `{esc(out.name, 200).replace('`', "'")}`: {value}")
    shown = min(len(summary.outputs), SLACK_OUTPUTS)
    blocks = [_section(f"*Outputs* ({shown:,} of {summary.outputs_total:,})")]
    chunk: list[str] = []
    size = 0
    for raw in lines:
        line = clip_mrkdwn(raw, MAX_SECTION_TEXT)
        if chunk and size + len(line) + 1 > MAX_SECTION_TEXT:
            blocks.append(_section("\n".join(chunk)))
            chunk, size = [], 0
        chunk.append(line)
        size += len(line) + 1
    if chunk:
        blocks.append(_section("\n".join(chunk)))
    if summary.outputs_total > shown:
        blocks.append(_context(f"… and {summary.outputs_total - shown:,} more output(s)."))
    return blocks


# -- limits ---------------------------------------------------------------------------------------


def _block_texts(block: dict[str, Any]) -> list[str]:
    texts = []
    if isinstance(block.get("text"), dict):
        texts.append(str(block["text"].get("text", "")))
    for item in block.get("fields", []) + block.get("elements", []):
        texts.append(str(item.get("text", "")))
    return texts


def _fit_block(block: dict[str, Any]) -> dict[str, Any]:
    kind = block.get("type")
    if kind == "header":
        text = block["text"]
        return {**block, "text": {**text, "text": clip_mrkdwn(one_line(text["text"]), MAX_HEADER) or "-"}}
    if kind == "section":
        out = dict(block)
        if "text" in out:
            out["text"] = {**out["text"], "text": clip_mrkdwn(out["text"]["text"], MAX_SECTION_TEXT) or "-"}
        if "fields" in out:
            out["fields"] = [
                {**f, "text": clip_mrkdwn(f["text"], MAX_FIELD_TEXT) or "-"}
                for f in out["fields"][:MAX_FIELDS]
            ]
        return out
    if kind == "context":
        return {
            **block,
            "elements": [
                {**e, "text": clip_mrkdwn(e["text"], MAX_CONTEXT_TEXT) or "-"}
                for e in block["elements"][:MAX_CONTEXT_ELEMENTS]
            ],
        }
    return block


def fit_slack(payload: dict[str, Any]) -> dict[str, Any]:
    """Apply Slack's limits: texts clipped, at most 50 blocks, total text bounded. The summary
    at the top is kept; blocks are dropped from the end, with a note saying so."""
    note = _context("_Message shortened to fit Slack's limits; the e-mail has the full report._")
    attachments = []
    for attachment in payload.get("attachments", []):
        blocks = [_fit_block(b) for b in attachment.get("blocks", [])]
        total = 0
        kept: list[dict[str, Any]] = []
        budget = MAX_TOTAL_BLOCK_TEXT - len(payload.get("text", ""))
        truncated = False
        for block in blocks:
            size = sum(len(t) for t in _block_texts(block))
            if len(kept) >= MAX_BLOCKS - 1 or total + size > budget:
                truncated = True
                break
            kept.append(block)
            total += size
        if truncated:
            kept.append(note)
        attachments.append({**attachment, "blocks": kept})
    text = clip_mrkdwn(str(payload.get("text", "")), MAX_MESSAGE_TEXT) or "Cromwell Courier notification"
    return {**payload, "text": text, "attachments": attachments}
