"""Re-running the failures with fakes: what rerun.json may say, which runs it replaces, the
inputs each new run gets (its sheet row read again), call caching and the label asked for, and
the same workflow ids when the rerun.json is delivered again."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from courier.conventions import rerun_document
from courier.ledger.records import BatchMember, BatchOpening, BatchView, RunView
from courier.models import RunStatus
from submit.folder import Findings
from submit.receipt import Receipt
from submit.rerun import RerunRequest, RerunService, Verdicts, parse_rerun
from submit.service import FolderSource, Membership, SubmitOutcome
from submit.upload import Upload

BATCH = "ba7c0000-0000-5000-8000-000000000001"


def wf(i: int) -> str:
    return f"ba7c0000-0000-5000-8000-{i:012d}"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\xff", "is not JSON"),
        (b"[]", "must be a JSON object"),
        (b'{"batch": "a", "run": "b"}', "either a batch"),
        (b"{}", "either a batch"),
        (b'{"batch": 3}', "'batch' must be an id"),
        (b'{"batch": "a", "failed_only": "yes"}', "'failed_only' must be true or false"),
        (b'{"batch": "a", "extra": 1}', "unknown key(s) extra"),
    ],
)
def test_a_bad_rerun_json_is_refused_with_its_reason(body: bytes, reason: str) -> None:
    findings = Findings()
    assert parse_rerun("rerun.json", body, findings) is None
    assert any(reason in r for r in findings.reasons), findings.reasons


def test_every_run_unless_failed_only_and_the_document_courier_rerun_writes() -> None:
    request = parse_rerun("rerun.json", b'{"batch": "a"}', Findings())
    assert request is not None
    assert (request.batch, request.run, request.failed_only) == ("a", None, False)
    written = rerun_document(run="w1", failed_only=True).encode()
    assert parse_rerun("rerun.json", written, Findings()) == RerunRequest(
        batch=None, run="w1", failed_only=True
    )


def member(i: int, status: RunStatus) -> BatchMember:
    return BatchMember(BATCH, wf(i), sample=f"S{i}", status=status)


def run(i: int, status: RunStatus) -> RunView:
    return RunView(
        workflow_id=wf(i),
        workflow_name="qc",
        status=status,
        source_bucket="lab",
        inputs_key=f"cohort/samples.tsv:line-{i + 2}",
        run_folder="cohort/",
        batch_id=BATCH,
        sample=f"S{i}",
    )


@dataclass
class Reads:
    ended: bool = True
    statuses: tuple[RunStatus, ...] = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.ABORTED)

    def batch(self, batch_id: str) -> BatchView | None:
        if batch_id != BATCH:
            return None
        return BatchView(
            BATCH,
            kind="sheet",
            workflow_name="qc",
            expected=3,
            ended=3,
            ended_by=wf(2) if self.ended else None,
        )

    def members(self, batch_id: str) -> Iterator[BatchMember]:
        for i, status in enumerate(self.statuses):
            yield member(i, status)

    def run(self, workflow_id: str) -> RunView | None:
        index = int(workflow_id[-12:])
        return run(index, self.statuses[index]) if index < len(self.statuses) else None


@dataclass
class Book:
    opened: dict[str, BatchOpening] = field(default_factory=dict)

    def record_rejected(self, run: Any) -> bool:
        return True

    def open_batch(self, batch_id: str, opening: BatchOpening) -> None:
        self.opened.setdefault(batch_id, opening)


@dataclass
class Files:
    body: bytes
    receipts: dict[str, Mapping[str, Any]] = field(default_factory=dict)

    def read_text(self, upload: Upload, max_bytes: int) -> bytes | str:
        return self.body

    def write_receipt(self, bucket: str, key: str, document: Mapping[str, Any]) -> None:
        self.receipts[key] = document


@dataclass
class Rows:
    reads: int = 0

    def row_inputs(self, bucket: str, sheet_key: str, version: str | None) -> dict[int, dict[str, Any]] | str:
        self.reads += 1
        return {line: {"qc.sample_id": f"sample-{line - 2}"} for line in (2, 3, 4)}


@dataclass
class Submitted:
    calls: list[dict[str, Any]] = field(default_factory=list)

    def factory(self, folders: FolderSource, verdicts: Verdicts, member: Membership) -> Any:
        outer = self

        class Service:
            def handle(self, upload: Upload) -> SubmitOutcome:
                from courier.conventions import requested_workflow_id  # noqa: PLC0415

                workflow_id = requested_workflow_id(
                    upload.bucket, upload.key, upload.version_id, upload.sequencer
                )
                outer.calls.append(
                    {
                        "key": upload.key,
                        "workflow_id": workflow_id,
                        "member": member,
                        "inputs": json.loads(folders.inputs),
                    }  # type: ignore[attr-defined]
                )
                receipt = Receipt.submitted(
                    workflow_id=workflow_id,
                    workflow_name="qc",
                    inputs=upload.uri,
                    run_folder=upload.folder,
                    main_wdl="main.wdl",
                    cromwell_status="Submitted",
                    warnings=[],
                    at=datetime(2026, 12, 4, tzinfo=UTC),
                )
                return SubmitOutcome("Submitted", workflow_id, receipt)

        return Service()


def service(body: dict[str, Any], reads: Reads | None = None) -> tuple[RerunService, Book, Files, Submitted]:
    book, files, submitted = Book(), Files(json.dumps(body).encode()), Submitted()
    rerun = RerunService(
        reads=reads or Reads(),
        runs=book,
        files=files,
        sheets=Rows(),
        folders=object(),  # type: ignore[arg-type]
        make_service=submitted.factory,
    )
    return rerun, book, files, submitted


UPLOAD = Upload("lab", "cohort/rerun.json", "v1", None, None, "alice", None)


def test_the_failed_runs_of_a_batch_are_started_again_with_their_rows_inputs() -> None:
    rerun, book, files, submitted = service({"batch": BATCH, "failed_only": True})
    outcome = rerun.handle(UPLOAD)
    assert outcome.status == "Submitted"
    assert [c["key"] for c in submitted.calls] == ["cohort/samples.tsv:line-3", "cohort/samples.tsv:line-4"]
    assert [c["inputs"] for c in submitted.calls] == [
        {"qc.sample_id": "sample-1"},
        {"qc.sample_id": "sample-2"},
    ]
    assert [c["member"] for c in submitted.calls] == [
        Membership(outcome.batch_id, "S1", rerun_of=wf(1)),
        Membership(outcome.batch_id, "S2", rerun_of=wf(2)),
    ]
    opening = book.opened[outcome.batch_id]
    assert (opening.kind, opening.expected, opening.rerun_of, opening.folder) == (
        "rerun",
        2,
        BATCH,
        "cohort/",
    )
    receipt = files.receipts["cohort/rerun.json.receipt.json"]
    assert [(r["sample"], r["replaces"], r["status"]) for r in receipt["runs"]] == [
        ("S1", wf(1), "Submitted"),
        ("S2", wf(2), "Submitted"),
    ]


def test_a_redelivered_rerun_json_gives_the_same_runs() -> None:
    first, _, _, one = service({"batch": BATCH, "failed_only": True})
    again, _, _, two = service({"batch": BATCH, "failed_only": True})
    assert first.handle(UPLOAD).batch_id == again.handle(UPLOAD).batch_id
    assert [c["workflow_id"] for c in one.calls] == [c["workflow_id"] for c in two.calls]
    assert len({c["workflow_id"] for c in one.calls} | {wf(1), wf(2)}) == 4  # new ids, not the replaced ones


def test_every_run_when_not_failed_only_and_one_run_by_its_id() -> None:
    rerun, _, _, submitted = service({"batch": BATCH, "failed_only": False})
    rerun.handle(UPLOAD)
    assert len(submitted.calls) == 3
    rerun, _, _, submitted = service({"run": wf(1), "failed_only": True})
    rerun.handle(UPLOAD)
    assert [c["member"].rerun_of for c in submitted.calls] == [wf(1)]


@pytest.mark.parametrize(
    ("body", "reads", "status", "reason"),
    [
        ({"batch": "nope"}, Reads(), "Rejected", "no batch nope"),
        ({"batch": BATCH}, Reads(ended=False), "Rejected", "has not ended"),
        ({"run": wf(9)}, Reads(), "Rejected", "no run"),
        ({"batch": BATCH, "failed_only": True}, Reads(statuses=(RunStatus.SUCCEEDED,)), "Nothing", "nothing"),
    ],
)
def test_nothing_is_submitted_when_there_is_nothing_to_rerun(
    body: dict[str, Any], reads: Reads, status: str, reason: str
) -> None:
    rerun, book, files, submitted = service(body, reads)
    outcome = rerun.handle(UPLOAD)
    assert outcome.status == status
    assert any(reason in r for r in outcome.reasons), outcome.reasons
    assert (submitted.calls, book.opened) == ([], {})
    assert files.receipts["cohort/rerun.json.receipt.json"]["status"] == status
