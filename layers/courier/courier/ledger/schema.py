"""Key layout of the run ledger: one DynamoDB table for runs, tasks and outbox events.

See docs/ledger.md for the design and the access patterns.
"""

from __future__ import annotations

from typing import Final

PK: Final = "pk"
SK: Final = "sk"
TYPE: Final = "type"
TTL_ATTR: Final = "expires_at"

#: Sparse index of the runs that are not finished yet.
ACTIVE_INDEX: Final = "active"
ACTIVE_PK: Final = "active_pk"
ACTIVE_SK: Final = "active_sk"
ACTIVE_PARTITION: Final = "ACTIVE"

#: Index of every run by submission time (`type` = run, `submitted_at`): the runs console's list.
#: Only run items carry both keys, so tasks and events never enter it. It projects the fields a
#: list shows that change a few times in a run's life, never the task counts, so the monitor's
#: per-task updates of the run item do not write to it.
RUNS_INDEX: Final = "runs"
RUNS_SK: Final = "submitted_at"
RUNS_PROJECTION: Final = (
    "workflow_id",
    "workflow_name",
    "status",
    "origin",
    "source_bucket",
    "inputs_key",
    "run_folder",
    "requester",
    "started_at",
    "ended_at",
)

RUN_SK: Final = "RUN"
TASK_SK_PREFIX: Final = "TASK#"
EVENT_SK_PREFIX: Final = "EVENT#"
UNATTRIBUTED_PK: Final = "UNATTRIBUTED"

ITEM_RUN: Final = "run"
ITEM_TASK: Final = "task"
ITEM_EVENT: Final = "event"
ITEM_UNATTRIBUTED: Final = "unattributed"

#: Notify's delivery record on an outbox event item: a map with one entry per channel.
DELIVERY_ATTR: Final = "delivery"

#: Task counts are flat attributes `tasks_<STATUS>` on the run item (ADD works on absent ones).
TASK_COUNT_PREFIX: Final = "tasks_"


def run_pk(workflow_id: str) -> str:
    return f"RUN#{workflow_id}"


def task_sk(job_id: str) -> str:
    return f"{TASK_SK_PREFIX}{job_id}"


def event_sk(kind: str, discriminator: str = "") -> str:
    return f"{EVENT_SK_PREFIX}{kind}" + (f"#{discriminator}" if discriminator else "")


def unattributed_sk(job_id: str) -> str:
    return f"JOB#{job_id}"


def count_attr(status: str) -> str:
    return f"{TASK_COUNT_PREFIX}{status}"


def attempt_discriminator(job_id: str, batch_attempts: int) -> str:
    """The outbox discriminator of an alert about one RUNNABLE period of a job (stuck, queue
    blocked): `<jobId>` for its first Batch attempt, `<jobId>#<n>` after n Batch retries."""
    return job_id if batch_attempts <= 0 else f"{job_id}#{batch_attempts}"


# -- batches: the runs of one sample sheet (docs/ledger.md, "Batch items") ---------------------------

BATCH_SK: Final = "BATCH"
MEMBER_SK_PREFIX: Final = "MEMBER#"
ITEM_BATCH: Final = "batch"
ITEM_BATCH_MEMBER: Final = "batch_member"
#: Run counts on the batch item: `runs` (members recorded), `ended`, and `runs_<final status>`.
BATCH_COUNT_PREFIX: Final = "runs_"
BATCH_KIND_SHEET: Final = "sheet"
BATCH_KIND_RERUN: Final = "rerun"
#: The inputs files dropped into one folder within the batch window (docs/ledger.md, "Folder windows").
BATCH_KIND_FOLDER: Final = "folder"


def batch_pk(batch_id: str) -> str:
    return f"BATCH#{batch_id}"


def member_sk(workflow_id: str) -> str:
    return f"{MEMBER_SK_PREFIX}{workflow_id}"


def batch_count_attr(status: str) -> str:
    return f"{BATCH_COUNT_PREFIX}{status}"


# -- folder windows: which batch an inputs file dropped into a folder joins ----------------------------

WINDOW_SK: Final = "WINDOW"
UPLOAD_SK_PREFIX: Final = "UPLOAD#"
ITEM_FOLDER_WINDOW: Final = "folder_window"
ITEM_FOLDER_UPLOAD: Final = "folder_upload"
#: The `active` index's partition of the folder batches whose window has not been closed yet
#: (`active_sk` = `<closes_at>#<batch id>`); run items use ACTIVE_PARTITION.
OPEN_WINDOWS_PARTITION: Final = "WINDOW"


def folder_pk(bucket: str, folder: str) -> str:
    return f"FOLDER#{bucket}/{folder}"


def upload_sk(workflow_id: str) -> str:
    return f"{UPLOAD_SK_PREFIX}{workflow_id}"
