"""Submit and `courier_next`: the spec checked against the workflow and the run's chain, refused on
the run's receipt before anything reaches Cromwell, kept on the run item, and a next run labelled
with its parents from the lineage notify recorded (never from the file itself)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from courier.conventions import LABEL_PARENT, LABEL_PARENT_BATCH, OPTION_NEXT
from courier.models import RunRecord
from courier.pipeline import Lineage
from submit.folder import Findings
from submit.next_step import PipelinePlace
from submit.plan import Limits, RunFolder, analyse_folder
from submit.service import Membership, SubmitOptions, SubmitService
from submit.upload import Upload
from tests.fixtures.bad_runs import GOOD_INPUTS, folder
from tests.unit.test_submit_service import Cromwell, Folders, Objects, Receipts

BUCKET = "courier-runs"
NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
NEXT = {
    "folder": "runs/next/",
    "when": "run",
    "inputs": {"after.greeting": "outputs.demo.out", "after.sample": "inputs.demo.sample_id"},
}


class Book:
    def __init__(self) -> None:
        self.records: dict[str, RunRecord] = {}

    def get_run(self, workflow_id: str) -> dict[str, Any] | None:
        return None

    def record_submitted(self, run: RunRecord) -> bool:
        self.records[run.workflow_id] = run
        return True

    def record_rejected(self, run: RunRecord) -> bool:
        self.records[run.workflow_id] = run
        return True


class Lineages:
    def __init__(self, known: dict[str, Lineage] | None = None) -> None:
        self.known = known or {}
        self.asked: list[str] = []

    def lineage(self, bucket: str, key: str) -> Lineage | None:
        self.asked.append(key)
        return self.known.get(key)


def service(
    next_step: Any = NEXT,
    *,
    lineages: Lineages | None = None,
    member: Membership | None = None,
    max_depth: int = 5,
    inputs_name: str = "sampleA.inputs.json",
) -> tuple[SubmitService, Cromwell, Book, Receipts]:
    options = {OPTION_NEXT: next_step} if next_step is not None else {}
    files = folder(inputs_name=inputs_name, more={"options.json": json.dumps(options).encode()})
    cromwell, book, receipts = Cromwell(), Book(), Receipts()
    svc = SubmitService(
        folders=Folders(files),
        cromwell=cromwell,
        ledger=book,
        receipts=receipts,
        objects=Objects([GOOD_INPUTS["demo.reads"]]),
        limits=Limits(),
        options=SubmitOptions(wdl_wait_seconds=0),
        clock=lambda: NOW,
        member=member,
        pipeline=PipelinePlace(lineages or Lineages(), max_depth=max_depth),
    )
    return svc, cromwell, book, receipts


def upload(key: str = "runs/demo/sampleA.inputs.json") -> Upload:
    return Upload(BUCKET, key, "v1", None, 100, None, None)


def test_a_run_keeps_its_next_step_its_chain_and_the_inputs_it_passes_on() -> None:
    svc, cromwell, book, receipts = service()
    outcome = svc.handle(upload())
    assert outcome.status == "Submitted", receipts.last.reasons
    record = book.records[outcome.workflow_id]
    assert json.loads(record.pipeline["next"])["folder"] == "runs/next/"
    assert json.loads(record.pipeline["next_inputs"]) == {"demo.sample_id": "sampleA"}
    assert record.pipeline["chain"] == ["runs/demo/"]
    assert OPTION_NEXT not in json.loads(cromwell.plans[0].workflow_options)


def test_a_run_without_a_next_step_or_a_parent_keeps_nothing_and_reads_no_lineage() -> None:
    lineages = Lineages()
    svc, _, book, _ = service(None, lineages=lineages)
    outcome = svc.handle(upload())
    assert book.records[outcome.workflow_id].pipeline == {}
    assert lineages.asked == []


def test_references_to_what_the_workflow_lacks_refuse_the_run() -> None:
    bad = {
        **NEXT,
        "inputs": {"a": "outputs.demo.nothing", "b": "inputs.demo.nope", "c": "outputs.other.out"},
    }
    svc, cromwell, _, receipts = service(bad)
    assert svc.handle(upload()).status == "Rejected"
    reasons = " | ".join(receipts.last.reasons)
    assert "the workflow has no output demo.nothing (its outputs: demo.out)" in reasons
    assert "the workflow has no input demo.nope" in reasons
    assert "names workflow other; this run's is demo" in reasons
    assert cromwell.plans == []


def test_a_malformed_spec_is_refused_on_the_receipt() -> None:
    svc, cromwell, _, receipts = service({"folder": "runs/next/", "inputs": {"a": "text"}, "extra": 1})
    assert svc.handle(upload()).status == "Rejected"
    reasons = " | ".join(receipts.last.reasons)
    assert "options.json: courier_next: unknown key 'extra'" in reasons
    assert "is not a reference" in reasons
    assert cromwell.plans == []


def test_batch_mode_outside_a_batch_is_refused() -> None:
    svc, _, _, receipts = service({**NEXT, "when": "batch"})
    assert svc.handle(upload()).status == "Rejected"
    assert any('"when": "batch"' in r and "not part of one" in r for r in receipts.last.reasons)


def test_batch_mode_in_a_batch_is_kept() -> None:
    svc, _, book, _ = service({**NEXT, "when": "batch"}, member=Membership("batch-1", "S1"))
    outcome = svc.handle(upload())
    assert outcome.status == "Submitted"
    assert json.loads(book.records[outcome.workflow_id].pipeline["next"])["when"] == "batch"


def test_a_next_folder_that_is_the_run_s_own_is_a_loop() -> None:
    svc, _, _, receipts = service({**NEXT, "folder": "runs/demo"})
    assert svc.handle(upload()).status == "Rejected"
    assert any("this run's own folder" in r for r in receipts.last.reasons)


def test_a_next_run_is_labelled_from_its_lineage_and_carries_its_chain() -> None:
    key = "runs/demo/from-parent-1.inputs.json"
    lineage = Lineage(("runs/first/", "runs/demo/"), ("parent-1",))
    svc, cromwell, book, receipts = service(
        None, lineages=Lineages({key: lineage}), inputs_name="from-parent-1.inputs.json"
    )
    outcome = svc.handle(upload(key))
    assert outcome.status == "Submitted", receipts.last.reasons
    assert cromwell.plans[0].label_map[LABEL_PARENT] == "parent-1"
    record = book.records[outcome.workflow_id]
    assert record.pipeline["chain"] == ["runs/first/", "runs/demo/"]
    assert record.pipeline["parents"] == ["parent-1"]


def test_a_batch_s_next_run_names_the_batch() -> None:
    key = "runs/demo/from-batch-9.inputs.json"
    lineage = Lineage(("runs/first/", "runs/demo/"), ("a", "b"), parent_batch="batch-9")
    svc, cromwell, _, _ = service(
        None, lineages=Lineages({key: lineage}), inputs_name="from-batch-9.inputs.json"
    )
    svc.handle(upload(key))
    labels = cromwell.plans[0].label_map
    assert labels[LABEL_PARENT_BATCH] == "batch-9"
    assert LABEL_PARENT not in labels


def test_a_file_named_like_a_next_run_without_lineage_starts_a_pipeline_of_its_own() -> None:
    key = "runs/demo/from-forged.inputs.json"
    svc, cromwell, book, _ = service(inputs_name="from-forged.inputs.json")
    outcome = svc.handle(upload(key))
    assert outcome.status == "Submitted"
    assert LABEL_PARENT not in cromwell.plans[0].label_map
    assert book.records[outcome.workflow_id].pipeline["chain"] == ["runs/demo/"]


def test_a_next_step_that_loops_back_into_the_chain_is_refused() -> None:
    key = "runs/demo/from-p.inputs.json"
    lineage = Lineage(("runs/next/", "runs/demo/"), ("p",))
    svc, cromwell, _, receipts = service(
        NEXT, lineages=Lineages({key: lineage}), inputs_name="from-p.inputs.json"
    )
    assert svc.handle(upload(key)).status == "Rejected"
    assert any("runs/next/ -> runs/demo/ -> runs/next/" in r for r in receipts.last.reasons)
    assert cromwell.plans == []


def test_a_chain_deeper_than_the_limit_is_refused_at_both_ends() -> None:
    key = "runs/demo/from-p.inputs.json"
    lineage = Lineage(("runs/a/", "runs/b/", "runs/demo/"), ("p",))
    # this run is step 3 of at most 3: it may run, but not start a fourth
    svc, _, _, receipts = service(
        NEXT, lineages=Lineages({key: lineage}), inputs_name="from-p.inputs.json", max_depth=3
    )
    assert svc.handle(upload(key)).status == "Rejected"
    assert any("would be step 4" in r and "at most 3" in r for r in receipts.last.reasons)
    # a step beyond the limit is refused when it arrives
    svc, cromwell, _, receipts = service(
        None, lineages=Lineages({key: lineage}), inputs_name="from-p.inputs.json", max_depth=2
    )
    assert svc.handle(upload(key)).status == "Rejected"
    assert any("would be step 3" in r for r in receipts.last.reasons)
    assert cromwell.plans == []


def test_a_sheet_whose_next_step_is_its_own_folder_is_refused_whole() -> None:
    options = {OPTION_NEXT: {**NEXT, "when": "batch", "folder": "runs/demo/"}}
    files = folder(inputs=None, more={"options.json": json.dumps(options).encode()})
    findings = Findings()
    analyse_folder(RunFolder(prefix="runs/demo/", files=files, inputs_name="inputs.json"), Limits(), findings)
    assert any("this run's own folder" in r for r in findings.reasons), findings.reasons
