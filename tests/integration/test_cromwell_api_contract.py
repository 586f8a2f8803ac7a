"""The local Cromwell-compatible server keeps Cromwell's contract, and CromwellClient round-trips on it.

Every answer the server gives in this module is checked against Cromwell's Swagger spec after
each test (status declared for the operation, JSON body matching its schema).
"""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from courier.cromwell import CromwellClient
from courier.errors import CromwellBadRequest, CromwellNotFound, CromwellUnavailable, WorkflowIdInUse
from local.cromwell_api import ERRATA, LOCAL_VERSION, SPEC_PATH, CromwellTestServer, InMemoryBackend
from monitor.end_report import FAILURE_KEYS, failure_messages, iter_failed_calls
from tests.support.cromwell_helpers import HELLO_WDL, FakeClock, contract_problems, submit_request

pytest_plugins = ["tests.support.cromwell_fixtures"]
pytestmark = pytest.mark.integration

REFERENCE_SPEC = Path("/work/shared/reference/cromwell-openapi.yaml")


@pytest.fixture(autouse=True)
def _answers_match_the_spec(cromwell_server: CromwellTestServer) -> Iterator[None]:
    yield
    assert contract_problems(cromwell_server) == []


def post_submit(server: CromwellTestServer, parts: dict[str, Any]) -> requests.Response:
    files = {name: (None, value) if isinstance(value, str) else value for name, value in parts.items()}
    return requests.post(f"{server.url}/api/workflows/v1", files=files, timeout=5)


def good_parts(**extra: Any) -> dict[str, Any]:
    parts: dict[str, Any] = {
        "workflowSource": ("hello.wdl", HELLO_WDL),
        "workflowInputs": ("inputs.json", '{"hello.who": "you"}'),
        "requestedWorkflowId": str(uuid.uuid4()),
    }
    parts.update(extra)
    return parts


def assert_refused(response: requests.Response, fragment: str, status: int = 400) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "fail"
    assert fragment in body["message"] + " ".join(body.get("errors", []))


