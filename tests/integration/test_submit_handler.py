"""The submit handler end to end over moto S3 + DynamoDB and the Cromwell-compatible server:
exactly one submission per upload, a receipt beside every inputs file, the ledger in step."""

from __future__ import annotations

import json
import random
from typing import Any

import boto3
import pytest

from courier.conventions import receipt_key, requested_workflow_id
from courier.errors import CromwellUnavailable
from courier.ledger import schema as s
from scripts.replay import replay
from tests.fixtures.bad_runs import BAD_RUNS, BadRun
from tests.support.submit_fixtures import (
    DATA_BUCKET,
    RUNS_BUCKET,
    WDL_FIXTURES,
    SubmitWorld,
    data_objects,
    object_created_event,
    on_failure_record,
    s3_uris,
)

pytestmark = pytest.mark.integration

RNASEQ_SAMPLES = ("sampleA.inputs.json", "sampleB.inputs.json", "sampleC.inputs.json")


def _rnaseq(world: SubmitWorld, prefix: str = "runs/rnaseq/") -> dict[str, dict[str, Any]]:
    events = world.put_fixture("rnaseq", prefix)
    for name in RNASEQ_SAMPLES:
        inputs = json.loads((world.s3.get_object(Bucket=RUNS_BUCKET, Key=prefix + name))["Body"].read())
        data_objects(world.s3, list(s3_uris(inputs)))
    return events


# -- exactly once ------------------------------------------------------------------------------


def test_three_inputs_each_delivered_five_times_shuffled_give_three_runs(world: SubmitWorld) -> None:
    events = _rnaseq(world)
    deliveries = [events[name] for name in RNASEQ_SAMPLES for _ in range(5)]
    # the WDL, options and labels events arrive too, and are ignored
    deliveries += [events[name] for name in events if name not in RNASEQ_SAMPLES]
    random.Random(7).shuffle(deliveries)

    results = [world.invoke(event) for event in deliveries]

    statuses = [r["status"] for r in results]
    assert statuses.count("Submitted") == 3
    assert statuses.count("Duplicate") == 12
    assert len(world.backend.submissions) == 3
    runs = world.runs()
    assert len(runs) == 3
    assert {r["inputs_key"] for r in runs} == {"runs/rnaseq/" + n for n in RNASEQ_SAMPLES}
    for name in RNASEQ_SAMPLES:
        receipt = world.receipt("runs/rnaseq/" + name)
        assert receipt["status"] == "Submitted"
        assert world.backend.find(receipt["workflow_id"]) is not None
    assert {sub.requested_workflow_id for sub in world.backend.submissions} == {
        r["workflow_id"] for r in runs
    }


def test_submission_carries_sources_imports_labels_and_options(world: SubmitWorld) -> None:
    events = _rnaseq(world)
    world.put("runs/rnaseq/tasks/unused.wdl", "version 1.0\ntask spare {\n  command <<< true >>>\n}\n")
    world.invoke(events["sampleA.inputs.json"])

    [sub] = world.backend.submissions
    assert sub.workflow_name == "rnaseq"
    assert (sub.workflow_type, sub.workflow_type_version) == ("WDL", "1.0")
    assert set(sub.part_names) >= {
        "workflowSource",
        "workflowDependencies",
        "workflowInputs",
        "workflowOptions",
        "labels",
        "workflowType",
        "workflowTypeVersion",
        "requestedWorkflowId",
    }
    # the main WDL and the files it imports travel, at their paths relative to the main WDL
    assert set(sub.dependencies or {}) == {
        "main.wdl",
        "tasks/qc.wdl",
        "tasks/align.wdl",
        "tasks/structs.wdl",
        "subworkflows/quant.wdl",
    }
    inputs = json.loads(sub.raw_parts["workflowInputs"])
    assert inputs["rnaseq.sample_id"] == "sampleA"
    options = json.loads(sub.raw_parts["workflowOptions"])
    assert sub.requested_workflow_id in options["aws_batch_script_bucket_prefix"]
    assert options["read_from_cache"] is True
    labels = sub.labels
    assert labels["team"] == "genomics"
    assert any(
        v == "runs/rnaseq/sampleA.inputs.json" or v.endswith("sampleA.inputs.json") for v in labels.values()
    )
    [run] = world.runs()
    assert run["status"] == "Submitted"
    assert run["workflow_name"] == "rnaseq"
    assert run["requester"] == "123456789012"


