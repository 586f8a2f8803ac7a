"""Cromwell credentials: the secret's three shapes, headers sent, a value never shown, a refusal
told apart from Cromwell's own 403, and the call metrics the shared client reports."""

from __future__ import annotations

import base64
import json
import pickle
from typing import Any

import pytest
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

from courier.cromwell import CallOutcome
from courier.cromwell_auth import CromwellCredential, StaticCredentials, parse_credential
from courier.errors import (
    CromwellAuthError,
    CromwellBadRequest,
    CromwellError,
    CromwellNotFound,
    CromwellUnavailable,
)
from courier.observability import count_cromwell_call, metrics
from tests.unit.test_cromwell_client import WID, ScriptedSession, client, reply

SECRET = "pa55-VERY-secret"


@pytest.mark.parametrize(
    ("secret", "headers"),
    [
        (
            {"type": "basic", "username": "courier", "password": SECRET},
            {"Authorization": "Basic " + base64.b64encode(f"courier:{SECRET}".encode()).decode()},
        ),
        ({"type": "bearer", "token": SECRET}, {"Authorization": f"Bearer {SECRET}"}),
        ({"type": "header", "name": "x-api-key", "value": SECRET}, {"x-api-key": SECRET}),
    ],
)
def test_each_shape_gives_its_headers_and_never_shows_the_value(
    secret: dict[str, str], headers: dict[str, str]
) -> None:
    credential = parse_credential(json.dumps(secret))
    assert credential.headers() == headers
    assert credential.kind == secret["type"]
    for shown in (repr(credential), str(credential), f"{credential}", repr([credential])):
        assert SECRET not in shown
        assert headers[next(iter(headers))] not in shown
    with pytest.raises(TypeError):
        pickle.dumps(credential)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("not json", "not JSON"),
        ("[1]", "not a JSON object"),
        ('{"type": "digest"}', "'type' must be one of"),
        ('{"type": "basic", "username": "u"}', "basic: 'password'"),
        ('{"type": "bearer", "token": ""}', "bearer: 'token'"),
        ('{"type": "header", "name": "Host", "value": "v"}', "header name"),
        ('{"type": "header", "name": "bad name", "value": "v"}', "header name"),
        ('{"type": "bearer", "token": "a\\r\\nX-Evil: 1"}', "line breaks"),
        ('{"type": "basic", "username": "a:b", "password": "p"}', "may not contain ':'"),
    ],
)
def test_a_malformed_secret_says_which_field_and_never_its_value(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as caught:
        parse_credential(text)
    assert "X-Evil" not in str(caught.value)


def test_a_refusal_reads_the_credential_again_once_then_raises() -> None:
    class Rotating(StaticCredentials):
        def __init__(self) -> None:
            super().__init__(CromwellCredential.bearer("old"), name="courier/cromwell")
            self.refreshed = 0

        def refresh(self) -> CromwellCredential:
            self.refreshed += 1
            return CromwellCredential.bearer("new")

    source = Rotating()
    session = ScriptedSession(reply(401, text="<html>401</html>"), reply(200, {"status": "Running"}))
    assert client(session, credentials=source).status(WID) == "Running"
    assert [call["headers"] for call in session.calls] == [
        {"Authorization": "Bearer old"},
        {"Authorization": "Bearer new"},
    ]
    session = ScriptedSession(reply(401, text="no"), reply(401, text="no"))
    sleeps: list[float] = []
    with pytest.raises(CromwellAuthError, match="check the secret courier/cromwell") as caught:
        client(session, sleeps, credentials=source).status(WID)
    assert source.refreshed == 2
    assert sleeps == []
    assert caught.value.secret == "courier/cromwell"


def test_cromwells_own_403_is_not_a_refused_credential() -> None:
    """Cromwell answers 403 "workflow in terminal status" with its error body: no re-read."""
    source = StaticCredentials(CromwellCredential.bearer("tok"), name="s")
    session = ScriptedSession(reply(403, {"status": "error", "message": "Couldn't abort: terminal"}))
    with pytest.raises(CromwellError) as caught:
        client(session, credentials=source).abort(WID)
    assert type(caught.value) is CromwellError
    assert len(session.calls) == 1
    proxy = ScriptedSession(reply(403, {"message": "Forbidden"}), reply(403, {"message": "Forbidden"}))
    with pytest.raises(CromwellAuthError):
        client(proxy, credentials=source).abort(WID)
    assert len(proxy.calls) == 2


def test_without_credentials_no_header_is_sent() -> None:
    session = ScriptedSession(reply(200, {"cromwell": "92"}))
    assert client(session).version() == "92"
    assert session.calls[0]["headers"] is None


def test_the_ca_bundle_may_be_given_per_request() -> None:
    bundles = iter(["/tmp/a.pem", "/tmp/b.pem"])
    session = ScriptedSession(reply(200, {"cromwell": "92"}), reply(200, {"cromwell": "92"}))
    api = client(session, verify=lambda: next(bundles))
    api.version()
    api.version()
    assert [call["verify"] for call in session.calls] == ["/tmp/a.pem", "/tmp/b.pem"]


def test_every_call_is_heard_once_with_its_tries_and_error() -> None:
    heard: list[CallOutcome] = []
    session = ScriptedSession(
        reply(503, {"status": "error", "message": "busy"}),
        reply(200, {"status": "Running"}),
        reply(404, {"status": "fail", "message": "unknown"}),
    )
    api = client(session, on_call=heard.append)
    api.status(WID)
    with pytest.raises(CromwellNotFound):
        api.status(WID)
    assert [(o.operation, o.tries, type(o.error).__name__) for o in heard] == [
        ("GET status", 2, "NoneType"),
        ("GET status", 1, "CromwellNotFound"),
    ]


def _emitted(outcome: CallOutcome) -> dict[str, Any]:
    provider: AmazonCloudWatchEMFProvider = metrics.provider  # type: ignore[assignment]
    provider.clear_metrics()
    count_cromwell_call(outcome)
    emitted = {name: sum(value["Value"]) for name, value in provider.metric_set.items()}
    provider.clear_metrics()
    return emitted


@pytest.mark.parametrize(
    ("error", "tries", "expected"),
    [
        (None, 1, {"CromwellCalls": 1}),
        (None, 3, {"CromwellCalls": 1, "CromwellRetries": 2}),
        (CromwellNotFound("x", http_status=404), 1, {"CromwellCalls": 1}),
        (CromwellBadRequest("x", http_status=400), 1, {"CromwellCalls": 1}),
        (
            CromwellUnavailable("x"),
            4,
            {"CromwellCalls": 1, "CromwellRetries": 3, "CromwellCallFailures": 1, "CromwellUnavailable": 1},
        ),
        (
            CromwellAuthError("x", http_status=401),
            2,
            {"CromwellCalls": 1, "CromwellRetries": 1, "CromwellCallFailures": 1, "CromwellAuthFailed": 1},
        ),
    ],
)
def test_call_metrics(error: CromwellError | None, tries: int, expected: dict[str, int]) -> None:
    assert _emitted(CallOutcome("GET status", tries, error)) == expected
