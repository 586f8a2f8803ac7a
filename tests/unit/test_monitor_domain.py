"""The monitor's domain objects (tracker, ender, filler, reconciler) over the fake ledger of
`tests.support.monitor_fakes`: what they decide to write, without DynamoDB. The same behaviour
against moto, with the real expressions, is in tests/integration/test_monitor_*.py."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from courier.errors import CromwellUnavailable
from courier.ledger.records import QueueBlockedPayload, StuckPayload
from courier.models import RunStatus
from monitor.composition import MonitorService, compose_batch_events, compose_callback, compose_reconciler
from monitor.end_report import FAILURE_KEYS
from monitor.ending import CallbackData, EndOutcome, EndSource
from monitor.events import parse_event
from monitor.settings import CallbackSettings, MonitorSettings, ReconcilerSettings
from monitor.sweep import Reconciler
from monitor.tracking import TrackOutcome
from tests.support.monitor_fakes import FakeLedger
from tests.support.monitor_fixtures import T0, FakeCromwell, FakeTags, Job, lifecycle

ROOT = "0f8fad5b-d9cb-469f-a165-70867728950e"
ENV = {"LEDGER_TABLE": "courier-ledger", "CROMWELL_URL": "http://cromwell:8000", "STUCK_AFTER_MINUTES": "30"}


def monitor(ledger: FakeLedger, **env: str) -> MonitorService:
    settings = MonitorSettings.model_validate({**ENV, **env})
    return compose_batch_events(settings, tags=FakeTags(), ledger=(ledger, ledger), clock=lambda: T0)


def reconciler(ledger: FakeLedger, cromwell: FakeCromwell, minutes: int = 0) -> Reconciler:
    now = T0 + timedelta(minutes=minutes)
    ledger.clock = lambda: now
    settings = ReconcilerSettings.model_validate(ENV)
    return compose_reconciler(settings, cromwell=cromwell, ledger=(ledger, ledger), clock=lambda: now)


def track(service: MonitorService, *events: dict[str, Any]) -> list[TrackOutcome]:
    return [service.tracker.track(parse_event(event)).outcome for event in events]


def test_a_job_lifecycle_is_counted_once_whatever_the_order_and_the_repeats() -> None:
    ledger = FakeLedger()
    ledger.add_run(ROOT)
    events = lifecycle(Job("wf.align", ROOT, shard=1))
    first, second = monitor(ledger), monitor(ledger)  # two containers, each with its caches
    assert track(first, *events[:3]) == [TrackOutcome.RECORDED] * 3
    assert track(second, events[1], events[4], events[3]) == [
        TrackOutcome.DUPLICATE,
        TrackOutcome.RECORDED,
        TrackOutcome.DUPLICATE,
    ]
    assert track(first, events[3]) == [TrackOutcome.DUPLICATE]  # its cached belief was stale
    counts = ledger.run_counts(ROOT)
    assert dict(counts.counts) == {"SUCCEEDED": 1}
    assert counts.status is RunStatus.RUNNING  # the job reached RUNNING (its terminal event started)


def test_a_run_the_ledger_does_not_know_is_left_alone_unless_all_are_tracked() -> None:
    ledger = FakeLedger()
    event = Job("wf.t", ROOT).event("RUNNING")
    assert track(monitor(ledger), event) == [TrackOutcome.UNTRACKED]
    assert ledger.runs == {}
    assert track(monitor(ledger, TRACK_ALL_WORKFLOWS="true"), event) == [TrackOutcome.RECORDED]
    assert ledger.runs[ROOT].origin == "adopted"
    assert ledger.runs[ROOT].status is RunStatus.RUNNING


def test_the_first_failure_alerts_once() -> None:
    ledger = FakeLedger()
    ledger.add_run(ROOT, RunStatus.RUNNING)
    service = monitor(ledger)
    track(service, Job("wf.a", ROOT).event("FAILED", exit_code=3), Job("wf.b", ROOT).event("FAILED"))
    assert ledger.event_keys(ROOT) == ["EVENT#EARLY_FAILURE#first"]
    assert ledger.runs[ROOT].first_failure is not None
    assert ledger.runs[ROOT].first_failure.call == "wf.a"


def test_a_blocked_queue_alerts_once_per_batch_attempt() -> None:
    ledger = FakeLedger()
    ledger.add_run(ROOT, RunStatus.RUNNING)
    job = Job("wf.t", ROOT)
    blocked = "Batch Job Queue Blocked"
    at = T0 + timedelta(minutes=5)
    service = monitor(ledger)
    assert service.tracker.track(parse_event(job.event("RUNNABLE", kind=blocked, at=at))).alerted
    assert not service.tracker.track(parse_event(job.event("RUNNABLE", kind=blocked, at=at))).alerted
    assert service.tracker.track(parse_event(job.event("RUNNABLE", kind=blocked, batch_attempts=1))).alerted
    assert ledger.event_keys(ROOT) == [
        f"EVENT#QUEUE_BLOCKED#{job.job_id}",
        f"EVENT#QUEUE_BLOCKED#{job.job_id}#1",
    ]
    payload = ledger.events[(ROOT, f"EVENT#QUEUE_BLOCKED#{job.job_id}")]
    assert isinstance(payload, QueueBlockedPayload)
    assert (payload.job_id, payload.call, payload.runnable_seconds, payload.at) == (
        job.job_id,
        "wf.t",
        300,
        at,
    )


def test_a_stuck_task_alerts_once_per_runnable_period() -> None:
    ledger = FakeLedger()
    ledger.add_run(ROOT, RunStatus.RUNNING)
    cromwell = FakeCromwell()
    cromwell.status_of[ROOT] = "Running"
    job = Job("wf.t", ROOT, shard=4)
    track(monitor(ledger), job.event("RUNNABLE"))
    assert reconciler(ledger, cromwell, minutes=10).sweep().stuck_alerts == 0  # not long enough
    assert reconciler(ledger, cromwell, minutes=45).sweep().stuck_alerts == 1
    assert reconciler(ledger, cromwell, minutes=90).sweep().stuck_alerts == 0  # same period
    payload = ledger.events[(ROOT, f"EVENT#STUCK#{job.job_id}")]
    assert isinstance(payload, StuckPayload)
    assert (payload.shard, payload.runnable_since, payload.runnable_seconds) == (4, T0, 45 * 60)
    # A Batch retry: RUNNING, then RUNNABLE again with one attempt behind it.
    later = T0 + timedelta(minutes=100)
    track(monitor(ledger), job.event("RUNNING", at=later), job.event("RUNNABLE", at=later, batch_attempts=1))
    assert reconciler(ledger, cromwell, minutes=140).sweep().stuck_alerts == 1
    assert f"EVENT#STUCK#{job.job_id}#1" in ledger.event_keys(ROOT)


def test_the_end_fills_in_job_name_tasks_with_one_metadata_call() -> None:
    ledger = FakeLedger()
    ledger.add_run(ROOT, RunStatus.RUNNING)
    cromwell = FakeCromwell()
    job = Job("wf.t", ROOT, generation=91)  # script prefix: the run is known, the call only by name
    track(monitor(ledger), job.event("RUNNING"))
    assert ledger.job_name_tasks(ROOT) == [job.job_id]
    cromwell.metadata_of[ROOT] = {
        "id": ROOT,
        "calls": {"wf.t": [{"jobId": job.job_id, "shardIndex": 2, "attempt": 1}]},
    }
    settings = CallbackSettings.model_validate({**ENV, "CALLBACK_TOKEN_SECRET": "arn:x"})
    callback = compose_callback(settings, cromwell=cromwell, token=lambda: "t", ledger=(ledger, ledger))
    outcome = callback.ender.end(
        ROOT, RunStatus.SUCCEEDED, source=EndSource.CALLBACK, callback=CallbackData(outputs={}, failures=[])
    )
    assert outcome is EndOutcome.ENDED
    task = ledger.tasks[(ROOT, job.job_id)].write
    assert (task.call, task.shard, task.attempt) == ("wf.t", 2, 1)
    assert cromwell.count("metadata") == 1
    again = callback.ender.end(ROOT, RunStatus.SUCCEEDED, source=EndSource.RECONCILER)
    assert again is EndOutcome.ALREADY_ENDED
    assert cromwell.count("metadata") == 1  # nothing filled twice, nothing asked twice


def test_a_failed_run_keeps_bounded_failure_entries() -> None:
    ledger = FakeLedger()
    ledger.add_run(ROOT, RunStatus.RUNNING, submitted_at=T0)
    cromwell = FakeCromwell()
    cromwell.status_of[ROOT] = "Failed"
    # what /metadata answers filtered with FAILURE_KEYS: every call, the failed ones picked out
    cromwell.metadata_of[ROOT] = {
        "id": ROOT,
        "failures": [{"message": "Workflow failed"}],
        "calls": {
            "wf.t": [
                {"executionStatus": "Done", "shardIndex": 2, "attempt": 1, "jobId": "j2", "returnCode": 0},
                {
                    "executionStatus": "Failed",
                    "shardIndex": 3,
                    "attempt": 2,
                    "jobId": "j3",
                    "returnCode": 1,
                    "failures": [{"message": "boom", "causedBy": [{"message": "disk full"}]}],
                },
            ]
        },
    }
    # silent for longer than AskPolicy.idle_after: the run is asked about
    assert reconciler(ledger, cromwell, minutes=20).sweep().ended == 1
    (asked,) = [args for call, args in cromwell.calls if call == "metadata"]
    assert asked == (ROOT, FAILURE_KEYS, ())  # one filtered call, and no failed-jobs call
    assert cromwell.count("failed_jobs") == 0
    run = ledger.runs[ROOT]
    assert (run.status, run.ended_by) == (RunStatus.FAILED, "reconciler")
    assert run.report["failures"] == [
        {
            "call": "wf.t",
            "workflow_id": ROOT,
            "shard": 3,
            "attempt": 2,
            "job_id": "j3",
            "return_code": 1,
            "status": "Failed",
            "message": "boom | disk full",
        }
    ]
    assert run.report["failures_count"] == 1
    assert run.report["workflow_failures"] == ["Workflow failed"]
    assert ledger.event_keys(ROOT) == ["EVENT#ENDED"]


def _failed_call(shard: int, status: str = "Failed") -> dict[str, Any]:
    root = f"s3://cromwell/wf/{ROOT}/call-t/shard-{shard}"
    entry: dict[str, Any] = {
        "executionStatus": status,
        "shardIndex": shard,
        "attempt": 1,
        "jobId": f"j{shard}",
        "returnCode": 0 if status == "Done" else 3,
        "stderr": f"{root}/t-{shard}-stderr.log",
        "logConfig:logGroupName": "/aws/batch/job",
        "logConfig:logStreamName": f"cromwell/default/j{shard}",
    }
    if status == "Failed":
        entry["failures"] = [{"message": "Job wf.t:5:1 exited with return code 3", "causedBy": []}]
    return entry


def test_a_failed_run_reports_the_same_failures_with_or_without_the_callback() -> None:
    """Without the callback, one /metadata call filtered with FAILURE_KEYS; with it, failed-jobs
    beside the body's failures: the same failing task, reason and log either way."""
    top = [{"message": "Workflow failed", "causedBy": [{"message": "Job wf.t:5:1 exited"}]}]
    every_call = {"id": ROOT, "failures": top, "calls": {"wf.t": [_failed_call(4, "Done"), _failed_call(5)]}}
    failed_only = {"id": ROOT, "calls": {"wf.t": [_failed_call(5)]}}
    reports = {}
    for with_callback in (False, True):
        ledger = FakeLedger()
        ledger.add_run(ROOT, RunStatus.RUNNING, submitted_at=T0)
        cromwell = FakeCromwell()
        cromwell.status_of[ROOT] = "Failed"
        cromwell.metadata_of[ROOT] = every_call
        cromwell.failed_of[ROOT] = failed_only
        settings = CallbackSettings.model_validate({**ENV, "CALLBACK_TOKEN_SECRET": "arn:x"})
        service = compose_callback(settings, cromwell=cromwell, token=lambda: "t", ledger=(ledger, ledger))
        ender = service.ender
        body = CallbackData(outputs={}, failures=top) if with_callback else None
        source = EndSource.CALLBACK if with_callback else EndSource.RECONCILER
        assert ender.end(ROOT, RunStatus.FAILED, source=source, callback=body) is EndOutcome.ENDED
        assert [call for call, _ in cromwell.calls] == (["failed_jobs"] if with_callback else ["metadata"])
        reports[with_callback] = ledger.runs[ROOT].report
    assert reports[False] == reports[True]
    (entry,) = reports[False]["failures"]
    assert entry == {
        "call": "wf.t",
        "workflow_id": ROOT,
        "shard": 5,
        "attempt": 1,
        "job_id": "j5",
        "return_code": 3,
        "status": "Failed",
        "message": "Job wf.t:5:1 exited with return code 3",
        "stderr": f"s3://cromwell/wf/{ROOT}/call-t/shard-5/t-5-stderr.log",
        "log_group": "/aws/batch/job",
        "log_stream": "cromwell/default/j5",
    }
    assert reports[False]["workflow_failures"] == ["Workflow failed", "Job wf.t:5:1 exited"]