def test_workflow_id_comes_from_the_upload_not_the_content(world: SubmitWorld) -> None:
    """Same bytes uploaded twice is two runs (a deliberate re-drop); the id is the version's."""
    events = _rnaseq(world)
    first = world.invoke(events["sampleA.inputs.json"])
    body = world.s3.get_object(Bucket=RUNS_BUCKET, Key="runs/rnaseq/sampleA.inputs.json")["Body"].read()
    again = world.put("runs/rnaseq/sampleA.inputs.json", body)
    second = world.invoke(again)

    assert first["status"] == second["status"] == "Submitted"
    assert first["workflow_id"] != second["workflow_id"]
    version = again["detail"]["object"]["version-id"]
    assert second["workflow_id"] == requested_workflow_id(
        RUNS_BUCKET, "runs/rnaseq/sampleA.inputs.json", version, again["detail"]["object"]["sequencer"]
    )
    assert len(world.backend.submissions) == 2
    assert world.receipt("runs/rnaseq/sampleA.inputs.json")["workflow_id"] == second["workflow_id"]


def test_unversioned_bucket_uses_the_sequencer(unversioned_world: SubmitWorld) -> None:
    world = unversioned_world
    events = world.put_folder("runs/hello/", {"hello.wdl": (_fixture("hello/hello.wdl"))})
    del events
    event = world.put("runs/hello/inputs.json", _fixture("hello/inputs.json"))
    assert "version-id" not in event["detail"]["object"]

    results = [world.invoke(event) for _ in range(3)]
    reupload = world.invoke(world.put("runs/hello/inputs.json", _fixture("hello/inputs.json")))

    assert [r["status"] for r in results] == ["Submitted", "Duplicate", "Duplicate"]
    assert reupload["status"] == "Submitted"
    assert reupload["workflow_id"] != results[0]["workflow_id"]
    assert len(world.backend.submissions) == 2


def test_lost_201_is_recognised_by_already_in_use(world: SubmitWorld) -> None:
    events = _rnaseq(world)
    world.server.drop_next_response(1, operation="submit")

    result = world.invoke(events["sampleB.inputs.json"])

    assert result["status"] == "Submitted"
    assert len(world.backend.submissions) == 1
    [run] = world.runs()
    assert run["status"] == "Submitted"
    assert world.receipt("runs/rnaseq/sampleB.inputs.json")["status"] == "Submitted"


def test_function_dies_after_201_before_the_ledger_write(world: SubmitWorld) -> None:
    """The retry of an invocation that died after Cromwell's 201: Cromwell says the id is in
    use, which is the proof the run exists; the ledger and receipt are written once."""
    events = _rnaseq(world)
    event = events["sampleC.inputs.json"]
    wid = requested_workflow_id(
        RUNS_BUCKET,
        "runs/rnaseq/sampleC.inputs.json",
        event["detail"]["object"]["version-id"],
        event["detail"]["object"]["sequencer"],
    )
    # the first invocation reached Cromwell, then the container was killed
    world.server.backend.add(wid, name="rnaseq", status="Running")
    assert world.runs() == []

    result = world.invoke(event)

    assert result == {"status": "Submitted", "workflow_id": wid, "key": "runs/rnaseq/sampleC.inputs.json"}
    assert world.backend.submissions == []
    assert [r["workflow_id"] for r in world.runs()] == [wid]