def zipped(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


# -- the spec ----------------------------------------------------------------------------------


@pytest.mark.skipif(not REFERENCE_SPEC.exists(), reason="reference spec not present")
def test_vendored_spec_is_cromwells_published_spec_unchanged() -> None:
    assert SPEC_PATH.read_bytes() == REFERENCE_SPEC.read_bytes()


def test_every_served_route_is_an_operation_of_the_spec(cromwell_server: CromwellTestServer) -> None:
    spec = cromwell_server.app.spec
    declared = {op["operationId"] for methods in spec.raw["paths"].values() for op in methods.values()}
    served = set(cromwell_server.app.served_operations)
    assert served <= declared
    assert {
        "submit",
        "status",
        "outputs",
        "metadata",
        "failed-jobs",
        "abort",
        "queryGet",
        "queryPost",
    } <= served
    for op_id in served:
        op = spec.operations[op_id]
        assert spec.route_exists(op.method, op.path)


def test_errata_are_few_and_the_file_is_not_patched(cromwell_server: CromwellTestServer) -> None:
    spec = cromwell_server.app.spec
    assert len(ERRATA) <= 12
    assert spec.raw["definitions"]["LabelsResponse"]["properties"]["labels"]["type"] == "string"
    assert spec.effective["definitions"]["LabelsResponse"]["properties"]["labels"]["type"] == "object"


def test_the_response_check_catches_a_wrong_answer(cromwell_server: CromwellTestServer) -> None:
    spec = cromwell_server.app.spec
    assert spec.response_problems("status", 200, {"id": "x"})  # status missing
    assert spec.response_problems("status", 201, {"id": "x", "status": "Running"})  # not declared
    assert spec.response_problems("queryPost", 200, {"results": [{"id": 1}], "totalResultsCount": 1})
    assert spec.response_problems("status", 200, {"id": "x", "status": "Running"}) == []


def test_unknown_paths_and_methods(cromwell_server: CromwellTestServer) -> None:
    assert (
        requests.get(f"{cromwell_server.url}/api/workflows/v1/nothing/here/at/all", timeout=5).status_code
        == 404
    )
    assert requests.get(f"{cromwell_server.url}/api/workflows/v2/query", timeout=5).status_code == 404
    assert requests.delete(f"{cromwell_server.url}/api/workflows/v1/query", timeout=5).status_code == 405


# -- Cromwell's rules --------------------------------------------------------------------------


def test_valid_submission_is_201_and_recorded(cromwell_server: CromwellTestServer) -> None:
    parts = good_parts(
        workflowType="WDL",
        workflowTypeVersion="1.1",
        workflowOptions=("o.json", '{"read_from_cache": false}'),
        labels=("l.json", '{"project": "p1"}'),
        workflowInputs_2=("i2.json", '{"hello.who": "override"}'),
        workflowDependencies=("deps.zip", zipped({"tasks/greet.wdl": "version 1.0\n"})),
    )
    response = post_submit(cromwell_server, parts)

    assert response.status_code == 201, response.text
    assert response.json() == {"id": parts["requestedWorkflowId"], "status": "Submitted"}
    [submission] = cromwell_server.backend.submissions
    assert submission.inputs == {"hello.who": "override"}
    assert submission.options == {"read_from_cache": False}
    assert submission.labels == {"project": "p1"}
    assert submission.dependencies == {"tasks/greet.wdl": b"version 1.0\n"}
    assert submission.workflow_type_version == "1.1"


def test_yaml_inputs_are_accepted(cromwell_server: CromwellTestServer) -> None:
    response = post_submit(cromwell_server, good_parts(workflowInputs=("i.yaml", "hello.who: yaml\n")))
    assert response.status_code == 201
    assert cromwell_server.backend.submissions[0].inputs == {"hello.who": "yaml"}


def test_on_hold_submission(cromwell_server: CromwellTestServer) -> None:
    response = post_submit(cromwell_server, good_parts(workflowOnHold="true"))
    assert response.json()["status"] == "On Hold"


def test_unknown_part_name_is_refused(cromwell_server: CromwellTestServer) -> None:
    response = post_submit(cromwell_server, good_parts(workflowInput=("i.json", "{}")))
    assert_refused(response, "Unexpected body part name: workflowInput")
    assert cromwell_server.backend.submissions == []


def test_duplicate_requested_id_is_refused(cromwell_server: CromwellTestServer) -> None:
    parts = good_parts()
    assert post_submit(cromwell_server, parts).status_code == 201
    response = post_submit(cromwell_server, parts)
    assert_refused(response, f"Requested workflow IDs are already in use: {parts['requestedWorkflowId']}")
    assert len(cromwell_server.backend.submissions) == 1


@pytest.mark.parametrize(
    ("parts", "fragment"),
    [
        ({"workflowSource": None}, "Workflow source or workflow url needs to be supplied"),
        ({"workflowUrl": "https://example.org/hello.wdl"}, "Both workflow source and url"),
        ({"workflowSource": None, "workflowUrl": "s3://bucket/hello.wdl"}, "not an http or https URL"),
        ({"requestedWorkflowId": "not-a-uuid"}, "not a UUID"),
        ({"workflowInputs": ("i.json", "[1, 2]")}, "must be a JSON object"),
        ({"workflowInputs_2": ("i.json", "hello.who: yaml-not-allowed-here")}, "not a valid JSON object"),
        ({"workflowOptions": ("o.json", '"text"')}, "must be a JSON object"),
        ({"labels": ("l.json", '["a"]')}, "must be a JSON object"),
        ({"labels": ("l.json", '{"n": 1}')}, "value must be a string"),
        ({"labels": ("l.json", json.dumps({"k" * 256: "v"}))}, "1 to 255"),
        ({"labels": ("l.json", json.dumps({"": "v"}))}, "1 to 255"),
        ({"labels": ("l.json", json.dumps({"k": "v" * 256}))}, "at most 255"),
        ({"workflowDependencies": ("deps.zip", b"PK-not-really")}, "not a valid zip"),
        ({"workflowType": "CWLX"}, "workflowType must be one of"),
        ({"workflowTypeVersion": "2.0"}, "workflowTypeVersion must be one of"),
        ({"workflowOnHold": "maybe"}, "workflowOnHold must be true or false"),
    ],
)
def test_cromwell_refuses_bad_submissions(
    cromwell_server: CromwellTestServer, parts: dict[str, Any], fragment: str
) -> None:
    body = good_parts(**parts)
    body = {k: v for k, v in body.items() if v is not None}
    response = post_submit(cromwell_server, body)
    assert_refused(response, fragment)
    assert cromwell_server.backend.submissions == []


def test_label_limits_at_the_edge_are_accepted(cromwell_server: CromwellTestServer) -> None:
    labels = json.dumps({"k" * 255: "v" * 255, "x": ""})
    assert post_submit(cromwell_server, good_parts(labels=("l.json", labels))).status_code == 201


def test_submit_must_be_multipart(cromwell_server: CromwellTestServer) -> None:
    response = requests.post(
        f"{cromwell_server.url}/api/workflows/v1", json={"workflowSource": "x"}, timeout=5
    )
    assert_refused(response, "multipart/form-data")


@pytest.mark.parametrize("suffix", ["status", "outputs", "metadata", "metadata/failed-jobs", "labels"])
def test_workflow_id_in_the_path_must_be_a_uuid(cromwell_server: CromwellTestServer, suffix: str) -> None:
    response = requests.get(f"{cromwell_server.url}/api/workflows/v1/not-a-uuid/{suffix}", timeout=5)
    assert_refused(response, "Invalid workflow ID: 'not-a-uuid'")


def test_abort_and_patch_labels_check_the_uuid_too(cromwell_server: CromwellTestServer) -> None:
    base = f"{cromwell_server.url}/api/workflows/v1/123"
    assert_refused(requests.post(f"{base}/abort", timeout=5), "Invalid workflow ID")
    assert_refused(requests.patch(f"{base}/labels", json={"a": "b"}, timeout=5), "Invalid workflow ID")


def test_query_parameters_are_checked(cromwell_server: CromwellTestServer) -> None:
    url = f"{cromwell_server.url}/api/workflows/v1/query"
    assert_refused(requests.get(url, params={"colour": "red"}, timeout=5), "Unrecognized query keys: colour")
    assert_refused(requests.get(url, params={"status": "Done"}, timeout=5), "status must be one of")
    assert_refused(requests.get(url, params={"id": "nope"}, timeout=5), "does not match")
    assert_refused(requests.get(url, params={"pageSize": "x"}, timeout=5), "must be an integer")
    assert_refused(requests.get(url, params={"start": "yesterday"}, timeout=5), "date-time")
    assert requests.get(url, params={"STATUS": "Running", "PageSize": "5"}, timeout=5).status_code == 200
    assert_refused(requests.post(url, json=[{"status": "Running", "name": "x"}], timeout=5), "")
    assert_refused(requests.post(url, json=[{"color": "red"}], timeout=5), "Unrecognized query keys: color")
    assert_refused(requests.post(url, json={"status": "Running"}, timeout=5), "")


def test_metadata_query_parameters_are_checked(cromwell_server: CromwellTestServer) -> None:
    wid = cromwell_server.backend.add().id
    url = f"{cromwell_server.url}/api/workflows/v1/{wid}/metadata"
    assert_refused(requests.get(url, params={"expandSubWorkflows": "yes"}, timeout=5), "true or false")
    assert_refused(requests.get(url, params={"includekey": "status"}, timeout=5), "Unrecognized query keys")


def test_patch_labels_checks_the_body(cromwell_server: CromwellTestServer) -> None:
    wid = cromwell_server.backend.add().id
    url = f"{cromwell_server.url}/api/workflows/v1/{wid}/labels"
    assert_refused(requests.patch(url, json=["a"], timeout=5), "")
    assert_refused(requests.patch(url, json={"a": "v" * 256}, timeout=5), "at most 255")
    assert_refused(requests.patch(url, data="{", timeout=5), "not JSON")
    assert_refused(requests.patch(url, timeout=5), "required")


def test_unmanaged_operations_answer_501(cromwell_server: CromwellTestServer) -> None:
    wid = cromwell_server.backend.add().id
    response = requests.get(f"{cromwell_server.url}/api/workflows/v1/{wid}/cost", timeout=5)
    assert response.status_code == 501
    assert response.json()["status"] == "error"
    cromwell_server.reset_log()  # 501 is the local tool saying "not here", not part of the contract


# -- the client round trip ---------------------------------------------------------------------


def test_submit_status_with_early_404(
    cromwell_server: CromwellTestServer,
    cromwell_backend: InMemoryBackend,
    cromwell_clock: FakeClock,
    cromwell_client: CromwellClient,
) -> None:
    cromwell_backend.early_404_seconds = 5
    wid = str(uuid.uuid4())

    result = cromwell_client.submit(submit_request(wid))

    assert (result.id, result.status) == (wid, "Submitted")
    with pytest.raises(CromwellNotFound, match="Unrecognized workflow ID"):
        cromwell_client.status(wid)
    cromwell_clock.advance(5)
    assert cromwell_client.status(wid) == "Submitted"
    cromwell_backend.set_status(wid, "Running")
    assert cromwell_client.status(wid) == "Running"


def test_outputs_labels_and_version(
    cromwell_backend: InMemoryBackend, cromwell_client: CromwellClient
) -> None:
    wid = cromwell_client.submit(submit_request(labels={"project": "p1"})).id
    cromwell_backend.set_status(wid, "Succeeded")
    cromwell_backend.set_outputs(wid, {"hello.greeting": "hello world"})

    assert cromwell_client.outputs(wid) == {"hello.greeting": "hello world"}
    assert cromwell_client.labels(wid) == {"cromwell-workflow-id": f"cromwell-{wid}", "project": "p1"}
    updated = cromwell_client.patch_labels(wid, {"project": "p2", "owner": "ana"})
    assert updated["project"] == "p2"
    assert cromwell_client.labels(wid)["owner"] == "ana"
    assert cromwell_client.version() == LOCAL_VERSION
    with pytest.raises(CromwellNotFound):
        cromwell_client.outputs(str(uuid.uuid4()))
    with pytest.raises(CromwellNotFound):
        cromwell_client.patch_labels(str(uuid.uuid4()), {"a": "b"})


def test_filtered_metadata(cromwell_backend: InMemoryBackend, cromwell_client: CromwellClient) -> None:
    wid = cromwell_client.submit(submit_request()).id
    cromwell_backend.set_status(wid, "Running")
    for shard in range(3):
        cromwell_backend.add_call(wid, "hello.greet", shard=shard, job_id=f"job-{shard}", status="Done")
    cromwell_backend.add_call(wid, "hello.greet", shard=1, attempt=2, job_id="job-1b", status="Running")

    full = cromwell_client.metadata(wid)
    assert {"id", "status", "workflowName", "submission", "start", "inputs", "calls", "labels"} <= set(full)
    assert len(full["calls"]["hello.greet"]) == 4
    assert full["calls"]["hello.greet"][3]["callRoot"].endswith("call-greet/shard-1/attempt-2")

    small = cromwell_client.metadata(wid, include_keys=["status", "jobId", "shardIndex", "attempt"])
    assert set(small) == {"id", "status", "calls"}
    assert small["calls"]["hello.greet"][3] == {"jobId": "job-1b", "shardIndex": 1, "attempt": 2}

    no_calls = cromwell_client.metadata(wid, exclude_keys=["calls", "submittedFiles", "inputs"])
    assert "calls" not in no_calls
    assert "inputs" not in no_calls
    assert "status" in no_calls

    trimmed = cromwell_client.metadata(wid, exclude_keys=["std", "callRoot"])
    entry = trimmed["calls"]["hello.greet"][0]
    assert "stdout" not in entry
    assert "callRoot" not in entry
    assert entry["jobId"] == "job-0"


def test_expand_subworkflows(cromwell_backend: InMemoryBackend, cromwell_client: CromwellClient) -> None:
    wid = cromwell_client.submit(submit_request()).id
    sub = cromwell_backend.add(name="inner", status="Running", parent_id=wid)
    cromwell_backend.add_call(sub.id, "inner.task", job_id="job-inner")
    cromwell_backend.add_call(wid, "hello.inner", sub_workflow_id=sub.id)

    flat = cromwell_client.metadata(wid)
    assert "subWorkflowMetadata" not in flat["calls"]["hello.inner"][0]

    expanded = cromwell_client.metadata(wid, include_keys=["subWorkflow", "jobId"], expand_subworkflows=True)
    nested = expanded["calls"]["hello.inner"][0]["subWorkflowMetadata"]
    assert nested["id"] == sub.id
    assert nested["calls"]["inner.task"] == [{"jobId": "job-inner", "shardIndex": -1, "attempt": 1}]


def test_failed_jobs(cromwell_backend: InMemoryBackend, cromwell_client: CromwellClient) -> None:
    wid = cromwell_client.submit(submit_request()).id
    cromwell_backend.add_call(wid, "hello.greet", shard=0, status="Done", job_id="ok")
    cromwell_backend.add_call(
        wid, "hello.greet", shard=1, status="Failed", job_id="bad", return_code=137, failures=["OOM"]
    )
    cromwell_backend.fail(wid, "Workflow failed", "Job hello.greet:1:1 exited with return code 137")

    failed = cromwell_client.failed_jobs(wid)

    [entry] = failed["calls"]["hello.greet"]
    assert entry["jobId"] == "bad"
    assert entry["returnCode"] == 137
    assert entry["failures"][0]["message"] == "OOM"
    assert cromwell_client.metadata(wid, include_keys=["failures"])["failures"][0]["causedBy"][0]["message"]


def test_the_failure_metadata_of_the_end_report_names_what_failed_jobs_does(
    cromwell_backend: InMemoryBackend, cromwell_client: CromwellClient
) -> None:
    """One `/metadata` filtered with the end report's FAILURE_KEYS (and sub-workflows expanded)
    carries the workflow's failures and the same failed calls as `/metadata/failed-jobs`."""
    wid = cromwell_client.submit(submit_request()).id
    sub = cromwell_backend.add(name="inner", status="Running", parent_id=wid)
    cromwell_backend.add_call(sub.id, "inner.task", status="Done", job_id="inner-ok", return_code=0)
    cromwell_backend.add_call(
        sub.id, "inner.task", shard=1, status="Failed", job_id="inner-bad", failures=["bad input"]
    )
    cromwell_backend.fail(sub.id, "Workflow failed")
    cromwell_backend.add_call(wid, "hello.inner", status="Failed", sub_workflow_id=sub.id)
    cromwell_backend.add_call(wid, "hello.greet", shard=0, status="Done", job_id="ok", return_code=0)
    cromwell_backend.add_call(
        wid,
        "hello.greet",
        shard=1,
        status="Failed",
        job_id="bad",
        return_code=137,
        failures=["OOM"],
        **{"logConfig:logGroupName": "/aws/batch/job", "logConfig:logStreamName": "cromwell/default/bad"},
    )
    cromwell_backend.fail(wid, "Workflow failed", "Job hello.greet:1:1 exited with return code 137")

    answer = cromwell_client.metadata(wid, include_keys=FAILURE_KEYS, expand_subworkflows=True)
    from_metadata = list(iter_failed_calls(answer))

    assert from_metadata == list(iter_failed_calls(cromwell_client.failed_jobs(wid)))
    assert [(c["call"], c["job_id"], c["workflow_id"]) for c in from_metadata] == [
        ("inner.task", "inner-bad", sub.id),
        ("hello.greet", "bad", wid),
    ]
    bad = from_metadata[1]
    assert (bad["return_code"], bad["messages"], bad["log_stream"]) == (137, ["OOM"], "cromwell/default/bad")
    assert bad["stderr"].endswith("-stderr.log")
    assert failure_messages(answer["failures"]) == [
        "Workflow failed",
        "Job hello.greet:1:1 exited with return code 137",
    ]
    assert set(answer) == {"id", "failures", "calls"}  # filtered: not the whole metadata


def test_abort(cromwell_backend: InMemoryBackend, cromwell_client: CromwellClient) -> None:
    queued = cromwell_client.submit(submit_request()).id
    running = cromwell_client.submit(submit_request()).id
    cromwell_backend.set_status(running, "Running")
    done = cromwell_client.submit(submit_request()).id
    cromwell_backend.set_status(done, "Succeeded")

    assert cromwell_client.abort(queued) == "Aborted"
    assert cromwell_client.abort(running) == "Aborting"
    assert cromwell_client.status(running) == "Aborting"
    with pytest.raises(CromwellNotFound):
        cromwell_client.abort(done)
    with pytest.raises(CromwellNotFound):
        cromwell_client.abort(str(uuid.uuid4()))


def test_query_and_statuses(
    cromwell_server: CromwellTestServer, cromwell_backend: InMemoryBackend, cromwell_client: CromwellClient
) -> None:
    ids = [cromwell_client.submit(submit_request(labels={"batch": "b7"})).id for _ in range(5)]
    other = cromwell_backend.add(name="other", status="Failed", labels={"batch": "b8"}).id
    cromwell_backend.set_status(ids[0], "Running")
    cromwell_backend.add(name="inner", status="Running", parent_id=ids[0])
    unknown = str(uuid.uuid4())

    in_batch = list(cromwell_client.query([("label", "batch:b7")], page_size=2))
    assert sorted(r.id for r in in_batch) == sorted(ids)
    assert cromwell_server.calls("queryPost") == 3
    assert in_batch[0].submission is not None

    running = list(cromwell_client.query([("status", "Running"), ("includeSubworkflows", "false")]))
    assert [r.id for r in running] == [ids[0]]
    with_labels = list(cromwell_client.query([("name", "other"), ("additionalQueryResultFields", "labels")]))
    assert with_labels[0].labels == {"cromwell-workflow-id": f"cromwell-{other}", "batch": "b8"}

    found = cromwell_client.statuses([*ids, other, unknown])
    assert found == {**dict.fromkeys(ids, "Submitted"), ids[0]: "Running", other: "Failed"}

    answer = requests.get(
        f"{cromwell_server.url}/api/workflows/v1/query",
        params=[("id", ids[1]), ("id", ids[2]), ("additionalQueryResultFields", "parentWorkflowId")],
        timeout=5,
    ).json()
    assert answer["totalResultsCount"] == 2
    with pytest.raises(CromwellBadRequest):
        list(cromwell_client.query([("status", "Sleeping")]))


def test_engine_status(cromwell_server: CromwellTestServer) -> None:
    url = f"{cromwell_server.url}/engine/v1/status"
    assert requests.get(url, timeout=5).status_code == 200
    cromwell_server.healthy = False
    assert requests.get(url, timeout=5).status_code == 500


# -- faults ------------------------------------------------------------------------------------


def test_lost_201_then_retry_is_workflow_id_in_use(
    cromwell_server: CromwellTestServer, cromwell_backend: InMemoryBackend, cromwell_sleeps: list[float]
) -> None:
    client = CromwellClient(cromwell_server.url, max_attempts=3, sleep=cromwell_sleeps.append)
    cromwell_server.drop_next_response(operation="submit")
    wid = str(uuid.uuid4())

    with pytest.raises(WorkflowIdInUse):
        client.submit(submit_request(wid))

    assert cromwell_server.calls("submit") == 2
    assert [s.requested_workflow_id for s in cromwell_backend.submissions] == [wid]
    assert len(cromwell_sleeps) == 1
    assert client.status(wid) == "Submitted"


def test_503s_then_success(cromwell_server: CromwellTestServer, cromwell_client: CromwellClient) -> None:
    cromwell_server.fail_next(2, status=503)
    wid = cromwell_client.submit(submit_request()).id
    assert cromwell_server.calls("submit") == 3
    assert len(cromwell_server.backend.submissions) == 1
    assert cromwell_client.status(wid) == "Submitted"


def test_persistent_500_gives_up(
    cromwell_server: CromwellTestServer, cromwell_client: CromwellClient
) -> None:
    cromwell_server.fail_next(10, status=500, operation="engineVersion", message="database down")
    with pytest.raises(CromwellUnavailable, match="database down") as caught:
        cromwell_client.version()
    assert caught.value.http_status == 500
    assert cromwell_server.calls("engineVersion") == 3


def test_slow_answer_times_out_and_is_retried(cromwell_server: CromwellTestServer) -> None:
    sleeps: list[float] = []
    client = CromwellClient(cromwell_server.url, timeout=(1, 0.2), max_attempts=2, sleep=sleeps.append)
    cromwell_server.delay_next(1, 1.0, operation="engineVersion")
    assert client.version() == LOCAL_VERSION
    assert len(sleeps) == 1

    cromwell_server.delay_next(2, 1.0, operation="engineVersion")
    with pytest.raises(CromwellUnavailable, match="Timeout"):
        client.version()


def test_stopped_server_refuses_then_serves_again(
    cromwell_server: CromwellTestServer, cromwell_client: CromwellClient
) -> None:
    url = cromwell_server.url
    cromwell_server.stop()
    with pytest.raises(CromwellUnavailable, match="ConnectionError"):
        cromwell_client.version()
    cromwell_server.start()
    assert cromwell_server.url == url
    assert cromwell_client.version() == LOCAL_VERSION
