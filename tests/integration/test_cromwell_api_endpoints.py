"""Every endpoint real Cromwell clients call (cromshell 2.x, Cromwell's Swagger UI) answers as
Cromwell 92 does: bodies, status codes and error shapes.

Requests are made as those clients make them (multipart parts with file names, repeated query
keys, JSON bodies), and every answer is checked against Cromwell's Swagger spec after each test.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from local.cromwell_api import LOCAL_VERSION, SPEC_PATH, CromwellTestServer, InMemoryBackend
from tests.support.cromwell_helpers import HELLO_WDL, contract_problems

pytest_plugins = ["tests.support.cromwell_fixtures"]
pytestmark = pytest.mark.integration

JSON = {"accept": "application/json"}


@pytest.fixture(autouse=True)
def _answers_match_the_spec(cromwell_server: CromwellTestServer) -> Iterator[None]:
    yield
    assert contract_problems(cromwell_server) == []


def api(server: CromwellTestServer, path: str = "") -> str:
    return f"{server.url}/api/workflows/v1{path}"


def multipart(**parts: Any) -> dict[str, Any]:
    """Parts as Swagger UI sends them: files with a name and a type, plain fields as text."""
    files: dict[str, Any] = {}
    for name, value in parts.items():
        if isinstance(value, tuple):
            files[name] = (*value, "application/octet-stream")
        else:
            files[name] = (None, value)
    return files


def hello(**extra: Any) -> dict[str, Any]:
    return multipart(workflowSource=("hello.wdl", HELLO_WDL), **extra)


def error_body(response: requests.Response, status: int, kind: str, fragment: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == kind
    assert fragment in body["message"] + " ".join(body.get("errors", []))


# -- engine ------------------------------------------------------------------------------------


def test_engine_version_and_status(cromwell_server: CromwellTestServer) -> None:
    version = requests.get(f"{cromwell_server.url}/engine/v1/version", headers=JSON, timeout=5)
    assert (version.status_code, version.json()) == (200, {"cromwell": LOCAL_VERSION})
    status = requests.get(f"{cromwell_server.url}/engine/v1/status", headers=JSON, timeout=5)
    assert (status.status_code, status.json()) == (200, {"Engine Database": {"ok": True}})
    cromwell_server.healthy = False
    down = requests.get(f"{cromwell_server.url}/engine/v1/status", headers=JSON, timeout=5)
    assert down.status_code == 500
    assert down.json()["Engine Database"]["ok"] is False


def test_backends_names_the_aws_batch_backend(cromwell_server: CromwellTestServer) -> None:
    response = requests.get(api(cromwell_server, "/backends"), headers=JSON, timeout=5)
    assert response.status_code == 200
    assert response.json() == {"supportedBackends": ["AWSBatch"], "defaultBackend": "AWSBatch"}


# -- submission --------------------------------------------------------------------------------


def test_single_submission_takes_an_array_of_one_set_of_inputs(cromwell_server: CromwellTestServer) -> None:
    response = requests.post(
        api(cromwell_server),
        files=hello(workflowInputs=("inputs.json", '[{"hello.who": "one"}]')),
        headers=JSON,
        timeout=5,
    )
    assert response.status_code == 201, response.text
    assert cromwell_server.backend.submissions[0].inputs == {"hello.who": "one"}


def test_single_submission_refuses_several_sets_of_inputs(cromwell_server: CromwellTestServer) -> None:
    response = requests.post(
        api(cromwell_server),
        files=hello(workflowInputs=("inputs.json", '[{"hello.who": "a"}, {"hello.who": "b"}]')),
        timeout=5,
    )
    error_body(response, 400, "fail", "use the batch endpoint")
    assert cromwell_server.backend.submissions == []


def test_workflow_on_hold_then_released(
    cromwell_server: CromwellTestServer, cromwell_backend: InMemoryBackend
) -> None:
    submitted = requests.post(
        api(cromwell_server),
        files=hello(workflowInputs=("i.json", '{"hello.who": "x"}'), workflowOnHold="true"),
        timeout=5,
    )
    assert (submitted.status_code, submitted.json()["status"]) == (201, "On Hold")
    wid = submitted.json()["id"]
    assert requests.get(api(cromwell_server, f"/{wid}/status"), timeout=5).json()["status"] == "On Hold"

    released = requests.post(api(cromwell_server, f"/{wid}/releaseHold"), headers=JSON, timeout=5)
    assert (released.status_code, released.json()) == (200, {"id": wid, "status": "Submitted"})
    assert cromwell_backend.workflow(wid).status == "Submitted"

    again = requests.post(api(cromwell_server, f"/{wid}/releaseHold"), timeout=5)
    error_body(again, 403, "error", "is not in 'On Hold' state")


def test_release_hold_of_unknown_and_malformed_ids(cromwell_server: CromwellTestServer) -> None:
    unknown = str(uuid.uuid4())
    error_body(
        requests.post(api(cromwell_server, f"/{unknown}/releaseHold"), timeout=5),
        404,
        "fail",
        f"Unrecognized workflow ID: {unknown}",
    )
    error_body(
        requests.post(api(cromwell_server, "/nope/releaseHold"), timeout=5),
        400,
        "fail",
        "Invalid workflow ID",
    )


def test_batch_submission_is_one_workflow_per_set_of_inputs(cromwell_server: CromwellTestServer) -> None:
    ids = [str(uuid.uuid4()), str(uuid.uuid4())]
    response = requests.post(
        api(cromwell_server, "/batch"),
        files=hello(
            workflowInputs=("batch.json", '[{"hello.who": "a"}, {"hello.who": "b"}]'),
            workflowInputs_2=("common.json", '{"hello.extra": 1}'),
            labels=("labels.json", '{"project": "p1"}'),
            requestedWorkflowId=json.dumps(ids),
        ),
        headers=JSON,
        timeout=5,
    )
    assert response.status_code == 201, response.text
    assert response.json() == [{"id": ids[0], "status": "Submitted"}, {"id": ids[1], "status": "Submitted"}]
    found = cromwell_server.backend.submissions
    assert [s.inputs for s in found] == [
        {"hello.who": "a", "hello.extra": 1},
        {"hello.who": "b", "hello.extra": 1},
    ]
    assert [s.labels for s in found] == [{"project": "p1"}] * 2
    metadata = requests.get(api(cromwell_server, f"/{ids[1]}/metadata"), timeout=5).json()
    assert json.loads(metadata["submittedFiles"]["inputs"]) == {"hello.who": "b"}


def test_batch_on_hold(cromwell_server: CromwellTestServer) -> None:
    response = requests.post(
        api(cromwell_server, "/batch"),
        files=hello(workflowInputs=("b.json", '[{"hello.who": "a"}]'), workflowOnHold="true"),
        timeout=5,
    )
    assert response.status_code == 201
    assert [w["status"] for w in response.json()] == ["On Hold"]


@pytest.mark.parametrize(
    ("parts", "fragment"),
    [
        ({}, "workflowInputs"),
        ({"workflowInputs": ("b.json", "[]")}, "No inputs were provided"),
        ({"workflowInputs": ("b.json", "[1]")}, "must be a JSON object"),
        (
            {
                "workflowInputs": ("b.json", '[{"a": 1}, {"a": 2}]'),
                "requestedWorkflowId": json.dumps([str(uuid.uuid4())]),
            },
            "1 ids for 2 sets of inputs",
        ),
        ({"workflowInputs": ("b.json", '[{"a": 1}]'), "requestedWorkflowId": str(uuid.uuid4())}, "JSON list"),
        ({"workflowInputs": ("b.json", '[{"a": 1}]'), "requestedWorkflowId": '["nope"]'}, "not a UUID"),
    ],
)
def test_bad_batches_are_refused_whole(
    cromwell_server: CromwellTestServer, parts: dict[str, Any], fragment: str
) -> None:
    response = requests.post(api(cromwell_server, "/batch"), files=hello(**parts), timeout=5)
    error_body(response, 400, "fail", fragment)
    assert cromwell_server.backend.submissions == []


def test_a_batch_with_an_id_in_use_creates_nothing(cromwell_server: CromwellTestServer) -> None:
    taken = cromwell_server.backend.add().id
    fresh = str(uuid.uuid4())
    response = requests.post(
        api(cromwell_server, "/batch"),
        files=hello(
            workflowInputs=("b.json", '[{"a": 1}, {"a": 2}]'), requestedWorkflowId=json.dumps([fresh, taken])
        ),
        timeout=5,
    )
    error_body(response, 400, "fail", f"Requested workflow IDs are already in use: {taken}")
    assert requests.get(api(cromwell_server, f"/{fresh}/status"), timeout=5).status_code == 404


# -- per workflow ------------------------------------------------------------------------------


def test_status_outputs_and_labels(
    cromwell_server: CromwellTestServer, cromwell_backend: InMemoryBackend
) -> None:
    wf = cromwell_backend.add(name="hello", status="Succeeded", labels={"project": "p1"})
    cromwell_backend.set_outputs(wf.id, {"hello.greeting": "hi"})

    status = requests.get(api(cromwell_server, f"/{wf.id}/status"), headers=JSON, timeout=5)
    assert status.json() == {"id": wf.id, "status": "Succeeded"}
    outputs = requests.get(api(cromwell_server, f"/{wf.id}/outputs"), headers=JSON, timeout=5)
    assert outputs.json() == {"id": wf.id, "outputs": {"hello.greeting": "hi"}}
    labels = requests.get(api(cromwell_server, f"/{wf.id}/labels"), headers=JSON, timeout=5)
    assert labels.json() == {
        "id": wf.id,
        "labels": {"cromwell-workflow-id": f"cromwell-{wf.id}", "project": "p1"},
    }
    patched = requests.patch(
        api(cromwell_server, f"/{wf.id}/labels"),
        data=json.dumps({"owner": "Ana B."}),
        headers={**JSON, "Content-Type": "application/json"},
        timeout=5,
    )
    assert patched.status_code == 200
    assert patched.json()["labels"]["owner"] == "Ana B."
    unknown = str(uuid.uuid4())
    for suffix in ("status", "outputs", "labels", "metadata", "logs"):
        error_body(
            requests.get(api(cromwell_server, f"/{unknown}/{suffix}"), timeout=5),
            404,
            "fail",
            f"Unrecognized workflow ID: {unknown}",
        )


def test_metadata_as_cromshell_asks_for_it(
    cromwell_server: CromwellTestServer, cromwell_backend: InMemoryBackend
) -> None:
    wf = cromwell_backend.add(name="outer", status="Running")
    sub = cromwell_backend.add(name="inner", status="Running", parent_id=wf.id)
    cromwell_backend.add_call(sub.id, "inner.task", status="Failed", job_id="job-inner")
    cromwell_backend.add_call(wf.id, "outer.inner", sub_workflow_id=sub.id)
    cromwell_backend.add_call(wf.id, "outer.task", shard=0, status="Done", job_id="job-0")

    # `cromshell status` of a Running workflow: its slim keys, sub-workflows expanded.
    slim = requests.get(
        api(cromwell_server, f"/{wf.id}/metadata"),
        params=[
            *[("includeKey", k) for k in ("id", "executionStatus", "backendStatus", "status", "callRoot")],
            ("includeKey", "subWorkflowMetadata"),
            ("includeKey", "subWorkflowId"),
            ("expandSubWorkflows", "true"),
        ],
        timeout=5,
    ).json()
    nested = slim["calls"]["outer.inner"][0]["subWorkflowMetadata"]
    assert nested["calls"]["inner.task"][0]["executionStatus"] == "Failed"
    assert set(slim["calls"]["outer.task"][0]) == {"executionStatus", "callRoot", "shardIndex", "attempt"}

    # `cromshell metadata` / `counts`: everything but the submitted files.
    full = requests.get(
        api(cromwell_server, f"/{wf.id}/metadata"),
        params={"excludeKey": "submittedFiles", "expandSubWorkflows": "true"},
        timeout=5,
    ).json()
    assert "submittedFiles" not in full
    assert full["calls"]["outer.task"][0]["jobId"] == "job-0"
    assert full["calls"]["outer.inner"][0]["subWorkflowMetadata"]["id"] == sub.id

    flat = requests.get(
        api(cromwell_server, f"/{wf.id}/metadata"), params={"expandSubWorkflows": "false"}, timeout=5
    ).json()
    assert "subWorkflowMetadata" not in flat["calls"]["outer.inner"][0]


def test_logs_lists_each_call_attempt_of_the_workflow(
    cromwell_server: CromwellTestServer, cromwell_backend: InMemoryBackend
) -> None:
    wf = cromwell_backend.add(name="hello", status="Running")
    before = requests.get(api(cromwell_server, f"/{wf.id}/logs"), timeout=5)
    assert before.json() == {"id": wf.id}

    first = cromwell_backend.add_call(wf.id, "hello.greet", shard=0, status="Done")
    retry = cromwell_backend.add_call(wf.id, "hello.greet", shard=0, attempt=2, status="Running")
    sub = cromwell_backend.add(name="inner", parent_id=wf.id)
    cromwell_backend.add_call(wf.id, "hello.inner", sub_workflow_id=sub.id, stdout=None)

    answer = requests.get(api(cromwell_server, f"/{wf.id}/logs"), headers=JSON, timeout=5).json()

    assert answer["id"] == wf.id
    assert answer["calls"]["hello.greet"] == [
        {"stdout": e["stdout"], "stderr": e["stderr"], "shardIndex": 0, "attempt": e["attempt"]}
        for e in (first, retry)
    ]
    assert answer["calls"]["hello.greet"][1]["stdout"].endswith(
        "call-greet/shard-0/attempt-2/greet-0-stdout.log"
    )
    error_body(requests.get(api(cromwell_server, "/x/logs"), timeout=5), 400, "fail", "Invalid workflow ID")


def test_timing_is_a_self_contained_html_page(
    cromwell_server: CromwellTestServer, cromwell_backend: InMemoryBackend
) -> None:
    wf = cromwell_backend.add(name="hello", status="Running")
    cromwell_backend.add_call(wf.id, "hello.greet", shard=0, status="Done")
    cromwell_backend.add_call(wf.id, "hello.<script>", status="Running")

    page = requests.get(api(cromwell_server, f"/{wf.id}/timing"), timeout=5)

    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert "hello.greet [0]" in page.text
    assert "hello.&lt;script&gt;" in page.text
    assert "<script" not in page.text
    assert "src=" not in page.text
    assert "href=" not in page.text
    error_body(
        requests.get(api(cromwell_server, f"/{uuid.uuid4()}/timing"), timeout=5), 404, "fail", "Unrecognized"
    )
    error_body(requests.get(api(cromwell_server, "/x/timing"), timeout=5), 400, "fail", "Invalid workflow ID")


def test_abort_answers(cromwell_server: CromwellTestServer, cromwell_backend: InMemoryBackend) -> None:
    held = cromwell_backend.add(status="On Hold").id
    running = cromwell_backend.add(status="Running").id
    done = cromwell_backend.add(status="Succeeded").id

    assert requests.post(api(cromwell_server, f"/{held}/abort"), timeout=5).json() == {
        "id": held,
        "status": "Aborted",
    }
    assert requests.post(api(cromwell_server, f"/{running}/abort"), timeout=5).json()["status"] == "Aborting"
    # Cromwell's 404 here says "error", not "fail".
    error_body(
        requests.post(api(cromwell_server, f"/{done}/abort"), timeout=5),
        404,
        "error",
        "no workflow with that ID",
    )


# -- query -------------------------------------------------------------------------------------


@pytest.fixture
def population(cromwell_backend: InMemoryBackend) -> dict[str, str]:
    """Five workflows with different names, statuses, labels and times, and one sub-workflow."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    made = {
        "old": cromwell_backend.add(name="alpha", status="Succeeded", labels={"team": "a"}, submission=t0),
        "mid": cromwell_backend.add(
            name="beta", status="Failed", labels={"team": "b", "k": "v"}, submission=t0 + timedelta(days=1)
        ),
        "new": cromwell_backend.add(
            name="alpha",
            status="Running",
            labels={"team": "b", "courier-inputs-key": "runs/A b/inputs.json"},
            submission=t0 + timedelta(days=2),
        ),
        "held": cromwell_backend.add(name="gamma", status="On Hold", submission=t0 + timedelta(days=3)),
    }
    made["sub"] = cromwell_backend.add(
        name="inner", status="Running", parent_id=made["new"].id, submission=t0
    )
    return {key: wf.id for key, wf in made.items()}


