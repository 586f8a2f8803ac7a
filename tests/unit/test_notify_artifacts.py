"""The run report and the receipt written at the end of a run (`notify.artifacts`), with fakes:
written beside the inputs file, idempotent, every receipt field kept, and a failure that leaves
the message a reason instead of a link."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from courier.ledger.records import RunView, TaskView
from courier.links import s3_object_url
from courier.models import RunStatus, TaskStatus
from courier.storage import ObjectMissing
from notify.artifacts import ReportLink, RunArtifacts, merge_receipt, report_key

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
WF = "6a1c0000-0000-5000-8000-000000000001"
BUCKET = "lab-runs"
INPUTS = "runs/s1/inputs.json"


@dataclass
class FakeObjects:
    objects: dict[tuple[str, str], bytes] = field(default_factory=dict)
    fail_puts: set[str] = field(default_factory=set)
    puts: list[str] = field(default_factory=list)

    def read(self, bucket: str, key: str, *, max_bytes: int, version_id: str | None = None) -> bytes:
        if (bucket, key) not in self.objects:
            raise ObjectMissing(bucket, key)
        return self.objects[(bucket, key)]

    def put_text(self, bucket: str, key: str, text: str, *, content_type: str) -> None:
        self.puts.append(key)
        if any(key.endswith(suffix) for suffix in self.fail_puts):
            raise OSError(f"cannot write {key}")
        self.objects[(bucket, key)] = text.encode()

    def put_json(self, bucket: str, key: str, document: Mapping[str, Any]) -> None:
        self.put_text(bucket, key, json.dumps(document), content_type="application/json")


@dataclass
class FakeRuns:
    tasks_of: dict[str, list[TaskView]] = field(default_factory=dict)
    broken: bool = False

    def tasks(self, workflow_id: str, attributes: Sequence[str] | None = None) -> Iterator[TaskView]:
        if self.broken:
            raise ConnectionError("ledger unreachable")
        return iter(self.tasks_of.get(workflow_id, []))


def run(**fields: Any) -> RunView:
    values: dict[str, Any] = {
        "workflow_id": WF,
        "workflow_name": "germline",
        "status": RunStatus.SUCCEEDED,
        "source_bucket": BUCKET,
        "inputs_key": INPUTS,
        "submitted_at": T0,
        "started_at": T0,
        "ended_at": T0 + timedelta(hours=1),
    }
    values.update(fields)
    return RunView(**values)


def task(job_id: str, shard: int) -> TaskView:
    return TaskView(
        job_id=job_id,
        call="germline.align",
        shard=shard,
        attempt=1,
        status=TaskStatus.SUCCEEDED,
        created_at=T0,
        started_at=T0 + timedelta(minutes=1),
        stopped_at=T0 + timedelta(minutes=30),
        vcpus=2,
        memory_mib=4096,
    )


def writer(objects: FakeObjects, runs: FakeRuns | None = None) -> RunArtifacts:
    tasks = FakeRuns({WF: [task("j0", 0), task("j1", 1)]}) if runs is None else runs
    return RunArtifacts(
        tasks, objects, bucket=BUCKET, region="us-east-1", clock=lambda: T0 + timedelta(hours=2)
    )


RECEIPT = {
    "schema_version": 1,
    "status": "Submitted",
    "workflow_id": WF,
    "warnings": ["w"],
    "extra": {"a": 1},
}


def with_receipt() -> FakeObjects:
    return FakeObjects({(BUCKET, INPUTS + ".receipt.json"): json.dumps(RECEIPT).encode()})


def test_report_written_beside_the_inputs_file_and_receipt_merged() -> None:
    objects = with_receipt()
    link = writer(objects).write(run())
    assert link == ReportLink(
        BUCKET, INPUTS + ".report.html", url=s3_object_url("us-east-1", BUCKET, report_key(INPUTS))
    )
    html = objects.objects[(BUCKET, INPUTS + ".report.html")].decode()
    assert 'data-job="j0"' in html  # a bar per task
    assert 'data-job="j1"' in html
    receipt = json.loads(objects.objects[(BUCKET, INPUTS + ".receipt.json")])
    assert receipt == {
        **RECEIPT,
        "run_status": "Succeeded",
        "ended_at": "2026-03-02T11:00:00Z",
        "report": report_key(INPUTS),
    }


def test_writing_again_is_harmless_same_keys_same_receipt() -> None:
    objects = with_receipt()
    first = writer(objects).write(run())
    receipt = objects.objects[(BUCKET, INPUTS + ".receipt.json")]
    second = writer(objects).write(run())
    assert first == second
    assert objects.objects[(BUCKET, INPUTS + ".receipt.json")] == receipt
    assert sorted(k for _, k in objects.objects) == [INPUTS + ".receipt.json", INPUTS + ".report.html"]


def test_a_run_without_inputs_file_or_in_another_bucket_gets_nothing() -> None:
    objects = with_receipt()
    assert writer(objects).write(run(inputs_key=None, source_bucket=None)) is None
    assert writer(objects).write(run(source_bucket="someone-else")) is None
    assert objects.puts == []


@pytest.mark.parametrize("failure", ["s3", "ledger"])
def test_a_report_that_cannot_be_written_gives_a_reason_and_the_receipt_still_ends(failure: str) -> None:
    objects = with_receipt()
    if failure == "s3":
        objects.fail_puts.add(".report.html")
    link = writer(objects, FakeRuns(broken=True) if failure == "ledger" else None).write(run())
    assert link is not None
    assert not link.written
    assert link.url is None
    assert "could not be written" in str(link.error)
    receipt = json.loads(objects.objects[(BUCKET, INPUTS + ".receipt.json")])
    assert receipt == {
        **RECEIPT,
        "run_status": "Succeeded",
        "ended_at": "2026-03-02T11:00:00Z",
        "report": None,
    }


def test_a_failed_rewrite_keeps_the_report_an_earlier_delivery_wrote() -> None:
    objects = with_receipt()
    assert writer(objects).write(run()) is not None
    objects.fail_puts.add(".report.html")
    link = writer(objects).write(run())
    assert link is not None
    assert not link.written
    receipt = json.loads(objects.objects[(BUCKET, INPUTS + ".receipt.json")])
    assert receipt["report"] == report_key(INPUTS)


def test_a_receipt_that_cannot_be_written_still_gives_the_link() -> None:
    objects = with_receipt()
    objects.fail_puts.add(".receipt.json")
    link = writer(objects).write(run())
    assert link is not None
    assert link.url == s3_object_url("us-east-1", BUCKET, report_key(INPUTS))


def test_no_receipt_no_receipt_written() -> None:
    objects = FakeObjects()
    link = writer(objects).write(run())
    assert link is not None
    assert link.written
    assert objects.puts == [INPUTS + ".report.html"]


def test_merge_keeps_every_field_and_overwrites_only_the_end() -> None:
    merged = merge_receipt({**RECEIPT, "run_status": "Running"}, run(status=RunStatus.FAILED), "k")
    assert merged == {**RECEIPT, "run_status": "Failed", "ended_at": "2026-03-02T11:00:00Z", "report": "k"}
