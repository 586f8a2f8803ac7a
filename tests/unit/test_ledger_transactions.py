"""The ledger's DynamoDB requests as `courier.ledger.transactions` builds them (no DynamoDB: the
conditions and updates are read off the request), and how `TaskLedger` sends them: conflicts
retried with bounded jittered backoff, cancellation reasons turned into what is stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from courier.errors import LedgerError
from courier.ledger import transactions as tx
from courier.ledger._codec import from_item
from courier.ledger.records import StuckPayload
from courier.ledger.task_types import Adoption, Pointer, RunPlan, StoredTask, TaskWrite
from courier.ledger.tasks import TaskLedger
from courier.models import RunStatus, TaskStatus, task_order

ROOT = "0f8fad5b-d9cb-469f-a165-70867728950e"
T0 = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)
RETENTION = timedelta(days=90)


def task(status: TaskStatus = TaskStatus.RUNNING, **changes: Any) -> TaskWrite:
    values: dict[str, Any] = {
        "job_id": "job-1",
        "job_name": "wf_align",
        "call": "wf.align",
        "shard": 3,
        "attempt": 1,
        "workflow_id": ROOT,
        "root_workflow_id": ROOT,
        "status": status,
        "order": task_order(status, 0),
        "batch_attempts": 0,
        "event_time": T0,
        "queue": "cromwell-default",
        "log_group": "/aws/batch/job",
        "attribution": "event-tags",
        "call_source": "task-id-tag",
        "started_at": T0 if status is TaskStatus.RUNNING else None,
    }
    values.update(changes)
    return TaskWrite(**values)


def values(update: dict[str, Any]) -> dict[str, Any]:
    """The expression's values as plain Python, keyed by the attribute names they set."""
    return {k: from_item({"v": v})["v"] for k, v in update["ExpressionAttributeValues"].items()}


# -- builders ----------------------------------------------------------------------------------


def test_a_new_task_is_written_only_where_none_is() -> None:
    update = tx.task_update("t", task(TaskStatus.RUNNABLE), None, now=T0, retention=RETENTION)["Update"]
    assert update["ConditionExpression"] == "attribute_not_exists(#pk)"
    assert update["Key"] == {"pk": {"S": f"RUN#{ROOT}"}, "sk": {"S": "TASK#job-1"}}
    written = {
        update["ExpressionAttributeNames"][n]: values(update)[":" + n[1:]]
        for n in update["ExpressionAttributeNames"]
        if n.startswith("#f")
    }
    assert written["status"] == "RUNNABLE"
    assert written["runnable_at"] == "2026-03-02T10:00:00.000Z"
    assert written["expires_at"] == int((T0 + RETENTION + timedelta(days=30)).timestamp())
    assert "exit_code" not in written  # None values are left out
    assert update["ReturnValuesOnConditionCheckFailure"] == "ALL_OLD"


def test_a_known_task_moves_only_from_the_order_the_caller_saw() -> None:
    update = tx.task_update("t", task(), StoredTask(TaskStatus.RUNNABLE, 4), now=T0, retention=RETENTION)[
        "Update"
    ]
    assert update["ConditionExpression"] == "#prev_o = :prev_o"
    assert update["ExpressionAttributeNames"]["#prev_o"] == "order"
    assert values(update)[":prev_o"] == 4
    assert "runnable_at" not in update["ExpressionAttributeNames"].values()


def test_run_counts_move_by_one_from_the_previous_status() -> None:
    update = tx.run_update("t", task(), StoredTask(TaskStatus.RUNNABLE, 4), RunPlan(), now=T0)["Update"]
    assert update["UpdateExpression"].endswith(" ADD #cnew :one, #cold :minus")
    names = update["ExpressionAttributeNames"]
    assert (names["#cnew"], names["#cold"]) == ("tasks_RUNNING", "tasks_RUNNABLE")
    assert update["ConditionExpression"] == "attribute_exists(#pk)"
    again = tx.run_update("t", task(), StoredTask(TaskStatus.RUNNING, 5), RunPlan(), now=T0)["Update"]
    assert " ADD " not in again["UpdateExpression"]  # same status: the counts stay
    assert ":one" not in again["ExpressionAttributeValues"]  # unused values are pruned


