"""The Report: everything a message says about one outbox event, read from the ledger.

Built by streaming over the run's task items once, with bounded memory whatever the size of the
run: counts per status, a cost estimate accumulated per task, the earliest `max_failed` failed
tasks (a bounded heap) plus the total, and a count of failures by cause.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from courier.conventions import LABEL_PROJECT, LABEL_SLACK_CHANNEL
from courier.models import CallSource, NotificationKind, RunStatus
from notify.classify import Classification, FailureKind, classify
from notify.text import clean_block, clip, one_line

TASK_ATTRIBUTES = (
    "job_id",
    "call",
    "shard",
    "attempt",
    "workflow_id",
    "status",
    "status_reason",
    "exit_code",
    "created_at",
    "started_at",
    "stopped_at",
    "vcpus",
    "memory_mib",
    "queue",
    "log_group",
    "log_stream",
    "call_source",
)
_MAX_CROMWELL_ERRORS = 10
_MAX_MESSAGE_CHARS = 2000


class LedgerPort(Protocol):
    def get_run(self, workflow_id: str) -> dict[str, Any] | None: ...
    def get_task(self, workflow_id: str, job_id: str) -> dict[str, Any] | None: ...
    def iter_tasks(
        self, workflow_id: str, attributes: Sequence[str] | None = None
    ) -> Iterator[dict[str, Any]]: ...


class StderrPort(Protocol):
    def tail(self, uri: str, lines: int) -> list[str] | None:
        """The last `lines` lines of an S3 object; None when it cannot be read."""
        ...


@dataclass(frozen=True, slots=True)
class Prices:
    on_demand_vcpu_hour: float
    on_demand_gb_hour: float
    spot_vcpu_hour: float
    spot_gb_hour: float


@dataclass(frozen=True, slots=True)
class ReportOptions:
    prices: Prices
    max_failed: int = 20
    max_outputs: int = 50
    stderr_tasks: int = 5
    stderr_lines: int = 20


# -- parsing helpers ------------------------------------------------------------------------------


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _str(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


# -- the model ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunInfo:
    workflow_id: str
    workflow_name: str
    status: str
    source_bucket: str | None = None
    inputs_key: str | None = None
    run_folder: str | None = None
    requester: str | None = None
    origin: str | None = None
    submitted_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    project: str | None = None
    slack_channel: str | None = None
    thread_channel: str | None = None
    thread_ts: str | None = None

    @property
    def source(self) -> str | None:
        if self.source_bucket and self.inputs_key:
            return f"s3://{self.source_bucket}/{self.inputs_key}"
        return None

    def duration(self, now: datetime) -> timedelta | None:
        start = self.started_at or self.submitted_at
        if start is None:
            return None
        end = self.ended_at or now
        return max(end - start, timedelta(0))


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


@dataclass(slots=True)
class CostEstimate:
    """vCPU-hours and GB-hours by pricing class; `unknown` is priced both ways."""

    prices: Prices
    spot_vcpu_h: float = 0.0
    spot_gb_h: float = 0.0
    od_vcpu_h: float = 0.0
    od_gb_h: float = 0.0
    unknown_vcpu_h: float = 0.0
    unknown_gb_h: float = 0.0
    tasks_priced: int = 0
    tasks_unpriced: int = 0

    def add(self, task: Mapping[str, Any]) -> None:
        start, stop = parse_time(task.get("started_at")), parse_time(task.get("stopped_at"))
        vcpus, memory = _float(task.get("vcpus")), _float(task.get("memory_mib"))
        if start is None or stop is None or vcpus is None or stop < start:
            if start is not None or stop is not None:
                self.tasks_unpriced += 1
            return
        hours = (stop - start).total_seconds() / 3600
        vcpu_h, gb_h = vcpus * hours, (memory or 0.0) / 1024 * hours
        queue = str(task.get("queue") or "").lower()
        if "spot" in queue:
            self.spot_vcpu_h += vcpu_h
            self.spot_gb_h += gb_h
        elif "ondemand" in queue.replace("-", "").replace("_", ""):
            self.od_vcpu_h += vcpu_h
            self.od_gb_h += gb_h
        else:
            self.unknown_vcpu_h += vcpu_h
            self.unknown_gb_h += gb_h
        self.tasks_priced += 1

    @property
    def vcpu_hours(self) -> float:
        return self.spot_vcpu_h + self.od_vcpu_h + self.unknown_vcpu_h

    @property
    def gb_hours(self) -> float:
        return self.spot_gb_h + self.od_gb_h + self.unknown_gb_h

    def _known(self) -> float:
        p = self.prices
        return (
            self.spot_vcpu_h * p.spot_vcpu_hour
            + self.spot_gb_h * p.spot_gb_hour
            + self.od_vcpu_h * p.on_demand_vcpu_hour
            + self.od_gb_h * p.on_demand_gb_hour
        )

    @property
    def on_demand_total(self) -> float:
        """The estimate if every task of unknown pricing ran on on-demand instances."""
        p = self.prices
        return (
            self._known()
            + self.unknown_vcpu_h * p.on_demand_vcpu_hour
            + self.unknown_gb_h * p.on_demand_gb_hour
        )

    @property
    def spot_total(self) -> float:
        """The estimate if every task of unknown pricing ran on Spot."""
        p = self.prices
        return self._known() + self.unknown_vcpu_h * p.spot_vcpu_hour + self.unknown_gb_h * p.spot_gb_hour

    @property
    def ambiguous(self) -> bool:
        return self.unknown_vcpu_h > 0 or self.unknown_gb_h > 0

    def describe(self) -> str:
        usage = f"{self.vcpu_hours:,.2f} vCPU-hours, {self.gb_hours:,.2f} GB-hours"
        if self.tasks_priced == 0:
            return "No finished task with start, stop and size to estimate from."
        if self.ambiguous:
            money = f"~${self.on_demand_total:,.2f} at on-demand prices, ~${self.spot_total:,.2f} on Spot"
        else:
            money = f"~${self.on_demand_total:,.2f}"
        note = f" ({self.tasks_unpriced} task(s) without timings left out)" if self.tasks_unpriced else ""
        return f"Estimate: {money} for {usage} over {self.tasks_priced} task(s){note}."


@dataclass(frozen=True, slots=True)
class Alert:
    """A task stuck in a state, or a job blocking its queue."""

    job_id: str | None
    call: str | None
    shard: int
    attempt: int | None
    queue: str | None
    task_status: str | None
    since: datetime | None
    for_seconds: float | None
    reason: str | None


_HEADLINES = {
    NotificationKind.REJECTED: "Run rejected",
    NotificationKind.SUBMITTED: "Run submitted",
    NotificationKind.EARLY_FAILURE: "A task failed",
    NotificationKind.STUCK: "Task stuck",
    NotificationKind.QUEUE_BLOCKED: "Queue blocked",
}


@dataclass(slots=True)
class Report:
    kind: NotificationKind
    event_sk: str
    run: RunInfo
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

    @property
    def status(self) -> str:
        return self.run.status

    @property
    def severity(self) -> str:
        """`failure`, `warning` or `info`: one attribute subscribers can filter on."""
        if self.kind in (NotificationKind.REJECTED, NotificationKind.EARLY_FAILURE):
            return "failure"
        if self.kind in (NotificationKind.STUCK, NotificationKind.QUEUE_BLOCKED):
            return "warning"
        if self.kind is NotificationKind.ENDED:
            if self.status == RunStatus.FAILED:
                return "failure"
            if self.status == RunStatus.ABORTED:
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

    def __init__(self, key: tuple[str, str]) -> None:
        self.key = key

    def __lt__(self, other: _Inverted) -> bool:
        return self.key > other.key


class _Earliest:
    """Keeps the `limit` items with the smallest keys from a stream, in O(limit) memory."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._heap: list[tuple[_Inverted, int, dict[str, Any]]] = []
        self._seq = 0

    def offer(self, key: tuple[str, str], item: dict[str, Any]) -> None:
        if self.limit <= 0:
            return
        self._seq += 1
        entry = (_Inverted(key), self._seq, item)
        if len(self._heap) < self.limit:
            heapq.heappush(self._heap, entry)
        elif key < self._heap[0][0].key:
            heapq.heapreplace(self._heap, entry)

    def items(self) -> list[dict[str, Any]]:
        return [e[2] for e in sorted(self._heap, key=lambda e: (e[0].key, e[1]))]


