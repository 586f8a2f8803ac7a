"""The `courier` command and a Cromwell behind a proxy that asks for a credential: basic auth, a
bearer token, a named header, as the local Cromwell-compatible API requires each in turn.

The credential lives in a Secrets Manager secret (moto) that the command finds from the stack's
`CromwellAuthSecretArn`, `COURIER_CROMWELL_AUTH_SECRET` or the local stack's state, and reads
through the functions' own `SecretCredentials`. `abort` and `logs` (which reads Cromwell's
metadata for the log paths) work with the right credential; a wrong, missing or unreadable one
is one line that names the secret, exit status 2. The credential is never in what the command
prints (stdout, stderr, `--json`) nor in what it logs.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from click.testing import Result
from moto import mock_aws

from courier.ledger import schema as s
from courier.ledger._codec import to_item
from courier.ledger.runs import RunLedger
from courier.models import RunRecord
from courier_cli.deployment import Connection, Deployment, Location, connect
from local.cromwell_api import CromwellTestServer
from local.cromwell_api.auth import RequiredAuth
from tests.support.cli import invoke, one_line
from tests.support.ledger_table import create_ledger_table

pytestmark = pytest.mark.integration

TABLE = "courier-ledger"
BUCKET = "courier-runs"
LOGS_BUCKET = "cromwell"
REGION = "us-east-1"
RUN_ID = "c0ffee00-0000-5000-8000-000000000001"
STDERR = "the task's own stderr: 3 reads aligned\n"

KINDS = {
    "basic": RequiredAuth.basic("courier", "pa55-basic-SECRET"),
    "bearer": RequiredAuth.bearer("eyJ-bearer-SECRET-token"),
    "header": RequiredAuth.header("x-api-key", "key-header-SECRET-0123"),
}


def wrong(required: RequiredAuth) -> RequiredAuth:
    if required.second:
        return RequiredAuth(required.kind, required.first, required.second + "-old")
    return RequiredAuth(required.kind, required.first + "-old")


def revealing(required: RequiredAuth) -> list[str]:
    """Every text that would give the credential away, as sent or as stored."""
    texts = [required.second or required.first]
    if required.kind == "basic":
        texts.append(base64.b64encode(f"{required.first}:{required.second}".encode()).decode())
    return texts


@dataclass
class World:
    session: boto3.session.Session
    server: CromwellTestServer
    arn: str
    required: RequiredAuth

    @property
    def refused(self) -> int:
        assert self.server.auth is not None
        return self.server.auth.refused

    def deployment(self, *, secret: str | None = None) -> Deployment:
        return Deployment(
            table=TABLE,
            bucket=BUCKET,
            described_as="the test ledger",
            region=REGION,
            cromwell_url=self.server.url,
            cromwell_auth_secret=self.arn if secret is None else secret,
        )

    def connection(self, *, secret: str | None = None) -> Connection:
        return Connection(self.deployment(secret=secret), self.session)

    def store(self, required: RequiredAuth) -> None:
        self.session.client("secretsmanager").put_secret_value(
            SecretId=self.arn, SecretString=required.secret_json()
        )

    def rotate(self, required: RequiredAuth) -> None:
        assert self.server.auth is not None
        self.server.auth.rotate(required)


def _ledger(session: boto3.session.Session) -> None:
    dynamodb = session.client("dynamodb")
    create_ledger_table(dynamodb, TABLE)
    RunLedger(TABLE, dynamodb).record_submitted(
        RunRecord(
            workflow_id=RUN_ID,
            workflow_name="align",
            source_bucket=BUCKET,
            inputs_key="runs/align/inputs.json",
            run_folder="runs/align/",
            requester="ada",
        )
    )
    dynamodb.put_item(
        TableName=TABLE,
        Item=to_item(
            {
                s.PK: s.run_pk(RUN_ID),
                s.SK: s.task_sk("job-1"),
                s.TYPE: s.ITEM_TASK,
                "job_id": "job-1",
                "call": "align.bwa",
                "status": "RUNNING",
            }
        ),
    )


@pytest.fixture
def aws() -> Iterator[boto3.session.Session]:
    with mock_aws():
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        )
        _ledger(session)
        for bucket in (BUCKET, LOGS_BUCKET):
            session.client("s3").create_bucket(Bucket=bucket)
        yield session


@pytest.fixture(params=sorted(KINDS))
def world(request: pytest.FixtureRequest, aws: boto3.session.Session) -> Iterator[World]:
    required = KINDS[request.param]
    server = CromwellTestServer(auth=required).start()
    try:
        server.backend.add(RUN_ID, name="align", status="Running")
        entry = server.backend.add_call(RUN_ID, "align.bwa", job_id="job-1")
        bucket, _, key = str(entry["stderr"]).removeprefix("s3://").partition("/")
        aws.client("s3").put_object(Bucket=bucket, Key=key, Body=STDERR.encode())
        arn = aws.client("secretsmanager").create_secret(
            Name="courier/cromwell-credentials", SecretString=required.secret_json()
        )["ARN"]
        yield World(aws, server, arn, required)
    finally:
        server.stop()


def assert_never_shown(results: list[Result], logged: str, *credentials: RequiredAuth) -> None:
    for credential in credentials:
        for text in revealing(credential):
            for result in results:
                assert text not in result.stdout
                assert text not in result.stderr
            assert text not in logged


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO)
    return caplog


def test_abort_and_logs_send_each_kind_of_credential(world: World, logged: pytest.LogCaptureFixture) -> None:
    conn = world.connection()
    read = invoke(conn, "logs", RUN_ID)
    assert read.exit_code == 0, read.stderr
    assert read.stdout == STDERR  # found through Cromwell's metadata, read from S3

    aborted = invoke(conn, "abort", RUN_ID, "--json")
    assert aborted.exit_code == 0, aborted.stderr
    answer = json.loads(aborted.stdout)
    assert answer == {"workflow_id": RUN_ID, "status": answer["status"]}
    assert answer["status"] in ("Aborting", "Aborted")
    assert world.server.backend.workflow(RUN_ID).status in ("Aborting", "Aborted")
    assert world.refused == 0
    assert_never_shown([read, aborted], logged.text, world.required)


def test_a_refused_credential_is_one_line_naming_the_secret(
    world: World, logged: pytest.LogCaptureFixture
) -> None:
    stale = wrong(world.required)
    world.store(stale)
    expected = (
        f"courier: Cromwell at {world.server.url} refused the credential in the secret {world.arn}:"
        " check that the secret holds the credential Cromwell's proxy accepts now"
    )
    aborted = invoke(world.connection(), "abort", RUN_ID)
    assert one_line(aborted).startswith(expected)
    assert world.refused == 2  # the credential, and the same one read again: no retry loop
    assert world.server.backend.workflow(RUN_ID).status == "Running"

    read = invoke(world.connection(), "logs", RUN_ID, "--json")
    assert one_line(read).startswith(expected), "a refused credential is said, not worked around"
    assert read.stdout == ""
    assert_never_shown([aborted, read], logged.text, world.required, stale)


def test_a_rotated_credential_is_read_again_once(world: World, logged: pytest.LogCaptureFixture) -> None:
    conn = world.connection()  # one connection: the credential is read once and kept
    assert invoke(conn, "logs", RUN_ID).exit_code == 0
    rotated = wrong(world.required)
    world.rotate(rotated)
    world.store(rotated)

    aborted = invoke(conn, "abort", RUN_ID, "--json")
    assert aborted.exit_code == 0, aborted.stderr
    assert world.refused == 1  # the kept credential once, then the fresh one
    assert_never_shown([aborted], logged.text, world.required, rotated)


def test_no_credential_configured_says_which_variable_to_set(world: World) -> None:
    line = one_line(invoke(world.connection(secret=""), "abort", RUN_ID))
    assert line == (
        f"courier: Cromwell at {world.server.url} asks for a credential and none is configured:"
        " set COURIER_CROMWELL_AUTH_SECRET to the secret holding it (the stack's CromwellAuthSecretArn)"
    )
    assert world.refused == 1


@pytest.mark.parametrize("world", ["basic"], indirect=True)
def test_a_secret_or_ca_bundle_that_cannot_be_read_or_is_no_credential_sends_nothing(world: World) -> None:
    conn = world.connection()
    stubber = Stubber(conn.client("secretsmanager"))
    stubber.add_client_error(
        "get_secret_value", service_error_code="AccessDeniedException", http_status_code=400
    )
    with stubber:
        line = one_line(invoke(conn, "abort", RUN_ID))
    assert line == (
        "courier: cannot read Cromwell's credential: cannot be read (AccessDeniedException);"
        f" check the secret {world.arn}; reading it needs secretsmanager:GetSecretValue on it"
        " (docs/cli.md) or another --profile"
    )

    missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:courier/none-AbCdEf"
    line = one_line(invoke(world.connection(secret=missing), "abort", RUN_ID))
    assert "(ResourceNotFoundException)" in line
    assert f"check the secret {missing}" in line

    unreadable = Connection(
        replace(world.deployment(), ca_bundle="secretsmanager:courier/no-such-ca"), world.session
    )
    line = one_line(invoke(unreadable, "abort", RUN_ID))
    assert line.startswith(
        "courier: cannot read Cromwell's CA bundle secretsmanager:courier/no-such-ca:"
        " cannot be read (ResourceNotFoundException); check the stack's CromwellCaBundle"
    )

    world.session.client("secretsmanager").put_secret_value(
        SecretId=world.arn, SecretString=json.dumps({"type": "digest", "password": "digest-SECRET"})
    )
    line = one_line(invoke(world.connection(), "abort", RUN_ID))
    assert line.startswith(f"courier: the secret {world.arn} is not a Cromwell credential ('type' must be")
    assert "digest-SECRET" not in line
    assert world.server.auth is not None
    assert (world.server.auth.accepted, world.refused) == (0, 0)


@pytest.mark.parametrize("world", ["header"], indirect=True)
def test_the_secret_is_found_from_the_stack_the_environment_and_the_local_state(
    world: World, tmp_path: Path, logged: pytest.LogCaptureFixture
) -> None:
    template = {
        "Parameters": {"CromwellUrl": {"Type": "String"}, "CromwellAuthSecretArn": {"Type": "String"}},
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {
            "LedgerTableName": {"Value": TABLE},
            "RunsBucketName": {"Value": BUCKET},
            "CromwellUrl": {"Value": {"Ref": "CromwellUrl"}},
        },
    }
    world.session.client("cloudformation").create_stack(
        StackName="courier-prod",
        TemplateBody=json.dumps(template),
        Parameters=[
            {"ParameterKey": "CromwellUrl", "ParameterValue": world.server.url},
            {"ParameterKey": "CromwellAuthSecretArn", "ParameterValue": world.arn},
        ],
    )
    stack = connect(Location(stack="courier-prod", region=REGION, environ={}))
    assert stack.deployment.cromwell_auth_secret == world.arn
    aborted = invoke(None, "--stack", "courier-prod", "--region", REGION, "abort", RUN_ID, "--json")
    assert aborted.exit_code == 0, aborted.stderr
    assert json.loads(aborted.stdout)["status"] in ("Aborting", "Aborted")

    copy = "courier/cromwell-credentials-for-people"
    override = {"COURIER_CROMWELL_AUTH_SECRET": copy}
    overridden = connect(Location(stack="courier-prod", region=REGION, environ=override))
    assert overridden.deployment.cromwell_auth_secret == copy

    from_env = connect(
        Location(
            region=REGION,
            environ={
                "COURIER_TABLE": TABLE,
                "COURIER_BUCKET": BUCKET,
                "COURIER_CROMWELL_URL": world.server.url,
                "COURIER_CROMWELL_AUTH_SECRET": world.arn,
            },
        )
    )
    assert from_env.deployment.cromwell_auth_secret == world.arn

    state = tmp_path / ".courier-local.json"
    state.write_text(
        json.dumps(
            {
                "aws_endpoint_url": "http://127.0.0.1:5000",
                "table": TABLE,
                "bucket": BUCKET,
                "cromwell_url": world.server.url,
                "cromwell_auth_secret": world.arn,
            }
        )
    )
    local = connect(Location(local=True, environ={"COURIER_LOCAL_STATE": str(state)}))
    assert local.deployment.cromwell_auth_secret == world.arn
    assert (
        connect(
            Location(local=True, environ={"COURIER_LOCAL_STATE": str(state), **override})
        ).deployment.cromwell_auth_secret
        == copy
    )
    assert_never_shown([aborted], logged.text, world.required)
