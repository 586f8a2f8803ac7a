"""`courier show` of runs in a pipeline, over a moto ledger: a next run shows its chain and its
parent batch, a batch's run shows the next run the batch started, a run shows why its next run was
not started; `--json` carries the same."""

from __future__ import annotations

import json

import boto3
import pytest

from courier.ledger.pipeline import PipelineLedger
from courier.ledger.records import BatchOpening
from courier.ledger.runs import RunLedger
from courier.models import RunRecord
from courier.pipeline import NextStep
from courier_cli.deployment import Connection
from tests.integration import test_cli_ledger
from tests.integration.test_cli_ledger import BUCKET, TABLE, deployment
from tests.support.cli import invoke

pytestmark = pytest.mark.integration
#: The moto ledger and bucket of the `courier` command's other tests (three runs in no pipeline).
aws = test_cli_ledger.aws

PARENT = "aaaa0000-0000-5000-8000-0000000000a1"
CHILD = "bbbb0000-0000-5000-8000-0000000000b1"
LONE = "cccc0000-0000-5000-8000-0000000000c1"
CHILD_KEY = "runs/joint/from-batch-1.inputs.json"


@pytest.fixture
def pipeline(aws: boto3.session.Session) -> Connection:
    ddb = aws.client("dynamodb")
    runs, steps = RunLedger(TABLE, ddb), PipelineLedger(TABLE, ddb)
    records = [
        RunRecord(
            PARENT,
            "call",
            BUCKET,
            "runs/call/samples.tsv:line-2",
            "runs/call/",
            batch_id="batch-1",
            sample="S1",
            pipeline={"chain": ["runs/call/"]},
        ),
        RunRecord(
            CHILD,
            "joint",
            BUCKET,
            CHILD_KEY,
            "runs/joint/",
            pipeline={
                "chain": ["runs/call/", "runs/joint/"],
                "parents": [PARENT, "other"],
                "parent_batch": "batch-1",
            },
        ),
        RunRecord(
            LONE, "call", BUCKET, "runs/lone/inputs.json", "runs/lone/", pipeline={"chain": ["runs/lone/"]}
        ),
    ]
    runs.open_batch("batch-1", BatchOpening("sheet", BUCKET, "runs/call/", "runs/call/samples.tsv", 1))
    for record in records:
        runs.record_submitted(record)
    steps.record_batch_step("batch-1", NextStep(BUCKET, CHILD_KEY, started=True, workflow_id=CHILD))
    steps.record_run_step(
        LONE, NextStep(BUCKET, "runs/next/from-x.inputs.json", started=False, reasons=("the run failed",))
    )
    return Connection(deployment(), aws)


def test_a_next_run_shows_its_chain_and_parent_batch(pipeline: Connection) -> None:
    shown = invoke(pipeline, "show", CHILD, "--json")
    assert shown.exit_code == 0, shown.stderr
    assert json.loads(shown.stdout)["pipeline"] == {
        "chain": ["runs/call/", "runs/joint/"],
        "parents": [PARENT, "other"],
        "parent_batch": "batch-1",
        "children": [],
    }
    text = invoke(pipeline, "show", CHILD).stdout
    assert "runs/call/ -> runs/joint/" in text
    assert "batch-1 (2 runs)" in text


def test_a_batch_s_run_shows_the_next_run_its_batch_started(pipeline: Connection) -> None:
    document = json.loads(invoke(pipeline, "show", PARENT, "--json").stdout)
    assert document["pipeline"]["children"] == [
        {
            "after": "batch",
            "inputs": f"s3://{BUCKET}/{CHILD_KEY}",
            "started": True,
            "workflow_id": CHILD,
            "reasons": [],
        }
    ]
    text = invoke(pipeline, "show", PARENT).stdout
    assert "Batch's next run" in text
    assert f"s3://{BUCKET}/{CHILD_KEY}" in text
    assert f"(workflow {CHILD})" in text


def test_a_run_shows_why_its_next_run_was_not_started(pipeline: Connection) -> None:
    children = json.loads(invoke(pipeline, "show", LONE, "--json").stdout)["pipeline"]["children"]
    assert children[0]["started"] is False
    assert "not started: the run failed" in invoke(pipeline, "show", LONE).stdout


def test_a_run_in_no_pipeline_shows_none(aws: boto3.session.Session) -> None:
    document = json.loads(invoke(Connection(deployment(), aws), "show", "0123", "--json").stdout)
    assert document["pipeline"] is None
