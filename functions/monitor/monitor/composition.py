"""The monitor's three functions put together, in one place: settings, clients, ledgers, the
domain objects over them.

One `compose_*` per entry point. The Lambda handlers call them once per container (settings from
the environment, clients from `courier.clients`); the local stack, the test harnesses and the
benchmarks call them with their own environment or settings and clients (moto, a fake or local
Cromwell, fake Batch tags) and, where a test needs it, their own clock.

The Batch-events function never calls Cromwell: `compose_batch_events` builds no Cromwell client,
and this module imports the reconciler's and the end's domain objects only in the functions that
put those together, so the Batch-events function's cold start loads neither them nor `requests`
(`courier.clients` imports the Cromwell client when one is built).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from courier import clients
from courier.batch import JobTagReader
from courier.ledger.runs import RunLedger
from courier.ledger.tasks import TaskLedger
from courier.settings import BaseSettings, load_settings
from monitor.asking import EndCheckRequests
from monitor.attribution import Attributor
from monitor.ports import Cromwell, FolderWindowBook, JobTags, RunBook, TaskBook
from monitor.settings import CallbackSettings, CromwellSettings, MonitorSettings, ReconcilerSettings
from monitor.tracking import Tracker

if TYPE_CHECKING:
    from courier.secrets import SecretReader
    from monitor.ending import Ender
    from monitor.sweep import Reconciler

Clock = Callable[[], datetime]
#: The run ledger and the task ledger the domain objects write to.
Ledger = tuple[RunBook, TaskBook]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class MonitorService:
    """What the Batch-events function works with."""

    tracker: Tracker
    end_checks: EndCheckRequests


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
    tags: JobTags | None = None,
    ledger: Ledger | None = None,
    clock: Clock = _utcnow,
) -> MonitorService:
    """MonitorFunction (Batch events from SQS): a tracker that ties jobs through their Batch tags
    (`tags`, default read with the container's Batch client) and the end-check requests of a
    run's end path 3. No Cromwell client: nothing here asks Cromwell.

    Every `compose_*` takes these keywords: `settings` default: loaded from `environ`
    (default: the process environment); clients not given are the container's
    (`courier.clients`); `ledger` (runs, tasks) stands in for the DynamoDB ledgers (unit tests
    pass fakes). The callback and the reconciler also take `cromwell` (default: the container's
    client, verifying TLS against the configured CA bundle read through `secrets`)."""
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
    return MonitorService(tracker=tracker, end_checks=EndCheckRequests(tasks, runs, clock=clock))


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
    from courier.ledger.folders import FolderWindows  # noqa: PLC0415  # not in the Batch-events function
    from monitor.sweep import Reconciler  # noqa: PLC0415  # not in the Batch-events function

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
    settings: BaseSettings, dynamodb: Any = None, clock: Clock = _utcnow
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
    settings: ReconcilerSettings | CallbackSettings,
    *,
    clock: Clock,
) -> Ender:
    """The end of a run, with the filler that completes its tasks from Cromwell's metadata."""
    from monitor.ending import Ender  # noqa: PLC0415  # not in the Batch-events function
    from monitor.filling import TaskFiller  # noqa: PLC0415

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
