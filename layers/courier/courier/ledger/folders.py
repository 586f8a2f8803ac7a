"""Folder windows: the inputs files dropped into one folder within the batch window form one batch
(kind `folder`). Every write is conditional, so redelivered upload events, uploads handled in any
order and a window closed while its runs end count each run once and end the batch once.

Items (docs/ledger.md, "Folder windows"):

* `FOLDER#<bucket>/<folder>` / `WINDOW`: the folder's latest window (`batch_id`, `opened_at`,
  `closes_at`). A new window is claimed only when there is none or the latest one has closed for
  the upload's time (`closes_at <= :at`), so two uploads racing for a new window make one.
* `FOLDER#<bucket>/<folder>` / `UPLOAD#<workflow id>`: which batch an inputs file joined (none:
  it runs alone), written once with the join; a redelivered event reads it back.
* the batch item, opened by the window's first upload: `assigned` counts the uploads (in the
  join's own transaction), `window_closes_at`, and an entry in the `active` index under
  `WINDOW` until the window is closed. Closing sets `expected = assigned` (pinned on the counts
  read) and, when every run has ended already, inserts `BATCH_ENDED` in the same transaction;
  otherwise the last run's end does (`courier.ledger.transactions.batch_end_items`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from courier.ledger import schema as s
from courier.ledger._codec import (
    cancelled_by_condition,
    from_item,
    iso,
    query_items,
    serialize,
    to_item,
    transact,
)
from courier.ledger.records import BatchEndedPayload, BatchMember, BatchView, parse_time
from courier.ledger.runs import utcnow
from courier.ledger.transactions import batch_members_query, outbox_put, put_if_absent
from courier.ledger.views import RunViews

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

#: Tries of one assignment or closing whose conditions met a concurrent write (read again).
_ATTEMPTS = 8
#: Tries of one transaction cancelled by another on the same items (a folder's files dropped
#: together all join its batch item).
_CONFLICT_ATTEMPTS = 12
_FOLDER_BATCH_NAMESPACE = uuid.UUID("6f1d3c52-8a47-5b0e-9c1f-2d7a4e6b9c30")


def folder_batch_id(first_workflow_id: str) -> str:
    """A window's batch id, derived from the upload that opened it (the same on every retry)."""
    return str(uuid.uuid5(_FOLDER_BATCH_NAMESPACE, f"folder-window:{first_workflow_id}"))


