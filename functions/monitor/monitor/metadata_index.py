"""jobId -> workflow and call, from Cromwell's filtered metadata of a run (sub-workflows included).

Used by the reconciler (tying unattributed jobs of active runs) and by the filler (completing a
run's tasks before its terminal transition)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from courier.models import CallSource
from monitor.attribution import Attribution, Source

#: The only keys asked for: `/metadata?includeKey=...&expandSubWorkflows=true`.
METADATA_KEYS = ("jobId", "shardIndex", "attempt", "subWorkflowId")


def iter_call_entries(
    metadata: Mapping[str, Any],
) -> Iterator[tuple[Mapping[str, Any], str, Mapping[str, Any]]]:
    """(the workflow's metadata, call name, call entry) for every call entry of a metadata answer,
    a sub-workflow's entries before the entry that holds them (depth first)."""
    calls = metadata.get("calls")
    if not isinstance(calls, Mapping):
        return
    for fqn, entries in calls.items():
        if not isinstance(entries, list):
            continue
        for entry in entries:
            if not isinstance(entry, Mapping):
                continue
            nested = entry.get("subWorkflowMetadata")
            if isinstance(nested, Mapping):
                yield from iter_call_entries(nested)
            yield metadata, str(fqn), entry


def index_jobs(metadata: Mapping[str, Any], root: str) -> dict[str, Attribution]:
    """jobId -> workflow and call, from filtered metadata (sub-workflows included)."""
    out: dict[str, Attribution] = {}
    for owner, fqn, entry in iter_call_entries(metadata):
        job_id = entry.get("jobId")
        if isinstance(job_id, str) and job_id:
            out[job_id] = Attribution(
                root_workflow_id=root,
                workflow_id=str(owner.get("id") or root),
                call=fqn,
                shard=_int(entry.get("shardIndex"), -1),
                attempt=_int(entry.get("attempt"), 0),
                source=Source.JOB_METADATA,
                call_source=CallSource.METADATA,
            )
    return out


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