def refusing_failure_metadata(http_status: int) -> FakeCromwell:
    """Cromwell answering the end report's filtered metadata with an error after retries."""
    cromwell = FakeCromwell()
    message = f"Metadata for workflow {ROOT} exists in database but cannot be served"
    cromwell.metadata_errors[FAILURE_KEYS] = CromwellUnavailable(message, http_status=http_status)
    return cromwell


def test_failure_metadata_too_large_for_cromwell_falls_back_to_the_failed_jobs() -> None:
    ledger = FakeLedger()
    ledger.add_run(ROOT, RunStatus.RUNNING, submitted_at=T0)
    cromwell = refusing_failure_metadata(500)
    cromwell.failed_of[ROOT] = {"id": ROOT, "calls": {"wf.t": [_failed_call(5)]}}
    cromwell.metadata_of[ROOT] = {"id": ROOT, "failures": [{"message": "Workflow failed"}]}
    settings = CallbackSettings.model_validate({**ENV, "CALLBACK_TOKEN_SECRET": "arn:x"})
    ender = compose_callback(settings, cromwell=cromwell, token=lambda: "t", ledger=(ledger, ledger)).ender

    assert ender.end(ROOT, RunStatus.FAILED, source=EndSource.RECONCILER) is EndOutcome.ENDED

    assert [call for call, _ in cromwell.calls] == ["metadata", "failed_jobs", "metadata"]
    report = ledger.runs[ROOT].report
    assert [(f["call"], f["job_id"]) for f in report["failures"]] == [("wf.t", "j5")]
    assert report["workflow_failures"] == ["Workflow failed"]


