"""Fault injection on the submit function (moto S3 and DynamoDB, the local Cromwell server).

Each scenario breaks one thing, lets the function fail or retry the way Lambda would (the same
event again, up to three tries, then the parking queue and `scripts/replay.py`), and then checks
the invariants of `SubmitWorld.check`: one run item and one outbox event per inputs file, exactly
one Cromwell workflow per submitted run, and a receipt that agrees with the ledger.
"""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest

from courier.errors import CromwellUnavailable
from scripts.replay import replay
from submit.upload import Upload
from tests.reliability.conftest import Tally
from tests.reliability.harness import FlakyClient, Killed, SubmitWorld, Tripwire, client_error, throttled
from tests.support.submit_fixtures import REGION, on_failure_record

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:No application metrics:UserWarning"),
]


def key_of(event: dict[str, Any]) -> str:
    return str(event["detail"]["object"]["key"])


def finish(world: SubmitWorld, tally: Tally, keys: list[str]) -> dict[str, int]:
    seen = world.check(keys)
    tally.set(events_delivered=world.delivered, **seen)
    return seen


def wait_for(condition: Any, what: str, limit: float = 10.0) -> None:
    """Wait for a background effect (a delayed request the server is still handling)."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


# -- Cromwell ------------------------------------------------------------------------------------


def test_cromwell_503s_are_retried_inside_the_invocation(world: SubmitWorld, tally: Tally) -> None:
    """Cromwell answers 503 twice, then accepts: one invocation, one workflow."""
    (event,) = world.drop_run("runs/503")
    world.server.fail_next(2, status=503, operation="submit")
    result = world.invoke(event, world.service(cromwell=world.cromwell_client(max_attempts=3)))
    assert result["status"] == "Submitted"
    assert world.server.calls("submit") == 3
    assert len(world.sleeps) == 2  # two backoffs between three tries
    finish(world, tally, [key_of(event)])


def test_cromwell_down_parks_the_event_and_replay_submits_it_once(world: SubmitWorld, tally: Tally) -> None:
    """Cromwell stays down through Lambda's three tries: Waiting receipt, parked, replayed once."""
    (event,) = world.drop_run("runs/down")
    world.server.fail_next(100, status=503)
    for _try in range(3):  # the invocation and Lambda's two retries
        with pytest.raises(CromwellUnavailable):
            world.invoke(event, world.service(cromwell=world.cromwell_client(max_attempts=2)))
    receipt = world.receipt(key_of(event))
    assert receipt is not None
    assert receipt["status"] == "Waiting"
    assert world.runs() == {}, "nothing is recorded while Cromwell has not taken the run"
    assert world.submissions() == {}

    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="courier-submit-parking")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(on_failure_record(event)))
    world.server.clear_faults()

    def invoke(parked: dict[str, Any]) -> bool:
        return world.invoke(parked, world.service())["status"] == "Submitted"

    report = replay(sqs, invoke, queue)
    assert (report.replayed, report.failed, report.skipped) == (1, 0, 0)
    assert "Messages" not in sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0)
    # a second replay of the same record (say it was parked twice) changes nothing
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(on_failure_record(event)))
    again = replay(sqs, lambda parked: world.invoke(parked, world.service())["status"] == "Duplicate", queue)
    assert again.replayed == 1
    seen = finish(world, tally, [key_of(event)])
    assert seen["submissions"] == 1


def test_timeout_is_retried_and_creates_one_workflow(world: SubmitWorld, tally: Tally) -> None:
    """Cromwell answers the submission too slowly: the client times out and retries."""
    (event,) = world.drop_run("runs/slow")
    world.server.delay_next(1, 0.8, operation="submit")
    client = world.cromwell_client(max_attempts=3, timeout=(1.0, 0.2))
    result = world.invoke(event, world.service(cromwell=client))
    assert result["status"] == "Submitted"
    # the slow request is still handled after its wait, as a slow Cromwell would do
    wait_for(lambda: len([r for r in world.server.requests if r.operation == "submit"]) >= 2, "two submits")
    seen = finish(world, tally, [key_of(event)])
    assert seen["submissions"] == 1


