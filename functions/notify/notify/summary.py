"""The run summary: everything a message says about one outbox event, read from the ledger's
typed records (`courier.ledger.records`) through `RunReads` (`courier.ledger.views.RunViews`).

Built by streaming over the run's task items once, with bounded memory whatever the size of the
run: counts per status, a cost estimate accumulated per task, the earliest `max_failed` failed
tasks (a bounded heap) plus the total, and a count of failures by cause.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from courier.costs import CostEstimate, Prices
from courier.failures import Classification, FailureKind, classify
from courier.ledger.records import (
    NOT_SCATTERED,
    EarlyFailurePayload,
    EndedPayload,
    FailureEntry,
    OutboxEvent,
    QueueBlockedPayload,
    RejectedPayload,
    RunView,
    StuckPayload,
    TaskSummary,
    TaskView,
)
from courier.models import NotificationKind, RunStatus, TaskStatus
from courier.pipeline import NextStep
from notify.artifacts import ReportLink
from notify.text import clean_block, clip, one_line

_NOT_SHOWN = frozenset(
    {"job_name", "root_workflow_id", "order", "batch_attempts", "runnable_at", "updated_at", "stuck_alerted"}
)
#: The task attributes an end-of-run summary reads: the view's, less those no message shows.
TASK_ATTRIBUTES: tuple[str, ...] = tuple(name for name in TaskView.ATTRIBUTES if name not in _NOT_SHOWN)
_MAX_CROMWELL_ERRORS = 10
_MAX_MESSAGE_CHARS = 2000
_MAX_REASONS = 50


class RunReads(Protocol):
    """The typed reads of a run's partition the summary needs (`RunViews` in production)."""

    def run(self, workflow_id: str) -> RunView | None: ...
    def task(self, workflow_id: str, job_id: str) -> TaskView | None: ...
    def tasks(self, workflow_id: str, attributes: Sequence[str] | None = ...) -> Iterator[TaskView]: ...


class StderrPort(Protocol):
    def tail(self, uri: str, lines: int) -> list[str] | None:
        """The last `lines` lines of an S3 object; None when it cannot be read."""
        ...


@dataclass(frozen=True, slots=True)
class SummaryOptions:
    prices: Prices
    max_failed: int = 20
    max_outputs: int = 50
    stderr_tasks: int = 5
    stderr_lines: int = 20


# -- the message model ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FailedTask:
    job_id: str | None
    call: str
    shard: int
    attempt: int | None
    exit_code: int | None
    status_reason: str | None
    classification: Classification
    queue: str | None = None
    log_group: str | None = None
    log_stream: str | None = None
    stopped_at: datetime | None = None
    stderr_uri: str | None = None
    stderr_tail: tuple[str, ...] | None = None
    message: str | None = None

    @property
    def call_folder(self) -> str | None:
        if self.stderr_uri and "/" in self.stderr_uri[5:]:
            return self.stderr_uri.rsplit("/", 1)[0] + "/"
        return None

    @property
    def label(self) -> str:
        parts = [self.call]
        if self.shard >= 0:
            parts.append(f"shard {self.shard}")
        if self.attempt is not None:
            parts.append(f"attempt {self.attempt}")
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class Output:
    name: str
    value: str

    @property
    def is_s3(self) -> bool:
        return self.value.startswith("s3://")


@dataclass(frozen=True, slots=True)
class Alert:
    """A task waiting in RUNNABLE for too long, or a job blocking its queue."""

    job_id: str | None
    call: str | None
    shard: int
    attempt: int | None
    queue: str | None
    task_status: str | None
    #: Since when the job has waited in RUNNABLE, and for how long when the alert was raised.
    runnable_since: datetime | None
    runnable_seconds: float | None
    reason: str | None


_HEADLINES = {
    NotificationKind.REJECTED: "Run rejected",
    NotificationKind.SUBMITTED: "Run submitted",
    NotificationKind.EARLY_FAILURE: "A task failed",
    NotificationKind.STUCK: "Task stuck",
    NotificationKind.QUEUE_BLOCKED: "Queue blocked",
}


