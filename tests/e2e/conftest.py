"""End-to-end tests: the whole application on loopback (`local.stack.LocalStack`).

The stack is the one `make demo` and `make stack` run: moto with the template's resources, the
local engine running the WDL, the router invoking the handlers, the Slack receiver and the e-mail
stand-in queue. What a test checks it reads the way an operator would: the ledger and the receipts
through boto3 at the stack's AWS endpoint, Cromwell through its REST API, the messages where they
were delivered.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from courier.ledger import schema
from courier.ledger._codec import from_item, query_items
from local.stack import Email, LocalStack, LocalStackOptions, SlackPost

RUNS = Path(__file__).resolve().parent / "runs"
DEMO_RUNS = Path(__file__).resolve().parents[2] / "local" / "demo_runs"


class Observer:
    """Reads what the stack holds, with clients of its own pointed at the stack's endpoints."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        session = boto3.session.Session(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name=stack.options.region,
        )
        self.dynamodb = session.client("dynamodb", endpoint_url=stack.moto_url)
        self.s3 = session.client("s3", endpoint_url=stack.moto_url)
        self.table = stack.table_name
        self.bucket = stack.runs_bucket

    # -- the ledger ------------------------------------------------------------------------------

    def partition(self, workflow_id: str) -> dict[str, dict[str, Any]]:
        """Every item of the run's partition, by sort key (RUN, TASK#..., EVENT#...)."""
        request = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": schema.run_pk(workflow_id)}},
            "ConsistentRead": True,
        }
        return {str(item[schema.SK]): item for item in query_items(self.dynamodb, request)}

    def run(self, workflow_id: str) -> dict[str, Any]:
        return self.partition(workflow_id)["RUN"]

    def tasks(self, workflow_id: str) -> list[dict[str, Any]]:
        return [item for sk, item in self.partition(workflow_id).items() if sk.startswith("TASK#")]

    def outbox(self, workflow_id: str) -> list[str]:
        """The kinds of the run's outbox events (SUBMITTED, EARLY_FAILURE, ENDED, ...)."""
        return sorted(
            str(item["kind"]) for sk, item in self.partition(workflow_id).items() if sk.startswith("EVENT#")
        )

    def all_runs(self) -> list[dict[str, Any]]:
        """Every run item of the ledger."""
        found: list[dict[str, Any]] = []
        paginator = self.dynamodb.get_paginator("scan")
        for page in paginator.paginate(
            TableName=self.table,
            FilterExpression="#t = :run",
            ExpressionAttributeNames={"#t": "type"},
            ExpressionAttributeValues={":run": {"S": "run"}},
            ConsistentRead=True,
        ):
            found.extend(from_item(raw) for raw in page.get("Items", []))
        return found

    def runs_of(self, inputs_key: str) -> list[dict[str, Any]]:
        """The run items recorded for one inputs file of the runs bucket."""
        return [run for run in self.all_runs() if run.get("inputs_key") == inputs_key]

    # -- receipts --------------------------------------------------------------------------------

    def receipt(self, key: str, bucket: str | None = None) -> dict[str, Any] | None:
        try:
            body = self.s3.get_object(Bucket=bucket or self.bucket, Key=f"{key}.receipt.json")["Body"]
        except ClientError:
            return None
        document: dict[str, Any] = json.loads(body.read())
        return document

    def receipts_under(self, prefix: str) -> list[str]:
        listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix).get("Contents", [])
        return sorted(o["Key"] for o in listed if o["Key"].endswith(".receipt.json"))

    # -- Cromwell ----------------------------------------------------------------------------------

    def cromwell_status(self, workflow_id: str) -> str | None:
        """Cromwell's status of the workflow, None when Cromwell never heard of it."""
        url = f"{self.stack.cromwell_url}/api/workflows/v1/{workflow_id}/status"
        response = requests.get(url, timeout=10)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return str(response.json()["status"])

    def cromwell_ids_for(self, inputs_key: str) -> list[str]:
        """The workflows Cromwell holds for one inputs file: Courier labels each run with its
        inputs key (a value /query cannot filter on, so the labels are compared here)."""
        url = f"{self.stack.cromwell_url}/api/workflows/v1/query"
        response = requests.get(url, params={"additionalQueryResultFields": "labels"}, timeout=10)
        response.raise_for_status()
        return sorted(
            str(row["id"])
            for row in response.json()["results"]
            if (row.get("labels") or {}).get("courier-inputs-key") == inputs_key
        )

    # -- messages ------------------------------------------------------------------------------------

    def emails(self, workflow_id: str) -> list[Email]:
        return self.stack.emails(workflow_id)

    def slack_posts(self, workflow_id: str) -> list[SlackPost]:
        return self.stack.slack_posts(workflow_id)

    def wait_for_messages(self, workflow_id: str, count: int, timeout: float = 15) -> bool:
        """True once `count` e-mails and `count` Slack posts name the workflow."""

        def arrived() -> bool:
            return len(self.emails(workflow_id)) >= count and len(self.slack_posts(workflow_id)) >= count

        return bool(self.stack.wait_for(arrived, timeout))


@pytest.fixture(scope="module")
def stack_options() -> LocalStackOptions:
    """The options of the module's stack; a module overrides this fixture to change them. Call
    caching is off: the tests drop the same run folders again and check each run's Batch jobs, which
    a cache hit would not run (a module about call caching turns it on)."""
    return LocalStackOptions(step_seconds=0.0, call_caching=False)


@pytest.fixture(scope="module")
def stack(stack_options: LocalStackOptions) -> Iterator[LocalStack]:
    """One local stack for the module; each test drops its runs under a prefix of its own."""
    with LocalStack(stack_options) as running:
        yield running


@pytest.fixture(scope="module")
def observer(stack: LocalStack) -> Observer:
    return Observer(stack)
