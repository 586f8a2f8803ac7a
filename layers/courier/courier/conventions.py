"""Names and formats shared by submit, monitor and notify: deterministic workflow ids, the Batch
script prefix that carries a workflow id, Cromwell's task-id tag, and Courier's labels."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass

# Fixed namespace for uuid5 workflow ids derived from uploads. Never change it: it makes ids stable.
WORKFLOW_ID_NAMESPACE = uuid.UUID("6f0c3c1e-2b6a-5d1e-9a57-3c0d2f1b7a41")

#: Receipt written beside each inputs file.
RECEIPT_SUFFIX = ".receipt.json"

#: Sample sheets: the names that start one run per row when options.json names no other, and
#: the per-row receipts table written beside a sheet.
SAMPLE_SHEET_NAMES = ("samples.tsv", "samples.csv")
SAMPLE_SHEET_SUFFIXES = (".tsv", ".csv")
ROWS_RECEIPT_SUFFIX = ".receipts.tsv"

#: Labels Courier adds to every run it submits.
LABEL_RUN_FOLDER = "courier-run-folder"
LABEL_INPUTS_KEY = "courier-inputs-key"
LABEL_SOURCE_BUCKET = "courier-bucket"
LABEL_PROJECT = "project"
LABEL_SLACK_CHANNEL = "courier-slack-channel"
#: On a next run of a pipeline (docs/pipelines.md): the run it was built from, or the batch.
LABEL_PARENT = "courier-parent"
LABEL_PARENT_BATCH = "courier-parent-batch"
#: The file that asks for a re-run of a batch's failures (or of one run), dropped in the runs bucket.
RERUN_NAME = "rerun.json"


def rerun_document(*, batch: str | None = None, run: str | None = None, failed_only: bool = False) -> str:
    """The rerun.json that asks for a re-run of a batch (or of one run): what `courier rerun`
    writes and what the digest tells to write by hand; submit reads it back."""
    target = {"batch": batch} if batch is not None else {"run": run}
    return json.dumps({**target, "failed_only": failed_only})


#: The workflow options a re-run sets: Cromwell's call caching, read and write (docs/call-caching.md).
RERUN_OPTIONS = {"read_from_cache": True, "write_to_cache": True}
#: On a re-run's runs: the workflow id of the run each replaces.
LABEL_RERUN_OF = "courier-rerun-of"

#: Workflow options Courier reads from options.json and strips before submission.
OPTION_MAIN_WDL = "courier_main_wdl"
OPTION_SLACK_CHANNEL = "courier_slack_channel"
OPTION_PROJECT = "courier_project"
OPTION_SAMPLE_SHEET = "courier_sample_sheet"
#: The next step of a pipeline: its folder, when it starts, how its inputs are built (courier.pipeline).
OPTION_NEXT = "courier_next"
#: Which end messages the runs of a batch send: the batch's digest, one per run, or both.
OPTION_NOTIFY = "courier_notify"
NOTIFY_DIGEST = "digest"
NOTIFY_PER_RUN = "per-run"
NOTIFY_BOTH = "both"
NOTIFY_MODES = (NOTIFY_DIGEST, NOTIFY_PER_RUN, NOTIFY_BOTH)

#: Cromwell 91+ option that sets the S3 prefix of every Batch job's script.
OPTION_SCRIPT_PREFIX = "aws_batch_script_bucket_prefix"
OPTION_CALLBACK_URI = "workflow_callback_uri"

_SCRIPT_PREFIX = "scripts/courier-{workflow_id}/"
_SCRIPT_URL_RE = re.compile(
    r"/scripts/courier-(?P<id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/"
)
_TASK_ID_RE = re.compile(r"^(?P<call>.+)-(?:None|Some_(?P<shard>\d+)_)-(?P<attempt>\d+)$")


def requested_workflow_id(bucket: str, key: str, version_id: str | None, sequencer: str | None) -> str:
    """The Cromwell workflow id of one upload of an inputs file.

    The same upload (redelivered any number of times) gives the same id; a re-upload of the same
    key gives a new object version (or a new `sequencer` in an unversioned bucket), hence a new id.
    """
    marker = f"v={version_id}" if version_id and version_id != "null" else f"s={sequencer or ''}"
    return str(uuid.uuid5(WORKFLOW_ID_NAMESPACE, f"s3://{bucket}/{key}#{marker}"))


def sheet_row_key(sheet_key: str, line: int) -> str:
    """The key one row of a sample sheet stands for: its run's `inputs_key` in the ledger, and
    (with the sheet's version) what its workflow id is derived from, as an inputs file's is."""
    return f"{sheet_key}:line-{line}"


_ROW_KEY_RE = re.compile(r":line-(?P<line>\d+)$")


def sheet_row_line(inputs_key: str | None) -> int | None:
    """The sheet line a run's `inputs_key` stands for (`sheet_row_key`), or None."""
    match = _ROW_KEY_RE.search(inputs_key or "")
    return int(match.group("line")) if match else None


def script_prefix(workflow_id: str) -> str:
    """Value of `aws_batch_script_bucket_prefix` that names the workflow in each job's script URL."""
    return _SCRIPT_PREFIX.format(workflow_id=workflow_id)


def workflow_id_from_script_url(url: str) -> str | None:
    """Read the workflow id back from a job's `BATCH_FILE_S3_URL`, if submit set the prefix."""
    match = _SCRIPT_URL_RE.search(url)
    return match.group("id") if match else None


def receipt_key(inputs_key: str) -> str:
    return inputs_key + RECEIPT_SUFFIX


def rows_receipt_key(sheet_key: str) -> str:
    return sheet_key + ROWS_RECEIPT_SUFFIX


@dataclass(frozen=True, slots=True)
class TaskRef:
    """A Cromwell call attempt: `wf.task`, shard (-1 when not scattered), attempt (1-based)."""

    call: str
    shard: int
    attempt: int


def parse_task_id(tag: str) -> TaskRef | None:
    """Parse Cromwell's `cromwell-task-id` tag: `wf.task-None-1`, `wf.task-Some_3_-2`."""
    match = _TASK_ID_RE.match(tag.strip())
    if not match:
        return None
    shard = match.group("shard")
    return TaskRef(
        call=match.group("call"),
        shard=int(shard) if shard is not None else -1,
        attempt=int(match.group("attempt")),
    )


def job_name_for_call(call: str) -> str:
    """The AWS Batch job name Cromwell gives a call (`wf.task` -> `wf_task`)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", call)[:128]
