"""The submit function against moto (S3, DynamoDB) and the Cromwell-compatible local server.

`SubmitWorld` holds a runs bucket (versioned or not), a data bucket for `s3://` inputs, the ledger
table, and a Cromwell server; it uploads files the way a user's `aws s3 cp` would, builds the
EventBridge "Object Created" event S3 would emit for each upload, and invokes the real handler
with the real adapters wired to those clients.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeDeserializer
from moto import mock_aws

from courier.conventions import receipt_key
from courier.cromwell import CromwellClient
from courier.ledger import schema as s
from local.cromwell_api import CromwellTestServer, InMemoryBackend
from submit.composition import compose
from submit.handler import lambda_handler
from submit.service import SubmitService
from submit.settings import SubmitSettings
from tests.support.ledger_table import create_ledger_table

REGION = "us-east-1"
ACCOUNT = "123456789012"
TABLE = "courier-ledger"
RUNS_BUCKET = "courier-runs"
DATA_BUCKET = "courier-test-data"
WDL_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "wdl"

_sequencer = itertools.count(0x0062A1B3C4D5E6F700)


def object_created_event(
    bucket: str,
    key: str,
    *,
    size: int,
    version_id: str | None = None,
    sequencer: str | None = None,
    etag: str = "d41d8cd98f00b204e9800998ecf8427e",
    requester: str = ACCOUNT,
    event_id: str | None = None,
) -> dict[str, Any]:
    """The EventBridge event S3 emits for one PutObject (see the reference's event shapes)."""
    obj: dict[str, Any] = {"key": key, "size": size, "etag": etag}
    if version_id is not None:
        obj["version-id"] = version_id
    if sequencer is not None:
        obj["sequencer"] = sequencer
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": ACCOUNT,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": obj,
            "request-id": uuid.uuid4().hex[:16].upper(),
            "requester": requester,
            "source-ip-address": "10.0.12.34",
            "reason": "PutObject",
        },
    }


def on_failure_record(event: Mapping[str, Any], error: str = "CromwellUnavailable") -> dict[str, Any]:
    """What Lambda's on-failure destination puts on the parking queue after the last retry."""
    return {
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat(),
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:courier-submit:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        },
        "requestPayload": dict(event),
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": "Cromwell could not be reached", "errorType": error},
    }


class FakeContext:
    function_name = "courier-submit"
    memory_limit_in_mb = 512
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:courier-submit"
    aws_request_id = "c0ffee00-0000-4000-8000-000000000000"