QUERIES: list[tuple[list[tuple[str, str]], list[str]]] = [
    ([("status", "Running")], ["new", "sub"]),
    ([("status", "On Hold"), ("status", "Failed")], ["held", "mid"]),
    ([("name", "alpha")], ["new", "old"]),
    ([("label", "team:b"), ("label", "k:v")], ["mid"]),
    ([("labelor", "team:a"), ("labelor", "k:v")], ["mid", "old"]),
    ([("excludeLabelAnd", "team:b"), ("excludeLabelAnd", "k:v")], ["held", "new", "old", "sub"]),
    ([("excludeLabelOr", "team:a"), ("excludeLabelOr", "team:b")], ["held", "sub"]),
    ([("label", "courier-inputs-key:runs/A b/inputs.json")], ["new"]),
    ([("includeSubworkflows", "false"), ("status", "Running")], ["new"]),
    ([("submission", "2026-01-02T00:00:00Z")], ["held", "mid", "new"]),
]


@pytest.mark.parametrize(("filters", "expected"), QUERIES)
def test_query_filters_get_and_post(
    cromwell_server: CromwellTestServer,
    population: dict[str, str],
    filters: list[tuple[str, str]],
    expected: list[str],
) -> None:
    names = {wid: key for key, wid in population.items()}
    got = requests.get(api(cromwell_server, "/query"), params=filters, headers=JSON, timeout=5)
    posted = requests.post(
        api(cromwell_server, "/query"),
        data=json.dumps([{k: v} for k, v in filters]),
        headers={**JSON, "Content-Type": "application/json"},
        timeout=5,
    )
    for answer in (got, posted):
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert sorted(names[r["id"]] for r in body["results"]) == expected
        assert body["totalResultsCount"] == len(expected)


