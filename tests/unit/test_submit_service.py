"""SubmitService over in-memory fakes: no AWS, no network. What one dropped inputs file leads to."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from courier.conventions import receipt_key, requested_workflow_id
from courier.cromwell import SubmitRequest, SubmitResult
from courier.errors import CromwellBadRequest, CromwellUnavailable, WorkflowIdInUse
from courier.models import RunRecord
from submit.adapters import CromwellSubmitter
from submit.folder_batch import FolderBatches
from submit.plan import Limits, RunFolder, SubmissionPlan
from submit.receipt import Receipt
from submit.service import SubmitOptions, SubmitService
from submit.upload import Upload
from tests.fixtures.bad_runs import GOOD_INPUTS, folder

BUCKET = "courier-runs"
KEY = "runs/demo/sampleA.inputs.json"
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


class Folders:
    def __init__(self, *snapshots: dict[str, bytes]) -> None:
        self.snapshots = list(snapshots)
        self.reads = 0

    def read_folder(self, upload: Upload, limits: Limits) -> RunFolder:
        files = self.snapshots[min(self.reads, len(self.snapshots) - 1)]
        self.reads += 1
        return RunFolder(prefix=upload.folder, files=files, inputs_name=upload.name)


class Cromwell:
    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.plans: list[SubmissionPlan] = []

    def submit(self, plan: SubmissionPlan) -> str:
        if self.failures:
            raise self.failures.pop(0)
        self.plans.append(plan)
        return "Submitted"


class RunBook:
    def __init__(self) -> None:
        self.runs: dict[str, dict[str, Any]] = {}

    def get_run(self, workflow_id: str) -> dict[str, Any] | None:
        return self.runs.get(workflow_id)

    def _put(self, run: RunRecord, status: str) -> bool:
        if run.workflow_id in self.runs:
            return False
        self.runs[run.workflow_id] = {
            "workflow_id": run.workflow_id,
            "inputs_key": run.inputs_key,
            "workflow_name": run.workflow_name,
            "status": status,
            "reasons": list(run.reasons),
            "submitted_at": NOW.isoformat(),
            "batch_id": run.batch_id,
            "sample": run.sample,
        }
        return True

    def record_submitted(self, run: RunRecord) -> bool:
        return self._put(run, "Submitted")

    def record_rejected(self, run: RunRecord) -> bool:
        return self._put(run, "Rejected")


class Receipts:
    def __init__(self) -> None:
        self.written: list[tuple[str, Receipt]] = []

    def write(self, bucket: str, key: str, receipt: Receipt) -> None:
        self.written.append((key, receipt))

    @property
    def last(self) -> Receipt:
        return self.written[-1][1]


class Objects:
    def __init__(self, existing: Sequence[str] = ()) -> None:
        self.existing = set(existing)
        self.asked: list[str] = []

    def missing(self, uris: Sequence[str]) -> list[str]:
        self.asked.extend(uris)
        return [f"input file {u} does not exist" for u in uris if u not in self.existing]


class World:
    def __init__(
        self,
        *snapshots: dict[str, bytes],
        cromwell: Cromwell | None = None,
        options: SubmitOptions | None = None,
        existing: Sequence[str] = (GOOD_INPUTS["demo.reads"],),
        folder_batches: Any = None,
    ) -> None:
        self.folders = Folders(*(snapshots or (folder(),)))
        self.cromwell = cromwell or Cromwell()
        self.ledger = RunBook()
        self.receipts = Receipts()
        self.objects = Objects(existing)
        self.sleeps: list[float] = []
        self.ticks = iter(range(0, 10_000, 5))
        self.service = SubmitService(
            folders=self.folders,
            cromwell=self.cromwell,
            ledger=self.ledger,
            receipts=self.receipts,
            objects=self.objects,
            limits=Limits(),
            options=options or SubmitOptions(wdl_wait_seconds=0),
            clock=lambda: NOW,
            sleep=self.sleeps.append,
            monotonic=lambda: float(next(self.ticks)),
            folder_batches=folder_batches,
        )


def upload(key: str = KEY, version: str | None = "v1", sequencer: str | None = "0A1") -> Upload:
    return Upload(BUCKET, key, version, sequencer, 120, "123456789012", NOW.isoformat())


def test_a_valid_run_is_submitted_recorded_and_receipted() -> None:
    world = World()
    outcome = world.service.handle(upload())

    wid = requested_workflow_id(BUCKET, KEY, "v1", "0A1")
    assert (outcome.status, outcome.workflow_id) == ("Submitted", wid)
    [plan] = world.cromwell.plans
    assert plan.workflow_id == wid
    assert world.ledger.runs[wid]["status"] == "Submitted"
    assert world.receipts.written[0][0] == receipt_key(KEY)
    assert world.receipts.last.status == "Submitted"
    assert world.objects.asked == [GOOD_INPUTS["demo.reads"]]


def test_a_redelivery_submits_nothing_and_rewrites_the_same_receipt() -> None:
    world = World()
    first = world.service.handle(upload())
    second = world.service.handle(upload())

    assert second.status == "Duplicate"
    assert second.workflow_id == first.workflow_id
    assert len(world.cromwell.plans) == 1
    assert world.folders.reads == 1
    assert [r.workflow_id for _, r in world.receipts.written] == [first.workflow_id] * 2


def test_a_redelivered_refusal_repeats_its_reasons() -> None:
    world = World(folder(inputs=[1, 2]))
    first = world.service.handle(upload())
    second = world.service.handle(upload())

    assert (first.status, second.status) == ("Rejected", "Duplicate")
    assert second.receipt.status == "Rejected"
    assert second.receipt.reasons == first.receipt.reasons
    assert world.cromwell.plans == []


def test_a_new_version_of_the_same_file_is_a_new_run() -> None:
    world = World()
    a = world.service.handle(upload(version="v1"))
    b = world.service.handle(upload(version="v2"))
    assert a.workflow_id != b.workflow_id
    assert len(world.cromwell.plans) == 2


def test_cromwell_unavailable_leaves_a_waiting_receipt_and_no_ledger_item() -> None:
    world = World(cromwell=Cromwell(CromwellUnavailable("connection refused")))
    with pytest.raises(CromwellUnavailable):
        world.service.handle(upload())

    assert world.receipts.last.status == "Waiting"
    assert world.ledger.runs == {}
    retried = world.service.handle(upload())
    assert retried.status == "Submitted"
    assert len(world.cromwell.plans) == 1


def test_cromwell_bad_request_is_a_refusal_with_its_message() -> None:
    refused = CromwellBadRequest("Error(s): Invalid workflow options", http_status=400, errors=["bad key x"])
    world = World(cromwell=Cromwell(refused))
    outcome = world.service.handle(upload())

    assert outcome.status == "Rejected"
    [reason] = outcome.receipt.reasons
    assert "Invalid workflow options" in reason
    assert "bad key x" in reason
    assert world.ledger.runs[outcome.workflow_id]["status"] == "Rejected"


def test_a_missing_s3_input_is_refused_before_submission() -> None:
    world = World(existing=())
    outcome = world.service.handle(upload())

    assert outcome.status == "Rejected"
    assert any(GOOD_INPUTS["demo.reads"] in r and "does not exist" in r for r in outcome.receipt.reasons)
    assert world.cromwell.plans == []


def test_the_s3_check_can_be_turned_off() -> None:
    world = World(existing=(), options=SubmitOptions(check_s3_inputs=False, wdl_wait_seconds=0))
    assert world.service.handle(upload()).status == "Submitted"
    assert world.objects.asked == []


def test_inputs_before_the_wdl_waits_for_it() -> None:
    world = World(
        folder(main=None, greet=None),
        folder(main=None),
        folder(),
        options=SubmitOptions(wdl_wait_seconds=60, poll_seconds=5),
    )
    outcome = world.service.handle(upload())

    assert outcome.status == "Submitted"
    assert world.sleeps == [5, 5]
    assert world.folders.reads == 3


def test_the_wait_is_bounded() -> None:
    world = World(folder(main=None, greet=None), options=SubmitOptions(wdl_wait_seconds=30, poll_seconds=5))
    outcome = world.service.handle(upload())

    assert outcome.status == "Rejected"
    assert any("waited 30 s" in r for r in outcome.receipt.reasons)
    assert 1 <= len(world.sleeps) <= 7


def test_a_refusal_that_no_wait_can_fix_is_immediate() -> None:
    world = World(folder(inputs={"demo.nope": 1}), options=SubmitOptions(wdl_wait_seconds=60, poll_seconds=5))
    outcome = world.service.handle(upload())
    assert outcome.status == "Rejected"
    assert world.sleeps == []


def test_the_callback_uri_reaches_the_workflow_options() -> None:
    world = World(
        options=SubmitOptions(wdl_wait_seconds=0, callback_uri="https://cb.example/callback?token=t")
    )
    world.service.handle(upload())
    [plan] = world.cromwell.plans
    assert json.loads(plan.workflow_options)["workflow_callback_uri"] == "https://cb.example/callback?token=t"


def test_a_key_with_a_dot_segment_is_refused() -> None:
    world = World()
    outcome = world.service.handle(upload(key="runs/demo/../sampleA.inputs.json"))
    assert outcome.status == "Rejected"
    assert "'..' path segment" in outcome.receipt.reasons[0]


class _Client:
    def __init__(self, error: Exception | None) -> None:
        self.error = error
        self.requests: list[SubmitRequest] = []

    def submit(self, request: SubmitRequest) -> SubmitResult:
        self.requests.append(request)
        if self.error:
            raise self.error
        return SubmitResult(id=request.requested_workflow_id or "", status="Submitted")


def test_the_submitter_treats_id_in_use_as_submitted() -> None:
    world = World()
    world.service.handle(upload())
    [plan] = world.cromwell.plans
    client = _Client(WorkflowIdInUse("Workflow ID already in use", http_status=400))

    assert CromwellSubmitter(client).submit(plan) == "Submitted"  # type: ignore[arg-type]
    [request] = client.requests
    assert request.requested_workflow_id == plan.workflow_id
    assert request.workflow_dependencies == plan.workflow_dependencies


# -- folder batches --------------------------------------------------------------------------------


class Windows:
    """Folder windows in memory: the first upload of a folder opens `batch-<n>`, later ones join
    it while their time is within the window of its opening; each upload's answer is kept."""

    def __init__(self) -> None:
        self.opened: dict[str, tuple[datetime, str]] = {}
        self.answers: dict[str, str | None] = {}
        self.asked: list[tuple[str, datetime]] = []

    def assign(
        self, bucket: str, folder: str, workflow_id: str, *, at: datetime, window: timedelta
    ) -> str | None:
        self.asked.append((workflow_id, at))
        if workflow_id not in self.answers:
            opened = self.opened.get(folder)
            if opened is None or at >= opened[0] + window:
                opened = self.opened[folder] = (at, f"batch-{len(self.opened) + 1}")
            self.answers[workflow_id] = opened[1]
        return self.answers[workflow_id]