class FolderWindows:
    """Adapter over the ledger table for folder windows and the closing of their batches."""

    def __init__(
        self,
        table_name: str,
        client: DynamoDBClient,
        *,
        retention_days: int = 90,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.table_name = table_name
        self.client = client
        self.retention = timedelta(days=retention_days)
        self.clock = clock
        self.sleep = sleep
        self.views = RunViews(table_name, client)

    # -- reads -----------------------------------------------------------------------------------

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        item = self.client.get_item(
            TableName=self.table_name, Key=to_item({s.PK: pk, s.SK: sk}), ConsistentRead=True
        ).get("Item")
        return from_item(item) if item else None

    def batch(self, batch_id: str) -> BatchView | None:
        return self.views.batch(batch_id)

    # -- which batch an upload joins ---------------------------------------------------------------

    def assign(
        self, bucket: str, folder: str, workflow_id: str, *, at: datetime, window: timedelta
    ) -> str | None:
        """The batch the inputs file `workflow_id`, dropped at `at`, joins (None: it runs alone).
        The same answer however often it is asked: the first one is recorded with the join.

        The upload joins the folder's window when its time is within `window` of the window's
        opening (either side: uploads are handled in any order) and the window has not been
        closed; it opens a new window when there is none or the latest closed before `at`. An
        upload older than the latest window by more than `window`, or handled after its window
        closed, runs alone."""
        pk = s.folder_pk(bucket, folder)
        for _ in range(_ATTEMPTS):
            known = self._get(pk, s.upload_sk(workflow_id))
            if known is not None:
                return str(known["batch_id"]) if known.get("batch_id") else None
            latest = self._get(pk, s.WINDOW_SK)
            opened = _time(latest, "opened_at")
            closes = _time(latest, "closes_at")
            if latest is None or opened is None or closes is None or at >= closes:
                if self._open(pk, bucket, folder, workflow_id, at=at, window=window):
                    return folder_batch_id(workflow_id)
                continue
            batch_id = str(latest["batch_id"])
            if at <= opened - window:
                if self._alone(pk, workflow_id, at):
                    return None
                continue
            joined = self._join(pk, batch_id, workflow_id, at)
            if joined is not None:
                return batch_id if joined else None
        raise RuntimeError(f"folder {folder!r}: the window of upload {workflow_id} kept moving; retry")

    def _upload_item(self, pk: str, workflow_id: str, batch_id: str | None, at: datetime) -> dict[str, Any]:
        now = self.clock()
        return {
            s.PK: pk,
            s.SK: s.upload_sk(workflow_id),
            s.TYPE: s.ITEM_FOLDER_UPLOAD,
            "workflow_id": workflow_id,
            "batch_id": batch_id,
            "uploaded_at": iso(at),
            "assigned_at": iso(now),
            s.TTL_ATTR: int((now + self.retention).timestamp()),
        }

    def _open(
        self,
        pk: str,
        bucket: str,
        folder: str,
        workflow_id: str,
        *,
        at: datetime,
        window: timedelta,
    ) -> bool:
        """Claim a new window for the folder, opened by this upload; False when another upload
        claimed one first (or this one was assigned meanwhile): read again."""
        batch_id = folder_batch_id(workflow_id)
        closes = at + window
        now = self.clock()
        expires = int((max(now, closes) + self.retention).timestamp())
        claim_condition = "attribute_not_exists(#pk) OR #closes <= :at"
        window_put = {
            "Put": {
                "TableName": self.table_name,
                "Item": to_item(
                    {
                        s.PK: pk,
                        s.SK: s.WINDOW_SK,
                        s.TYPE: s.ITEM_FOLDER_WINDOW,
                        "batch_id": batch_id,
                        "bucket": bucket,
                        "folder": folder,
                        "opened_at": iso(at),
                        "closes_at": iso(closes),
                        s.TTL_ATTR: expires,
                    }
                ),
                "ConditionExpression": claim_condition,
                "ExpressionAttributeNames": {"#pk": s.PK, "#closes": "closes_at"},
                "ExpressionAttributeValues": {":at": serialize(iso(at))},
            }
        }
        batch_put = put_if_absent(
            self.table_name,
            {
                s.PK: s.batch_pk(batch_id),
                s.SK: s.BATCH_SK,
                s.TYPE: s.ITEM_BATCH,
                "batch_id": batch_id,
                "kind": s.BATCH_KIND_FOLDER,
                "bucket": bucket,
                "folder": folder,
                "source_key": folder,
                "opened_at": iso(at),
                "window_closes_at": iso(closes),
                "assigned": 1,
                "updated_at": iso(now),
                s.ACTIVE_PK: s.OPEN_WINDOWS_PARTITION,
                s.ACTIVE_SK: f"{iso(closes)}#{batch_id}",
                s.TTL_ATTR: expires,
            },
        )
        upload_put = put_if_absent(self.table_name, self._upload_item(pk, workflow_id, batch_id, at))
        return self._try(window_put, upload_put, batch_put) is None

    def _join(self, pk: str, batch_id: str, workflow_id: str, at: datetime) -> bool | None:
        """Join the open window `batch_id`: True; False when its batch was closed already (the
        upload runs alone); None when the window moved or the upload was assigned meanwhile."""
        window_check = {
            "ConditionCheck": {
                "TableName": self.table_name,
                "Key": to_item({s.PK: pk, s.SK: s.WINDOW_SK}),
                "ConditionExpression": "#bid = :bid",
                "ExpressionAttributeNames": {"#bid": "batch_id"},
                "ExpressionAttributeValues": {":bid": serialize(batch_id)},
            }
        }
        upload_put = put_if_absent(self.table_name, self._upload_item(pk, workflow_id, batch_id, at))
        count = {
            "Update": {
                "TableName": self.table_name,
                "Key": to_item({s.PK: s.batch_pk(batch_id), s.SK: s.BATCH_SK}),
                "UpdateExpression": "SET #upd = :now ADD #assigned :one",
                "ConditionExpression": "attribute_exists(#pk) AND attribute_not_exists(#exp)",
                "ExpressionAttributeNames": {
                    "#pk": s.PK,
                    "#exp": "expected",
                    "#assigned": "assigned",
                    "#upd": "updated_at",
                },
                "ExpressionAttributeValues": {":one": serialize(1), ":now": serialize(iso(self.clock()))},
            }
        }
        failed = self._try(window_check, upload_put, count)
        if failed is None:
            return True
        if failed[2:3] == [True] and not any(failed[:2]):
            return False if self._alone(pk, workflow_id, at) else None
        return None

    def _alone(self, pk: str, workflow_id: str, at: datetime) -> bool:
        """Record that the upload runs alone; False when it was assigned meanwhile."""
        item = put_if_absent(self.table_name, self._upload_item(pk, workflow_id, None, at))
        return self._try(item) is None

    # -- closing windows (the reconciler) ----------------------------------------------------------

    def due(self, now: datetime, limit: int = 100) -> list[str]:
        """The folder batches whose window has closed by `now` and is not closed in the ledger yet,
        from the sparse `active` index (oldest first)."""
        request = {
            "TableName": self.table_name,
            "IndexName": s.ACTIVE_INDEX,
            "KeyConditionExpression": "#a = :a AND #s < :upper",
            "ExpressionAttributeNames": {"#a": s.ACTIVE_PK, "#s": s.ACTIVE_SK},
            "ExpressionAttributeValues": {
                ":a": serialize(s.OPEN_WINDOWS_PARTITION),
                ":upper": serialize(iso(now) + "~"),
            },
        }
        return [
            str(item[s.PK]).removeprefix("BATCH#") for item in query_items(self.client, request, limit=limit)
        ]

    def close(self, batch_id: str) -> bool:
        """Close the window of a folder batch: `expected` set to the uploads it took, and, when all
        their runs have ended, the batch ended and its `BATCH_ENDED` event inserted, in one
        transaction pinned on the counts read. False when it was closed already."""
        for _ in range(_ATTEMPTS):
            batch = self.batch(batch_id)
            if batch is None or not batch.window_open:
                return False
            now = self.clock()
            names = {"#exp": "expected", "#assigned": "assigned", "#ended": "ended", "#upd": "updated_at"}
            values: dict[str, Any] = {
                ":n": serialize(batch.assigned),
                ":e": serialize(batch.ended),
                ":zero": serialize(0),
                ":now": serialize(iso(now)),
            }
            sets = ["#exp = :n", "#upd = :now"]
            conditions = [
                "attribute_not_exists(#exp)",
                "#assigned = :n",
                "((attribute_not_exists(#ended) AND :e = :zero) OR #ended = :e)",
            ]
            items: list[dict[str, Any]] = []
            ending = self._ending_member(batch) if batch.ended >= batch.assigned else None
            if ending is not None:
                names.update({"#eat": "ended_at", "#eby": "ended_by"})
                values[":eby"] = serialize(ending.workflow_id)
                sets += ["#eat = :now", "#eby = :eby"]
                conditions.append("attribute_not_exists(#eby)")
                items.append(
                    outbox_put(
                        self.table_name,
                        ending.workflow_id,
                        BatchEndedPayload(batch_id),
                        batch_id,
                        now=now,
                        retention=self.retention,
                    )
                )
            update = {
                "Update": {
                    "TableName": self.table_name,
                    "Key": to_item({s.PK: s.batch_pk(batch_id), s.SK: s.BATCH_SK}),
                    "UpdateExpression": "SET " + ", ".join(sets) + f" REMOVE {s.ACTIVE_PK}, {s.ACTIVE_SK}",
                    "ConditionExpression": " AND ".join(conditions),
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values,
                }
            }
            if self._try(update, *items) is None:
                return True
        return False

    def _ending_member(self, batch: BatchView) -> BatchMember | None:
        """The member whose partition takes the batch's `BATCH_ENDED` (the one that ended last)."""
        members = [
            BatchMember.from_item(item)
            for item in query_items(self.client, batch_members_query(self.table_name, batch.batch_id))
        ]
        if not members:
            return None
        return max(members, key=lambda m: (m.ended_at or datetime.min.replace(tzinfo=UTC), m.workflow_id))

    # -- sending -----------------------------------------------------------------------------------

    def _try(self, *items: dict[str, Any]) -> list[bool] | None:
        """One transaction: None when it was written, else which items failed their condition.
        A cancellation by another transaction on the same items (files dropped together join one
        batch item) is tried again after a jittered pause."""
        try:
            transact(self.client, items, sleep=self.sleep, attempts=_CONFLICT_ATTEMPTS)
        except ClientError as exc:
            return cancelled_by_condition(exc)
        return None


def _time(item: dict[str, Any] | None, name: str) -> datetime | None:
    return parse_time(item.get(name)) if item else None