def test_query_by_id_pages_order_and_extra_fields(
    cromwell_server: CromwellTestServer, population: dict[str, str]
) -> None:
    url = api(cromwell_server, "/query")
    by_id = requests.get(url, params=[("id", population["old"]), ("id", population["sub"])], timeout=5).json()
    assert {r["id"] for r in by_id["results"]} == {population["old"], population["sub"]}

    newest = requests.get(url, params={"pageSize": "2", "page": "1"}, timeout=5).json()
    assert [r["id"] for r in newest["results"]] == [population["held"], population["new"]]
    assert newest["totalResultsCount"] == 5
    oldest = requests.get(
        url, params={"pageSize": "2", "page": "1", "newestFirst": "false"}, timeout=5
    ).json()
    # Oldest first: the two submitted at t0 (ties ordered by id), then the next day's.
    assert [r["id"] for r in oldest["results"]] == sorted([population["old"], population["sub"]])

    extra = requests.get(
        url,
        params=[
            ("id", population["sub"]),
            ("additionalQueryResultFields", "labels"),
            ("additionalQueryResultFields", "parentWorkflowId"),
        ],
        timeout=5,
    ).json()["results"][0]
    assert extra["parentWorkflowId"] == population["new"]
    assert extra["rootWorkflowId"] == population["new"]
    assert extra["labels"]["cromwell-workflow-id"] == f"cromwell-{population['sub']}"


