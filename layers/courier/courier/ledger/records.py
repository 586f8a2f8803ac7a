"""Typed records of the run ledger: the one read model of a run, its tasks and its outbox events.

The ledger stores plain DynamoDB items (`docs/ledger.md`); this module is the only place that
turns them into Python values and back. Monitor writes what these records describe, and notify,
the `courier` command and the batch digest read them, so nobody else coerces raw items or
guesses between spellings of a key.

Parsing is lenient on purpose: an item written by an older version, or a field a person edited by
hand, becomes None rather than an exception, because a message about a run must still be sent.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar, Final, Self

from courier.conventions import (
    LABEL_PROJECT,
    LABEL_SLACK_CHANNEL,
    NOTIFY_DIGEST,
    NOTIFY_MODES,
)
from courier.ledger import schema as s
from courier.ledger._codec import from_item as decode_item
from courier.ledger._codec import iso
from courier.models import CallSource, NotificationKind, RunStatus, TaskStatus

__all__ = [
    "ChannelDelivery",
    "DeliveryState",
    "EarlyFailurePayload",
    "EndedPayload",
    "FailureEntry",
    "OutboxEvent",
    "Payload",
    "QueueBlockedPayload",
    "RejectedPayload",
    "RunView",
    "StuckPayload",
    "SubmittedPayload",
    "TaskSummary",
    "TaskView",
    "decode_image",
    "parse_time",
]

NOT_SCATTERED: Final = -1


# -- value coercion: the only copy ------------------------------------------------------------------


def parse_time(value: Any) -> datetime | None:
    """A ledger timestamp (ISO 8601, `Z` or an offset; naive is taken as UTC), else None."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value:
        return None
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def as_float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def as_str(value: Any) -> str | None:
    if isinstance(value, str):  # the common case first: this runs for every field of every task
        return value.strip() or None
    if value is None or isinstance(value, Mapping | list | tuple | set):
        return None
    text = str(value).strip()
    return text or None


def as_map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def json_map(value: Any) -> Mapping[str, Any]:
    """A JSON object kept as text (so that nulls and numbers come back as they were), else {}."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return as_map(value)


def as_str_map(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in as_map(value).items() if v is not None}


def _shard(value: Any) -> int:
    number = as_int(value)
    return NOT_SCATTERED if number is None else number


_RUN_STATUSES: Final[Mapping[str, RunStatus]] = {member.value: member for member in RunStatus}
_TASK_STATUSES: Final[Mapping[str, TaskStatus]] = {member.value: member for member in TaskStatus}
_CALL_SOURCES: Final[Mapping[str, CallSource]] = {member.value: member for member in CallSource}


def _run_status(value: Any) -> RunStatus | None:
    text = as_str(value)
    return None if text is None else _RUN_STATUSES.get(text)


def _task_status(value: Any) -> TaskStatus | None:
    text = as_str(value)
    return None if text is None else _TASK_STATUSES.get(text)


def _reasons(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence):
        value = [value]
    return tuple(text for text in (as_str(v) for v in value) if text)


def _drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


# -- task ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TaskSummary:
    """A task as the run item's `first_failure` / `last_change` and alert payloads carry it."""

    job_id: str | None
    call: str | None
    shard: int = NOT_SCATTERED
    attempt: int | None = None
    status: TaskStatus | None = None
    status_reason: str | None = None
    exit_code: int | None = None
    queue: str | None = None
    log_group: str | None = None
    log_stream: str | None = None
    at: datetime | None = None

    @classmethod
    def from_map(cls, raw: Any) -> Self | None:
        data = as_map(raw)
        if not data:
            return None
        return cls(
            job_id=as_str(data.get("job_id")),
            call=as_str(data.get("call")),
            shard=_shard(data.get("shard")),
            attempt=as_int(data.get("attempt")),
            status=_task_status(data.get("status")),
            status_reason=as_str(data.get("status_reason")),
            exit_code=as_int(data.get("exit_code")),
            queue=as_str(data.get("queue")),
            log_group=as_str(data.get("log_group")),
            log_stream=as_str(data.get("log_stream")),
            at=parse_time(data.get("at")),
        )

    def to_map(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "call": self.call,
            "shard": self.shard,
            "attempt": self.attempt,
            "status": self.status.value if self.status else None,
            "status_reason": self.status_reason,
            "exit_code": self.exit_code,
            "queue": self.queue,
            "log_group": self.log_group,
            "log_stream": self.log_stream,
            "at": _iso(self.at),
        }


