"""The `courier` command over a moto ledger and bucket: finding runs by prefix (and refusing an
ambiguous one), lists read from the `runs` index and never by Scan, the deployment found from a
CloudFormation stack, and each kind of failure the user can act on as one line and exit status 2."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from click.testing import CliRunner, Result
from moto import mock_aws

from courier.ledger import schema as s
from courier.ledger._codec import to_item
from courier.ledger.runs import RunLedger
from courier.models import RunRecord
from courier_cli.app import Session, cli
from courier_cli.deployment import Connection, Deployment, Location
from tests.support.ledger_table import create_ledger_table

pytestmark = pytest.mark.integration

TABLE = "courier-ledger"
BUCKET = "courier-runs"
REGION = "us-east-1"
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
IDS = [
    "abcd1111-0000-5000-8000-000000000001",
    "abcd2222-0000-5000-8000-000000000002",
    "0123ffff-0000-5000-8000-000000000003",
]


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def aws() -> Iterator[boto3.session.Session]:
    with mock_aws():
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        )
        create_ledger_table(session.client("dynamodb"), TABLE)
        session.client("s3").create_bucket(Bucket=BUCKET)
        clock = Clock()
        ledger = RunLedger(TABLE, session.client("dynamodb"), clock=clock)
        for i, workflow_id in enumerate(IDS):
            clock.now = T0 + timedelta(minutes=i)
            ledger.record_submitted(
                RunRecord(
                    workflow_id=workflow_id,
                    workflow_name=f"wf{i}",
                    source_bucket=BUCKET,
                    inputs_key=f"runs/wf{i}/inputs.json",
                    run_folder=f"runs/wf{i}/",
                    requester="ada",
                )
            )
        session.client("dynamodb").put_item(
            TableName=TABLE,
            Item=to_item(
                {
                    s.PK: s.run_pk(IDS[0]),
                    s.SK: s.task_sk("job-1"),
                    s.TYPE: s.ITEM_TASK,
                    "job_id": "job-1",
                    "call": "wf0.hello",
                    "status": "RUNNING",
                }
            ),
        )
        session.client("dynamodb").update_item(  # as the monitor counts it
            TableName=TABLE,
            Key=to_item({s.PK: s.run_pk(IDS[0]), s.SK: s.RUN_SK}),
            UpdateExpression="ADD tasks_RUNNING :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
        )
        yield session


def deployment(**changes: Any) -> Deployment:
    fields: dict[str, Any] = {
        "table": TABLE,
        "bucket": BUCKET,
        "described_as": "the test ledger",
        "region": REGION,
    }
    fields.update(changes)
    return Deployment(**fields)


def invoke(conn: Connection | None, *args: str, env: dict[str, str] | None = None) -> Result:
    location = Location(environ=env or {}, cwd=Path("/"))
    try:
        runner = CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:
        runner = CliRunner()
    return runner.invoke(cli, list(args), obj=Session(location, conn=conn), catch_exceptions=False)


def one_line(result: Result) -> str:
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("courier: ")
    return line


def test_a_unique_prefix_finds_the_run_and_an_ambiguous_one_lists_the_candidates(
    aws: boto3.session.Session,
) -> None:
    conn = Connection(deployment(), aws)
    shown = invoke(conn, "show", "0123", "--json")
    assert shown.exit_code == 0, shown.stderr
    assert json.loads(shown.stdout)["workflow_id"] == IDS[2]

    line = one_line(invoke(conn, "show", "abcd"))
    assert "'abcd' is ambiguous" in line
    assert IDS[0] in line
    assert IDS[1] in line
    assert "give more characters" in line
    assert "too short" in one_line(invoke(conn, "show", "ab"))


def test_lists_query_the_runs_index_and_never_scan(aws: boto3.session.Session) -> None:
    conn = Connection(deployment(), aws)
    calls: list[tuple[str, str | None]] = []
    client = conn.client("dynamodb")
    client.meta.events.register(
        "provide-client-params.dynamodb.*",
        lambda model, params, **_: calls.append((model.name, params.get("IndexName"))),
    )
    listed = invoke(conn, "runs", "--json")
    assert listed.exit_code == 0, listed.stderr
    runs = json.loads(listed.stdout)["runs"]
    assert [r["workflow_id"] for r in runs] == list(reversed(IDS))
    assert runs[-1]["tasks"] == {"done": 0, "total": 1, "counts": {"RUNNING": 1}}
    assert ("Query", s.RUNS_INDEX) in calls
    assert not [c for c in calls if c[0] == "Scan"]

    assert [
        r["workflow_id"] for r in json.loads(invoke(conn, "runs", "--limit", "2", "--json").stdout)["runs"]
    ] == [
        IDS[2],
        IDS[1],
    ]
    since = T0 + timedelta(seconds=30)
    newer = json.loads(invoke(conn, "runs", "--since", since.isoformat(), "--json").stdout)["runs"]
    assert [r["workflow_id"] for r in newer] == [IDS[2], IDS[1]]
    assert "--status 'Sleeping': one of" in one_line(invoke(conn, "runs", "--status", "Sleeping"))
    assert "--since 'yesterday'" in one_line(invoke(conn, "runs", "--since", "yesterday"))


def test_access_denied_is_one_line(aws: boto3.session.Session) -> None:
    conn = Connection(deployment(), aws)
    stubber = Stubber(conn.client("dynamodb"))
    stubber.add_client_error("get_item", service_error_code="AccessDeniedException", http_status_code=400)
    with stubber:
        line = one_line(invoke(conn, "show", IDS[0]))
    assert "access denied (GetItem)" in line
    assert "--profile" in line


def test_the_deployment_is_found_from_its_stack(aws: boto3.session.Session) -> None:
    template = {
        "Parameters": {"CromwellUrl": {"Type": "String"}, "SpotVcpuHour": {"Type": "String"}},
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {
            "LedgerTableName": {"Value": TABLE},
            "RunsBucketName": {"Value": BUCKET},
            "CromwellUrl": {"Value": {"Ref": "CromwellUrl"}},
        },
    }
    aws.client("cloudformation").create_stack(
        StackName="courier-prod",
        TemplateBody=json.dumps(template),
        Parameters=[
            {"ParameterKey": "CromwellUrl", "ParameterValue": "https://cromwell.example.org"},
            {"ParameterKey": "SpotVcpuHour", "ParameterValue": "0.5"},
        ],
    )
    from courier_cli.deployment import connect  # noqa: PLC0415

    found = connect(Location(stack="courier-prod", region=REGION, environ={}))
    assert (found.deployment.table, found.deployment.bucket) == (TABLE, BUCKET)
    assert found.deployment.cromwell_url == "https://cromwell.example.org"
    assert found.deployment.prices.spot_vcpu_hour == 0.5

    listed = invoke(None, "--stack", "courier-prod", "--region", REGION, "runs", "--json")
    assert listed.exit_code == 0, listed.stderr
    assert len(json.loads(listed.stdout)["runs"]) == 3

    line = one_line(invoke(None, "--stack", "nope", "--region", REGION, "runs"))
    assert line.startswith("courier: no stack nope in us-east-1: check --stack and --region")


def test_no_credentials_no_region_and_an_unreachable_cromwell(
    aws: boto3.session.Session, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    conn = Connection(deployment(cromwell_url="http://127.0.0.1:9"), aws)
    line = one_line(invoke(conn, "abort", IDS[0]))
    assert line.startswith("courier: Cromwell at http://127.0.0.1:9 is unreachable")

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    line = one_line(invoke(None, "--stack", "courier-prod", "--region", REGION, "runs"))
    assert "no AWS credentials found" in line

    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    line = one_line(invoke(None, "--stack", "courier-prod", "runs"))
    assert line == "courier: no AWS region: pass --region or set AWS_REGION"