def test_query_time_window_and_its_checks(
    cromwell_server: CromwellTestServer, population: dict[str, str]
) -> None:
    url = api(cromwell_server, "/query")
    now = datetime.now(UTC)
    window = {"start": (now - timedelta(hours=1)).isoformat(), "end": (now + timedelta(hours=1)).isoformat()}
    ended = requests.get(url, params=window, timeout=5).json()
    assert {r["id"] for r in ended["results"]} == {population["old"], population["mid"]}
    error_body(
        requests.get(url, params={"start": window["end"], "end": window["start"]}, timeout=5),
        400,
        "fail",
        "start date is after specified end date",
    )
    error_body(
        requests.get(url, params={"submission": window["end"], "start": window["start"]}, timeout=5),
        400,
        "fail",
        "submission date is after specified start date",
    )


# -- womtool describe (cromshell submit validates with it) -------------------------------------


def describe(server: CromwellTestServer, source: str, inputs: str | None = None) -> requests.Response:
    parts: dict[str, Any] = {"workflowSource": ("main.wdl", source)}
    if inputs is not None:
        parts["workflowInputs"] = ("inputs.json", inputs)
    return requests.post(f"{server.url}/api/womtool/v1/describe", files=multipart(**parts), timeout=30)


def test_describe_a_valid_workflow(cromwell_server: CromwellTestServer) -> None:
    answer = describe(cromwell_server, HELLO_WDL, '{"hello.who": "you"}')
    assert answer.status_code == 200
    body = answer.json()
    assert (body["valid"], body["errors"], body["name"]) == (True, [], "hello")
    assert body["inputs"][0]["name"] == "hello.who"
    assert body["inputs"][0]["valueType"] == {"typeName": "String"}
    assert body["outputs"] == [
        {"name": "hello.greeting", "valueType": {"typeName": "String"}, "typeDisplayName": "String"}
    ]
    assert body["images"] == ["ubuntu:24.04"]
    assert body["submittedDescriptorType"] == {"descriptorType": "WDL", "descriptorTypeVersion": "1.0"}