@dataclass(frozen=True, slots=True)
class TaskView:
    """One task item: a Batch job of a run (`TASK#<jobId>` in the run's partition)."""

    job_id: str
    call: str | None = None
    shard: int = NOT_SCATTERED
    attempt: int | None = None
    job_name: str | None = None
    workflow_id: str | None = None
    root_workflow_id: str | None = None
    status: TaskStatus | None = None
    order: int | None = None
    batch_attempts: int = 0
    status_reason: str | None = None
    exit_code: int | None = None
    created_at: datetime | None = None
    runnable_at: datetime | None = None
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    updated_at: datetime | None = None
    vcpus: float | None = None
    memory_mib: float | None = None
    queue: str | None = None
    log_group: str | None = None
    log_stream: str | None = None
    call_source: CallSource | None = None
    stuck_alerted: datetime | None = None

    #: The attributes a projection must ask for to build a complete view.
    ATTRIBUTES: ClassVar[tuple[str, ...]] = (
        "job_id",
        "job_name",
        "call",
        "shard",
        "attempt",
        "workflow_id",
        "root_workflow_id",
        "status",
        "order",
        "batch_attempts",
        "status_reason",
        "exit_code",
        "created_at",
        "runnable_at",
        "started_at",
        "stopped_at",
        "updated_at",
        "vcpus",
        "memory_mib",
        "queue",
        "log_group",
        "log_stream",
        "call_source",
        "stuck_alerted",
    )

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Self:
        job_id = as_str(item.get("job_id"))
        if job_id is None:
            sk = as_str(item.get(s.SK)) or ""
            job_id = sk.removeprefix(s.TASK_SK_PREFIX) if sk.startswith(s.TASK_SK_PREFIX) else ""
        source = as_str(item.get("call_source"))
        attempt = as_int(item.get("attempt"))
        return cls(
            job_id=job_id,
            call=as_str(item.get("call")),
            shard=_shard(item.get("shard")),
            attempt=attempt if attempt is not None and attempt > 0 else None,
            job_name=as_str(item.get("job_name")),
            workflow_id=as_str(item.get("workflow_id")),
            root_workflow_id=as_str(item.get("root_workflow_id")),
            status=_task_status(item.get("status")),
            order=as_int(item.get("order")),
            batch_attempts=as_int(item.get("batch_attempts")) or 0,
            status_reason=as_str(item.get("status_reason")),
            exit_code=as_int(item.get("exit_code")),
            created_at=parse_time(item.get("created_at")),
            runnable_at=parse_time(item.get("runnable_at")),
            started_at=parse_time(item.get("started_at")),
            stopped_at=parse_time(item.get("stopped_at")),
            updated_at=parse_time(item.get("updated_at")),
            vcpus=as_float(item.get("vcpus")),
            memory_mib=as_float(item.get("memory_mib")),
            queue=as_str(item.get("queue")),
            log_group=as_str(item.get("log_group")),
            log_stream=as_str(item.get("log_stream")),
            call_source=_CALL_SOURCES.get(source) if source else None,
            stuck_alerted=parse_time(item.get("stuck_alerted")),
        )

    @property
    def from_job_name(self) -> bool:
        """The call is only the Batch job name (shard and attempt not known yet)."""
        return self.call_source is CallSource.JOB_NAME

    @property
    def label(self) -> str:
        """`wf.task`, `wf.task[3]`, `wf.task[3] attempt 2`: how people see a task."""
        text = self.call or self.job_name or self.job_id
        if self.shard >= 0:
            text += f"[{self.shard}]"
        if self.attempt is not None and self.attempt > 1:
            text += f" attempt {self.attempt}"
        return text

    @property
    def queued_for(self) -> timedelta | None:
        """Time from the job's creation to its start (queue wait)."""
        if self.created_at is None or self.started_at is None:
            return None
        return max(self.started_at - self.created_at, timedelta(0))

    @property
    def ran_for(self) -> timedelta | None:
        if self.started_at is None or self.stopped_at is None:
            return None
        return max(self.stopped_at - self.started_at, timedelta(0))

    def summary(self) -> TaskSummary:
        return TaskSummary(
            job_id=self.job_id,
            call=self.call,
            shard=self.shard,
            attempt=self.attempt,
            status=self.status,
            status_reason=self.status_reason,
            exit_code=self.exit_code,
            queue=self.queue,
            log_group=self.log_group,
            log_stream=self.log_stream,
            at=self.updated_at,
        )