@dataclass(slots=True)
class RunSummary:
    """What one message says: the run (its status the one the event reports) and, by kind, its
    failed tasks, outputs, cost, alert or reasons."""

    kind: NotificationKind
    event_sk: str
    run: RunView
    created_at: datetime
    counts: dict[str, int] = field(default_factory=dict)
    failed: list[FailedTask] = field(default_factory=list)
    failed_total: int = 0
    causes: dict[str, int] = field(default_factory=dict)
    cromwell_errors: list[str] = field(default_factory=list)
    outputs: list[Output] = field(default_factory=list)
    outputs_total: int = 0
    cost: CostEstimate | None = None
    alert: Alert | None = None
    reasons: list[str] = field(default_factory=list)
    #: The run's report beside its inputs file (ENDED only): its link, or why it is missing.
    report: ReportLink | None = None
    #: What a grouped alert stands for (`notify.grouping`): other samples failed, jobs waiting.
    group_note: str | None = None
    #: ENDED of a run in a pipeline (`when: run`): the next run it started, or why not.
    next_step: NextStep | None = None

    @property
    def status(self) -> RunStatus | None:
        return self.run.status

    @property
    def severity(self) -> str:
        """`failure`, `warning` or `info`: one attribute subscribers can filter on."""
        if self.kind in (NotificationKind.REJECTED, NotificationKind.EARLY_FAILURE):
            return "failure"
        if self.kind in (NotificationKind.STUCK, NotificationKind.QUEUE_BLOCKED):
            return "warning"
        if self.kind is NotificationKind.ENDED:
            if self.status is RunStatus.FAILED:
                return "failure"
            if self.status is RunStatus.ABORTED:
                return "warning"
        return "info"

    @property
    def headline(self) -> str:
        """What happened, without the workflow's name."""
        if self.kind is NotificationKind.ENDED:
            return f"Run {self.status.lower()}" if self.status else "Run ended"
        return _HEADLINES.get(self.kind, "Run update")

    @property
    def ended(self) -> bool:
        return self.kind is NotificationKind.ENDED


# -- building -------------------------------------------------------------------------------------


class _Inverted:
    """Reverses the order of a key, so that heapq's min-heap keeps the largest key on top."""

    __slots__ = ("key",)

    def __init__(self, key: tuple[float, str]) -> None:
        self.key = key

    def __lt__(self, other: _Inverted) -> bool:
        return self.key > other.key


