"""A batch's digest: what one message says when the last run of a batch (a sample sheet's runs)
has ended. Built from the ledger's typed reads only: the batch item, its member items (one Query)
and, through `SummaryBuilder`, each run's end summary (failed tasks, cost, outputs).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from courier.conventions import LABEL_RERUN_OF, RERUN_NAME, rerun_document
from courier.costs import CostEstimate
from courier.ledger.records import (
    BatchEndedPayload,
    BatchMember,
    BatchView,
    EndedPayload,
    OutboxEvent,
    RunView,
)
from courier.ledger.schema import BATCH_KIND_RERUN, event_sk
from courier.models import NotificationKind, RunStatus
from courier.pipeline import NextStep
from notify.summary import FailedTask, RunSummary

#: Samples read in full for one digest (each is a run's end summary); the counts cover them all.
MAX_DIGEST_SAMPLES = 1000


class BatchReads(Protocol):
    """The ledger reads a digest needs (`courier.ledger.views.RunViews`)."""

    def batch(self, batch_id: str) -> BatchView | None: ...
    def members(self, batch_id: str) -> Iterator[BatchMember]: ...


class RunSummaries(Protocol):
    def build(self, event: OutboxEvent) -> RunSummary: ...


@dataclass(frozen=True, slots=True)
class SampleLine:
    """One sample of the batch: its run, how it ended, how long it took and what it cost."""

    sample: str
    workflow_id: str
    status: RunStatus | None
    duration: timedelta | None
    cost: float | None
    failed: tuple[FailedTask, ...] = ()
    failed_total: int = 0
    reasons: tuple[str, ...] = ()
    run: RunView | None = None
    #: For a re-run: the run it replaces.
    replaces: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is RunStatus.SUCCEEDED

    @property
    def first_failed(self) -> FailedTask | None:
        return self.failed[0] if self.failed else None


@dataclass(slots=True)
class BatchDigest:
    batch: BatchView
    event_sk: str
    created_at: datetime
    samples: list[SampleLine] = field(default_factory=list)
    #: Samples not read in full (beyond MAX_DIGEST_SAMPLES); the batch's counts include them.
    left_out: int = 0
    cost_total: float = 0.0
    cost_tasks_unpriced: int = 0
    outputs_uri: str | None = None
    #: For a re-run: the batch it re-runs.
    replaced: BatchView | None = None
    #: A pipeline's next step (`when: batch`): the run it started, or why not.
    next_step: NextStep | None = None

    @property
    def name(self) -> str:
        return self.batch.workflow_name or "(unnamed workflow)"

    @property
    def totals(self) -> dict[str, int]:
        """Runs by how they ended, from the batch item (exact, whatever was left out here)."""
        return dict(sorted(self.batch.counts.items()))

    @property
    def failed(self) -> list[SampleLine]:
        return [line for line in self.samples if not line.ok]

    @property
    def all_succeeded(self) -> bool:
        return bool(self.batch.ended) and self.batch.counts.get(RunStatus.SUCCEEDED, 0) == self.batch.ended

    @property
    def is_rerun(self) -> bool:
        return self.batch.kind == BATCH_KIND_RERUN

    @property
    def recovered(self) -> list[SampleLine]:
        """For a re-run: the samples whose new run succeeded."""
        return [line for line in self.samples if line.ok and line.replaces]

    @property
    def source(self) -> str | None:
        if self.batch.bucket and self.batch.source_key:
            return f"s3://{self.batch.bucket}/{self.batch.source_key}"
        return None

    @property
    def headline(self) -> str:
        kind = "Re-run" if self.is_rerun else "Batch"
        if self.all_succeeded:
            return f"{kind} succeeded"
        failed = self.batch.ended - self.batch.counts.get(RunStatus.SUCCEEDED, 0)
        return f"{kind} ended: {failed:,} of {self.batch.ended:,} not succeeded"

    @property
    def severity(self) -> str:
        return "info" if self.all_succeeded else "failure"

    def rerun_file(self) -> str | None:
        """Where the `rerun.json` that re-runs the failures goes (the batch's run folder)."""
        if self.all_succeeded or not self.batch.bucket:
            return None
        return f"s3://{self.batch.bucket}/{self.batch.folder or ''}{RERUN_NAME}"

    def rerun_commands(self) -> tuple[str, ...]:
        """How to re-run the failures: the `courier` command, and the same request through S3."""
        target = self.rerun_file()
        if target is None:
            return ()
        document = rerun_document(batch=self.batch.batch_id, failed_only=True)
        return (
            f"courier rerun {self.batch.batch_id} --failed",
            f"echo '{document}' | aws s3 cp - {target}",
        )


def cost_of(cost: CostEstimate | None) -> float | None:
    """A run's estimate in dollars (on-demand prices for the tasks whose pricing is unknown)."""
    if cost is None or cost.tasks_priced == 0:
        return None
    return cost.on_demand_total


class DigestBuilder:
    def __init__(
        self,
        reads: BatchReads,
        summaries: RunSummaries,
        *,
        max_samples: int = MAX_DIGEST_SAMPLES,
        clock: Any = None,
    ) -> None:
        self.reads = reads
        self.summaries = summaries
        self.max_samples = max_samples
        self.clock = clock or (lambda: datetime.now(UTC))

    def build(self, event: OutboxEvent) -> BatchDigest:
        payload = event.payload
        batch_id = payload.batch_id if isinstance(payload, BatchEndedPayload) else event.discriminator
        batch = self.reads.batch(batch_id) or BatchView(batch_id=batch_id)
        digest = BatchDigest(
            batch=batch, event_sk=event.event_sk, created_at=event.created_at or self.clock()
        )
        if batch.rerun_of:
            digest.replaced = self.reads.batch(batch.rerun_of)
        for member in self.reads.members(batch_id):
            if len(digest.samples) >= self.max_samples:
                digest.left_out += 1
                continue
            digest.samples.append(self._line(member, digest.created_at))
        digest.samples.sort(key=lambda line: (line.ok, line.sample))
        if not batch.workflow_name:  # a folder batch opens before its first file is read
            named = next((line.run.workflow_name for line in digest.samples if line.run), None)
            digest.batch = replace(batch, workflow_name=named)
        for line in digest.samples:
            if line.cost is not None:
                digest.cost_total += line.cost
        return digest

    def _line(self, member: BatchMember, now: datetime) -> SampleLine:
        ended = OutboxEvent(
            workflow_id=member.workflow_id,
            kind=NotificationKind.ENDED,
            event_sk=event_sk(NotificationKind.ENDED.value),
            payload=EndedPayload(status=member.status),
        )
        summary = self.summaries.build(ended)
        run = summary.run
        return SampleLine(
            sample=member.label,
            workflow_id=member.workflow_id,
            status=run.status or member.status,
            duration=run.duration(run.ended_at or member.ended_at or now)
            if run.status is not RunStatus.REJECTED
            else None,
            cost=cost_of(summary.cost),
            failed=tuple(summary.failed),
            failed_total=summary.failed_total,
            reasons=tuple(run.reasons) + tuple(run.workflow_failures),
            run=run,
            replaces=run.labels.get(LABEL_RERUN_OF),
        )


def outputs_rows(samples: Sequence[SampleLine]) -> tuple[list[str], list[dict[str, Any]]]:
    """The outputs table: one row per sample (in sample order), one column per workflow output
    (the union over the samples, in first-seen order)."""
    columns: dict[str, None] = {}
    rows: list[dict[str, Any]] = []
    for line in sorted(samples, key=lambda x: x.sample):
        outputs: Mapping[str, Any] = line.run.outputs if line.run else {}
        for name in outputs:
            columns.setdefault(name, None)
        rows.append(
            {
                "sample": line.sample,
                "workflow_id": line.workflow_id,
                "status": line.status.value if line.status else "",
                "outputs": dict(outputs),
            }
        )
    return list(columns), rows
