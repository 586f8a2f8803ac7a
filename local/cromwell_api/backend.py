"""Where the local Cromwell-compatible server keeps workflows.

`Backend` is the seam for an executor; `InMemoryBackend` records submissions and lets tests put
workflows in any state (status, outputs, calls with shards and attempts, failures, labels).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from local.cromwell_api.rules import Submission

STATES = ("On Hold", "Submitted", "Running", "Aborting", "Succeeded", "Failed", "Aborted")
TERMINAL = frozenset({"Succeeded", "Failed", "Aborted"})
CALL_TERMINAL = frozenset({"Done", "Failed", "Aborted", "Bypassed", "Unstartable"})


class IdInUse(Exception):
    """The requested workflow id is taken."""


class NotOnHold(Exception):
    """Only a workflow On Hold can be released."""

    def __init__(self, workflow_id: str) -> None:
        super().__init__(
            f"Couldn't change status of workflow {workflow_id} to 'Submitted' because the workflow is not "
            "in 'On Hold' state"
        )


def iso(moment: datetime) -> str:
    """Cromwell's timestamp format: UTC, milliseconds, `Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class Workflow:
    """The server's view of one workflow; metadata and query answers are built from it."""

    id: str
    name: str
    status: str
    submission: datetime
    submitted: Submission | None = None
    start: datetime | None = None
    end: datetime | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    calls: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    parent_id: str | None = None
    root_id: str | None = None

    @classmethod
    def submitted_as(cls, submission: Submission, at: datetime) -> Workflow:
        """A new workflow for `submission`: its requested id (or a new one), On Hold or Submitted."""
        return cls(
            id=submission.requested_workflow_id or str(uuid.uuid4()),
            name=submission.workflow_name,
            status="On Hold" if submission.on_hold else "Submitted",
            submission=at,
            submitted=submission,
            labels=dict(submission.labels),
        )

    def move(self, status: str, at: datetime) -> None:
        """Set the status; the first move past Submitted is the start, a terminal one the end."""
        if status not in STATES:
            raise ValueError(f"unknown workflow status {status!r}")
        self.status = status
        if status not in ("On Hold", "Submitted") and self.start is None:
            self.start = at
        if status in TERMINAL:
            self.end = self.end or at

    def release(self, at: datetime) -> None:
        """Move from On Hold to Submitted; raise NotOnHold from any other status."""
        if self.status != "On Hold":
            raise NotOnHold(self.id)
        self.move("Submitted", at)

    def all_labels(self) -> dict[str, str]:
        return {"cromwell-workflow-id": f"cromwell-{self.id}", **self.labels}

    def metadata(self) -> dict[str, Any]:
        """Unfiltered metadata, shaped like Cromwell's."""
        md: dict[str, Any] = {
            "id": self.id,
            "workflowName": self.name,
            "status": self.status,
            "submission": iso(self.submission),
            "inputs": dict(self.submitted.inputs) if self.submitted else {},
            "outputs": dict(self.outputs),
            "labels": self.all_labels(),
            "calls": {fqn: [dict(entry) for entry in entries] for fqn, entries in self.calls.items()},
        }
        if self.start is not None:
            md["start"] = iso(self.start)
        if self.end is not None:
            md["end"] = iso(self.end)
        if self.failures:
            md["failures"] = [dict(f) for f in self.failures]
        if self.parent_id is not None:
            md["parentWorkflowId"] = self.parent_id
        md["rootWorkflowId"] = self.root_id or self.id
        if self.submitted is not None:
            sub = self.submitted
            files: dict[str, Any] = {"inputs": sub.raw_inputs.get("workflowInputs", "{}")}
            if sub.workflow_source is not None:
                files["workflow"] = sub.workflow_source
            if sub.workflow_url is not None:
                files["workflowUrl"] = sub.workflow_url
            if sub.options is not None:
                files["options"] = sub.raw_parts.get("workflowOptions", b"").decode("utf-8")
            files["labels"] = sub.raw_parts.get("labels", b"{}").decode("utf-8")
            md["submittedFiles"] = files
        md.update(self.extra)
        return md