def test_failure_metadata_with_cromwell_unreachable_ends_nothing_and_is_asked_again() -> None:
    ledger = FakeLedger()
    ledger.add_run(ROOT, RunStatus.RUNNING, submitted_at=T0)
    cromwell = refusing_failure_metadata(503)
    settings = CallbackSettings.model_validate({**ENV, "CALLBACK_TOKEN_SECRET": "arn:x"})
    ender = compose_callback(settings, cromwell=cromwell, token=lambda: "t", ledger=(ledger, ledger)).ender

    with pytest.raises(CromwellUnavailable):
        ender.end(ROOT, RunStatus.FAILED, source=EndSource.RECONCILER)

    assert [call for call, _ in cromwell.calls] == ["metadata"]
    assert ledger.runs[ROOT].status is RunStatus.RUNNING


def test_a_job_without_tags_is_tied_by_the_reconciler_and_later_events_follow_it() -> None:
    ledger = FakeLedger()
    ledger.add_run(ROOT, RunStatus.RUNNING, workflow_name="wf")
    cromwell = FakeCromwell()
    cromwell.status_of[ROOT] = "Running"
    job = Job("wf.t", ROOT, generation=85)  # no tags, no script prefix
    service = monitor(ledger)
    assert track(service, job.event("RUNNING")) == [TrackOutcome.UNATTRIBUTED]
    cromwell.metadata_of[ROOT] = {
        "id": ROOT,
        "calls": {"wf.t": [{"jobId": job.job_id, "shardIndex": -1, "attempt": 1}]},
    }
    assert reconciler(ledger, cromwell).sweep().attributed == 1
    assert ledger.unattributed[job.job_id].attributed_to == ROOT
    assert track(monitor(ledger), job.event("SUCCEEDED")) == [TrackOutcome.RECORDED]
    assert dict(ledger.run_counts(ROOT).counts) == {"SUCCEEDED": 1}


