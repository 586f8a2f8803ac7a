"""A two-step pipeline through the local stack, from one drop: a per-sample step over a 3-row
sample sheet whose options.json names a `batch`-mode next step, then one gather run over the three
samples, started by notify when the batch ends. One message per step (the batch's digest, which
says what it started, then the gather's end message); the gather's inputs are arrays in sample
order and its labels name the parent batch. Redelivering the batch's end writes nothing new.
With a failing sample and `require_all`, the second step is not started: the digest says why and a
Rejected receipt stands where its inputs file would have been."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from courier.conventions import LABEL_PARENT_BATCH
from courier.ledger.records import BatchView
from courier.ledger.schema import event_sk
from courier.pipeline import next_inputs_key
from local.stack import LocalStack
from tests.e2e.conftest import DEMO_RUNS, RUNS, Observer
from tests.support.notify_fixtures import stream_event

pytestmark = pytest.mark.e2e

#: The demo's pipeline (`make demo`): its options.json names demo/pipeline/joint/ as the next step.
PIPELINE = DEMO_RUNS / "pipeline"


def drop_pipeline(stack: LocalStack, prefix: str, step_one: dict[str, str]) -> str:
    """The second step's folder, then the first's (its sheet last); the sheet's key."""
    stack.drop_folder(PIPELINE / "joint", f"{prefix}/joint")
    folder = f"{prefix}/genotype"
    stack.put(f"{folder}/main.wdl", (PIPELINE / "genotype" / "main.wdl").read_bytes())
    for name, body in step_one.items():
        stack.put(f"{folder}/{name}", body, label=prefix if name == "samples.tsv" else "")
    return f"{folder}/samples.tsv"


def step_one_files(folder: Path) -> dict[str, str]:
    return {f: (folder / f).read_text(encoding="utf-8") for f in ("options.json", "samples.tsv")}


def first_step(stack: LocalStack, observer: Observer, prefix: str, options_and_sheet: Path) -> BatchView:
    """Drop the pipeline (the first step's options.json and sheet from `options_and_sheet`); its
    first step's batch once it has ended and its digest is out."""
    sheet = drop_pipeline(stack, prefix, step_one_files(options_and_sheet))
    receipt = stack.wait_for(
        lambda: (r := observer.receipt(sheet)) is not None and r["status"] == "Done" and r, timeout=60
    )
    assert receipt, observer.receipt(sheet)
    assert receipt["counts"]["Submitted"] == 3
    batch = stack.wait_for_batch(str(receipt["sheet_id"]), timeout=120)
    assert batch is not None, "the first step did not end"
    return batch


def redeliver_batch_end(stack: LocalStack, observer: Observer, batch_id: str, ended_by: str) -> None:
    """The batch's BATCH_ENDED record handed to notify again, as a retried stream batch would,
    its delivery records gone (as if the first delivery died before it recorded them)."""
    sk = event_sk("BATCH_ENDED", batch_id)
    item = observer.partition(ended_by)[sk]
    observer.dynamodb.update_item(
        TableName=observer.table,
        Key={"pk": {"S": f"RUN#{ended_by}"}, "sk": {"S": sk}},
        UpdateExpression="REMOVE delivery",
    )
    assert stack.router is not None
    answer = stack.router.invoke("NotifyFunction", stream_event(item, first_sequence=900))
    assert answer == {"batchItemFailures": []}


def cromwell_inputs(stack: LocalStack, workflow_id: str) -> dict[str, Any]:
    url = f"{stack.cromwell_url}/api/workflows/v1/{workflow_id}/metadata"
    answer = requests.get(url, params={"includeKey": ["inputs", "labels"]}, timeout=10)
    answer.raise_for_status()
    return dict(answer.json())


