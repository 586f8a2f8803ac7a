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

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from courier.ledger import schema as s
from courier.ledger._codec import query_items, serialize, to_item
from courier.models import NotificationKind, TaskStatus

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def stuck_discriminator(job_id: str, batch_attempts: int) -> str:
    """`<jobId>` for the first RUNNABLE period of a job, `<jobId>#<n>` after n Batch retries."""
    return job_id if batch_attempts <= 0 else f"{job_id}#{batch_attempts}"


class StuckAlerts:
    """Adapter over the ledger table for the reconciler's stuck alerts. Client injected."""

    def __init__(
        self,
        table_name: str,
        client: DynamoDBClient | Any,
        *,
        retention_days: int = 90,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.table_name = table_name
        self.client = client
        self.retention_seconds = retention_days * 86_400
        self.clock = clock

    def candidates(
        self, workflow_id: str, entered_before: datetime, limit: int = 200
    ) -> list[dict[str, Any]]:
        """RUNNABLE tasks of a run since before `entered_before`, not alerted for this period."""
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
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
        return list(query_items(self.client, kwargs, limit))

    def raise_stuck(self, workflow_id: str, task: Mapping[str, Any], payload: Mapping[str, Any]) -> bool:
        """Insert the alert of this RUNNABLE period and mark the task, in one transaction.
        False when the alert exists already or the task left that RUNNABLE period."""
        job_id = str(task["job_id"])
        runnable_at = str(task.get("runnable_at") or "")
        attempts = int(task.get("batch_attempts") or 0)
        now = iso(self.clock())
        created = int(self.clock().timestamp())
        event = {
            s.PK: s.run_pk(workflow_id),
            s.SK: s.event_sk(NotificationKind.STUCK.value, stuck_discriminator(job_id, attempts)),
            s.TYPE: s.ITEM_EVENT,
            "kind": NotificationKind.STUCK.value,
            "workflow_id": workflow_id,
            "created_at": now,
            "payload": dict(payload),
            s.TTL_ATTR: created + self.retention_seconds,
        }
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": to_item(event),
                    "ConditionExpression": "attribute_not_exists(#pk)",
                    "ExpressionAttributeNames": {"#pk": s.PK},
                }
            },
            {
                "Update": {
                    "TableName": self.table_name,
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
            self.client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
            return True
        except ClientError as exc:
            reasons = exc.response.get("CancellationReasons") or []
            code = exc.response.get("Error", {}).get("Code")
            if code == "TransactionCanceledException" and (
                not reasons or any(r.get("Code") == "ConditionalCheckFailed" for r in reasons)
            ):
                return False
            raise
