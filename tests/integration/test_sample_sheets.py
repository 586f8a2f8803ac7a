"""Sample sheets through the submit handler and the rows function, over moto (S3, DynamoDB, SQS)
and the Cromwell-compatible server: one run per good row exactly once, bad rows refused alone,
hostile sheets refused whole with nothing submitted, receipts rewritten (never appended), rows
that meet an unreachable Cromwell returned to the queue, then parked and replayed."""

from __future__ import annotations

import csv
import io
import json
import random
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from courier.conventions import receipt_key, requested_workflow_id, rows_receipt_key, sheet_row_key
from courier.ledger.sheets import SheetLedger
from local.stack.wiring import sqs_event
from scripts.replay import original_event, replay
from submit import rows
from submit.handler import lambda_handler
from submit.sheet_adapters import Pacer
from submit.sheet_composition import build_row_service, build_sheet_service
from submit.sheet_service import RowService, SheetService
from submit.sheet_settings import SheetSettings
from tests.support.submit_fixtures import RUNS_BUCKET, TABLE, WDL_FIXTURES, FakeContext, SubmitWorld

pytestmark = pytest.mark.integration

PREFIX = "runs/cohort/"
SHEET = PREFIX + "samples.tsv"
HEADER = "sample\tsample_id\treads\ttags"


@dataclass
class SheetWorld:
    world: SubmitWorld
    sqs: Any
    queue_url: str
    dlq_url: str
    sheets: SheetService
    rows: RowService
    paced: list[float]
    settings: SheetSettings
    base: Any
    waiting: list[str] = field(default_factory=list)  # receipt handles of reported rows

    def folder(self, *, common: dict[str, Any] | None = None, options: dict[str, Any] | None = None) -> None:
        self.world.put(PREFIX + "main.wdl", (WDL_FIXTURES / "cohort" / "main.wdl").read_bytes())
        if options is not None:
            self.world.put(PREFIX + "options.json", json.dumps(options))
        if common is not None:
            self.world.put(PREFIX + "inputs.json", json.dumps(common))

    def drop(self, body: bytes | str, key: str = SHEET) -> tuple[dict[str, Any], dict[str, Any]]:
        """Upload a sheet and deliver its event to the submit function; (event, answer)."""
        event = self.world.put(key, body)
        return event, self.deliver(event)

    def deliver(self, event: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = lambda_handler(
            event,
            FakeContext(),  # type: ignore[arg-type]
            service=self.world.service(),
            sheets=self.sheets,
        )
        return answer

    def queued(self) -> int:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def drain(self, *, duplicate_each: bool = False, max_batches: int = 100) -> list[dict[str, Any]]:
        """Play the SQS event source: batches of up to 10 to the rows function; answered rows are
        deleted, reported ones stay (with the delay the function set)."""
        answers = []
        for _ in range(max_batches):
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
            ).get("Messages", [])
            if not messages:
                break
            event = sqs_event(messages, "arn:aws:sqs:us-east-1:123456789012:rows", "us-east-1")
            answer: dict[str, Any] = rows.lambda_handler(event, FakeContext(), service=self.rows)  # type: ignore[arg-type]
            if duplicate_each:  # SQS delivers at least once: the same batch again
                rows.lambda_handler(event, FakeContext(), service=self.rows)  # type: ignore[arg-type]
            answers.append(answer)
            failed = {item["itemIdentifier"] for item in answer["batchItemFailures"]}
            for message in messages:
                if message["MessageId"] not in failed:
                    self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
                else:
                    self.waiting.append(message["ReceiptHandle"])
        return answers

    def table(self, key: str = SHEET) -> list[dict[str, str]]:
        body = self.world.s3.get_object(Bucket=RUNS_BUCKET, Key=rows_receipt_key(key))["Body"].read().decode()
        return list(csv.DictReader(io.StringIO(body), delimiter="\t"))

    def receipt(self, key: str = SHEET) -> dict[str, Any]:
        return self.world.receipt(key)

    def ledger(self) -> SheetLedger:
        return SheetLedger(TABLE, self.world.dynamodb)


