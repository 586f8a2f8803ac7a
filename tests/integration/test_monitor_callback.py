"""The callback endpoint refuses what it must, and writes nothing when it refuses."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

os.environ.setdefault("CALLBACK_TOKEN_SECRET", "arn:aws:secretsmanager:us-east-1:123456789012:secret:token")

from courier.ledger import RunLedger, RunRecord
from courier.ledger._codec import from_item
from monitor import callback
from monitor.composition import CallbackService, compose_callback
from monitor.settings import CallbackSettings
from tests.support.ledger_table import create_ledger_table
from tests.support.monitor_fixtures import CALLBACK_TOKEN, Ctx, FakeCromwell, function_url_request

pytestmark = pytest.mark.integration

TABLE = "courier-ledger"
WF = "3b0c2d6e-8a41-4c55-9d0e-6b1f2a3c4d5e"
LIMIT = 4096


request = function_url_request


GOOD = {"workflowId": WF, "state": "Succeeded", "outputs": {"wf.out": 1}, "failures": []}


class Endpoint:
    def __init__(self, client: Any) -> None:
        self.client = client
        RunLedger(TABLE, client).record_submitted(
            RunRecord(WF, "wf", "bucket", "runs/a/inputs.json", "runs/a")
        )
        self.cromwell = FakeCromwell()
        settings = CallbackSettings.model_validate(
            {
                "LEDGER_TABLE": TABLE,
                "CROMWELL_URL": "http://cromwell:8000",
                "CALLBACK_TOKEN_SECRET": "arn:x",
                "CALLBACK_MAX_BODY_BYTES": str(LIMIT),
            }
        )
        self.service: CallbackService = compose_callback(
            settings, dynamodb=client, cromwell=self.cromwell, token=lambda: CALLBACK_TOKEN
        )

    def call(self, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        answer = callback.lambda_handler(event, Ctx(), service=self.service)
        return answer["statusCode"], json.loads(answer["body"])

    def table(self) -> list[dict[str, Any]]:
        return sorted(
            (from_item(i) for i in self.client.scan(TableName=TABLE)["Items"]), key=lambda i: i["sk"]
        )


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_ledger_table(client, TABLE)
        yield Endpoint(client)


@pytest.mark.parametrize(
    ("event", "status"),
    [
        (request(GOOD, token="wrong-token"), 403),
        (request(GOOD, token=CALLBACK_TOKEN[:-1]), 403),
        (request(GOOD, token=None), 403),
        (request({**GOOD, "outputs": {"x": "y" * LIMIT}}), 413),
        (request({**GOOD, "outputs": {"x": "y" * LIMIT}}, b64=True), 413),
        (request(GOOD, length=LIMIT + 1), 413),
        (request({**GOOD, "outputs": {"x": "y" * LIMIT}}, length=10), 413),
        (request("{not json"), 400),
        (request("{not json", b64=True), 400),
        (request({**GOOD, "state": "Running"}), 400),
        (request({**GOOD, "workflowId": "not-a-uuid"}), 400),
        (request({"workflowId": WF, "state": "Succeeded"}), 400),
        (request("[]"), 400),
        (dict(request(GOOD), body="!!!notbase64", isBase64Encoded=True), 400),
    ],
    ids=[
        "wrong-token",
        "token-prefix",
        "missing-token",
        "oversized",
        "oversized-base64",
        "content-length-too-big",
        "content-length-lies",
        "malformed-json",
        "malformed-json-base64",
        "bad-state",
        "bad-id",
        "missing-keys",
        "not-an-object",
        "bad-base64",
    ],
)
def test_refused_requests_write_nothing(endpoint: Endpoint, event: dict[str, Any], status: int) -> None:
    before = endpoint.table()
    code, body = endpoint.call(event)
    assert code == status
    assert "message" in body
    assert endpoint.table() == before
    assert endpoint.cromwell.calls == []


def test_a_bad_token_is_refused_before_the_body_is_read(endpoint: Endpoint) -> None:
    code, _ = endpoint.call(request("{not json", token="nope"))
    assert code == 403


def test_valid_callback_ends_once_and_repeats_are_harmless(endpoint: Endpoint) -> None:
    assert endpoint.call(request(GOOD)) == (200, {"workflowId": WF, "result": "ended"})
    assert endpoint.call(request(GOOD, b64=True)) == (200, {"workflowId": WF, "result": "already-ended"})
    items = {i["sk"]: i for i in endpoint.table()}
    assert items["RUN"]["status"] == "Succeeded"
    assert items["RUN"]["outputs"] == {"wf.out": 1}
    assert [sk for sk in items if sk == "EVENT#ENDED"] == ["EVENT#ENDED"]
    assert endpoint.cromwell.calls == []  # the body carried the outputs


def test_unknown_workflow_is_acknowledged_without_writing(endpoint: Endpoint) -> None:
    before = endpoint.table()
    other = {**GOOD, "workflowId": "11111111-2222-4333-8444-555555555555"}
    assert endpoint.call(request(other))[1]["result"] == "untracked"
    assert endpoint.table() == before