# -- Cromwell's metadata of the failed calls, as the run item keeps it ----------------------------


@dataclass(frozen=True, slots=True)
class FailureEntry:
    """One failed call from Cromwell's metadata, bounded, on the run item's `failures`."""

    call: str | None
    workflow_id: str | None = None
    shard: int = NOT_SCATTERED
    attempt: int | None = None
    job_id: str | None = None
    return_code: int | None = None
    status: str | None = None
    message: str | None = None
    stderr: str | None = None
    log_group: str | None = None
    log_stream: str | None = None

    @classmethod
    def from_map(cls, raw: Any) -> Self | None:
        data = as_map(raw)
        if not data:
            return None
        return cls(
            call=as_str(data.get("call")),
            workflow_id=as_str(data.get("workflow_id")),
            shard=_shard(data.get("shard")),
            attempt=as_int(data.get("attempt")),
            job_id=as_str(data.get("job_id")),
            return_code=as_int(data.get("return_code")),
            status=as_str(data.get("status")),
            message=as_str(data.get("message")),
            stderr=as_str(data.get("stderr")),
            log_group=as_str(data.get("log_group")),
            log_stream=as_str(data.get("log_stream")),
        )

    def to_map(self) -> dict[str, Any]:
        return _drop_none(
            {
                "call": self.call,
                "workflow_id": self.workflow_id,
                "shard": self.shard,
                "attempt": self.attempt,
                "job_id": self.job_id,
                "return_code": self.return_code,
                "status": self.status,
                "message": self.message,
                "stderr": self.stderr,
                "log_group": self.log_group,
                "log_stream": self.log_stream,
            }
        )

    @property
    def call_key(self) -> tuple[str, int, int] | None:
        """(call, shard, attempt) to match a task with; attempt 1 when Cromwell said none."""
        if not self.call:
            return None
        return self.call, self.shard, 1 if self.attempt is None else self.attempt