def _failure_key(task: Mapping[str, Any]) -> tuple[str, str]:
    when = str(task.get("stopped_at") or task.get("started_at") or task.get("created_at") or "~")
    return when, str(task.get("job_id") or "")


def _known_attempt(value: Any) -> int | None:
    """A task's attempt, or None when the ledger does not know it (0: from the job name)."""
    attempt = _int(value)
    return attempt if attempt is not None and attempt > 0 else None


def _call_label(call: str, task: Mapping[str, Any]) -> str:
    """The call as shown: marked when it is only the Batch job name (Cromwell 91's script prefix,
    until the monitor fills it in from Cromwell's metadata)."""
    return f"{call} (Batch job name)" if task.get("call_source") == CallSource.JOB_NAME else call


def _mapping(value: Any) -> Mapping[str, Any]:
    """A stored map, or an empty one when the item holds something else."""
    return value if isinstance(value, Mapping) else {}


def _run_info(workflow_id: str, run: Mapping[str, Any], event: Mapping[str, Any]) -> RunInfo:
    labels = _mapping(run.get("labels"))
    routing = _mapping(run.get("routing"))
    payload = _mapping(event.get("payload"))
    status = _str(run.get("status")) or _str(payload.get("status")) or ""
    if event.get("kind") == NotificationKind.ENDED and _str(payload.get("status")):
        status = str(payload["status"]).strip()  # written with the terminal transition itself
    if event.get("kind") == NotificationKind.REJECTED:
        status = RunStatus.REJECTED.value
    return RunInfo(
        workflow_id=workflow_id,
        workflow_name=_str(run.get("workflow_name")) or "(unnamed workflow)",
        status=status,
        source_bucket=_str(run.get("source_bucket")),
        inputs_key=_str(run.get("inputs_key")),
        run_folder=_str(run.get("run_folder")),
        requester=_str(run.get("requester")),
        origin=_str(run.get("origin")),
        submitted_at=parse_time(run.get("submitted_at")),
        started_at=parse_time(run.get("started_at")),
        ended_at=parse_time(run.get("ended_at")),
        project=_str(routing.get("project")) or _str(labels.get(LABEL_PROJECT)),
        slack_channel=_str(routing.get("slack_channel")) or _str(labels.get(LABEL_SLACK_CHANNEL)),
        thread_channel=_str(run.get("slack_thread_channel")),
        thread_ts=_str(run.get("slack_thread_ts")),
    )


