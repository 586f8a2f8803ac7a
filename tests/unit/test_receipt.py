"""Receipts: stable JSON field names, UTC timestamps, one human sentence each."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from submit.receipt import Receipt, iso_utc

AT = datetime(2026, 3, 1, 12, 30, 5, 123456, tzinfo=UTC)
FIELDS = [
    "schema_version",
    "status",
    "workflow_id",
    "workflow_name",
    "inputs",
    "run_folder",
    "main_wdl",
    "submitted_at",
    "decided_at",
    "reasons",
    "warnings",
    "message",
    "cromwell_status",
]
COMMON = {
    "workflow_id": "2da59170-bb15-51be-b664-73d760286fa2",
    "inputs": "s3://courier-runs/runs/rnaseq/sampleA.inputs.json",
    "run_folder": "runs/rnaseq/",
}


def test_submitted() -> None:
    receipt = Receipt.submitted(
        **COMMON,
        workflow_name="rnaseq",
        main_wdl="main.wdl",
        cromwell_status="Submitted",
        warnings=["w"],
        at=AT,
    )
    document = json.loads(receipt.to_json())
    assert list(document) == FIELDS
    assert document["status"] == "Submitted"
    assert document["submitted_at"] == document["decided_at"] == "2026-03-01T12:30:05Z"
    assert document["message"] == "Cromwell accepted the run."
    assert document["warnings"] == ["w"]
    assert document["reasons"] == []
    assert receipt.to_document() == document


@pytest.mark.parametrize(
    ("reasons", "message"),
    [
        (["a"], "The run was refused: 1 problem."),
        (["a", "b", "c"], "The run was refused: 3 problems."),
    ],
)
def test_rejected(reasons: list[str], message: str) -> None:
    receipt = Receipt.rejected(**COMMON, reasons=reasons, at=AT)
    assert receipt.status == "Rejected"
    assert receipt.message == message
    assert receipt.reasons == reasons
    assert receipt.submitted_at is None
    assert receipt.workflow_name is None


def test_waiting() -> None:
    receipt = Receipt.waiting(**COMMON, workflow_name="rnaseq", main_wdl="main.wdl", at=AT)
    assert receipt.status == "Waiting"
    assert "no need to upload the file again" in receipt.message
    assert receipt.submitted_at is None


def test_timestamps_are_utc() -> None:
    assert iso_utc(datetime(2026, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=2)))) == "2025-12-31T23:00:00Z"
    assert iso_utc(datetime(2026, 1, 1, 1, 0)) == "2026-01-01T01:00:00Z"


def test_round_trip_and_unknown_fields_refused() -> None:
    receipt = Receipt.rejected(**COMMON, reasons=["x"], at=AT)
    assert Receipt.model_validate_json(receipt.to_json()) == receipt
    with pytest.raises(ValidationError):
        Receipt.model_validate({**receipt.to_document(), "surprise": 1})