def dropped(key: str, at: datetime) -> Upload:
    return Upload(BUCKET, key, "v1", "0A1", 120, "123456789012", at.isoformat())


def test_inputs_files_dropped_within_the_window_are_one_batch_named_by_their_files() -> None:
    windows = Windows()
    world = World(folder_batches=FolderBatches(windows, timedelta(seconds=300), lambda: NOW))
    a = world.service.handle(dropped("runs/demo/sampleA.inputs.json", NOW))
    b = world.service.handle(dropped("runs/demo/sampleB.inputs.json", NOW + timedelta(seconds=90)))
    c = world.service.handle(dropped("runs/demo/inputs.json", NOW + timedelta(seconds=301)))
    runs = world.ledger.runs
    assert [(runs[o.workflow_id]["batch_id"], runs[o.workflow_id]["sample"]) for o in (a, b, c)] == [
        ("batch-1", "sampleA"),
        ("batch-1", "sampleB"),
        ("batch-2", "demo"),
    ]
    # the upload's own time decides (the S3 event's), not when it is handled
    assert [at for _, at in windows.asked] == [NOW, NOW + timedelta(seconds=90), NOW + timedelta(seconds=301)]


def test_a_redelivered_upload_is_not_assigned_again_and_a_refused_one_joins_its_batch() -> None:
    windows = Windows()
    world = World(
        folder(inputs=[1, 2]), folder_batches=FolderBatches(windows, timedelta(seconds=300), lambda: NOW)
    )
    first = world.service.handle(dropped(KEY, NOW))
    again = world.service.handle(dropped(KEY, NOW))
    assert (first.status, again.status) == ("Rejected", "Duplicate")
    assert len(windows.asked) == 1
    assert world.ledger.runs[first.workflow_id]["batch_id"] == "batch-1"


def test_a_window_of_zero_seconds_leaves_every_file_alone() -> None:
    windows = Windows()
    world = World(folder_batches=FolderBatches(windows, timedelta(0), lambda: NOW))
    outcome = world.service.handle(upload())
    assert world.ledger.runs[outcome.workflow_id]["batch_id"] is None
    assert windows.asked == []
