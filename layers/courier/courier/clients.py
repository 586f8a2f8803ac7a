"""Construction of the real clients, once per container. Handlers call these at their first
invocation; tests never do (they inject fakes, stubs or moto-backed clients).

boto3 honours `AWS_ENDPOINT_URL` by itself, which is how `sam local invoke` and the local stack
point the functions at the emulated AWS.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from courier.cromwell import CromwellClient
from courier.secrets import SecretReader, write_ca_bundle

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)


@cache
def aws(service: str) -> Any:
    """One boto3 client per service and container, with standard retries (throttling included)."""
    return boto3.client(service, config=_CONFIG)  # type: ignore[call-overload]


def dynamodb() -> DynamoDBClient:
    client: DynamoDBClient = aws("dynamodb")
    return client


def s3() -> S3Client:
    client: S3Client = aws("s3")
    return client


@cache
def secret_reader() -> SecretReader:
    return SecretReader(ssm_client=aws("ssm"), secrets_client=aws("secretsmanager"))


def cromwell(
    base_url: str, ca_bundle_ref: str = "", *, max_attempts: int = 4, secrets: SecretReader | None = None
) -> CromwellClient:
    """A Cromwell client that verifies TLS, against the CA bundle behind `ca_bundle_ref` when one
    is configured (Cromwell's self-signed certificate, read through `secrets`, default the
    container's reader), else against the system's CAs."""
    verify: bool | str = True
    if ca_bundle_ref:
        verify = write_ca_bundle((secrets or secret_reader()).require(ca_bundle_ref))
    return CromwellClient(base_url, verify=verify, max_attempts=max_attempts)
