"""A run whose options name a next step (`when: run`), ended on moto: notify writes the next inputs
file once (a versioned bucket keeps one version however often the end is delivered), records its
lineage and the step on the run, and the end message says what it started, or why not, with the
refusal's receipt in the next folder."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from courier.ledger.pipeline import PipelineLedger
from courier.ledger.views import RunViews
from courier.pipeline import Lineage, NextStep
from tests.support.notify_fixtures import (
    T0,
    TABLE,
    NotifyAws,
    event_item,
    invoke,
    iso,
    notify_aws,
    put,
    run_item,
)

pytestmark = pytest.mark.integration
WF = "5d3c1a2b-0000-5000-8000-0000000000a1"
BUCKET = "lab-runs"
NEXT_KEY = f"runs/annotate/from-{WF}.inputs.json"
SPEC = {
    "folder": "runs/annotate/",
    "when": "run",
    "require_all": False,
    "inputs": {"annotate.vcf": "outputs.germline.vcf", "annotate.sample": "inputs.germline.sample"},
}


class Stack(NotifyAws):
    def notifier(self) -> Any:
        secret = self.secrets.create_secret(
            Name="slack", SecretString=json.dumps({"webhook_url": f"{self.slack.url}/hooks/T0/B0/X"})
        )
        return self.compose(RUNS_BUCKET=BUCKET, SLACK_SECRET_ARN=secret["ARN"])

    def emails(self) -> list[str]:
        return [str(json.loads(call["Message"])["email"]) for call in self.sns.calls]

    def slack_text(self) -> str:
        return json.dumps([r["body"] for r in self.slack.requests if r["path"].startswith("/hooks")])

    def versions(self, key: str) -> int:
        listed = self.s3.list_object_versions(Bucket=BUCKET, Prefix=key).get("Versions", [])
        return len([v for v in listed if v["Key"] == key])


@pytest.fixture
def stack() -> Iterator[Stack]:
    with notify_aws(Stack, BUCKET) as aws:
        aws.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield aws


def seed(stack: Stack, *, outputs: dict[str, Any], status: str = "Succeeded") -> dict[str, Any]:
    put(
        stack.ddb,
        run_item(
            WF,
            status=status,
            status_rank=9,
            ended_at=iso(T0 + timedelta(hours=1)),
            outputs=outputs,
            next=json.dumps(SPEC),
            next_inputs=json.dumps({"germline.sample": "NA12878"}),
            chain=["runs/sample-1/"],
        ),
    )
    ended = event_item(WF, "ENDED", {"status": status, "source": "callback"})
    put(stack.ddb, ended)
    return ended


def test_the_end_of_a_run_starts_its_next_run_once_and_says_so(stack: Stack) -> None:
    ended = seed(stack, outputs={"germline.vcf": "s3://lab-data/NA12878.vcf.gz"})
    notifier = stack.notifier()
    assert invoke(notifier, ended) == []

    body = json.loads(stack.s3.get_object(Bucket=BUCKET, Key=NEXT_KEY)["Body"].read())
    assert body == {"annotate.vcf": "s3://lab-data/NA12878.vcf.gz", "annotate.sample": "NA12878"}
    lineage = PipelineLedger(TABLE, stack.ddb).lineage(BUCKET, NEXT_KEY)
    assert lineage == Lineage(("runs/sample-1/", "runs/annotate/"), (WF,))
    run = RunViews(TABLE, stack.ddb).run(WF)
    assert run is not None
    step = NextStep.from_map(run.next_step)
    assert step is not None
    assert step.started
    started = f"Started s3://{BUCKET}/{NEXT_KEY}"
    [email] = stack.emails()
    assert started in email
    assert started in stack.slack_text()

    # the same end delivered again, even with its delivery records lost: no second version
    assert invoke(notifier, ended) == []
    stack.ddb.update_item(
        TableName=TABLE,
        Key={"pk": {"S": f"RUN#{WF}"}, "sk": {"S": "EVENT#ENDED"}},
        UpdateExpression="REMOVE delivery",
    )
    assert invoke(notifier, ended) == []
    assert stack.versions(NEXT_KEY) == 1
    assert all(started in email for email in stack.emails())


def test_a_missing_output_refuses_the_next_run_with_a_receipt_and_the_message_says_why(stack: Stack) -> None:
    ended = seed(stack, outputs={"germline.bam": "s3://lab-data/NA12878.bam"})
    assert invoke(stack.notifier(), ended) == []

    assert stack.versions(NEXT_KEY) == 0
    receipt = json.loads(stack.s3.get_object(Bucket=BUCKET, Key=NEXT_KEY + ".receipt.json")["Body"].read())
    assert receipt["status"] == "Rejected"
    assert any("has no output germline.vcf (its outputs: germline.bam)" in r for r in receipt["reasons"])
    [email] = stack.emails()
    assert "Next step not started: annotate.vcf = outputs.germline.vcf" in email
