"""Tie a Batch job to its Cromwell workflow and call.

Tried in order, first answer wins:

1. the event's own tags (Cromwell 92+ with `tagResources`): `cromwell-root-workflow-id`,
   `cromwell-workflow-id` (a sub-workflow's own id), `cromwell-task-id` (call, shard, attempt);
2. the job's tags read with `batch:ListTagsForResource` when the event carries none (cached per
   job by the tag reader);
3. the workflow id in the job's script URL (`BATCH_FILE_S3_URL`), present when submit set the
   script prefix (Cromwell 91+). The call is then the job name (`wf_task`: Cromwell's sanitised
   call name, dots became underscores) with shard -1 and attempt 0, meaning "not known";
4. a pointer left by the reconciler, which matched the jobId in the filtered metadata of active
   runs (older Cromwell: no tags, no script prefix). Call, shard and attempt then come from
   Cromwell's metadata.

A job none of these ties is kept as unattributed; the reconciler retries it.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Protocol

from courier.conventions import parse_task_id, workflow_id_from_script_url
from courier.ledger.task_types import UnattributedJob
from courier.models import CallSource
from monitor.events import BatchJobEvent
from monitor.ports import JobTags

TAG_ROOT_WORKFLOW: Final = "cromwell-root-workflow-id"
TAG_WORKFLOW: Final = "cromwell-workflow-id"
TAG_TASK: Final = "cromwell-task-id"
TAG_ROOT_WORKFLOW_NAME: Final = "cromwell-root-workflow-name"
CROMWELL_TAGS: Final = (TAG_ROOT_WORKFLOW, TAG_WORKFLOW, TAG_TASK)

#: Shard and attempt when only the job name is known.
UNKNOWN_SHARD: Final = -1
UNKNOWN_ATTEMPT: Final = 0

_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class Source(StrEnum):
    EVENT_TAGS = "event-tags"
    JOB_TAGS = "job-tags"
    SCRIPT_PREFIX = "script-prefix"
    JOB_METADATA = "job-metadata"


@dataclass(frozen=True, slots=True)
class Attribution:
    root_workflow_id: str
    workflow_id: str
    call: str
    shard: int
    attempt: int
    source: Source
    call_source: CallSource
    root_workflow_name: str | None = None


class PointerStore(Protocol):
    """Where the reconciler leaves the run of a job it tied (`attributed_to`)."""

    def get_unattributed(self, job_id: str) -> UnattributedJob | None: ...


def workflow_uuid(value: str | None) -> str | None:
    """`<uuid>` or `cromwell-<uuid>` (the label form) -> the lower-case uuid."""
    if not value:
        return None
    match = _UUID_RE.search(value)
    return match.group(0).lower() if match else None


def from_tags(tags: Mapping[str, str], job_name: str, source: Source) -> Attribution | None:
    root = workflow_uuid(tags.get(TAG_ROOT_WORKFLOW))
    own = workflow_uuid(tags.get(TAG_WORKFLOW))
    root = root or own
    if root is None:
        return None
    name = tags.get(TAG_ROOT_WORKFLOW_NAME) or None
    task = parse_task_id(tags.get(TAG_TASK, ""))
    if task is None:
        return Attribution(
            root, own or root, job_name, UNKNOWN_SHARD, UNKNOWN_ATTEMPT, source, CallSource.JOB_NAME, name
        )
    return Attribution(
        root, own or root, task.call, task.shard, task.attempt, source, CallSource.TASK_ID_TAG, name
    )


def from_pointer(job: UnattributedJob) -> Attribution | None:
    root = job.attributed_to
    if not root:
        return None
    return Attribution(
        root_workflow_id=root,
        workflow_id=job.workflow_id or root,
        call=job.call or job.job_name,
        shard=job.shard,
        attempt=job.attempt,
        source=Source.JOB_METADATA,
        call_source=CallSource.METADATA,
    )


class Attributor:
    """Applies the four paths. Positive answers are cached per job (a job never changes run)."""

    def __init__(self, tags: JobTags | None, pointers: PointerStore, *, cache_entries: int = 100_000) -> None:
        self._tags = tags
        self._pointers = pointers
        self._max = cache_entries
        self._cache: OrderedDict[str, Attribution] = OrderedDict()

    def attribute(self, event: BatchJobEvent) -> Attribution | None:
        cached = self._cache.get(event.job_id)
        if cached is not None:
            return cached
        found = self._find(event)
        if found is not None:
            self.remember(event.job_id, found)
        return found

    def remember(self, job_id: str, attribution: Attribution) -> None:
        self._cache[job_id] = attribution
        if len(self._cache) > self._max:
            self._cache.popitem(last=False)

    def _find(self, event: BatchJobEvent) -> Attribution | None:
        if any(tag in event.tags for tag in CROMWELL_TAGS):
            found = from_tags(event.tags, event.job_name, Source.EVENT_TAGS)
            if found is not None:
                return found
        if self._tags is not None and event.job_arn:
            job_tags = self._tags.tags(event.job_arn)
            if any(tag in job_tags for tag in CROMWELL_TAGS):
                found = from_tags(job_tags, event.job_name, Source.JOB_TAGS)
                if found is not None:
                    return found
        if event.script_url:
            root = workflow_id_from_script_url(event.script_url)
            if root is not None:
                return Attribution(
                    root,
                    root,
                    event.job_name,
                    UNKNOWN_SHARD,
                    UNKNOWN_ATTEMPT,
                    Source.SCRIPT_PREFIX,
                    CallSource.JOB_NAME,
                )
        pointer = self._pointers.get_unattributed(event.job_id)
        return from_pointer(pointer) if pointer else None
