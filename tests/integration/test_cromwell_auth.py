"""A Cromwell behind a proxy that asks for credentials: basic auth, a bearer token, a named header.

The local Cromwell-compatible API requires each kind in turn (`local.cromwell_api.auth`); the
credential is a Secrets Manager secret in moto, read by the client the functions share. Submit,
the monitor, the reconciler and the callback work with it; a wrong or missing credential is read
again once, then refused with a typed error that nothing retries: submit refuses the run with a
receipt that names the secret (and the REJECTED notification), the monitor records its events and
leaves the end to the reconciler, the reconciler stops its sweep and says so, the callback ends
its run from its own body, and every refusal is counted as `CromwellAuthFailed`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from courier.cromwell import CallOutcome, CromwellClient
from courier.cromwell_auth import SecretCredentials
from courier.errors import CromwellAuthError
from courier.ledger import RunLedger, RunRecord
from courier.ledger._codec import from_item
from courier.secrets import SecretReader
from local.cromwell_api import CromwellTestServer
from local.cromwell_api.auth import RequiredAuth
from monitor import batch_events, callback, schedule
from monitor.composition import compose_batch_events, compose_callback, compose_reconciler
from monitor.settings import CallbackSettings, MonitorSettings, ReconcilerSettings
from submit.composition import compose
from tests.support.monitor_fixtures import (
    CALLBACK_TOKEN,
    Ctx,
    FakeTags,
    Job,
    function_url_request,
    lifecycle,
    sqs_batch,
)
from tests.support.submit_fixtures import REGION, TABLE, SubmitWorld, make_world

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:No application metrics:UserWarning"),
]

KINDS = {
    "basic": RequiredAuth.basic("courier", "pa55-basic-SECRET"),
    "bearer": RequiredAuth.bearer("eyJ-bearer-SECRET-token"),
    "header": RequiredAuth.header("x-api-key", "key-header-SECRET-0123"),
}


class Calls:
    """The client's `on_call` hook: what it heard."""

    def __init__(self) -> None:
        self.outcomes: list[CallOutcome] = []

    def __call__(self, outcome: CallOutcome) -> None:
        self.outcomes.append(outcome)

    @property
    def auth_failures(self) -> int:
        return sum(isinstance(o.error, CromwellAuthError) for o in self.outcomes)


class Proxy:
    """The local API behind a credential check, and the secret Courier reads it from."""

    def __init__(self, required: RequiredAuth, secrets: Any) -> None:
        self.server = CromwellTestServer(auth=required).start()
        self.secrets = secrets
        self.arn = secrets.create_secret(
            Name="courier/cromwell-credentials", SecretString=required.secret_json()
        )["ARN"]
        self.reader = SecretReader(secrets_client=secrets)
        self.calls = Calls()
        self.sleeps: list[float] = []

    @property
    def refused(self) -> int:
        assert self.server.auth is not None
        return self.server.auth.refused

    def client(self, *, secret: str | None = None) -> CromwellClient:
        """The functions' client: credentials from the secret (`secret=""`: none configured)."""
        reference = self.arn if secret is None else secret
        return CromwellClient(
            self.server.url,
            credentials=SecretCredentials(self.reader, reference) if reference else None,
            on_call=self.calls,
            max_attempts=3,
            sleep=self.sleeps.append,
            timeout=(1, 5),
        )

    def store(self, required: RequiredAuth) -> None:
        self.secrets.put_secret_value(SecretId=self.arn, SecretString=required.secret_json())


@pytest.fixture(params=sorted(KINDS))
def proxy(request: pytest.FixtureRequest, aws: tuple[Any, Any]) -> Iterator[Proxy]:
    secrets = boto3.client("secretsmanager", region_name=REGION)
    proxied = Proxy(KINDS[request.param], secrets)
    try:
        yield proxied
    finally:
        proxied.server.stop()


def wrong(required: RequiredAuth) -> RequiredAuth:
    return (
        RequiredAuth(required.kind, required.first, required.second + "-old")
        if required.second
        else (RequiredAuth(required.kind, required.first + "-old"))
    )


def refusing(proxy: Proxy) -> None:
    """The secret holds a credential the proxy no longer accepts."""
    assert proxy.server.auth is not None
    proxy.store(wrong(proxy.server.auth.required))


# -- the client ----------------------------------------------------------------------------------


def test_each_kind_of_credential_is_sent_and_accepted(proxy: Proxy) -> None:
    client = proxy.client()
    wid = proxy.server.backend.add(name="wf", status="Running").id
    assert client.status(wid) == "Running"
    assert client.version()
    assert proxy.refused == 0
    assert proxy.calls.auth_failures == 0


def test_a_rotated_credential_is_read_again_once_and_the_call_succeeds(proxy: Proxy) -> None:
    client = proxy.client()
    wid = proxy.server.backend.add(name="wf", status="Running").id
    assert client.status(wid) == "Running"  # the credential is read and kept
    assert proxy.server.auth is not None
    rotated = wrong(proxy.server.auth.required)
    proxy.server.auth.rotate(rotated)
    proxy.store(rotated)

    assert client.status(wid) == "Running"
    assert proxy.refused == 1  # the kept credential, once; then the fresh one
    assert proxy.sleeps == []
    assert client.status(wid) == "Running"
    assert proxy.refused == 1  # the fresh one is kept


