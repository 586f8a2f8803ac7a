"""The monitor's three functions put together, in one place: settings, clients, ledgers, the
domain objects over them.

One `compose_*` per entry point. The Lambda handlers call them once per container (settings from
the environment, clients from `courier.clients`); the local stack, the test harnesses and the
benchmarks call them with their own environment or settings and clients (moto, a fake or local
Cromwell, fake Batch tags) and, where a test needs it, their own clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from courier import clients
from courier.batch import JobTagReader
from courier.ledger.folders import FolderWindows
from courier.ledger.runs import RunLedger
from courier.ledger.tasks import TaskLedger
from courier.secrets import SecretReader
from courier.settings import load_settings
from monitor.attribution import Attributor
from monitor.ending import Ender
from monitor.filling import TaskFiller
from monitor.ports import Cromwell, FolderWindowBook, JobTags, RunBook, TaskBook
from monitor.settings import CallbackSettings, CromwellSettings, MonitorSettings, ReconcilerSettings
from monitor.sweep import Reconciler
from monitor.tracking import Tracker

Clock = Callable[[], datetime]
#: The run ledger and the task ledger the domain objects write to.
Ledger = tuple[RunBook, TaskBook]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class MonitorService:
    """What the Batch-events function works with."""

    tracker: Tracker
    ender: Ender


@dataclass(frozen=True, slots=True)
class CallbackService:
    """What the callback function works with."""

    ender: Ender
    #: The expected token; read from Secrets Manager once per container in production.
    token: Callable[[], str]
    max_body_bytes: int


def compose_batch_events(
    settings: MonitorSettings | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    dynamodb: Any = None,
    cromwell: Cromwell | None = None,
    tags: JobTags | None = None,
    secrets: SecretReader | None = None,
    ledger: Ledger | None = None,
    clock: Clock = _utcnow,
) -> MonitorService:
    """MonitorFunction (Batch events from SQS): a tracker that ties jobs through their Batch tags
    (`tags`, default read with the container's Batch client) and the ender of path 3.

    Every `compose_*` takes the same keywords: `settings` default: loaded from `environ`
    (default: the process environment); clients not given are the container's
    (`courier.clients`), the Cromwell one verifying TLS against the configured CA bundle read
    through `secrets`; `ledger` (runs, tasks) stands in for the DynamoDB ledgers (unit tests
    pass fakes)."""
    settings = settings or load_settings(MonitorSettings, environ)
    runs, tasks = ledger or ledgers(settings, dynamodb, clock)
    job_tags = tags if tags is not None else JobTagReader(clients.aws("batch"))
    tracker = Tracker(
        tasks,
        runs,
        Attributor(job_tags, tasks),
        track_all_workflows=settings.track_all_workflows,
        clock=clock,
    )
    ender = _ender(runs, tasks, _cromwell(settings, cromwell, secrets), tracker, settings, clock=clock)
    return MonitorService(tracker=tracker, ender=ender)


def compose_callback(
    settings: CallbackSettings | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    dynamodb: Any = None,
    cromwell: Cromwell | None = None,
    token: Callable[[], str] | None = None,
    secrets: SecretReader | None = None,
    ledger: Ledger | None = None,
    clock: Clock = _utcnow,
) -> CallbackService:
    """CallbackFunction (Cromwell's callback through a function URL). `token` default: the
    secret the settings name, read through `secrets` (default: the container's reader)."""
    settings = settings or load_settings(CallbackSettings, environ)
    runs, tasks = ledger or ledgers(settings, dynamodb, clock)
    tracker = _metadata_tracker(runs, tasks, settings.track_all_workflows, clock)
    ender = _ender(runs, tasks, _cromwell(settings, cromwell, secrets), tracker, settings, clock=clock)
    if token is None:
        reference = settings.token_reference

        def token() -> str:
            return (secrets or clients.secret_reader()).require(reference).reveal()

    return CallbackService(ender=ender, token=token, max_body_bytes=settings.max_body_bytes)


def compose_reconciler(
    settings: ReconcilerSettings | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    dynamodb: Any = None,
    cromwell: Cromwell | None = None,
    secrets: SecretReader | None = None,
    ledger: Ledger | None = None,
    windows: FolderWindowBook | None = None,
    clock: Clock = _utcnow,
) -> Reconciler:
    """ReconcilerFunction (the scheduled sweep). `windows` default: the folder windows of the
    ledger table (none when `ledger` stands in for the ledgers)."""
    settings = settings or load_settings(ReconcilerSettings, environ)
    runs: RunBook
    tasks: TaskBook
    if ledger is None:
        client = dynamodb if dynamodb is not None else clients.dynamodb()
        runs, tasks = ledgers(settings, client, clock)
        windows = windows or FolderWindows(
            settings.table_name, client, retention_days=settings.retention_days, clock=clock
        )
    else:
        runs, tasks = ledger
    client = _cromwell(settings, cromwell, secrets)
    tracker = _metadata_tracker(runs, tasks, settings.track_all_workflows, clock)
    ender = _ender(runs, tasks, client, tracker, settings, clock=clock)
    return Reconciler(
        runs,
        tasks,
        client,
        ender,
        tracker,
        track_all_workflows=settings.track_all_workflows,
        stuck_after=timedelta(minutes=settings.stuck_after_minutes),
        clock=clock,
        max_metadata_calls=settings.max_metadata_calls,
        max_unattributed=settings.max_unattributed,
        windows=windows,
    )


def ledgers(
    settings: CromwellSettings, dynamodb: Any = None, clock: Clock = _utcnow
) -> tuple[RunLedger, TaskLedger]:
    """The run and task ledgers over one client (default: the container's)."""
    client = dynamodb if dynamodb is not None else clients.dynamodb()
    return (
        RunLedger(settings.table_name, client, retention_days=settings.retention_days, clock=clock),
        TaskLedger(settings.table_name, client, retention_days=settings.retention_days, clock=clock),
    )


def _cromwell(settings: CromwellSettings, given: Cromwell | None, secrets: SecretReader | None) -> Cromwell:
    if given is not None:
        return given
    return clients.cromwell(
        settings.cromwell_url,
        settings.cromwell_ca_bundle,
        max_attempts=settings.cromwell_max_attempts,
        auth_secret=settings.cromwell_auth_secret,
        secrets=secrets,
    )


def _ender(
    runs: RunBook,
    tasks: TaskBook,
    cromwell: Cromwell,
    tracker: Tracker,
    settings: MonitorSettings | CallbackSettings,
    *,
    clock: Clock,
) -> Ender:
    """The end of a run, with the filler that completes its tasks from Cromwell's metadata."""
    return Ender(
        runs,
        tasks,
        cromwell,
        track_all_workflows=settings.track_all_workflows,
        filler=TaskFiller(tasks, cromwell, tracker),
        clock=clock,
    )


def _metadata_tracker(runs: RunBook, tasks: TaskBook, track_all: bool, clock: Clock) -> Tracker:
    """A tracker that ties jobs from Cromwell's metadata only: it reads no Batch tags."""
    return Tracker(tasks, runs, Attributor(None, tasks), track_all_workflows=track_all, clock=clock)
