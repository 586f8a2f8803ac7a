"""Sample sheets in the ledger: one partition per uploaded sheet, holding the sheet item (counts of
its rows by status) and one item per row (sample, status, workflow id, reasons).

    pk = SHEET#<sheet id>   sk = SHEET        the sheet: key, version, rows, rows_<Status> counts
    pk = SHEET#<sheet id>   sk = ROW#<line>   one row: line, sample, status, workflow_id, reasons

A row's status moves once from `Queued` (or `Waiting`, Cromwell unreachable) to `Submitted` or
`Rejected`, and its count moves with it in the same transaction, so a redelivered row never
counts twice. The items carry no `type = event`, so the notify stream filter never sees them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from courier.ledger import schema as s
from courier.ledger._codec import cancelled_by_condition, from_item, iso, query_items, serialize, to_item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

SHEET_SK = "SHEET"
ROW_SK_PREFIX = "ROW#"
ITEM_SHEET = "sheet"
ITEM_SHEET_ROW = "sheet_row"

QUEUED = "Queued"
WAITING = "Waiting"
SUBMITTED = "Submitted"
REJECTED = "Rejected"
ROW_STATUSES = (QUEUED, WAITING, SUBMITTED, REJECTED)
FINAL = (SUBMITTED, REJECTED)
#: Where a row may go from each status (nothing moves backwards; a final status never moves).
_NEXT = {QUEUED: (WAITING, SUBMITTED, REJECTED), WAITING: (SUBMITTED, REJECTED)}
_TRANSACTION_ITEMS = 100


def sheet_pk(sheet_id: str) -> str:
    return f"SHEET#{sheet_id}"


def row_sk(line: int) -> str:
    return f"{ROW_SK_PREFIX}{line:07d}"


def count_attr(status: str) -> str:
    return f"rows_{status}"


@dataclass(frozen=True, slots=True)
class SheetRecord:
    """What the sheet's handler decided: where the sheet is, and its verdict as a whole."""

    sheet_id: str
    bucket: str
    key: str
    version: str | None
    run_folder: str
    workflow_name: str | None
    main_wdl: str | None
    reasons: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RowRecord:
    line: int
    sample: str
    status: str
    workflow_id: str
    reasons: tuple[str, ...] = ()


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SheetLedger:
    """Adapter over the ledger table for sample sheets and their rows."""

    def __init__(
        self,
        table_name: str,
        client: DynamoDBClient,
        *,
        retention_days: int = 90,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.table_name = table_name
        self.client = client
        self.retention = timedelta(days=retention_days)
        self.clock = clock

    # -- reads -----------------------------------------------------------------------------------

    def _get(self, sheet_id: str, sk: str) -> dict[str, Any] | None:
        item = self.client.get_item(
            TableName=self.table_name,
            Key=to_item({s.PK: sheet_pk(sheet_id), s.SK: sk}),
            ConsistentRead=True,
        ).get("Item")
        return from_item(item) if item else None

    def sheet(self, sheet_id: str) -> dict[str, Any] | None:
        return self._get(sheet_id, SHEET_SK)

    def row(self, sheet_id: str, line: int) -> dict[str, Any] | None:
        return self._get(sheet_id, row_sk(line))

    def rows(self, sheet_id: str) -> list[dict[str, Any]]:
        """Every row of the sheet, in line order."""
        return list(
            query_items(
                self.client,
                {
                    "TableName": self.table_name,
                    "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :rows)",
                    "ExpressionAttributeNames": {"#pk": s.PK, "#sk": s.SK},
                    "ExpressionAttributeValues": {
                        ":pk": serialize(sheet_pk(sheet_id)),
                        ":rows": serialize(ROW_SK_PREFIX),
                    },
                    "ConsistentRead": True,
                },
            )
        )

    # -- writes ----------------------------------------------------------------------------------

    def _expiry(self, now: datetime) -> int:
        return int((now + self.retention).timestamp())

    def create(self, sheet: SheetRecord, rows: Sequence[RowRecord]) -> None:
        """Record the sheet and its rows, each once: a redelivered sheet adds nothing, and a sheet
        whose first recording stopped half way gets its missing rows (and their counts) only."""
        now = self.clock()
        item = {
            s.PK: sheet_pk(sheet.sheet_id),
            s.SK: SHEET_SK,
            s.TYPE: ITEM_SHEET,
            "sheet_id": sheet.sheet_id,
            "bucket": sheet.bucket,
            "key": sheet.key,
            "version": sheet.version,
            "run_folder": sheet.run_folder,
            "workflow_name": sheet.workflow_name,
            "main_wdl": sheet.main_wdl,
            "rows": len(rows),
            "reasons": list(sheet.reasons),
            "warnings": list(sheet.warnings),
            "created_at": iso(now),
            s.TTL_ATTR: self._expiry(now),
            **{count_attr(status): 0 for status in ROW_STATUSES},
        }
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=to_item(item),
                ConditionExpression="attribute_not_exists(#pk)",
                ExpressionAttributeNames={"#pk": s.PK},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
        chunk = _TRANSACTION_ITEMS - 1
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            try:
                self._transact(
                    [
                        *(self._row_put(sheet.sheet_id, r, now) for r in part),
                        self._counts(sheet.sheet_id, part),
                    ]
                )
            except ClientError as exc:
                cancelled_by_condition(exc)
                for row in part:  # some were recorded before: add the others one by one
                    try:
                        self._transact(
                            [self._row_put(sheet.sheet_id, row, now), self._counts(sheet.sheet_id, [row])]
                        )
                    except ClientError as inner:
                        cancelled_by_condition(inner)

    def _row_put(self, sheet_id: str, row: RowRecord, now: datetime) -> dict[str, Any]:
        item = {
            s.PK: sheet_pk(sheet_id),
            s.SK: row_sk(row.line),
            s.TYPE: ITEM_SHEET_ROW,
            "line": row.line,
            "sample": row.sample,
            "status": row.status,
            "workflow_id": row.workflow_id,
            "reasons": list(row.reasons),
            "updated_at": iso(now),
            s.TTL_ATTR: self._expiry(now),
        }
        return {
            "Put": {
                "TableName": self.table_name,
                "Item": to_item(item),
                "ConditionExpression": "attribute_not_exists(#pk)",
                "ExpressionAttributeNames": {"#pk": s.PK},
            }
        }

    def _counts(self, sheet_id: str, rows: Sequence[RowRecord], minus: str | None = None) -> dict[str, Any]:
        added: dict[str, int] = {}
        for row in rows:
            added[row.status] = added.get(row.status, 0) + 1
        if minus is not None:
            added[minus] = added.get(minus, 0) - len(rows)
        names = {f"#c{i}": count_attr(status) for i, status in enumerate(added)}
        values = {f":c{i}": serialize(n) for i, n in enumerate(added.values())}
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": to_item({s.PK: sheet_pk(sheet_id), s.SK: SHEET_SK}),
                "UpdateExpression": "ADD " + ", ".join(f"#c{i} :c{i}" for i in range(len(added))),
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }

    def settle_row(
        self, sheet_id: str, line: int, status: str, *, workflow_id: str, reasons: Sequence[str] = ()
    ) -> bool:
        """Move a row to `status` once (Queued -> Waiting, Submitted or Rejected; Waiting ->
        Submitted or Rejected), with its count. False when the row is there already, or unknown."""
        for _ in range(3):  # another invocation may move the row between the read and the write
            current = self.row(sheet_id, line)
            if current is None or status not in _NEXT.get(str(current.get("status")), ()):
                return False
            old = str(current["status"])
            row = RowRecord(line, str(current.get("sample", "")), status, workflow_id, tuple(reasons))
            try:
                self._transact(
                    [
                        {
                            "Update": {
                                "TableName": self.table_name,
                                "Key": to_item({s.PK: sheet_pk(sheet_id), s.SK: row_sk(line)}),
                                "UpdateExpression": "SET #st = :new, reasons = :why, workflow_id = :wf, "
                                "updated_at = :now",
                                "ConditionExpression": "#st = :old",
                                "ExpressionAttributeNames": {"#st": "status"},
                                "ExpressionAttributeValues": {
                                    ":new": serialize(status),
                                    ":old": serialize(old),
                                    ":why": serialize(list(reasons)),
                                    ":wf": serialize(workflow_id),
                                    ":now": serialize(iso(self.clock())),
                                },
                            }
                        },
                        self._counts(sheet_id, [row], minus=old),
                    ]
                )
                return True
            except ClientError as exc:
                cancelled_by_condition(exc)
        return False

    def mark(self, sheet_id: str, **fields: Any) -> None:
        """Set plain attributes of the sheet item (`enqueued_at`, `rendered_at`)."""
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        values = {f":v{i}": serialize(value) for i, value in enumerate(fields.values())}
        self.client.update_item(
            TableName=self.table_name,
            Key=to_item({s.PK: sheet_pk(sheet_id), s.SK: SHEET_SK}),
            UpdateExpression="SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(fields))),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def _transact(self, items: list[dict[str, Any]]) -> None:
        self.client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]


def counts_of(sheet: Mapping[str, Any]) -> dict[str, int]:
    """The sheet item's rows by status."""
    return {status: int(sheet.get(count_attr(status)) or 0) for status in ROW_STATUSES}
