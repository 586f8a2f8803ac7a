"""A three-row sample sheet through the local stack: the submit function queues the rows, the rows
function submits each (paced) to the local engine, the three runs succeed and are reported, and
the sheet's receipts say so, row by row."""

from __future__ import annotations

import csv
import io

import pytest

from courier.conventions import receipt_key, rows_receipt_key, sheet_row_key
from local.stack import LocalStack
from tests.e2e.conftest import RUNS, Observer

pytestmark = pytest.mark.e2e

PREFIX = "e2e/sheet/cohort"


def test_a_three_row_sheet_gives_three_runs(stack: LocalStack, observer: Observer) -> None:
    # the workflow, its options and the common values first, the sheet last
    (sheet,) = stack.drop_folder(RUNS / "cohort", PREFIX)
    assert sheet == f"{PREFIX}/samples.tsv"

    done = stack.wait_for(
        lambda: (r := observer.receipt(sheet)) is not None and r["status"] == "Done" and r, timeout=60
    )
    assert done, observer.receipt(sheet)
    assert done["counts"] == {"Queued": 0, "Waiting": 0, "Submitted": 3, "Rejected": 0}
    assert (done["workflow_name"], done["run_folder"], done["rows"]) == ("cohort", PREFIX + "/", 3)

    body = observer.s3.get_object(Bucket=observer.bucket, Key=rows_receipt_key(sheet))["Body"].read()
    table = list(csv.DictReader(io.StringIO(body.decode()), delimiter="\t"))
    assert [(r["line"], r["sample"], r["status"], r["reasons"]) for r in table] == [
        ("2", "S1", "Submitted", ""),
        ("3", "S2", "Submitted", ""),
        ("4", "S3", "Submitted", ""),
    ]
    for row in table:
        workflow_id = row["workflow_id"]
        key = sheet_row_key(sheet, int(row["line"]))
        assert observer.cromwell_ids_for(key) == [workflow_id]
        run = stack.wait_for_end(workflow_id, timeout=90)
        assert run is not None, f"row {row['sample']} did not end"
        assert (run.status, run.inputs_key, run.workflow_name) == ("Succeeded", key, "cohort")
        events = observer.outbox(workflow_id)
        assert [e for e in events if e != "BATCH_ENDED"] == ["ENDED", "SUBMITTED"]
        assert observer.emails(workflow_id) == []  # the batch's digest tells its end
    batch = stack.wait_for_batch(done["sheet_id"], timeout=30)
    assert batch is not None
    assert (batch.runs, batch.ended, dict(batch.counts)) == (3, 3, {"Succeeded": 3})
    assert observer.outbox(batch.ended_by or "").count("BATCH_ENDED") == 1
    stack.settle(timeout=10)

    # one digest, and each run's outputs in the outputs table: the common greeting and its own cells
    (digest,) = stack.wait_for(
        lambda: [e for e in stack.emails() if e.subject.startswith("Courier: Batch")], timeout=30
    )
    assert digest.subject == "Courier: Batch succeeded: cohort"
    body = observer.s3.get_object(Bucket=observer.bucket, Key=f"{PREFIX}/outputs.tsv")["Body"].read()
    outputs = list(csv.DictReader(io.StringIO(body.decode()), delimiter="\t"))
    assert {r["sample"]: r["cohort.summary"] for r in outputs} == {
        "S1": "Hello sample-1: 100 reads",
        "S2": "Hello sample-2: 200 reads",
        "S3": "Hello sample-3: 1000 reads",
    }

    # inputs.json gave the common values: no run, no receipt of its own; the rows wrote no files
    assert observer.runs_of(f"{PREFIX}/inputs.json") == []
    assert observer.receipt(f"{PREFIX}/inputs.json") is None
    assert observer.receipts_under(PREFIX) == [receipt_key(sheet)]
    assert observer.runs_of(f"{PREFIX}/outputs.tsv") == []
    assert stack.router is not None
    assert stack.router.queues_drained()