class Backend(Protocol):
    """What the REST layer needs from whatever runs (or pretends to run) workflows."""

    def create(self, submission: Submission) -> Workflow:
        """Accept a submission. Raise IdInUse when its requested id exists."""
        ...

    def create_batch(self, submissions: Sequence[Submission]) -> list[Workflow]:
        """Accept several submissions, all or none. Raise IdInUse when a requested id exists."""
        ...

    def find(self, workflow_id: str) -> Workflow | None:
        """A workflow by id; None when unknown or not visible yet."""
        ...

    def release_hold(self, workflow_id: str) -> Workflow | None:
        """Move an On Hold workflow to Submitted (it starts); None when unknown. Raise NotOnHold."""
        ...

    def abort(self, workflow_id: str) -> str | None:
        """`Aborted` or `Aborting`; None when unknown or already finished."""
        ...

    def update_labels(self, workflow_id: str, labels: Mapping[str, str]) -> dict[str, str] | None:
        """Merge labels; the workflow's labels afterwards, or None when unknown."""
        ...

    def workflows(self) -> Iterable[Workflow]:
        """Every workflow, for /query."""
        ...


class InMemoryBackend:
    """Workflows in a dict. Nothing runs: tests move workflows along with the setters below.

    `early_404_seconds` makes a new workflow invisible to `find` (status, metadata, ...) for that
    long after its submission, like Cromwell before its metadata batch is written.
    """

    def __init__(
        self,
        *,
        early_404_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.early_404_seconds = early_404_seconds
        self._clock = clock
        self._now = now
        self._lock = threading.RLock()
        self._workflows: dict[str, Workflow] = {}
        self._created_at: dict[str, float] = {}
        #: Every accepted submission, in order, with all parts decoded.
        self.submissions: list[Submission] = []

    # -- Backend -----------------------------------------------------------------------------

    def create(self, submission: Submission) -> Workflow:
        (workflow,) = self.create_batch([submission])
        return workflow

    def create_batch(self, submissions: Sequence[Submission]) -> list[Workflow]:
        with self._lock:
            workflows = [Workflow.submitted_as(s, self._now()) for s in submissions]
            taken = [w.id for w in workflows if w.id in self._workflows]
            if taken:
                raise IdInUse(", ".join(taken))
            for workflow, submission in zip(workflows, submissions, strict=True):
                self._workflows[workflow.id] = workflow
                self._created_at[workflow.id] = self._clock()
                self.submissions.append(submission)
            return workflows

    def release_hold(self, workflow_id: str) -> Workflow | None:
        with self._lock:
            workflow = self.find(workflow_id)
            if workflow is not None:
                workflow.release(self._now())
            return workflow

    def find(self, workflow_id: str) -> Workflow | None:
        with self._lock:
            workflow = self._workflows.get(workflow_id.lower())
            if workflow is None:
                return None
            created = self._created_at.get(workflow.id)
            if created is not None and self._clock() - created < self.early_404_seconds:
                return None
            return workflow

    def abort(self, workflow_id: str) -> str | None:
        with self._lock:
            workflow = self.find(workflow_id)
            if workflow is None or workflow.status in TERMINAL:
                return None
            if workflow.status in ("On Hold", "Submitted"):
                self._move(workflow, "Aborted")
            else:
                self._move(workflow, "Aborting")
            return workflow.status

    def update_labels(self, workflow_id: str, labels: Mapping[str, str]) -> dict[str, str] | None:
        with self._lock:
            workflow = self.find(workflow_id)
            if workflow is None:
                return None
            workflow.labels.update(labels)
            return workflow.all_labels()

    def workflows(self) -> list[Workflow]:
        with self._lock:
            return list(self._workflows.values())

    # -- test controls -----------------------------------------------------------------------

    def workflow(self, workflow_id: str) -> Workflow:
        """A workflow regardless of the early-404 window; KeyError when unknown."""
        with self._lock:
            return self._workflows[workflow_id.lower()]

    def add(
        self,
        workflow_id: str | None = None,
        *,
        name: str = "wf",
        status: str = "Submitted",
        labels: Mapping[str, str] | None = None,
        parent_id: str | None = None,
        submission: datetime | None = None,
    ) -> Workflow:
        """Put a workflow in place without a submission (for query and sub-workflow tests)."""
        with self._lock:
            wid = (workflow_id or str(uuid.uuid4())).lower()
            parent = self._workflows.get(parent_id) if parent_id else None
            root = (parent.root_id or parent.id) if parent is not None else parent_id
            workflow = Workflow(
                id=wid,
                name=name,
                status="Submitted",
                submission=submission or self._now(),
                labels=dict(labels or {}),
                parent_id=parent_id,
                root_id=root,
            )
            self._workflows[wid] = workflow
            self._move(workflow, status)
            return workflow

    def set_status(self, workflow_id: str, status: str) -> None:
        with self._lock:
            self._move(self.workflow(workflow_id), status)

    def set_outputs(self, workflow_id: str, outputs: Mapping[str, Any]) -> None:
        with self._lock:
            self.workflow(workflow_id).outputs = dict(outputs)

    def set_labels(self, workflow_id: str, labels: Mapping[str, str]) -> None:
        with self._lock:
            self.workflow(workflow_id).labels = dict(labels)

    def set_metadata(self, workflow_id: str, **fields: Any) -> None:
        """Extra root metadata keys (e.g. `workflowRoot`), merged over the built ones."""
        with self._lock:
            self.workflow(workflow_id).extra.update(fields)

    def fail(self, workflow_id: str, message: str, *caused_by: str) -> None:
        """Mark the workflow Failed with Cromwell-shaped `failures`."""
        with self._lock:
            workflow = self.workflow(workflow_id)
            workflow.failures = [failure(message, *caused_by)]
            self._move(workflow, "Failed")

    def add_call(
        self,
        workflow_id: str,
        fqn: str,
        *,
        shard: int = -1,
        attempt: int = 1,
        status: str = "Running",
        job_id: str | None = None,
        return_code: int | None = None,
        failures: Iterable[str] = (),
        sub_workflow_id: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Add one call entry (one shard, one attempt) the way Cromwell lists it in `calls`."""
        with self._lock:
            workflow = self.workflow(workflow_id)
            task = fqn.rsplit(".", 1)[-1]
            root = call_root(f"s3://cromwell/{workflow.name}/{workflow.id}", task, shard, attempt)
            stem = call_stem(task, shard)
            entry: dict[str, Any] = {
                "executionStatus": status,
                "shardIndex": shard,
                "attempt": attempt,
                "backend": "AWSBatch",
                "callRoot": root,
                "stdout": f"{root}/{stem}-stdout.log",
                "stderr": f"{root}/{stem}-stderr.log",
                "start": iso(self._now()),
            }
            if job_id is not None:
                entry["jobId"] = job_id
            if return_code is not None:
                entry["returnCode"] = return_code
            if status in CALL_TERMINAL:
                entry["end"] = iso(self._now())
            messages = list(failures)
            if messages:
                entry["failures"] = [failure(m) for m in messages]
            if sub_workflow_id is not None:
                entry["subWorkflowId"] = sub_workflow_id
            entry.update(extra)
            workflow.calls.setdefault(fqn, []).append(entry)
            return entry

    # -- internals ---------------------------------------------------------------------------

    def _move(self, workflow: Workflow, status: str) -> None:
        workflow.move(status, self._now())


def call_root(base: str, alias: str, shard: int, attempt: int = 1) -> str:
    """Where Cromwell puts one call attempt: `<base>/call-<alias>[/shard-<n>][/attempt-<n>]`."""
    root = f"{base}/call-{alias}"
    if shard >= 0:
        root += f"/shard-{shard}"
    if attempt > 1:
        root += f"/attempt-{attempt}"
    return root


def call_stem(alias: str, shard: int) -> str:
    """How a call's log files start: `<alias>` or `<alias>-<shard>` (`say-1-stderr.log`)."""
    return alias if shard < 0 else f"{alias}-{shard}"


def failure(message: str, *caused_by: str) -> dict[str, Any]:
    return {"message": message, "causedBy": [{"message": c, "causedBy": []} for c in caused_by]}
