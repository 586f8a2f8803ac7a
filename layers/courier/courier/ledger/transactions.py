"""The ledger's DynamoDB requests, built and not sent: transaction items, updates and queries.

Every function here is pure (table, values and clock reading in, a request dict out), so the
conditions and updates are tested without DynamoDB (`tests/unit/test_ledger_transactions.py`);
the adapters (`courier.ledger.tasks.TaskLedger`, `courier.ledger.runs.RunLedger`) send them.

One Batch event becomes at most one `TransactWriteItems` call, of these items in this order:

* `task_update`: the task item, conditioned on the state the caller believes is stored: absent
  (`attribute_not_exists(pk)`) or a given `order` (`#prev_o = :prev_o`). The caller only writes
  when the new order is higher, so a task never moves backwards; pinning the previous order makes
  the count update exact without reading the item inside the write;
* `run_update`: the run item, `ADD tasks_<new> 1, tasks_<previous> -1` (exact because the task
  condition pins the previous status), `last_change`, `first_failure` (`if_not_exists`), and when
  asked the move to Running (conditioned on `status_rank < Running`) or the creation of an adopted
  run (conditioned on `attribute_not_exists(pk)`);
* optionally `early_failure_put`: the EARLY_FAILURE outbox event (`attribute_not_exists`), with
  the run conditioned on having no `first_failure` and not being finished;
* optionally `pointer_update`: the unattributed item of the job, turned into a pointer to its run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from courier.ledger import schema as s
from courier.ledger._codec import iso, serialize, to_item
from courier.ledger.records import (
    BatchEndedPayload,
    BatchOpening,
    BatchView,
    EarlyFailurePayload,
    Payload,
    RunView,
    payload_kind,
)
from courier.ledger.task_types import (
    EARLY_FAILURE_DISCRIMINATOR,
    ORIGIN_ADOPTED,
    TASK_EXTRA_RETENTION,
    UNATTRIBUTED_RETENTION,
    Pointer,
    RunPlan,
    StoredTask,
    TaskWrite,
)
from courier.models import CallSource, RunRecord, RunStatus, TaskStatus

# -- shared pieces ---------------------------------------------------------------------------------


def set_clause(
    values: Mapping[str, Any], prefix: str = "f"
) -> tuple[dict[str, str], dict[str, Any], list[str]]:
    """Names, values and `#n = :v` parts of a SET for the values that are not None."""
    names: dict[str, str] = {}
    vals: dict[str, Any] = {}
    sets: list[str] = []
    for i, (key, value) in enumerate(values.items()):
        if value is None:
            continue
        names[f"#{prefix}{i}"] = key
        vals[f":{prefix}{i}"] = serialize(value)
        sets.append(f"#{prefix}{i} = :{prefix}{i}")
    return names, vals, sets


def prune(names: dict[str, str], values: dict[str, Any], *expressions: str) -> None:
    """DynamoDB refuses names and values an expression does not use."""
    used = set(re.findall(r"[#:][A-Za-z0-9_]+", " ".join(expressions)))
    for key in [k for k in names if k not in used]:
        del names[key]
    for key in [k for k in values if k not in used]:
        del values[key]


def put_if_absent(table: str, item: Mapping[str, Any]) -> dict[str, Any]:
    """A `Put` transaction item that writes `item` only when no item has its key."""
    return {
        "Put": {
            "TableName": table,
            "Item": to_item(item),
            "ConditionExpression": "attribute_not_exists(#pk)",
            "ExpressionAttributeNames": {"#pk": s.PK},
        }
    }


def opt_iso(ts: datetime | None) -> str | None:
    return iso(ts) if ts is not None else None


def outbox_event_item(
    workflow_id: str, payload: Payload, discriminator: str, *, now: datetime, retention: timedelta
) -> dict[str, Any]:
    """An outbox event item (`EVENT#<KIND>[#<discriminator>]` in the run's partition)."""
    kind = payload_kind(payload)
    return {
        s.PK: s.run_pk(workflow_id),
        s.SK: s.event_sk(kind.value, discriminator),
        s.TYPE: s.ITEM_EVENT,
        "kind": kind.value,
        "workflow_id": workflow_id,
        "created_at": iso(now),
        "payload": payload.to_map(),
        s.TTL_ATTR: int((now + retention).timestamp()),
    }


def outbox_put(
    table: str,
    workflow_id: str,
    payload: Payload,
    discriminator: str = "",
    *,
    now: datetime,
    retention: timedelta,
) -> dict[str, Any]:
    """The transaction item that adds an outbox event once."""
    return put_if_absent(
        table, outbox_event_item(workflow_id, payload, discriminator, now=now, retention=retention)
    )


def partition_query(table: str, workflow_id: str, prefix: str) -> dict[str, Any]:
    """A Query of the items of a run's partition whose sort key starts with `prefix`."""
    return {
        "TableName": table,
        "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :prefix)",
        "ExpressionAttributeNames": {"#pk": s.PK, "#sk": s.SK},
        "ExpressionAttributeValues": {
            ":pk": serialize(s.run_pk(workflow_id)),
            ":prefix": serialize(prefix),
        },
    }


def _task_key(workflow_id: str, job_id: str) -> dict[str, Any]:
    return to_item({s.PK: s.run_pk(workflow_id), s.SK: s.task_sk(job_id)})


# -- one transition --------------------------------------------------------------------------------


def task_update(
    table: str, task: TaskWrite, previous: StoredTask | None, *, now: datetime, retention: timedelta
) -> dict[str, Any]:
    values: dict[str, Any] = {
        s.TYPE: s.ITEM_TASK,
        "job_id": task.job_id,
        "job_name": task.job_name,
        "call": task.call,
        "shard": task.shard,
        "attempt": task.attempt,
        "workflow_id": task.workflow_id,
        "root_workflow_id": task.root_workflow_id,
        "status": task.status.value,
        "order": task.order,
        "batch_attempts": task.batch_attempts,
        "status_reason": task.status_reason,
        "exit_code": task.exit_code,
        "created_at": opt_iso(task.created_at),
        "started_at": opt_iso(task.started_at),
        "stopped_at": opt_iso(task.stopped_at),
        "vcpus": task.vcpus,
        "memory_mib": task.memory_mib,
        "queue": task.queue,
        "log_group": task.log_group,
        "log_stream": task.log_stream,
        "attribution": task.attribution,
        "call_source": task.call_source,
        "event_time": iso(task.event_time),
        "updated_at": iso(now),
        s.TTL_ATTR: int((task.event_time + retention + TASK_EXTRA_RETENTION).timestamp()),
    }
    if task.status is TaskStatus.RUNNABLE:
        values["runnable_at"] = iso(task.event_time)
    names, vals, sets = set_clause(values)
    names["#pk"] = s.PK
    if previous is None:
        condition = "attribute_not_exists(#pk)"
    else:
        names["#prev_o"] = "order"
        vals[":prev_o"] = serialize(previous.order)
        condition = "#prev_o = :prev_o"
    prune(names, vals, "SET " + ", ".join(sets), condition)
    return {
        "Update": {
            "TableName": table,
            "Key": _task_key(task.root_workflow_id, task.job_id),
            "UpdateExpression": "SET " + ", ".join(sets),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": vals,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }


def run_update(
    table: str, task: TaskWrite, previous: StoredTask | None, plan: RunPlan, *, now: datetime
) -> dict[str, Any]:
    summary = task.summary().to_map()
    values: dict[str, Any] = {"updated_at": iso(now), "last_change": summary}
    names, vals, sets = set_clause(values, prefix="r")
    names.update({"#pk": s.PK, "#rank": "status_rank", "#st": "status"})
    conditions: list[str] = []
    if task.status is TaskStatus.FAILED:
        names["#ff"] = "first_failure"
        vals[":ff"] = serialize(summary)
        sets.append("#ff = if_not_exists(#ff, :ff)")
    if plan.adopt is not None:
        status = RunStatus.RUNNING if plan.promote_running else RunStatus.SUBMITTED
        adopted = {
            "workflow_id": task.root_workflow_id,
            s.TYPE: s.ITEM_RUN,
            "origin": ORIGIN_ADOPTED,
            "submitted_at": iso(plan.adopt.submitted_at),
            s.ACTIVE_PK: s.ACTIVE_PARTITION,
            s.ACTIVE_SK: f"{iso(plan.adopt.submitted_at)}#{task.root_workflow_id}",
            "workflow_name": plan.adopt.workflow_name,
        }
        more_names, more_vals, more_sets = set_clause(adopted, prefix="a")
        names.update(more_names)
        vals.update(more_vals)
        sets.extend(more_sets)
        vals[":st"] = serialize(status.value)
        vals[":rank"] = serialize(status.rank)
        sets += ["#st = :st", "#rank = :rank"]
        if plan.promote_running:
            vals[":started"] = serialize(iso(task.started_at or task.event_time))
            sets.append("started_at = :started")
        conditions.append("attribute_not_exists(#pk)")
    else:
        conditions.append("attribute_exists(#pk)")
        if plan.promote_running:
            vals[":st"] = serialize(RunStatus.RUNNING.value)
            vals[":rank"] = serialize(RunStatus.RUNNING.rank)
            vals[":started"] = serialize(iso(task.started_at or task.event_time))
            sets += ["#st = :st", "#rank = :rank", "started_at = if_not_exists(started_at, :started)"]
            conditions.append("#rank < :rank")
        if plan.early_failure:
            names["#ff"] = "first_failure"
            vals[":final"] = serialize(RunStatus.SUCCEEDED.rank)
            conditions.append("attribute_not_exists(#ff) AND #rank < :final")
    new_count = s.count_attr(task.status.value)
    names["#cnew"] = new_count
    vals[":one"] = serialize(1)
    adds = ["#cnew :one"]
    if previous is not None and previous.status is not task.status:
        names["#cold"] = s.count_attr(previous.status.value)
        vals[":minus"] = serialize(-1)
        adds.append("#cold :minus")
    elif previous is not None:
        adds = []
        del names["#cnew"], vals[":one"]
    expression = "SET " + ", ".join(sets) + (" ADD " + ", ".join(adds) if adds else "")
    condition = " AND ".join(conditions)
    prune(names, vals, expression, condition)
    return {
        "Update": {
            "TableName": table,
            "Key": to_item({s.PK: s.run_pk(task.root_workflow_id), s.SK: s.RUN_SK}),
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": vals,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }


def early_failure_put(table: str, task: TaskWrite, *, now: datetime, retention: timedelta) -> dict[str, Any]:
    payload = EarlyFailurePayload(task=task.summary(), sub_workflow_id=task.workflow_id)
    return outbox_put(
        table, task.root_workflow_id, payload, EARLY_FAILURE_DISCRIMINATOR, now=now, retention=retention
    )


def pointer_update(table: str, task: TaskWrite, pointer: Pointer, *, now: datetime) -> dict[str, Any]:
    values = {
        "attributed_to": task.root_workflow_id,
        "workflow_id": task.workflow_id,
        "call": task.call,
        "shard": task.shard,
        "attempt": task.attempt,
        "attributed_at": iso(now),
    }
    names, vals, sets = set_clause(values, prefix="p")
    names.update({"#o": "order", "#to": "attributed_to"})
    vals[":seen"] = serialize(pointer.seen_order)
    return {
        "Update": {
            "TableName": table,
            "Key": to_item({s.PK: s.UNATTRIBUTED_PK, s.SK: s.unattributed_sk(task.job_id)}),
            "UpdateExpression": "SET " + ", ".join(sets),
            "ConditionExpression": "#o = :seen AND attribute_not_exists(#to)",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": vals,
        }
    }


def transition_items(
    table: str,
    task: TaskWrite,
    previous: StoredTask | None,
    plan: RunPlan,
    pointer: Pointer | None,
    *,
    now: datetime,
    retention: timedelta,
) -> list[dict[str, Any]]:
    """The items of one transition, in the order the module doc gives (task, run, then the
    optional early-failure event and pointer)."""
    items = [
        task_update(table, task, previous, now=now, retention=retention),
        run_update(table, task, previous, plan, now=now),
    ]
    if plan.early_failure:
        items.append(early_failure_put(table, task, now=now, retention=retention))
    if pointer is not None:
        items.append(pointer_update(table, task, pointer, now=now))
    return items


# -- jobs not tied to a run yet --------------------------------------------------------------------


def unattributed_update(
    table: str,
    *,
    job_id: str,
    job_name: str,
    status: TaskStatus,
    order: int,
    event_time: datetime,
    event_json: str,
    reason: str,
    queue: str,
    now: datetime,
    retention: timedelta,
) -> dict[str, Any]:
    """UpdateItem arguments that keep the latest event of a job not tied to a run: written when
    absent, or when it is no pointer and holds an earlier event."""
    values = {
        s.TYPE: s.ITEM_UNATTRIBUTED,
        "job_id": job_id,
        "job_name": job_name,
        "status": status.value,
        "order": order,
        "queue": queue,
        "event": event_json,
        "reason": reason,
        "event_time": iso(event_time),
        "updated_at": iso(now),
        s.TTL_ATTR: int((event_time + retention + UNATTRIBUTED_RETENTION).timestamp()),
    }
    names, vals, sets = set_clause(values)
    names.update({"#pk": s.PK, "#o": "order", "#to": "attributed_to", "#fs": "first_seen"})
    vals[":fs"] = serialize(iso(now))
    sets.append("#fs = if_not_exists(#fs, :fs)")
    vals[":new_order"] = serialize(order)
    return {
        "TableName": table,
        "Key": to_item({s.PK: s.UNATTRIBUTED_PK, s.SK: s.unattributed_sk(job_id)}),
        "UpdateExpression": "SET " + ", ".join(sets),
        "ConditionExpression": "attribute_not_exists(#pk) OR (attribute_not_exists(#to) AND #o < :new_order)",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": vals,
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


def pending_unattributed_query(table: str) -> dict[str, Any]:
    """Unattributed jobs not tied yet (pointers left out)."""
    return {
        "TableName": table,
        "KeyConditionExpression": "#pk = :pk",
        "FilterExpression": "attribute_not_exists(#to)",
        "ExpressionAttributeNames": {"#pk": s.PK, "#to": "attributed_to"},
        "ExpressionAttributeValues": {":pk": serialize(s.UNATTRIBUTED_PK)},
        "ConsistentRead": True,
    }


def adopted_run_put(
    table: str,
    workflow_id: str,
    *,
    status: RunStatus,
    workflow_name: str | None,
    submitted_at: datetime,
    now: datetime,
) -> dict[str, Any]:
    """PutItem arguments that create the run item of a workflow the ledger does not know."""
    item = {
        s.PK: s.run_pk(workflow_id),
        s.SK: s.RUN_SK,
        s.TYPE: s.ITEM_RUN,
        "workflow_id": workflow_id,
        "workflow_name": workflow_name,
        "status": status.value,
        "status_rank": status.rank,
        "origin": ORIGIN_ADOPTED,
        "submitted_at": iso(submitted_at),
        "updated_at": iso(now),
        s.ACTIVE_PK: s.ACTIVE_PARTITION,
        s.ACTIVE_SK: f"{iso(submitted_at)}#{workflow_id}",
    }
    if status is RunStatus.RUNNING:
        item["started_at"] = iso(now)
    request: dict[str, Any] = put_if_absent(table, item)["Put"]
    return request


# -- stuck tasks -----------------------------------------------------------------------------------


def stuck_candidates_query(table: str, workflow_id: str, entered_before: datetime) -> dict[str, Any]:
    """RUNNABLE tasks of a run since before `entered_before` not alerted for this RUNNABLE
    period: never alerted, or alerted before their latest `runnable_at`."""
    request = partition_query(table, workflow_id, s.TASK_SK_PREFIX)
    request["FilterExpression"] = (
        "#st = :runnable AND #ra < :before AND (attribute_not_exists(#sa) OR #sa < #ra)"
    )
    request["ExpressionAttributeNames"].update(
        {"#st": "status", "#ra": "runnable_at", "#sa": "stuck_alerted"}
    )
    request["ExpressionAttributeValues"].update(
        {":runnable": serialize(TaskStatus.RUNNABLE.value), ":before": serialize(iso(entered_before))}
    )
    return request


def stuck_mark_update(
    table: str, workflow_id: str, job_id: str, runnable_at: str, *, now: datetime
) -> dict[str, Any]:
    """Mark a task alerted for its RUNNABLE period, conditioned on it still being RUNNABLE with
    the `runnable_at` the sweep saw. The mark is never earlier than `runnable_at`, whatever the
    clocks say, so that it covers this period."""
    return {
        "Update": {
            "TableName": table,
            "Key": _task_key(workflow_id, job_id),
            "UpdateExpression": "SET #sa = :mark",
            "ConditionExpression": "#st = :runnable AND #ra = :ra",
            "ExpressionAttributeNames": {"#sa": "stuck_alerted", "#st": "status", "#ra": "runnable_at"},
            "ExpressionAttributeValues": {
                ":mark": serialize(max(iso(now), runnable_at)),
                ":runnable": serialize(TaskStatus.RUNNABLE.value),
                ":ra": serialize(runnable_at),
            },
        }
    }


# -- tasks known only by their job name ------------------------------------------------------------


def job_name_tasks_query(table: str, workflow_id: str) -> dict[str, Any]:
    """The jobIds of a run's tasks whose call is only the job name (`call_source = job-name`)."""
    request = partition_query(table, workflow_id, s.TASK_SK_PREFIX)
    request["FilterExpression"] = "#cs = :job_name"
    request["ProjectionExpression"] = "#job"
    request["ExpressionAttributeNames"].update({"#cs": "call_source", "#job": "job_id"})
    request["ExpressionAttributeValues"][":job_name"] = serialize(CallSource.JOB_NAME.value)
    return request


def call_fill_update(
    table: str, workflow_id: str, job_id: str, *, call: str, shard: int, attempt: int, sub_workflow_id: str
) -> dict[str, Any]:
    """UpdateItem arguments that set call, shard, attempt and workflow from Cromwell's metadata on
    a task known only by its job name; a task filled already is left alone."""
    return {
        "TableName": table,
        "Key": _task_key(workflow_id, job_id),
        "UpdateExpression": (
            "SET #call = :call, #shard = :shard, #attempt = :attempt, #wf = :wf, #cs = :metadata"
        ),
        "ConditionExpression": "#cs = :job_name",
        "ExpressionAttributeNames": {
            "#call": "call",
            "#shard": "shard",
            "#attempt": "attempt",
            "#wf": "workflow_id",
            "#cs": "call_source",
        },
        "ExpressionAttributeValues": {
            ":call": serialize(call),
            ":shard": serialize(shard),
            ":attempt": serialize(attempt),
            ":wf": serialize(sub_workflow_id),
            ":metadata": serialize(CallSource.METADATA.value),
            ":job_name": serialize(CallSource.JOB_NAME.value),
        },
    }


# -- batches ---------------------------------------------------------------------------------------


def _batch_key(batch_id: str) -> dict[str, Any]:
    return to_item({s.PK: s.batch_pk(batch_id), s.SK: s.BATCH_SK})


def batch_open_update(
    table: str, batch_id: str, opening: BatchOpening, *, now: datetime, retention: timedelta
) -> dict[str, Any]:
    """UpdateItem arguments that open a batch: every field `if_not_exists`, so that opening it
    again (a redelivered sheet) or after its first runs were counted changes nothing."""
    values = {
        s.TYPE: s.ITEM_BATCH,
        "batch_id": batch_id,
        "kind": opening.kind,
        "bucket": opening.bucket,
        "folder": opening.folder,
        "source_key": opening.source_key,
        "expected": opening.expected,
        "workflow_name": opening.workflow_name,
        "rerun_of": opening.rerun_of,
        "opened_at": iso(now),
        s.TTL_ATTR: int((now + retention).timestamp()),
    }
    names, vals, _ = set_clause(values, prefix="b")
    sets = [f"{name} = if_not_exists({name}, :{name[1:]})" for name in names]
    return {
        "TableName": table,
        "Key": _batch_key(batch_id),
        "UpdateExpression": "SET " + ", ".join(sets),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": vals,
    }


def batch_member_put(
    table: str,
    batch_id: str,
    workflow_id: str,
    *,
    sample: str | None,
    status: RunStatus,
    inputs_key: str | None,
    now: datetime,
    retention: timedelta,
) -> dict[str, Any]:
    """The member item of a run, once: its `attribute_not_exists` condition is what makes the
    batch's count of the run exact under redelivery."""
    item = {
        s.PK: s.batch_pk(batch_id),
        s.SK: s.member_sk(workflow_id),
        s.TYPE: s.ITEM_BATCH_MEMBER,
        "batch_id": batch_id,
        "workflow_id": workflow_id,
        "sample": sample,
        "status": status.value,
        "inputs_key": inputs_key,
        "recorded_at": iso(now),
        "ended_at": iso(now) if status.terminal else None,
        s.TTL_ATTR: int((now + retention).timestamp()),
    }
    return put_if_absent(table, item)


def batch_member_end(
    table: str, batch_id: str, workflow_id: str, status: RunStatus, *, now: datetime
) -> dict[str, Any]:
    """The member's final status (the run's own condition keeps this to once)."""
    return {
        "Update": {
            "TableName": table,
            "Key": to_item({s.PK: s.batch_pk(batch_id), s.SK: s.member_sk(workflow_id)}),
            "UpdateExpression": "SET #st = :st, ended_at = :at",
            "ExpressionAttributeNames": {"#st": "status"},
            "ExpressionAttributeValues": {":st": serialize(status.value), ":at": serialize(iso(now))},
        }
    }


def batch_count_update(
    table: str,
    batch_id: str,
    *,
    recorded: int = 0,
    ended: RunStatus | None = None,
    seen_ended: int | None = None,
    seen_expected: int | None = None,
    closing: str | None = None,
    now: datetime,
) -> dict[str, Any]:
    """The batch's counts for one run transition: `runs` +`recorded`, and for a run that ended,
    `ended` +1 and `runs_<status>` +1. `seen_ended` pins the `ended` count the caller read, so
    that of two runs ending at once only one believes it is the last, and with it the `expected`
    count read (`seen_expected`, None: not set), so that a run ending while a folder batch's
    window is being closed reads the batch again; `closing` (the workflow id of the run that ends
    the batch) stamps the batch ended, once."""
    names = {"#runs": "runs", "#ended": "ended", "#upd": "updated_at"}
    vals: dict[str, Any] = {":now": serialize(iso(now))}
    adds: list[str] = []
    sets = ["#upd = :now"]
    conditions: list[str] = []
    if recorded:
        vals[":rec"] = serialize(recorded)
        adds.append("#runs :rec")
    if ended is not None:
        names["#final"] = s.batch_count_attr(ended.value)
        vals[":one"] = serialize(1)
        adds += ["#ended :one", "#final :one"]
    if seen_ended is not None:
        vals[":seen"] = serialize(seen_ended)
        conditions.append("(attribute_not_exists(#ended) AND :seen = :zero) OR #ended = :seen")
        vals[":zero"] = serialize(0)
        names["#exp"] = "expected"
        if seen_expected is None:
            conditions.append("attribute_not_exists(#exp)")
        else:
            vals[":exp"] = serialize(seen_expected)
            conditions.append("#exp = :exp")
    if closing is not None:
        names.update({"#eat": "ended_at", "#eby": "ended_by"})
        vals.update({":eby": serialize(closing)})
        sets += ["#eat = :now", "#eby = :eby"]
        conditions.append("attribute_not_exists(#eby)")
    expression = "SET " + ", ".join(sets) + (" ADD " + ", ".join(adds) if adds else "")
    condition = " AND ".join(f"({c})" for c in conditions)
    prune(names, vals, expression, condition)
    update: dict[str, Any] = {
        "TableName": table,
        "Key": _batch_key(batch_id),
        "UpdateExpression": expression,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": vals,
    }
    if condition:
        update["ConditionExpression"] = condition
    return {"Update": update}


def batch_transition_items(
    table: str,
    run: RunRecord | RunView,
    status: RunStatus,
    batch: BatchView | None,
    *,
    now: datetime,
    retention: timedelta,
) -> list[dict[str, Any]]:
    """What a run's joining its batch adds to a transaction: its member item (once: whoever
    writes it first, the run's record or its end, counts the run) and the batch's counts; a run
    that joins ended (Rejected, or ended before submit recorded it) and is the batch's last also
    adds the batch's digest event."""
    if not run.batch_id:
        return []
    items = [
        batch_member_put(
            table,
            run.batch_id,
            run.workflow_id,
            sample=run.sample,
            status=status,
            inputs_key=run.inputs_key,
            now=now,
            retention=retention,
        )
    ]
    if not status.terminal:
        items.append(batch_count_update(table, run.batch_id, recorded=1, now=now))
        return items
    items += batch_end_items(
        table, run.batch_id, run.workflow_id, status, batch, recorded=1, now=now, retention=retention
    )
    return items


def batch_end_items(
    table: str,
    batch_id: str,
    workflow_id: str,
    status: RunStatus,
    batch: BatchView | None,
    *,
    recorded: int = 0,
    now: datetime,
    retention: timedelta,
) -> list[dict[str, Any]]:
    """The batch's share of a run's terminal transition: its counts (pinned on the `ended` count
    read in `batch`) and, when this run is the batch's last, the BATCH_ENDED outbox event."""
    seen = batch.ended if batch is not None else 0
    last = batch is not None and batch.last_after(1)
    items = [
        batch_count_update(
            table,
            batch_id,
            recorded=recorded,
            ended=status,
            seen_ended=seen,
            seen_expected=batch.expected if batch is not None else None,
            closing=workflow_id if last else None,
            now=now,
        )
    ]
    if last:
        items.append(
            outbox_put(
                table, workflow_id, BatchEndedPayload(batch_id), batch_id, now=now, retention=retention
            )
        )
    return items


def batch_members_query(table: str, batch_id: str) -> dict[str, Any]:
    """The member items of a batch (a Query of its partition, no Scan)."""
    return {
        "TableName": table,
        "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :prefix)",
        "ExpressionAttributeNames": {"#pk": s.PK, "#sk": s.SK},
        "ExpressionAttributeValues": {
            ":pk": serialize(s.batch_pk(batch_id)),
            ":prefix": serialize(s.MEMBER_SK_PREFIX),
        },
        "ConsistentRead": True,
    }