# -- run -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunView:
    """One run item (`RUN#<id>` / `RUN`), typed."""

    workflow_id: str
    workflow_name: str | None = None
    status: RunStatus | None = None
    origin: str | None = None
    source_bucket: str | None = None
    inputs_key: str | None = None
    run_folder: str | None = None
    main_wdl: str | None = None
    receipt_key: str | None = None
    requester: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    routing: Mapping[str, str] = field(default_factory=dict)
    submitted_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    updated_at: datetime | None = None
    ended_by: str | None = None
    reasons: tuple[str, ...] = ()
    counts: Mapping[str, int] = field(default_factory=dict)
    first_failure: TaskSummary | None = None
    last_change: TaskSummary | None = None
    failures: tuple[FailureEntry, ...] = ()
    failures_count: int = 0
    workflow_failures: tuple[str, ...] = ()
    outputs: Mapping[str, Any] = field(default_factory=dict)
    outputs_count: int = 0
    workflow_root: str | None = None
    slack_thread_channel: str | None = None
    slack_thread_ts: str | None = None
    batch_id: str | None = None
    sample: str | None = None
    outputs_left_out: int = 0
    #: A pipeline (`courier.pipeline`): the run's `courier_next` as submit read it, the parent
    #: inputs it references, the run folders of its chain (root first, its own last), the runs
    #: (or batch) its inputs were built from, and what its end did about the next step.
    next_spec: Mapping[str, Any] = field(default_factory=dict)
    next_inputs: Mapping[str, Any] = field(default_factory=dict)
    chain: tuple[str, ...] = ()
    parents: tuple[str, ...] = ()
    parent_batch: str | None = None
    next_step: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_item(cls, item: Mapping[str, Any], workflow_id: str | None = None) -> Self:
        wf = as_str(item.get("workflow_id")) or workflow_id
        if wf is None:
            pk = as_str(item.get(s.PK)) or ""
            wf = pk.removeprefix("RUN#")
        counts: dict[str, int] = {}
        for key, value in item.items():
            if key.startswith(s.TASK_COUNT_PREFIX):
                number = as_int(value)
                if number and number > 0:
                    counts[key[len(s.TASK_COUNT_PREFIX) :]] = number
        failures = tuple(
            f for f in (FailureEntry.from_map(raw) for raw in _list(item.get("failures"))) if f is not None
        )
        outputs = item.get("outputs")
        return cls(
            workflow_id=wf,
            workflow_name=as_str(item.get("workflow_name")),
            status=_run_status(item.get("status")),
            origin=as_str(item.get("origin")),
            source_bucket=as_str(item.get("source_bucket")),
            inputs_key=as_str(item.get("inputs_key")),
            run_folder=as_str(item.get("run_folder")),
            main_wdl=as_str(item.get("main_wdl")),
            receipt_key=as_str(item.get("receipt_key")),
            requester=as_str(item.get("requester")),
            labels=as_str_map(item.get("labels")),
            routing=as_str_map(item.get("routing")),
            submitted_at=parse_time(item.get("submitted_at")),
            started_at=parse_time(item.get("started_at")),
            ended_at=parse_time(item.get("ended_at")),
            updated_at=parse_time(item.get("updated_at")),
            ended_by=as_str(item.get("ended_by")),
            reasons=_reasons(item.get("reasons")),
            counts=counts,
            first_failure=TaskSummary.from_map(item.get("first_failure")),
            last_change=TaskSummary.from_map(item.get("last_change")),
            failures=failures,
            failures_count=max(as_int(item.get("failures_count")) or 0, len(failures)),
            workflow_failures=_reasons(item.get("workflow_failures")),
            outputs=outputs if isinstance(outputs, Mapping) else {},
            outputs_count=as_int(item.get("outputs_count")) or 0,
            workflow_root=as_str(item.get("workflow_root")),
            slack_thread_channel=as_str(item.get("slack_thread_channel")),
            slack_thread_ts=as_str(item.get("slack_thread_ts")),
            batch_id=as_str(item.get("batch_id")),
            sample=as_str(item.get("sample")),
            outputs_left_out=as_int(item.get("outputs_left_out")) or 0,
            next_spec=json_map(item.get("next")),
            next_inputs=json_map(item.get("next_inputs")),
            chain=_reasons(item.get("chain")),
            parents=_reasons(item.get("parents")),
            parent_batch=as_str(item.get("parent_batch")),
            next_step=as_map(item.get("next_step")),
        )

    @property
    def notify_mode(self) -> str:
        """`courier_notify` of the run's options.json: `digest` (a batch's default), `per-run`
        or `both`."""
        mode = as_str(self.routing.get("notify"))
        return mode if mode in NOTIFY_MODES else NOTIFY_DIGEST

    @property
    def own_end_message(self) -> bool:
        """Whether the run's end is told in a message of its own (not a batch's, or asked for)."""
        return self.batch_id is None or self.notify_mode != NOTIFY_DIGEST

    def tells_own_end(self, batch: BatchView | None) -> bool:
        """Whether the run's end, written now, is told in a message of its own: as
        `own_end_message` says, and for the one run of a folder window closed on it (not a
        batch to the people who dropped it). A run ending while its window is open leaves its
        end to the batch: should the window close on it alone, the batch's end tells it then."""
        return self.own_end_message or (batch is not None and batch.lone)

    @property
    def name(self) -> str:
        return self.workflow_name or "(unnamed workflow)"

    @property
    def source(self) -> str | None:
        """The s3:// URL of the inputs file that started the run."""
        if self.source_bucket and self.inputs_key:
            return f"s3://{self.source_bucket}/{self.inputs_key}"
        return None

    @property
    def ended(self) -> bool:
        return self.status is not None and self.status.terminal

    @property
    def project(self) -> str | None:
        return as_str(self.routing.get("project")) or as_str(self.labels.get(LABEL_PROJECT))

    @property
    def slack_channel(self) -> str | None:
        return as_str(self.routing.get("slack_channel")) or as_str(self.labels.get(LABEL_SLACK_CHANNEL))

    @property
    def total_tasks(self) -> int:
        return sum(self.counts.values())

    @property
    def finished_tasks(self) -> int:
        return sum(n for st, n in self.counts.items() if st in (TaskStatus.SUCCEEDED, TaskStatus.FAILED))

    def duration(self, now: datetime) -> timedelta | None:
        start = self.started_at or self.submitted_at
        if start is None:
            return None
        return max((self.ended_at or now) - start, timedelta(0))


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