def wid(n: int) -> str:
    return str(uuid.UUID(int=n + 1))


def test_a_thousand_active_runs_cost_ten_query_calls() -> None:
    ledger = FakeLedger()
    cromwell = FakeCromwell()
    for n in range(1000):
        ledger.add_run(wid(n), submitted_at=T0)
        cromwell.status_of[wid(n)] = "Running"
    cromwell.status_of[wid(3)] = "Succeeded"
    cromwell.status_of[wid(4)] = "Aborted"  # aborted while queued: no Batch job, no callback
    cromwell.status_of[wid(5)] = "Failed"
    cromwell.status_of.pop(wid(6))  # not visible yet (early 404)
    assert reconciler(ledger, cromwell).sweep().asked == 0  # just submitted: nothing to ask yet
    assert cromwell.count("query") == 0
    # Silent for longer than AskPolicy.idle_after: every run is due, in one /query per 100 ids.
    sweep = reconciler(ledger, cromwell, minutes=20)
    report = sweep.sweep()
    assert report.active == 1000
    assert report.asked == 1000
    assert cromwell.count("query") == 10
    assert report.ended == 3
    assert report.advanced == 996
    assert report.unknown_to_cromwell == 1
    assert [ledger.runs[wid(n)].status.value for n in (3, 4, 5, 6, 7)] == [
        "Succeeded",
        "Aborted",
        "Failed",
        "Submitted",
        "Running",
    ]
    # Report data only for the ended runs, with filtered requests only.
    assert cromwell.count("outputs") == 1
    assert cromwell.count("failed_jobs") == 0
    assert cromwell.count("metadata") == 1  # the Failed run's failures and failed calls at once
    second = sweep.sweep()
    assert second.active == 997
    assert second.ended == 0
    assert second.advanced == 0
    assert second.asked == 0  # asked a moment ago and still going: the next ask waits longer
    assert cromwell.count("query") == 10