def test_refused_connections_then_cromwell_back(world: SubmitWorld, tally: Tally) -> None:
    """Cromwell is stopped (connection refused), then started again before Lambda's retry."""
    (event,) = world.drop_run("runs/refused")
    world.server.stop()
    with pytest.raises(CromwellUnavailable):
        world.invoke(event, world.service())
    receipt = world.receipt(key_of(event))
    assert receipt is not None
    assert receipt["status"] == "Waiting"
    world.server.start()
    assert world.invoke(event, world.service())["status"] == "Submitted"
    assert world.receipt(key_of(event))["status"] == "Submitted"  # type: ignore[index]
    finish(world, tally, [key_of(event)])


def test_lost_201_is_recognised_by_the_retry(world: SubmitWorld, tally: Tally) -> None:
    """Cromwell creates the workflow but its 201 never arrives: the retry gets 'already in use'."""
    (event,) = world.drop_run("runs/lost201")
    world.server.drop_next_response(1)
    assert world.invoke(event, world.service())["status"] == "Submitted"
    assert world.server.calls("submit") == 2
    seen = finish(world, tally, [key_of(event)])
    assert seen["submissions"] == 1


def test_lost_answers_on_every_try_then_the_redelivery_records_the_run(
    world: SubmitWorld, tally: Tally
) -> None:
    """Every answer of the first invocation is lost; the next invocation records the run."""
    (event,) = world.drop_run("runs/lost-all")
    world.server.drop_next_response(3)
    with pytest.raises(CromwellUnavailable):
        world.invoke(event, world.service(cromwell=world.cromwell_client(max_attempts=3)))
    assert len(world.submissions()) == 1, "Cromwell has the workflow, the ledger not yet"
    assert world.runs() == {}
    assert world.invoke(event, world.service())["status"] == "Submitted"
    seen = finish(world, tally, [key_of(event)])
    assert seen["submissions"] == 1


# -- DynamoDB ------------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["get_item", "transact_write_items"])
def test_throttled_ledger_fails_the_invocation_and_the_retry_completes(
    world: SubmitWorld, tally: Tally, operation: str
) -> None:
    """The ledger table is throttled beyond the client's own retries on one call."""
    (event,) = world.drop_run(f"runs/throttle-{operation}")
    flaky = FlakyClient(world.ddb).fail(operation, throttled(operation))
    result, errors = world.invoke_until_done(event, [world.service(ddb=flaky), world.service(ddb=flaky)])
    assert len(errors) == 1
    assert "ProvisionedThroughputExceeded" in str(errors[0])
    assert result["status"] == "Submitted"
    seen = finish(world, tally, [key_of(event)])
    assert seen["submissions"] == 1


def test_two_invocations_of_one_event_race_to_the_ledger(world: SubmitWorld, tally: Tally) -> None:
    """Two instances handle the same event at once: the conditional writes let one win."""
    (event,) = world.drop_run("runs/race")
    other = world.service()

    class RacingFolders:
        """Lets the other instance handle the whole event while this one reads the folder."""

        def __init__(self, inner: Any) -> None:
            self.inner = inner
            self.raced = False

        def read_folder(self, upload: Upload, limits: Any) -> Any:
            if not self.raced:
                self.raced = True
                assert world.invoke(event, other)["status"] == "Submitted"
            return self.inner.read_folder(upload, limits)

    first = world.service(wrap={"folders": RacingFolders})
    assert world.invoke(event, first)["status"] == "Submitted"
    assert world.server.calls("submit") == 2, "the late instance submitted and got 'already in use'"
    seen = finish(world, tally, [key_of(event)])
    assert seen["outbox_events"] == 1


