"""Reads over one run's partition (run item, task items, outbox events) and the delivery records
the notify function keeps on outbox event items.

Delivery record: the event item carries a map `delivery`, one entry per channel (`sns`, `slack`):

    delivery.<channel> = {state: claimed|sent|failed, token, attempts, claimed_at, lease_until,
                          sent_at, ref, last_error}

Sending on a channel is `claim -> send -> mark_sent` (or `release` when the send failed):

* `claim` is a conditional update that succeeds only when the channel has no record, its last
  attempt failed, or an earlier claim's lease has run out. A channel already `sent` is never
  claimed again, so a redelivered stream record or a retried invocation sends nothing twice.
* The lease ends when the claiming invocation must have ended (its deadline), so a claim left
  behind by a crashed or timed-out invocation is taken over by the retry that follows it.
* A crash after the message left but before `mark_sent` was written leaves a `claimed` record;
  the retry takes it over once the lease has run out and sends again. That window (one network
  call to DynamoDB) is the only way a channel can get a duplicate: at worst a rare duplicate,
  never a lost message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from courier.ledger import schema as s
from courier.ledger._codec import conditional_failure, from_item, iso, query_items, serialize, to_item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

DELIVERY_ATTR = "delivery"
THREAD_TS_ATTR = "slack_thread_ts"
THREAD_CHANNEL_ATTR = "slack_thread_channel"

STATE_CLAIMED = "claimed"
STATE_SENT = "sent"
STATE_FAILED = "failed"

_MAX_ERROR_CHARS = 500


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ClaimOutcome(StrEnum):
    CLAIMED = "claimed"
    """This caller holds the channel and must send, then `mark_sent` or `release`."""
    ALREADY_SENT = "already_sent"
    """An earlier attempt delivered on this channel: send nothing."""
    IN_PROGRESS = "in_progress"
    """Another attempt holds a live claim: try again later."""
    MISSING = "missing"
    """The event item does not exist (expired or never written): nothing to deliver."""


@dataclass(frozen=True, slots=True)
class Claim:
    outcome: ClaimOutcome
    channel: str
    token: str
    attempts: int = 0


class LedgerReader:
    """Reads for the notify function and its delivery bookkeeping. The client is injected."""

    def __init__(
        self,
        table_name: str,
        client: DynamoDBClient,
        *,
        clock: Callable[[], datetime] = _utcnow,
        page_size: int = 500,
    ) -> None:
        self.table_name = table_name
        self.client = client
        self.clock = clock
        self.page_size = page_size

    # -- reads ---------------------------------------------------------------------------------

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        resp = self.client.get_item(
            TableName=self.table_name, Key=to_item({s.PK: pk, s.SK: sk}), ConsistentRead=True
        )
        item = resp.get("Item")
        return from_item(item) if item else None

    def get_run(self, workflow_id: str) -> dict[str, Any] | None:
        return self._get(s.run_pk(workflow_id), s.RUN_SK)

    def get_event(self, workflow_id: str, event_sk: str) -> dict[str, Any] | None:
        return self._get(s.run_pk(workflow_id), event_sk)

    def get_task(self, workflow_id: str, job_id: str) -> dict[str, Any] | None:
        return self._get(s.run_pk(workflow_id), s.task_sk(job_id))

    def _iter_prefix(
        self, workflow_id: str, prefix: str, attributes: Sequence[str] | None
    ) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
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
            kwargs["ProjectionExpression"] = ", ".join(names)
            kwargs["ExpressionAttributeNames"].update(names)
        yield from query_items(self.client, kwargs)

    def iter_tasks(
        self, workflow_id: str, attributes: Sequence[str] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every task item of a run, one page in memory at a time (`attributes`: a projection)."""
        return self._iter_prefix(workflow_id, s.TASK_SK_PREFIX, attributes)

    def iter_events(self, workflow_id: str) -> Iterator[dict[str, Any]]:
        return self._iter_prefix(workflow_id, s.EVENT_SK_PREFIX, None)

    # -- delivery records ----------------------------------------------------------------------

    def delivery(self, workflow_id: str, event_sk: str) -> dict[str, dict[str, Any]] | None:
        """The delivery map of an event item ({} when nothing was recorded); None if no item."""
        item = self.get_event(workflow_id, event_sk)
        if item is None:
            return None
        record = item.get(DELIVERY_ATTR)
        return dict(record) if isinstance(record, dict) else {}

    def claim(
        self, workflow_id: str, event_sk: str, channel: str, *, token: str, lease_until: datetime
    ) -> Claim:
        """Take the right to send `event_sk` on `channel` (see the module docstring)."""
        key = to_item({s.PK: s.run_pk(workflow_id), s.SK: event_sk})
        now = self.clock()
        try:  # the map must exist before one of its entries can be set
            self.client.update_item(
                TableName=self.table_name,
                Key=key,
                UpdateExpression="SET #d = if_not_exists(#d, :empty)",
                ConditionExpression="attribute_exists(#pk)",
                ExpressionAttributeNames={"#d": DELIVERY_ATTR, "#pk": s.PK},
                ExpressionAttributeValues={":empty": {"M": {}}},
            )
        except ClientError as exc:
            if conditional_failure(exc):
                return Claim(ClaimOutcome.MISSING, channel, token)
            raise
        previous = (self.delivery(workflow_id, event_sk) or {}).get(channel) or {}
        attempts = int(previous.get("attempts", 0)) + 1
        record = {
            "state": STATE_CLAIMED,
            "token": token,
            "attempts": attempts,
            "claimed_at": iso(now),
            "lease_until": iso(lease_until),
        }
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=key,
                UpdateExpression="SET #d.#c = :rec",
                ConditionExpression=(
                    "attribute_exists(#pk) AND (attribute_not_exists(#d.#c) OR #d.#c.#st = :failed"
                    " OR (#d.#c.#st = :claimed AND #d.#c.#lease < :now))"
                ),
                ExpressionAttributeNames={
                    "#d": DELIVERY_ATTR,
                    "#c": channel,
                    "#pk": s.PK,
                    "#st": "state",
                    "#lease": "lease_until",
                },
                ExpressionAttributeValues={
                    ":rec": serialize(record),
                    ":failed": serialize(STATE_FAILED),
                    ":claimed": serialize(STATE_CLAIMED),
                    ":now": serialize(iso(now)),
                },
            )
            return Claim(ClaimOutcome.CLAIMED, channel, token, attempts)
        except ClientError as exc:
            if not conditional_failure(exc):
                raise
        current = self.delivery(workflow_id, event_sk)
        if current is None:
            return Claim(ClaimOutcome.MISSING, channel, token)
        state = (current.get(channel) or {}).get("state")
        if state == STATE_SENT:
            return Claim(ClaimOutcome.ALREADY_SENT, channel, token)
        return Claim(ClaimOutcome.IN_PROGRESS, channel, token)

    def _update_own_claim(
        self, workflow_id: str, event_sk: str, channel: str, *, token: str, sets: dict[str, Any], remove: str
    ) -> bool:
        names = {"#d": DELIVERY_ATTR, "#c": channel, "#tok": "token", "#st": "state"}
        values: dict[str, Any] = {":tok": serialize(token), ":claimed": serialize(STATE_CLAIMED)}
        parts = []
        for i, (field, value) in enumerate(sets.items()):
            names[f"#f{i}"] = field
            values[f":v{i}"] = serialize(value)
            parts.append(f"#d.#c.#f{i} = :v{i}")
        expression = "SET " + ", ".join(parts)
        if remove:
            names["#rm"] = remove
            expression += " REMOVE #d.#c.#rm"
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=to_item({s.PK: s.run_pk(workflow_id), s.SK: event_sk}),
                UpdateExpression=expression,
                ConditionExpression="#d.#c.#tok = :tok AND #d.#c.#st = :claimed",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
            return True
        except ClientError as exc:
            if conditional_failure(exc):
                return False
            raise

    def mark_sent(self, workflow_id: str, event_sk: str, channel: str, *, token: str, ref: str = "") -> bool:
        """Record a successful send. False when the claim was no longer ours (it had expired and
        another attempt took it over)."""
        sets = {"state": STATE_SENT, "sent_at": iso(self.clock()), "ref": ref or "-"}
        return self._update_own_claim(
            workflow_id, event_sk, channel, token=token, sets=sets, remove="lease_until"
        )

    def release(self, workflow_id: str, event_sk: str, channel: str, *, token: str, error: str) -> bool:
        """Record a failed send, so that the next attempt may claim the channel at once."""
        sets = {
            "state": STATE_FAILED,
            "failed_at": iso(self.clock()),
            "last_error": (error or "error")[:_MAX_ERROR_CHARS],
        }
        return self._update_own_claim(
            workflow_id, event_sk, channel, token=token, sets=sets, remove="lease_until"
        )

    # -- Slack thread of a run -----------------------------------------------------------------

    def set_thread(self, workflow_id: str, channel: str, ts: str) -> tuple[str, str]:
        """Record the Slack thread of a run once (`if_not_exists`); return the thread that is
        recorded (ours, or one an earlier message recorded first)."""
        try:
            resp = self.client.update_item(
                TableName=self.table_name,
                Key=to_item({s.PK: s.run_pk(workflow_id), s.SK: s.RUN_SK}),
                UpdateExpression="SET #ts = if_not_exists(#ts, :ts), #ch = if_not_exists(#ch, :ch)",
                ConditionExpression="attribute_exists(#pk)",
                ExpressionAttributeNames={"#ts": THREAD_TS_ATTR, "#ch": THREAD_CHANNEL_ATTR, "#pk": s.PK},
                ExpressionAttributeValues={":ts": serialize(ts), ":ch": serialize(channel)},
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if conditional_failure(exc):
                return channel, ts
            raise
        item = from_item(resp.get("Attributes", {}))
        return str(item.get(THREAD_CHANNEL_ATTR, channel)), str(item.get(THREAD_TS_ATTR, ts))