def _flat_payload(raw: Any) -> dict[str, Any]:
    """An event's payload with the monitor's nested `task` summary lifted to the top level (the
    payload's own keys win)."""
    if not isinstance(raw, Mapping):
        return {}
    task = raw.get("task")
    flat: dict[str, Any] = dict(task) if isinstance(task, Mapping) else {}
    flat.update({k: v for k, v in raw.items() if k != "task" and v is not None})
    return flat


def _run_counts(run: Mapping[str, Any]) -> dict[str, int]:
    counts = {}
    for key, value in run.items():
        if key.startswith("tasks_"):
            number = _int(value)
            if number and number > 0:
                counts[key[len("tasks_") :]] = number
    return counts


@dataclass(frozen=True, slots=True)
class _FailureInfo:
    """What Cromwell's failed-jobs metadata (the run item's `failures`) says about one call."""

    stderr: str | None
    messages: tuple[str, ...]


def _failure_entries(run: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    raw = run.get("failures")
    if not isinstance(raw, list):
        return []
    return [f for f in raw if isinstance(f, Mapping)]


def _messages(entry: Mapping[str, Any]) -> tuple[str, ...]:
    found: list[str] = []

    def walk(node: Any, depth: int) -> None:
        if depth > 4 or len(found) >= 5:
            return
        if isinstance(node, str):
            if node.strip():
                found.append(node)
        elif isinstance(node, Mapping):
            for key in ("message", "status_reason", "error"):
                if isinstance(node.get(key), str):
                    walk(node[key], depth + 1)
            for key in ("causedBy", "caused_by", "failures"):
                walk(node.get(key), depth + 1)
        elif isinstance(node, list):
            for child in node:
                walk(child, depth + 1)

    walk(entry, 0)
    return tuple(clip(one_line(m), _MAX_MESSAGE_CHARS) for m in found)


def _entry_call_key(entry: Mapping[str, Any]) -> tuple[str, int, int] | None:
    call = _str(entry.get("call"))
    if not call:
        return None
    shard = _int(entry.get("shard", entry.get("shardIndex")))
    attempt = _int(entry.get("attempt"))
    return call, -1 if shard is None else shard, 1 if attempt is None else attempt


def _entry_job(entry: Mapping[str, Any]) -> str | None:
    return _str(entry.get("job_id") or entry.get("jobId"))


def _workflow_base(workflow_id: str, run: Mapping[str, Any], entries: list[Mapping[str, Any]]) -> str | None:
    """`s3://.../<wfName>/<wfId>/` of the run, from any S3 path the ledger holds under it."""
    candidates = [run.get("workflow_root"), run.get("workflowRoot")]
    for entry in entries:
        candidates += [entry.get("stderr"), entry.get("callRoot"), entry.get("call_root")]
    first = run.get("first_failure")
    if isinstance(first, Mapping):
        candidates += [first.get("stderr"), first.get("callRoot")]
    marker = f"/{workflow_id}/"
    for value in candidates:
        if isinstance(value, str) and value.startswith("s3://") and marker in value:
            return value[: value.index(marker) + len(marker)]
        if (
            isinstance(value, str)
            and value.startswith("s3://")
            and value.rstrip("/").endswith(f"/{workflow_id}")
        ):
            return value.rstrip("/") + "/"
    return None


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


class ReportBuilder:
    def __init__(
        self,
        ledger: LedgerPort,
        options: ReportOptions,
        *,
        stderr: StderrPort | None = None,
        clock: Any = None,
    ) -> None:
        self.ledger = ledger
        self.options = options
        self.stderr = stderr
        self.clock = clock or (lambda: datetime.now(UTC))

    def build(self, event: Mapping[str, Any]) -> Report:
        workflow_id = str(event.get("workflow_id") or "")
        kind = NotificationKind(str(event.get("kind") or "").split("#", 1)[0])
        run = self.ledger.get_run(workflow_id) or {}
        payload = _flat_payload(event.get("payload"))
        report = Report(
            kind=kind,
            event_sk=str(event.get("sk") or ""),
            run=_run_info(workflow_id, run, event),
            created_at=parse_time(event.get("created_at")) or self.clock(),
            counts=_run_counts(run),
        )
        entries = _failure_entries(run)
        if kind is NotificationKind.REJECTED:
            reasons = payload.get("reasons") or run.get("reasons") or []
            if isinstance(reasons, str) or not isinstance(reasons, Iterable):
                reasons = [reasons]
            report.reasons = [clip(one_line(r), _MAX_MESSAGE_CHARS) for r in reasons if str(r).strip()][:50]
        elif kind is NotificationKind.ENDED:
            self._scan_tasks(report, run, entries)
            self._outputs(report, run)
        elif kind is NotificationKind.EARLY_FAILURE:
            self._first_failure(report, run, payload, entries)
        elif kind in (NotificationKind.STUCK, NotificationKind.QUEUE_BLOCKED):
            report.alert = self._alert(report, payload, str(event.get("sk") or ""))
        return report

    # ENDED: one pass over the tasks
    def _scan_tasks(self, report: Report, run: Mapping[str, Any], entries: list[Mapping[str, Any]]) -> None:
        counts: Counter[str] = Counter()
        causes: Counter[str] = Counter()
        cost = CostEstimate(self.options.prices)
        latest = _Earliest(self.options.max_failed)
        by_job, by_call = self._failure_index(entries)
        failed_total = 0
        for task in self.ledger.iter_tasks(report.run.workflow_id, TASK_ATTRIBUTES):
            status = str(task.get("status") or "UNKNOWN")
            counts[status] += 1
            cost.add(task)
            if status == "FAILED":
                failed_total += 1
                info = self._info_for(task, by_job, by_call)
                causes[self._classify(task, info).kind.value] += 1
                latest.offer(_failure_key(task), task)
        if counts:
            report.counts = dict(counts)
        report.cost = cost
        base = _workflow_base(report.run.workflow_id, run, entries)
        report.failed = [
            self._failed_task(
                report.run.workflow_id, task=t, by_job=by_job, by_call=by_call, base=base, index=i
            )
            for i, t in enumerate(latest.items())
        ]
        report.failed_total = failed_total
        # Cromwell-side failures: entries that name no Batch job and no call with a stderr file.
        errors = []
        for entry in entries:
            if _entry_job(entry) or (_entry_call_key(entry) and entry.get("stderr")):
                continue
            messages = _messages(entry)
            if messages:
                errors.append(messages[0])
        if errors and report.run.status == RunStatus.FAILED:
            causes[FailureKind.CROMWELL_ERROR.value] += len(errors)
        report.cromwell_errors = errors[:_MAX_CROMWELL_ERRORS]
        report.causes = dict(causes)

    def _failure_index(
        self, entries: list[Mapping[str, Any]]
    ) -> tuple[dict[str, _FailureInfo], dict[tuple[str, int, int], _FailureInfo]]:
        by_job: dict[str, _FailureInfo] = {}
        by_call: dict[tuple[str, int, int], _FailureInfo] = {}
        for entry in entries:
            info = _FailureInfo(_str(entry.get("stderr")), _messages(entry))
            job = _entry_job(entry)
            if job:
                by_job[job] = info
            key = _entry_call_key(entry)
            if key:
                by_call[key] = info
        return by_job, by_call

    @staticmethod
    def _info_for(
        task: Mapping[str, Any],
        by_job: Mapping[str, _FailureInfo],
        by_call: Mapping[tuple[str, int, int], _FailureInfo],
    ) -> _FailureInfo | None:
        job = _str(task.get("job_id"))
        if job and job in by_job:
            return by_job[job]
        call = _str(task.get("call"))
        if call:
            shard = _int(task.get("shard"))
            attempt = _int(task.get("attempt"))
            return by_call.get((call, -1 if shard is None else shard, 1 if attempt is None else attempt))
        return None

    @staticmethod
    def _classify(task: Mapping[str, Any], info: _FailureInfo | None) -> Classification:
        return classify(
            status_reason=_str(task.get("status_reason")),
            exit_code=_int(task.get("exit_code")),
            messages=info.messages if info else (),
            has_batch_job=bool(task.get("job_id")),
        )

    def _failed_task(
        self,
        workflow_id: str,
        *,
        task: Mapping[str, Any],
        by_job: Mapping[str, _FailureInfo],
        by_call: Mapping[tuple[str, int, int], _FailureInfo],
        base: str | None,
        index: int,
    ) -> FailedTask:
        info = self._info_for(task, by_job, by_call)
        call = _str(task.get("call")) or "(unknown call)"
        shard = _int(task.get("shard"))
        shard = -1 if shard is None else shard
        attempt = _known_attempt(task.get("attempt"))
        from_job_name = task.get("call_source") == CallSource.JOB_NAME
        if call != "(unknown call)":
            call = _call_label(call, task)
        stderr_uri = info.stderr if info and info.stderr else None
        own_workflow = _str(task.get("workflow_id"))
        if (
            stderr_uri is None
            and base
            and not from_job_name
            and call != "(unknown call)"
            and own_workflow in (None, workflow_id)
        ):
            stderr_uri = derive_stderr_uri(base, call, shard, attempt)
        tail = None
        if stderr_uri and self.stderr and index < self.options.stderr_tasks and self.options.stderr_lines > 0:
            lines = self.stderr.tail(stderr_uri, self.options.stderr_lines)
            tail = tuple(clip(clean_block(line), 500) for line in lines) if lines is not None else None
        return FailedTask(
            job_id=_str(task.get("job_id")),
            call=call,
            shard=shard,
            attempt=attempt,
            exit_code=_int(task.get("exit_code")),
            status_reason=_str(task.get("status_reason")),
            classification=self._classify(task, info),
            queue=_str(task.get("queue")),
            log_group=_str(task.get("log_group")),
            log_stream=_str(task.get("log_stream")),
            stopped_at=parse_time(task.get("stopped_at")),
            stderr_uri=stderr_uri,
            stderr_tail=tail,
            message=info.messages[0] if info and info.messages else None,
        )

    def _first_failure(
        self,
        report: Report,
        run: Mapping[str, Any],
        payload: Mapping[str, Any],
        entries: list[Mapping[str, Any]],
    ) -> None:
        first: dict[str, Any] = {}
        if isinstance(run.get("first_failure"), Mapping):
            first.update(run["first_failure"])
        first.update({k: v for k, v in payload.items() if v is not None})
        job = _str(first.get("job_id"))
        if job:
            task = self.ledger.get_task(report.run.workflow_id, job)
            if task:
                first = {**task, **{k: v for k, v in first.items() if k not in task or task[k] is None}}
        first.setdefault("status", "FAILED")
        by_job, by_call = self._failure_index(entries)
        base = _workflow_base(report.run.workflow_id, run, entries)
        if isinstance(first.get("stderr"), str):
            by_job = {**by_job, job or "": _FailureInfo(first["stderr"], ())}
        report.failed = [
            self._failed_task(
                report.run.workflow_id, task=first, by_job=by_job, by_call=by_call, base=base, index=0
            )
        ]
        report.failed_total = max(1, report.counts.get("FAILED", 0))

    def _alert(self, report: Report, payload: Mapping[str, Any], event_sk: str) -> Alert:
        job = _str(payload.get("job_id")) or (event_sk.split("#", 2)[2] if event_sk.count("#") >= 2 else None)
        task: Mapping[str, Any] = {}
        if job:
            task = self.ledger.get_task(report.run.workflow_id, job) or {}
        merged = {**task, **{k: v for k, v in payload.items() if v is not None}}
        since = (
            parse_time(merged.get("since"))
            or parse_time(merged.get("at"))
            or parse_time(merged.get("updated_at"))
        )
        for_seconds = _float(merged.get("for_seconds") or merged.get("stuck_seconds"))
        if for_seconds is None and since is not None:
            for_seconds = max((report.created_at - since).total_seconds(), 0.0)
        shard = _int(merged.get("shard"))
        call = _str(merged.get("call"))
        return Alert(
            job_id=job,
            call=_call_label(call, task) if call else call,
            shard=-1 if shard is None else shard,
            attempt=_known_attempt(merged.get("attempt")),
            queue=_str(merged.get("queue")),
            task_status=_str(merged.get("task_status") or merged.get("status")),
            since=since,
            for_seconds=for_seconds,
            reason=clip(
                one_line(merged.get("status_reason") or merged.get("reason") or ""), _MAX_MESSAGE_CHARS
            )
            or None,
        )

    def _outputs(self, report: Report, run: Mapping[str, Any]) -> None:
        shown: list[Output] = []
        total = 0
        for name, value in _flatten(run.get("outputs")):
            total += 1
            if len(shown) < self.options.max_outputs:
                shown.append(Output(clip(one_line(name), 200), clip(one_line(value), 1000)))
        report.outputs = shown
        report.outputs_total = max(total, _int(run.get("outputs_count")) or 0)


def _flatten(outputs: Any) -> Iterable[tuple[str, str]]:
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

    if isinstance(outputs, Mapping):
        for key, value in outputs.items():
            yield from walk(str(key), value, 0)
    elif isinstance(outputs, list):
        for i, value in enumerate(outputs):
            yield from walk("" if isinstance(value, Mapping) else f"output[{i}]", value, 0)