@dataclass
class SubmitWorld:
    s3: Any
    dynamodb: Any
    server: CromwellTestServer
    versioned: bool = True
    env: dict[str, str] = field(default_factory=dict)
    sleeps: list[float] = field(default_factory=list)
    service_options: dict[str, Any] = field(default_factory=dict)

    @property
    def backend(self) -> InMemoryBackend:
        backend: InMemoryBackend = self.server.backend
        return backend

    # -- uploads ---------------------------------------------------------------------------------

    def put(self, key: str, body: bytes | str, *, bucket: str = RUNS_BUCKET) -> dict[str, Any]:
        """Upload one object; return the event S3 would emit for it."""
        data = body.encode() if isinstance(body, str) else body
        answer = self.s3.put_object(Bucket=bucket, Key=key, Body=data)
        version = answer.get("VersionId") if self.versioned else None
        return object_created_event(
            bucket,
            key,
            size=len(data),
            version_id=version,
            sequencer=f"{next(_sequencer):018X}",
            etag=answer["ETag"].strip('"'),
        )

    def put_folder(self, prefix: str, files: Mapping[str, bytes | str]) -> dict[str, dict[str, Any]]:
        return {name: self.put(prefix + name, body) for name, body in files.items()}

    def put_fixture(self, name: str, prefix: str) -> dict[str, dict[str, Any]]:
        """Upload a folder of tests/fixtures/wdl, WDL first, inputs files last."""
        root = WDL_FIXTURES / name
        paths = sorted(root.rglob("*"), key=lambda p: (p.name.endswith(".inputs.json"), str(p)))
        return {
            str(p.relative_to(root)): self.put(prefix + str(p.relative_to(root)), p.read_bytes())
            for p in paths
            if p.is_file()
        }

    # -- the function ---------------------------------------------------------------------------

    def settings(self, **overrides: str) -> SubmitSettings:
        values = {
            "LEDGER_TABLE": TABLE,
            "CROMWELL_URL": self.server.url,
            "WDL_WAIT_SECONDS": "0",
            **self.env,
            **overrides,
        }
        return SubmitSettings.model_validate(values)

    def service(self, *, callback_uri: str | None = None, **overrides: str) -> SubmitService:
        client = CromwellClient(self.server.url, max_attempts=3, sleep=self.sleeps.append, timeout=(1, 2))
        return compose(
            self.settings(**overrides),
            s3=self.s3,
            dynamodb=self.dynamodb,
            cromwell=client,
            callback_uri=callback_uri,
            **self.service_options,
        )

    def invoke(self, event: Any, service: SubmitService | None = None) -> dict[str, Any]:
        result: dict[str, Any] = lambda_handler(event, FakeContext(), service=service or self.service())  # type: ignore[arg-type]
        return result

    # -- what the user and the operator see -----------------------------------------------------

    def receipt(self, key: str, *, bucket: str = RUNS_BUCKET) -> dict[str, Any]:
        body = self.s3.get_object(Bucket=bucket, Key=receipt_key(key))["Body"].read()
        receipt: dict[str, Any] = json.loads(body)
        return receipt

    def has_receipt(self, key: str, *, bucket: str = RUNS_BUCKET) -> bool:
        listed = self.s3.list_objects_v2(Bucket=bucket, Prefix=receipt_key(key))
        return any(o["Key"] == receipt_key(key) for o in listed.get("Contents", []))

    def ledger_items(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        deserializer = TypeDeserializer()
        for page in self.dynamodb.get_paginator("scan").paginate(TableName=TABLE):
            for raw in page["Items"]:
                items.append({k: deserializer.deserialize(v) for k, v in raw.items()})
        return items

    def runs(self) -> list[dict[str, Any]]:
        return [i for i in self.ledger_items() if i[s.SK] == s.RUN_SK]


@pytest.fixture
def aws() -> Iterator[tuple[Any, Any]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        create_ledger_table(dynamodb, TABLE)
        s3.create_bucket(Bucket=DATA_BUCKET)
        yield s3, dynamodb


def make_world(aws: tuple[Any, Any], server: CromwellTestServer, *, versioned: bool = True) -> SubmitWorld:
    s3, dynamodb = aws
    s3.create_bucket(Bucket=RUNS_BUCKET)
    if versioned:
        s3.put_bucket_versioning(Bucket=RUNS_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return SubmitWorld(s3=s3, dynamodb=dynamodb, server=server, versioned=versioned)


@pytest.fixture
def world(aws: tuple[Any, Any], cromwell_server: CromwellTestServer) -> SubmitWorld:
    return make_world(aws, cromwell_server)


@pytest.fixture
def unversioned_world(aws: tuple[Any, Any], cromwell_server: CromwellTestServer) -> SubmitWorld:
    return make_world(aws, cromwell_server, versioned=False)


def data_objects(s3: Any, uris: list[str]) -> None:
    """Create the `s3://` objects an inputs file names (so the existence check passes)."""
    for uri in uris:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        s3.put_object(Bucket=bucket, Key=key, Body=b"@r1\nACGT\n+\nFFFF\n")


def s3_uris(value: Any) -> Iterator[str]:
    if isinstance(value, str) and value.startswith("s3://"):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from s3_uris(item)
    elif isinstance(value, list):
        for item in value:
            yield from s3_uris(item)


Invoke = Callable[[dict[str, Any]], dict[str, Any]]