def test_describe_types_and_defaults(cromwell_server: CromwellTestServer) -> None:
    source = """version 1.0
struct Sample { String name  Array[File] reads }
workflow typed {
  input { Array[Int] xs  Map[String, Float] m  Pair[Int, String]? p  Sample s  Boolean flag = true }
  output { Int n = length(xs) }
}
"""
    body = describe(cromwell_server, source).json()
    types = {i["name"]: i for i in body["inputs"]}
    assert types["typed.xs"]["valueType"] == {"typeName": "Array", "arrayType": {"typeName": "Int"}}
    assert types["typed.m"]["valueType"]["mapType"]["valueType"] == {"typeName": "Float"}
    assert types["typed.p"]["valueType"]["typeName"] == "Optional"
    assert types["typed.s"]["valueType"]["objectFieldTypes"][1]["fieldName"] == "reads"
    assert (types["typed.flag"]["optional"], types["typed.flag"]["default"]) == (True, "true")
    assert (types["typed.xs"]["optional"], types["typed.xs"]["default"]) == (False, None)


@pytest.mark.parametrize(
    ("source", "inputs", "fragment"),
    [
        (HELLO_WDL, '{"hello.whom": "you"}', "hello.whom"),
        (HELLO_WDL, "{}", "missing required inputs"),
        (HELLO_WDL.replace("call greet {", "call greet {{"), None, "SyntaxError"),
        ("version 1.0\ntask t { command <<< >>> }\n", None, "no workflow"),
    ],
)
def test_describe_says_why_a_workflow_is_not_valid(
    cromwell_server: CromwellTestServer, source: str, inputs: str | None, fragment: str
) -> None:
    answer = describe(cromwell_server, source, inputs)
    assert answer.status_code == 200
    assert answer.json()["valid"] is False
    assert any(fragment in e for e in answer.json()["errors"]), answer.json()["errors"]