# -- outbox events ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubmittedPayload:
    kind: ClassVar[NotificationKind] = NotificationKind.SUBMITTED

    @classmethod
    def from_map(cls, raw: Any) -> Self:
        return cls()

    def to_map(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True, slots=True)
class RejectedPayload:
    reasons: tuple[str, ...] = ()
    kind: ClassVar[NotificationKind] = NotificationKind.REJECTED

    @classmethod
    def from_map(cls, raw: Any) -> Self:
        return cls(reasons=_reasons(as_map(raw).get("reasons")))

    def to_map(self) -> dict[str, Any]:
        return {"reasons": list(self.reasons)}


@dataclass(frozen=True, slots=True)
class EndedPayload:
    """Written with the terminal transition itself: the status is the run's final one."""

    status: RunStatus | None = None
    source: str | None = None
    #: The run's batch, and whether the run sends its own end message besides the batch's digest.
    batch_id: str | None = None
    per_run: bool = True
    kind: ClassVar[NotificationKind] = NotificationKind.ENDED

    @classmethod
    def from_map(cls, raw: Any) -> Self:
        data = as_map(raw)
        return cls(
            status=_run_status(data.get("status")),
            source=as_str(data.get("source")),
            batch_id=as_str(data.get("batch_id")),
            per_run=data.get("per_run") is not False,
        )

    def left_to_digest(self, run: RunView | None = None) -> bool:
        """The run's end is told by its batch's digest alone (`courier_notify`: `digest`): as
        the event says, or (an end written before submit recorded the run's batch) as `run` says."""
        if self.batch_id:
            return not self.per_run
        return run is not None and not run.own_end_message

    def to_map(self) -> dict[str, Any]:
        values: dict[str, Any] = {"status": self.status.value if self.status else None, "source": self.source}
        if self.batch_id:
            values.update(batch_id=self.batch_id, per_run=self.per_run)
        return _drop_none(values)


@dataclass(frozen=True, slots=True)
class BatchEndedPayload:
    """The last run of a batch ended: written once, with that run's terminal transition, in its
    partition (`EVENT#BATCH_ENDED#<batch id>`)."""

    batch_id: str = ""
    kind: ClassVar[NotificationKind] = NotificationKind.BATCH_ENDED

    @classmethod
    def from_map(cls, raw: Any) -> Self:
        return cls(batch_id=as_str(as_map(raw).get("batch_id")) or "")

    def to_map(self) -> dict[str, Any]:
        return {"batch_id": self.batch_id}


@dataclass(frozen=True, slots=True)
class EarlyFailurePayload:
    """The first failed task of a run."""

    task: TaskSummary | None = None
    sub_workflow_id: str | None = None
    kind: ClassVar[NotificationKind] = NotificationKind.EARLY_FAILURE

    @classmethod
    def from_map(cls, raw: Any) -> Self:
        data = as_map(raw)
        return cls(
            task=TaskSummary.from_map(data.get("task")), sub_workflow_id=as_str(data.get("sub_workflow_id"))
        )

    def to_map(self) -> dict[str, Any]:
        return _drop_none(
            {"task": self.task.to_map() if self.task else None, "sub_workflow_id": self.sub_workflow_id}
        )


