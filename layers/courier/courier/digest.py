"""A run's tasks boiled down: per call, how many tasks (shards and attempts) are in each status,
what they cost; the earliest failed tasks with what went wrong and where their log is.

One pass over the task views, in memory bounded by the number of calls (and `max_failed`), not
by the number of tasks: `courier show` of a 10,000-shard scatter holds a few dozen objects.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from courier.costs import CostEstimate, Prices
from courier.failures import Classification, classify
from courier.ledger.records import FailureEntry, TaskView
from courier.links import log_stream_url
from courier.models import TaskStatus

#: Display order of task statuses: what is done first, then what is on its way.
STATUS_ORDER: tuple[TaskStatus, ...] = (
    TaskStatus.SUCCEEDED,
    TaskStatus.FAILED,
    TaskStatus.RUNNING,
    TaskStatus.STARTING,
    TaskStatus.RUNNABLE,
    TaskStatus.PENDING,
    TaskStatus.SUBMITTED,
)
UNKNOWN_STATUS = "UNKNOWN"


def call_name(task: TaskView) -> str:
    return task.call or task.job_name or "(unknown call)"


@dataclass(slots=True)
class CallDigest:
    call: str
    prices: Prices
    counts: Counter[str] = field(default_factory=Counter)
    tasks: int = 0
    shards: set[int] = field(default_factory=set)
    first_created: datetime | None = None
    first_start: datetime | None = None
    last_stop: datetime | None = None
    cost: CostEstimate = field(init=False)

    def __post_init__(self) -> None:
        self.cost = CostEstimate(self.prices)

    def add(self, task: TaskView) -> None:
        self.tasks += 1
        self.counts[task.status.value if task.status else UNKNOWN_STATUS] += 1
        if task.shard >= 0:
            self.shards.add(task.shard)
        created = task.created_at or task.started_at
        if created and (self.first_created is None or created < self.first_created):
            self.first_created = created
        if task.started_at and (self.first_start is None or task.started_at < self.first_start):
            self.first_start = task.started_at
        if task.stopped_at and (self.last_stop is None or task.stopped_at > self.last_stop):
            self.last_stop = task.stopped_at
        self.cost.add(task)

    @property
    def done(self) -> int:
        return self.counts[TaskStatus.SUCCEEDED] + self.counts[TaskStatus.FAILED]

    def to_dict(self) -> dict[str, Any]:
        return {
            "call": self.call,
            "tasks": self.tasks,
            "shards": len(self.shards),
            "counts": dict(self.counts),
            "first_start": _iso(self.first_start),
            "last_stop": _iso(self.last_stop),
            "cost": self.cost.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class FailedTask:
    task: TaskView
    classification: Classification
    message: str | None = None
    log_url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        t = self.task
        return {
            "job_id": t.job_id,
            "call": t.call,
            "shard": t.shard,
            "attempt": t.attempt,
            "label": t.label,
            "exit_code": t.exit_code,
            "status_reason": t.status_reason,
            "reason": self.classification.kind.value,
            "reason_title": self.classification.title,
            "explanation": self.classification.explanation,
            "message": self.message,
            "log_group": t.log_group,
            "log_stream": t.log_stream,
            "log_url": self.log_url,
            "stopped_at": _iso(t.stopped_at),
        }


@dataclass(slots=True)
class RunDigest:
    prices: Prices
    calls: dict[str, CallDigest] = field(default_factory=dict)
    tasks: int = 0
    failed: list[FailedTask] = field(default_factory=list)
    failed_total: int = 0
    causes: Counter[str] = field(default_factory=Counter)
    cost: CostEstimate = field(init=False)

    def __post_init__(self) -> None:
        self.cost = CostEstimate(self.prices)

    @property
    def counts(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for call in self.calls.values():
            total.update(call.counts)
        return total

    def to_dict(self) -> dict[str, Any]:
        return {
            "tasks": self.tasks,
            "counts": dict(self.counts),
            "calls": [c.to_dict() for c in self.calls.values()],
            "failed": [f.to_dict() for f in self.failed],
            "failed_total": self.failed_total,
            "causes": dict(self.causes),
            "cost": self.cost.to_dict(),
        }


def _failure_order(task: TaskView) -> tuple[str, str]:
    when = task.stopped_at or task.started_at or task.created_at
    return (when.isoformat() if when else "~", task.job_id)


def digest(
    tasks: Iterable[TaskView],
    *,
    prices: Prices | None = None,
    failures: Sequence[FailureEntry] = (),
    region: str | None = None,
    max_failed: int = 20,
) -> RunDigest:
    """Fold a run's tasks into per-call counts, costs and the earliest `max_failed` failures.
    Calls come in the order they began.

    `failures`: Cromwell's failure entries from the run item, whose messages help classify a
    failed task; `region`: for the CloudWatch console links of failed tasks' log streams.
    """
    result = RunDigest(prices or Prices())
    messages: Mapping[tuple[str, int, int], FailureEntry] = {
        key: entry for entry in failures if (key := entry.call_key) is not None
    }
    failed: list[TaskView] = []
    for task in tasks:
        result.tasks += 1
        name = call_name(task)
        call = result.calls.get(name)
        if call is None:
            call = result.calls[name] = CallDigest(name, result.prices)
        call.add(task)
        result.cost.add(task)
        if task.status is TaskStatus.FAILED:
            result.failed_total += 1
            failed.append(task)
            if len(failed) > 2 * max_failed + 16:
                failed = sorted(failed, key=_failure_order)[:max_failed]
            entry = messages.get((name, task.shard, task.attempt or 1))
            result.causes[_classify(task, entry).kind.value] += 1
    far = datetime.max.replace(tzinfo=UTC)
    result.calls = dict(sorted(result.calls.items(), key=lambda kv: (kv[1].first_created or far, kv[0])))
    for task in sorted(failed, key=_failure_order)[:max_failed]:
        entry = messages.get((call_name(task), task.shard, task.attempt or 1))
        url = (
            log_stream_url(region, task.log_stream, task.log_group or "")
            if region and task.log_stream
            else None
        )
        result.failed.append(
            FailedTask(task, _classify(task, entry), message=entry.message if entry else None, log_url=url)
        )
    return result


def _classify(task: TaskView, entry: FailureEntry | None) -> Classification:
    messages = (entry.message,) if entry and entry.message else ()
    exit_code = task.exit_code if task.exit_code is not None else (entry.return_code if entry else None)
    return classify(status_reason=task.status_reason, exit_code=exit_code, messages=messages)


def _iso(ts: datetime | None) -> str | None:
    return ts.isoformat() if ts else None
