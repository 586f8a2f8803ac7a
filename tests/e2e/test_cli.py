"""The `courier` command against the local stack, with real runs: the demo's scatter and failure,
a refused run and an aborted one. Output is checked through `--json`, and once through rich's
recording console for what a person sees."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from rich.console import Console

from courier_cli.app import Session, cli
from courier_cli.deployment import Location
from local.stack import LocalStack
from tests.e2e.conftest import DEMO_RUNS, RUNS

pytestmark = pytest.mark.e2e


class Courier:
    """Runs `courier --local ...` in this process against the module's stack."""

    def __init__(self, state_file: Path) -> None:
        self.state_file = state_file
        self.env = {"COURIER_LOCAL_STATE": str(state_file)}

    def __call__(self, *args: str, obj: Any = None) -> Result:
        try:
            runner = CliRunner(mix_stderr=False)  # type: ignore[call-arg]
        except TypeError:  # click 8.2 keeps stderr apart by itself
            runner = CliRunner()
        return runner.invoke(cli, ["--local", *args], env=self.env, obj=obj, catch_exceptions=False)

    def json(self, *args: str, code: int = 0) -> Any:
        result = self(*args, "--json")
        assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
        return json.loads(result.stdout)

    def refused(self, *args: str) -> str:
        """The one line a refused command prints, which must exit with status 2."""
        result = self(*args)
        assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("courier: ")
        assert "Traceback" not in result.stderr
        return lines[0]