@dataclass(frozen=True, slots=True)
class _WaitingJob:
    """What the stuck and queue-blocked alerts share: a job waiting in RUNNABLE."""

    job_id: str | None = None
    queue: str | None = None
    call: str | None = None
    shard: int = NOT_SCATTERED
    attempt: int | None = None
    batch_attempts: int = 0
    status_reason: str | None = None
    #: Since when the job has waited in RUNNABLE, and for how long when the alert was raised.
    runnable_since: datetime | None = None
    runnable_seconds: int | None = None

    @classmethod
    def from_map(cls, raw: Any) -> Self:
        data = as_map(raw)
        return cls(
            job_id=as_str(data.get("job_id")),
            queue=as_str(data.get("queue")),
            call=as_str(data.get("call")),
            shard=_shard(data.get("shard")),
            attempt=as_int(data.get("attempt")),
            batch_attempts=as_int(data.get("batch_attempts")) or 0,
            status_reason=as_str(data.get("status_reason")),
            runnable_since=parse_time(data.get("runnable_since")),
            runnable_seconds=as_int(data.get("runnable_seconds")),
        )

    def to_map(self) -> dict[str, Any]:
        return _drop_none(
            {
                "job_id": self.job_id,
                "queue": self.queue,
                "call": self.call,
                "shard": self.shard,
                "attempt": self.attempt,
                "batch_attempts": self.batch_attempts,
                "status_reason": self.status_reason,
                "runnable_since": _iso(self.runnable_since),
                "runnable_seconds": self.runnable_seconds,
            }
        )


@dataclass(frozen=True, slots=True)
class StuckPayload(_WaitingJob):
    """A task RUNNABLE for longer than the threshold (raised by the reconciler's sweep)."""

    kind: ClassVar[NotificationKind] = NotificationKind.STUCK


@dataclass(frozen=True, slots=True)
class QueueBlockedPayload(_WaitingJob):
    """A job Batch says cannot leave RUNNABLE (a queue with no fitting compute environment).
    `runnable_seconds` is the time from the job's creation to the event; `at` is the event's time."""

    at: datetime | None = None
    kind: ClassVar[NotificationKind] = NotificationKind.QUEUE_BLOCKED

    @classmethod
    def from_map(cls, raw: Any) -> Self:
        waiting = _WaitingJob.from_map(raw)
        return cls(
            **{name: getattr(waiting, name) for name in _WaitingJob.__dataclass_fields__},
            at=parse_time(as_map(raw).get("at")),
        )

    def to_map(self) -> dict[str, Any]:
        return _drop_none({**_WaitingJob.to_map(self), "at": _iso(self.at)})


type Payload = (
    SubmittedPayload
    | RejectedPayload
    | EndedPayload
    | EarlyFailurePayload
    | StuckPayload
    | QueueBlockedPayload
    | BatchEndedPayload
)

_PAYLOADS: Final[Mapping[NotificationKind, Any]] = {
    NotificationKind.SUBMITTED: SubmittedPayload,
    NotificationKind.REJECTED: RejectedPayload,
    NotificationKind.ENDED: EndedPayload,
    NotificationKind.EARLY_FAILURE: EarlyFailurePayload,
    NotificationKind.STUCK: StuckPayload,
    NotificationKind.QUEUE_BLOCKED: QueueBlockedPayload,
    NotificationKind.BATCH_ENDED: BatchEndedPayload,
}


def decode_image(image: Mapping[str, Any] | None) -> dict[str, Any]:
    """A stream record's `NewImage` or `OldImage` (DynamoDB attribute values) as the stored item
    the records' `from_item` take ({} for no image)."""
    return decode_item(image) if image else {}


# -- delivery records (written by notify on the event item) -----------------------------------------