@pytest.fixture
def sheets(world: SubmitWorld) -> SheetWorld:
    sqs = boto3.client("sqs", region_name="us-east-1")
    dlq_url = sqs.create_queue(QueueName="courier-sheet-rows-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue_url = sqs.create_queue(
        QueueName="courier-sheet-rows",
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})},
    )["QueueUrl"]
    world.env.update({"SHEET_ROWS_QUEUE_URL": queue_url, "MAX_SHEET_ROWS": "50", "CHECK_S3_INPUTS": "false"})
    settings = SheetSettings.model_validate(
        {"LEDGER_TABLE": TABLE, "CROMWELL_URL": world.server.url, "WDL_WAIT_SECONDS": "0", **world.env}
    )
    base = world.service()
    paced: list[float] = []
    pacer = Pacer(settings.per_invocation_rate, monotonic=lambda: 0.0, sleep=paced.append)
    return SheetWorld(
        world=world,
        sqs=sqs,
        queue_url=queue_url,
        dlq_url=dlq_url,
        sheets=build_sheet_service(settings, base, s3=world.s3, dynamodb=world.dynamodb, sqs=sqs),
        rows=build_row_service(settings, base, s3=world.s3, dynamodb=world.dynamodb, sqs=sqs, pacer=pacer),
        paced=paced,
        settings=settings,
        base=base,
    )


