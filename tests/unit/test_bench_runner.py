"""The benchmark runner's bookkeeping: every benchmark runs (tiny sizes) and the document gets the
machine, and one section per benchmark with its exact command. No timing is asserted."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from tests.bench.__main__ import BENCHMARKS, QUICK, command_for, document, machine, main, run

TINY = replace(
    QUICK,
    cold_runs=1,
    shards=20,
    stack_shards=5,
    reconciler_runs=5,
    lifecycle_hours=(1,),
    lifecycle_tasks=(1, 2),
    lifecycle_failed=((1, 2, 2),),
    concurrency=(1, 3),
    notify_tasks=50,
    latency_repeats=1,
    build="never",
)


def fake_build(root: Path) -> Path:
    """A `sam build` output with one function and the layer (the runner must not build in tests)."""
    (root / "SubmitFunction" / "submit").mkdir(parents=True)
    (root / "SubmitFunction" / "submit" / "handler.py").write_text("x = 1\n" * 100)
    (root / "CourierLayer" / "python" / "courier").mkdir(parents=True)
    (root / "CourierLayer" / "python" / "courier" / "__init__.py").write_text("")
    return root


def test_quick_run_writes_every_section(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    sizes = replace(TINY, build_dir=fake_build(tmp_path / "build"))

    results = run(list(BENCHMARKS), sizes, quick=True, doc=doc, argv="python -m tests.bench --quick")

    text = doc.read_text(encoding="utf-8")
    assert set(results) == set(BENCHMARKS)
    assert "## Machine" in text
    assert machine()["python"] in text
    for name, bench in BENCHMARKS.items():
        block = re.search(rf"<!-- bench:{name} -->(.*?)<!-- /bench:{name} -->", text, flags=re.S)
        assert block is not None, name
        assert f"## {bench.title}" in block.group(1)
        assert f"Command: `python -m tests.bench --quick {name}`" in block.group(1)
        raw = re.search(r"```json\n(.*?)\n```", block.group(1), flags=re.S)
        assert raw is not None
        assert json.loads(raw.group(1)) == json.loads(json.dumps(results[name], default=str))
    sizes_rows = {row["name"]: row["kind"] for row in results["deploy-size"]["artifacts"]}
    assert sizes_rows == {"SubmitFunction": "function", "CourierLayer": "layer"}
    for scatter in ("scatter_stack", "scatter_memory"):
        assert results["monitor"][scatter]["ledger_exact"] is True, scatter
        assert results["monitor"][scatter]["batch_item_failures"] == 0
    assert results["monitor"]["scatter_stack"]["dynamodb_calls"]["TransactWriteItems"] > 0
    calls = results["cromwell-calls"]
    assert sum(calls["submit"].values()) == 1
    assert len(calls["rows"]) == 6  # 4 Succeeded, then the failed run beside 1 and 3 active runs
    assert all(row[mode]["ended"] for row in calls["rows"] for mode in ("with callback", "without callback"))
    modes = ("with callback", "without callback")
    failed = [row for row in calls["rows"] if row.get("fails_at") == 2]
    assert len(failed) == 2
    assert all(row[mode]["failure_reported"] for row in failed for mode in modes)
    assert all(calls["summary"][mode]["failures_reported"] for mode in modes)
    assert [r["module"] for r in results["cold-start"]["handlers"]] == [
        "submit.handler",
        "submit.rows",
        "monitor.batch_events",
        "monitor.callback",
        "monitor.schedule",
        "notify.handler",
    ]


def test_one_benchmark_rewrites_only_its_section() -> None:
    host = {"cpu": "cpu", "os": "os", "python": "CPython 3.13"}
    first = document(
        "",
        {
            "notify": "<!-- bench:notify -->\nold notify\n<!-- /bench:notify -->",
            "latency": "<!-- bench:latency -->\nkept latency\n<!-- /bench:latency -->",
        },
        host,
        "then",
        "python -m tests.bench",
    )

    second = document(
        first,
        {"notify": "<!-- bench:notify -->\nnew notify\n<!-- /bench:notify -->"},
        host,
        "now",
        "python -m tests.bench notify",
    )

    assert "new notify" in second
    assert "old notify" not in second
    assert "kept latency" in second
    assert second.index("bench:notify") < second.index("bench:latency")  # registry order
    assert "`python -m tests.bench notify`" in second


def test_unknown_benchmark_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["no-such-bench", "--output", str(tmp_path / "b.md")])
    assert not (tmp_path / "b.md").exists()


def test_the_command_names_the_options_that_change_the_figures() -> None:
    assert command_for("monitor", False) == "python -m tests.bench monitor"
    assert (
        command_for("monitor", True, ["--stack-shards", "2000"])
        == "python -m tests.bench --quick --stack-shards 2000 monitor"
    )


def test_the_lifecycle_targets_put_the_failed_runs_beside_their_target() -> None:
    from tests.bench import lifecycle  # noqa: PLC0415

    summary = {
        "target_calls": 4,
        "most_calls": 4,
        "calls_met": True,
        "most_calls_failed": 4,
        "failures_reported": True,
        "latency_median_s": 70.0,
        "latency_worst_s": 100.0,
        "latency_target_s": 120,
    }
    lines = lifecycle.targets({"summary": {"without callback": summary}})
    assert lines[1] == (
        "Cromwell calls per failed workflow, without callback: at most 4 "
        "(target <= 4, failing task reported: met)"
    )
    for worse in ({"failures_reported": False}, {"most_calls_failed": 5}):
        lines = lifecycle.targets({"summary": {"without callback": {**summary, **worse}}})
        assert lines[1].endswith("NOT met)"), worse
