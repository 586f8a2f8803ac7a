"""Call caching through the local stack: a run folder whose `options.json` asks for call caching,
its inputs file dropped again with the failing sample fixed. The calls that succeeded before are
cache hits (no Batch job), so the new run's ledger counts only the jobs that ran, and its end is
still seen and reported with every output, from the cache or not."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from local.stack import LocalStack, LocalStackOptions
from tests.e2e.conftest import RUNS, Observer
from tests.e2e.test_flow import task_counts

pytestmark = pytest.mark.e2e

RUN_TIMEOUT = 90.0
SAMPLES = ["NA12878", "NA12891-unreadable", "NA12892"]
FIXED = ["NA12878", "NA12891", "NA12892"]


@pytest.fixture(scope="module")
def stack_options() -> LocalStackOptions:
    """The local stack as `make stack` runs it: call caching on."""
    return LocalStackOptions(step_seconds=0.0, call_caching=True)


def run_of(stack: LocalStack, key: str, workflow_id: str) -> None:
    """Wait for the inputs file's receipt naming `workflow_id`, then for the run's reported end."""

    def receipt_names_it() -> bool:
        receipt = stack.wait_for_receipt(key, timeout=1)
        return receipt is not None and receipt.get("workflow_id") == workflow_id

    assert stack.wait_for(receipt_names_it, timeout=30), f"no receipt for {workflow_id}"
    assert stack.wait_for_end(workflow_id, timeout=RUN_TIMEOUT) is not None, f"{workflow_id} was not reported"
    stack.settle(timeout=10)


def check_calls(stack: LocalStack, workflow_id: str) -> list[dict[str, Any]]:
    url = f"{stack.cromwell_url}/api/workflows/v1/{workflow_id}/metadata"
    answer = requests.get(url, params={"includeKey": ["callCaching", "jobId", "executionStatus"]}, timeout=10)
    answer.raise_for_status()
    return sorted(answer.json()["calls"]["cohort_qc.check"], key=lambda entry: entry["shardIndex"])


def inputs(samples: list[str]) -> str:
    return json.dumps({"cohort_qc.samples": samples})


def test_a_redropped_inputs_file_reuses_the_calls_that_succeeded(
    stack: LocalStack, observer: Observer
) -> None:
    assert json.loads((RUNS / "rerun" / "inputs.json").read_text(encoding="utf-8")) == json.loads(
        inputs(SAMPLES)
    )
    (key,) = stack.drop_folder(RUNS / "rerun", "e2e/cache/rerun")
    receipt = stack.wait_for_receipt(key, timeout=30)
    assert receipt is not None
    assert receipt["status"] == "Submitted", receipt
    first = str(receipt["workflow_id"])
    run_of(stack, key, first)
    assert observer.run(first)["status"] == "Failed"
    assert task_counts(observer.run(first)) == {"SUCCEEDED": 2, "FAILED": 1}

    # The same inputs file, the unreadable sample fixed: a new run with call caching asked for.
    second = stack.put(key, inputs(FIXED))
    run_of(stack, key, second)

    run = observer.run(second)
    assert run["status"] == "Succeeded"
    # Shards 0 and 2 came from the cache: no Batch job, so no task; shard 1 and the tally ran.
    assert task_counts(run) == {"SUCCEEDED": 2}
    tasks = sorted((t["call"], int(t["shard"])) for t in observer.tasks(second))
    assert tasks == [("cohort_qc.check", 1), ("cohort_qc.tally", -1)]
    shards = check_calls(stack, second)
    assert [s["callCaching"]["hit"] for s in shards] == [True, False, True]
    assert [s["callCaching"]["result"] for s in shards] == [
        f"Cache Hit: {first}:cohort_qc.check:0",
        "Cache Miss",
        f"Cache Hit: {first}:cohort_qc.check:2",
    ]
    assert [("jobId" in s, s["executionStatus"]) for s in shards] == [
        (False, "Done"),
        (True, "Done"),
        (False, "Done"),
    ]
    assert observer.outbox(second) == ["ENDED", "SUBMITTED"]

    # The end message names every output, those copied from the cache included.
    (email,) = observer.emails(second)
    assert email.subject == "Courier: Run succeeded: cohort_qc"
    for sample in FIXED:
        assert f"{sample} passed" in email.body
    assert "3 samples passed" in email.body
    (post,) = observer.slack_posts(second)
    assert "NA12878 passed" in post.rendered()

    # Dropped once more: every call is a cache hit and no Batch event comes at all; the run still
    # ends (Cromwell's callback), with no task and every output.
    third = stack.put(key, inputs(FIXED))
    run_of(stack, key, third)

    run = observer.run(third)
    assert run["status"] == "Succeeded"
    assert task_counts(run) == {}
    assert observer.tasks(third) == []
    assert all(s["callCaching"]["hit"] for s in check_calls(stack, third))
    (email,) = observer.emails(third)
    assert email.subject == "Courier: Run succeeded: cohort_qc"
    for sample in FIXED:
        assert f"{sample} passed" in email.body
    assert "3 samples passed" in email.body