def test_the_move_to_running_is_conditioned_on_a_lower_rank() -> None:
    update = tx.run_update("t", task(), None, RunPlan(promote_running=True), now=T0)["Update"]
    assert update["ConditionExpression"] == "attribute_exists(#pk) AND #rank < :rank"
    assert values(update)[":rank"] == RunStatus.RUNNING.rank
    assert "started_at = if_not_exists(started_at, :started)" in update["UpdateExpression"]


def test_a_failed_task_keeps_the_first_failure_and_alerts_once() -> None:
    failed = task(TaskStatus.FAILED, exit_code=3, status_reason="boom")
    items = tx.transition_items(
        "t", failed, None, RunPlan(early_failure=True), None, now=T0, retention=RETENTION
    )
    run = items[1]["Update"]
    assert "#ff = if_not_exists(#ff, :ff)" in run["UpdateExpression"]
    assert (
        run["ConditionExpression"] == "attribute_exists(#pk) AND attribute_not_exists(#ff) AND #rank < :final"
    )
    assert values(run)[":ff"]["exit_code"] == 3
    put = items[2]["Put"]
    assert put["ConditionExpression"] == "attribute_not_exists(#pk)"
    event = from_item(put["Item"])
    assert event["sk"] == "EVENT#EARLY_FAILURE#first"
    assert event["payload"]["task"]["status_reason"] == "boom"
    assert event["payload"]["sub_workflow_id"] == ROOT


def test_an_adopted_run_is_created_only_where_none_is() -> None:
    plan = RunPlan(promote_running=True, adopt=Adoption(submitted_at=T0, workflow_name="wf"))
    update = tx.run_update("t", task(), None, plan, now=T0)["Update"]
    assert update["ConditionExpression"] == "attribute_not_exists(#pk)"
    assert "adopted" in values(update).values()
    assert values(update)[":st"] == "Running"


def test_the_pointer_is_written_over_the_event_the_caller_replays_only() -> None:
    items = tx.transition_items(
        "t", task(), None, RunPlan(), Pointer(seen_order=7), now=T0, retention=RETENTION
    )
    assert len(items) == 3
    pointer = items[2]["Update"]
    assert pointer["ConditionExpression"] == "#o = :seen AND attribute_not_exists(#to)"
    assert values(pointer)[":seen"] == 7
    assert ROOT in values(pointer).values()


def test_stuck_candidates_are_runnable_tasks_not_alerted_for_this_period() -> None:
    query = tx.stuck_candidates_query("t", ROOT, T0)
    assert query["KeyConditionExpression"] == "#pk = :pk AND begins_with(#sk, :prefix)"
    assert query["FilterExpression"] == (
        "#st = :runnable AND #ra < :before AND (attribute_not_exists(#sa) OR #sa < #ra)"
    )
    assert values(query)[":before"] == "2026-03-02T10:00:00.000Z"


def test_the_stuck_mark_covers_the_period_whatever_the_clock_says() -> None:
    later = "2026-03-02T11:00:00.000Z"
    update = tx.stuck_mark_update("t", ROOT, "job-1", later, now=T0)["Update"]
    assert update["ConditionExpression"] == "#st = :runnable AND #ra = :ra"
    assert values(update)[":mark"] == later  # the clock is behind runnable_at
    assert values(update)[":ra"] == later


def test_a_job_name_task_is_filled_once() -> None:
    update = tx.call_fill_update(
        "t", ROOT, "job-1", call="wf.align", shard=2, attempt=1, sub_workflow_id="sub"
    )
    assert update["ConditionExpression"] == "#cs = :job_name"
    assert values(update)[":metadata"] == "metadata"
    assert values(update)[":job_name"] == "job-name"


