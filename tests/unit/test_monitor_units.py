"""Pure pieces of the monitor: event parsing, attribution, callback checks, report bounds, the
Batch tag reader."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from botocore.exceptions import ClientError

from courier.batch import JobTagReader
from courier.errors import InvalidEvent
from courier.ledger.task_types import UnattributedJob
from courier.models import TaskStatus, task_order
from monitor.attribution import Attributor, CallSource, Source, workflow_uuid
from monitor.end_report import ReportLimits, bound_failures, bound_outputs, iter_failed_calls
from monitor.events import EventKind, parse_event, parse_sqs_body
from monitor.inbound import CallbackBody, Refusal, read_callback
from tests.support.monitor_fixtures import T0, FakeTags, Job, function_url_request

ROOT = "0f8fad5b-d9cb-469f-a165-70867728950e"


class NoPointers:
    def get_unattributed(self, job_id: str) -> UnattributedJob | None:
        return None


def test_parse_state_change_reads_everything_the_task_item_needs() -> None:
    job = Job("wf.align", ROOT, shard=3, vcpus=4, memory=8192)
    event = parse_event(
        job.event("FAILED", exit_code=3, reason="Essential container exited", log_group="/custom/batch")
    )
    assert event.kind is EventKind.STATE_CHANGE
    assert event.status is TaskStatus.FAILED
    assert (event.vcpus, event.memory_mib, event.exit_code, event.log_group) == (4, 8192, 3, "/custom/batch")
    assert event.queue == "cromwell-default"
    assert event.started_at is not None
    assert event.stopped_at == T0
    assert event.order == task_order(TaskStatus.FAILED, 0)


def test_parse_legacy_container_fields_and_attempts() -> None:
    raw = Job("wf.a", ROOT).event("RUNNABLE", batch_attempts=2)
    container = raw["detail"]["container"]
    del container["resourceRequirements"]
    container.update(vcpus=1, memory=2048)
    event = parse_event(raw)
    assert (event.vcpus, event.memory_mib, event.batch_attempts, event.exit_code) == (1, 2048, 2, 137)


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        json.dumps({"source": "aws.s3"}),
        json.dumps({"source": "aws.batch", "detail-type": "x"}),
        json.dumps(
            {"source": "aws.batch", "detail-type": "Batch Job State Change", "detail": {"jobId": "j"}}
        ),
    ],
)
def test_unusable_bodies_are_invalid_events(body: str) -> None:
    with pytest.raises(InvalidEvent):
        parse_sqs_body(body)


def test_a_detail_field_of_an_unexpected_shape_is_left_out_not_the_transition() -> None:
    raw = Job("wf.a", ROOT, vcpus=2).event("FAILED", exit_code=1)
    raw["detail"]["container"]["environment"] = [{"name": "BATCH_FILE_S3_URL", "value": "s3://b/k"}, 7, "x"]
    raw["detail"]["container"]["logConfiguration"] = "awslogs"
    raw["detail"]["statusReason"] = {"not": "text"}
    raw["detail"]["attempts"] = [None, {"container": {"exitCode": True}}]
    event = parse_event(raw)
    assert (event.status, event.exit_code, event.vcpus) == (TaskStatus.FAILED, 1, 2)
    assert event.script_url == "s3://b/k"
    assert event.log_group == "/aws/batch/job"
    assert event.status_reason is None
    assert event.batch_attempts == 2
    assert event.raw is raw


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        (("id",), None, "id"),
        (("detail", "jobId"), "", "detail.jobId"),
        (("detail", "status"), "LOST", "detail.status"),
        (("detail-type",), "Batch Job Retried", "detail-type"),
        (("time",), "yesterday", "time"),
    ],
)
def test_an_unusable_event_says_which_field(path: tuple[str, ...], value: Any, named: str) -> None:
    raw = Job("wf.a", ROOT).event("RUNNING")
    parent = raw
    for key in path[:-1]:
        parent = parent[key]
    if value is None:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    with pytest.raises(InvalidEvent, match=re.escape(named)):
        parse_event(raw)


def test_attribution_order_tags_then_batch_tags_then_prefix_then_pointer() -> None:
    tagged = Job("wf.sub_task", ROOT, shard=2, attempt=2, workflow_id="11111111-1111-4111-8111-111111111111")
    who = Attributor(None, NoPointers()).attribute(parse_event(tagged.event("RUNNING")))
    assert who is not None
    assert (who.root_workflow_id, who.workflow_id, who.call, who.shard, who.attempt, who.source) == (
        ROOT,
        "11111111-1111-4111-8111-111111111111",
        "wf.sub_task",
        2,
        2,
        Source.EVENT_TAGS,
    )
    hidden = Job("wf.t", ROOT, tags_in_event=False)
    tags = FakeTags({hidden.arn: hidden.tags()})
    attributor = Attributor(tags, NoPointers())
    for _ in range(3):
        assert attributor.attribute(parse_event(hidden.event("RUNNING"))).source is Source.JOB_TAGS  # type: ignore[union-attr]
    assert tags.calls == 1
    prefixed = Job("wf.t", ROOT, generation=91)
    who = Attributor(FakeTags(), NoPointers()).attribute(parse_event(prefixed.event("RUNNING")))
    assert who is not None
    assert (who.root_workflow_id, who.call, who.shard, who.attempt, who.call_source) == (
        ROOT,
        "wf_t",
        -1,
        0,
        CallSource.JOB_NAME,
    )
    old = Job("wf.t", ROOT, generation=85)
    assert Attributor(FakeTags(), NoPointers()).attribute(parse_event(old.event("RUNNING"))) is None


def test_workflow_ids_in_label_form_are_read() -> None:
    assert workflow_uuid(f"cromwell-{ROOT.upper()}") == ROOT
    assert workflow_uuid("nope") is None


def _url(body: str, token: str | None = "t0ken", **options: Any) -> dict[str, Any]:
    return function_url_request(body, token=token, **options)


def test_read_callback_accepts_cromwells_body() -> None:
    body = json.dumps({"workflowId": ROOT, "state": "Failed", "outputs": {}, "failures": [{"message": "x"}]})
    parsed = read_callback(_url(body), "t0ken", 1024)
    assert isinstance(parsed, CallbackBody)
    assert parsed.state == "Failed"


@pytest.mark.parametrize(
    ("event", "code"),
    [
        (_url("{}", token=None), 403),
        (_url("{}", token="T0KEN"), 403),
        (_url("{}", method="GET"), 405),
        (_url("x" * 2000), 413),
        (_url("", headers={"content-length": "abc"}), 400),
        ({"body": "{}", "queryStringParameters": {"token": "t0ken"}}, 400),  # not a function URL request
        (_url(""), 400),
    ],
)
def test_read_callback_refusals(event: dict[str, Any], code: int) -> None:
    answer = read_callback(event, "t0ken", 1024)
    assert isinstance(answer, Refusal)
    assert answer.status_code == code


def test_report_bounds_keep_items_small() -> None:
    limits = ReportLimits()
    outputs = {f"wf.out_{i}": "s3://bucket/" + "x" * 5000 for i in range(2000)}
    bounded = bound_outputs(outputs, limits)
    assert bounded["outputs_count"] == 2000
    assert len(bounded["outputs"]) <= 500
    assert len(json.dumps(bounded)) < 200_000
    assert bounded["outputs_clipped"] > 0
    failed = {
        "id": ROOT,
        "calls": {
            "wf.scatter": [
                {
                    "executionStatus": "Failed",
                    "shardIndex": i,
                    "attempt": 1,
                    "jobId": f"j{i}",
                    "failures": [
                        {"message": "boom " * 500, "causedBy": [{"message": "inner", "causedBy": []}]}
                    ],
                }
                for i in range(300)
            ],
            "wf.sub": [
                {
                    "subWorkflowMetadata": {
                        "id": "sub",
                        "calls": {"sub.t": [{"executionStatus": "Failed", "jobId": "s1"}]},
                    }
                }
            ],
        },
    }
    calls = list(iter_failed_calls(failed))
    assert len(calls) == 301
    assert calls[-1]["workflow_id"] == "sub"
    report = bound_failures(calls, limits)
    assert report["failures_count"] == 301
    assert len(report["failures"]) == 50
    assert all(len(f["message"]) <= limits.max_message_chars for f in report["failures"])
    assert len(json.dumps(report)) < 100_000


class StubBatch:
    def __init__(self, error: str | None = None) -> None:
        self.error = error
        self.calls = 0

    def list_tags_for_resource(self, resourceArn: str) -> dict[str, Any]:
        self.calls += 1
        if self.error:
            raise ClientError({"Error": {"Code": self.error, "Message": "x"}}, "ListTagsForResource")
        return {"tags": {"cromwell-root-workflow-id": ROOT}}


def test_job_tag_reader_caches_answers_and_permanent_errors_only() -> None:
    ok = StubBatch()
    reader = JobTagReader(ok, max_entries=2)  # type: ignore[arg-type]
    assert reader.tags("arn:1") == {"cromwell-root-workflow-id": ROOT}
    reader.tags("arn:1")
    assert ok.calls == 1
    reader.tags("arn:2"), reader.tags("arn:3"), reader.tags("arn:1")
    assert ok.calls == 4  # arn:1 was evicted
    throttled = StubBatch("ThrottlingException")
    reader = JobTagReader(throttled)  # type: ignore[arg-type]
    assert reader.tags("a") == {}
    assert reader.tags("a") == {}
    assert throttled.calls == 2
    denied = StubBatch("AccessDeniedException")
    reader = JobTagReader(denied)  # type: ignore[arg-type]
    assert reader.tags("a") == {}
    assert reader.tags("a") == {}
    assert denied.calls == 1
