"""Every notify event file in events/notify/ goes through the handler (moto for DynamoDB, SNS and
Secrets Manager; Slack played by a local receiver) and produces exactly one message per channel."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from courier.ledger._codec import from_item
from courier.settings import load_settings
from notify.composition import compose
from notify.handler import lambda_handler
from notify.settings import NotifySettings
from tests.support.notify_fixtures import (
    REGION,
    T0,
    TABLE,
    FakeContext,
    SlackReceiver,
    create_table,
    iso,
    put,
    run_item,
    task_item,
)

pytestmark = pytest.mark.integration
EVENTS = sorted(
    p for p in (Path(__file__).parents[2] / "events" / "notify").glob("*.json") if p.name != "env.json"
)
RUN_STATUS = {"REJECTED": "Rejected", "SUBMITTED": "Submitted"}


def seed(ddb: Any, image: dict[str, Any]) -> None:
    """The run (and a task) the event file's outbox item belongs to, then the item itself."""
    wf, kind = image["workflow_id"], image["kind"]
    status = image["payload"].get("status") or RUN_STATUS.get(kind, "Running")
    fields: dict[str, Any] = {"status": status, "routing": {"project": "genomics"}}
    if kind == "REJECTED":
        fields["reasons"] = image["payload"]["reasons"]
    if kind == "ENDED":
        fields["ended_at"] = iso(T0 + timedelta(hours=2))
        fields["outputs"] = {"germline.vcf": f"s3://lab-out/{wf}/out.vcf.gz"}
    put(ddb, run_item(wf, **fields))
    job = image["payload"].get("job_id") or image["payload"].get("task", {}).get("job_id") or "job-1"
    failed = status in ("Failed", "Aborted") or kind == "EARLY_FAILURE"
    put(ddb, task_item(wf, job, status="FAILED" if failed else "SUCCEEDED", exit_code=1 if failed else 0))
    put(ddb, image)


@pytest.fixture
def receiver() -> Iterator[SlackReceiver]:
    server = SlackReceiver().start()
    yield server
    server.stop()


@pytest.mark.parametrize("path", EVENTS, ids=[p.stem for p in EVENTS])
def test_event_file_through_the_handler(path: Path, receiver: SlackReceiver) -> None:
    event = json.loads(path.read_text())
    env = json.loads((path.parent / "env.json").read_text())["NotifyFunction"]
    assert env["LEDGER_TABLE"] == TABLE
    assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1")
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=REGION)
        create_table(ddb)
        sns = boto3.client("sns", region_name=REGION)
        topic = sns.create_topic(Name="courier-notifications")["TopicArn"]
        assert topic == env["TOPIC_ARN"]
        sqs = boto3.client("sqs", region_name=REGION)
        queue = sqs.create_queue(QueueName="mail")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        secrets = boto3.client("secretsmanager", region_name=REGION)
        secret = secrets.create_secret(
            Name="courier/slack", SecretString=json.dumps({"webhook_url": f"{receiver.url}/hooks/T/B/X"})
        )
        for record in event["Records"]:
            seed(ddb, from_item(record["dynamodb"]["NewImage"]))
        config = load_settings(
            NotifySettings, {**{k: v for k, v in env.items() if v}, "SLACK_SECRET_ARN": secret["ARN"]}
        )
        notifier = compose(
            config, dynamodb=ddb, sns=sns, s3=boto3.client("s3", region_name=REGION), secrets=secrets
        )
        for _ in range(2):  # the second invocation is a redelivery of the same batch
            result = lambda_handler(event, FakeContext(), notifier=notifier)
            assert result == {"batchItemFailures": []}
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
        delivered = messages.get("Messages", [])
        assert len(delivered) == 1
        envelope = json.loads(delivered[0]["Body"])
        kind = from_item(event["Records"][0]["dynamodb"]["NewImage"])["kind"]
        assert envelope["MessageAttributes"]["event_type"]["Value"] == kind
        assert envelope["MessageAttributes"]["project"]["Value"] == "genomics"
        assert envelope["Subject"].startswith("Courier: ")
        assert len(receiver.requests) == 1
        assert receiver.requests[0]["body"]["attachments"][0]["blocks"][0]["type"] == "header"
