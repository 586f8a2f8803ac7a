"""Folder batches through the local stack, with a short window (BatchWindowSeconds 4, the
reconciler every second): two inputs files dropped into one folder together are one batch and one
digest, no run's own end message; two dropped into one folder a window apart are two runs, each
told by its own end message and no digest; an upload event delivered again is counted once."""

from __future__ import annotations

import time
from typing import Any

import pytest

from courier.ledger.records import BatchView
from courier.ledger.schema import BATCH_KIND_FOLDER
from local.stack import LocalStack, LocalStackOptions
from tests.e2e.conftest import RUNS, Observer

pytestmark = pytest.mark.e2e

WINDOW = 4
WDL = (RUNS / "quick" / "main.wdl").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def stack_options() -> LocalStackOptions:
    return LocalStackOptions(
        step_seconds=0.0,
        call_caching=False,
        schedule_seconds=1.0,
        parameters={"BatchWindowSeconds": str(WINDOW)},
    )


def drop(stack: LocalStack, folder: str, *samples: str) -> dict[str, str]:
    """The WDL, then one inputs file per sample; the workflow id of each sample's run."""
    stack.put(f"{folder}/main.wdl", WDL)
    return {s: stack.put(f"{folder}/{s}.inputs.json", f'{{"quick.who": "{s}"}}', label=s) for s in samples}


def submitted(stack: LocalStack, observer: Observer, folder: str, samples: dict[str, str]) -> None:
    for sample, workflow_id in samples.items():
        receipt = stack.wait_for_receipt(f"{folder}/{sample}.inputs.json", timeout=30)
        assert receipt is not None
        assert (receipt["status"], receipt["workflow_id"]) == ("Submitted", workflow_id)


def ended_batch(stack: LocalStack, batch_id: str, timeout: float = 60) -> BatchView:
    """The batch once it has ended and its digest was delivered; else fail saying where it is."""
    batch = stack.wait_for_batch(batch_id, timeout=timeout)
    if batch is None:
        sweeps = [i.get("result") for i in stack.invocations if i["function"] == "ReconcilerFunction"]
        errors = [e.render(200) for e in stack.timeline.entries if e.kind == "error"]
        pytest.fail(
            f"batch {batch_id} did not end: {read_batch(stack, batch_id)}; sweeps {sweeps[-2:]}; {errors}"
        )
    return batch


def read_batch(stack: LocalStack, batch_id: str) -> BatchView | None:
    from courier.ledger.views import RunViews  # noqa: PLC0415

    return RunViews(stack.table_name, stack.client("dynamodb")).batch(batch_id)


def batch_of(observer: Observer, workflow_id: str) -> str:
    return str(observer.run(workflow_id)["batch_id"])


def end_emails(stack: LocalStack, workflow_id: str) -> list[Any]:
    return [e for e in stack.emails(workflow_id) if e.subject.startswith("Courier: Run")]


def digests(stack: LocalStack, batch_id: str) -> list[Any]:
    return [e for e in stack.emails() if e.subject.startswith("Courier: Batch") and batch_id in e.body]


def test_two_files_in_one_window_are_one_batch_and_one_digest(stack: LocalStack, observer: Observer) -> None:
    folder = "e2e/folders/together"
    runs = drop(stack, folder, "alpha", "beta")
    submitted(stack, observer, folder, runs)
    batch_id = batch_of(observer, runs["alpha"])
    assert batch_of(observer, runs["beta"]) == batch_id

    batch = ended_batch(stack, batch_id)
    assert (batch.kind, batch.folder, batch.assigned, batch.expected, batch.ended) == (
        BATCH_KIND_FOLDER,
        f"{folder}/",
        2,
        2,
        2,
    )
    assert dict(batch.counts) == {"Succeeded": 2}
    stack.settle(timeout=10)
    (digest,) = stack.wait_for(lambda: digests(stack, batch_id), timeout=30)
    assert digest.subject == "Courier: Batch succeeded: quick"
    assert "alpha" in digest.body
    assert "beta" in digest.body
    for workflow_id in runs.values():
        assert end_emails(stack, workflow_id) == []  # the digest tells their end
    posts = [p for p in stack.slack_posts() if batch_id in p.rendered() or p.mentions(batch_id)]
    assert len(posts) == 1


