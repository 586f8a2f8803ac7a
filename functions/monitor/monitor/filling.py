"""Fill in, before a run's terminal transition, the tasks its Batch events could not describe.

Two kinds of tasks need Cromwell's word, and the report of the run's end needs both:

* tasks tied through the script prefix (Cromwell 91, path 3): the run is known, but the call is
  only the job name, with shard and attempt unknown (`call_source = job-name`);
* jobs still unattributed (Cromwell 85 to 90, path 4): no tags, no prefix. While the run is
  active the reconciler ties them; a run that ends first (Cromwell 86-90's callback comes within
  seconds) would otherwise end with its jobs never tied, since the reconciler only searches
  active runs.

`TaskFiller.fill` runs inside `Ender.end`, before the terminal write, so the ENDED outbox event
(and the report notify builds from it) sees the filled-in tasks. It makes at most one Cromwell
call, the filtered metadata (`includeKey=jobId,shardIndex,attempt,subWorkflowId`,
`expandSubWorkflows=true`), and none at all when the run has no such task and no job is waiting
to be tied. Every write is conditional, so filling twice (a retried callback, the reconciler
after the callback) changes nothing more.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Final

from courier.errors import CromwellError, InvalidEvent
from courier.ledger.task_types import Pointer, UnattributedJob
from courier.observability import logger
from monitor.attribution import Attribution
from monitor.events import parse_event
from monitor.metadata_index import METADATA_KEYS, index_jobs
from monitor.ports import Cromwell, TaskBook
from monitor.tracking import Tracker, TrackOutcome

#: Parallel ledger writes when many tasks are filled at once (a 10,000-shard scatter).
FILL_WORKERS: Final = 16


@dataclass(slots=True)
class FillReport:
    partial_tasks: int = 0
    waiting_jobs: int = 0
    cromwell_calls: int = 0
    filled: int = 0
    tied: int = 0
    errors: list[str] = field(default_factory=list)


class TaskFiller:
    def __init__(
        self,
        tasks: TaskBook,
        cromwell: Cromwell,
        tracker: Tracker,
        *,
        max_waiting: int = 500,
        max_partial: int = 50_000,
        workers: int = FILL_WORKERS,
    ) -> None:
        self.tasks = tasks
        self.cromwell = cromwell
        self.tracker = tracker
        self.max_waiting = max_waiting
        self.max_partial = max_partial
        self.workers = workers

    def fill(self, workflow_id: str) -> FillReport:
        report = FillReport()
        partial = self.partial_tasks(workflow_id)
        waiting = self.tasks.pending_unattributed(self.max_waiting) if self.max_waiting else []
        report.partial_tasks, report.waiting_jobs = len(partial), len(waiting)
        if not partial and not waiting:
            return report
        try:
            report.cromwell_calls += 1
            metadata = self.cromwell.metadata(
                workflow_id, include_keys=METADATA_KEYS, expand_subworkflows=True
            )
        except CromwellError as exc:
            report.errors.append(f"metadata: {exc}")
            logger.warning(
                "tasks not filled in: Cromwell's metadata unavailable",
                extra={"workflow_id": workflow_id, "error": str(exc)},
            )
            return report
        index = index_jobs(metadata, workflow_id)
        for job in waiting:
            who = index.get(job.job_id)
            if who is not None and self._tie(job, who, report):
                report.tied += 1
        todo = [(job_id, index[job_id]) for job_id in partial if job_id in index]
        if todo:

            def write(pair: tuple[str, Attribution]) -> bool:
                return self.complete(workflow_id, pair[0], pair[1])

            if len(todo) == 1 or self.workers <= 1:
                report.filled = sum(map(write, todo))
            else:
                with ThreadPoolExecutor(max_workers=self.workers) as pool:
                    report.filled = sum(pool.map(write, todo))
        return report

    def partial_tasks(self, workflow_id: str) -> list[str]:
        """jobIds of the run's tasks whose call is only the job name."""
        return self.tasks.job_name_tasks(workflow_id, self.max_partial)

    def complete(self, workflow_id: str, job_id: str, who: Attribution) -> bool:
        """Set call, shard, attempt and workflow from Cromwell's metadata on a job-name task."""
        return self.tasks.fill_call(
            workflow_id,
            job_id,
            call=who.call,
            shard=who.shard,
            attempt=who.attempt,
            sub_workflow_id=who.workflow_id,
        )

    def _tie(self, job: UnattributedJob, who: Attribution, report: FillReport) -> bool:
        try:
            event = parse_event(json.loads(job.event_json))
        except (InvalidEvent, ValueError) as exc:
            report.errors.append(f"job {job.job_id}: stored event unusable: {exc}")
            return False
        result = self.tracker.apply(event, who, pointer=Pointer(seen_order=job.order))
        return result.outcome in (TrackOutcome.RECORDED, TrackOutcome.DUPLICATE)
