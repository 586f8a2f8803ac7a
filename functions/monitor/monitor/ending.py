"""The end of a run. Three paths may arrive first, in any order, any number of times:

1. Cromwell's completion callback (`monitor.callback`),
2. the reconciler's /query sweep (`monitor.sweep`),
3. a terminal Batch event after which the run's counts show no unfinished task: the Batch-events
   function asks for an end check `AskPolicy.end_check_delay` later
   (`monitor.asking.EndCheckRequests`), which the reconciler's sweep makes only if no newer task
   has appeared and the run has not ended by then.

Each goes through `Ender.end`, which reads the run once, fills in the tasks the events could not
describe (`monitor.filling`: script-prefix tasks, jobs not tied yet), gathers the report data from Cromwell
with one filtered request at most (`/outputs` of a Succeeded run without the callback's outputs;
for a Failed run `/metadata/failed-jobs` beside the callback's failures, else one `/metadata` with
includeKey `FAILURE_KEYS`) and writes the terminal status with `RunLedger.finish`, whose condition
(`status_rank < 9`) lets exactly one writer through and inserts the ENDED outbox event with it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from courier.errors import CromwellError, CromwellUnavailable
from courier.ledger.task_types import RunCounts
from courier.models import RunStatus
from courier.observability import logger, metrics
from monitor.end_report import (
    FAILURE_KEYS,
    ReportLimits,
    bound_failures,
    bound_outputs,
    bound_workflow_failures,
    iter_failed_calls,
)
from monitor.filling import TaskFiller
from monitor.ports import Cromwell, RunBook, TaskBook


class EndSource(StrEnum):
    CALLBACK = "callback"
    RECONCILER = "reconciler"
    BATCH_EVENT = "batch-event"
    END_CHECK = "end-check"


class EndOutcome(StrEnum):
    ENDED = "ended"
    ALREADY_ENDED = "already-ended"
    UNTRACKED = "untracked"
    STILL_RUNNING = "still-running"
    NOT_VISIBLE = "not-visible"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class CallbackData:
    """What Cromwell's callback body carried (already validated)."""

    outputs: Mapping[str, Any]
    failures: Sequence[Any]


class Ender:
    def __init__(
        self,
        runs: RunBook,
        tasks: TaskBook,
        cromwell: Cromwell,
        *,
        track_all_workflows: bool,
        limits: ReportLimits | None = None,
        filler: TaskFiller | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.runs = runs
        self.clock = clock
        self.filler = filler
        self.tasks = tasks
        self.cromwell = cromwell
        self.track_all = track_all_workflows
        self.limits = limits or ReportLimits()
        self.cromwell_calls = 0

    def end(
        self,
        workflow_id: str,
        status: RunStatus,
        *,
        source: EndSource,
        callback: CallbackData | None = None,
        known: RunCounts | None = None,
        ended_at: datetime | None = None,
    ) -> EndOutcome:
        """Write the terminal status once. Raises CromwellUnavailable only when the report data
        could not be read and no callback body can stand in (the caller tries again later)."""
        if not status.terminal:
            raise ValueError(f"{status} is not terminal")
        counts = known or self.tasks.run_counts(workflow_id)
        if counts.exists and counts.status_rank >= RunStatus.SUCCEEDED.rank:
            return EndOutcome.ALREADY_ENDED
        if not counts.exists and not self.track_all:
            return EndOutcome.UNTRACKED
        if self.filler is not None:
            filled = self.filler.fill(workflow_id)
            self.cromwell_calls += filled.cromwell_calls
            if filled.filled or filled.tied:
                logger.info(
                    "tasks filled in from Cromwell's metadata",
                    extra={"workflow_id": workflow_id, "filled": filled.filled, "tied": filled.tied},
                )
        report = self.report(workflow_id, status, callback)
        if self.runs.finish(workflow_id, status, report=report, ended_at=ended_at, source=source.value):
            logger.info(
                "run ended", extra={"workflow_id": workflow_id, "status": status.value, "by": source.value}
            )
            # beside submit's RunsSubmitted and RunsRejected: runs by status over time
            metrics.add_metric(name=f"Runs{status.value}", unit=MetricUnit.Count, value=1)
            return EndOutcome.ENDED
        return EndOutcome.ALREADY_ENDED

    # -- report --------------------------------------------------------------------------------

    def report(self, workflow_id: str, status: RunStatus, callback: CallbackData | None) -> dict[str, Any]:
        report: dict[str, Any] = {}
        problems: list[str] = []
        if status is RunStatus.SUCCEEDED:
            outputs: Mapping[str, Any] | None = callback.outputs if callback is not None else None
            if outputs is None:
                outputs = self._ask(lambda: self.cromwell.outputs(workflow_id), problems, callback)
            report.update(bound_outputs(outputs or {}, self.limits))
        elif status is RunStatus.FAILED:
            if callback is not None:
                # the body carries the workflow's failures; the failed calls alone are smaller
                failed = self._ask(lambda: self.cromwell.failed_jobs(workflow_id), problems, callback)
                top: Any = list(callback.failures)
            else:
                failed = self._failure_metadata(workflow_id, problems)
                top = (failed or {}).get("failures")
            report.update(bound_failures(iter_failed_calls(failed or {}), self.limits))
            report["workflow_failures"] = bound_workflow_failures(top, self.limits)
        if problems:
            report["report_problems"] = problems
        return report

    def _failure_metadata(self, workflow_id: str, problems: list[str]) -> Mapping[str, Any] | None:
        """What a Failed run's report needs, without the callback: one `/metadata` call filtered
        with `FAILURE_KEYS` (the workflow's failures and every call's end). When Cromwell itself
        answers it with a server error (an answer too large for it: its metadata row limit, met by
        a scatter of some 100,000 calls), the failed jobs and the workflow's failures in two
        smaller calls instead."""
        try:
            self.cromwell_calls += 1
            answer: Mapping[str, Any] = self.cromwell.metadata(
                workflow_id, include_keys=FAILURE_KEYS, expand_subworkflows=True
            )
            return answer
        except CromwellUnavailable as exc:
            if exc.http_status != 500:
                raise
            logger.warning(
                "failure metadata refused by Cromwell; asking for the failed jobs alone",
                extra={"workflow_id": workflow_id, "error": exc.message},
            )
        except CromwellError as exc:
            problems.append(f"Cromwell refused: {exc.message}"[:500])
            return None
        failed = self._ask(lambda: self.cromwell.failed_jobs(workflow_id), problems, None)
        root = self._ask(
            lambda: self.cromwell.metadata(workflow_id, include_keys=["failures"], exclude_keys=["calls"]),
            problems,
            None,
        )
        return {**(failed or {}), "failures": (root or {}).get("failures")}

    def _ask(self, call: Any, problems: list[str], callback: CallbackData | None) -> Mapping[str, Any] | None:
        try:
            self.cromwell_calls += 1
            answer: Mapping[str, Any] = call()
            return answer
        except CromwellUnavailable as exc:
            if callback is None:
                raise
            problems.append(f"Cromwell unavailable: {exc.message}"[:500])
        except CromwellError as exc:
            problems.append(f"Cromwell refused: {exc.message}"[:500])
        return None