@pytest.fixture(scope="module")
def courier(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Courier:
    state = tmp_path_factory.mktemp("state") / ".courier-local.json"
    state.write_text(json.dumps(stack.console_state()), encoding="utf-8")
    return Courier(state)


@pytest.fixture(scope="module")
def scatter(courier: Courier) -> str:
    dropped = courier.json("drop", str(DEMO_RUNS / "scatter"), "--to", "cli/scatter/")
    assert dropped["uploaded"] == [
        "cli/scatter/main.wdl",
        "cli/scatter/tasks/greet.wdl",
        "cli/scatter/inputs.json",
    ]
    (run,) = dropped["runs"]
    assert (run["status"], run["inputs_key"], run["reasons"]) == ("Submitted", "cli/scatter/inputs.json", [])
    return str(run["workflow_id"])


@pytest.fixture(scope="module")
def failing(courier: Courier) -> str:
    (run,) = courier.json("drop", str(DEMO_RUNS / "failing"), "--to", "cli/failing")["runs"]
    assert run["status"] == "Submitted"
    return str(run["workflow_id"])


@pytest.fixture(scope="module")
def scatter_ended(courier: Courier, scatter: str) -> dict[str, Any]:
    watched = courier.json("watch", scatter, "--interval", "0.2", "--timeout", "90")
    (run,) = watched["runs"]
    return dict(run)


@pytest.fixture(scope="module")
def failing_ended(courier: Courier, failing: str) -> dict[str, Any]:
    watched = courier.json("watch", "cli/failing/", "--interval", "0.2", "--timeout", "90", code=1)
    (run,) = watched["runs"]
    return dict(run)


def test_watch_follows_a_run_to_its_end(scatter_ended: dict[str, Any]) -> None:
    assert scatter_ended["status"] == "Succeeded"
    assert scatter_ended["tasks"] == {"done": 4, "total": 4, "counts": {"SUCCEEDED": 4}}


def test_watch_of_a_folder_exits_1_when_a_run_failed(failing_ended: dict[str, Any]) -> None:
    assert failing_ended["status"] == "Failed"
    assert failing_ended["tasks"]["counts"] == {"SUCCEEDED": 1, "FAILED": 1}


def test_runs_lists_newest_first_with_progress_and_cost(
    courier: Courier, scatter: str, failing: str, scatter_ended: Any, failing_ended: Any
) -> None:
    listed = courier.json("runs", "--folder", "cli/")["runs"]
    assert [r["workflow_id"] for r in listed] == [failing, scatter]
    latest, earlier = listed
    assert (latest["workflow_name"], latest["status"]) == ("failing_demo", "Failed")
    assert latest["origin"] == "dropped"
    assert latest["tasks"]["done"] == latest["tasks"]["total"] == 2
    assert earlier["tasks"] == {"done": 4, "total": 4, "counts": {"SUCCEEDED": 4}}
    assert earlier["cost"]["tasks_priced"] == 4
    assert earlier["duration_seconds"] > 0

    failed = courier.json("runs", "--status", "failed", "--folder", "cli/")["runs"]
    assert [r["workflow_id"] for r in failed] == [failing]
    assert [r["workflow_id"] for r in courier.json("runs", "--folder", "cli/scatter/")["runs"]] == [scatter]
    assert courier.json("runs", "--folder", "cli/", "--limit", "1")["runs"][0]["workflow_id"] == failing
    since = courier.json("runs", "--since", "2000-01-01", "--folder", "cli/", "--no-cost")["runs"]
    assert since[0].get("cost") is None
    assert courier.json("runs", "--since", "2100-01-01", "--folder", "cli/")["runs"] == []


def test_runs_as_a_person_sees_them(courier: Courier, scatter: str, scatter_ended: Any) -> None:
    console = Console(record=True, width=160, force_terminal=False)
    session = Session(Location(local=True, environ=courier.env), console=console)
    result = courier("runs", "--folder", "cli/scatter/", obj=session)
    assert result.exit_code == 0, result.stderr
    text = console.export_text()
    header = text.splitlines()[0].split()
    assert header == [
        "ID",
        "Workflow",
        "Status",
        "Tasks",
        "Started",
        "(UTC)",
        "Duration",
        "Cost",
        "Origin",
        "Folder",
    ]
    row = text.splitlines()[1]
    assert row.startswith(scatter[:8])
    for shown in ("scatter_demo", "Succeeded", "4/4", "dropped", "cli/scatter/"):
        assert shown in row
    assert re.search(r"~\$\d+\.\d\d", row)


def test_show_groups_tasks_by_call_with_shard_counts(
    courier: Courier, scatter: str, scatter_ended: Any
) -> None:
    shown = courier.json("show", scatter[:8])
    assert shown["workflow_id"] == scatter
    assert shown["status"] == "Succeeded"
    calls = {c["call"]: c for c in shown["calls"]}
    assert calls["scatter_demo.count_letters"]["shards"] == 3
    assert calls["scatter_demo.count_letters"]["counts"] == {"SUCCEEDED": 3}
    assert calls["scatter_demo.summarise"]["counts"] == {"SUCCEEDED": 1}
    assert shown["receipt"]["status"] == "Submitted"
    assert shown["receipt"]["workflow_id"] == scatter
    assert shown["outputs"]["scatter_demo.letters"] == [7, 7, 7]
    assert shown["failed"] == []


def test_show_of_a_failure_names_the_task_exit_code_and_reason(
    courier: Courier, failing: str, failing_ended: Any
) -> None:
    for name in (failing, "cli/failing/inputs.json", f"s3://{_bucket(courier)}/cli/failing/inputs.json"):
        shown = courier.json("show", name)
        assert shown["workflow_id"] == failing
    (task,) = shown["failed"]
    assert (task["call"], task["exit_code"], task["reason"]) == ("failing_demo.align", 3, "script_failed")
    assert task["reason_title"] == "The task's script failed"
    assert shown["causes"] == {"script_failed": 1}


def test_logs_print_the_failed_tasks_stderr(courier: Courier, failing: str, failing_ended: Any) -> None:
    logs = courier.json("logs", failing, "--failed")["logs"]
    (log,) = logs
    assert log["task"] == "failing_demo.align"
    assert log["stream"] == "stderr"
    assert log["source"].startswith("s3://")
    assert "error: reference genome /refs/GRCh38.fa not found" in log["text"]

    tail = courier("logs", failing, "--call", "align", "--tail", "1")
    assert tail.exit_code == 0
    assert tail.stdout == "error: reference genome /refs/GRCh38.fa not found\n"
    out = courier.json("logs", failing, "--call", "prepare", "--stdout")["logs"][0]
    assert out["text"] == "NA12878.prepared\n"


def test_report_writes_a_self_contained_page(
    courier: Courier, scatter: str, scatter_ended: Any, tmp_path: Path
) -> None:
    target = tmp_path / "scatter.html"
    written = courier.json("report", scatter, "--html", str(target))
    assert written["html"] == str(target)
    page = target.read_text(encoding="utf-8")
    assert page.count('<g class="task"') == 4
    assert "scatter_demo" in page
    assert not re.search(r"""(src|href)=["']https?://""", page)


def test_a_refused_run_is_printed_with_every_reason(courier: Courier, tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "main.wdl").write_text((RUNS / "quick" / "main.wdl").read_text())
    (folder / "inputs.json").write_text(json.dumps({"quick.nope": 1}))
    result = courier("drop", str(folder), "--to", "cli/bad/")
    assert result.exit_code == 1, result.stderr
    assert "Rejected cli/bad/inputs.json" in result.stdout
    assert "unknown input 'quick.nope'" in result.stdout
    dropped = json.loads(courier("drop", str(folder), "--to", "cli/bad/", "--json").stdout)
    (run,) = dropped["runs"]
    assert run["status"] == "Rejected"
    assert any("quick.nope" in reason for reason in run["reasons"])


def test_abort_asks_cromwell_and_refuses_an_ended_run(
    courier: Courier, stack: LocalStack, scatter: str, scatter_ended: Any
) -> None:
    (run,) = courier.json("drop", str(RUNS / "abortable"), "--to", "cli/abortable/")["runs"]
    workflow_id = run["workflow_id"]
    assert stack.wait_for(lambda: courier.json("show", workflow_id)["status"] == "Running", timeout=30)
    aborted = courier.json("abort", workflow_id)
    assert aborted == {"workflow_id": workflow_id, "status": aborted["status"]}
    assert aborted["status"] in ("Aborting", "Aborted")
    final = courier.json("watch", workflow_id, "--interval", "0.2", "--timeout", "60", code=1)["runs"][0]
    assert final["status"] == "Aborted"

    line = courier.refused("abort", scatter)
    assert f"run {scatter} already ended (Succeeded" in line
    assert "nothing to abort" in line


def test_bad_input_is_one_line_and_exit_status_2(courier: Courier, tmp_path: Path, scatter: str) -> None:
    assert "no run 00000000-0000-0000-0000-000000000000" in courier.refused(
        "show", "00000000-0000-0000-0000-000000000000"
    )
    assert "no run's workflow id starts with 'ffffffffff'" in courier.refused("logs", "ffffffffff")
    assert "no run for s3://" in courier.refused("show", "cli/nothing/inputs.json")
    assert "is not a workflow id" in courier.refused("show", "not an id!")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "main.wdl").write_text("version 1.0\nworkflow w {}\n")
    assert "holds no inputs file" in courier.refused("drop", str(empty))
    only_inputs = tmp_path / "only_inputs"
    only_inputs.mkdir()
    (only_inputs / "inputs.json").write_text("{}")
    assert "holds no .wdl file" in courier.refused("drop", str(only_inputs))
    assert "no task of run" in courier.refused("logs", scatter, "--call", "no_such_call")