class Windows:
    """Folder windows that close at given times; one fails to close."""

    def __init__(self, closes: dict[str, Any], failing: str = "") -> None:
        self.closes = closes
        self.failing = failing
        self.closed: list[str] = []

    def due(self, now: Any, limit: int = 100) -> list[str]:
        return [b for b, at in self.closes.items() if at <= now and b not in self.closed][:limit]

    def close(self, batch_id: str) -> bool:
        if batch_id == self.failing:
            raise RuntimeError("throttled")
        self.closed.append(batch_id)
        return True


def test_the_sweep_closes_the_folder_windows_that_are_due_without_asking_cromwell() -> None:
    ledger = FakeLedger()
    cromwell = FakeCromwell()
    windows = Windows(
        {"b-due": T0 + timedelta(minutes=4), "b-later": T0 + timedelta(minutes=9), "b-bad": T0},
        failing="b-bad",
    )
    now = T0 + timedelta(minutes=5)
    ledger.clock = lambda: now
    settings = ReconcilerSettings.model_validate(ENV)
    sweep = compose_reconciler(
        settings, cromwell=cromwell, ledger=(ledger, ledger), windows=windows, clock=lambda: now
    )
    report = sweep.sweep()
    assert windows.closed == ["b-due"]
    assert report.windows_closed == 1
    assert report.errors == ["folder batch b-bad: window not closed: throttled"]
    assert cromwell.count("query") == 0
    assert sweep.sweep().windows_closed == 0  # closed already