# -- waiting for files ---------------------------------------------------------------------------


def test_inputs_before_wdl_waits_then_submits(world: SubmitWorld) -> None:
    event = world.put("runs/late/inputs.json", _fixture("hello/inputs.json"))

    def wdl_arrives(seconds: float) -> None:
        world.sleeps.append(seconds)
        world.put("runs/late/hello.wdl", _fixture("hello/hello.wdl"))

    clock = iter(range(0, 1000, 5))
    world.service_options = {"sleep": wdl_arrives, "monotonic": lambda: float(next(clock))}
    result = world.invoke(event, world.service(WDL_WAIT_SECONDS="60", WDL_POLL_SECONDS="5"))

    assert result["status"] == "Submitted"
    assert world.sleeps[0] == 5
    assert len(world.backend.submissions) == 1


def test_inputs_without_wdl_is_refused_after_the_wait(world: SubmitWorld) -> None:
    event = world.put("runs/nowdl/inputs.json", _fixture("hello/inputs.json"))
    clock = iter(range(0, 1000, 5))
    world.service_options = {"sleep": world.sleeps.append, "monotonic": lambda: float(next(clock))}

    result = world.invoke(event, world.service(WDL_WAIT_SECONDS="20", WDL_POLL_SECONDS="5"))

    assert result["status"] == "Rejected"
    assert len(world.sleeps) >= 3
    receipt = world.receipt("runs/nowdl/inputs.json")
    assert receipt["status"] == "Rejected"
    assert any("waited 20 s" in r for r in receipt["reasons"])
    assert any(".wdl" in r for r in receipt["reasons"])
    assert world.backend.submissions == []


# -- inputs that name S3 objects ------------------------------------------------------------------


def test_missing_s3_input_is_refused_at_drop_time(world: SubmitWorld) -> None:
    world.put_fixture("rnaseq", "runs/typo/")
    inputs = json.loads(_fixture("rnaseq/sampleA.inputs.json"))
    data_objects(world.s3, list(s3_uris(inputs)))
    inputs["rnaseq.reference"] = f"s3://{DATA_BUCKET}/reference/GRCh38.transcripst.fa"
    event = world.put("runs/typo/sampleZ.inputs.json", json.dumps(inputs))

    result = world.invoke(event)

    assert result["status"] == "Rejected"
    reasons = world.receipt("runs/typo/sampleZ.inputs.json")["reasons"]
    assert any("GRCh38.transcripst.fa" in r and "does not exist" in r for r in reasons)
    assert world.backend.submissions == []


def test_s3_check_can_be_turned_off(world: SubmitWorld) -> None:
    events = world.put_fixture("rnaseq", "runs/nocheck/")
    result = world.invoke(events["sampleA.inputs.json"], world.service(CHECK_S3_INPUTS="false"))
    assert result["status"] == "Submitted"


# -- keys ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "name"),
    [
        ("runs/Projekt Müller/", "Probe Ä 1.inputs.json"),
        ("runs/测序 批次/", "样本.inputs.json"),
        ("runs/a+b=c&d/", "x%20y.inputs.json"),
    ],
)
def test_keys_with_spaces_and_non_ascii(world: SubmitWorld, prefix: str, name: str) -> None:
    world.put(prefix + "hello.wdl", _fixture("hello/hello.wdl"))
    event = world.put(prefix + name, _fixture("hello/inputs.json"))

    result = world.invoke(event)

    assert result["status"] == "Submitted", world.receipt(prefix + name)
    receipt = world.receipt(prefix + name)
    assert receipt["inputs"] == f"s3://{RUNS_BUCKET}/{prefix}{name}"
    [sub] = world.backend.submissions
    assert (prefix + name) in json.dumps(sub.labels, ensure_ascii=False) or sub.labels


