"""Pipelines in the ledger (docs/pipelines.md): the lineage of a next run's inputs file, and what
a run's or a batch's end did about its next step.

* `NEXT#s3://<bucket>/<key>` / `LINEAGE`: written by notify before it writes the next inputs
  file (once: `attribute_not_exists`), read by submit when that file arrives. Keyed by the file,
  so only a file notify wrote has a parent; one uploaded by hand starts a pipeline of its own.
* `next_step` on the parent's run item (`when: run`) or batch item (`when: batch`): the first
  outcome written stays (`if_not_exists`), so a redelivered end never changes it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from courier.ledger import schema as s
from courier.ledger._codec import conditional_failure, from_item, iso, serialize, to_item
from courier.pipeline import Lineage, NextStep

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

LINEAGE_SK: Final = "LINEAGE"
ITEM_LINEAGE: Final = "lineage"


def lineage_pk(bucket: str, key: str) -> str:
    return f"NEXT#s3://{bucket}/{key}"


class PipelineLedger:
    """Adapter over the ledger table for lineage items and `next_step` records."""

    def __init__(
        self,
        table_name: str,
        client: DynamoDBClient,
        *,
        retention_days: int = 90,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.table_name = table_name
        self.client = client
        self.retention = timedelta(days=retention_days)
        self.clock = clock

    def lineage(self, bucket: str, key: str) -> Lineage | None:
        resp = self.client.get_item(
            TableName=self.table_name,
            Key=to_item({s.PK: lineage_pk(bucket, key), s.SK: LINEAGE_SK}),
            ConsistentRead=True,
        )
        item = resp.get("Item")
        return Lineage.from_map(from_item(item)) if item else None

    def put_lineage(self, bucket: str, key: str, lineage: Lineage) -> bool:
        """Write the lineage of a next inputs file once; False when it is there already."""
        now = self.clock()
        item: dict[str, Any] = {
            s.PK: lineage_pk(bucket, key),
            s.SK: LINEAGE_SK,
            s.TYPE: ITEM_LINEAGE,
            "bucket": bucket,
            "key": key,
            "created_at": iso(now),
            s.TTL_ATTR: int((now + self.retention).timestamp()),
            **lineage.to_map(),
        }
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=to_item(item),
                ConditionExpression="attribute_not_exists(#pk)",
                ExpressionAttributeNames={"#pk": s.PK},
            )
            return True
        except ClientError as exc:
            if conditional_failure(exc):
                return False
            raise

    def record_run_step(self, workflow_id: str, step: NextStep) -> None:
        self._record(s.run_pk(workflow_id), s.RUN_SK, step)

    def record_batch_step(self, batch_id: str, step: NextStep) -> None:
        self._record(s.batch_pk(batch_id), s.BATCH_SK, step)

    def _record(self, pk: str, sk: str, step: NextStep) -> None:
        """`next_step` on an existing item, once (the first outcome stays)."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=to_item({s.PK: pk, s.SK: sk}),
                UpdateExpression="SET #ns = if_not_exists(#ns, :ns)",
                ConditionExpression="attribute_exists(#pk)",
                ExpressionAttributeNames={"#ns": "next_step", "#pk": s.PK},
                ExpressionAttributeValues={":ns": serialize(step.to_map())},
            )
        except ClientError as exc:
            if not conditional_failure(exc):
                raise
