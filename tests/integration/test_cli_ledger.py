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
from moto import mock_aws

from courier.ledger import schema as s
from courier.ledger._codec import to_item
from courier.ledger.runs import RunLedger
from courier.models import RunRecord
from courier_cli.deployment import Connection, Deployment, Location
from tests.support.cli import invoke, one_line
from tests.support.ledger_table import create_ledger_table

pytestmark = pytest.mark.integration

TABLE = "courier-ledger"
BUCKET = "courier-runs"
REGION = "us-east-1"
ROOT = Path(__file__).resolve().parents[2]
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


RUN_COMMANDS = ("show", "logs", "watch", "abort", "report")


@pytest.mark.parametrize("command", RUN_COMMANDS)
def test_every_command_naming_a_run_refuses_bad_names_in_one_line(
    aws: boto3.session.Session, command: str
) -> None:
    conn = Connection(deployment(), aws)
    unknown = "00000000-0000-0000-0000-000000000000"
    line = one_line(invoke(conn, command, unknown))
    assert line.startswith(f"courier: no run {unknown} in the ledger of the test ledger: check the id")
    line = one_line(invoke(conn, command, "abcd"))
    assert line.startswith("courier: 'abcd' is ambiguous: it starts ")
    assert line.endswith("; give more characters")
    assert IDS[0] in line
    assert IDS[1] in line
    assert "`courier runs` lists them" in one_line(invoke(conn, command, "ffff"))
    assert "is not a workflow id" in one_line(invoke(conn, command, "not an id!"))
    assert "was it dropped?" in one_line(invoke(conn, command, "runs/none/inputs.json"))
    assert one_line(invoke(conn, command, "s3://no-such-bucket/runs/x/inputs.json")) == (
        "courier: no such bucket (GetObject): check the s3:// URL, --stack and --region"
    )


@pytest.mark.parametrize(
    ("args", "service", "operation"),
    [
        (("runs",), "dynamodb", "Query"),
        (("show", IDS[0]), "dynamodb", "GetItem"),
        (("logs", IDS[0]), "dynamodb", "GetItem"),
        (("watch", "runs/"), "s3", "ListObjectsV2"),
        (("abort", IDS[0]), "dynamodb", "GetItem"),
        (("report", IDS[0]), "dynamodb", "GetItem"),
        (("drop", str(ROOT / "local" / "demo_runs" / "scatter")), "s3", "HeadObject"),
    ],
)
def test_access_denied_is_one_line_for_every_command(
    aws: boto3.session.Session, args: tuple[str, ...], service: str, operation: str
) -> None:
    conn = Connection(deployment(), aws)
    client = conn.client(service)
    stubber = Stubber(client)
    method = client.meta.method_to_api_mapping
    name = next(m for m, api in method.items() if api == operation)
    code = "AccessDenied" if service == "s3" else "AccessDeniedException"
    stubber.add_client_error(name, service_error_code=code, http_status_code=403)
    with stubber:
        line = one_line(invoke(conn, *args))
    assert line == (
        f"courier: access denied ({operation}): your AWS identity lacks a permission the courier"
        " command needs on this deployment; ask for them (docs/cli.md, Permissions) or use another --profile"
    )


def test_drop_refuses_a_folder_without_inputs_or_wdl_in_one_line(
    aws: boto3.session.Session, tmp_path: Path
) -> None:
    conn = Connection(deployment(), aws)
    assert "is not a folder" in one_line(invoke(conn, "drop", str(tmp_path / "missing")))
    no_inputs = tmp_path / "no_inputs"
    no_inputs.mkdir()
    (no_inputs / "main.wdl").write_text("version 1.0\nworkflow w {}\n")
    assert "holds no inputs file" in one_line(invoke(conn, "drop", str(no_inputs)))
    no_wdl = tmp_path / "no_wdl"
    no_wdl.mkdir()
    (no_wdl / "inputs.json").write_text("{}")
    assert "holds no .wdl file" in one_line(invoke(conn, "drop", str(no_wdl)))
    assert not aws.client("s3").list_objects_v2(Bucket=BUCKET).get("Contents")  # nothing uploaded


def test_help_lists_the_commands_in_a_runs_order_and_each_says_what_it_takes() -> None:
    helped = invoke(None, "--help")
    assert helped.exit_code == 0
    listed = helped.stdout.split("Commands:\n", 1)[1].split("\n\n", 1)[0]
    names = [line.split()[0] for line in listed.splitlines()]
    assert names[:7] == ["drop", "runs", "show", "logs", "watch", "abort", "report"]
    assert "..." not in listed, "every command's summary is whole"
    for variable in ("COURIER_STACK", "COURIER_TABLE", "COURIER_CROMWELL_AUTH_SECRET"):
        assert variable in helped.stdout
    assert "Exit status" in helped.stdout
    for name in names:
        text = invoke(None, name, "--help").stdout
        assert text.startswith(f"Usage: courier {name} [OPTIONS]")
        for raw in ("FLOAT", "INTEGER", "TEXT"):
            assert raw not in text, f"courier {name} --help shows a bare {raw}"
        if name in RUN_COMMANDS:
            assert "RUN is a workflow id or its first characters" in text
