"""Run items and their outbox events. Every write is conditional or idempotent, so redelivered
events and retried invocations never move a run backwards nor notify twice."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from courier.ledger import schema as s
from courier.ledger._codec import (
    cancelled_by_condition,
    conditional_failure,
    from_item,
    iso,
    query_items,
    serialize,
    to_item,
    transact,
)
from courier.ledger.records import (
    BatchOpening,
    BatchView,
    EndedPayload,
    Payload,
    RejectedPayload,
    RunView,
    SubmittedPayload,
)
from courier.ledger.transactions import (
    batch_end_items,
    batch_member_end,
    batch_open_update,
    batch_transition_items,
    outbox_put,
    put_if_absent,
)
from courier.models import RunRecord, RunStatus

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def utcnow() -> datetime:
    return datetime.now(UTC)


#: A run ending while others of its batch end too retries on the batch's newer count.
_BATCH_CONFLICT_ATTEMPTS = 8
#: Tries of one transaction cancelled by another one on the same items.
_CONFLICT_ATTEMPTS = 8


class BatchConflict(RuntimeError):
    """The batch's count kept moving under a run's terminal write; the caller retries later."""

    def __init__(self, batch_id: str, workflow_id: str) -> None:
        self.batch_id = batch_id
        self.workflow_id = workflow_id
        super().__init__(f"batch {batch_id}: run {workflow_id} kept meeting a newer count; retry")


def _only_batch_moved(failed: list[bool], *, batch_count_at: int) -> bool:
    """A cancelled transaction whose only failed condition is the batch count's (another run of
    the batch ended first): read the batch again and retry. The run's own condition failing
    means it was recorded already."""
    return (
        len(failed) > batch_count_at
        and failed[batch_count_at]
        and not any(f for i, f in enumerate(failed) if i != batch_count_at)
    )


@dataclass(frozen=True, slots=True)
class ActiveRun:
    workflow_id: str
    status: str
    workflow_name: str | None
    submitted_at: str | None


class RunLedger:
    """Adapter over the ledger table for run items and outbox events."""

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

    # -- reads ---------------------------------------------------------------------------------

    def get_run(self, workflow_id: str) -> dict[str, Any] | None:
        resp = self.client.get_item(
            TableName=self.table_name,
            Key=to_item({s.PK: s.run_pk(workflow_id), s.SK: s.RUN_SK}),
            ConsistentRead=True,
        )
        item = resp.get("Item")
        return from_item(item) if item else None

    def get_event(self, workflow_id: str, event_sk: str) -> dict[str, Any] | None:
        resp = self.client.get_item(
            TableName=self.table_name,
            Key=to_item({s.PK: s.run_pk(workflow_id), s.SK: event_sk}),
            ConsistentRead=True,
        )
        item = resp.get("Item")
        return from_item(item) if item else None

    def list_active(self, page_size: int = 500) -> Iterator[ActiveRun]:
        """Runs not finished yet, oldest first, from the sparse `active` index."""
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": s.ACTIVE_INDEX,
            "KeyConditionExpression": "#a = :a",
            "ExpressionAttributeNames": {"#a": s.ACTIVE_PK},
            "ExpressionAttributeValues": {":a": serialize(s.ACTIVE_PARTITION)},
            "Limit": page_size,
        }
        for item in query_items(self.client, kwargs):
            yield ActiveRun(
                workflow_id=item["workflow_id"],
                status=item.get("status", RunStatus.SUBMITTED),
                workflow_name=item.get("workflow_name"),
                submitted_at=item.get("submitted_at"),
            )

    # -- writes --------------------------------------------------------------------------------

    def _run_item(self, run: RunRecord, status: RunStatus, now: datetime) -> dict[str, Any]:
        item: dict[str, Any] = {
            s.PK: s.run_pk(run.workflow_id),
            s.SK: s.RUN_SK,
            s.TYPE: s.ITEM_RUN,
            "workflow_id": run.workflow_id,
            "workflow_name": run.workflow_name,
            "status": status.value,
            "status_rank": status.rank,
            "origin": "dropped",
            "source_bucket": run.source_bucket,
            "inputs_key": run.inputs_key,
            "run_folder": run.run_folder,
            "requester": run.requester,
            "labels": dict(run.labels) or None,
            "routing": dict(run.routing) or None,
            "main_wdl": run.main_wdl,
            "receipt_key": run.receipt_key,
            "batch_id": run.batch_id,
            "sample": run.sample,
            "submitted_at": iso(now),
            "updated_at": iso(now),
            **{key: value for key, value in run.pipeline.items() if value},
        }
        if status.terminal:
            item["ended_at"] = iso(now)
            item[s.TTL_ATTR] = int((now + self.retention).timestamp())
        else:
            item[s.ACTIVE_PK] = s.ACTIVE_PARTITION
            item[s.ACTIVE_SK] = f"{iso(now)}#{run.workflow_id}"
        return item

    def _event(
        self, workflow_id: str, payload: Payload, now: datetime, discriminator: str = ""
    ) -> dict[str, Any]:
        return outbox_put(
            self.table_name, workflow_id, payload, discriminator, now=now, retention=self.retention
        )

    def _transact(self, *items: dict[str, Any]) -> None:
        """One transaction; a cancellation because another transaction held its items (two runs
        of a batch ending together) is retried with jittered backoff, a condition failure raised."""
        transact(self.client, items, sleep=self.sleep, attempts=_CONFLICT_ATTEMPTS)

    def record_submitted(self, run: RunRecord) -> bool:
        """Record a run Cromwell accepted, with its SUBMITTED outbox event. Idempotent.

        Returns False when the run was recorded already. When the monitor adopted the run first
        (its Batch jobs started before this write, e.g. after a crash between Cromwell's 201 and
        here), the source fields are filled in without touching its status or counts.
        """
        now = self.clock()
        joining = batch_transition_items(
            self.table_name, run, RunStatus.SUBMITTED, None, now=now, retention=self.retention
        )
        try:
            self._transact(
                put_if_absent(self.table_name, self._run_item(run, RunStatus.SUBMITTED, now)),
                self._event(run.workflow_id, SubmittedPayload(), now),
                *joining,
            )
            return True
        except ClientError as exc:
            cancelled_by_condition(exc)
        self._fill_source(run, now)
        if run.batch_id:
            self._join_late(run)
        return False

    def _join_late(self, run: RunRecord) -> None:
        """A run recorded after the monitor wrote it first (adopted, or even ended) joins its
        batch now, with its status as stored: an end the monitor wrote before the run's batch
        was known is counted here. A redelivery finds the member written already: nothing moves."""
        for _ in range(_BATCH_CONFLICT_ATTEMPTS):
            now = self.clock()
            stored = self.get_run(run.workflow_id)
            status = RunView.from_item(stored, run.workflow_id).status if stored else None
            status = status if status is not None and status.terminal else RunStatus.SUBMITTED
            batch = self.batch(run.batch_id) if run.batch_id and status.terminal else None
            items = batch_transition_items(
                self.table_name, run, status, batch, now=now, retention=self.retention
            )
            try:
                self._transact(*items)
                return
            except ClientError as exc:
                failed = cancelled_by_condition(exc)
                if failed[0]:  # the member is there: the run was counted already
                    return
        raise BatchConflict(run.batch_id or "", run.workflow_id)

    def _fill_source(self, run: RunRecord, now: datetime) -> None:
        fields = {
            "workflow_name": run.workflow_name,
            "source_bucket": run.source_bucket,
            "inputs_key": run.inputs_key,
            "run_folder": run.run_folder,
            "requester": run.requester,
            "labels": dict(run.labels) or None,
            "routing": dict(run.routing) or None,
            "main_wdl": run.main_wdl,
            "receipt_key": run.receipt_key,
            "batch_id": run.batch_id,
            "sample": run.sample,
            "submitted_at": iso(now),
            **{key: value for key, value in run.pipeline.items() if value},
        }
        present = {k: v for k, v in fields.items() if v is not None}
        names = {f"#f{i}": k for i, k in enumerate(present)}
        values = {f":v{i}": serialize(v) for i, v in enumerate(present.values())}
        sets = ", ".join(f"#f{i} = if_not_exists(#f{i}, :v{i})" for i in range(len(present)))
        names["#o"] = "origin"
        values[":o"] = serialize("dropped")
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=to_item({s.PK: s.run_pk(run.workflow_id), s.SK: s.RUN_SK}),
                UpdateExpression=f"SET {sets}, #o = :o",
                ConditionExpression="attribute_exists(#pk)",
                ExpressionAttributeNames={**names, "#pk": s.PK},
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if not conditional_failure(exc):
                raise

    def record_rejected(self, run: RunRecord) -> bool:
        """Record a refused run (status Rejected, its reasons) and its REJECTED outbox event."""
        for _ in range(_BATCH_CONFLICT_ATTEMPTS):
            now = self.clock()
            item = self._run_item(run, RunStatus.REJECTED, now)
            item["reasons"] = list(run.reasons)
            event = self._event(run.workflow_id, RejectedPayload(tuple(run.reasons)), now)
            batch = self.batch(run.batch_id) if run.batch_id else None
            extra = batch_transition_items(
                self.table_name, run, RunStatus.REJECTED, batch, now=now, retention=self.retention
            )
            try:
                self._transact(put_if_absent(self.table_name, item), event, *extra)
                return True
            except ClientError as exc:
                failed = cancelled_by_condition(exc)
                if not _only_batch_moved(failed, batch_count_at=3):
                    return False
        raise BatchConflict(run.batch_id or "", run.workflow_id)

    def advance_status(self, workflow_id: str, status: RunStatus, at: datetime | None = None) -> bool:
        """Move a run to a later non-terminal status (Running, Aborting). Never backwards."""
        if status.terminal:
            raise ValueError("use finish() for terminal statuses")
        now = at or self.clock()
        extra = ", started_at = if_not_exists(started_at, :now)" if status is RunStatus.RUNNING else ""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=to_item({s.PK: s.run_pk(workflow_id), s.SK: s.RUN_SK}),
                UpdateExpression=f"SET #st = :st, status_rank = :r, updated_at = :now{extra}",
                ConditionExpression="attribute_exists(#pk) AND status_rank < :r",
                ExpressionAttributeNames={"#st": "status", "#pk": s.PK},
                ExpressionAttributeValues={
                    ":st": serialize(status.value),
                    ":r": serialize(status.rank),
                    ":now": serialize(iso(now)),
                },
            )
            return True
        except ClientError as exc:
            if conditional_failure(exc):
                return False
            raise

    # -- when the reconciler asks Cromwell about a run (monitor.asking) -------------------------

    def request_end_check(self, workflow_id: str, due: datetime) -> bool:
        """Ask for one status check of the run at `due`: `end_check_at`, only ever moved later
        (the last task end wins), only on a run that has not ended. False when refused."""
        return self._set_if_going(
            workflow_id,
            "SET end_check_at = :due",
            {":due": iso(due)},
            extra_condition="(attribute_not_exists(end_check_at) OR end_check_at < :due)",
        )

    def note_asked(
        self, workflow_id: str, at: datetime, *, silent_asks: int, end_check_at: datetime | None
    ) -> bool:
        """Record that Cromwell was asked about the run at `at` and it is still going: the count
        of asks during the current silence, and the next end check, if any."""
        values: dict[str, Any] = {":at": iso(at), ":n": silent_asks}
        if end_check_at is None:
            expression = "SET last_asked_at = :at, silent_asks = :n REMOVE end_check_at"
        else:
            expression = "SET last_asked_at = :at, silent_asks = :n, end_check_at = :due"
            values[":due"] = iso(end_check_at)
        return self._set_if_going(workflow_id, expression, values)

    def _set_if_going(
        self, workflow_id: str, expression: str, values: Mapping[str, Any], extra_condition: str = ""
    ) -> bool:
        condition = "attribute_exists(#pk) AND status_rank < :ended"
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=to_item({s.PK: s.run_pk(workflow_id), s.SK: s.RUN_SK}),
                UpdateExpression=expression,
                ConditionExpression=f"{condition} AND {extra_condition}" if extra_condition else condition,
                ExpressionAttributeNames={"#pk": s.PK},
                ExpressionAttributeValues={
                    ":ended": serialize(RunStatus.SUCCEEDED.rank),
                    **{k: serialize(v) for k, v in values.items()},
                },
            )
            return True
        except ClientError as exc:
            if conditional_failure(exc):
                return False
            raise

    def finish(
        self,
        workflow_id: str,
        status: RunStatus,
        *,
        report: Mapping[str, Any] | None = None,
        ended_at: datetime | None = None,
        source: str = "",
    ) -> bool:
        """Write the terminal status exactly once, with the report data, and its ENDED event.

        Any of the three end paths (callback, reconciler, last Batch event) may call this; only
        the first succeeds, the others get False.
        """
        if not status.terminal:
            raise ValueError(f"{status} is not terminal")
        now = self.clock()
        end = ended_at or now
        values: dict[str, Any] = {
            ":st": serialize(status.value),
            ":r": serialize(status.rank),
            ":now": serialize(iso(now)),
            ":end": serialize(iso(end)),
            ":ttl": serialize(int((now + self.retention).timestamp())),
            ":wf": serialize(workflow_id),
            ":run": serialize(s.ITEM_RUN),
            ":by": serialize(source or "unknown"),
        }
        sets = [
            "#st = :st",
            "status_rank = :r",
            "updated_at = :now",
            "ended_at = :end",
            f"{s.TTL_ATTR} = :ttl",
            "workflow_id = :wf",
            "#type = :run",
            "ended_by = :by",
        ]
        names = {"#st": "status", "#type": s.TYPE}
        for i, (key, value) in enumerate((report or {}).items()):
            names[f"#rep{i}"] = key
            values[f":rep{i}"] = serialize(value)
            sets.append(f"#rep{i} = :rep{i}")
        for _ in range(_BATCH_CONFLICT_ATTEMPTS):
            stored = self.get_run(workflow_id)
            view = RunView.from_item(stored, workflow_id) if stored else None
            if view is not None and view.ended:
                return False
            batch_id = view.batch_id if view else None
            batch = self.batch(batch_id) if batch_id else None
            payload = EndedPayload(
                status=status,
                source=source,
                batch_id=batch_id,
                per_run=view.tells_own_end(batch) if view else True,
            )
            # the run's batch as read: a batch_id written meanwhile (submit's late record) makes
            # this write fail and read again, so that the end is counted by exactly one of the two
            pinned = "#bid = :bid" if batch_id else "attribute_not_exists(#bid)"
            condition = f"(attribute_not_exists(status_rank) OR status_rank < :r) AND {pinned}"
            run_update = {
                "Update": {
                    "TableName": self.table_name,
                    "Key": to_item({s.PK: s.run_pk(workflow_id), s.SK: s.RUN_SK}),
                    "UpdateExpression": "SET " + ", ".join(sets) + f" REMOVE {s.ACTIVE_PK}, {s.ACTIVE_SK}",
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": {**names, "#bid": "batch_id"},
                    "ExpressionAttributeValues": {
                        **values,
                        **({":bid": serialize(batch_id)} if batch_id else {}),
                    },
                }
            }
            extra = self._batch_end(view, status, batch, now) if view is not None and batch_id else []
            try:
                self._transact(run_update, self._event(workflow_id, payload, now), *extra)
                return True
            except ClientError as exc:
                cancelled_by_condition(exc)  # read again: ended already, or the batch moved
        raise BatchConflict("", workflow_id)

    def _batch_end(
        self, run: RunView, status: RunStatus, batch: BatchView | None, now: datetime
    ) -> list[dict[str, Any]]:
        """The batch's share of a run's end (`batch` as read for it): the member's final status
        and the end counted (the member is written now, and the run counted, when submit has not
        recorded it yet)."""
        batch_id = run.batch_id or ""
        member = self.client.get_item(
            TableName=self.table_name,
            Key=to_item({s.PK: s.batch_pk(batch_id), s.SK: s.member_sk(run.workflow_id)}),
            ConsistentRead=True,
        ).get("Item")
        if member is None:
            return batch_transition_items(
                self.table_name, run, status, batch, now=now, retention=self.retention
            )
        return [
            batch_member_end(self.table_name, batch_id, run.workflow_id, status, now=now),
            *batch_end_items(
                self.table_name, batch_id, run.workflow_id, status, batch, now=now, retention=self.retention
            ),
        ]

    # -- batches ----------------------------------------------------------------------------------

    def batch(self, batch_id: str) -> BatchView | None:
        resp = self.client.get_item(
            TableName=self.table_name,
            Key=to_item({s.PK: s.batch_pk(batch_id), s.SK: s.BATCH_SK}),
            ConsistentRead=True,
        )
        item = resp.get("Item")
        return BatchView.from_item(from_item(item), batch_id) if item else None

    def open_batch(self, batch_id: str, opening: BatchOpening) -> None:
        """Open a batch before its first run is recorded (idempotent: a field set is kept)."""
        self.client.update_item(
            **batch_open_update(
                self.table_name, batch_id, opening, now=self.clock(), retention=self.retention
            )
        )

    def put_event(self, workflow_id: str, payload: Payload, discriminator: str = "") -> bool:
        """Add an outbox event once (alerts: early failure, stuck, queue blocked)."""
        request = self._event(workflow_id, payload, self.clock(), discriminator)["Put"]
        try:
            self.client.put_item(**request)
            return True
        except ClientError as exc:
            if conditional_failure(exc):
                return False
            raise