class DeliveryState(StrEnum):
    CLAIMED = "claimed"
    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ChannelDelivery:
    """Notify's record of one channel of one outbox event: `delivery.<channel>` on the event item
    (see `courier.ledger.deliveries` for the claim that writes it)."""

    state: DeliveryState | None = None
    token: str | None = None
    attempts: int = 0
    claimed_at: datetime | None = None
    lease_until: datetime | None = None
    sent_at: datetime | None = None
    failed_at: datetime | None = None
    ref: str | None = None
    last_error: str | None = None

    @classmethod
    def from_map(cls, raw: Any) -> Self:
        data = as_map(raw)
        state = as_str(data.get("state"))
        try:
            known = DeliveryState(state) if state else None
        except ValueError:
            known = None
        return cls(
            state=known,
            token=as_str(data.get("token")),
            attempts=as_int(data.get("attempts")) or 0,
            claimed_at=parse_time(data.get("claimed_at")),
            lease_until=parse_time(data.get("lease_until")),
            sent_at=parse_time(data.get("sent_at")),
            failed_at=parse_time(data.get("failed_at")),
            ref=as_str(data.get("ref")),
            last_error=as_str(data.get("last_error")),
        )

    @property
    def sent(self) -> bool:
        return self.state is DeliveryState.SENT


def _deliveries(value: Any) -> dict[str, ChannelDelivery]:
    return {str(channel): ChannelDelivery.from_map(raw) for channel, raw in as_map(value).items()}


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """One outbox event item (`EVENT#<KIND>[#<discriminator>]`) with its typed payload and, once
    notify has handled it, its delivery record per channel."""

    workflow_id: str
    kind: NotificationKind
    event_sk: str
    payload: Payload
    created_at: datetime | None = None
    discriminator: str = ""
    delivery: Mapping[str, ChannelDelivery] = field(default_factory=dict)

    @classmethod
    def from_stream_image(cls, image: Mapping[str, Any]) -> Self | None:
        """The event of a DynamoDB stream record's `NewImage` (attribute values, as the stream
        carries them); None when the item is not an outbox event of a known kind."""
        item = decode_image(image)
        if item.get(s.TYPE) != s.ITEM_EVENT:
            return None
        try:
            return cls.from_item(item)
        except ValueError:
            return None

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Self:
        """Raises ValueError when the item is not an outbox event of a known kind."""
        event_sk = as_str(item.get(s.SK)) or ""
        kind_text = (as_str(item.get("kind")) or event_sk.removeprefix(s.EVENT_SK_PREFIX)).split("#", 1)[0]
        try:
            kind = NotificationKind(kind_text)
        except ValueError as exc:
            raise ValueError(f"not an outbox event: {event_sk or kind_text!r}") from exc
        prefix = s.event_sk(kind.value)
        discriminator = event_sk[len(prefix) + 1 :] if event_sk.startswith(prefix + "#") else ""
        pk = as_str(item.get(s.PK)) or ""
        return cls(
            workflow_id=as_str(item.get("workflow_id")) or pk.removeprefix("RUN#"),
            kind=kind,
            event_sk=event_sk or s.event_sk(kind.value),
            payload=_PAYLOADS[kind].from_map(item.get("payload")),
            created_at=parse_time(item.get("created_at")),
            discriminator=discriminator,
            delivery=_deliveries(item.get(s.DELIVERY_ATTR)),
        )


def payload_kind(payload: Payload) -> NotificationKind:
    return _PAYLOADS_BY_TYPE[type(payload)]


_PAYLOADS_BY_TYPE: Final[Mapping[type, NotificationKind]] = {v: k for k, v in _PAYLOADS.items()}


def _iso(ts: datetime | None) -> str | None:
    return iso(ts) if ts is not None else None


# -- batches ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchOpening:
    """What opens a batch: its kind (`sheet`, `rerun`), where it comes from, the runs it expects
    and, for a re-run, the batch it re-runs."""

    kind: str
    bucket: str
    folder: str
    source_key: str
    expected: int | None
    workflow_name: str | None = None
    rerun_of: str | None = None


