"""The runs console's pieces without AWS: the order of a drop, the folders it refuses, the ages
`--since` takes, which task `logs` picks, and the per-call digest of a run's tasks."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from courier.costs import CostEstimate, Prices, pricing_class
from courier.digest import digest
from courier.failures import FailureKind
from courier.ledger.records import FailureEntry
from courier.models import RunStatus, TaskStatus
from courier_cli.app import parse_since, parse_statuses
from courier_cli.drop import plan_drop
from courier_cli.errors import ConsoleError
from courier_cli.logs import LogReader, select_tasks
from tests.support.run_samples import T0, scatter_tasks


def write(folder: Path, *names: str) -> None:
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}" if name.endswith(".json") else "version 1.0\n", encoding="utf-8")


def test_a_drop_uploads_wdl_first_then_options_and_labels_then_inputs_last(tmp_path: Path) -> None:
    write(
        tmp_path,
        "sampleB.inputs.json",
        "inputs.json",
        "labels.json",
        "options.json",
        "notes.txt",
        "main.wdl",
        "tasks/align.wdl",
        "sampleA.inputs.json.receipt.json",
        ".hidden/x.wdl",
        "sampleA.inputs.json.report.html",
    )
    plan = plan_drop(tmp_path, "runs/rna")
    assert plan.prefix == "runs/rna/"
    assert [u.key for u in plan.uploads] == [
        "runs/rna/main.wdl",
        "runs/rna/tasks/align.wdl",
        "runs/rna/labels.json",
        "runs/rna/options.json",
        "runs/rna/notes.txt",
        "runs/rna/inputs.json",
        "runs/rna/sampleB.inputs.json",
    ]
    assert [u.key for u in plan.inputs] == ["runs/rna/inputs.json", "runs/rna/sampleB.inputs.json"]


def test_the_default_prefix_is_the_folders_name(tmp_path: Path) -> None:
    folder = tmp_path / "rnaseq"
    write(folder, "main.wdl", "inputs.json")
    assert plan_drop(folder, None).prefix == "runs/rnaseq/"


@pytest.mark.parametrize(
    ("names", "to", "message"),
    [
        (("main.wdl",), None, "holds no inputs file"),
        (("inputs.json",), None, "holds no .wdl file"),
        (("main.wdl", "inputs.json"), "runs/../x/", "'..' segment"),
        (("main.wdl", "inputs.json"), "s3://bucket/runs/", "not an s3:// URL"),
    ],
)
def test_folders_a_drop_refuses(tmp_path: Path, names: tuple[str, ...], to: str | None, message: str) -> None:
    write(tmp_path, *names)
    with pytest.raises(ConsoleError, match=message.replace(".", r"\.").replace("(", r"\(")) as caught:
        plan_drop(tmp_path, to)
    assert caught.value.exit_code == 2


def test_since_takes_ages_and_dates() -> None:
    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    assert parse_since("7d", now) == now - timedelta(days=7)
    assert parse_since("12h", now) == now - timedelta(hours=12)
    assert parse_since("30m", now) == now - timedelta(minutes=30)
    assert parse_since("2w", now) == now - timedelta(weeks=2)
    assert parse_since("2026-12-01", now) == datetime(2026, 12, 1, tzinfo=UTC)
    with pytest.raises(ConsoleError, match="--since 'soon'"):
        parse_since("soon", now)


def test_statuses_are_matched_loosely() -> None:
    assert parse_statuses(["failed,aborted", "On Hold", "on-hold"]) == (
        RunStatus.FAILED,
        RunStatus.ABORTED,
        RunStatus.ON_HOLD,
    )


def test_logs_pick_tasks_by_call_shard_and_failure() -> None:
    tasks = scatter_tasks(10, failed_shard=4)
    assert [t.job_id for t in select_tasks(tasks, call="align", shard=4, failed=False)] == ["job-align-00004"]
    assert [t.label for t in select_tasks(tasks, call=None, shard=None, failed=True)] == ["rnaseq.align[4]"]
    assert [t.label for t in select_tasks(tasks, call="rnaseq.align", shard=3, failed=False)] == [
        "rnaseq.align[3]",
        "rnaseq.align[3] attempt 2",
    ]
    assert select_tasks(tasks, call="nope", shard=None, failed=False) == []


def test_a_digest_counts_per_call_and_keeps_the_earliest_failures() -> None:
    tasks = scatter_tasks(300, failed_shard=None)
    failed = [replace(t, status=TaskStatus.FAILED, exit_code=1) if t.shard % 10 == 0 else t for t in tasks]
    entry = FailureEntry(
        call="rnaseq.align", shard=0, attempt=1, message="Container killed due to memory usage"
    )
    result = digest(failed, failures=(entry,), region="eu-west-1", max_failed=5)
    assert list(result.calls) == ["rnaseq.prepare", "rnaseq.align", "rnaseq.merge"]  # the order they began
    align = result.calls["rnaseq.align"]
    assert (align.tasks, len(align.shards)) == (301, 300)
    assert align.counts == {"SUCCEEDED": 271, "FAILED": 30}
    assert result.failed_total == 30
    assert len(result.failed) == 5
    every_failed = sorted(
        (t.stopped_at, t.job_id) for t in failed if t.status is TaskStatus.FAILED and t.stopped_at
    )
    assert [(f.task.stopped_at, f.task.job_id) for f in result.failed] == every_failed[:5]
    first = next(f for f in result.failed if f.task.shard == 0)
    assert first.classification.kind is FailureKind.OUT_OF_MEMORY
    assert first.log_url is not None
    assert first.log_url.startswith("https://eu-west-1.console.aws.amazon.com/cloudwatch/")
    assert result.causes[FailureKind.SCRIPT_FAILED] == 29


def test_cost_estimate_by_pricing_class() -> None:
    assert [pricing_class(q) for q in ("genomics-spot", "arn:...:job-queue/OnDemand", "default", None)] == [
        "spot",
        "on-demand",
        "unknown",
        "unknown",
    ]
    estimate = CostEstimate(
        Prices(on_demand_vcpu_hour=1.0, on_demand_gb_hour=0.5, spot_vcpu_hour=0.25, spot_gb_hour=0.125)
    )
    one_hour = scatter_tasks(1)[0]
    hour = replace(one_hour, started_at=T0, stopped_at=T0 + timedelta(hours=1), vcpus=2, memory_mib=1024)
    estimate.add(replace(hour, queue="genomics-spot"))
    estimate.add(replace(hour, queue="ondemand"))
    assert estimate.on_demand_total == pytest.approx(2 * 0.25 + 1 * 0.125 + 2 * 1.0 + 1 * 0.5)
    assert estimate.short() == "~$3.12"
    estimate.add(replace(hour, queue="other"))
    assert estimate.ambiguous
    assert estimate.short() == "~$3.75-$5.62"
    estimate.add(replace(hour, stopped_at=None))
    assert estimate.tasks_unpriced == 1


class FakeS3:
    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def get_object(self, *, Bucket: str, Key: str, Range: str) -> dict[str, Any]:
        body = self.objects.get(f"s3://{Bucket}/{Key}")
        if body is None:
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": "missing"}}, "GetObject")
        return {"Body": io.BytesIO(body)}


class FakeLogs:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.requests: list[dict[str, Any]] = []

    def get_log_events(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        if request.get("nextToken") == "end" or not self.lines:
            return {"events": [], "nextForwardToken": "end"}
        shown = self.lines[-request["limit"] :] if "limit" in request else self.lines
        return {"events": [{"message": m} for m in shown], "nextForwardToken": "end"}


class FakeCromwell:
    def __init__(self, calls: dict[str, Any]) -> None:
        self.calls = calls

    def metadata(self, workflow_id: str, include_keys: Any = (), *, expand_subworkflows: bool = False) -> Any:
        return {"calls": self.calls}


def test_logs_come_from_s3_else_from_the_log_stream() -> None:
    task = scatter_tasks(2)[1]  # rnaseq.align[0]
    uri = "s3://cromwell/exec/rnaseq/1/call-align/shard-0/align-stderr.log"
    sub = {"subWorkflowMetadata": {"calls": {"rnaseq.align": [{"jobId": task.job_id, "stderr": uri}]}}}
    cromwell = FakeCromwell({"rnaseq.sub": [sub]})
    reader = LogReader(FakeS3({uri: b"one\ntwo\nthree\n"}), FakeLogs([]), cromwell)  # type: ignore[arg-type]
    log = reader.read("wf", task, "stderr", tail=2)
    assert (log.source, log.text) == (uri, "two\nthree\n")

    logs = FakeLogs(["from the container", "exit 1"])
    reader = LogReader(FakeS3({}), logs, cromwell)  # type: ignore[arg-type]
    log = reader.read("wf", task, "stderr", tail=None)
    assert log.source == f"cloudwatch:/aws/batch/job/{task.log_stream}"
    assert log.stream == "stdout+stderr"
    assert log.text == "from the container\nexit 1"

    reader = LogReader(FakeS3({}), FakeLogs([]), None)
    with pytest.raises(ConsoleError, match=r"no log for rnaseq.align\[0\]: no stderr in S3"):
        reader.read("wf", replace(task, log_stream=None), "stderr", tail=None)