# -- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", BAD_RUNS, ids=lambda case: case.id)
def test_bad_run_through_the_handler(world: SubmitWorld, case: BadRun) -> None:
    prefix = f"runs/bad/{case.id}/"
    inputs_event: dict[str, Any] | None = None
    for name, body in sorted(case.files.items(), key=lambda kv: kv[0] == case.inputs_name):
        event = world.put(prefix + name, body)
        if name == case.inputs_name:
            inputs_event = event
    if inputs_event is None:  # the inputs file itself is what is missing from the folder
        inputs_event = world.put(prefix + case.inputs_name, b"{}")
    data_objects(world.s3, [f"s3://{DATA_BUCKET}/demo/sampleA.fastq.gz"])

    result = world.invoke(inputs_event)

    assert result["status"] == "Rejected"
    assert world.backend.submissions == []
    receipt = world.receipt(prefix + case.inputs_name)
    assert receipt["status"] == "Rejected"
    if case.id.startswith("inputs-name-"):
        # the whole key is checked before the folder is read: the refusal names the key
        assert any("the inputs file's key" in r and "rename it" in r for r in receipt["reasons"])
    else:
        for expected in case.expected:
            assert any(expected in reason for reason in receipt["reasons"]), (expected, receipt["reasons"])
    [run] = world.runs()
    assert run["status"] == "Rejected"
    assert run["reasons"] == receipt["reasons"]


BROKEN_EVENTS: list[tuple[str, Any, bool]] = [
    # (id, event, a receipt can be left because bucket and key are readable)
    ("not-a-mapping", ["Object Created"], False),
    ("empty", {}, False),
    ("no-detail", {"detail-type": "Object Created", "source": "aws.s3"}, False),
    (
        "no-version-no-sequencer",
        object_created_event(RUNS_BUCKET, "runs/broken/a.inputs.json", size=2),
        True,
    ),
    (
        "size-not-a-number",
        object_created_event(RUNS_BUCKET, "runs/broken/b.inputs.json", size=2, sequencer="0A")
        | {
            "detail": {
                "bucket": {"name": RUNS_BUCKET},
                "object": {"key": "runs/broken/b.inputs.json", "size": "big"},
            }
        },
        True,
    ),
    ("no-bucket", {"detail": {"object": {"key": "runs/broken/c.inputs.json"}}}, False),
    (
        "folder-key",
        object_created_event(RUNS_BUCKET, "runs/broken/", size=0, sequencer="0B"),
        False,
    ),
    (
        "key-not-a-string",
        object_created_event(RUNS_BUCKET, "x", size=0, sequencer="0C")
        | {"detail": {"bucket": {"name": RUNS_BUCKET}, "object": {"key": 42}}},
        False,
    ),
]


@pytest.mark.parametrize(("case_id", "event", "answerable"), BROKEN_EVENTS, ids=[c[0] for c in BROKEN_EVENTS])
def test_broken_events_are_refused_not_crashed(
    world: SubmitWorld, case_id: str, event: Any, answerable: bool
) -> None:
    result = world.invoke(event)

    assert result["status"] in {"Invalid", "Rejected"}
    assert world.backend.submissions == []
    if answerable:
        key = event["detail"]["object"]["key"]
        receipt = world.receipt(key)
        assert receipt["status"] == "Rejected"
        assert receipt["reasons"]
        assert all(r for r in receipt["reasons"])
    else:
        assert world.runs() == []


def test_files_that_are_not_inputs_are_ignored(world: SubmitWorld) -> None:
    for key in (
        "runs/x/main.wdl",
        "runs/x/options.json",
        "runs/x/a.inputs.json.receipt.json",
        "runs/x/inputs.jsonl",
    ):
        assert world.invoke(world.put(key, b"{}"))["status"] == "Ignored"
    assert world.runs() == []
    assert world.s3.list_objects_v2(Bucket=RUNS_BUCKET, Prefix="runs/x/")["KeyCount"] == 4


