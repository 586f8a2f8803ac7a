"""A sample sheet whose samples partly fail, through the local stack: one run per row, ONE digest
(e-mail, and a Slack message that starts the batch's thread) naming the failed samples with their
failing task and reason, no per-run end message, and the outputs table beside the sheet. Then the
workflow's bug fixed and `rerun.json` dropped: one new run per failed sample, its first task a
call-cache hit, and one digest of the re-run saying what it recovered.

Six rows, two of which fail (the done-when cohort has 24 rows and 3 failures; six keep the test
within a minute on two shared cores: the path is the same)."""

from __future__ import annotations

import csv
import io
import json

import pytest
import requests

from courier.conventions import rows_receipt_key
from local.stack import LocalStack, LocalStackOptions
from tests.e2e.conftest import RUNS, Observer
from tests.e2e.test_cli import Courier

pytestmark = pytest.mark.e2e

PREFIX = "e2e/batch/qc"
FAILED = {"S2", "S5"}


@pytest.fixture(scope="module")
def stack_options() -> LocalStackOptions:
    """Call caching on, as `make stack` runs it: the re-run reuses the calls that succeeded."""
    return LocalStackOptions(step_seconds=0.0, call_caching=True)


@pytest.fixture(scope="module")
def cli(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Courier:
    """`courier --local` against the module's stack."""
    state = tmp_path_factory.mktemp("state") / ".courier-local.json"
    state.write_text(json.dumps(stack.console_state()), encoding="utf-8")
    return Courier(state)


def cache_hits(stack: LocalStack, workflow_id: str) -> dict[str, bool]:
    url = f"{stack.cromwell_url}/api/workflows/v1/{workflow_id}/metadata"
    answer = requests.get(url, params={"includeKey": ["callCaching"]}, timeout=10)
    answer.raise_for_status()
    return {call: entries[0]["callCaching"]["hit"] for call, entries in answer.json()["calls"].items()}


def test_a_sheet_with_failures_gives_one_digest_and_an_outputs_table(
    stack: LocalStack, observer: Observer, cli: Courier
) -> None:
    (sheet,) = stack.drop_folder(RUNS / "cohort_failures", PREFIX)
    receipt = stack.wait_for(
        lambda: (r := observer.receipt(sheet)) is not None and r["status"] == "Done" and r, timeout=60
    )
    assert receipt, observer.receipt(sheet)
    assert receipt["counts"]["Submitted"] == 6
    table = observer.s3.get_object(Bucket=observer.bucket, Key=rows_receipt_key(sheet))["Body"].read()
    lines = list(csv.DictReader(io.StringIO(table.decode()), delimiter="\t"))
    assert [(r["sample"], r["status"]) for r in lines] == [(f"S{i}", "Submitted") for i in range(1, 7)]

    batch = stack.wait_for_batch(receipt["sheet_id"], timeout=120)
    assert batch is not None, "the batch did not end"
    assert (batch.expected, batch.runs, batch.ended) == (6, 6, 6)
    assert dict(batch.counts) == {"Succeeded": 4, "Failed": 2}
    stack.settle(timeout=10)

    # ONE digest by e-mail; no run's own end message
    digests = stack.wait_for(
        lambda: [e for e in stack.emails() if e.subject.startswith("Courier: Batch")], timeout=30
    )
    assert len(digests) == 1, [e.subject for e in stack.emails()]
    body = digests[0].body
    assert digests[0].subject == "Courier: Batch ended: 2 of 6 not succeeded: cohort_qc"
    assert "failed 2, succeeded 4 (runs 6)" in body
    assert "cannot count bad-2: the sample is unreadable" in body or "cohort_qc.count" in body
    assert f"courier rerun {batch.batch_id} --failed" in body
    assert [e for e in stack.emails() if e.subject.startswith("Courier: Run")] == []
    # the two early failures: one alert for the batch within the period (the other one named in
    # it when it failed first, or in the digest)
    assert len([e for e in stack.emails() if e.subject == "Courier: A task failed: cohort_qc"]) == 1

    # ONE Slack message, the batch's thread
    posts = stack.wait_for(
        lambda: [p for p in stack.slack_posts() if "Batch ended" in p.rendered()], timeout=30
    )
    assert len(posts) == 1
    assert "S2" in posts[0].rendered()
    stored = stack.wait_for_batch(batch.batch_id, timeout=5)
    assert stored is not None

    # the outputs table: one row per sample, one column per output
    tsv = observer.s3.get_object(Bucket=observer.bucket, Key=f"{PREFIX}/outputs.tsv")["Body"].read()
    rows = list(csv.DictReader(io.StringIO(tsv.decode()), delimiter="\t"))
    assert [r["sample"] for r in rows] == ["S1", "S2", "S3", "S4", "S5", "S6"]
    assert {r["sample"] for r in rows if r["status"] == "Failed"} == FAILED
    assert next(r for r in rows if r["sample"] == "S3")["cohort_qc.summary"] == "counted sample-3"
    assert next(r for r in rows if r["sample"] == "S3")["cohort_qc.reads_seen"] == "300"
    document = json.loads(
        observer.s3.get_object(Bucket=observer.bucket, Key=f"{PREFIX}/outputs.json")["Body"].read()
    )
    assert document["batch_id"] == batch.batch_id
    assert len(document["samples"]) == 6

    # the bug fixed, the failures re-run: `courier rerun --failed` writes rerun.json beside the sheet
    stack.put(f"{PREFIX}/main.wdl", (RUNS / "cohort_failures_fix" / "main.wdl").read_text(encoding="utf-8"))
    rerun = cli.json("rerun", batch.batch_id, "--failed")
    assert rerun["status"] == "Submitted", rerun
    assert rerun["rerun"] == f"s3://{observer.bucket}/{PREFIX}/rerun.json"
    assert sorted(r["sample"] for r in rerun["runs"]) == sorted(FAILED)
    assert {r["status"] for r in rerun["runs"]} == {"Submitted"}
    replaced = {r["replaces"] for r in rerun["runs"]}
    assert replaced == {r["workflow_id"] for r in rows if r["status"] == "Failed"}

    again = stack.wait_for_batch(rerun["batch_id"], timeout=120)
    assert again is not None, "the re-run did not end"
    assert (again.kind, again.rerun_of, again.expected, dict(again.counts)) == (
        "rerun",
        batch.batch_id,
        2,
        {"Succeeded": 2},
    )
    stack.settle(timeout=10)
    for line in rerun["runs"]:
        assert cache_hits(stack, line["workflow_id"]) == {"cohort_qc.prepare": True, "cohort_qc.count": False}
        run = observer.run(line["workflow_id"])
        assert run["labels"]["courier-rerun-of"] == line["replaces"]
        assert run["batch_id"] == rerun["batch_id"]

    # one digest of the re-run: what it recovered
    redigests = stack.wait_for(
        lambda: [e for e in stack.emails() if e.subject.startswith("Courier: Re-run")], timeout=30
    )
    assert len(redigests) == 1, [e.subject for e in stack.emails()]
    assert redigests[0].subject == "Courier: Re-run succeeded: cohort_qc"
    assert f"This re-run of batch {batch.batch_id} recovered 2 of 2 sample(s)." in redigests[0].body
    assert len([e for e in stack.emails() if e.subject.startswith("Courier: Batch")]) == 1
