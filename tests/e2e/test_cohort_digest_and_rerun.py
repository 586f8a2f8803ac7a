"""A sample sheet whose samples partly fail, through the local stack: one run per row, ONE digest
(e-mail, and on Slack one thread for the batch: its early-failure alert starts it, the digest
replies in it) naming the failed samples with their failing task and reason, no per-run end
message, and the outputs table beside the sheet. Then the workflow's bug fixed and `rerun.json`
dropped: one new run per failed sample, its first task a call-cache hit, and one digest of the
re-run saying what it recovered, in the same thread.

The done-when cohort: 24 rows, 3 of which fail (about 30 s on two shared cores)."""

from __future__ import annotations

import csv
import io
import json

import pytest
import requests

from courier.conventions import rows_receipt_key
from local.stack import LocalStack, LocalStackOptions, SlackPost
from tests.e2e.conftest import RUNS, Observer
from tests.e2e.test_cli import Courier

pytestmark = pytest.mark.e2e

PREFIX = "e2e/batch/qc"
ROWS = 24
FAILED = {"S2", "S11", "S19"}


@pytest.fixture(scope="module")
def stack_options() -> LocalStackOptions:
    """Call caching on, as `make stack` runs it: the re-run reuses the calls that succeeded; Slack
    as a bot token posts it, so that messages form threads."""
    return LocalStackOptions(step_seconds=0.0, call_caching=True, slack_bot=True)


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
    assert receipt["counts"]["Submitted"] == ROWS
    table = observer.s3.get_object(Bucket=observer.bucket, Key=rows_receipt_key(sheet))["Body"].read()
    lines = list(csv.DictReader(io.StringIO(table.decode()), delimiter="\t"))
    assert [(r["sample"], r["status"]) for r in lines] == [(f"S{i}", "Submitted") for i in range(1, ROWS + 1)]

    run_ids = {r["workflow_id"] for r in lines}
    batch = stack.wait_for_batch(receipt["sheet_id"], timeout=240)
    assert batch is not None, "the batch did not end"
    assert (batch.expected, batch.runs, batch.ended) == (ROWS, ROWS, ROWS)
    assert dict(batch.counts) == {"Succeeded": ROWS - len(FAILED), "Failed": len(FAILED)}
    stack.settle(timeout=10)

    # ONE digest by e-mail; no run's own end message
    digests = stack.wait_for(
        lambda: [e for e in stack.emails() if e.subject.startswith("Courier: Batch")], timeout=30
    )
    assert len(digests) == 1, [e.subject for e in stack.emails()]
    body = digests[0].body
    assert digests[0].subject == f"Courier: Batch ended: {len(FAILED)} of {ROWS} not succeeded: cohort_qc"
    assert f"failed {len(FAILED)}, succeeded {ROWS - len(FAILED)} (runs {ROWS})" in body
    assert "cannot count bad-2: the sample is unreadable" in body or "cohort_qc.count" in body
    assert f"courier rerun {batch.batch_id} --failed" in body
    assert [e for e in stack.emails() if e.subject.startswith("Courier: Run")] == []
    # the two early failures: one alert for the batch within the period (the other one named in
    # it when it failed first, or in the digest)
    assert len([e for e in stack.emails() if e.subject == "Courier: A task failed: cohort_qc"]) == 1

    # ONE Slack digest, in the batch's ONE thread: the early-failure alert started it
    posts = stack.wait_for(
        lambda: [p for p in stack.slack_posts() if "Batch ended" in p.rendered()], timeout=30
    )
    assert len(posts) == 1
    assert "S2" in posts[0].rendered()
    stored = stack.wait_for_batch(batch.batch_id, timeout=5)
    assert stored is not None
    assert stored.slack_thread_ts is not None
    batch_posts = batch_messages(stack, batch.batch_id, run_ids)
    assert batch_posts[0].thread_ts is None  # the first message about the batch starts its thread
    assert {p.thread for p in batch_posts} == {stored.slack_thread_ts}
    assert len(batch_posts) == 2, [p.text for p in batch_posts]  # the grouped alert and the digest
    assert (posts[0].thread_ts, posts[0].payload.get("reply_broadcast")) == (stored.slack_thread_ts, True)

    # the outputs table: one row per sample, one column per output
    tsv = observer.s3.get_object(Bucket=observer.bucket, Key=f"{PREFIX}/outputs.tsv")["Body"].read()
    rows = list(csv.DictReader(io.StringIO(tsv.decode()), delimiter="\t"))
    assert [r["sample"] for r in rows] == sorted(f"S{i}" for i in range(1, ROWS + 1))
    assert {r["sample"] for r in rows if r["status"] == "Failed"} == FAILED
    assert next(r for r in rows if r["sample"] == "S3")["cohort_qc.summary"] == "counted sample-3"
    assert next(r for r in rows if r["sample"] == "S3")["cohort_qc.reads_seen"] == "300"
    document = json.loads(
        observer.s3.get_object(Bucket=observer.bucket, Key=f"{PREFIX}/outputs.json")["Body"].read()
    )
    assert document["batch_id"] == batch.batch_id
    assert len(document["samples"]) == ROWS

    # the bug fixed, the failures re-run: `courier rerun --failed` writes rerun.json beside the sheet
    stack.put(f"{PREFIX}/main.wdl", (RUNS / "cohort_failures_fix" / "main.wdl").read_text(encoding="utf-8"))
    rerun = cli.json("rerun", batch.batch_id, "--failed")
    assert rerun["status"] == "Submitted", rerun
    assert rerun["rerun"] == f"s3://{observer.bucket}/{PREFIX}/rerun.json"
    assert sorted(r["sample"] for r in rerun["runs"]) == sorted(FAILED)
    assert {r["status"] for r in rerun["runs"]} == {"Submitted"}
    replaced = {r["replaces"] for r in rerun["runs"]}
    assert replaced == {r["workflow_id"] for r in rows if r["status"] == "Failed"}

    again = stack.wait_for_batch(rerun["batch_id"], timeout=240)
    assert again is not None, "the re-run did not end"
    assert (again.kind, again.rerun_of, again.expected, dict(again.counts)) == (
        "rerun",
        batch.batch_id,
        len(FAILED),
        {"Succeeded": len(FAILED)},
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
    n = len(FAILED)
    assert f"This re-run of batch {batch.batch_id} recovered {n} of {n} sample(s)." in redigests[0].body
    assert len([e for e in stack.emails() if e.subject.startswith("Courier: Batch")]) == 1
    # on Slack, in the batch's thread
    (reposted,) = stack.wait_for(
        lambda: [p for p in stack.slack_posts() if "Re-run succeeded" in p.rendered()], timeout=30
    )
    assert reposted.thread == stored.slack_thread_ts


def batch_messages(stack: LocalStack, batch_id: str, run_ids: set[str]) -> list[SlackPost]:
    """The Slack messages about a batch or any of its runs, in the order they were posted."""
    return [p for p in stack.slack_posts() if p.mentions(batch_id) or any(p.mentions(w) for w in run_ids)]