def test_an_unattributed_job_keeps_its_latest_event_unless_it_is_a_pointer() -> None:
    update = tx.unattributed_update(
        "t",
        job_id="job-9",
        job_name="wf_t",
        status=TaskStatus.RUNNING,
        order=5,
        event_time=T0,
        event_json="{}",
        reason="r",
        queue="q",
        now=T0,
        retention=RETENTION,
    )
    assert update["ConditionExpression"] == (
        "attribute_not_exists(#pk) OR (attribute_not_exists(#to) AND #o < :new_order)"
    )
    assert update["Key"] == {"pk": {"S": "UNATTRIBUTED"}, "sk": {"S": "JOB#job-9"}}


# -- the adapter -------------------------------------------------------------------------------


def cancelled(*codes: str, item: dict[str, Any] | None = None) -> ClientError:
    reasons: list[dict[str, Any]] = [{"Code": code} for code in codes]
    if item is not None:
        reasons[0]["Item"] = item
    return ClientError(
        {"Error": {"Code": "TransactionCanceledException", "Message": "x"}, "CancellationReasons": reasons},  # type: ignore[typeddict-unknown-key]
        "TransactWriteItems",
    )


class StubClient:
    """Answers `transact_write_items` with the queued errors first, then success."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.sent: list[list[dict[str, Any]]] = []

    def transact_write_items(self, TransactItems: list[dict[str, Any]]) -> dict[str, Any]:
        self.sent.append(TransactItems)
        if self.errors:
            raise self.errors.pop(0)
        return {}


def test_transaction_conflicts_are_retried_with_bounded_jittered_backoff() -> None:
    sleeps: list[float] = []
    client = StubClient(cancelled("TransactionConflict", "None"), cancelled("TransactionConflict", "None"))
    ledger = TaskLedger("t", client, sleep=sleeps.append, rand=lambda: 0.5)  # type: ignore[arg-type]
    result = ledger.transition(task(), None)
    assert result.applied
    assert result.write_calls == 3
    assert sleeps == [0.01, 0.02]
    assert client.sent[0] == client.sent[2]  # the same items each time
    hopeless = StubClient(*[cancelled("TransactionConflict", "None")] * 100)
    with pytest.raises(LedgerError):
        TaskLedger("t", hopeless, sleep=lambda _: None, max_conflict_retries=4).transition(task(), None)  # type: ignore[arg-type]


def test_a_failed_condition_says_what_is_stored() -> None:
    stored = {"status": {"S": "SUCCEEDED"}, "order": {"N": "90"}}
    client = StubClient(cancelled("ConditionalCheckFailed", "None", item=stored))
    result = TaskLedger("t", client).transition(task(), None)  # type: ignore[arg-type]
    assert not result.applied
    assert (result.task_conflict, result.task_returned) == (True, True)
    assert result.stored_task == StoredTask(TaskStatus.SUCCEEDED, 90)
    assert not result.run_conflict


def test_transition_refuses_to_move_backwards() -> None:
    with pytest.raises(ValueError, match="forward"):
        TaskLedger("t", StubClient()).transition(task(), StoredTask(TaskStatus.SUCCEEDED, 10**7))  # type: ignore[arg-type]


def test_a_stuck_alert_and_its_mark_go_in_one_transaction() -> None:
    from courier.ledger.records import TaskView  # noqa: PLC0415

    client = StubClient()
    view = TaskView(job_id="job-1", status=TaskStatus.RUNNABLE, runnable_at=T0, batch_attempts=2)
    assert TaskLedger("t", client, clock=lambda: T0).raise_stuck(ROOT, view, StuckPayload(job_id="job-1"))  # type: ignore[arg-type]
    put, mark = client.sent[0]
    assert from_item(put["Put"]["Item"])["sk"] == "EVENT#STUCK#job-1#2"
    assert mark["Update"]["Key"]["sk"] == {"S": "TASK#job-1"}
    refused = StubClient(cancelled("ConditionalCheckFailed", "None"))
    assert not TaskLedger("t", refused).raise_stuck(ROOT, view, StuckPayload(job_id="job-1"))  # type: ignore[arg-type]


# -- batches ---------------------------------------------------------------------------------------

BATCH_ID = "b47c0000-0000-5000-8000-000000000001"


def batch_view(ended: int, expected: int | None = 3) -> Any:
    from courier.ledger.records import BatchView  # noqa: PLC0415

    return BatchView(BATCH_ID, expected=expected, runs=3, ended=ended)


def test_a_batch_run_that_ends_counts_once_pinned_on_the_ended_count_it_read() -> None:
    items = tx.batch_end_items(
        "t", BATCH_ID, ROOT, RunStatus.FAILED, batch_view(1), now=T0, retention=RETENTION
    )
    (update,) = items  # not the last: no digest
    request = update["Update"]
    assert request["UpdateExpression"] == "SET #upd = :now ADD #ended :one, #final :one"
    assert request["ExpressionAttributeNames"]["#final"] == "runs_Failed"
    assert (
        request["ConditionExpression"]
        == "((attribute_not_exists(#ended) AND :seen = :zero) OR #ended = :seen) AND (#exp = :exp)"
    )
    assert from_item({"n": request["ExpressionAttributeValues"][":seen"]})["n"] == 1
    assert from_item({"n": request["ExpressionAttributeValues"][":exp"]})["n"] == 3


def test_a_run_ending_in_an_open_folder_window_is_pinned_on_the_window_being_open() -> None:
    """The window's closing sets `expected`: a run's end read before it must read again."""
    (update,) = tx.batch_end_items(
        "t", BATCH_ID, ROOT, RunStatus.FAILED, batch_view(0, expected=None), now=T0, retention=RETENTION
    )
    condition = update["Update"]["ConditionExpression"]
    assert condition.endswith("AND (attribute_not_exists(#exp))")
    assert update["Update"]["ExpressionAttributeNames"]["#exp"] == "expected"


def test_the_last_run_stamps_the_batch_once_and_inserts_the_digest_event() -> None:
    update, digest = tx.batch_end_items(
        "t", BATCH_ID, ROOT, RunStatus.SUCCEEDED, batch_view(2), now=T0, retention=RETENTION
    )
    assert "#eat = :now, #eby = :eby" in update["Update"]["UpdateExpression"]
    assert update["Update"]["ConditionExpression"].endswith("AND (attribute_not_exists(#eby))")
    item = from_item(digest["Put"]["Item"])
    assert (item["pk"], item["sk"], item["kind"]) == (
        f"RUN#{ROOT}",
        f"EVENT#BATCH_ENDED#{BATCH_ID}",
        "BATCH_ENDED",
    )
    assert item["payload"] == {"batch_id": BATCH_ID}
    assert digest["Put"]["ConditionExpression"] == "attribute_not_exists(#pk)"


def test_a_batch_without_an_expected_count_never_ends_on_its_own() -> None:
    items = tx.batch_end_items(
        "t", BATCH_ID, ROOT, RunStatus.SUCCEEDED, batch_view(2, expected=None), now=T0, retention=RETENTION
    )
    assert len(items) == 1


def test_joining_a_batch_writes_the_member_once_and_counts_it() -> None:
    from courier.models import RunRecord  # noqa: PLC0415

    run = RunRecord(ROOT, "wf", "b", "f/s.tsv:line-2", "f/", batch_id=BATCH_ID, sample="S1")
    member, count = tx.batch_transition_items(
        "t", run, RunStatus.SUBMITTED, None, now=T0, retention=RETENTION
    )
    assert member["Put"]["ConditionExpression"] == "attribute_not_exists(#pk)"
    assert from_item(member["Put"]["Item"])["sample"] == "S1"
    assert count["Update"]["UpdateExpression"] == "SET #upd = :now ADD #runs :rec"
    assert "ConditionExpression" not in count["Update"]
    assert (
        tx.batch_transition_items(
            "t", RunRecord(ROOT, "wf", "b", "k", "f/"), RunStatus.SUBMITTED, None, now=T0, retention=RETENTION
        )
        == []
    )
