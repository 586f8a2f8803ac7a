"""Hostile input for every edge that reads outside data: submit's S3 event parser, the monitor's
Batch event parser, the callback request, the run-folder planner (arbitrary file names, bytes and
JSON values), and the report renderers (arbitrary names, reasons, outputs, failures).

Every failure must be a clear refusal - `InvalidEvent`, `RunRejected`, a `Refusal` with a 4xx
status - and never any other exception. Example counts are modest so the suite stays fast;
tests/unit/test_plan.py already fuzzes the bytes of inputs/options/labels and of a WDL file.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from courier.errors import InvalidEvent, RunRejected
from courier.ledger.records import OutboxEvent
from monitor.events import BatchJobEvent, parse_event, parse_sqs_body
from monitor.inbound import CallbackBody, Refusal, read_callback
from notify.render_email import render_email
from notify.render_slack import render_slack
from notify.summary import SummaryBuilder, SummaryOptions
from submit.plan import Limits, RunFolder, SubmissionPlan, plan_submission
from submit.upload import Upload, parse_upload
from tests.support.monitor_fixtures import function_url_request
from tests.support.notify_fixtures import PRICES, FakeStderr, MemoryLedger, valid_sns_subject
from tests.support.submit_fixtures import object_created_event

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


def outcome(function: Any, *args: Any, **kwargs: Any) -> Any:
    """The function's answer, or the project's refusal it raised (any other exception escapes)."""
    try:
        return function(*args, **kwargs)
    except (InvalidEvent, RunRejected) as refused:
        return refused


def mutate(base: dict[str, Any], path: list[str], value: Any) -> dict[str, Any]:
    """A deep copy of `base` with the value at `path` replaced (or the path cut short)."""
    copy: Any = json.loads(json.dumps(base))
    node = copy
    for key in path[:-1]:
        if not isinstance(node, dict) or not isinstance(node.get(key), dict):
            return dict(copy)
        node = node[key]
    node[path[-1]] = value
    return dict(copy)


# -- submit: the S3 event ------------------------------------------------------------------------

S3_EVENT = object_created_event(
    "courier-runs", "runs/a/inputs.json", size=12, version_id="v1", sequencer="01", etag="abc"
)
S3_PATHS = [
    ["detail"],
    ["detail", "bucket"],
    ["detail", "bucket", "name"],
    ["detail", "object"],
    ["detail", "object", "key"],
    ["detail", "object", "size"],
    ["detail", "object", "version-id"],
    ["detail", "object", "sequencer"],
    ["time"],
    ["detail-type"],
    ["source"],
]


@FAST
@given(path=st.sampled_from(S3_PATHS), value=json_values)
def test_s3_event_parser_refuses_with_invalid_event(path: list[str], value: Any) -> None:
    upload = outcome(parse_upload, mutate(S3_EVENT, path, value))
    if isinstance(upload, InvalidEvent):
        assert str(upload)
        assert upload.event is None or isinstance(upload.event, tuple)
        return
    assert isinstance(upload, Upload)
    assert upload.key
    assert not upload.key.endswith("/")
    assert upload.version_id or upload.sequencer


@FAST
@given(event=json_values)
def test_s3_event_parser_on_anything_at_all(event: Any) -> None:
    with pytest.raises(InvalidEvent):
        parse_upload(event)


# -- monitor: the Batch event ----------------------------------------------------------------------

BATCH_EVENT: dict[str, Any] = {
    "version": "0",
    "id": "e1",
    "detail-type": "Batch Job State Change",
    "source": "aws.batch",
    "account": "123456789012",
    "time": "2026-03-02T10:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:batch:us-east-1:123456789012:job/job-1"],
    "detail": {
        "jobId": "job-1",
        "jobArn": "arn:aws:batch:us-east-1:123456789012:job/job-1",
        "jobName": "wf-step",
        "jobQueue": "arn:aws:batch:us-east-1:123456789012:job-queue/q",
        "status": "FAILED",
        "statusReason": "Essential container in task exited",
        "attempts": [{"container": {"exitCode": 1, "logStreamName": "s"}}],
        "createdAt": 1772445600000,
        "startedAt": 1772445601000,
        "stoppedAt": 1772445602000,
        "container": {
            "vcpus": 2,
            "memory": 4096,
            "exitCode": 1,
            "environment": [{"name": "BATCH_FILE_S3_URL", "value": "s3://b/k"}],
            "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/g"}},
            "resourceRequirements": [{"type": "VCPU", "value": "2"}],
        },
        "tags": {"cromwell-root-workflow-id": "x"},
    },
}
BATCH_PATHS = (
    [[k] for k in ("detail", "time", "id", "source", "detail-type")]
    + [
        ["detail", k]
        for k in (
            "jobId",
            "jobArn",
            "jobName",
            "jobQueue",
            "status",
            "statusReason",
            "attempts",
            "createdAt",
            "startedAt",
            "stoppedAt",
            "container",
            "tags",
        )
    ]
    + [
        ["detail", "container", k]
        for k in ("vcpus", "memory", "exitCode", "environment", "logConfiguration", "resourceRequirements")
    ]
)


@FAST
@given(path=st.sampled_from(BATCH_PATHS), value=json_values)
def test_batch_event_parser_refuses_with_invalid_event(path: list[str], value: Any) -> None:
    body = json.dumps(mutate(BATCH_EVENT, path, value))
    event = outcome(parse_sqs_body, body)
    if isinstance(event, InvalidEvent):
        assert str(event)
        return
    assert isinstance(event, BatchJobEvent)
    assert event.job_id
    assert event.time.tzinfo is not None


@FAST
@given(body=st.text(max_size=200) | json_values.map(json.dumps))
def test_batch_event_parser_on_any_body(body: str) -> None:
    try:
        parse_sqs_body(body)
    except InvalidEvent:
        return


@FAST
@given(event=json_values)
def test_parse_event_on_any_json(event: Any) -> None:
    with pytest.raises(InvalidEvent):
        parse_event(event)


# -- monitor: the callback request ---------------------------------------------------------------

TOKEN = "t" * 48


@FAST
@given(
    body=json_values | st.text(max_size=200),
    headers=st.none()
    | st.dictionaries(st.sampled_from(["content-length", "Content-Length", "x"]), st.text(max_size=8)),
    b64=st.booleans(),
    method=st.sampled_from(["POST", "GET", "post", ""]),
)
def test_callback_reader_answers_a_body_or_a_4xx(body: Any, headers: Any, b64: bool, method: str) -> None:
    event = function_url_request(body, token=TOKEN, b64=b64, method=method)
    if headers is None:
        del event["headers"]
    else:
        event["headers"].update(headers)
    answer = read_callback(event, TOKEN, 4096)
    if isinstance(answer, Refusal):
        assert 400 <= answer.status_code < 500
        assert answer.message
    else:
        assert isinstance(answer, CallbackBody)


@FAST
@given(event=json_values)
def test_callback_reader_on_any_request_shape(event: Any) -> None:
    answer = read_callback(event, TOKEN, 4096)
    assert isinstance(answer, Refusal)
    assert answer.status_code in (400, 403, 405, 413)


# -- submit: the run folder -------------------------------------------------------------------------

HELLO = b"""version 1.0
workflow hello {
  input { String who = "world" }
  output { String message = who }
}
"""
names = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=40)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    extra=st.dictionaries(names, st.binary(max_size=60), max_size=5),
    inputs=json_values,
    options=st.none() | json_values,
    labels=st.none() | json_values,
    inputs_name=st.sampled_from(["inputs.json", "a.inputs.json", "../x.inputs.json", "sub/inputs.json"]),
    with_wdl=st.booleans(),
)
def test_planner_refuses_with_run_rejected(
    extra: dict[str, bytes],
    inputs: Any,
    options: Any,
    labels: Any,
    inputs_name: str,
    with_wdl: bool,
) -> None:
    files: dict[str, bytes] = dict(extra)
    if with_wdl:
        files["hello.wdl"] = HELLO
    files[inputs_name] = json.dumps(inputs).encode()
    if options is not None:
        files["options.json"] = json.dumps(options).encode()
    if labels is not None:
        files["labels.json"] = json.dumps(labels).encode()
    plan = outcome(
        plan_submission,
        RunFolder(prefix="runs/fuzz/", files=files, inputs_name=inputs_name),
        bucket="courier-runs",
        inputs_key="runs/fuzz/" + inputs_name,
        version_id="v1",
        sequencer=None,
        limits=Limits(),
        callback_uri=None,
    )
    if isinstance(plan, RunRejected):
        assert plan.reasons
        assert all(isinstance(r, str) and r.strip() for r in plan.reasons)
        return
    assert isinstance(plan, SubmissionPlan)
    assert isinstance(json.loads(plan.workflow_inputs), dict)


# -- notify: the renderers ------------------------------------------------------------------------

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
OPTIONS = SummaryOptions(prices=PRICES)
texts = st.text(max_size=120)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(
        ["REJECTED", "EARLY_FAILURE", "ENDED", "STUCK#job-1", "QUEUE_BLOCKED#job-1", "SUBMITTED"]
    ),
    name=texts,
    status=st.sampled_from(["Failed", "Succeeded", "Aborted", "Rejected", "Running"]) | texts,
    reasons=st.lists(texts, max_size=4) | json_values,
    outputs=json_values,
    failures=json_values,
    payload=st.dictionaries(st.text(max_size=10), json_values, max_size=4),
    task_fields=st.dictionaries(
        st.sampled_from(["status", "call", "shard", "exit_code", "status_reason", "vcpus", "started_at"]),
        json_values,
        max_size=5,
    ),
)
def test_renderers_take_any_report_data(
    kind: str,
    name: str,
    status: str,
    reasons: Any,
    outputs: Any,
    failures: Any,
    payload: dict[str, Any],
    task_fields: dict[str, Any],
) -> None:
    wid = "5d3c1a2b-0000-5000-8000-000000000001"
    run = {
        "workflow_id": wid,
        "workflow_name": name,
        "status": status,
        "reasons": reasons,
        "outputs": outputs,
        "failures": failures,
        "routing": {"project": name, "slack_channel": name[:10]},
    }
    task = {"job_id": "job-1", "call": "wf.step", "shard": 0, "status": "FAILED", **task_fields}
    base, _, disc = kind.partition("#")
    event = {
        "workflow_id": wid,
        "sk": f"EVENT#{kind}",
        "kind": base,
        "payload": {**payload, **({"job_id": disc} if disc else {})},
        "created_at": "2026-03-02T11:00:00.000Z",
    }
    summary = SummaryBuilder(MemoryLedger(run, [task]), OPTIONS, stderr=FakeStderr()).build(
        OutboxEvent.from_item(event)
    )
    email = render_email(summary, region="us-east-1", now=NOW)
    assert valid_sns_subject(email.subject)
    json.loads(email.sns_message())
    slack = render_slack(summary, region="us-east-1", now=NOW)
    json.dumps(slack)
