"""The next step of a pipeline, started when a run (`when: run`) or its batch (`when: batch`) ends,
before the end message is rendered so that the message says what it started (docs/pipelines.md).

    spec on the run item -> loop / depth checked again -> next inputs built (courier.pipeline)
        built:   lineage item (once) -> `<next folder>from-<parent>.inputs.json` (If-None-Match)
        refused: `<that file>.receipt.json`, Rejected, in submit's schema (once); no inputs file
    -> `next_step` on the parent's run or batch item (the first outcome stays)

Exactly once under redelivery: the inputs file is created only if absent, so a second delivery
makes no second object version (submit's workflow id derives from the version); the lineage item
and the receipt are written only if absent too. Submit labels the next run from the lineage.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Final, Protocol

from courier.conventions import receipt_key, requested_workflow_id, sheet_row_line
from courier.ledger.records import BatchView, RunView
from courier.ledger.schema import BATCH_KIND_RERUN
from courier.models import RunStatus
from courier.observability import logger
from courier.pipeline import (
    WHEN_BATCH,
    WHEN_RUN,
    Lineage,
    NextInputs,
    NextSpec,
    NextStep,
    ParentRun,
    Refusal,
    build_after_batch,
    build_after_run,
    chain_problem,
    next_inputs_key,
)
from courier.receipt import Receipt

JSON: Final = "application/json; charset=utf-8"


class PipelineBook(Protocol):
    """The ledger's lineage items and `next_step` records (`courier.ledger.pipeline`)."""

    def put_lineage(self, bucket: str, key: str, lineage: Lineage) -> bool: ...
    def record_run_step(self, workflow_id: str, step: NextStep) -> None: ...
    def record_batch_step(self, batch_id: str, step: NextStep) -> None: ...


class OnceObjects(Protocol):
    """Conditional creation of an object (`courier.storage.ObjectStore.put_text_once`)."""

    def put_text_once(self, bucket: str, key: str, text: str, *, content_type: str) -> str | None: ...


def parent_of(run: RunView) -> ParentRun:
    return ParentRun(
        workflow_id=run.workflow_id,
        status=run.status,
        outputs=run.outputs,
        inputs=run.next_inputs,
        outputs_left_out=run.outputs_left_out,
        sample=run.sample,
    )


def sample_order(run: RunView) -> tuple[int, str]:
    """A batch's sample order: the rows' order in the sample sheet, then the sample's name."""
    line = sheet_row_line(run.inputs_key)
    return (line if line is not None else 1 << 30, run.sample or run.workflow_id)


class NextSteps:
    def __init__(
        self,
        book: PipelineBook,
        objects: OnceObjects,
        *,
        max_depth: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.book = book
        self.objects = objects
        self.max_depth = max_depth
        self.clock = clock

    def after_run(self, run: RunView) -> NextStep | None:
        """The next step of a run that ended (`when: run`); None when it has none."""
        spec = NextSpec.stored(run.next_spec)
        if spec is None or spec.when != WHEN_RUN or not run.source_bucket:
            return None
        recorded = NextStep.from_map(run.next_step)
        if recorded is not None:
            return recorded
        key = next_inputs_key(spec.folder, run.workflow_id)
        if run.status is not RunStatus.SUCCEEDED:
            # nothing to refuse in the next folder: the run's own message says it failed
            built: NextInputs | Refusal = build_after_run(spec, parent_of(run))
            step = NextStep(run.source_bucket, key, started=False, reasons=_reasons(built))
        else:
            step = self._start(
                run.source_bucket,
                key,
                spec,
                chain=run.chain or (run.run_folder or "",),
                built=build_after_run(spec, parent_of(run)),
                parent_batch=None,
            )
        self.book.record_run_step(run.workflow_id, step)
        return step

    def after_batch(self, batch: BatchView, runs: Sequence[RunView], left_out: int = 0) -> NextStep | None:
        """The next step of a batch that ended (`when: batch`), from its runs; None when it has none."""
        carrier = next(
            (
                run
                for run in sorted(runs, key=sample_order)
                if (spec := NextSpec.stored(run.next_spec)) is not None and spec.when == WHEN_BATCH
            ),
            None,
        )
        spec = NextSpec.stored(carrier.next_spec) if carrier is not None else None
        bucket = batch.bucket or (carrier.source_bucket if carrier else None)
        if carrier is None or spec is None or not bucket:
            return None
        recorded = NextStep.from_map(batch.next_step)
        if recorded is not None:
            return recorded
        key = next_inputs_key(spec.folder, batch.batch_id)
        built: NextInputs | Refusal
        if batch.kind == BATCH_KIND_RERUN:
            built = Refusal(
                (
                    "a re-run's batch holds only the samples it re-ran, so it does not start the next "
                    "step; start it by hand from the outputs tables",
                )
            )
        elif left_out:
            built = Refusal(
                (
                    f"the batch has {len(runs) + left_out:,} samples; "
                    f"a next step gathers at most {len(runs):,}",
                )
            )
        else:
            built = build_after_batch(spec, [parent_of(run) for run in sorted(runs, key=sample_order)])
        step = self._start(
            bucket,
            key,
            spec,
            chain=carrier.chain or (carrier.run_folder or "",),
            built=built,
            parent_batch=batch.batch_id,
        )
        self.book.record_batch_step(batch.batch_id, step)
        return step

    def _start(
        self,
        bucket: str,
        key: str,
        spec: NextSpec,
        *,
        chain: Sequence[str],
        built: NextInputs | Refusal,
        parent_batch: str | None,
    ) -> NextStep:
        problem = chain_problem(chain, spec.folder, self.max_depth)
        if problem is not None:
            built = Refusal((problem,))
        if isinstance(built, Refusal):
            self._refuse(bucket, key, spec, built)
            return NextStep(bucket, key, started=False, reasons=built.reasons)
        lineage = Lineage(chain=tuple(chain)).child(
            spec.folder, parents=built.parents, parent_batch=parent_batch
        )
        self.book.put_lineage(bucket, key, lineage)
        version = self.objects.put_text_once(bucket, key, built.to_json(), content_type=JSON)
        context = {"bucket": bucket, "key": key, "created": version is not None}
        logger.info("next step of the pipeline started", extra=context)
        workflow_id = requested_workflow_id(bucket, key, version, None) if version else None
        return NextStep(bucket, key, started=True, workflow_id=workflow_id)

    def _refuse(self, bucket: str, key: str, spec: NextSpec, refusal: Refusal) -> None:
        receipt = Receipt.rejected(
            workflow_id=requested_workflow_id(bucket, key, None, "refused"),
            inputs=f"s3://{bucket}/{key}",
            run_folder=spec.folder,
            reasons=[f"the next step was not started: {reason}" for reason in refusal.reasons],
            at=self.clock(),
        )
        self.objects.put_text_once(bucket, receipt_key(key), receipt.to_json(), content_type=JSON)
        logger.info("next step of the pipeline refused", extra={"bucket": bucket, "key": key})


def _reasons(built: NextInputs | Refusal) -> tuple[str, ...]:
    return built.reasons if isinstance(built, Refusal) else ()