def _bucket(courier: Courier) -> str:
    return str(json.loads(courier.state_file.read_text())["bucket"])


def test_show_and_watch_as_a_person_sees_them(
    courier: Courier, failing: str, failing_ended: Any, scatter: str, scatter_ended: Any
) -> None:
    console = Console(record=True, width=120, force_terminal=False)
    session = Session(Location(local=True, environ=courier.env), console=console)
    assert courier("show", failing[:8], obj=session).exit_code == 0
    shown = console.export_text()
    assert shown.splitlines()[0].startswith("╭─ failing_demo  Failed")
    for expected in (
        "Failed tasks (1)",
        "failing_demo.align",
        "The task's script failed",
        "1 succeeded",
        "1 failed",
    ):
        assert expected in shown
    align = next(line for line in shown.splitlines() if "failing_demo.align" in line and "Reason" not in line)
    assert " 3 " in align  # the exit code

    live = Console(record=True, width=120, force_terminal=True)  # the live view, redrawn in place
    session = Session(Location(local=True, environ=courier.env), console=live)
    assert courier("watch", scatter, "--interval", "0.1", obj=session).exit_code == 0
    watched = live.export_text()
    assert "scatter_demo  Succeeded" in watched
    assert "scatter_demo.count_letters       3" in watched
    assert "3/3" in watched
