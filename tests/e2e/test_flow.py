"""The whole flow on one machine: run folders dropped into the local stack's runs bucket, submitted
to the local engine, followed through the AWS Batch events it emits, and reported by e-mail and
Slack. Each test checks the ledger, the receipt and the messages of what it dropped."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import requests

from courier.ledger.records import RunView
from local.stack import LocalStack
from tests.e2e.conftest import DEMO_RUNS, RUNS, Observer

pytestmark = pytest.mark.e2e

RUN_TIMEOUT = 90.0


def task_counts(run: dict[str, Any]) -> dict[str, int]:
    """The run item's non-zero task counters (`tasks_SUCCEEDED`, `tasks_FAILED`, ...)."""
    return {k.removeprefix("tasks_"): int(v) for k, v in run.items() if k.startswith("tasks_") and v}


def submitted(stack: LocalStack, key: str) -> str:
    """The workflow id of the receipt written for `key`, which must say Submitted."""
    receipt = stack.wait_for_receipt(key, timeout=30)
    assert receipt is not None, f"no receipt for {key}"
    assert receipt["status"] == "Submitted", receipt
    assert receipt["reasons"] == []
    return str(receipt["workflow_id"])


def ended(stack: LocalStack, workflow_id: str) -> RunView:
    run = stack.wait_for_end(workflow_id, timeout=RUN_TIMEOUT)
    assert run is not None, f"run {workflow_id} did not end and get reported"
    stack.settle(timeout=10)
    return run


def test_a_run_that_succeeds(stack: LocalStack, observer: Observer) -> None:
    (key,) = stack.drop_folder(RUNS / "quick", "e2e/success/quick")

    workflow_id = submitted(stack, key)
    receipt = observer.receipt(key)
    assert receipt is not None
    assert (receipt["workflow_name"], receipt["run_folder"]) == ("quick", "e2e/success/quick/")
    assert observer.cromwell_ids_for(key) == [workflow_id]
    ended(stack, workflow_id)

    run = observer.run(workflow_id)
    assert (run["status"], run["workflow_name"], run["inputs_key"]) == ("Succeeded", "quick", key)
    assert task_counts(run) == {"SUCCEEDED": 1}
    assert [(t["call"], t["status"], t["exit_code"]) for t in observer.tasks(workflow_id)] == [
        ("quick.say", "SUCCEEDED", 0)
    ]
    assert observer.outbox(workflow_id) == ["ENDED", "SUBMITTED"]
    assert observer.cromwell_status(workflow_id) == "Succeeded"

    # SUBMITTED messages are off by default: the end of the run is the one message per channel.
    (email,) = observer.emails(workflow_id)
    assert email.subject == "Courier: Run succeeded: quick"
    assert "Status      Succeeded" in email.body
    assert "quick.message = Hello, Courier!" in email.body
    (post,) = observer.slack_posts(workflow_id)
    shown = post.rendered()
    assert "Run succeeded: quick" in shown
    assert "`quick.message`: Hello, Courier!" in shown


def test_a_task_that_fails(stack: LocalStack, observer: Observer) -> None:
    (key,) = stack.drop_folder(DEMO_RUNS / "failing", "e2e/failure/failing")

    workflow_id = submitted(stack, key)
    ended(stack, workflow_id)

    run = observer.run(workflow_id)
    assert run["status"] == "Failed"
    assert task_counts(run) == {"SUCCEEDED": 1, "FAILED": 1}
    tasks = {t["call"]: t for t in observer.tasks(workflow_id)}
    assert tasks["failing_demo.prepare"]["status"] == "SUCCEEDED"
    assert (tasks["failing_demo.align"]["status"], tasks["failing_demo.align"]["exit_code"]) == ("FAILED", 3)
    assert observer.outbox(workflow_id) == ["EARLY_FAILURE", "ENDED", "SUBMITTED"]

    emails = {e.subject: e.body for e in observer.emails(workflow_id)}
    assert set(emails) == {"Courier: A task failed: failing_demo", "Courier: Run failed: failing_demo"}
    early = emails["Courier: A task failed: failing_demo"]
    assert "failing_demo.align, attempt 1" in early
    assert re.search(r"Exit code:\s+3\b", early)
    final = emails["Courier: Run failed: failing_demo"]
    assert "failing_demo.align" in final
    assert re.search(r"Exit code:\s+3\b", final)
    # The end-of-run message quotes the failed task's stderr.
    assert "| aligning NA12878.prepared" in final
    assert "| error: reference genome /refs/GRCh38.fa not found" in final

    posts = [p.rendered() for p in observer.slack_posts(workflow_id)]
    assert len(posts) == 2
    (early_post,) = [p for p in posts if "A task failed: failing_demo" in p]
    assert "Exit code `3`" in early_post
    (final_post,) = [p for p in posts if "Run failed: failing_demo" in p]
    assert "failing_demo.align" in final_post


