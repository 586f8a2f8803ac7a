"""No secret ever reaches a log line: the callback token (in the callback URL submit hands to
Cromwell, and in each callback request), the Slack webhook URL, the contents of Cromwell's CA
bundle, and the credential Courier sends to a Cromwell behind a proxy (each kind, accepted and
refused). Each handler runs through its success and failure paths that touch the secret, with the
functions' logger at DEBUG, and everything written to stdout, stderr and Python logging is
searched for the secret strings."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from courier.cromwell import CromwellClient
from courier.cromwell_auth import SecretCredentials
from courier.errors import CromwellUnavailable
from courier.ledger import RunLedger, RunRecord
from courier.observability import logger
from courier.secrets import SecretReader, write_ca_bundle
from courier.settings import load_settings
from local.cromwell_api import CromwellTestServer
from local.cromwell_api.auth import RequiredAuth
from monitor import callback, schedule
from monitor.composition import compose_callback, compose_reconciler
from monitor.settings import CallbackSettings, ReconcilerSettings
from notify.composition import compose
from notify.handler import lambda_handler
from notify.settings import NotifySettings
from tests.reliability.harness import FlakyClient, SubmitWorld, throttled
from tests.reliability.test_monitor_faults import callback_request
from tests.support.monitor_fixtures import Ctx
from tests.support.notify_fixtures import REGION, TABLE, FakeContext, event_item, put, run_item, stream_event

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:No application metrics:UserWarning"),
]

TOKEN = "Zq8VtokenSECRETcallback0123456789abcdefABCDEF0123"
WEBHOOK_SECRET_PART = "T0SECRET/B0SECRET/webhookSECRETpart0123456789"
PEM_BODY = "MIIBsecretCAbundleBODYxyzxyzxyz0123456789"
PEM = f"-----BEGIN CERTIFICATE-----\n{PEM_BODY}\n-----END CERTIFICATE-----\n"


@pytest.fixture
def logs(capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> Iterator[Any]:
    """What the handlers log: the functions' logger at DEBUG, every library at INFO (the most
    verbose LogLevel a deployment sets; a library's DEBUG dumps whole API responses by design).
    `logs.reset()` drops what the test's own set-up logged."""
    level = logger.log_level
    logger.setLevel("DEBUG")
    caplog.set_level(logging.INFO)

    def text() -> str:
        out, err = capfd.readouterr()
        captured = out + err + caplog.text
        text.seen += captured  # type: ignore[attr-defined]
        return str(text.seen)  # type: ignore[attr-defined]

    def reset() -> None:
        capfd.readouterr()
        caplog.clear()
        text.seen = ""  # type: ignore[attr-defined]

    text.seen = ""  # type: ignore[attr-defined]
    text.reset = reset  # type: ignore[attr-defined]
    try:
        yield text
    finally:
        logger.setLevel(level)


def assert_absent(logged: str, *secrets: str) -> None:
    assert logged, "the runs logged something"
    for secret in secrets:
        assert secret not in logged
        assert json.dumps(secret)[1:-1] not in logged


def test_submit_never_logs_the_callback_token(world: SubmitWorld, logs: Any) -> None:
    callback_uri = f"https://abc.lambda-url.us-east-1.on.aws/callback?token={TOKEN}"
    ok, down = world.drop_run("runs/secret-ok"), world.drop_run("runs/secret-down")
    bad = world.put("runs/secret-bad/inputs.json", b"{")
    assert world.invoke(ok[0], world.service(callback_uri=callback_uri))["status"] == "Submitted"
    assert world.invoke(bad, world.service(callback_uri=callback_uri))["status"] == "Rejected"
    world.server.fail_next(10, status=503)
    with pytest.raises(CromwellUnavailable):
        world.invoke(
            down[0], world.service(callback_uri=callback_uri, cromwell=world.cromwell_client(max_attempts=2))
        )
    options = world.server.backend.submissions[0].options or {}
    assert TOKEN in json.dumps(options), "the token did reach Cromwell, where it belongs"
    assert_absent(logs(), TOKEN)


def test_callback_never_logs_the_token(world: SubmitWorld, logs: Any) -> None:
    settings = CallbackSettings.model_validate(
        {"LEDGER_TABLE": TABLE, "CROMWELL_URL": world.server.url, "CALLBACK_TOKEN_SECRET": "arn:x"}
    )
    client = world.cromwell_client()
    root = world.server.backend.add(name="wf", status="Succeeded").id
    RunLedger(TABLE, world.ddb).record_submitted(RunRecord(root, "wf", "b", "runs/x/inputs.json", "runs/x/"))
    flaky = FlakyClient(world.ddb).fail("transact_write_items", throttled("TransactWriteItems"))
    service = compose_callback(settings, dynamodb=flaky, cromwell=client, token=lambda: TOKEN)
    calls = [("Succeeded", TOKEN), ("Succeeded", TOKEN), ("Failed", TOKEN[:-2] + "xx"), ("Failed", None)]
    answers = [
        callback.lambda_handler(callback_request(root, state, token=token), Ctx(), service=service)
        for state, token in calls
    ]
    assert [a["statusCode"] for a in answers] == [500, 200, 403, 403]
    assert_absent(logs(), TOKEN, TOKEN[:-2])


