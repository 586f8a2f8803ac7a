"""A batch's digest as an e-mail (plain text) and a Slack message (mrkdwn, escaped), within the
same limits as a run's messages (`fit_sns`, `fit_slack`)."""

from __future__ import annotations

from typing import Any

from courier.links import log_stream_url, s3_uri_url
from notify.digest import BatchDigest, SampleLine
from notify.render_email import ATTRIBUTE_MAX, RULE, EmailMessage, fit_sns, fmt_duration, sns_subject
from notify.render_slack import COLOURS, _context, _fields, _section, esc, fit_slack, link
from notify.text import clip, one_line, slack_escape

#: Samples listed by name in the Slack message (the e-mail lists every sample read).
SLACK_SAMPLES = 30
SLACK_FAILED = 10


def _money(value: float | None) -> str:
    return f"~${value:,.2f}" if value is not None else "-"


def _status(line: SampleLine) -> str:
    return line.status.value if line.status else "unknown"


def _why(line: SampleLine) -> tuple[str, str, str | None]:
    """The failing task, the reason, and the log stream of a sample that did not succeed."""
    task = line.first_failed
    if task is not None:
        reason = (
            task.message or task.status_reason or (f"exit code {task.exit_code}" if task.exit_code else "")
        )
        return task.label, reason or "-", task.log_stream
    return "-", "; ".join(line.reasons) or "-", None


def _totals(digest: BatchDigest) -> str:
    parts = [f"{status.lower()} {n:,}" for status, n in digest.totals.items()]
    return ", ".join(parts) + f" (runs {digest.batch.ended:,})"


def _recovered_text(digest: BatchDigest) -> str:
    recovered = digest.recovered
    still = [line for line in digest.samples if not line.ok]
    return (
        f"This re-run of batch {digest.batch.rerun_of or '-'} recovered {len(recovered):,} of "
        f"{len(digest.samples):,} sample(s)" + (f"; {len(still):,} still failed." if still else ".")
    )


def _attributes(digest: BatchDigest) -> dict[str, str]:
    values = {
        "event_type": "BATCH_ENDED",
        "workflow_name": digest.name,
        "severity": digest.severity,
        "batch_id": digest.batch.batch_id,
    }
    return {k: t for k, v in values.items() if (t := clip(one_line(v), ATTRIBUTE_MAX))}


def render_digest_email(digest: BatchDigest, *, region: str) -> EmailMessage:
    name = one_line(digest.name, 300)
    batch = digest.batch
    lines = [
        f"The {'re-run' if digest.is_rerun else 'batch'} of {name} has ended: {_totals(digest)}.",
        "",
        f"Batch     {batch.batch_id}",
        f"Source    {one_line(digest.source or '-', 1000)}",
        f"Cost      {_money(digest.cost_total)} (estimate, on-demand prices for tasks of unknown pricing)",
    ]
    if digest.outputs_uri:
        lines.append(f"Outputs   {digest.outputs_uri}")
    if digest.next_step is not None:
        lines.append(f"Next step {one_line(digest.next_step.line, 2000)}")
    if digest.is_rerun:
        lines += ["", _recovered_text(digest)]
    width = max([len(one_line(x.sample, 60)) for x in digest.samples] + [6])
    lines += ["", "Samples", "-------", f"{'sample'.ljust(width)}  {'status':<10}  {'duration':<14}  cost"]
    for line in digest.samples:
        sample = one_line(line.sample, 60).ljust(width)
        lines.append(f"{sample}  {_status(line):<10}  {fmt_duration(line.duration):<14}  {_money(line.cost)}")
    if digest.left_out:
        lines.append(f"... and {digest.left_out:,} more sample(s), counted in the totals above")
    failed = digest.failed
    if failed:
        lines += ["", "Failed samples", "--------------"]
        for line in failed:
            task, reason, stream = _why(line)
            lines.append(f"* {one_line(line.sample, 60)} ({_status(line)}, run {line.workflow_id})")
            lines.append(f"  task:   {one_line(task, 300)}")
            lines.append(f"  reason: {one_line(reason, 1000)}")
            if stream:
                lines.append(f"  log:    {log_stream_url(region, stream)}")
    commands = digest.rerun_commands()
    if commands:
        lines += ["", "Re-run the failures (call caching reuses the tasks that succeeded):"]
        lines += [f"  {command}" for command in commands]
    lines += ["", RULE, f"Cromwell Courier - BATCH_ENDED event, batch {batch.batch_id}"]
    short = f"{digest.headline}: {name} (batch {batch.batch_id})"
    subject = sns_subject(f"Courier: {digest.headline}: {name}")
    return fit_sns(EmailMessage(subject, "\n".join(lines) + "\n", short, _attributes(digest)))


def render_digest_slack(digest: BatchDigest, *, region: str) -> dict[str, Any]:
    name = one_line(digest.name, 300)
    emoji = ":white_check_mark:" if digest.all_succeeded else ":red_circle:"
    header = clip(slack_escape(f"{digest.headline}: {name}"), 140)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"{emoji} {header}", "emoji": True}},
        _fields(
            [
                ("Runs", esc(_totals(digest), 500)),
                ("Cost", _money(digest.cost_total)),
                ("Source", esc(digest.source or "-", 500)),
                (
                    "Outputs",
                    link(s3_uri_url(region, digest.outputs_uri), "outputs.tsv")
                    if digest.outputs_uri
                    else "-",
                ),
            ]
        ),
    ]
    if digest.next_step is not None:
        blocks.append(_section("*Next step* " + esc(digest.next_step.line, 1500)))
    if digest.is_rerun:
        blocks.append(_section(slack_escape(_recovered_text(digest))))
    rows = [
        f"{esc(line.sample, 60)} · {_status(line)} · {fmt_duration(line.duration)} · {_money(line.cost)}"
        for line in digest.samples[:SLACK_SAMPLES]
    ]
    more = len(digest.samples) - len(rows) + digest.left_out
    if more > 0:
        rows.append(f"… and {more:,} more (the e-mail lists them)")
    blocks.append(_section("*Samples* (sample · status · duration · cost)\n" + "\n".join(rows)))
    for line in digest.failed[:SLACK_FAILED]:
        task, reason, stream = _why(line)
        log = f" · {link(log_stream_url(region, stream), 'log')}" if stream else ""
        blocks.append(
            _section(
                f"*{esc(line.sample, 60)}* ({_status(line)}): `{esc(task, 200)}`{log}\n{esc(reason, 800)}"
            )
        )
    commands = digest.rerun_commands()
    if commands:
        blocks.append(
            _section("*Re-run the failures*\n" + "\n".join(f"`{slack_escape(c)}`" for c in commands))
        )
    blocks.append(_context(f"Cromwell Courier · BATCH_ENDED · `{esc(digest.batch.batch_id, 100)}`"))
    fallback = slack_escape(clip(f"{digest.headline}: {name} (batch {digest.batch.batch_id})", 1000))
    colour = COLOURS["success"] if digest.all_succeeded else COLOURS["failure"]
    payload: dict[str, Any] = {
        "text": fallback,
        "attachments": [{"color": colour, "fallback": fallback, "blocks": blocks}],
        "unfurl_links": False,
        "unfurl_media": False,
    }
    return fit_slack(payload)