REJECTIONS = {
    "unknown-input": (json.dumps({"quick.whom": "Courier"}), None, "unknown input 'quick.whom'"),
    "wdl-syntax-error": (
        json.dumps({"quick.who": "Courier"}),
        ("call say {", "call say {{"),
        "main.wdl:",
    ),
}


@pytest.mark.parametrize("case", sorted(REJECTIONS))
def test_a_run_that_is_rejected(stack: LocalStack, observer: Observer, tmp_path: Path, case: str) -> None:
    inputs, wdl_edit, reason = REJECTIONS[case]
    folder = tmp_path / "run"
    shutil.copytree(RUNS / "quick", folder)
    (folder / "inputs.json").write_text(inputs, encoding="utf-8")
    if wdl_edit is not None:
        wdl = folder / "main.wdl"
        wdl.write_text(wdl.read_text(encoding="utf-8").replace(*wdl_edit), encoding="utf-8")

    (key,) = stack.drop_folder(folder, f"e2e/rejected/{case}")
    receipt = stack.wait_for_receipt(key, timeout=30)
    assert receipt is not None
    workflow_id = str(receipt["workflow_id"])
    ended(stack, workflow_id)

    assert receipt["status"] == "Rejected"
    assert receipt["submitted_at"] is None
    assert any(reason in r for r in receipt["reasons"]), receipt["reasons"]
    run = observer.run(workflow_id)
    assert run["status"] == "Rejected"
    assert list(run["reasons"]) == receipt["reasons"]
    assert observer.outbox(workflow_id) == ["REJECTED"]
    # Nothing reached Cromwell.
    assert observer.cromwell_status(workflow_id) is None
    assert observer.cromwell_ids_for(key) == []

    (email,) = observer.emails(workflow_id)
    assert email.subject.startswith("Courier: Run rejected")
    assert all(r in email.body for r in receipt["reasons"])
    (post,) = observer.slack_posts(workflow_id)
    assert "Run rejected" in post.rendered()
    assert reason in post.rendered()


def test_a_run_aborted_through_cromwell(stack: LocalStack, observer: Observer) -> None:
    (key,) = stack.drop_folder(RUNS / "abortable", "e2e/abort/abortable")
    workflow_id = submitted(stack, key)

    def task_running() -> bool:
        return any(t["status"] == "RUNNING" for t in observer.tasks(workflow_id))

    assert stack.wait_for(task_running, timeout=60), "the task never ran"
    answer = requests.post(f"{stack.cromwell_url}/api/workflows/v1/{workflow_id}/abort", timeout=10)
    assert answer.status_code == 200
    assert answer.json() == {"id": workflow_id, "status": "Aborting"}
    ended(stack, workflow_id)

    run = observer.run(workflow_id)
    assert run["status"] == "Aborted"
    assert observer.cromwell_status(workflow_id) == "Aborted"
    (task,) = observer.tasks(workflow_id)
    assert (task["call"], task["status"], task["status_reason"]) == (
        "abortable.wait_a_while",
        "FAILED",
        "cromwell abort called",
    )
    assert task_counts(run) == {"FAILED": 1}
    assert "ENDED" in observer.outbox(workflow_id)

    ended_emails = [e for e in observer.emails(workflow_id) if "Run aborted" in e.subject]
    assert [e.subject for e in ended_emails] == ["Courier: Run aborted: abortable"]
    assert "Status      Aborted" in ended_emails[0].body
    assert "Cause:        Aborted. The workflow was aborted" in ended_emails[0].body
    ended_posts = [p.rendered() for p in observer.slack_posts(workflow_id) if "ENDED" in p.rendered()]
    assert len(ended_posts) == 1
    assert "Run aborted: abortable" in ended_posts[0]
    # Every outbox event reached each channel once.
    assert len(observer.emails(workflow_id)) == len(observer.outbox(workflow_id)) - 1  # SUBMITTED is off
    assert len(observer.slack_posts(workflow_id)) == len(observer.outbox(workflow_id)) - 1


