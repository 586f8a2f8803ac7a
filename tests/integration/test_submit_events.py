"""Every sample event of the submit function (events/submit, the files `sam local invoke` uses)
runs through the handler in-process, against moto and the Cromwell-compatible server, with the
settings of events/submit/env.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from submit.handler import lambda_handler
from submit.sheet_composition import build_sheet_service
from submit.sheet_settings import SheetSettings
from tests.support.submit_fixtures import (
    RUNS_BUCKET,
    TABLE,
    WDL_FIXTURES,
    FakeContext,
    SubmitWorld,
    make_world,
)

pytestmark = pytest.mark.integration

EVENTS = Path(__file__).resolve().parents[2] / "events" / "submit"
ENV = json.loads((EVENTS / "env.json").read_text())["SubmitFunction"]

EXPECTED = {
    "object-created-inputs.json": "Submitted",
    "object-created-sample-inputs.json": "Submitted",
    "object-created-non-ascii-key.json": "Submitted",
    "object-created-wdl-ignored.json": "Ignored",
    "object-created-missing-wdl.json": "Rejected",
    "object-created-no-sequencer.json": "Rejected",
}


SHEET_EVENT = "object-created-sample-sheet.json"


def test_every_event_file_is_covered() -> None:
    files = {p.name for p in EVENTS.glob("*.json")} - {"env.json"}
    assert files == set(EXPECTED) | {SHEET_EVENT}


@pytest.fixture
def local(aws: tuple[Any, Any], cromwell_server: Any) -> SubmitWorld:
    world = make_world(aws, cromwell_server, versioned=False)
    settings_env = {k: v for k, v in ENV.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    settings_env.pop("CROMWELL_URL")
    world.env = settings_env
    world.s3.put_object(
        Bucket=RUNS_BUCKET, Key="runs/hello/hello.wdl", Body=(WDL_FIXTURES / "hello/hello.wdl").read_bytes()
    )
    for name in ("inputs.json", "sampleB.inputs.json", "Probe Ä 1.inputs.json", "broken.inputs.json"):
        world.s3.put_object(
            Bucket=RUNS_BUCKET,
            Key=f"runs/hello/{name}",
            Body=(WDL_FIXTURES / "hello/inputs.json").read_bytes(),
        )
    world.s3.put_object(Bucket=RUNS_BUCKET, Key="runs/empty/inputs.json", Body=b"{}")
    return world


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_event(local: SubmitWorld, name: str) -> None:
    event = json.loads((EVENTS / name).read_text())

    first = local.invoke(event)
    again = local.invoke(event)

    assert first["status"] == EXPECTED[name]
    key = event["detail"]["object"]["key"]
    if EXPECTED[name] == "Ignored":
        assert not local.has_receipt(key)
        return
    receipt = local.receipt(key)
    assert receipt["status"] == EXPECTED[name]
    if EXPECTED[name] == "Submitted":
        assert again["status"] == "Duplicate"
        assert len(local.backend.submissions) == 1
        assert local.backend.submissions[0].requested_workflow_id == receipt["workflow_id"]
    else:
        assert local.backend.submissions == []
        assert receipt["reasons"]


def test_sample_sheet_event(local: SubmitWorld) -> None:
    """The sheet's rows go to the rows queue (the rows function's own sample event is invoked in
    tests/e2e/test_sam_local_events.py); the same event again queues nothing more."""
    event = json.loads((EVENTS / SHEET_EVENT).read_text())
    key = event["detail"]["object"]["key"]
    local.s3.put_object(
        Bucket=RUNS_BUCKET, Key="runs/sheet/hello.wdl", Body=(WDL_FIXTURES / "hello/hello.wdl").read_bytes()
    )
    local.s3.put_object(Bucket=RUNS_BUCKET, Key=key, Body=b"sample\twho\nS1\tAda\nS2\tGrace\n")
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName="courier-SheetRowsQueue")["QueueUrl"]
    settings = SheetSettings.model_validate(
        {
            **local.env,
            "LEDGER_TABLE": TABLE,
            "CROMWELL_URL": local.server.url,
            "SHEET_ROWS_QUEUE_URL": queue_url,
        }
    )
    base = local.service()
    sheets = build_sheet_service(settings, base, s3=local.s3, dynamodb=local.dynamodb, sqs=sqs)

    first = lambda_handler(event, FakeContext(), service=base, sheets=sheets)  # type: ignore[arg-type]
    again = lambda_handler(event, FakeContext(), service=base, sheets=sheets)  # type: ignore[arg-type]

    assert (first["status"], first["queued"], again["status"]) == ("Queued", 2, "Duplicate")
    queued = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    assert queued["Attributes"]["ApproximateNumberOfMessages"] == "2"
    receipt = local.receipt(key)
    assert (receipt["kind"], receipt["status"], receipt["rows"]) == ("sample-sheet", "InProgress", 2)
    assert local.backend.submissions == []
