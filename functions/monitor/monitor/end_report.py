"""What the run item keeps of a run's end (its outputs, failed calls and workflow failures), taken
from Cromwell's filtered answers and bounded in size.

The run item stores at most `max_failures` failed jobs and `max_outputs` outputs, each clipped,
under a byte budget, with the full counts beside them; a DynamoDB item must stay under 400 KB.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from courier.ledger.records import NOT_SCATTERED, FailureEntry, as_int, as_str
from monitor.metadata_index import iter_call_entries

TRUNCATION_MARK: Final = "…"

#: What the report of a Failed run needs from `/metadata` (includeKey, prefix matches at the root
#: and in each call entry, with `expandSubWorkflows=true`): the workflow's `failures` and, of each
#: call, its status, job, return code, failures, stderr and CloudWatch log. The failed calls are
#: picked out of the answer (`iter_failed_calls`), as `/metadata/failed-jobs` would list them.
FAILURE_KEYS: Final = (
    "failures",
    "executionStatus",
    "shardIndex",
    "attempt",
    "jobId",
    "returnCode",
    "stderr",
    "logConfig",
    "subWorkflowId",
)


@dataclass(frozen=True, slots=True)
class ReportLimits:
    max_failures: int = 50
    max_outputs: int = 500
    max_message_chars: int = 1_000
    max_value_chars: int = 1_024
    failures_budget_bytes: int = 80_000
    outputs_budget_bytes: int = 150_000
    max_workflow_failures: int = 10


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)] + TRUNCATION_MARK


def failure_messages(failures: Any, limit: int = 20) -> list[str]:
    """Cromwell's `failures` tree ({message, causedBy[]}) flattened depth first."""
    out: list[str] = []

    def walk(node: Any) -> None:
        if len(out) >= limit:
            return
        if isinstance(node, Mapping):
            message = node.get("message")
            if isinstance(message, str) and message and message not in out:
                out.append(message)
            walk(node.get("causedBy"))
        elif isinstance(node, list):
            for child in node:
                walk(child)
        elif isinstance(node, str) and node and node not in out:
            out.append(node)

    walk(failures)
    return out


def iter_failed_calls(metadata: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The failed call entries (`executionStatus` Failed) of `/metadata/failed-jobs` or of
    `/metadata` filtered with `FAILURE_KEYS`, sub-workflows included (depth first); an entry that
    holds a sub-workflow's metadata stands for its calls, listed before it."""
    for owner, fqn, entry in iter_call_entries(metadata):
        if isinstance(entry.get("subWorkflowMetadata"), Mapping) or entry.get("executionStatus") != "Failed":
            continue
        yield {
            "call": fqn,
            "workflow_id": owner.get("id"),
            "shard": entry.get("shardIndex"),
            "attempt": entry.get("attempt"),
            "job_id": entry.get("jobId"),
            "return_code": entry.get("returnCode"),
            "status": entry.get("executionStatus"),
            "messages": failure_messages(entry.get("failures")),
            "stderr": entry.get("stderr"),
            "log_stream": entry.get("logConfig:logStreamName"),
            "log_group": entry.get("logConfig:logGroupName"),
        }


def bound_failures(
    calls: Sequence[Mapping[str, Any]] | Iterator[dict[str, Any]], limits: ReportLimits
) -> dict[str, Any]:
    """The run item's `failures` (`FailureEntry` maps, at most `max_failures`, each clipped, under
    a byte budget) and `failures_count` (all failed calls)."""
    kept: list[dict[str, Any]] = []
    total = used = 0
    for call in calls:
        total += 1
        if len(kept) >= limits.max_failures:
            continue
        entry = failure_entry(call, limits).to_map()
        size = len(json.dumps(entry, default=str))
        if used + size > limits.failures_budget_bytes:
            continue
        used += size
        kept.append(entry)
    return {"failures": kept, "failures_count": total}


def failure_entry(call: Mapping[str, Any], limits: ReportLimits) -> FailureEntry:
    """One failed call of `iter_failed_calls`, its messages joined and its texts clipped."""

    def text(key: str, limit: int = 1_024) -> str | None:
        value = call.get(key)
        return clip(value, limit) if isinstance(value, str) else None

    message = " | ".join(call.get("messages") or [])
    shard = as_int(call.get("shard"))
    return FailureEntry(
        call=text("call"),
        workflow_id=as_str(call.get("workflow_id")),
        shard=NOT_SCATTERED if shard is None else shard,
        attempt=as_int(call.get("attempt")),
        job_id=as_str(call.get("job_id")),
        return_code=as_int(call.get("return_code")),
        status=as_str(call.get("status")),
        message=clip(message, limits.max_message_chars) if message else None,
        stderr=text("stderr"),
        log_group=text("log_group"),
        log_stream=text("log_stream"),
    )


def _storable(value: Any, limit: int) -> tuple[Any, bool]:
    if isinstance(value, str):
        return (value, False) if len(value) <= limit else (clip(value, limit), True)
    if isinstance(value, bool | int | float) or value is None:
        return value, False
    if isinstance(value, list) and all(isinstance(v, str | int | float | bool) for v in value):
        text = json.dumps(value)
        if len(text) <= limit:
            return value, False
    text = json.dumps(value, default=str)
    return (text, False) if len(text) <= limit else (clip(text, limit), True)


def bound_outputs(outputs: Mapping[str, Any], limits: ReportLimits) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    used = 0
    clipped = left_out = 0
    for key, value in outputs.items():
        if len(kept) >= limits.max_outputs:
            left_out += 1
            continue
        stored, was_clipped = _storable(value, limits.max_value_chars)
        size = len(key) + len(json.dumps(stored, default=str))
        if used + size > limits.outputs_budget_bytes:
            left_out += 1
            continue
        used += size
        clipped += was_clipped
        kept[clip(str(key), 512)] = stored
    return {
        "outputs": kept,
        "outputs_count": len(outputs),
        "outputs_clipped": clipped,
        "outputs_left_out": left_out,
    }


def bound_workflow_failures(failures: Any, limits: ReportLimits) -> list[str]:
    return [
        clip(m, limits.max_message_chars) for m in failure_messages(failures, limits.max_workflow_failures)
    ]
