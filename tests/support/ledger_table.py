"""The ledger table exactly as docs/ledger.md and template.yaml define it (keys, the sparse
`active` GSI with its INCLUDE projection, the `runs` GSI, TTL on `expires_at`, a
NEW_AND_OLD_IMAGES stream), for moto-backed tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from moto import mock_aws

from courier.ledger import schema as s

ACTIVE_PROJECTION = ["workflow_id", "status", "workflow_name", "submitted_at"]


def create_ledger_table(client: Any, name: str) -> None:
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": s.PK, "AttributeType": "S"},
            {"AttributeName": s.SK, "AttributeType": "S"},
            {"AttributeName": s.ACTIVE_PK, "AttributeType": "S"},
            {"AttributeName": s.ACTIVE_SK, "AttributeType": "S"},
            {"AttributeName": s.TYPE, "AttributeType": "S"},
            {"AttributeName": s.RUNS_SK, "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": s.PK, "KeyType": "HASH"},
            {"AttributeName": s.SK, "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": s.ACTIVE_INDEX,
                "KeySchema": [
                    {"AttributeName": s.ACTIVE_PK, "KeyType": "HASH"},
                    {"AttributeName": s.ACTIVE_SK, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ACTIVE_PROJECTION},
            },
            {
                "IndexName": s.RUNS_INDEX,
                "KeySchema": [
                    {"AttributeName": s.TYPE, "KeyType": "HASH"},
                    {"AttributeName": s.RUNS_SK, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(s.RUNS_PROJECTION)},
            },
        ],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        SSESpecification={"Enabled": True},
    )
    client.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": s.TTL_ATTR}
    )


@contextmanager
def moto_ledger(name: str, region: str = "us-east-1") -> Iterator[Any]:
    """A moto account holding only the ledger table `name`; its DynamoDB client."""
    with mock_aws():
        client = boto3.client("dynamodb", region_name=region)
        create_ledger_table(client, name)
        yield client


class ConflictOnce:
    """The moto client, whose next `fail` transactions are cancelled by a conflicting one."""

    def __init__(self, client: Any, fail: int) -> None:
        self.client = client
        self.fail = fail

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def transact_write_items(self, **kwargs: Any) -> Any:
        from botocore.exceptions import ClientError  # noqa: PLC0415

        if self.fail > 0:
            self.fail -= 1
            raise ClientError(
                {
                    "Error": {
                        "Code": "TransactionCanceledException",
                        "Message": "[None, TransactionConflict]",
                    },
                    "CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}],
                },
                "TransactWriteItems",
            )
        return self.client.transact_write_items(**kwargs)