def test_notify_never_logs_the_slack_webhook_url(world: SubmitWorld, logs: Any) -> None:
    sns = boto3.client("sns", region_name=REGION)
    topic = sns.create_topic(Name="courier-notifications")["TopicArn"]
    secrets = boto3.client("secretsmanager", region_name=REGION)
    wid = "5d3c1a2b-0000-5000-8000-0000000000aa"
    put(world.ddb, run_item(wid, status="Failed", status_rank=9))
    ended = event_item(wid, "ENDED", {"status": "Failed"})
    put(world.ddb, ended)
    for host in ("127.0.0.1:9", "hooks.slack.invalid"):  # refused, then a name that does not resolve
        arn = secrets.create_secret(
            Name=f"slack-{host.split(':')[0]}",
            SecretString=json.dumps({"webhook_url": f"http://{host}/services/{WEBHOOK_SECRET_PART}"}),
        )["ARN"]
        config = load_settings(
            NotifySettings,
            {"LEDGER_TABLE": TABLE, "TOPIC_ARN": topic, "AWS_REGION": REGION, "SLACK_SECRET_ARN": arn},
        )
        notifier = compose(
            config, dynamodb=world.ddb, sns=sns, s3=world.s3, secrets=secrets, slack_backoff=0.01
        )
        if host.startswith("127"):
            logs.reset()
        answer = lambda_handler(stream_event(ended), FakeContext(), notifier=notifier)
        assert answer["batchItemFailures"], "Slack was unreachable: the record is retried"
    assert_absent(logs(), WEBHOOK_SECRET_PART, "B0SECRET/webhookSECRET")


def test_the_ca_bundle_contents_never_reach_a_log_line(world: SubmitWorld, logs: Any, tmp_path: Path) -> None:
    ssm = boto3.client("ssm", region_name=REGION)
    ssm.put_parameter(Name="/courier/cromwell-ca", Value=PEM, Type="SecureString")
    reader = SecretReader(ssm_client=ssm, secrets_client=boto3.client("secretsmanager", region_name=REGION))
    bundle = write_ca_bundle(reader.require("ssm:/courier/cromwell-ca"), directory=str(tmp_path))
    # TLS to a server that speaks plain HTTP fails: the error is logged, the bundle is not
    tls = CromwellClient(
        world.server.url.replace("http://", "https://"), verify=bundle, max_attempts=1, timeout=(1, 2)
    )
    (event,) = world.drop_run("runs/ca")
    with pytest.raises(CromwellUnavailable):
        world.invoke(event, world.service(cromwell=tls))
    logged = logs()
    assert "TLS failure" in logged or "cannot reach Cromwell" in logged or "unavailable" in logged
    assert_absent(logged, PEM_BODY)


CREDENTIALS = {
    "basic": (RequiredAuth.basic("courier", "PASSWORDsecret0123456789"), "PASSWORDsecret0123456789"),
    "bearer": (RequiredAuth.bearer("BEARERsecretTOKEN0123456789"), "BEARERsecretTOKEN0123456789"),
    "header": (
        RequiredAuth.header("x-api-key", "APIKEYsecretVALUE0123456789"),
        "APIKEYsecretVALUE0123456789",
    ),
}


@pytest.mark.parametrize("kind", sorted(CREDENTIALS))
def test_the_cromwell_credential_never_reaches_a_log_line(world: SubmitWorld, logs: Any, kind: str) -> None:
    required, secret = CREDENTIALS[kind]
    secrets = boto3.client("secretsmanager", region_name=REGION)
    arn = secrets.create_secret(Name=f"cromwell-{kind}", SecretString=required.secret_json())["ARN"]
    reader = SecretReader(secrets_client=secrets)
    basic = base64.b64encode(f"courier:{secret}".encode()).decode()
    with CromwellTestServer(auth=required) as server:

        def client() -> CromwellClient:
            return CromwellClient(server.url, credentials=SecretCredentials(reader, arn), max_attempts=1)

        (ok,) = world.drop_run(f"runs/auth-{kind}-ok")
        assert world.invoke(ok, world.service(cromwell=client()))["status"] == "Submitted"
        # the proxy now wants another credential: the kept one and the one read again are refused
        assert server.auth is not None
        server.auth.rotate(
            RequiredAuth(required.kind, required.first, required.second + "x")
            if required.second
            else RequiredAuth(required.kind, required.first + "x")
        )
        (refused,) = world.drop_run(f"runs/auth-{kind}-refused")
        assert world.invoke(refused, world.service(cromwell=client()))["status"] == "Rejected"
        settings = ReconcilerSettings.model_validate({"LEDGER_TABLE": TABLE, "CROMWELL_URL": server.url})
        later = datetime.now(UTC) + timedelta(minutes=20)  # the submitted run is due to be asked about
        sweep = compose_reconciler(settings, dynamodb=world.ddb, cromwell=client(), clock=lambda: later)
        assert "error" in schedule.lambda_handler({"id": "tick"}, FakeContext(), service=sweep)
        assert server.auth.refused == 4
    assert_absent(logs(), secret, basic)
