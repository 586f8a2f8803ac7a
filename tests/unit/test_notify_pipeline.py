"""notify.pipeline over fakes: the next step of a run or a batch started once, refused with a
receipt in submit's schema and no inputs file, and what the parent's message says."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from courier.conventions import requested_workflow_id, sheet_row_key
from courier.ledger.records import BatchView, RunView
from courier.models import RunStatus
from courier.pipeline import Lineage, NextStep
from notify.pipeline import NextSteps

BUCKET = "courier-runs"
NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
RUN_NEXT = {
    "folder": "runs/annotate/",
    "when": "run",
    "require_all": False,
    "inputs": {"annotate.vcf": "outputs.call.vcf", "annotate.sample": "inputs.call.sample", "annotate.n": 1},
}
BATCH_NEXT = {
    "folder": "runs/joint/",
    "when": "batch",
    "require_all": False,
    "inputs": {"joint.vcfs": "outputs.call.vcf", "joint.samples": "inputs.call.sample"},
}


class Book:
    def __init__(self) -> None:
        self.lineages: dict[str, Lineage] = {}
        self.run_steps: dict[str, NextStep] = {}
        self.batch_steps: dict[str, NextStep] = {}

    def put_lineage(self, bucket: str, key: str, lineage: Lineage) -> bool:
        if key in self.lineages:
            return False
        self.lineages[key] = lineage
        return True

    def record_run_step(self, workflow_id: str, step: NextStep) -> None:
        self.run_steps.setdefault(workflow_id, step)

    def record_batch_step(self, batch_id: str, step: NextStep) -> None:
        self.batch_steps.setdefault(batch_id, step)


class Objects:
    def __init__(self) -> None:
        self.objects: dict[str, str] = {}
        self.versions = 0

    def put_text_once(self, bucket: str, key: str, text: str, *, content_type: str) -> str | None:
        if key in self.objects:
            return None
        self.versions += 1
        self.objects[key] = text
        return f"v{self.versions}"


def steps(max_depth: int = 5) -> tuple[NextSteps, Book, Objects]:
    book, objects = Book(), Objects()
    return NextSteps(book, objects, max_depth=max_depth, clock=lambda: NOW), book, objects


def run(
    name: str = "NA1",
    status: RunStatus = RunStatus.SUCCEEDED,
    *,
    spec: dict[str, Any] = RUN_NEXT,
    line: int | None = None,
    chain: tuple[str, ...] = ("runs/call/",),
    **changes: Any,
) -> RunView:
    fields: dict[str, Any] = {
        "workflow_id": f"wf-{name}",
        "workflow_name": "call",
        "status": status,
        "source_bucket": BUCKET,
        "inputs_key": sheet_row_key("runs/call/samples.tsv", line)
        if line
        else f"runs/call/{name}.inputs.json",
        "run_folder": "runs/call/",
        "outputs": {"call.vcf": f"s3://data/{name}.vcf"},
        "next_spec": spec,
        "next_inputs": {"call.sample": name},
        "chain": chain,
        "sample": name,
    }
    return RunView(**{**fields, **changes})


def test_a_succeeded_run_writes_its_next_inputs_and_lineage_once() -> None:
    pipeline, book, objects = steps()
    first = pipeline.after_run(run())
    key = "runs/annotate/from-wf-NA1.inputs.json"
    assert first == NextStep(
        BUCKET, key, started=True, workflow_id=requested_workflow_id(BUCKET, key, "v1", None)
    )
    assert json.loads(objects.objects[key]) == {
        "annotate.vcf": "s3://data/NA1.vcf",
        "annotate.sample": "NA1",
        "annotate.n": 1,
    }
    assert book.lineages[key] == Lineage(("runs/call/", "runs/annotate/"), ("wf-NA1",))
    assert book.run_steps["wf-NA1"] == first
    assert first is not None
    assert first.line == f"Started s3://{BUCKET}/{key}"

    # redelivered before the parent item shows the step: nothing new is written
    again = pipeline.after_run(run())
    assert again is not None
    assert again.started
    assert objects.versions == 1
    # redelivered after: the recorded step is told again, nothing is written
    recorded = run(next_step=first.to_map())
    assert pipeline.after_run(recorded) == first
    assert objects.versions == 1


def test_a_failed_run_starts_nothing_and_leaves_no_receipt() -> None:
    pipeline, book, objects = steps()
    step = pipeline.after_run(run(status=RunStatus.FAILED))
    assert step is not None
    assert not step.started
    assert "the run failed" in step.line
    assert objects.objects == {}
    assert book.run_steps["wf-NA1"] == step


def test_a_missing_output_refuses_the_next_run_with_a_receipt_and_no_inputs_file() -> None:
    pipeline, _, objects = steps()
    step = pipeline.after_run(run(outputs={}))
    assert step is not None
    assert not step.started
    key = "runs/annotate/from-wf-NA1.inputs.json"
    assert key not in objects.objects
    receipt = json.loads(objects.objects[key + ".receipt.json"])
    assert receipt["status"] == "Rejected"
    assert receipt["schema_version"] == 1
    assert receipt["inputs"] == f"s3://{BUCKET}/{key}"
    assert any("the run has no output call.vcf" in r for r in receipt["reasons"])
    assert "Next step not started: annotate.vcf = outputs.call.vcf" in step.line


def test_a_run_without_a_run_mode_next_step_does_nothing() -> None:
    pipeline, _, objects = steps()
    assert pipeline.after_run(run(spec={})) is None
    assert pipeline.after_run(run(spec=BATCH_NEXT)) is None
    assert objects.objects == {}


def test_a_loop_or_a_chain_too_deep_is_refused_when_writing_too() -> None:
    pipeline, _, objects = steps(max_depth=2)
    step = pipeline.after_run(run(chain=("runs/first/", "runs/call/")))
    assert step is not None
    assert not step.started
    assert "at most 2 steps" in step.line
    pipeline, _, objects = steps()
    step = pipeline.after_run(run(chain=("runs/annotate/", "runs/call/")))
    assert step is not None
    assert "may not loop" in step.line
    assert not any(k.endswith(".inputs.json") for k in objects.objects)


def batch(**changes: Any) -> BatchView:
    fields: dict[str, Any] = {
        "batch_id": "batch-1",
        "kind": "sheet",
        "bucket": BUCKET,
        "folder": "runs/call/",
    }
    return BatchView(**{**fields, **changes})


def test_a_batch_gathers_its_samples_in_sheet_order() -> None:
    pipeline, book, objects = steps()
    runs = [
        run("NA3", line=4, spec=BATCH_NEXT),
        run("NA1", line=2, spec=BATCH_NEXT),
        run("NA2", RunStatus.FAILED, line=3, spec=BATCH_NEXT),
    ]
    step = pipeline.after_batch(batch(), runs)
    key = "runs/joint/from-batch-1.inputs.json"
    assert step is not None
    assert step.started
    assert json.loads(objects.objects[key]) == {
        "joint.vcfs": ["s3://data/NA1.vcf", "s3://data/NA3.vcf"],
        "joint.samples": ["NA1", "NA3"],
    }
    assert book.lineages[key] == Lineage(
        ("runs/call/", "runs/joint/"), ("wf-NA1", "wf-NA3"), parent_batch="batch-1"
    )
    assert book.batch_steps["batch-1"] == step


def test_require_all_stops_the_batch_s_next_step_with_a_receipt() -> None:
    pipeline, _, objects = steps()
    spec = {**BATCH_NEXT, "require_all": True}
    runs = [run("NA1", line=2, spec=spec), run("NA2", RunStatus.FAILED, line=3, spec=spec)]
    step = pipeline.after_batch(batch(), runs)
    assert step is not None
    assert not step.started
    assert "require_all is set and 1 of 2 samples did not succeed: NA2 (Failed)" in step.line
    key = "runs/joint/from-batch-1.inputs.json"
    assert key not in objects.objects
    assert json.loads(objects.objects[key + ".receipt.json"])["status"] == "Rejected"


def test_a_re_run_batch_does_not_start_the_next_step() -> None:
    pipeline, _, objects = steps()
    step = pipeline.after_batch(batch(kind="rerun"), [run("NA1", line=2, spec=BATCH_NEXT)])
    assert step is not None
    assert not step.started
    assert "re-run" in step.line
    assert not any(k.endswith(".inputs.json") for k in objects.objects)


def test_a_batch_without_a_batch_mode_next_step_does_nothing() -> None:
    pipeline, _, _ = steps()
    assert pipeline.after_batch(batch(), [run("NA1", line=2)]) is None
