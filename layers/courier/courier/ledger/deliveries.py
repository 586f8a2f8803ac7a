"""The delivery records the notify function keeps on outbox event items, and the Slack thread it
records on the run item. (Plain reads of a run's partition are `courier.ledger.views.RunViews`.)

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

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from courier.ledger import schema as s
from courier.ledger._codec import conditional_failure, from_item, iso, serialize, to_item
from courier.ledger.records import ChannelDelivery, DeliveryState, parse_time
from courier.ledger.views import RunViews

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

DELIVERY_ATTR = s.DELIVERY_ATTR
THREAD_TS_ATTR = "slack_thread_ts"
THREAD_CHANNEL_ATTR = "slack_thread_channel"

STATE_CLAIMED = DeliveryState.CLAIMED
STATE_SENT = DeliveryState.SENT
STATE_FAILED = DeliveryState.FAILED

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


class DeliveryLedger:
    """Notify's delivery bookkeeping on the ledger table: claims, sends and failures per event and
    channel, and the Slack thread of a run. The client is injected."""

    def __init__(
        self,
        table_name: str,
        client: DynamoDBClient,
        *,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.table_name = table_name
        self.client = client
        self.clock = clock
        self.views = RunViews(table_name, client)

    # -- delivery records ----------------------------------------------------------------------

    def delivery(self, workflow_id: str, event_sk: str) -> Mapping[str, ChannelDelivery] | None:
        """The delivery record of an event item per channel ({} when nothing was recorded); None
        when there is no such item."""
        event = self.views.event(workflow_id, event_sk)
        return None if event is None else event.delivery

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
        previous = (self.delivery(workflow_id, event_sk) or {}).get(channel)
        attempts = (previous.attempts if previous else 0) + 1
        record = {
            "state": STATE_CLAIMED.value,
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
                    ":failed": serialize(STATE_FAILED.value),
                    ":claimed": serialize(STATE_CLAIMED.value),
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
        record_now = current.get(channel)
        if record_now is not None and record_now.sent:
            return Claim(ClaimOutcome.ALREADY_SENT, channel, token)
        return Claim(ClaimOutcome.IN_PROGRESS, channel, token)

    def _update_own_claim(
        self, workflow_id: str, event_sk: str, channel: str, *, token: str, sets: dict[str, Any], remove: str
    ) -> bool:
        names = {"#d": DELIVERY_ATTR, "#c": channel, "#tok": "token", "#st": "state"}
        values: dict[str, Any] = {":tok": serialize(token), ":claimed": serialize(STATE_CLAIMED.value)}
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
        sets = {"state": STATE_SENT.value, "sent_at": iso(self.clock()), "ref": ref or "-"}
        return self._update_own_claim(
            workflow_id, event_sk, channel, token=token, sets=sets, remove="lease_until"
        )

    def release(self, workflow_id: str, event_sk: str, channel: str, *, token: str, error: str) -> bool:
        """Record a failed send, so that the next attempt may claim the channel at once."""
        sets = {
            "state": STATE_FAILED.value,
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
        return self._set_thread(s.run_pk(workflow_id), s.RUN_SK, channel, ts)

    def set_batch_thread(self, batch_id: str, channel: str, ts: str) -> tuple[str, str]:
        """Record the Slack thread of a batch once, as `set_thread` does for a run."""
        return self._set_thread(s.batch_pk(batch_id), s.BATCH_SK, channel, ts)

    def _set_thread(self, pk: str, sk: str, channel: str, ts: str) -> tuple[str, str]:
        try:
            resp = self.client.update_item(
                TableName=self.table_name,
                Key=to_item({s.PK: pk, s.SK: sk}),
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


# -- alert groups ------------------------------------------------------------------------------------

GATE_SK = "GATE"


@dataclass(frozen=True, slots=True)
class GateAnswer:
    """Whether an alert may go out now, and when the scope's previous alert went (None: first)."""

    passed: bool
    since: datetime | None = None


class AlertGates:
    """At most one alert per scope (a batch's early failures, a run's stuck tasks, a queue's
    blocked jobs) per period: a gate item per scope (`ALERTS#<scope>` / `GATE`, no `type`, so the
    stream filter never sees it). The event that opened the gate passes again on a retry."""

    def __init__(
        self,
        table_name: str,
        client: DynamoDBClient,
        *,
        period: timedelta,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.table_name = table_name
        self.client = client
        self.period = period
        self.clock = clock

    def _key(self, scope: str) -> dict[str, Any]:
        return to_item({s.PK: f"ALERTS#{scope}", s.SK: GATE_SK})

    def admit(self, scope: str, event_key: str) -> GateAnswer:
        for _ in range(3):
            now = self.clock()
            raw = self.client.get_item(
                TableName=self.table_name, Key=self._key(scope), ConsistentRead=True
            ).get("Item")
            item = from_item(raw) if raw else {}
            if item.get("event_key") == event_key:
                return GateAnswer(True, parse_time(item.get("prev_at")))
            open_until = parse_time(item.get("open_until"))
            if open_until is not None and open_until > now:
                return GateAnswer(False, parse_time(item.get("last_at")))
            values = {
                ":until": serialize(iso(now + self.period)),
                ":now": serialize(iso(now)),
                ":ev": serialize(event_key),
                ":ttl": serialize(int((now + self.period + timedelta(days=1)).timestamp())),
            }
            sets = "open_until = :until, last_at = :now, event_key = :ev, #ttl = :ttl"
            if item.get("last_at"):
                values[":prev"] = serialize(item["last_at"])
                sets += ", prev_at = :prev"
            names = {"#ttl": s.TTL_ATTR}
            if open_until is not None:
                values[":seen"] = serialize(item["open_until"])
                condition = "open_until = :seen"
            else:
                names["#pk"] = s.PK
                condition = "attribute_not_exists(#pk)"
            try:
                self.client.update_item(
                    TableName=self.table_name,
                    Key=self._key(scope),
                    UpdateExpression="SET " + sets,
                    ConditionExpression=condition,
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                )
                return GateAnswer(True, parse_time(item.get("last_at")))
            except ClientError as exc:
                if not conditional_failure(exc):
                    raise
        return GateAnswer(False)
