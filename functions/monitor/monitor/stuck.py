"""Stuck alerts: tasks RUNNABLE for longer than the threshold, one alert per RUNNABLE period.

A task can be RUNNABLE more than once: a Batch retry (same jobId) moves it from RUNNING back to
RUNNABLE, and the ledger then stores a new `runnable_at`. Each such period may raise its own
alert:

* the task is a candidate when it was never alerted, or when its `stuck_alerted` mark is older
  than its `runnable_at` (the mark belongs to an earlier period);
* the alert is `STUCK#<jobId>` for the job's first Batch attempt and `STUCK#<jobId>#<n>` after
  `n` Batch retries, inserted with `attribute_not_exists`;
* in the same transaction the task gets its mark, conditioned on the task still being RUNNABLE
  with the `runnable_at` the sweep saw, so a task that moved meanwhile is not alerted.

The mark is never earlier than `runnable_at`, whatever the clocks say, so one period alerts once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from courier.ledger import schema as s
from courier.ledger._codec import cancelled_by_condition, iso, query_items, serialize, to_item
from courier.ledger.runs import RunLedger
from courier.models import NotificationKind, TaskStatus


def stuck_discriminator(job_id: str, batch_attempts: int) -> str:
    """`<jobId>` for the first RUNNABLE period of a job, `<jobId>#<n>` after n Batch retries."""
    return job_id if batch_attempts <= 0 else f"{job_id}#{batch_attempts}"


class StuckAlerts:
    """The reconciler's stuck alerts, on the run ledger's table, client, clock and retention."""

    def __init__(self, runs: RunLedger) -> None:
        self.runs = runs

    def candidates(
        self, workflow_id: str, entered_before: datetime, limit: int = 200
    ) -> list[dict[str, Any]]:
        """RUNNABLE tasks of a run since before `entered_before`, not alerted for this period."""
        kwargs: dict[str, Any] = {
            "TableName": self.runs.table_name,
            "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :task)",
            "FilterExpression": (
                "#st = :runnable AND #ra < :before AND (attribute_not_exists(#sa) OR #sa < #ra)"
            ),
            "ExpressionAttributeNames": {
                "#pk": s.PK,
                "#sk": s.SK,
                "#st": "status",
                "#ra": "runnable_at",
                "#sa": "stuck_alerted",
            },
            "ExpressionAttributeValues": {
                ":pk": serialize(s.run_pk(workflow_id)),
                ":task": serialize(s.TASK_SK_PREFIX),
                ":runnable": serialize(TaskStatus.RUNNABLE.value),
                ":before": serialize(iso(entered_before)),
            },
        }
        return list(query_items(self.runs.client, kwargs, limit))

    def raise_stuck(self, workflow_id: str, task: Mapping[str, Any], payload: Mapping[str, Any]) -> bool:
        """Insert the alert of this RUNNABLE period and mark the task, in one transaction.
        False when the alert exists already or the task left that RUNNABLE period."""
        job_id = str(task["job_id"])
        runnable_at = str(task.get("runnable_at") or "")
        attempts = int(task.get("batch_attempts") or 0)
        now = iso(self.runs.clock())
        discriminator = stuck_discriminator(job_id, attempts)
        items: list[dict[str, Any]] = [
            self.runs.event_put(workflow_id, NotificationKind.STUCK, payload, discriminator),
            {
                "Update": {
                    "TableName": self.runs.table_name,
                    "Key": to_item({s.PK: s.run_pk(workflow_id), s.SK: s.task_sk(job_id)}),
                    "UpdateExpression": "SET #sa = :mark",
                    "ConditionExpression": "#st = :runnable AND #ra = :ra",
                    "ExpressionAttributeNames": {
                        "#sa": "stuck_alerted",
                        "#st": "status",
                        "#ra": "runnable_at",
                    },
                    "ExpressionAttributeValues": {
                        # never earlier than runnable_at: the mark must cover this period
                        ":mark": serialize(max(now, runnable_at)),
                        ":runnable": serialize(TaskStatus.RUNNABLE.value),
                        ":ra": serialize(runnable_at),
                    },
                }
            },
        ]
        try:
            self.runs.client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
            return True
        except ClientError as exc:
            if any(cancelled_by_condition(exc)):
                return False
            raise
