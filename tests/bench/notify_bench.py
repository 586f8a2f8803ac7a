"""Benchmark: build the summary of a 10,000-task failed run from a paginated ledger stream and
render both messages; measure wall time and tracemalloc peak."""

from __future__ import annotations

import time
import tracemalloc
from datetime import UTC, datetime
from typing import Any

from courier.ledger.records import OutboxEvent
from notify.render_email import render_email
from notify.render_slack import render_slack
from notify.summary import SummaryBuilder, SummaryOptions
from tests.support.notify_fixtures import PRICES, FakeStderr, MemoryLedger, event_item, lazy_tasks, run_item

WF = "99999999-9999-5999-8999-999999999999"
TASKS = 10_000


def measure(tasks: int = TASKS, failed_every: int = 10) -> dict[str, Any]:
    ledger = MemoryLedger(
        stored_run=run_item(WF, status="Failed", workflow_name="big"),
        task_factory=lambda: lazy_tasks(WF, tasks, failed_every=failed_every),
    )
    builder = SummaryBuilder(ledger, SummaryOptions(prices=PRICES), stderr=FakeStderr())
    event = OutboxEvent.from_item(event_item(WF, "ENDED", {"status": "Failed"}))
    now = datetime.now(UTC)
    tracemalloc.start()
    started = time.perf_counter()
    summary = builder.build(event)
    built = time.perf_counter()
    mail = render_email(summary, region="us-east-1", now=now)
    slack = render_slack(summary, region="us-east-1", now=now)
    done = time.perf_counter()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "tasks": tasks,
        "failed_total": summary.failed_total,
        "failed_listed": len(summary.failed),
        "build_seconds": round(built - started, 3),
        "render_seconds": round(done - built, 3),
        "peak_bytes": peak,
        "email_bytes": len(mail.sns_message().encode("utf-8")),
        "slack_blocks": len(slack["attachments"][0]["blocks"]),
    }


def render(fig: dict[str, Any]) -> list[str]:
    return [
        f"A failed run of {fig['tasks']} tasks ({fig['failed_total']} failed, {fig['failed_listed']} listed "
        "in the message) read from a paginated ledger stream; the report is built, then the email and "
        "the Slack message are rendered. Peak memory is tracemalloc's peak over the whole of it.",
        "",
        "| tasks | build s | render s | peak memory MB | email bytes | Slack blocks |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {fig['tasks']} | {fig['build_seconds']} | {fig['render_seconds']} "
        f"| {fig['peak_bytes'] / 1e6:.2f} "
        f"| {fig['email_bytes']} | {fig['slack_blocks']} |",
    ]


def run(report: dict[str, Any]) -> None:
    """Add this benchmark's figures to `report` under `notify`."""
    report["notify"] = {"report_of_10000_task_failed_run": measure()}


if __name__ == "__main__":
    figures: dict[str, Any] = {}
    run(figures)
    print(figures)
