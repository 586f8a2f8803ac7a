"""When a run ends, notify writes its report beside the inputs file, brings the receipt up to date
(keeping every field it had) and links the report from the e-mail and the Slack message; on moto,
with Slack played by a local HTTP receiver."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from courier.links import s3_object_url
from notify.delivery import Notifier
from tests.support.notify_fixtures import (
    REGION,
    T0,
    NotifyAws,
    event_item,
    invoke,
    iso,
    notify_aws,
    put,
    run_item,
    task_item,
)

pytestmark = pytest.mark.integration
WF = "5d3c1a2b-0000-5000-8000-00000000000e"
BUCKET = "lab-runs"
INPUTS = "runs/sample-1/inputs.json"
REPORT = INPUTS + ".report.html"
RECEIPT = INPUTS + ".receipt.json"
OLD_RECEIPT: dict[str, Any] = {
    "schema_version": 1,
    "status": "Submitted",
    "workflow_id": WF,
    "workflow_name": "germline",
    "inputs": f"s3://{BUCKET}/{INPUTS}",
    "run_folder": "runs/sample-1/",
    "main_wdl": "germline.wdl",
    "submitted_at": "2026-03-02T10:00:00Z",
    "decided_at": "2026-03-02T10:00:00Z",
    "reasons": [],
    "warnings": ["labels.json: label 'x' was lower-cased"],
    "message": "Cromwell accepted the run.",
    "cromwell_status": "Submitted",
}


class Stack(NotifyAws):
    def notifier(self) -> Notifier:
        secret = self.secrets.create_secret(
            Name="slack", SecretString=json.dumps({"webhook_url": f"{self.slack.url}/hooks/T0/B0/X"})
        )
        return self.compose(RUNS_BUCKET=BUCKET, SLACK_SECRET_ARN=secret["ARN"])

    def receipt(self) -> dict[str, Any]:
        return dict(json.loads(self.s3.get_object(Bucket=BUCKET, Key=RECEIPT)["Body"].read()))

    def email(self) -> str:
        return str(json.loads(self.sns.calls[-1]["Message"])["email"])

    def slack_text(self) -> str:
        return json.dumps([r["body"] for r in self.slack.requests if r["path"].startswith("/hooks")])


@pytest.fixture
def stack() -> Iterator[Stack]:
    with notify_aws(Stack, BUCKET) as aws:
        yield aws


def seed_ended_run(stack: Stack, *, with_receipt: bool = True, **run: Any) -> dict[str, Any]:
    fields = {"status": "Failed", "status_rank": 9, "ended_at": iso(T0 + timedelta(hours=2)), **run}
    put(stack.ddb, run_item(WF, **fields))
    put(stack.ddb, task_item(WF, "ok-0", shard=0))
    put(stack.ddb, task_item(WF, "bad-1", shard=1, status="FAILED", exit_code=3))
    if with_receipt:
        stack.s3.put_object(Bucket=BUCKET, Key=RECEIPT, Body=json.dumps(OLD_RECEIPT).encode())
    ended = event_item(WF, "ENDED", {"status": "Failed", "source": "callback"})
    put(stack.ddb, ended)
    return ended


def test_ended_run_gets_its_report_an_updated_receipt_and_links(stack: Stack) -> None:
    ended = seed_ended_run(stack)
    assert invoke(stack.notifier(), ended) == []

    obj = stack.s3.get_object(Bucket=BUCKET, Key=REPORT)
    assert obj["ContentType"].startswith("text/html")
    html = obj["Body"].read().decode()
    assert "<html" in html
    assert 'data-job="ok-0"' in html  # a bar per task
    assert 'data-job="bad-1"' in html

    receipt = stack.receipt()
    assert {k: receipt[k] for k in OLD_RECEIPT} == OLD_RECEIPT  # every old field kept, unchanged
    assert receipt["run_status"] == "Failed"
    assert receipt["ended_at"] == (T0 + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert receipt["report"] == REPORT

    url = s3_object_url(REGION, BUCKET, REPORT)
    assert url in stack.email()
    assert url.replace("&", "&amp;") in stack.slack_text()


def test_a_redelivered_end_writes_the_same_objects_and_sends_nothing_twice(stack: Stack) -> None:
    ended = seed_ended_run(stack)
    notifier = stack.notifier()
    assert invoke(notifier, ended) == []
    first = stack.receipt()
    assert invoke(notifier, ended, first_sequence=9) == []
    assert stack.receipt() == first
    assert len(stack.sns.calls) == 1
    keys = sorted(o["Key"] for o in stack.s3.list_objects_v2(Bucket=BUCKET)["Contents"])
    assert keys == [RECEIPT, REPORT]


def test_an_adopted_run_gets_no_report_and_no_link(stack: Stack) -> None:
    ended = seed_ended_run(stack, with_receipt=False, origin="adopted", inputs_key=None)
    assert invoke(stack.notifier(), ended) == []
    assert stack.s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0
    assert "Report" not in stack.email()


def test_a_report_that_cannot_be_written_does_not_stop_the_message(stack: Stack) -> None:
    ended = seed_ended_run(stack)
    stack.s3.delete_object(Bucket=BUCKET, Key=RECEIPT)
    stack.s3.delete_bucket(Bucket=BUCKET)  # every write fails: NoSuchBucket
    assert invoke(stack.notifier(), ended) == []
    assert len(stack.sns.calls) == 1
    assert "could not be written" in stack.email()
    assert "could not be written" in stack.slack_text()


def test_a_rotated_slack_secret_is_picked_up_without_a_cold_start(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_PARAMETERS_MAX_AGE", "0")  # the shared reader's max age
    ended = seed_ended_run(stack)
    notifier = stack.notifier()
    assert invoke(notifier, ended) == []
    stack.secrets.put_secret_value(
        SecretId="slack", SecretString=json.dumps({"webhook_url": f"{stack.slack.url}/hooks/T0/B0/ROTATED"})
    )
    later = event_item(WF, "STUCK", {"job_id": "bad-1"}, discriminator="bad-1")
    put(stack.ddb, later)
    assert invoke(notifier, later, first_sequence=5) == []
    paths = [r["path"] for r in stack.slack.requests if r["path"].startswith("/hooks")]
    assert paths == ["/hooks/T0/B0/X", "/hooks/T0/B0/ROTATED"]
