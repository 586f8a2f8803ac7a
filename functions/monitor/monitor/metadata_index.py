"""jobId -> workflow and call, from Cromwell's filtered metadata of a run (sub-workflows included).

Used by the reconciler (tying unattributed jobs of active runs) and by the filler (completing a
run's tasks before its terminal transition)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from monitor.attribution import Attribution, CallSource, Source

#: The only keys asked for: `/metadata?includeKey=...&expandSubWorkflows=true`.
METADATA_KEYS = ("jobId", "shardIndex", "attempt", "subWorkflowId")


def index_jobs(metadata: Mapping[str, Any], root: str) -> dict[str, Attribution]:
    """jobId -> workflow and call, from filtered metadata (sub-workflows included)."""
    out: dict[str, Attribution] = {}
    own = str(metadata.get("id") or root)
    calls = metadata.get("calls")
    if not isinstance(calls, Mapping):
        return out
    for fqn, entries in calls.items():
        if not isinstance(entries, list):
            continue
        for entry in entries:
            if not isinstance(entry, Mapping):
                continue
            nested = entry.get("subWorkflowMetadata")
            if isinstance(nested, Mapping):
                out.update(index_jobs(nested, root))
            job_id = entry.get("jobId")
            if isinstance(job_id, str) and job_id:
                out[job_id] = Attribution(
                    root_workflow_id=root,
                    workflow_id=own,
                    call=str(fqn),
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