@dataclass(frozen=True, slots=True)
class BatchView:
    """One batch item (`BATCH#<id>` / `BATCH`): where the batch comes from and its runs counted
    (`runs`: recorded, `ended`, `counts`: by final status, from `runs_<Status>`)."""

    batch_id: str
    kind: str | None = None
    bucket: str | None = None
    folder: str | None = None
    source_key: str | None = None
    workflow_name: str | None = None
    expected: int | None = None
    runs: int = 0
    ended: int = 0
    counts: Mapping[str, int] = field(default_factory=dict)
    opened_at: datetime | None = None
    ended_at: datetime | None = None
    ended_by: str | None = None
    rerun_of: str | None = None
    slack_thread_channel: str | None = None
    slack_thread_ts: str | None = None
    #: A folder batch: the inputs files its window took (each exactly once), and when the window
    #: closes; `expected` is set to `assigned` when it has closed.
    assigned: int = 0
    window_closes_at: datetime | None = None
    #: What the batch's end did about its pipeline's next step (`courier.pipeline.NextStep`).
    next_step: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_item(cls, item: Mapping[str, Any], batch_id: str | None = None) -> Self:
        bid = (
            as_str(item.get("batch_id")) or batch_id or (as_str(item.get(s.PK)) or "").removeprefix("BATCH#")
        )
        counts: dict[str, int] = {}
        for key, value in item.items():
            if key.startswith(s.BATCH_COUNT_PREFIX):
                number = as_int(value)
                if number and number > 0:
                    counts[key[len(s.BATCH_COUNT_PREFIX) :]] = number
        return cls(
            batch_id=bid,
            kind=as_str(item.get("kind")),
            bucket=as_str(item.get("bucket")),
            folder=as_str(item.get("folder")),
            source_key=as_str(item.get("source_key")),
            workflow_name=as_str(item.get("workflow_name")),
            expected=as_int(item.get("expected")),
            runs=as_int(item.get("runs")) or 0,
            ended=as_int(item.get("ended")) or 0,
            counts=counts,
            opened_at=parse_time(item.get("opened_at")),
            ended_at=parse_time(item.get("ended_at")),
            ended_by=as_str(item.get("ended_by")),
            rerun_of=as_str(item.get("rerun_of")),
            slack_thread_channel=as_str(item.get("slack_thread_channel")),
            slack_thread_ts=as_str(item.get("slack_thread_ts")),
            assigned=as_int(item.get("assigned")) or 0,
            window_closes_at=parse_time(item.get("window_closes_at")),
            next_step=as_map(item.get("next_step")),
        )

    @property
    def window_open(self) -> bool:
        """A folder batch whose window has not been closed: more files may join, it cannot end."""
        return self.kind == s.BATCH_KIND_FOLDER and self.expected is None

    @property
    def lone(self) -> bool:
        """A folder batch whose window closed on one inputs file: not a batch to the people who
        dropped it (its run's own end message tells its end, no digest)."""
        return self.kind == s.BATCH_KIND_FOLDER and self.expected == 1

    @property
    def complete(self) -> bool:
        """Every run the batch expects has ended."""
        return self.expected is not None and self.ended >= self.expected

    def last_after(self, one_more: int = 1) -> bool:
        """True when `one_more` more ended runs end the batch."""
        return self.expected is not None and self.ended < self.expected <= self.ended + one_more


@dataclass(frozen=True, slots=True)
class BatchMember:
    """One run of a batch (`BATCH#<id>` / `MEMBER#<workflow id>`): its sample and where it is."""

    batch_id: str
    workflow_id: str
    sample: str | None = None
    status: RunStatus | None = None
    inputs_key: str | None = None
    recorded_at: datetime | None = None
    ended_at: datetime | None = None

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Self:
        return cls(
            batch_id=as_str(item.get("batch_id")) or (as_str(item.get(s.PK)) or "").removeprefix("BATCH#"),
            workflow_id=as_str(item.get("workflow_id"))
            or (as_str(item.get(s.SK)) or "").removeprefix(s.MEMBER_SK_PREFIX),
            sample=as_str(item.get("sample")),
            status=_run_status(item.get("status")),
            inputs_key=as_str(item.get("inputs_key")),
            recorded_at=parse_time(item.get("recorded_at")),
            ended_at=parse_time(item.get("ended_at")),
        )

    @property
    def label(self) -> str:
        return self.sample or self.workflow_id
