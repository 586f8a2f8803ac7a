"""scripts/replay.py against a moto SQS queue: what it takes out of a parked message, what it
deletes (only what was replayed successfully) and what it leaves for a person to look at."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from scripts.replay import lambda_invoker, original_event, replay
from tests.reliability.harness import s3_event
from tests.support.submit_fixtures import REGION, on_failure_record

EVENT = s3_event("courier-runs", "runs/a/inputs.json", version_id="v1")


@pytest.fixture
def queue() -> Iterator[tuple[Any, str]]:
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        yield sqs, sqs.create_queue(QueueName="parked")["QueueUrl"]


def left(sqs: Any, url: str) -> int:
    attrs = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def test_original_event_from_each_kind_of_parked_message() -> None:
    assert original_event(json.dumps(on_failure_record(EVENT))) == EVENT
    assert original_event(json.dumps(EVENT)) == EVENT  # an EventBridge dead letter is the event
    for junk in ("", "not json", "[]", "42", json.dumps({"requestPayload": "text"}), json.dumps({"a": 1})):
        assert original_event(junk) is None


def test_replays_deletes_successes_and_keeps_failures_and_junk(queue: tuple[Any, str]) -> None:
    sqs, url = queue
    good = [s3_event("courier-runs", f"runs/{i}/inputs.json", version_id="v1") for i in range(12)]
    for event in good:
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(on_failure_record(event)))
    sqs.send_message(QueueUrl=url, MessageBody="garbage")
    failing = good[3]["detail"]["object"]["key"]
    seen: list[str] = []

    def invoke(event: dict[str, Any]) -> bool:
        key = str(event["detail"]["object"]["key"])
        seen.append(key)
        return key != failing

    report = replay(sqs, invoke, url)
    assert (report.replayed, report.failed, report.skipped) == (11, 1, 1)
    assert sorted(seen) == sorted(e["detail"]["object"]["key"] for e in good)
    assert len(report.errors) == 2
    assert left(sqs, url) == 2, "the failed replay and the unreadable message stay parked"


def test_dry_run_and_max_leave_the_queue_alone(queue: tuple[Any, str]) -> None:
    sqs, url = queue
    for _ in range(5):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(on_failure_record(EVENT)))
    calls: list[dict[str, Any]] = []
    report = replay(sqs, lambda e: calls.append(e) is None, url, dry_run=True)
    assert (report.replayed, report.skipped, calls) == (0, 5, [])
    assert left(sqs, url) == 5
    limited = replay(sqs, lambda e: True, url, max_messages=2)
    assert limited.replayed <= 2


class FakeLambda:
    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer
        self.payloads: list[dict[str, Any]] = []

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        assert kwargs["InvocationType"] == "RequestResponse"
        self.payloads.append(json.loads(kwargs["Payload"]))
        return self.answer


def test_lambda_invoker_success_only_without_a_function_error() -> None:
    ok = FakeLambda({"StatusCode": 200})
    assert lambda_invoker(ok, "courier-submit")(EVENT) is True
    assert ok.payloads == [EVENT]
    assert lambda_invoker(FakeLambda({"StatusCode": 200, "FunctionError": "Unhandled"}), "f")(EVENT) is False
    assert lambda_invoker(FakeLambda({"StatusCode": 500}), "f")(EVENT) is False