def test_a_wrong_credential_is_refused_after_one_fresh_read_and_not_retried(proxy: Proxy) -> None:
    refusing(proxy)
    client = proxy.client()
    with pytest.raises(CromwellAuthError) as caught:
        client.status(proxy.server.backend.add(name="wf").id)
    assert proxy.refused == 2  # the credential, and the same one read again
    assert proxy.sleeps == []
    assert caught.value.secret == proxy.arn
    assert f"check the secret {proxy.arn}" in caught.value.message
    assert caught.value.http_status in (401, 403)
    assert proxy.calls.auth_failures == 1


def test_no_credential_configured_is_refused_at_once_with_the_parameter_to_set(proxy: Proxy) -> None:
    with pytest.raises(CromwellAuthError, match="CromwellAuthSecretArn"):
        proxy.client(secret="").version()
    assert proxy.refused == 1


def test_a_secret_that_is_not_a_credential_names_itself_and_sends_nothing(proxy: Proxy) -> None:
    proxy.secrets.put_secret_value(SecretId=proxy.arn, SecretString=json.dumps({"type": "digest"}))
    with pytest.raises(CromwellAuthError, match="is not a Cromwell credential"):
        proxy.client().version()
    assert proxy.refused == 0
    assert proxy.server.auth is not None
    assert proxy.server.auth.accepted == 0


# -- submit --------------------------------------------------------------------------------------


def submit_world(aws: tuple[Any, Any], proxy: Proxy) -> SubmitWorld:
    return make_world(aws, proxy.server)


def drop(world: SubmitWorld, folder: str) -> dict[str, Any]:
    world.put(f"{folder}/hello.wdl", "version 1.0\nworkflow hello { output { String s = 'hi' } }\n")
    return world.put(f"{folder}/inputs.json", "{}")


def test_submit_through_the_proxy(aws: tuple[Any, Any], proxy: Proxy) -> None:
    world = submit_world(aws, proxy)
    event = drop(world, "runs/proxied")
    service = compose(
        world.settings(), s3=world.s3, dynamodb=world.dynamodb, cromwell=proxy.client(), callback_uri=None
    )
    answer = world.invoke(event, service)
    assert answer["status"] == "Submitted"
    assert proxy.server.backend.submissions
    assert world.receipt("runs/proxied/inputs.json")["status"] == "Submitted"


def test_submit_refused_credentials_give_a_receipt_a_notification_and_no_retry(
    aws: tuple[Any, Any], proxy: Proxy
) -> None:
    refusing(proxy)
    world = submit_world(aws, proxy)
    event = drop(world, "runs/refused")
    service = compose(
        world.settings(), s3=world.s3, dynamodb=world.dynamodb, cromwell=proxy.client(), callback_uri=None
    )
    answer = world.invoke(event, service)  # returns: nothing for Lambda to retry, nothing parked

    assert answer["status"] == "Rejected"
    receipt = world.receipt("runs/refused/inputs.json")
    assert receipt["status"] == "Rejected"
    assert any(
        f"Cromwell refused Courier's credentials: check the secret {proxy.arn}" in r
        for r in receipt["reasons"]
    )
    assert not proxy.server.backend.submissions
    assert proxy.refused == 2
    assert proxy.sleeps == []
    events = [i for i in world.ledger_items() if str(i["sk"]).startswith("EVENT#")]
    assert [e["kind"] for e in events] == ["REJECTED"], "the REJECTED outbox event notifies the user"
    assert proxy.calls.auth_failures == 1


# -- the monitor: reconciler and callback ---------------------------------------------------------


def _record(ddb: Any, workflow_id: str) -> None:
    RunLedger(TABLE, ddb).record_submitted(
        RunRecord(workflow_id, "wf", "bucket", f"runs/{workflow_id}/inputs.json", f"runs/{workflow_id}")
    )


def _run(ddb: Any, workflow_id: str) -> dict[str, Any]:
    item = ddb.get_item(TableName=TABLE, Key={"pk": {"S": f"RUN#{workflow_id}"}, "sk": {"S": "RUN"}})["Item"]
    return from_item(item)


def _reconcile(ddb: Any, proxy: Proxy, *, minutes: int = 20) -> dict[str, Any]:
    """The reconciler's pass `minutes` from now: past AskPolicy.idle_after, so a run recorded now
    and silent since is asked about (and past any end check a task end asked for)."""
    settings = ReconcilerSettings.model_validate(
        {"LEDGER_TABLE": TABLE, "CROMWELL_URL": proxy.server.url, "CROMWELL_AUTH_SECRET": proxy.arn}
    )
    later = datetime.now(UTC) + timedelta(minutes=minutes)
    service = compose_reconciler(settings, dynamodb=ddb, cromwell=proxy.client(), clock=lambda: later)
    answer: dict[str, Any] = schedule.lambda_handler({"id": "tick"}, Ctx(), service=service)
    return answer