def test_the_same_upload_delivered_twice_is_one_run(stack: LocalStack, observer: Observer) -> None:
    (key,) = stack.drop_folder(RUNS / "quick", "e2e/duplicate/quick")
    workflow_id = submitted(stack, key)
    # The receipt is written inside the invocation; its result is recorded once it returns.
    (first,) = stack.wait_for(lambda: stack.submit_results(key), timeout=10) or []

    # EventBridge delivers at least once: the same Object Created event arrives again.
    stack.redeliver("SubmitFunction", first["event"])
    assert stack.wait_for(lambda: len(stack.submit_results(key)) == 2, timeout=30)
    ended(stack, workflow_id)

    results = stack.submit_results(key)
    assert [r["event"]["id"] for r in results] == [first["event"]["id"]] * 2
    assert sorted((r["status"], r["workflow_id"]) for r in results) == [
        ("Duplicate", workflow_id),
        ("Submitted", workflow_id),
    ]
    assert observer.cromwell_ids_for(key) == [workflow_id]
    assert [r["workflow_id"] for r in observer.runs_of(key)] == [workflow_id]
    assert observer.receipts_under("e2e/duplicate/") == [f"{key}.receipt.json"]
    receipt = observer.receipt(key)
    assert receipt is not None
    assert (receipt["status"], receipt["workflow_id"]) == ("Submitted", workflow_id)
    assert observer.outbox(workflow_id) == ["ENDED", "SUBMITTED"]
    assert [e.subject for e in observer.emails(workflow_id)] == ["Courier: Run succeeded: quick"]
    assert len(observer.slack_posts(workflow_id)) == 1


def test_uploading_the_inputs_file_again_is_a_new_run(stack: LocalStack, observer: Observer) -> None:
    (key,) = stack.drop_folder(RUNS / "quick", "e2e/again/quick")
    first = submitted(stack, key)
    ended(stack, first)

    second = stack.put(key, (RUNS / "quick" / "inputs.json").read_bytes())
    assert second != first

    def new_receipt() -> bool:
        receipt = observer.receipt(key)
        return receipt is not None and receipt["workflow_id"] == second

    assert stack.wait_for(new_receipt, timeout=30)
    ended(stack, second)

    assert observer.cromwell_ids_for(key) == sorted([first, second])
    runs = {r["workflow_id"]: r["status"] for r in observer.runs_of(key)}
    assert runs == {first: "Succeeded", second: "Succeeded"}
    for workflow_id in (first, second):
        assert [e.subject for e in observer.emails(workflow_id)] == ["Courier: Run succeeded: quick"]
        assert len(observer.slack_posts(workflow_id)) == 1


def test_each_function_calls_aws_through_its_own_clients(stack: LocalStack, observer: Observer) -> None:
    """As each Lambda function has its own clients: the monitor's ledger writes are seen on the
    monitor's DynamoDB client, apart from the notify function's and the stack's own."""
    mine = stack.function_client("MonitorFunction", "dynamodb")
    assert mine is stack.function_client("MonitorFunction", "dynamodb")
    assert mine is not stack.function_client("NotifyFunction", "dynamodb")
    assert mine is not stack.client("dynamodb")
    calls: dict[str, list[str]] = {"MonitorFunction": [], "NotifyFunction": []}

    def counter(function: str) -> Any:
        def count(model: Any, **_: Any) -> None:
            calls[function].append(model.name)

        return count

    hooks = {f: counter(f) for f in calls}
    for function, hook in hooks.items():
        stack.function_client(function, "dynamodb").meta.events.register("before-call.dynamodb", hook)
    try:
        (key,) = stack.drop_folder(RUNS / "quick", "e2e/clients/quick")
        ended(stack, submitted(stack, key))
    finally:
        for function, hook in hooks.items():
            stack.function_client(function, "dynamodb").meta.events.unregister("before-call.dynamodb", hook)

    assert "TransactWriteItems" in calls["MonitorFunction"]
    assert calls["NotifyFunction"], "notify claims and marks its deliveries in the ledger"