def test_two_files_a_window_apart_are_two_runs_each_with_its_own_end_message(
    stack: LocalStack, observer: Observer
) -> None:
    folder = "e2e/folders/apart"
    first = drop(stack, folder, "early")
    submitted(stack, observer, folder, first)
    # a lone file's run ends within its window: its end message waits for the window to close
    ended = stack.wait_for(lambda: end_emails(stack, first["early"]), timeout=60)
    assert ended is not None, "the lone run's end message never came"
    assert ended[0].subject == "Courier: Run succeeded: quick"
    second = drop(stack, folder, "late")
    submitted(stack, observer, folder, second)
    assert stack.wait_for(lambda: end_emails(stack, second["late"]), timeout=60)

    batches = {batch_of(observer, first["early"]), batch_of(observer, second["late"])}
    assert len(batches) == 2  # two windows
    stack.settle(timeout=5)
    for batch_id in batches:
        batch = ended_batch(stack, batch_id, timeout=30)
        assert (batch.expected, batch.ended) == (1, 1)
        assert digests(stack, batch_id) == []
    for workflow_id in (first["early"], second["late"]):
        assert len(end_emails(stack, workflow_id)) == 1  # one end message, never two


def test_an_upload_event_delivered_again_is_counted_once(stack: LocalStack, observer: Observer) -> None:
    folder = "e2e/folders/redelivered"
    runs = drop(stack, folder, "one", "two")
    key = f"{folder}/one.inputs.json"
    (delivery,) = stack.wait_for(lambda: stack.submit_results(key), timeout=30) or []
    stack.redeliver("SubmitFunction", delivery["event"])
    assert stack.wait_for(lambda: len(stack.submit_results(key)) == 2, timeout=30)
    submitted(stack, observer, folder, runs)
    batch_id = batch_of(observer, runs["one"])
    batch = ended_batch(stack, batch_id)
    assert (batch.assigned, batch.runs, batch.expected, batch.ended) == (2, 2, 2, 2)
    time.sleep(1)
    stack.settle(timeout=10)
    assert len(digests(stack, batch_id)) == 1


def test_a_folder_batchs_failures_are_re_run_as_one_batch(stack: LocalStack, observer: Observer) -> None:
    """One sample of a folder window fails; the WDL fixed and a rerun.json dropped into the folder
    (what `courier rerun BATCH --failed` writes): one new run, and one digest of the re-run."""
    folder = "e2e/folders/rerun"
    stack.put(f"{folder}/main.wdl", (RUNS / "cohort_failures" / "main.wdl").read_text(encoding="utf-8"))
    runs = {
        s: stack.put(f"{folder}/{s}.inputs.json", f'{{"cohort_qc.sample_id": "{sid}"}}', label=s)
        for s, sid in (("good", "sample-1"), ("bad", "bad-2"))
    }
    submitted(stack, observer, folder, runs)
    batch_id = batch_of(observer, runs["good"])
    batch = ended_batch(stack, batch_id)
    assert dict(batch.counts) == {"Succeeded": 1, "Failed": 1}
    (digest,) = stack.wait_for(lambda: digests(stack, batch_id), timeout=30)
    assert f"courier rerun {batch_id} --failed" in digest.body

    stack.put(f"{folder}/main.wdl", (RUNS / "cohort_failures_fix" / "main.wdl").read_text(encoding="utf-8"))
    stack.put(f"{folder}/rerun.json", f'{{"batch": "{batch_id}", "failed_only": true}}')
    receipt = stack.wait_for(
        lambda: (
            (r := observer.receipt(f"{folder}/rerun.json")) is not None and r["status"] != "Waiting" and r
        ),
        timeout=60,
    )
    assert receipt
    assert receipt["status"] == "Submitted"
    assert [(r["sample"], r["replaces"]) for r in receipt["runs"]] == [("bad", runs["bad"])]
    again = ended_batch(stack, receipt["batch_id"])
    assert (again.kind, again.rerun_of, dict(again.counts)) == ("rerun", batch_id, {"Succeeded": 1})
    redigest = stack.wait_for(
        lambda: [e for e in stack.emails() if e.subject.startswith("Courier: Re-run") and batch_id in e.body],
        timeout=30,
    )
    assert redigest is not None
    assert len(redigest) == 1