def test_a_rejected_run_raced_by_two_instances_is_refused_once(world: SubmitWorld, tally: Tally) -> None:
    """Two instances refuse the same broken run at once: one REJECTED event."""
    event = world.put("runs/broken/inputs.json", b"{not json")
    world.put("runs/broken/main.wdl", b"version 1.0\nworkflow w {}\n")
    other = world.service()

    class RacingLedger:
        def __init__(self, inner: Any) -> None:
            self.inner = inner
            self.raced = False

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def record_rejected(self, run: Any) -> bool:
            if not self.raced:
                self.raced = True
                assert world.invoke(event, other)["status"] == "Rejected"
            recorded: bool = self.inner.record_rejected(run)
            assert recorded is False
            return recorded

    assert world.invoke(event, world.service(wrap={"ledger": RacingLedger}))["status"] == "Rejected"
    seen = finish(world, tally, [key_of(event)])
    assert seen["outbox_events"] == 1


# -- S3 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "code"),
    [("get_object", "InternalError"), ("list_objects_v2", "SlowDown"), ("put_object", "InternalError")],
)
def test_s3_errors_fail_the_invocation_and_the_retry_completes(
    world: SubmitWorld, tally: Tally, operation: str, code: str
) -> None:
    """S3 fails a read (the folder, a file) or the receipt write once."""
    (event,) = world.drop_run(f"runs/s3-{operation}")
    flaky = FlakyClient(world.s3).fail(operation, client_error(code, operation))
    result, errors = world.invoke_until_done(event, [world.service(s3=flaky), world.service(s3=flaky)])
    assert len(errors) == 1
    assert code in str(errors[0])
    # a failed receipt write comes after the ledger write: the retry is a recognised duplicate
    assert result["status"] == ("Duplicate" if operation == "put_object" else "Submitted")
    seen = finish(world, tally, [key_of(event)])
    assert seen["submissions"] == 1


# -- the function stopped mid-way -----------------------------------------------------------------

KILL_POINTS = [
    ("folders", "read_folder", "before"),
    ("folders", "read_folder", "after"),
    ("cromwell", "submit", "before"),
    ("cromwell", "submit", "after"),
    ("ledger", "record_submitted", "before"),
    ("ledger", "record_submitted", "after"),
    ("receipts", "write", "before"),
]


@pytest.mark.parametrize(("collaborator", "method", "when"), KILL_POINTS)
def test_stopped_mid_way_then_the_same_event_again(
    world: SubmitWorld, tally: Tally, collaborator: str, method: str, when: str
) -> None:
    """The instance stops at one step; Lambda delivers the same event again."""
    (event,) = world.drop_run(f"runs/kill-{collaborator}-{method}-{when}")
    trip: dict[str, Tripwire] = {}

    def wrap(inner: Any) -> Tripwire:
        trip["wire"] = Tripwire(inner, method, when=when)
        return trip["wire"]

    with pytest.raises(Killed):
        world.invoke(event, world.service(wrap={collaborator: wrap}))
    assert trip["wire"].fired == 1
    result = world.invoke(event, world.service())
    recorded_before = (collaborator, method, when) in {
        ("ledger", "record_submitted", "after"),
        ("receipts", "write", "before"),
    }
    assert result["status"] == ("Duplicate" if recorded_before else "Submitted")
    seen = finish(world, tally, [key_of(event)])
    assert seen["submissions"] == 1


@pytest.mark.parametrize(("method", "when"), [("record_rejected", "after"), ("write", "before")])
def test_stopped_mid_refusal_then_the_same_event_again(
    world: SubmitWorld, tally: Tally, method: str, when: str
) -> None:
    """The instance stops while refusing a run; the redelivery writes the same refusal."""
    event = world.put(f"runs/kill-refusal-{method}/inputs.json", b"[1, 2")
    world.put(f"runs/kill-refusal-{method}/main.wdl", b"version 1.0\nworkflow w {}\n")
    collaborator = "ledger" if method == "record_rejected" else "receipts"
    with pytest.raises(Killed):
        world.invoke(
            event, world.service(wrap={collaborator: lambda inner: Tripwire(inner, method, when=when)})
        )
    assert world.invoke(event, world.service())["status"] == "Duplicate"
    receipt = world.receipt(key_of(event))
    assert receipt is not None
    assert receipt["reasons"], "the redelivered refusal keeps its reasons"
    finish(world, tally, [key_of(event)])