def test_the_reconciler_ends_a_run_through_the_proxy(aws: tuple[Any, Any], proxy: Proxy) -> None:
    ddb = aws[1]
    wid = proxy.server.backend.add(name="wf", status="Succeeded").id
    _record(ddb, wid)
    report = _reconcile(ddb, proxy)
    assert report["ended"] == 1
    assert _run(ddb, wid)["status"] == "Succeeded"
    assert proxy.refused == 0


def _refused_run(ddb: Any, proxy: Proxy, status: str) -> str:
    """A recorded run that ended in Cromwell as `status`, and a secret the proxy now refuses."""
    refusing(proxy)
    wid = proxy.server.backend.add(name="wf", status=status).id
    _record(ddb, wid)
    return wid


def test_the_reconciler_stops_at_refused_credentials_and_says_which_secret(
    aws: tuple[Any, Any], proxy: Proxy
) -> None:
    ddb = aws[1]
    wid = _refused_run(ddb, proxy, "Succeeded")
    report = _reconcile(ddb, proxy)  # returns: a scheduled invocation is not retried by Lambda
    assert report["secret"] == proxy.arn
    assert "check the secret" in report["error"]
    assert _run(ddb, wid)["status"] == "Submitted"
    assert proxy.refused == 2
    assert proxy.calls.auth_failures == 1


def _callback(ddb: Any, proxy: Proxy, workflow_id: str, state: str) -> dict[str, Any]:
    settings = CallbackSettings.model_validate(
        {
            "LEDGER_TABLE": TABLE,
            "CROMWELL_URL": proxy.server.url,
            "CALLBACK_TOKEN_SECRET": "arn:x",
            "CROMWELL_AUTH_SECRET": proxy.arn,
        }
    )
    service = compose_callback(settings, dynamodb=ddb, cromwell=proxy.client(), token=lambda: CALLBACK_TOKEN)
    body = {"workflowId": workflow_id, "state": state, "outputs": {}, "failures": []}
    request = function_url_request(body, token=CALLBACK_TOKEN)
    answer: dict[str, Any] = callback.lambda_handler(request, Ctx(), service=service)
    return answer


def test_the_callback_reads_the_failure_report_through_the_proxy(aws: tuple[Any, Any], proxy: Proxy) -> None:
    ddb = aws[1]
    wid = proxy.server.backend.add(name="wf", status="Failed").id
    _record(ddb, wid)
    answer = _callback(ddb, proxy, wid, "Failed")
    assert answer["statusCode"] == 200
    run = _run(ddb, wid)
    assert run["status"] == "Failed"
    assert "report_problems" not in run
    assert proxy.refused == 0
    assert proxy.server.auth is not None
    assert proxy.server.auth.accepted >= 1, "the failure report was asked of Cromwell"


def test_the_callback_still_ends_the_run_when_the_credentials_are_refused(
    aws: tuple[Any, Any], proxy: Proxy
) -> None:
    ddb = aws[1]
    wid = _refused_run(ddb, proxy, "Failed")
    answer = _callback(ddb, proxy, wid, "Failed")
    assert answer["statusCode"] == 200, "the callback's own body is enough to end the run"
    run = _run(ddb, wid)
    assert run["status"] == "Failed"
    assert any("Cromwell refused" in problem for problem in run["report_problems"])
    assert proxy.calls.auth_failures >= 1
    assert all(o.tries == 2 for o in proxy.calls.outcomes if o.error is not None)


@pytest.mark.parametrize("refused", [False, True])
def test_the_last_task_asks_for_an_end_check_that_the_reconciler_makes_through_the_proxy(
    aws: tuple[Any, Any], proxy: Proxy, refused: bool
) -> None:
    ddb = aws[1]
    wid = proxy.server.backend.add(name="wf", status="Succeeded").id
    _record(ddb, wid)
    if refused:
        refusing(proxy)
    settings = MonitorSettings.model_validate({"LEDGER_TABLE": TABLE})
    service = compose_batch_events(settings, dynamodb=ddb, tags=FakeTags())

    answer = batch_events.lambda_handler(sqs_batch(lifecycle(Job("wf.say", wid))), Ctx(), service=service)

    assert answer["batchItemFailures"] == [], "the task events are recorded either way"
    run = _run(ddb, wid)
    assert run["tasks_SUCCEEDED"] == 1
    assert "end_check_at" in run, "the last task end asks for an end check"
    assert proxy.calls.outcomes == [], "and the monitor itself asks Cromwell nothing"
    report = _reconcile(ddb, proxy, minutes=2)  # the end check is due a minute after the task end
    run = _run(ddb, wid)
    if refused:
        assert report["secret"] == proxy.arn
        assert run["status"] != "Succeeded", "a later pass ends it once the credential is fixed"
        assert proxy.calls.auth_failures == 1
        assert proxy.refused == 2
    else:
        assert report["ended"] == 1
        assert (run["status"], run["ended_by"]) == ("Succeeded", "end-check")
        assert proxy.refused == 0
