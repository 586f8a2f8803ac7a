"""Wiring: the monitor's domain objects built from clients passed in. Handlers call these once per
container with the real clients; tests call them with moto-backed or fake clients."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from courier.ledger.runs import RunLedger
from courier.ledger.tasks import TaskLedger
from monitor.attribution import Attributor
from monitor.ending import Ender
from monitor.filling import TaskFiller
from monitor.ports import Cromwell, JobTags
from monitor.settings import CallbackSettings, MonitorSettings, ReconcilerSettings
from monitor.sweep import Reconciler
from monitor.tracking import Tracker

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class MonitorService:
    tracker: Tracker
    ender: Ender


@dataclass(frozen=True, slots=True)
class CallbackService:
    ender: Ender
    #: The expected token; read from Secrets Manager once per container in production.
    token: Callable[[], str]
    max_body_bytes: int


def ledgers(
    table: str, dynamodb: DynamoDBClient | Any, retention_days: int, clock: Callable[[], datetime] = _utcnow
) -> tuple[RunLedger, TaskLedger]:
    return (
        RunLedger(table, dynamodb, retention_days=retention_days, clock=clock),
        TaskLedger(table, dynamodb, retention_days=retention_days, clock=clock),
    )


def monitor_service(
    settings: MonitorSettings,
    dynamodb: DynamoDBClient | Any,
    cromwell: Cromwell,
    tags: JobTags | None,
    *,
    clock: Callable[[], datetime] = _utcnow,
) -> MonitorService:
    runs, tasks = ledgers(settings.table_name, dynamodb, settings.retention_days, clock)
    tracker = Tracker(
        tasks, runs, Attributor(tags, tasks), track_all_workflows=settings.track_all_workflows, clock=clock
    )
    return MonitorService(tracker=tracker, ender=_ender(runs, tasks, cromwell, tracker, settings))


def _ender(
    runs: RunLedger,
    tasks: TaskLedger,
    cromwell: Cromwell,
    tracker: Tracker,
    settings: MonitorSettings | CallbackSettings,
) -> Ender:
    """The end of a run, with the filler that completes its tasks from Cromwell's metadata."""
    return Ender(
        runs,
        tasks,
        cromwell,
        track_all_workflows=settings.track_all_workflows,
        filler=TaskFiller(tasks, cromwell, tracker),
    )


def _metadata_tracker(
    runs: RunLedger, tasks: TaskLedger, track_all: bool, clock: Callable[[], datetime]
) -> Tracker:
    """A tracker that ties jobs from Cromwell's metadata only: it reads no Batch tags."""
    return Tracker(tasks, runs, Attributor(None, tasks), track_all_workflows=track_all, clock=clock)


def callback_service(
    settings: CallbackSettings,
    dynamodb: DynamoDBClient | Any,
    cromwell: Cromwell,
    token: Callable[[], str],
    *,
    clock: Callable[[], datetime] = _utcnow,
) -> CallbackService:
    runs, tasks = ledgers(settings.table_name, dynamodb, settings.retention_days, clock)
    tracker = _metadata_tracker(runs, tasks, settings.track_all_workflows, clock)
    ender = _ender(runs, tasks, cromwell, tracker, settings)
    return CallbackService(ender=ender, token=token, max_body_bytes=settings.max_body_bytes)


def reconciler(
    settings: ReconcilerSettings,
    dynamodb: DynamoDBClient | Any,
    cromwell: Cromwell,
    *,
    clock: Callable[[], datetime] = _utcnow,
) -> Reconciler:
    runs, tasks = ledgers(settings.table_name, dynamodb, settings.retention_days, clock)
    tracker = _metadata_tracker(runs, tasks, settings.track_all_workflows, clock)
    ender = _ender(runs, tasks, cromwell, tracker, settings)
    return Reconciler(
        runs,
        tasks,
        cromwell,
        ender,
        tracker,
        track_all_workflows=settings.track_all_workflows,
        stuck_after=timedelta(minutes=settings.stuck_after_minutes),
        clock=clock,
        max_metadata_calls=settings.max_metadata_calls,
        max_unattributed=settings.max_unattributed,
    )