# -- Cromwell down: retried, parked, replayed --------------------------------------------------


@pytest.mark.parametrize("outage", ["503", "refused"])
def test_cromwell_down_then_replayed_submits_exactly_once(world: SubmitWorld, outage: str) -> None:
    events = _rnaseq(world)
    event = events["sampleA.inputs.json"]
    key = "runs/rnaseq/sampleA.inputs.json"
    if outage == "503":
        world.server.fail_next(100, status=503)
    else:
        world.server.stop()

    # Lambda's own retries: each invocation retries inside, then fails
    for _ in range(3):
        with pytest.raises(CromwellUnavailable):
            world.invoke(event)
    assert world.sleeps, "the client backs off between attempts"
    assert world.receipt(key)["status"] == "Waiting"
    assert world.runs() == []  # nothing half-written

    # the on-failure destination parks the event
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName="courier-submit-parking")["QueueUrl"]
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(on_failure_record(event)))

    # recovery, then the operator replays (twice, by accident)
    if outage == "503":
        world.server.clear_faults()
    else:
        world.server.start()

    def invoke(parked: dict[str, Any]) -> bool:
        try:
            world.invoke(parked)
        except CromwellUnavailable:
            return False
        return True

    first = replay(sqs, invoke, queue_url)
    second = replay(sqs, invoke, queue_url)
    world.invoke(event)  # and a late redelivery of the original event

    assert (first.replayed, first.failed, second.replayed) == (1, 0, 0)
    assert len(world.backend.submissions) == 1
    [run] = world.runs()
    assert run["status"] == "Submitted"
    assert world.receipt(key)["status"] == "Submitted"
    assert world.receipt(key)["workflow_id"] == run["workflow_id"]


def test_replay_leaves_a_message_that_fails_again(world: SubmitWorld) -> None:
    events = _rnaseq(world)
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName="courier-submit-parking")["QueueUrl"]
    sqs.send_message(
        QueueUrl=queue_url, MessageBody=json.dumps(on_failure_record(events["sampleB.inputs.json"]))
    )
    sqs.send_message(QueueUrl=queue_url, MessageBody="not json")

    report = replay(sqs, lambda _event: False, queue_url, max_messages=2)

    assert (report.replayed, report.failed, report.skipped) == (0, 1, 1)
    assert len(report.errors) == 2
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    in_queue = int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )
    assert in_queue == 2


def test_cromwell_400_other_than_in_use_is_a_refusal(world: SubmitWorld) -> None:
    events = _rnaseq(world)
    world.server.fail_next(1, status=400, operation="submit", message="Error(s): Invalid workflow options")

    result = world.invoke(events["sampleA.inputs.json"])

    assert result["status"] == "Rejected"
    reasons = world.receipt("runs/rnaseq/sampleA.inputs.json")["reasons"]
    assert any("Cromwell refused the run" in r and "Invalid workflow options" in r for r in reasons)
    [run] = world.runs()
    assert run["status"] == "Rejected"


def test_receipt_key_is_beside_the_inputs_file() -> None:
    assert receipt_key("runs/a/sampleA.inputs.json") == "runs/a/sampleA.inputs.json.receipt.json"


def _fixture(rel: str) -> bytes:
    return (WDL_FIXTURES / rel).read_bytes()


def _ledger_events(world: SubmitWorld) -> list[dict[str, Any]]:
    return [i for i in world.ledger_items() if str(i[s.SK]).startswith(s.EVENT_SK_PREFIX)]


def test_rejected_run_leaves_a_notification_event(world: SubmitWorld) -> None:
    event = world.put("runs/r/inputs.json", b"[1, 2]")
    world.put("runs/r/hello.wdl", _fixture("hello/hello.wdl"))
    world.invoke(event)
    kinds = [str(e[s.SK]) for e in _ledger_events(world)]
    assert any("REJECTED" in k.upper() for k in kinds), kinds