def test_describe_needs_a_workflow(cromwell_server: CromwellTestServer) -> None:
    answer = requests.post(
        f"{cromwell_server.url}/api/womtool/v1/describe",
        files=multipart(workflowInputs=("i.json", "{}")),
        timeout=5,
    )
    error_body(answer, 400, "fail", "workflowSource or workflowUrl")


# -- what a Swagger UI needs -------------------------------------------------------------------


def test_the_spec_is_served_where_cromwell_serves_it(cromwell_server: CromwellTestServer) -> None:
    answer = requests.get(f"{cromwell_server.url}/swagger/cromwell.yaml", timeout=5)
    assert answer.status_code == 200
    assert answer.content == SPEC_PATH.read_bytes()


def test_a_swagger_ui_of_another_origin_may_call(cromwell_server: CromwellTestServer) -> None:
    origin = {"Origin": "http://127.0.0.1:8080"}
    preflight = requests.options(
        api(cromwell_server, "/query"),
        headers={
            **origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
        timeout=5,
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "content-type" in preflight.headers["Access-Control-Allow-Headers"]
    answer = requests.get(api(cromwell_server, "/backends"), headers={**origin, **JSON}, timeout=5)
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    refused = requests.get(api(cromwell_server, "/nope/status"), headers=origin, timeout=5)
    assert refused.headers["Access-Control-Allow-Origin"] == "*"
