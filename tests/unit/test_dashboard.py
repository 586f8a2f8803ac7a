"""The operators' dashboard names only metrics the code emits.

The dashboard body in template.yaml is a `Fn::Sub` JSON string; it is rendered here with a
placeholder for every reference (the callback function on and off), parsed as JSON, and each
metric it shows is checked: Courier's own (namespace CromwellCourier) against the `add_metric`
calls of the functions and the layer, f-string families expanded from the code's own enums;
Lambda's and SQS's against the resources of the template.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from courier.models import RunStatus, TaskStatus
from local.stack.template import load_template
from monitor.ending import EndOutcome
from monitor.tracking import TrackOutcome

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "CromwellCourier"
SERVICE = "cromwell-courier"

#: The notify function's delivery metrics, one per channel and outcome. They count as emitted
#: here before notify's code emits them (its delivery counters are built beside this dashboard);
#: once it does, they are found by the scan as well and this list only repeats them.
NOTIFY_DELIVERY_METRICS = {
    "NotifySentSns",
    "NotifySentSlack",
    "NotifyFailedSns",
    "NotifyFailedSlack",
    "NotifySkipped",
}

#: Every f-string family of metric names in the code, with the values its placeholder takes.
#: A new family fails `test_every_metric_family_of_the_code_is_known` until it is listed here.
FAMILIES: dict[str, set[str]] = {
    # submit: the handler's outcome (SubmitOutcome.status of submit.service)
    "Runs{outcome.status}": {RunStatus.SUBMITTED.value, RunStatus.REJECTED.value, "Duplicate"},
    # submit.sheet_entry: a sample sheet's outcome (SheetOutcome.status of submit.sheet_service)
    "Sheets{outcome.status}": {"Queued", "Rejected", "Duplicate", "Ignored"},
    # submit.handler: a rerun.json's outcome (RerunOutcome.status of submit.rerun)
    "Reruns{outcome.status}": {"Submitted", "Rejected", "Nothing"},
    # submit.rows: a sheet row's outcome (a SubmitOutcome status, or a row handled before)
    "Rows{status}": {RunStatus.SUBMITTED.value, RunStatus.REJECTED.value, "Duplicate"},
    # monitor.ending: a run's terminal status
    "Runs{status.value}": {s.value for s in RunStatus if s.terminal},
    "Tasks_{status}": {s.value for s in TaskStatus},
    "BatchEvents_{name}": {o.value for o in TrackOutcome} | {"invalid"},
    "Callback_{outcome.value}": {o.value for o in EndOutcome},
    "CallbackRefused{checked.status_code}": {"400", "403", "405", "413"},
    "Reconcile_{key}": {
        "active",
        "ended",
        "advanced",
        "stuck_alerts",
        "attributed",
        "still_unattributed",
        "adopted",
        "windows_closed",
    },
}

AWS_METRICS = {
    "AWS/Lambda": {"Errors", "Throttles", "Duration", "Invocations", "IteratorAge", "ConcurrentExecutions"},
    "AWS/SQS": {"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"},
}

_ADD_METRIC = re.compile(r"add_metric\(\s*name=(f?)\"([^\"]+)\"")
_SUB = re.compile(r"\$\{([^}]*)\}")


def _code_metric_calls() -> Iterator[tuple[bool, str]]:
    for folder in ("functions", "layers/courier/courier"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for is_f, name in _ADD_METRIC.findall(path.read_text(encoding="utf-8")):
                yield bool(is_f), name


def emitted_names() -> set[str]:
    names: set[str] = set()
    for is_f, name in _code_metric_calls():
        if not is_f:
            names.add(name)
            continue
        prefix, _, rest = name.partition("{")
        suffix = rest.partition("}")[2]
        names |= {f"{prefix}{value}{suffix}" for value in FAMILIES.get(name, set())}
    return names


def render(node: Any, resources: Mapping[str, Any], *, callback: bool) -> str:
    """A `Fn::Sub` with every reference replaced by a placeholder (and checked to exist)."""
    if isinstance(node, str):
        return node
    if "Fn::If" in node:
        condition, when_true, when_false = node["Fn::If"]
        assert condition == "CallbackEnabled"
        return render(when_true if callback else when_false, resources, callback=callback)
    if "Ref" in node or "Fn::GetAtt" in node:
        name = node.get("Ref") or node["Fn::GetAtt"][0]
        assert name in resources
        return f"placeholder-{name}"
    text, variables = (node["Fn::Sub"], {}) if isinstance(node["Fn::Sub"], str) else node["Fn::Sub"]

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in variables:
            return render(variables[name], resources, callback=callback)
        if name.startswith("AWS::"):
            return {"AWS::Region": "us-east-1", "AWS::StackName": "courier"}[name]
        logical = name.split(".", 1)[0]
        assert logical in resources, f"the dashboard refers to {name}, not a resource of the template"
        return f"placeholder-{name.replace('.', '-')}"

    return _SUB.sub(value, text)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def dashboard(template: Mapping[str, Any], *, callback: bool) -> dict[str, Any]:
    resources = template["Resources"]
    body = resources["OperationsDashboard"]["Properties"]["DashboardBody"]
    parsed: dict[str, Any] = json.loads(render(body, resources, callback=callback))
    return parsed


def metric_rows(body: Mapping[str, Any]) -> Iterator[list[Any]]:
    for widget in body["widgets"]:
        yield from widget["properties"].get("metrics", [])


@pytest.mark.parametrize("callback", [True, False])
def test_the_body_is_json_of_widgets_on_the_grid(template: dict[str, Any], callback: bool) -> None:
    body = dashboard(template, callback=callback)
    assert body["widgets"]
    for widget in body["widgets"]:
        assert widget["type"] in {"metric", "alarm"}
        assert widget["x"] >= 0
        assert widget["x"] + widget["width"] <= 24
        if widget["type"] == "metric":
            assert widget["properties"]["region"] == "us-east-1"
            assert widget["properties"]["metrics"]


def test_every_courier_metric_shown_is_emitted_by_the_code(template: dict[str, Any]) -> None:
    emitted = emitted_names() | NOTIFY_DELIVERY_METRICS
    shown = set()
    for row in metric_rows(dashboard(template, callback=True)):
        if row[0] != NAMESPACE:
            continue
        assert row[2:4] == ["service", SERVICE], f"{row[1]}: Powertools' one dimension is service"
        shown.add(row[1])
    assert shown
    assert shown - emitted == set()


def test_the_sections_operators_look_for_are_there(template: dict[str, Any]) -> None:
    shown = {row[1] for row in metric_rows(dashboard(template, callback=True))}
    runs = {f"Runs{s.value}" for s in RunStatus if s.terminal} | {"RunsSubmitted", "RunsRejected"}
    assert runs <= shown
    assert {f"Tasks_{s.value}" for s in TaskStatus} <= shown
    assert {"CromwellCalls", "CromwellCallFailures", "CromwellUnavailable", "CromwellAuthFailed"} <= shown
    assert shown >= NOTIFY_DELIVERY_METRICS
    assert {"Errors", "Throttles", "Duration", "IteratorAge", "ApproximateNumberOfMessagesVisible"} <= shown


def test_aws_metrics_name_the_stacks_own_functions_and_queues(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    functions = {lid for lid, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}
    queues = {lid for lid, r in resources.items() if r["Type"] == "AWS::SQS::Queue" and "DLQ" in lid}
    seen_functions, seen_queues = set(), set()
    for row in metric_rows(dashboard(template, callback=True)):
        if row[0] == NAMESPACE:
            continue
        assert row[1] in AWS_METRICS[row[0]]
        dimension, value = row[2], row[3]
        assert value.startswith("placeholder-")
        logical = value.removeprefix("placeholder-").removesuffix("-QueueName")
        if row[0] == "AWS/Lambda":
            assert dimension == "FunctionName"
            seen_functions.add(logical)
        else:
            assert dimension == "QueueName"
            seen_queues.add(logical)
    assert seen_functions == functions
    assert seen_queues == queues | {"SubmitParkingQueue"}


@pytest.mark.parametrize("callback", [True, False])
def test_the_alarm_widget_shows_every_alarm_of_the_stack(template: dict[str, Any], callback: bool) -> None:
    resources = template["Resources"]
    alarms = {
        lid
        for lid, r in resources.items()
        if r["Type"] == "AWS::CloudWatch::Alarm" and (callback or r.get("Condition") != "CallbackEnabled")
    }
    (widget,) = [w for w in dashboard(template, callback=callback)["widgets"] if w["type"] == "alarm"]
    shown = {arn.removeprefix("placeholder-").removesuffix("-Arn") for arn in widget["properties"]["alarms"]}
    assert shown == alarms


def test_the_alarms_watch_what_the_code_emits(template: dict[str, Any]) -> None:
    emitted = emitted_names()
    for lid, resource in template["Resources"].items():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        props = resource["Properties"]
        if props["Namespace"] == NAMESPACE:
            assert props["MetricName"] in emitted, lid
            assert props["Dimensions"] == [{"Name": "service", "Value": SERVICE}]
        else:
            assert props["MetricName"] in AWS_METRICS[props["Namespace"]], lid
    for name in (
        "CromwellUnavailableAlarm",
        "CromwellAuthFailedAlarm",
        "ReconcilerErrorsAlarm",
        "NotifyIteratorAgeAlarm",
    ):
        assert template["Resources"][name]["Properties"]["AlarmActions"] == [{"Ref": "NotificationsTopic"}]
    assert template["Resources"]["CallbackErrorsAlarm"]["Condition"] == "CallbackEnabled"


def test_every_metric_family_of_the_code_is_known() -> None:
    families = {name for is_f, name in _code_metric_calls() if is_f}
    assert families <= set(FAMILIES), "list the new family's values in FAMILIES"


def test_the_dashboard_url_is_an_output(template: dict[str, Any]) -> None:
    url = template["Outputs"]["DashboardUrl"]["Value"]["Fn::Sub"][0]
    assert "#dashboards:name=${OperationsDashboard}" in url
