"""What happens to one dropped inputs file. Pure orchestration over ports: no boto3, no requests.

    upload -> already handled? -> read folder (wait for a late WDL) -> plan (validate)
           -> check s3:// inputs -> submit to Cromwell -> record in the ledger -> receipt

Exactly once: the workflow id is derived from the upload, so a redelivered event finds the run in
the ledger (and rewrites the same receipt), and a submission whose 201 was lost is recognised by
Cromwell's "already in use" answer.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from courier.conventions import LABEL_RERUN_OF, RERUN_OPTIONS, receipt_key, requested_workflow_id
from courier.errors import CromwellAuthError, CromwellBadRequest, CromwellUnavailable, RunRejected
from courier.ledger.records import parse_time
from courier.models import RunRecord, RunStatus
from submit.folder import path_problem, shown
from submit.next_step import PipelinePlace, labels_with
from submit.plan import Limits, RunFolder, SubmissionPlan, plan_submission
from submit.receipt import Receipt
from submit.upload import Upload


class FolderSource(Protocol):
    def read_folder(self, upload: Upload, limits: Limits) -> RunFolder: ...


class Submitter(Protocol):
    def submit(self, plan: SubmissionPlan) -> str:
        """Submit; return Cromwell's status. Raise WorkflowIdInUse, CromwellBadRequest,
        CromwellAuthError or CromwellUnavailable."""
        ...


class RunBook(Protocol):
    def get_run(self, workflow_id: str) -> dict[str, Any] | None: ...
    def record_submitted(self, run: RunRecord) -> bool: ...
    def record_rejected(self, run: RunRecord) -> bool: ...


class ReceiptSink(Protocol):
    def write(self, bucket: str, key: str, receipt: Receipt) -> None: ...


class ObjectChecker(Protocol):
    def missing(self, uris: Sequence[str]) -> list[str]:
        """Return a sentence for each URI that does not exist or cannot be read."""
        ...


@dataclass(frozen=True, slots=True)
class SubmitOptions:
    check_s3_inputs: bool = True
    wdl_wait_seconds: float = 60.0
    poll_seconds: float = 5.0
    callback_uri: str | None = None


@dataclass(frozen=True, slots=True)
class Membership:
    """The batch a run joins (a sample sheet's, or a re-run's), the name of its sample there, and
    for a re-run the run it replaces (its options then ask for call caching)."""

    batch_id: str
    sample: str | None = None
    rerun_of: str | None = None


class FolderBatcher(Protocol):
    def membership(self, upload: Upload, workflow_id: str) -> Membership | None:
        """The batch of the folder window the upload joins (`submit.folder_batch`); None: alone."""
        ...


@dataclass(frozen=True, slots=True)
class SubmitOutcome:
    """What the handler reports: `Submitted`, `Rejected`, or `Duplicate` (already handled)."""

    status: str
    workflow_id: str
    receipt: Receipt


def _now() -> datetime:
    return datetime.now(UTC)


class SubmitService:
    def __init__(
        self,
        *,
        folders: FolderSource,
        cromwell: Submitter,
        ledger: RunBook,
        receipts: ReceiptSink,
        objects: ObjectChecker,
        limits: Limits,
        options: SubmitOptions,
        clock: Callable[[], datetime] = _now,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        member: Membership | None = None,
        folder_batches: FolderBatcher | None = None,
        pipeline: PipelinePlace | None = None,
    ) -> None:
        self.folders = folders
        self.folder_batches = folder_batches
        self.pipeline = pipeline
        self.cromwell = cromwell
        self.member = member
        self.ledger = ledger
        self.receipts = receipts
        self.objects = objects
        self.limits = limits
        self.options = options
        self.clock = clock
        self.sleep = sleep
        self.monotonic = monotonic

    # -- entry points ----------------------------------------------------------------------------

    def handle(self, upload: Upload) -> SubmitOutcome:
        workflow_id = requested_workflow_id(upload.bucket, upload.key, upload.version_id, upload.sequencer)
        known = self.ledger.get_run(workflow_id)
        if known is not None and known.get("inputs_key"):
            return self._replay_receipt(upload, workflow_id, known)
        member = self.member
        if member is None and self.folder_batches is not None:
            member = self.folder_batches.membership(upload, workflow_id)
        return (self if member is self.member else self._joining(member))._new_run(upload, workflow_id)

    def _joining(self, member: Membership | None) -> SubmitService:
        """This service for a run of a folder batch."""
        joined = copy.copy(self)
        joined.member = member
        return joined

    def _new_run(self, upload: Upload, workflow_id: str) -> SubmitOutcome:
        try:
            plan = self._plan(upload)
        except RunRejected as refused:
            return self._reject(upload, workflow_id, refused.reasons)
        return self._submit(upload, plan)

    def refuse(self, bucket: str, key: str, reasons: Sequence[str], *, workflow_id: str) -> SubmitOutcome:
        """Refuse a file whose event could not be used (the handler's malformed-event path)."""
        upload = Upload(bucket, key, None, None, None, None, None)
        return self._reject(upload, workflow_id, reasons)

    # -- steps -----------------------------------------------------------------------------------

    def _plan(self, upload: Upload) -> SubmissionPlan:
        """Read and validate the folder. While the refusal is only about files that have not
        arrived yet (no WDL, an import not there), wait a bounded time for them."""
        problem = path_problem(upload.key)
        if problem is not None:
            raise RunRejected([f"the inputs file's key '{shown(upload.key)}' {problem}; rename it"])
        lineage = self.pipeline.lineage(upload.bucket, upload.key) if self.pipeline else None
        rerun_of = self.member.rerun_of if self.member else None
        deadline = self.monotonic() + self.options.wdl_wait_seconds
        while True:
            folder = self.folders.read_folder(upload, self.limits)
            try:
                plan = plan_submission(
                    folder,
                    bucket=upload.bucket,
                    inputs_key=upload.key,
                    version_id=upload.version_id,
                    sequencer=upload.sequencer,
                    limits=self.limits,
                    callback_uri=self.options.callback_uri,
                    extra_options=RERUN_OPTIONS if rerun_of else None,
                    extra_labels=labels_with({LABEL_RERUN_OF: rerun_of} if rerun_of else None, lineage),
                )
            except RunRejected as refused:
                if not _waiting_for_files(refused) or self.monotonic() >= deadline:
                    if _waiting_for_files(refused) and self.options.wdl_wait_seconds > 0:
                        refused.reasons.append(
                            f"waited {self.options.wdl_wait_seconds:g} s for the missing files; copy "
                            "the WDL files first, or upload this inputs file again once they are there"
                        )
                    raise
                self.sleep(self.options.poll_seconds)
                continue
            break
        if self.pipeline is not None:
            plan = self.pipeline.place(plan, lineage, folder=upload.folder, in_batch=self.member is not None)
        if self.options.check_s3_inputs and plan.s3_uris:
            problems = self.objects.missing(plan.s3_uris)
            if problems:
                raise RunRejected([f"{upload.name}: {p}" for p in problems])
        return plan

    def _submit(self, upload: Upload, plan: SubmissionPlan) -> SubmitOutcome:
        run = self._record(upload, plan.workflow_id, plan)
        try:
            status = self.cromwell.submit(plan)
        except CromwellUnavailable:
            waiting = Receipt.waiting(
                workflow_id=plan.workflow_id,
                workflow_name=plan.workflow_name,
                inputs=upload.uri,
                run_folder=upload.folder,
                main_wdl=plan.main_wdl,
                at=self.clock(),
            )
            self.receipts.write(upload.bucket, receipt_key(upload.key), waiting)
            raise
        except CromwellAuthError as exc:
            # Nothing was submitted, and waiting will not help until someone fixes the secret:
            # refuse now, with what to do, rather than retry and park.
            reason = f"{exc.message}. Nothing was submitted: upload the inputs file again once it is fixed"
            return self._reject(upload, plan.workflow_id, [reason], plan=plan)
        except CromwellBadRequest as exc:
            reason = "Cromwell refused the run: " + exc.message
            if exc.errors:
                reason += " (" + "; ".join(exc.errors) + ")"
            return self._reject(upload, plan.workflow_id, [reason], plan=plan)
        self.ledger.record_submitted(run)
        receipt = Receipt.submitted(
            workflow_id=plan.workflow_id,
            workflow_name=plan.workflow_name,
            inputs=upload.uri,
            run_folder=upload.folder,
            main_wdl=plan.main_wdl,
            cromwell_status=status,
            warnings=list(plan.warnings),
            at=self.clock(),
        )
        self.receipts.write(upload.bucket, receipt_key(upload.key), receipt)
        return SubmitOutcome(RunStatus.SUBMITTED.value, plan.workflow_id, receipt)

    def _record(
        self, upload: Upload, workflow_id: str, plan: SubmissionPlan | None, reasons: Sequence[str] = ()
    ) -> RunRecord:
        return RunRecord(
            workflow_id=workflow_id,
            workflow_name=plan.workflow_name if plan else "",
            source_bucket=upload.bucket,
            inputs_key=upload.key,
            run_folder=upload.folder,
            requester=upload.requester,
            labels=dict(plan.label_map) if plan else {},
            main_wdl=plan.main_wdl if plan else None,
            receipt_key=receipt_key(upload.key),
            routing=dict(plan.routing) if plan else {},
            reasons=tuple(reasons),
            batch_id=self.member.batch_id if self.member else None,
            sample=self.member.sample if self.member else None,
            pipeline=dict(plan.pipeline) if plan else {},
        )

    def _reject(
        self, upload: Upload, workflow_id: str, reasons: Sequence[str], plan: SubmissionPlan | None = None
    ) -> SubmitOutcome:
        self.ledger.record_rejected(self._record(upload, workflow_id, plan, reasons))
        receipt = Receipt.rejected(
            workflow_id=workflow_id,
            inputs=upload.uri,
            run_folder=upload.folder,
            reasons=list(reasons),
            at=self.clock(),
        )
        self.receipts.write(upload.bucket, receipt_key(upload.key), receipt)
        return SubmitOutcome(RunStatus.REJECTED.value, workflow_id, receipt)

    def _replay_receipt(self, upload: Upload, workflow_id: str, run: dict[str, Any]) -> SubmitOutcome:
        """A redelivery: the run was handled before. Write the same verdict again (the first
        invocation may have died before its receipt) and submit nothing."""
        if run.get("status") == RunStatus.REJECTED.value:
            receipt = Receipt.rejected(
                workflow_id=workflow_id,
                inputs=upload.uri,
                run_folder=upload.folder,
                reasons=list(run.get("reasons") or []),
                at=parse_time(run.get("submitted_at")) or self.clock(),
            )
        else:
            receipt = Receipt.submitted(
                workflow_id=workflow_id,
                workflow_name=str(run.get("workflow_name") or ""),
                inputs=upload.uri,
                run_folder=upload.folder,
                main_wdl=run.get("main_wdl"),
                cromwell_status=RunStatus.SUBMITTED.value,
                warnings=[],
                at=parse_time(run.get("submitted_at")) or self.clock(),
            )
        self.receipts.write(upload.bucket, receipt_key(upload.key), receipt)
        return SubmitOutcome("Duplicate", workflow_id, receipt)


def _waiting_for_files(refused: RunRejected) -> bool:
    return bool(getattr(refused, "missing_files", False))
