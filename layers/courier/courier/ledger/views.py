"""Reads of one run's partition as typed records (`courier.ledger.records`).

The one read path that notify, the `courier` command and the batch digest share: a run item, its
task items (paged, one page in memory at a time) and its outbox events. Client injected.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from courier.ledger import schema as s
from courier.ledger._codec import from_item, query_items, serialize, to_item
from courier.ledger.records import BatchMember, BatchView, OutboxEvent, RunView, TaskView
from courier.ledger.transactions import batch_members_query

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class RunViews:
    """Typed reads of the ledger table (consistent reads; no writes)."""

    def __init__(self, table_name: str, client: DynamoDBClient, *, page_size: int = 500) -> None:
        self.table_name = table_name
        self.client = client
        self.page_size = page_size

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        resp = self.client.get_item(
            TableName=self.table_name, Key=to_item({s.PK: pk, s.SK: sk}), ConsistentRead=True
        )
        item = resp.get("Item")
        return from_item(item) if item else None

    def run(self, workflow_id: str) -> RunView | None:
        item = self._get(s.run_pk(workflow_id), s.RUN_SK)
        return RunView.from_item(item, workflow_id) if item else None

    def task(self, workflow_id: str, job_id: str) -> TaskView | None:
        item = self._get(s.run_pk(workflow_id), s.task_sk(job_id))
        return TaskView.from_item(item) if item else None

    def event(self, workflow_id: str, event_sk: str) -> OutboxEvent | None:
        item = self._get(s.run_pk(workflow_id), event_sk)
        return OutboxEvent.from_item(item) if item else None

    def _prefix(
        self, workflow_id: str, prefix: str, attributes: Sequence[str] | None
    ) -> Iterator[dict[str, Any]]:
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :prefix)",
            "ExpressionAttributeNames": {"#pk": s.PK, "#sk": s.SK},
            "ExpressionAttributeValues": {
                ":pk": serialize(s.run_pk(workflow_id)),
                ":prefix": serialize(prefix),
            },
            "ConsistentRead": True,
            "Limit": self.page_size,
        }
        if attributes:
            names = {f"#a{i}": name for i, name in enumerate(attributes)}
            request["ProjectionExpression"] = ", ".join(names)
            request["ExpressionAttributeNames"].update(names)
        yield from query_items(self.client, request)

    def tasks(
        self, workflow_id: str, attributes: Sequence[str] | None = TaskView.ATTRIBUTES
    ) -> Iterator[TaskView]:
        """Every task of a run, in job-id order, one page in memory at a time."""
        for item in self._prefix(workflow_id, s.TASK_SK_PREFIX, attributes):
            yield TaskView.from_item(item)

    def events(self, workflow_id: str) -> Iterator[OutboxEvent]:
        for item in self._prefix(workflow_id, s.EVENT_SK_PREFIX, None):
            try:
                yield OutboxEvent.from_item(item)
            except ValueError:
                continue

    def batch(self, batch_id: str) -> BatchView | None:
        item = self._get(s.batch_pk(batch_id), s.BATCH_SK)
        return BatchView.from_item(item, batch_id) if item else None

    def members(self, batch_id: str) -> Iterator[BatchMember]:
        """The runs of a batch (one Query of its partition), in workflow-id order."""
        request = batch_members_query(self.table_name, batch_id)
        request["Limit"] = self.page_size
        for item in query_items(self.client, request):
            yield BatchMember.from_item(item)