def test_a_two_step_pipeline_runs_from_one_drop_with_one_message_per_step(
    stack: LocalStack, observer: Observer
) -> None:
    batch = first_step(stack, observer, "demo/pipeline", PIPELINE / "genotype")
    batch_id = batch.batch_id
    assert dict(batch.counts) == {"Succeeded": 3}

    child_key = next_inputs_key("demo/pipeline/joint/", batch_id)
    receipt = stack.wait_for(
        lambda: (r := observer.receipt(child_key)) is not None and r["status"] == "Submitted" and r,
        timeout=60,
    )
    assert receipt, observer.receipt(child_key)
    child = receipt["workflow_id"]
    ended = stack.wait_for_end(child, timeout=120)
    assert ended is not None, "the second step did not end"
    assert ended.status is not None
    assert ended.status.value == "Succeeded"

    # the gather's inputs: arrays in the sheet's order, the constant as it was
    document = json.loads(observer.s3.get_object(Bucket=observer.bucket, Key=child_key)["Body"].read())
    assert document == {
        "joint.gvcfs": [f"s3://lab-data/{s}.g.vcf.gz" for s in ("NA12878", "NA12891", "NA12892")],
        "joint.sample_names": ["NA12878", "NA12891", "NA12892"],
        "joint.cohort": "trio",
    }
    assert ended.outputs["joint.joint_vcf"] == "trio: NA12878,NA12891,NA12892 from 3 gVCFs"
    metadata = cromwell_inputs(stack, child)
    assert metadata["labels"][LABEL_PARENT_BATCH] == batch_id
    assert ended.parent_batch == batch_id
    assert ended.chain == ("demo/pipeline/genotype/", "demo/pipeline/joint/")
    assert len(ended.parents) == 3
    stack.settle(timeout=10)

    # one message per step: the batch's digest (saying what it started), the gather's end
    started = f"Started s3://{observer.bucket}/{child_key}"
    digests = [e for e in stack.emails() if e.subject.startswith("Courier: Batch")]
    assert [d.subject for d in digests] == ["Courier: Batch succeeded: per_sample"]
    assert started in digests[0].body
    ends = [e for e in stack.emails() if e.subject.startswith("Courier: Run")]
    assert [e.subject for e in ends] == ["Courier: Run succeeded: joint"]
    assert any(started in p.rendered() for p in stack.slack_posts() if "Batch succeeded" in p.rendered())

    # the batch's end delivered again: no second inputs file version, no second gather run
    versions_before = observer.s3.list_object_versions(Bucket=observer.bucket, Prefix=child_key)["Versions"]
    redeliver_batch_end(stack, observer, batch_id, str(batch.ended_by))
    stack.settle(timeout=10)
    versions = observer.s3.list_object_versions(Bucket=observer.bucket, Prefix=child_key)["Versions"]
    assert len([v for v in versions if v["Key"] == child_key]) == 1
    assert len(versions) == len(versions_before)
    assert len(observer.runs_of(child_key)) == 1
    again = [e for e in stack.emails() if e.subject.startswith("Courier: Batch")]
    assert len(again) == 2  # the digest sent again (its delivery record was lost), the same step
    assert started in again[1].body


def test_require_all_with_a_failed_sample_stops_the_second_step_with_a_clear_message(
    stack: LocalStack, observer: Observer
) -> None:
    batch = first_step(stack, observer, "demo/pipeline-strict", RUNS / "pipeline_strict")
    batch_id = batch.batch_id
    assert dict(batch.counts) == {"Succeeded": 2, "Failed": 1}
    stack.settle(timeout=10)

    child_key = next_inputs_key("demo/pipeline-strict/joint/", batch_id)
    listed = observer.s3.list_objects_v2(Bucket=observer.bucket, Prefix=child_key).get("Contents", [])
    assert [o["Key"] for o in listed] == [child_key + ".receipt.json"]
    receipt = observer.receipt(child_key)
    assert receipt is not None
    assert receipt["status"] == "Rejected"
    why = "require_all is set and 1 of 3 samples did not succeed: S2 (Failed)"
    assert any(why in reason for reason in receipt["reasons"])

    digests = [e for e in stack.emails() if e.mentions(batch_id) and e.subject.startswith("Courier: Batch")]
    assert len(digests) == 1
    assert f"Next step not started: {why}" in digests[0].body
    assert observer.runs_of(child_key) == []
