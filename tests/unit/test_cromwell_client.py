"""CromwellClient against a scripted `requests` transport and against the local test server."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests

from courier.cromwell import CromwellClient, QueryResult, SubmitRequest, redact_url
from courier.errors import (
    CromwellAuthError,
    CromwellBadRequest,
    CromwellError,
    CromwellNotFound,
    CromwellUnavailable,
    WorkflowIdInUse,
)
from local.cromwell_api import CromwellTestServer, InMemoryBackend
from tests.support.cromwell_helpers import submit_request

pytest_plugins = ["tests.support.cromwell_fixtures"]

BASE = "https://cromwell.internal:8000"
WID = "6c1a7a4e-9a53-4f1e-8a6b-2f7c1e0b9d11"

Reply = requests.Response | Exception


def reply(status: int, body: Any = None, *, text: str | None = None, reason: str = "") -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.reason = reason
    if text is not None:
        response._content = text.encode()
        response.headers["Content-Type"] = "text/html"
    else:
        response._content = json.dumps(body).encode()
        response.headers["Content-Type"] = "application/json"
    return response


class ScriptedSession(requests.Session):
    """Answers each request with the next scripted reply (or raises it), and records the call."""

    def __init__(self, *replies: Reply | Callable[[dict[str, Any]], Reply]) -> None:
        super().__init__()
        self.replies = list(replies)
        self.calls: list[dict[str, Any]] = []

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        call = {"method": method, "url": url, **kwargs}
        self.calls.append(call)
        if not self.replies:
            raise AssertionError(f"unexpected request {method} {url}")
        item = self.replies.pop(0)
        if callable(item) and not isinstance(item, requests.Response | Exception):
            item = item(call)
        if isinstance(item, Exception):
            raise item
        item.url = url
        return item


def client(session: requests.Session, sleeps: list[float] | None = None, **kwargs: Any) -> CromwellClient:
    recorded = sleeps if sleeps is not None else []
    return CromwellClient(BASE, session=session, sleep=recorded.append, **kwargs)


# -- submit ------------------------------------------------------------------------------------


def test_submit_sends_cromwells_part_names_and_parses_201() -> None:
    session = ScriptedSession(reply(201, {"id": WID, "status": "Submitted"}))
    request = SubmitRequest(
        workflow_source="version 1.0\nworkflow w {}\n",
        workflow_inputs='{"w.x": 1}',
        requested_workflow_id=WID,
        workflow_dependencies=b"PK\x05\x06" + b"\x00" * 18,
        workflow_options='{"read_from_cache": false}',
        labels='{"run": "r1"}',
        workflow_type_version="1.0",
    )

    result = client(session).submit(request)

    assert result.id == WID
    assert result.status == "Submitted"
    call = session.calls[0]
    assert call["method"] == "POST"
    assert call["url"] == f"{BASE}/api/workflows/v1"
    parts = dict(call["files"])
    assert set(parts) == {
        "workflowSource",
        "workflowInputs",
        "workflowOptions",
        "workflowType",
        "workflowTypeVersion",
        "labels",
        "workflowDependencies",
        "workflowOnHold",
        "requestedWorkflowId",
    }
    assert parts["requestedWorkflowId"][1] == WID
    assert parts["workflowType"][1] == "WDL"
    assert parts["workflowOnHold"][1] == "false"
    assert parts["workflowDependencies"][1].startswith(b"PK")


def test_submit_leaves_out_optional_parts_that_are_none() -> None:
    session = ScriptedSession(reply(201, {"id": WID, "status": "On Hold"}))
    request = SubmitRequest(
        workflow_source="w", workflow_inputs="{}", requested_workflow_id=WID, on_hold=True
    )

    assert client(session).submit(request).status == "On Hold"

    parts = dict(session.calls[0]["files"])
    assert set(parts) == {
        "workflowSource",
        "workflowInputs",
        "workflowType",
        "workflowOnHold",
        "requestedWorkflowId",
    }
    assert parts["workflowOnHold"][1] == "true"


def test_submit_request_repr_hides_bulky_and_private_parts() -> None:
    request = SubmitRequest(
        workflow_source="SOURCE-TEXT", workflow_inputs='{"secret": "x"}', requested_workflow_id=WID
    )
    assert "SOURCE-TEXT" not in repr(request)
    assert "secret" not in repr(request)
    assert WID in repr(request)


def test_parts_decode_on_the_test_server(cromwell_server: CromwellTestServer) -> None:
    wid = str(uuid.uuid4())
    api = CromwellClient(cromwell_server.url, sleep=lambda _: None)

    api.submit(submit_request(wid, labels={"run": "r1"}, workflow_options='{"x": 1}'))

    [submission] = cromwell_server.backend.submissions
    assert submission.requested_workflow_id == wid
    assert submission.inputs == {"hello.who": "world"}
    assert submission.labels == {"run": "r1"}
    assert submission.options == {"x": 1}
    assert submission.workflow_name == "hello"
    [logged] = [r for r in cromwell_server.requests if r.operation == "submit"]
    expected = ["workflowSource", "workflowInputs", "workflowOptions", "workflowType", "workflowTypeVersion"]
    expected += ["labels", "workflowOnHold", "requestedWorkflowId"]
    assert sorted(logged.parts) == sorted(expected)


# -- retries -----------------------------------------------------------------------------------


def test_503_then_success_retries_with_backoff() -> None:
    sleeps: list[float] = []
    session = ScriptedSession(
        reply(503, {"status": "error", "message": "busy"}),
        reply(502, text="<html>bad gateway</html>"),
        reply(200, {"id": WID, "status": "Running"}),
    )

    assert client(session, sleeps, rand=lambda: 1.0).status(WID) == "Running"

    assert len(session.calls) == 3
    assert sleeps == [0.5, 1.0]


def test_backoff_is_full_jitter_under_an_exponential_cap() -> None:
    sleeps: list[float] = []
    session = ScriptedSession(*[reply(500, {"status": "error", "message": "boom"})] * 6)
    api = client(session, sleeps, max_attempts=6, backoff_base=0.5, backoff_max=2.0, rand=lambda: 0.5)

    with pytest.raises(CromwellUnavailable):
        api.version()

    assert sleeps == [0.25, 0.5, 1.0, 1.0, 1.0]
    random_client = CromwellClient(BASE, backoff_base=0.5, backoff_max=8.0)
    for attempt in range(1, 10):
        cap = min(8.0, 0.5 * 2 ** (attempt - 1))
        assert all(0 <= random_client.backoff(attempt) <= cap for _ in range(50))


def test_5xx_every_time_raises_unavailable_with_context() -> None:
    sleeps: list[float] = []
    session = ScriptedSession(*[reply(503, {"status": "error", "message": "shutting down"})] * 4)

    with pytest.raises(CromwellUnavailable) as caught:
        client(session, sleeps).status(WID)

    assert len(session.calls) == 4
    assert len(sleeps) == 3
    error = caught.value
    assert error.http_status == 503
    assert error.url == f"{BASE}/api/workflows/v1/{WID}/status"
    assert "shutting down" in str(error)
    assert "4 attempts" in str(error)


@pytest.mark.parametrize(
    "failure",
    [requests.ConnectionError("refused"), requests.ConnectTimeout("slow"), requests.ReadTimeout("slow")],
)
def test_connection_errors_and_timeouts_are_retried(failure: Exception) -> None:
    session = ScriptedSession(failure, failure, reply(200, {"cromwell": "92"}))

    assert client(session).version() == "92"
    assert len(session.calls) == 3


def test_connection_refused_to_a_closed_port_raises_unavailable_after_max_attempts(
    cromwell_server: CromwellTestServer,
) -> None:
    sleeps: list[float] = []
    api = CromwellClient(cromwell_server.url, max_attempts=3, sleep=sleeps.append)
    cromwell_server.stop()

    with pytest.raises(CromwellUnavailable) as caught:
        api.version()

    assert len(sleeps) == 2
    assert caught.value.http_status is None
    assert caught.value.url == f"{cromwell_server.url}/engine/v1/version"


def test_429_is_retried() -> None:
    session = ScriptedSession(
        reply(429, {"status": "fail", "message": "slow down"}), reply(200, {"cromwell": "92"})
    )
    assert client(session).version() == "92"
    assert len(session.calls) == 2


@pytest.mark.parametrize(
    ("status", "kind"),
    [(400, CromwellBadRequest), (404, CromwellNotFound), (403, CromwellError), (401, CromwellAuthError)],
)
def test_4xx_is_never_retried(status: int, kind: type[CromwellError]) -> None:
    sleeps: list[float] = []
    session = ScriptedSession(reply(status, {"status": "fail", "message": "no"}))

    with pytest.raises(kind) as caught:
        client(session, sleeps).status(WID)

    assert type(caught.value) is kind
    assert caught.value.http_status == status
    assert len(session.calls) == 1
    assert sleeps == []


def test_tls_failure_is_not_retried() -> None:
    session = ScriptedSession(requests.exceptions.SSLError("certificate verify failed"))
    with pytest.raises(CromwellUnavailable, match="TLS"):
        client(session).version()
    assert len(session.calls) == 1


# -- errors ------------------------------------------------------------------------------------


def test_already_in_use_raises_workflow_id_in_use() -> None:
    message = f"Requested workflow IDs are already in use: {WID}"
    session = ScriptedSession(reply(400, {"status": "fail", "message": message}))

    with pytest.raises(WorkflowIdInUse) as caught:
        client(session).submit(SubmitRequest("w", "{}", WID))

    assert isinstance(caught.value, CromwellBadRequest)
    assert caught.value.cromwell_status == "fail"
    assert WID in caught.value.message


def test_in_use_marker_in_errors_list_is_recognised() -> None:
    body = {
        "status": "fail",
        "message": "Error(s)",
        "errors": [f"Requested workflow IDs are already in use: {WID}"],
    }
    with pytest.raises(WorkflowIdInUse):
        client(ScriptedSession(reply(400, body))).submit(SubmitRequest("w", "{}", WID))


def test_json_error_body_is_parsed() -> None:
    body = {"status": "fail", "message": "Invalid workflow", "errors": ["line 3: bad", "line 9: worse"]}

    with pytest.raises(CromwellBadRequest) as caught:
        client(ScriptedSession(reply(400, body))).submit(SubmitRequest("w", "{}", WID))

    error = caught.value
    assert error.message == "Invalid workflow"
    assert error.errors == ["line 3: bad", "line 9: worse"]
    assert error.cromwell_status == "fail"
    assert "line 9: worse" in str(error)
    assert not isinstance(error, WorkflowIdInUse)


def test_non_json_error_body_is_kept_as_text() -> None:
    with pytest.raises(CromwellNotFound) as caught:
        client(ScriptedSession(reply(404, text="<html>Not here</html>"))).outputs(WID)
    assert "Not here" in caught.value.message
    assert caught.value.errors == []


def test_empty_error_body_falls_back_to_the_reason() -> None:
    with pytest.raises(CromwellBadRequest, match="Bad Request"):
        client(ScriptedSession(reply(400, text="", reason="Bad Request"))).status(WID)


def test_success_with_a_body_that_is_not_json_is_an_error() -> None:
    with pytest.raises(CromwellError, match="not JSON"):
        client(ScriptedSession(reply(200, text="<html/>"))).status(WID)


def test_urls_in_errors_and_repr_carry_no_credentials() -> None:
    api = CromwellClient(
        "https://user:s3cret@cromwell.internal:8000", session=ScriptedSession(reply(404, {"message": "x"}))
    )
    with pytest.raises(CromwellNotFound) as caught:
        api.status(WID)
    assert "s3cret" not in str(caught.value.url)
    assert "s3cret" not in repr(api)
    assert redact_url("https://a:b@h:1/p?token=t") == "https://h:1/p"


# -- transport settings ------------------------------------------------------------------------


def test_tls_verification_is_on_by_default_and_timeouts_are_sent() -> None:
    session = ScriptedSession(reply(200, {"cromwell": "92"}))
    client(session).version()
    assert session.calls[0]["verify"] is True
    assert session.calls[0]["timeout"] == (5, 30)


def test_ca_bundle_path_is_passed_through() -> None:
    session = ScriptedSession(reply(200, {"cromwell": "92"}))
    client(session, verify="/tmp/cromwell-ca.pem", timeout=(1.0, 2.0)).version()
    assert session.calls[0]["verify"] == "/tmp/cromwell-ca.pem"
    assert session.calls[0]["timeout"] == (1.0, 2.0)


def test_metadata_sends_filters_as_repeated_query_parameters() -> None:
    session = ScriptedSession(reply(200, {"id": WID}))
    client(session).metadata(WID, ["status", "calls"], ["inputs"], expand_subworkflows=True)
    assert session.calls[0]["params"] == [
        ("includeKey", "status"),
        ("includeKey", "calls"),
        ("excludeKey", "inputs"),
        ("expandSubWorkflows", "true"),
    ]


# -- query -------------------------------------------------------------------------------------


def _rows(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"id": str(uuid.UUID(int=i)), "status": "Running", "name": "wf"} for i in range(start, start + n)]


def test_query_follows_pages_until_total_count() -> None:
    session = ScriptedSession(
        reply(200, {"results": _rows(2), "totalResultsCount": 5}),
        reply(200, {"results": _rows(2, 2), "totalResultsCount": 5}),
        reply(200, {"results": _rows(1, 4), "totalResultsCount": 5}),
    )

    results = list(client(session).query([("status", "Running"), ("label", "run:r1")], page_size=2))

    assert [r.id for r in results] == [str(uuid.UUID(int=i)) for i in range(5)]
    assert all(isinstance(r, QueryResult) for r in results)
    bodies = [call["json"] for call in session.calls]
    assert all(
        call["method"] == "POST" and call["url"].endswith("/api/workflows/v1/query") for call in session.calls
    )
    assert bodies[0] == [{"status": "Running"}, {"label": "run:r1"}, {"page": "1"}, {"pageSize": "2"}]
    assert [b[-2] for b in bodies] == [{"page": "1"}, {"page": "2"}, {"page": "3"}]


def test_query_stops_on_an_empty_page() -> None:
    session = ScriptedSession(reply(200, {"results": [], "totalResultsCount": 9}))
    assert list(client(session).query([("status", "Running")])) == []
    assert len(session.calls) == 1


def test_statuses_asks_in_chunks_of_100_ids() -> None:
    ids = [str(uuid.UUID(int=i)) for i in range(250)]

    def answer(call: dict[str, Any]) -> requests.Response:
        asked = [item["id"] for item in call["json"] if "id" in item]
        rows = [{"id": i, "status": "Succeeded"} for i in asked if i != ids[7]]
        return reply(200, {"results": rows, "totalResultsCount": len(rows)})

    session = ScriptedSession(answer, answer, answer)

    found = client(session).statuses([*ids, ids[0]])

    assert len(session.calls) == 3
    sizes = [sum(1 for item in call["json"] if "id" in item) for call in session.calls]
    assert sizes == [100, 100, 50]
    assert len(found) == 249
    assert ids[7] not in found
    assert found[ids[200]] == "Succeeded"


def test_statuses_of_nothing_makes_no_call() -> None:
    assert client(ScriptedSession()).statuses([]) == {}


def test_query_round_trip_on_the_test_server(
    cromwell_server: CromwellTestServer, cromwell_backend: InMemoryBackend
) -> None:
    for i in range(7):
        cromwell_backend.add(name="wf", status="Running" if i % 2 else "Succeeded", labels={"batch": "b1"})
    api = CromwellClient(cromwell_server.url, sleep=lambda _: None)

    running = list(api.query([("status", "Running"), ("label", "batch:b1")], page_size=2))

    assert len(running) == 3
    assert {r.status for r in running} == {"Running"}
    assert cromwell_server.calls("queryPost") == 2
