"""Static checks of template.yaml: parameters, IAM, the runs bucket, the ledger table, and the event
patterns that decide which uploads and which ledger changes invoke a function."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from courier.ledger.schema import (
    ACTIVE_INDEX,
    ACTIVE_PK,
    ACTIVE_SK,
    ITEM_EVENT,
    PK,
    RUNS_INDEX,
    RUNS_PROJECTION,
    RUNS_SK,
    SK,
    TASK_COUNT_PREFIX,
    TTL_ATTR,
    TYPE,
)
from local.stack.template import load_template

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ loading


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]


def resolve(node: Any, refs: dict[str, Any], conditions: dict[str, bool]) -> Any:
    """Evaluate the few intrinsics the event patterns use: Ref and Fn::If."""
    if isinstance(node, list):
        return [resolve(item, refs, conditions) for item in node]
    if isinstance(node, dict):
        if set(node) == {"Ref"}:
            return refs[node["Ref"]]
        if set(node) == {"Fn::If"}:
            condition, when_true, when_false = node["Fn::If"]
            return resolve(when_true if conditions[condition] else when_false, refs, conditions)
        return {key: resolve(value, refs, conditions) for key, value in node.items()}
    return node


# ------------------------------------------------------------------ EventBridge-style matching


def _value_matches(rule: Any, value: Any) -> bool:
    if isinstance(rule, dict):
        if "suffix" in rule:
            return isinstance(value, str) and value.endswith(rule["suffix"])
        if "prefix" in rule:
            return isinstance(value, str) and value.startswith(rule["prefix"])
        raise NotImplementedError(f"pattern operator {rule}")
    return bool(rule == value)


def pattern_matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """Match an event against an EventBridge / Lambda filter pattern: every field of the pattern
    must be present; a list matches when any of its entries does."""
    for key, rule in pattern.items():
        if key not in event:
            return False
        value = event[key]
        if isinstance(rule, dict):
            if not isinstance(value, dict) or not pattern_matches(rule, value):
                return False
        elif isinstance(rule, list):
            values = value if isinstance(value, list) else [value]
            if not any(_value_matches(r, v) for r in rule for v in values):
                return False
        else:
            raise NotImplementedError(f"pattern field {key}: {rule!r}")
    return True


# ------------------------------------------------------------------ helpers


def _statements(node: Any, owner: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every policy statement in the template, with the resource that holds it."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        if "Fn::If" in node and len(node) == 1:
            for branch in node["Fn::If"][1:]:
                found += _statements(branch, owner)
            return found
        statement = node.get("Statement")
        if isinstance(statement, list):
            for item in statement:
                for candidate in _branches(item):
                    if isinstance(candidate, dict) and "Effect" in candidate:
                        found.append((owner, candidate))
        for value in node.values():
            found += _statements(value, owner)
    elif isinstance(node, list):
        for value in node:
            found += _statements(value, owner)
    return found


def _branches(item: Any) -> list[Any]:
    if isinstance(item, dict) and set(item) == {"Fn::If"}:
        return [b for b in item["Fn::If"][1:] if b != {"Ref": "AWS::NoValue"}]
    return [item]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _functions(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: res["Properties"]
        for name, res in resources.items()
        if res["Type"] == "AWS::Serverless::Function"
    }


# ------------------------------------------------------------------ tests


def test_every_parameter_is_described(template: dict[str, Any]) -> None:
    missing = [name for name, p in template["Parameters"].items() if not p.get("Description", "").strip()]
    assert not missing


def test_every_parameter_is_in_an_interface_group(template: dict[str, Any]) -> None:
    groups = template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    grouped = [p for group in groups for p in group["Parameters"]]
    assert sorted(grouped) == sorted(template["Parameters"])


def test_no_allow_statement_has_a_wildcard_action(resources: dict[str, Any]) -> None:
    statements = [st for name, res in resources.items() for _, st in _statements(res, name)]
    assert len(statements) > 20
    offenders = []
    for name, res in resources.items():
        for _, st in _statements(res, name):
            if st["Effect"] != "Allow":
                continue
            # A KMS key policy must let the account (that is, IAM) administer the key.
            principal = st.get("Principal", {})
            if res["Type"] == "AWS::KMS::Key" and isinstance(principal, dict) and "AWS" in principal:
                continue
            for action in _as_list(st["Action"]):
                if action == "*" or (isinstance(action, str) and action.endswith(":*")):
                    offenders.append((name, st.get("Sid"), action))
    assert not offenders


def test_resource_star_only_where_aws_allows_nothing_narrower(resources: dict[str, Any]) -> None:
    unscoped = {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "ec2:CreateNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSubnets",
        "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses",
        "ec2:UnassignPrivateIpAddresses",
    }
    for name, res in resources.items():
        if res["Type"] not in {"AWS::IAM::Role", "AWS::IAM::ManagedPolicy"}:
            continue
        for _, st in _statements(res, name):
            if "*" in _as_list(st.get("Resource")):
                assert set(_as_list(st["Action"])) <= unscoped, (name, st.get("Sid"))


def test_every_function_has_its_own_role_and_log_group(resources: dict[str, Any]) -> None:
    for name, props in _functions(resources).items():
        role = props["Role"]["Fn::GetAtt"][0]
        assert resources[role]["Type"] == "AWS::IAM::Role", name
        log_group = props["LoggingConfig"]["LogGroup"]["Ref"]
        assert resources[log_group]["Type"] == "AWS::Logs::LogGroup", name
        assert resources[log_group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        role_statements = [st for _, st in _statements(resources[role])]
        log_statements = [st for st in role_statements if "logs:PutLogEvents" in _as_list(st["Action"])]
        assert log_statements
        assert log_statements[0]["Resource"] == {"Fn::GetAtt": [log_group, "Arn"]}


@pytest.mark.parametrize("role", ["SubmitRole", "SheetRowsRole"])
def test_submit_writes_only_receipts(resources: dict[str, Any], role: str) -> None:
    statements = [st for _, st in _statements(resources[role])]
    puts = [st for st in statements if "s3:PutObject" in _as_list(st["Action"])]
    assert len(puts) == 1
    written = sorted(resource["Fn::Sub"][0].rsplit("/", 1)[1] for resource in puts[0]["Resource"])
    assert written == ["*.receipt.json", "*.receipts.tsv"]


def test_sheet_rows_queue_is_paced_and_least_privilege(resources: dict[str, Any]) -> None:
    rows = resources["SheetRowsFunction"]["Properties"]
    source = rows["Events"]["SheetRows"]["Properties"]
    assert source["Queue"] == {"Fn::GetAtt": ["SheetRowsQueue", "Arn"]}
    assert "ReportBatchItemFailures" in source["FunctionResponseTypes"]
    # each invocation paces itself at MaxSubmitsPerSecond / ROW_CONCURRENCY: the two must agree
    env = rows["Environment"]["Variables"]
    assert int(env["ROW_CONCURRENCY"]) == source["ScalingConfig"]["MaximumConcurrency"]
    assert env["MAX_SUBMITS_PER_SECOND"] == {"Ref": "MaxSubmitsPerSecond"}
    queue = resources["SheetRowsQueue"]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * rows["Timeout"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["SheetRowsDLQ", "Arn"]}
    submit_env = resources["SubmitFunction"]["Properties"]["Environment"]["Variables"]
    assert submit_env["SHEET_ROWS_QUEUE_URL"] == {"Ref": "SheetRowsQueue"}
    assert submit_env["MAX_SHEET_ROWS"] == {"Ref": "MaxSheetRows"}
    for role, actions in (
        ("SubmitRole", {"sqs:SendMessage"}),
        (
            "SheetRowsRole",
            {
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:ChangeMessageVisibility",
                "sqs:GetQueueAttributes",
            },
        ),
    ):
        rows_statements = [
            st
            for _, st in _statements(resources[role])
            if st.get("Resource") == {"Fn::GetAtt": ["SheetRowsQueue", "Arn"]}
        ]
        assert len(rows_statements) == 1, role
        assert set(_as_list(rows_statements[0]["Action"])) == actions, role
    pattern = resources["SubmitFunction"]["Properties"]["Events"]["InputsUploaded"]["Properties"]["Pattern"]
    assert pattern["detail"]["object"]["key"] == [
        {"suffix": "inputs.json"},
        {"suffix": ".tsv"},
        {"suffix": ".csv"},
        {"suffix": "rerun.json"},
    ]


def test_runs_bucket_is_private_encrypted_versioned_and_tls_only(resources: dict[str, Any]) -> None:
    bucket = resources["RunsBucket"]
    assert bucket["Condition"] == "CreateBucket"
    props = bucket["Properties"]
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert len(props["PublicAccessBlockConfiguration"]) == 4
    sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert sse["SSEAlgorithm"] in {"AES256", "aws:kms"}
    assert props["VersioningConfiguration"]["Status"] == "Enabled"
    assert props["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"] is True
    assert props["OwnershipControls"]["Rules"][0]["ObjectOwnership"] == "BucketOwnerEnforced"

    policy = resources["RunsBucketPolicy"]["Properties"]
    assert policy["Bucket"] == {"Ref": "RunsBucket"}
    denies = [
        st
        for st in policy["PolicyDocument"]["Statement"]
        if st["Effect"] == "Deny" and st["Condition"]["Bool"]["aws:SecureTransport"] in ("false", False)
    ]
    assert denies
    assert denies[0]["Principal"] == "*"


def test_ledger_table_matches_the_schema(resources: dict[str, Any]) -> None:
    table = resources["LedgerTable"]
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [
        {"AttributeName": PK, "KeyType": "HASH"},
        {"AttributeName": SK, "KeyType": "RANGE"},
    ]
    types = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
    assert types == {PK: "S", SK: "S", ACTIVE_PK: "S", ACTIVE_SK: "S", TYPE: "S", RUNS_SK: "S"}
    gsi, runs = props["GlobalSecondaryIndexes"]
    assert runs["IndexName"] == RUNS_INDEX
    assert runs["KeySchema"] == [
        {"AttributeName": TYPE, "KeyType": "HASH"},
        {"AttributeName": RUNS_SK, "KeyType": "RANGE"},
    ]
    assert runs["Projection"]["ProjectionType"] == "INCLUDE"
    assert tuple(runs["Projection"]["NonKeyAttributes"]) == RUNS_PROJECTION
    assert not [a for a in RUNS_PROJECTION if a.startswith(TASK_COUNT_PREFIX)]  # no write per task event
    assert gsi["IndexName"] == ACTIVE_INDEX
    assert gsi["KeySchema"] == [
        {"AttributeName": ACTIVE_PK, "KeyType": "HASH"},
        {"AttributeName": ACTIVE_SK, "KeyType": "RANGE"},
    ]
    assert gsi["Projection"]["ProjectionType"] == "INCLUDE"
    assert set(gsi["Projection"]["NonKeyAttributes"]) == {
        "workflow_id",
        "status",
        "workflow_name",
        "submitted_at",
    }
    assert props["TimeToLiveSpecification"] == {"AttributeName": TTL_ATTR, "Enabled": True}
    assert props["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["SSESpecification"]["SSEEnabled"] is True


def test_the_reconciler_may_query_the_active_index_and_the_batch_events_function_reads_items_only(
    resources: dict[str, Any],
) -> None:
    queries = [
        st for _, st in _statements(resources["ReconcilerRole"]) if "dynamodb:Query" in _as_list(st["Action"])
    ]
    assert queries
    assert {"Fn::Sub": f"${{LedgerTable.Arn}}/index/{ACTIVE_INDEX}"} in _as_list(queries[0]["Resource"])
    ledger = {
        action
        for _, st in _statements(resources["MonitorRole"])
        for action in _as_list(st["Action"])
        if action.startswith("dynamodb:")
    }
    item_actions = ("GetItem", "PutItem", "UpdateItem", "ConditionCheckItem")
    assert ledger == {f"dynamodb:{action}" for action in item_actions}


@pytest.fixture(scope="module")
def upload_pattern(resources: dict[str, Any]) -> dict[str, Any]:
    event = resources["SubmitFunction"]["Properties"]["Events"]["InputsUploaded"]
    assert event["Type"] == "EventBridgeRule"
    pattern = resolve(event["Properties"]["Pattern"], {"RunsBucket": "runs-bucket"}, {"CreateBucket": True})
    assert isinstance(pattern, dict)
    return pattern


def _s3_event(key: str, bucket: str = "runs-bucket") -> dict[str, Any]:
    return {
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {"bucket": {"name": bucket}, "object": {"key": key, "size": 120}, "reason": "PutObject"},
    }


@pytest.mark.parametrize(
    "key",
    ["inputs.json", "runs/exome/sampleA.inputs.json", "sampleA.inputs.json", "a/b/c/WGS.inputs.json"],
)
def test_upload_rule_matches_inputs_files(upload_pattern: dict[str, Any], key: str) -> None:
    assert pattern_matches(upload_pattern, _s3_event(key))


@pytest.mark.parametrize(
    "key",
    [
        "sampleA.inputs.json.receipt.json",
        "runs/exome/inputs.json.receipt.json",
        "main.wdl",
        "runs/exome/options.json",
        "sampleA.inputs.json.bak",
    ],
)
def test_upload_rule_ignores_other_files(upload_pattern: dict[str, Any], key: str) -> None:
    assert not pattern_matches(upload_pattern, _s3_event(key))


def test_upload_rule_watches_only_the_runs_bucket(upload_pattern: dict[str, Any]) -> None:
    assert not pattern_matches(upload_pattern, _s3_event("inputs.json", bucket="someone-else"))
    deleted = _s3_event("inputs.json") | {"detail-type": "Object Deleted"}
    assert not pattern_matches(upload_pattern, deleted)


def test_submit_failures_are_parked(resources: dict[str, Any]) -> None:
    props = resources["SubmitFunction"]["Properties"]
    config = props["EventInvokeConfig"]
    assert config["MaximumRetryAttempts"] == 2
    assert config["DestinationConfig"]["OnFailure"] == {
        "Type": "SQS",
        "Destination": {"Fn::GetAtt": ["SubmitParkingQueue", "Arn"]},
    }
    assert resources["SubmitParkingQueue"]["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600


def _stream_record(event_name: str, item_type: str | None) -> dict[str, Any]:
    image: dict[str, Any] = {PK: {"S": "RUN#1"}, SK: {"S": "EVENT#ENDED"}}
    if item_type is not None:
        image[TYPE] = {"S": item_type}
    record: dict[str, Any] = {"eventName": event_name, "dynamodb": {"Keys": {PK: image[PK], SK: image[SK]}}}
    if event_name != "REMOVE":
        record["dynamodb"]["NewImage"] = image
    return record


@pytest.fixture(scope="module")
def notify_filters(resources: dict[str, Any]) -> list[dict[str, Any]]:
    event = resources["NotifyFunction"]["Properties"]["Events"]["OutboxEvents"]
    assert event["Type"] == "DynamoDB"
    props = event["Properties"]
    assert props["Stream"] == {"Fn::GetAtt": ["LedgerTable", "StreamArn"]}
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BisectBatchOnFunctionError"] is True
    return [json.loads(f["Pattern"]) for f in props["FilterCriteria"]["Filters"]]


def test_notify_filter_admits_inserted_outbox_events(notify_filters: list[dict[str, Any]]) -> None:
    assert any(pattern_matches(p, _stream_record("INSERT", ITEM_EVENT)) for p in notify_filters)


@pytest.mark.parametrize(
    ("event_name", "item_type"),
    [("MODIFY", ITEM_EVENT), ("REMOVE", ITEM_EVENT), ("INSERT", "run"), ("INSERT", "task"), ("INSERT", None)],
)
def test_notify_filter_rejects_everything_else(
    notify_filters: list[dict[str, Any]], event_name: str, item_type: str | None
) -> None:
    assert not any(pattern_matches(p, _stream_record(event_name, item_type)) for p in notify_filters)


_MODULE = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)+$")


def test_handlers_point_into_their_code_uri(template: dict[str, Any], resources: dict[str, Any]) -> None:
    functions = _functions(resources)
    assert set(functions) == {
        "SubmitFunction",
        "SheetRowsFunction",
        "MonitorFunction",
        "CallbackFunction",
        "ReconcilerFunction",
        "NotifyFunction",
    }
    for name, props in functions.items():
        code_uri = props["CodeUri"]
        assert (ROOT / code_uri / "requirements.txt").is_file(), name
        module, _, attr = props["Handler"].rpartition(".")
        assert attr == "lambda_handler", name
        assert _MODULE.match(module), name
        package = module.split(".", 1)[0]
        assert package == Path(code_uri).name, name
        module_file = Path(code_uri, *module.split(".")).with_suffix(".py")
        assert module_file.parts[:2] == ("functions", package), name


def test_globals(template: dict[str, Any]) -> None:
    glob = template["Globals"]["Function"]
    assert glob["Runtime"] == "python3.13"
    # tracing is an option: off, nothing is traced and the X-Ray SDK's layer is not attached
    assert glob["Tracing"] == {"Fn::If": ["TracingEnabled", "Active", "PassThrough"]}
    assert glob["Layers"] == [
        {"Ref": "CourierLayer"},
        {"Fn::If": ["TracingEnabled", {"Ref": "TracingLayer"}, {"Ref": "AWS::NoValue"}]},
    ]
    assert template["Resources"]["TracingLayer"]["Condition"] == "TracingEnabled"
    assert template["Parameters"]["EnableTracing"]["Default"] == "false"
    env = glob["Environment"]["Variables"]
    assert env["POWERTOOLS_TRACE_DISABLED"] == {"Fn::If": ["TracingEnabled", "false", "true"]}
    assert env["POWERTOOLS_SERVICE_NAME"] == "cromwell-courier"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "CromwellCourier"
    assert {"POWERTOOLS_LOG_LEVEL", "LEDGER_TABLE", "RETENTION_DAYS"} <= set(env)
    layer = template["Resources"]["CourierLayer"]
    assert layer["Metadata"] == {"BuildMethod": "python3.13", "BuildArchitecture": glob["Architectures"][0]}
    assert layer["Properties"]["CompatibleArchitectures"] == glob["Architectures"]


def test_functions_that_call_cromwell_run_in_the_vpc(resources: dict[str, Any]) -> None:
    functions = _functions(resources)
    for name in ("SubmitFunction", "CallbackFunction", "ReconcilerFunction"):
        vpc = functions[name]["VpcConfig"]
        assert vpc == {"SubnetIds": {"Ref": "SubnetIds"}, "SecurityGroupIds": {"Ref": "SecurityGroupIds"}}
        assert functions[name]["Environment"]["Variables"]["CROMWELL_URL"] == {"Ref": "CromwellUrl"}
    # the Batch-events function and notify never call Cromwell: outside the VPC, named no Cromwell
    for name in ("MonitorFunction", "NotifyFunction"):
        assert "VpcConfig" not in functions[name], name
        assert not {v for v in functions[name]["Environment"]["Variables"] if v.startswith("CROMWELL_")}, name


def test_every_parking_queue_has_an_alarm(resources: dict[str, Any]) -> None:
    alarmed = {
        res["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for res in resources.values()
        if res["Type"] == "AWS::CloudWatch::Alarm" and res["Properties"].get("Namespace") == "AWS/SQS"
    }
    assert alarmed == {"SubmitParkingQueue", "SubmitEventsDLQ", "SheetRowsDLQ", "BatchEventsDLQ", "NotifyDLQ"}


def test_functions_that_call_cromwell_read_exactly_the_credentials_secret(resources: dict[str, Any]) -> None:
    functions = _functions(resources)
    for name in (
        "SubmitFunction",
        "SheetRowsFunction",
        "CallbackFunction",
        "ReconcilerFunction",
    ):
        assert functions[name]["Environment"]["Variables"]["CROMWELL_AUTH_SECRET"] == {
            "Ref": "CromwellAuthSecretArn"
        }
        policies = resources[functions[name]["Role"]["Fn::GetAtt"][0]]["Properties"]["ManagedPolicyArns"]
        assert {"Ref": "CromwellClientPolicy"} in policies
    for name in ("MonitorFunction", "NotifyFunction"):
        assert "CROMWELL_AUTH_SECRET" not in functions[name]["Environment"]["Variables"], name
        role = resources[functions[name]["Role"]["Fn::GetAtt"][0]]["Properties"]
        assert {"Ref": "CromwellClientPolicy"} not in role.get("ManagedPolicyArns", []), name
    statements = resources["CromwellClientPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    (read,) = [st["Fn::If"] for st in statements if "Fn::If" in st and st["Fn::If"][0] == "HasCromwellAuth"]
    assert read[1] == {
        "Sid": "ReadCromwellCredentials",
        "Effect": "Allow",
        "Action": "secretsmanager:GetSecretValue",
        "Resource": {"Ref": "CromwellAuthSecretArn"},
    }
    assert read[2] == {"Ref": "AWS::NoValue"}
    alarm = resources["CromwellAuthFailedAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("CromwellCourier", "CromwellAuthFailed")
