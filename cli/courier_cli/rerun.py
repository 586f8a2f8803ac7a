"""`courier rerun`: the rerun.json that asks submit to re-run a batch's failures (or one run),
written where the S3 way expects it, then its receipt waited for (as `courier drop` waits)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from courier.conventions import RERUN_NAME, rerun_document
from courier.ledger.records import BatchView, RunView
from courier_cli.errors import ConsoleError


class BatchLookup(Protocol):
    def batch(self, batch_id: str) -> BatchView | None: ...


@dataclass(frozen=True, slots=True)
class RerunPlan:
    """Where the rerun.json goes and what it says."""

    bucket: str
    key: str
    document: str
    batch_id: str | None
    run_id: str | None


def plan_rerun(
    target: str, *, failed_only: bool, batches: BatchLookup, find_run: Callable[[str], RunView], bucket: str
) -> RerunPlan:
    """A batch id (a sample sheet's, as its receipt and digest give it) or a run (as `courier
    show` finds it: a workflow id or its first characters, an inputs key or s3:// URL)."""
    text = target.strip()
    batch = batches.batch(text) if text else None
    if batch is not None:
        if not batch.ended_by:
            raise ConsoleError(
                f"batch {batch.batch_id} has not ended ({batch.ended} of {batch.expected or batch.runs} "
                "runs ended): re-run its failures once it has"
            )
        folder = batch.folder or ""
        return RerunPlan(
            batch.bucket or bucket,
            folder + RERUN_NAME,
            rerun_document(batch=batch.batch_id, failed_only=failed_only),
            batch.batch_id,
            None,
        )
    run = find_run(text)
    if not run.ended:
        raise ConsoleError(f"run {run.workflow_id} has not ended: re-run it once it has")
    return RerunPlan(
        run.source_bucket or bucket,
        (run.run_folder or "") + RERUN_NAME,
        rerun_document(run=run.workflow_id, failed_only=failed_only),
        None,
        run.workflow_id,
    )


def read_receipt(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    import json  # noqa: PLC0415

    from courier_cli.lookup import RECEIPT_SUFFIX  # noqa: PLC0415

    body = s3.get_object(Bucket=bucket, Key=key + RECEIPT_SUFFIX)["Body"].read()
    document: dict[str, Any] = json.loads(body)
    return document