class _Earliest:
    """Keeps the `limit` tasks with the smallest keys from a stream, in O(limit) memory."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._heap: list[tuple[_Inverted, int, TaskView]] = []
        self._seq = 0

    def offer(self, key: tuple[float, str], item: TaskView) -> None:
        if self.limit <= 0:
            return
        self._seq += 1
        entry = (_Inverted(key), self._seq, item)
        if len(self._heap) < self.limit:
            heapq.heappush(self._heap, entry)
        elif key < self._heap[0][0].key:
            heapq.heapreplace(self._heap, entry)

    def items(self) -> list[TaskView]:
        return [e[2] for e in sorted(self._heap, key=lambda e: (e[0].key, e[1]))]


def _failure_key(task: TaskView) -> tuple[float, str]:
    when = task.stopped_at or task.started_at or task.created_at
    return (when.timestamp() if when else math.inf), task.job_id


def _call_label(call: str, task: TaskView | None) -> str:
    """The call as shown: marked when it is only the Batch job name (Cromwell 91's script prefix,
    until the monitor fills it in from Cromwell's metadata)."""
    return f"{call} (Batch job name)" if task is not None and task.from_job_name else call


def _run_status(run: RunView, event: OutboxEvent) -> RunStatus | None:
    """The status a message reports: the ENDED event's own (written with the terminal transition
    itself), Rejected for a REJECTED event, else the run item's."""
    payload = event.payload
    if isinstance(payload, RejectedPayload):
        return RunStatus.REJECTED
    if isinstance(payload, EndedPayload) and payload.status is not None:
        return payload.status
    return run.status


@dataclass(frozen=True, slots=True)
class _FailureInfo:
    """What Cromwell's metadata of the failed calls (the run item's `failures`) says about one call."""

    stderr: str | None
    messages: tuple[str, ...]


def _messages(entry: FailureEntry) -> tuple[str, ...]:
    return (clip(one_line(entry.message), _MAX_MESSAGE_CHARS),) if entry.message else ()


def _workflow_base(workflow_id: str, run: RunView) -> str | None:
    """`s3://.../<wfName>/<wfId>/` of the run, from any S3 path the ledger holds under it."""
    marker = f"/{workflow_id}/"
    for value in (run.workflow_root, *(entry.stderr for entry in run.failures)):
        if not value or not value.startswith("s3://"):
            continue
        if marker in value:
            return value[: value.index(marker) + len(marker)]
        if value.rstrip("/").endswith(f"/{workflow_id}"):
            return value.rstrip("/") + "/"
    return None


def _first_failed(task: TaskView | None, reported: TaskSummary | None, workflow_id: str | None) -> TaskView:
    """The first failed task: its task item, with what the monitor reported filling its gaps."""
    if reported is None:
        return task or TaskView(job_id="", workflow_id=workflow_id)
    base = task or TaskView(job_id=reported.job_id or "", shard=reported.shard, workflow_id=workflow_id)
    attempt = reported.attempt if reported.attempt is not None and reported.attempt > 0 else None
    known: dict[str, Any] = {
        "call": reported.call,
        "attempt": attempt,
        "status": reported.status,
        "status_reason": reported.status_reason,
        "exit_code": reported.exit_code,
        "queue": reported.queue,
        "log_group": reported.log_group,
        "log_stream": reported.log_stream,
    }
    gaps = {name: value for name, value in known.items() if value is not None and getattr(base, name) is None}
    return replace(base, **gaps)


def derive_stderr_uri(base: str, call: str, shard: int, attempt: int | None) -> str:
    """Cromwell's S3 layout of a call (no `execution/` folder on AWS)."""
    alias = call.rsplit(".", 1)[-1]
    path = f"{base}call-{alias}/"
    if shard >= 0:
        path += f"shard-{shard}/"
    if attempt is not None and attempt > 1:
        path += f"attempt-{attempt}/"
    suffix = f"-{shard}" if shard >= 0 else ""
    return f"{path}{alias}{suffix}-stderr.log"


class SummaryBuilder:
    """Builds the `RunSummary` of an outbox event from the run's typed records (`RunReads`)."""

    def __init__(
        self,
        reads: RunReads,
        options: SummaryOptions,
        *,
        stderr: StderrPort | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.reads = reads
        self.options = options
        self.stderr = stderr
        self.clock = clock or (lambda: datetime.now(UTC))

    def build(self, event: OutboxEvent) -> RunSummary:
        workflow_id = event.workflow_id
        stored = self.reads.run(workflow_id) or RunView(workflow_id=workflow_id)
        run = replace(stored, status=_run_status(stored, event))
        summary = RunSummary(
            kind=event.kind,
            event_sk=event.event_sk,
            run=run,
            created_at=event.created_at or self.clock(),
            counts=dict(run.counts),
        )
        payload = event.payload
        if isinstance(payload, RejectedPayload):
            reasons = payload.reasons or run.reasons
            summary.reasons = [clip(one_line(r), _MAX_MESSAGE_CHARS) for r in reasons][:_MAX_REASONS]
        elif isinstance(payload, EndedPayload):
            self._scan_tasks(summary)
            self._outputs(summary)
        elif isinstance(payload, EarlyFailurePayload):
            self._first_failure(summary, payload)
        elif isinstance(payload, StuckPayload | QueueBlockedPayload):
            summary.alert = self._alert(summary, payload, event)
        return summary

    # ENDED: one pass over the tasks
    def _scan_tasks(self, summary: RunSummary) -> None:
        run = summary.run
        counts: Counter[str] = Counter()
        causes: Counter[str] = Counter()
        cost = CostEstimate(self.options.prices)
        earliest = _Earliest(self.options.max_failed)
        by_job, by_call = self._failure_index(run.failures)
        failed_total = 0
        for task in self.reads.tasks(run.workflow_id, TASK_ATTRIBUTES):
            counts[task.status.value if task.status else "UNKNOWN"] += 1
            cost.add(task)
            if task.status is TaskStatus.FAILED:
                failed_total += 1
                info = self._info_for(task, by_job, by_call)
                causes[self._classify(task, info).kind.value] += 1
                earliest.offer(_failure_key(task), task)
        if counts:
            summary.counts = dict(counts)
        summary.cost = cost
        base = _workflow_base(run.workflow_id, run)
        summary.failed = [
            self._failed_task(run.workflow_id, task=t, by_job=by_job, by_call=by_call, base=base, index=i)
            for i, t in enumerate(earliest.items())
        ]
        summary.failed_total = failed_total
        # Cromwell-side failures: entries that name no Batch job and no call with a stderr file;
        # failing those, the workflow's own failures when no task failed either.
        errors = []
        for entry in run.failures:
            if entry.job_id or (entry.call_key and entry.stderr):
                continue
            messages = _messages(entry)
            if messages:
                errors.append(messages[0])
        if not errors and not failed_total:
            errors = [clip(one_line(m), _MAX_MESSAGE_CHARS) for m in run.workflow_failures]
        if errors and run.status is RunStatus.FAILED:
            causes[FailureKind.CROMWELL_ERROR.value] += len(errors)
        summary.cromwell_errors = errors[:_MAX_CROMWELL_ERRORS]
        summary.causes = dict(causes)

    @staticmethod
    def _failure_index(
        entries: Sequence[FailureEntry],
    ) -> tuple[dict[str, _FailureInfo], dict[tuple[str, int, int], _FailureInfo]]:
        by_job: dict[str, _FailureInfo] = {}
        by_call: dict[tuple[str, int, int], _FailureInfo] = {}
        for entry in entries:
            info = _FailureInfo(entry.stderr, _messages(entry))
            if entry.job_id:
                by_job[entry.job_id] = info
            key = entry.call_key
            if key:
                by_call[key] = info
        return by_job, by_call

    @staticmethod
    def _info_for(
        task: TaskView,
        by_job: Mapping[str, _FailureInfo],
        by_call: Mapping[tuple[str, int, int], _FailureInfo],
    ) -> _FailureInfo | None:
        if task.job_id and task.job_id in by_job:
            return by_job[task.job_id]
        if task.call and not task.from_job_name:
            return by_call.get((task.call, task.shard, 1 if task.attempt is None else task.attempt))
        return None

    @staticmethod
    def _classify(task: TaskView, info: _FailureInfo | None) -> Classification:
        return classify(
            status_reason=task.status_reason,
            exit_code=task.exit_code,
            messages=info.messages if info else (),
            has_batch_job=bool(task.job_id),
        )

    def _failed_task(
        self,
        workflow_id: str,
        *,
        task: TaskView,
        by_job: Mapping[str, _FailureInfo],
        by_call: Mapping[tuple[str, int, int], _FailureInfo],
        base: str | None,
        index: int,
    ) -> FailedTask:
        info = self._info_for(task, by_job, by_call)
        stderr_uri = info.stderr if info and info.stderr else None
        if (
            stderr_uri is None
            and base
            and task.call
            and not task.from_job_name
            and task.workflow_id in (None, workflow_id)
        ):
            stderr_uri = derive_stderr_uri(base, task.call, task.shard, task.attempt)
        tail = None
        if stderr_uri and self.stderr and index < self.options.stderr_tasks and self.options.stderr_lines > 0:
            lines = self.stderr.tail(stderr_uri, self.options.stderr_lines)
            tail = tuple(clip(clean_block(line), 500) for line in lines) if lines is not None else None
        return FailedTask(
            job_id=task.job_id or None,
            call=_call_label(task.call, task) if task.call else "(unknown call)",
            shard=task.shard,
            attempt=task.attempt,
            exit_code=task.exit_code,
            status_reason=task.status_reason,
            classification=self._classify(task, info),
            queue=task.queue,
            log_group=task.log_group,
            log_stream=task.log_stream,
            stopped_at=task.stopped_at,
            stderr_uri=stderr_uri,
            stderr_tail=tail,
            message=info.messages[0] if info and info.messages else None,
        )

    def _first_failure(self, summary: RunSummary, payload: EarlyFailurePayload) -> None:
        run = summary.run
        reported = payload.task or run.first_failure
        job = reported.job_id if reported else None
        task = self.reads.task(run.workflow_id, job) if job else None
        first = _first_failed(task, reported, payload.sub_workflow_id)
        by_job, by_call = self._failure_index(run.failures)
        base = _workflow_base(run.workflow_id, run)
        summary.failed = [
            self._failed_task(run.workflow_id, task=first, by_job=by_job, by_call=by_call, base=base, index=0)
        ]
        summary.failed_total = max(1, summary.counts.get(TaskStatus.FAILED.value, 0))

    def _alert(
        self, summary: RunSummary, payload: StuckPayload | QueueBlockedPayload, event: OutboxEvent
    ) -> Alert:
        job = payload.job_id or event.discriminator.split("#", 1)[0] or None
        task = self.reads.task(summary.run.workflow_id, job) if job else None
        since = payload.runnable_since or (task.runnable_at if task else None)
        seconds: float | None = payload.runnable_seconds
        if since is None and seconds is not None and event.created_at is not None:
            since = event.created_at - timedelta(seconds=seconds)
        if seconds is None and since is not None:
            seconds = max((summary.created_at - since).total_seconds(), 0.0)
        call = payload.call or (task.call if task else None)
        shard = payload.shard if payload.shard != NOT_SCATTERED or task is None else task.shard
        attempt = payload.attempt if payload.attempt is not None and payload.attempt > 0 else None
        if attempt is None and task is not None:
            attempt = task.attempt
        status = task.status if task and task.status else TaskStatus.RUNNABLE
        reason = payload.status_reason or (task.status_reason if task else None)
        return Alert(
            job_id=job,
            call=_call_label(call, task) if call else None,
            shard=shard,
            attempt=attempt,
            queue=payload.queue or (task.queue if task else None),
            task_status=status.value,
            runnable_since=since,
            runnable_seconds=seconds,
            reason=clip(one_line(reason), _MAX_MESSAGE_CHARS) or None,
        )

    def _outputs(self, summary: RunSummary) -> None:
        shown: list[Output] = []
        total = 0
        for name, value in _flatten(summary.run.outputs):
            total += 1
            if len(shown) < self.options.max_outputs:
                shown.append(Output(clip(one_line(name), 200), clip(one_line(value), 1000)))
        summary.outputs = shown
        summary.outputs_total = max(total, summary.run.outputs_count)


def _flatten(outputs: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    """Output values as (name, scalar) pairs: arrays, maps, pairs and structs are walked."""

    def walk(name: str, value: Any, depth: int) -> Iterator[tuple[str, str]]:
        if value is None:
            return
        if depth > 6:
            yield name, str(value)
        elif isinstance(value, Mapping):
            if set(value) >= {"name", "value"} and len(value) <= 3:
                yield from walk(str(value["name"]), value["value"], depth + 1)
            else:
                for key, child in value.items():
                    yield from walk(f"{name}.{key}" if name else str(key), child, depth + 1)
        elif isinstance(value, list | tuple):
            for i, child in enumerate(value):
                yield from walk(f"{name}[{i}]", child, depth + 1)
        else:
            yield name, str(value)

    for key, value in outputs.items():
        yield from walk(str(key), value, 0)
