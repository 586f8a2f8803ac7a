"""A 10,000-task run: the report is built in one streaming pass with bounded memory."""

from __future__ import annotations

from tests.bench import notify_bench


def test_10000_task_failed_run_in_bounded_memory() -> None:
    figures = notify_bench.measure(10_000, failed_every=10)
    assert figures["failed_total"] == 1000
    assert figures["failed_listed"] == 20
    # Holding the 10,000 task dicts alone takes well over 20 MB; the streaming build stays far below.
    assert figures["peak_bytes"] < 4 * 1024 * 1024, figures
    assert figures["email_bytes"] <= 240_000
    assert figures["slack_blocks"] <= 50


def test_peak_memory_does_not_grow_with_the_run() -> None:
    small = notify_bench.measure(1_000, failed_every=10)["peak_bytes"]
    large = notify_bench.measure(20_000, failed_every=10)["peak_bytes"]
    assert large < small * 2, (small, large)


def test_run_fills_the_report() -> None:
    report: dict[str, object] = {}
    notify_bench.run(report)
    assert isinstance(report["notify"], dict)
    assert report["notify"]["report_of_10000_task_failed_run"]["tasks"] == 10_000
