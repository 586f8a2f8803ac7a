"""What the monitor's domain logic needs from the outside world, as Protocols. The handlers wire
the real adapters (`courier.cromwell.CromwellClient`, `courier.batch.JobTagReader`); tests pass
fakes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol


class WorkflowRow(Protocol):
    """One row of Cromwell's /query."""

    @property
    def id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def submission(self) -> str | None: ...
    @property
    def parent_workflow_id(self) -> str | None: ...


class Cromwell(Protocol):
    """The Cromwell REST calls the monitor makes. Every metadata read is filtered."""

    def status(self, workflow_id: str) -> str:
        """Raise `courier.errors.CromwellNotFound` when the id is unknown (or not visible yet)."""
        ...

    def statuses(self, workflow_ids: Sequence[str]) -> Mapping[str, str]:
        """Status of many workflows through /query, in chunks; unknown ids are left out."""
        ...

    def outputs(self, workflow_id: str) -> Mapping[str, Any]: ...

    def failed_jobs(self, workflow_id: str) -> Mapping[str, Any]: ...

    def metadata(
        self,
        workflow_id: str,
        include_keys: Sequence[str] = (),
        exclude_keys: Sequence[str] = (),
        *,
        expand_subworkflows: bool = False,
    ) -> Mapping[str, Any]: ...

    def query(self, filters: Sequence[tuple[str, str]], *, page_size: int = 100) -> Iterable[WorkflowRow]: ...


class JobTags(Protocol):
    """Tags of a Batch job by ARN ({} when none or unreadable); cached by the implementation."""

    def tags(self, job_arn: str) -> Mapping[str, str]: ...
