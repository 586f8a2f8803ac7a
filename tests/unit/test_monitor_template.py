"""The monitor's and notify's parts of template.yaml: every setting reaches the functions that read
it, the event sources report partial failures, and nothing the stream cannot deliver is dropped
silently."""

from __future__ import annotations

from typing import Any

import pytest

from local.stack.template import load_template
from monitor.settings import CallbackSettings, MonitorSettings, ReconcilerSettings
from notify.settings import NotifySettings


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def env(template: dict[str, Any], function: str) -> dict[str, Any]:
    merged = dict(template["Globals"]["Function"]["Environment"]["Variables"])
    merged.update(template["Resources"][function]["Properties"]["Environment"]["Variables"])
    return merged


def aliases(model: Any) -> set[str]:
    return {field.alias for field in model.model_fields.values() if field.alias}


FUNCTIONS = {
    "MonitorFunction": MonitorSettings,
    "CallbackFunction": CallbackSettings,
    "ReconcilerFunction": ReconcilerSettings,
    "NotifyFunction": NotifySettings,
}


@pytest.mark.parametrize("function", ["MonitorFunction", "CallbackFunction", "ReconcilerFunction"])
def test_track_all_workflows_reaches_every_function_that_reads_it(
    template: dict[str, Any], function: str
) -> None:
    assert "TRACK_ALL_WORKFLOWS" in aliases(FUNCTIONS[function])
    assert env(template, function)["TRACK_ALL_WORKFLOWS"] == {"Ref": "TrackAllWorkflows"}


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_every_required_setting_is_given_and_every_variable_is_read(
    template: dict[str, Any], function: str
) -> None:
    model = FUNCTIONS[function]
    given = set(env(template, function))
    required = {f.alias for f in model.model_fields.values() if f.is_required() and f.alias}
    assert required <= given, f"{function} lacks {required - given}"
    powertools = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}
    ours = given - powertools - {"POWERTOOLS_TRACE_DISABLED"}  # read by courier.observability
    assert ours <= aliases(model), f"{function} is given variables it never reads: {ours - aliases(model)}"


def test_stuck_threshold_reaches_the_reconciler(template: dict[str, Any]) -> None:
    assert env(template, "ReconcilerFunction")["STUCK_AFTER_MINUTES"] == {"Ref": "StuckAfterMinutes"}


def test_monitor_queue_reports_partial_batch_failures(template: dict[str, Any]) -> None:
    source = template["Resources"]["MonitorFunction"]["Properties"]["Events"]["BatchEvents"]
    assert source["Type"] == "SQS"
    assert source["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    queue = template["Resources"]["BatchEventsQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["BatchEventsDLQ", "Arn"]}
    # Lambda's advice: a visibility timeout of at least six times the function's timeout.
    timeout = template["Resources"]["MonitorFunction"]["Properties"].get(
        "Timeout", template["Globals"]["Function"]["Timeout"]
    )
    assert queue["VisibilityTimeout"] >= 6 * timeout


@pytest.mark.parametrize("rule", ["BatchJobStateRule", "BatchQueueBlockedRule"])
def test_batch_rules_watch_only_the_cromwell_queues(template: dict[str, Any], rule: str) -> None:
    props = template["Resources"][rule]["Properties"]
    assert props["EventPattern"]["source"] == ["aws.batch"]
    assert props["EventPattern"]["detail"]["jobQueue"] == {"Ref": "JobQueueArns"}
    (target,) = props["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["BatchEventsQueue", "Arn"]}
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["BatchEventsDLQ", "Arn"]}


def test_notify_stream_gives_up_into_a_destination_never_silently(template: dict[str, Any]) -> None:
    props = template["Resources"]["NotifyFunction"]["Properties"]["Events"]["OutboxEvents"]["Properties"]
    assert props["BisectBatchOnFunctionError"] is True
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # Finite retries and age (-1 would retry one poisoned record until the stream drops it) ...
    assert 1 <= props["MaximumRetryAttempts"] <= 100
    # ... and a give-up age well inside the stream's 24-hour retention, so the records can still
    # be read from the stream when the DLQ message says where they are.
    assert 60 <= props["MaximumRecordAgeInSeconds"] <= 12 * 3600
    assert props["DestinationConfig"]["OnFailure"] == {
        "Type": "SQS",
        "Destination": {"Fn::GetAtt": ["NotifyDLQ", "Arn"]},
    }
    statements = template["Resources"]["NotifyRole"]["Properties"]["Policies"][0]["PolicyDocument"][
        "Statement"
    ]
    assert any(
        st.get("Action") == "sqs:SendMessage" and st.get("Resource") == {"Fn::GetAtt": ["NotifyDLQ", "Arn"]}
        for st in statements
        if isinstance(st, dict)
    )
    alarms = [
        r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"
    ]
    assert any(
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["NotifyDLQ", "QueueName"]}} in a.get("Dimensions", [])
        for a in alarms
    )