def sheet_text(*rows: str, header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


GOOD_ROWS = ('S1\tid-1\t10\t["a"]', "S2\tid-2\t20\t", "S3\tid-3\t\t")


# -- the good path ---------------------------------------------------------------------------


def test_each_row_is_one_run_exactly_once_under_redelivery(sheets: SheetWorld) -> None:
    sheets.folder(common={"cohort.greeting": "Hello"})
    event, answer = sheets.drop(sheet_text(*GOOD_ROWS))
    assert (answer["status"], answer["queued"], answer["refused"]) == ("Queued", 3, 0)
    # the sheet event delivered again (and again, shuffled with the rows' processing)
    assert sheets.deliver(event)["status"] == "Duplicate"
    assert sheets.queued() == 3

    sheets.drain(duplicate_each=True)
    assert sheets.deliver(event)["status"] == "Duplicate"
    sheets.drain()

    backend = sheets.world.backend
    assert len(backend.submissions) == 3
    ids = {
        requested_workflow_id(
            RUNS_BUCKET, sheet_row_key(SHEET, line), event["detail"]["object"]["version-id"], None
        )
        for line in (2, 3, 4)
    }
    assert {r["workflow_id"] for r in sheets.world.runs()} == ids
    inputs = sorted(
        (sub.inputs for sub in backend.submissions),
        key=lambda d: d["cohort.sample_id"],
    )
    assert inputs == [
        {"cohort.greeting": "Hello", "cohort.sample_id": "id-1", "cohort.reads": 10, "cohort.tags": ["a"]},
        {"cohort.greeting": "Hello", "cohort.sample_id": "id-2", "cohort.reads": 20},
        {"cohort.greeting": "Hello", "cohort.sample_id": "id-3"},
    ]
    # Cromwell was paced: one wait per submission after the first
    assert len(sheets.paced) == 2

    receipt = sheets.receipt()
    assert receipt["status"] == "Done"
    assert receipt["counts"] == {"Queued": 0, "Waiting": 0, "Submitted": 3, "Rejected": 0}
    assert receipt["rows"] == 3
    assert receipt["receipts"] == rows_receipt_key(SHEET)
    assert any("inputs.json gives the values common to every row" in w for w in receipt["warnings"])
    table = sheets.table()
    assert [(r["line"], r["sample"], r["status"]) for r in table] == [
        ("2", "S1", "Submitted"),
        ("3", "S2", "Submitted"),
        ("4", "S3", "Submitted"),
    ]
    assert {r["workflow_id"] for r in table} == ids
    # the rows' runs are in the ledger under the row's key; the inputs.json started none
    assert {r["inputs_key"] for r in sheets.world.runs()} == {sheet_row_key(SHEET, n) for n in (2, 3, 4)}


def test_inputs_json_beside_a_sheet_starts_no_run(sheets: SheetWorld) -> None:
    sheets.folder()
    sheets.drop(sheet_text(*GOOD_ROWS))
    event = sheets.world.put(PREFIX + "inputs.json", json.dumps({"cohort.greeting": "Hi"}))
    assert sheets.deliver(event)["status"] == "Ignored"
    assert not sheets.world.has_receipt(PREFIX + "inputs.json")
    # a folder whose options.json names its sheet: inputs.json is common values even before it
    other = "runs/named/"
    sheets.world.put(other + "options.json", json.dumps({"courier_sample_sheet": "cohort.csv"}))
    event = sheets.world.put(other + "inputs.json", json.dumps({"cohort.greeting": "Hi"}))
    assert sheets.deliver(event)["status"] == "Ignored"
    assert sheets.world.backend.submissions == []


def test_a_sheet_named_in_options_json_and_other_csv_files(sheets: SheetWorld) -> None:
    sheets.folder(common={"cohort.greeting": "Hi"}, options={"courier_sample_sheet": "cohort.csv"})
    # samples.tsv is not this folder's sheet any more; nor is a data file
    assert sheets.drop(sheet_text(*GOOD_ROWS))[1]["status"] == "Ignored"
    assert sheets.drop("a,b\n1,2\n", key=PREFIX + "metrics.csv")[1]["status"] == "Ignored"
    _, answer = sheets.drop('sample,sample_id,tags\r\nA,x,"[""t1"", ""t2""]"\r\n', key=PREFIX + "cohort.csv")
    assert (answer["status"], answer["queued"]) == ("Queued", 1)
    sheets.drain()
    (submission,) = sheets.world.backend.submissions
    assert submission.inputs["cohort.tags"] == ["t1", "t2"]
    assert sheets.table(PREFIX + "cohort.csv")[0]["status"] == "Submitted"
    # the receipts table is the function's own upload: it is never taken for a sheet
    event = sheets.world.put(rows_receipt_key(PREFIX + "cohort.csv"), "line\n")
    assert sheets.deliver(event)["status"] == "Ignored"


# -- bad rows are refused alone; hostile sheets are refused whole ------------------------------


def test_bad_rows_are_refused_alone_and_announced_once(sheets: SheetWorld) -> None:
    sheets.folder(common={"cohort.greeting": "Hello"})
    body = sheet_text(
        "S1\tid-1\t10\t",
        "S2\tid-2\tmany\t",  # wrong type
        "S3\t=cmd|' /C calc'!A0\t1\t",  # a formula
        "S4\tid-4\t4",  # ragged
        "S1\tid-5\t5\t",  # S1 again
        "S6\tid-6\t6\t",
    )
    _, answer = sheets.drop(body)
    assert (answer["status"], answer["queued"], answer["refused"]) == ("Queued", 1, 5)
    sheets.drain()
    assert [s.inputs["cohort.sample_id"] for s in sheets.world.backend.submissions] == ["id-6"]
    table = {r["sample"] + "@" + r["line"]: r for r in sheets.table()}
    assert table["S6@7"]["status"] == "Submitted"
    assert "should be Int but the cell 'many' is not a whole number" in table["S2@3"]["reasons"]
    assert "would run as a formula" in table["S3@4"]["reasons"]
    assert "has 3 cells; the header has 4 columns" in table["S4@5"]["reasons"]
    assert "sample names must be unique" in table["S1@2"]["reasons"]
    assert "sample names must be unique" in table["S1@6"]["reasons"]
    assert all(table[k]["status"] == "Rejected" for k in table if k != "S6@7")
    receipt = sheets.receipt()
    assert (receipt["status"], receipt["counts"]["Submitted"], receipt["counts"]["Rejected"]) == (
        "Done",
        1,
        5,
    )
    # one REJECTED notification for the sheet, naming the refused rows
    (sheet_run,) = [r for r in sheets.world.runs() if r["inputs_key"] == SHEET]
    assert sheet_run["status"] == "Rejected"
    assert "5 of 6 rows were refused" in sheet_run["reasons"][0]


HOSTILE = {
    "non-utf8": (b"sample\tsample_id\nS1\t\xe9t\xe9\n", "is not UTF-8 text"),
    "empty": (b"", "samples.tsv is empty"),
    "header-only": (b"sample_id\n", "has a header but no rows"),
    "unknown-column": (
        b"sample_id\tsampel\nS1\tx\n",
        "the column 'sampel' is not an input of workflow cohort",
    ),
    "missing-required": (
        b"sample\treads\nS1\t4\n",
        "required input 'cohort.sample_id' (String) is neither a column",
    ),
    "over-the-limit": (
        b"sample_id\n" + b"".join(b"id%d\n" % n for n in range(51)),
        "holds more than 50 rows",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_sheets_are_refused_whole_and_nothing_is_submitted(sheets: SheetWorld, case: str) -> None:
    sheets.folder(common={"cohort.greeting": "Hello"})
    body, reason = HOSTILE[case]
    _, answer = sheets.drop(body)
    assert answer["status"] == "Rejected"
    assert sheets.queued() == 0
    assert sheets.world.backend.submissions == []
    receipt = sheets.receipt()
    assert receipt["status"] == "Rejected"
    assert receipt["rows"] == 0
    assert any(reason in r for r in receipt["reasons"]), receipt["reasons"]
    assert sheets.table() == []
    (sheet_run,) = sheets.world.runs()
    assert sheet_run["status"] == "Rejected"


def test_a_row_refused_by_cromwell_is_refused_alone(sheets: SheetWorld) -> None:
    sheets.folder(common={"cohort.greeting": "Hello"})
    sheets.drop(sheet_text(*GOOD_ROWS))
    sheets.world.server.fail_next(1, status=400, operation="submit")
    sheets.drain()
    statuses = sorted(r["status"] for r in sheets.table())
    assert statuses == ["Rejected", "Submitted", "Submitted"]
    assert sheets.receipt()["counts"]["Rejected"] == 1


# -- Cromwell down: rows go back to the queue, then to the DLQ, then are replayed ----------------


def test_rows_back_off_on_503_then_park_and_replay_exactly_once(sheets: SheetWorld) -> None:
    sheets.folder(common={"cohort.greeting": "Hello"})
    sheets.drop(sheet_text(*GOOD_ROWS))
    sheets.world.server.fail_next(1000, status=503)

    (answer,) = sheets.drain()
    # the first row met the 503; the others were not tried and all three wait
    assert len(answer["batchItemFailures"]) == 3
    assert sheets.world.backend.submissions == []
    assert sheets.queued() == 3  # invisible for the delay the function set
    assert sheets.receipt()["counts"]["Waiting"] == 1
    assert {r["status"] for r in sheets.table()} == {"Waiting", "Queued"}

    # the delay is the function's: 30 s, doubling with each receipt, at most 15 minutes
    assert [sheets.rows.delay(n) for n in (1, 2, 3, 6, 10)] == [30, 60, 120, 900, 900]

    # with no delay (time passing), still down: after maxReceiveCount (2 here) SQS parks them
    sheets.rows = build_row_service(
        sheets.settings,
        sheets.base,
        s3=sheets.world.s3,
        dynamodb=sheets.world.dynamodb,
        sqs=sheets.sqs,
        retry_base_seconds=0,
    )
    for handle in sheets.waiting:  # the first delay has passed
        sheets.sqs.change_message_visibility(
            QueueUrl=sheets.queue_url, ReceiptHandle=handle, VisibilityTimeout=0
        )
    sheets.drain()
    assert sheets.queued() == 0
    parked = sheets.sqs.get_queue_attributes(
        QueueUrl=sheets.dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert int(parked["Attributes"]["ApproximateNumberOfMessages"]) == 3
    assert sheets.world.backend.submissions == []

    sheets.world.server.clear_faults()

    def invoke(event: dict[str, Any]) -> bool:
        answer = rows.lambda_handler(event, FakeContext(), service=sheets.rows)  # type: ignore[arg-type]
        return not answer["batchItemFailures"]

    first = replay(sheets.sqs, invoke, sheets.dlq_url)
    second = replay(sheets.sqs, invoke, sheets.dlq_url)
    assert (first.replayed, first.failed, second.replayed) == (3, 0, 0)
    assert len(sheets.world.backend.submissions) == 3
    receipt = sheets.receipt()
    assert (receipt["status"], receipt["counts"]["Submitted"]) == ("Done", 3)


def test_row_messages_replay_as_sqs_events() -> None:
    body = json.dumps({"kind": "courier-sheet-row", "sheet_id": "abc", "line": 7})
    event = original_event(body)
    assert event is not None
    (record,) = event["Records"]
    assert (record["body"], record["messageId"]) == (body, "replay-abc-7")


def test_receipts_are_rewritten_whole_never_appended(sheets: SheetWorld) -> None:
    sheets.folder(common={"cohort.greeting": "Hello"})
    event, _ = sheets.drop(sheet_text(*GOOD_ROWS))
    sheets.drain()
    first = sheets.table()
    for _ in range(3):
        sheets.deliver(event)
    assert sheets.table() == first
    assert len(first) == 3


def test_shuffled_redeliveries_of_many_rows(sheets: SheetWorld) -> None:
    sheets.folder(common={"cohort.greeting": "Hello"})
    lines = [f"S{n}\tid-{n}\t{n}\t" for n in range(1, 31)]
    _event, answer = sheets.drop(sheet_text(*lines))
    assert answer["queued"] == 30
    # every row message delivered twice, in random order, in batches of 10
    messages = []
    while batch := sheets.sqs.receive_message(QueueUrl=sheets.queue_url, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        messages.extend(batch)
    assert len(messages) == 30
    twice = messages * 2
    random.Random(3).shuffle(twice)
    for start in range(0, len(twice), 10):
        event_batch = sqs_event(
            twice[start : start + 10], "arn:aws:sqs:us-east-1:123456789012:rows", "us-east-1"
        )
        assert rows.lambda_handler(event_batch, FakeContext(), service=sheets.rows)["batchItemFailures"] == []  # type: ignore[arg-type]
    assert len(sheets.world.backend.submissions) == 30
    receipt = sheets.receipt()
    assert (receipt["status"], receipt["counts"]["Submitted"]) == ("Done", 30)
    assert [r["status"] for r in sheets.table()] == ["Submitted"] * 30
    sheet = sheets.ledger().sheet(receipt["sheet_id"])
    assert sheet is not None
    assert (sheet["rows_Submitted"], sheet["rows_Queued"], sheet["rows_Waiting"]) == (30, 0, 0)
    assert not sheets.world.has_receipt(sheet_row_key(SHEET, 2))  # rows write no receipt files
    assert receipt_key(SHEET) == SHEET + ".receipt.json"


def test_a_sheet_waits_for_the_inputs_json_copied_after_it(sheets: SheetWorld) -> None:
    sheets.folder()
    clock = [0.0]

    def sleep(seconds: float) -> None:  # the user's copy of inputs.json lands while the sheet waits
        clock[0] += seconds
        sheets.world.put(PREFIX + "inputs.json", json.dumps({"cohort.greeting": "Hello"}))

    sheets.world.service_options = {"sleep": sleep, "monotonic": lambda: clock[0]}
    waiting = build_sheet_service(
        sheets.settings,
        sheets.world.service(WDL_WAIT_SECONDS="30"),
        s3=sheets.world.s3,
        dynamodb=sheets.world.dynamodb,
        sqs=sheets.sqs,
    )
    event = sheets.world.put(SHEET, sheet_text(*GOOD_ROWS))
    answer = lambda_handler(event, FakeContext(), service=sheets.world.service(), sheets=waiting)  # type: ignore[arg-type]
    assert (answer["status"], answer["queued"]) == ("Queued", 3)
    assert clock[0] == 5.0  # one poll

    # no inputs.json ever: refused after the wait, saying what to do
    clock[0] = 0.0
    sheets.world.service_options = {
        "sleep": lambda s: clock.__setitem__(0, clock[0] + s),
        "monotonic": lambda: clock[0],
    }
    other = "runs/late/"
    sheets.world.put(other + "main.wdl", (WDL_FIXTURES / "cohort" / "main.wdl").read_bytes())
    waiting = build_sheet_service(
        sheets.settings,
        sheets.world.service(WDL_WAIT_SECONDS="30"),
        s3=sheets.world.s3,
        dynamodb=sheets.world.dynamodb,
        sqs=sheets.sqs,
    )
    event = sheets.world.put(other + "samples.tsv", sheet_text(*GOOD_ROWS))
    answer = lambda_handler(event, FakeContext(), service=sheets.world.service(), sheets=waiting)  # type: ignore[arg-type]
    assert answer["status"] == "Rejected"
    reasons = sheets.receipt(other + "samples.tsv")["reasons"]
    assert any("waited 30 s for an inputs.json" in r for r in reasons), reasons
    assert any("required input 'cohort.greeting' (String) is neither a column" in r for r in reasons)


def test_rows_are_queued_within_sqs_sizes_and_an_oversized_row_is_refused(sheets: SheetWorld) -> None:
    sheets.folder(common={"cohort.greeting": "Hello"})
    tags = json.dumps(["x" * 1000] * 60)  # about 60 KB a row: ten of them exceed one batch's 256 KiB
    lines = [f"S{n}\tid-{n}\t{n}\t{tags}" for n in range(1, 9)]
    lines.append("BIG\t" + "i" * 125_000 + "\t1\t" + json.dumps(["y" * 1000] * 126))
    _, answer = sheets.drop(sheet_text(*lines))
    assert (answer["queued"], answer["refused"]) == (8, 1), sheets.receipt()["reasons"]
    sheets.drain()
    assert len(sheets.world.backend.submissions) == 8
    big = next(r for r in sheets.table() if r["sample"] == "BIG")
    assert big["status"] == "Rejected"
    assert "a row may carry at most 250,000" in big["reasons"]
