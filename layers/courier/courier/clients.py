"""Construction of the real clients, once per container. Handlers call these at their first
invocation; tests never do (they inject fakes, stubs or moto-backed clients).

boto3 honours `AWS_ENDPOINT_URL` by itself, which is how `sam local invoke` and the local stack
point the functions at the emulated AWS.

The Cromwell client (and `requests` under it) and the secret reader are imported when first
built, so a function that builds neither (the Batch-events function) does not load them at its
cold start.
"""

from __future__ import annotations

import os
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any, Final

import boto3
from botocore.config import Config

from courier.observability import count_cromwell_call

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

    from courier.cromwell import CromwellClient
    from courier.secrets import SecretReader, SecretValue

#: The Secrets Manager secret (ARN or name) of Cromwell's credential; empty: Cromwell asks for none.
AUTH_SECRET_ENV: Final = "CROMWELL_AUTH_SECRET"  # noqa: S105  # nosec B105: a variable name

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
    from courier.secrets import SecretReader  # noqa: PLC0415  # see the module's docstring

    return SecretReader(ssm_client=aws("ssm"), secrets_client=aws("secretsmanager"))


def cromwell(
    base_url: str,
    ca_bundle_ref: str = "",
    *,
    max_attempts: int = 4,
    auth_secret: str | None = None,
    secrets: SecretReader | None = None,
) -> CromwellClient:
    """A Cromwell client that verifies TLS, against the CA bundle behind `ca_bundle_ref` when one
    is configured (Cromwell's self-signed certificate), else against the system's CAs; that
    sends the credential in the secret `auth_secret` (default: the `CROMWELL_AUTH_SECRET`
    environment variable, which the function's settings validated); and that counts its calls
    as metrics. Secrets are read through `secrets` (default: the container's `secret_reader()`),
    so a rotated CA bundle is used once its cached value expires, and a refused credential is
    read again."""
    from courier.cromwell import CromwellClient  # noqa: PLC0415  # see the module's docstring
    from courier.cromwell_auth import credentials_from  # noqa: PLC0415

    reader = secrets or secret_reader()
    verify: Any = True
    if ca_bundle_ref:
        ca_bundle(ca_bundle_ref, reader)  # a bundle that cannot be read or is not PEM fails here, at start

        def verify_with_current_bundle() -> str:
            return ca_bundle(ca_bundle_ref, reader)

        verify = verify_with_current_bundle
    secret = os.environ.get(AUTH_SECRET_ENV, "") if auth_secret is None else auth_secret
    return CromwellClient(
        base_url,
        verify=verify,
        max_attempts=max_attempts,
        credentials=credentials_from(reader, secret),
        on_call=count_cromwell_call,
    )


def ca_bundle(reference: str, secrets: SecretReader | None = None) -> str:
    """The path of the CA bundle behind `reference` as it is now (written once per content)."""
    return _bundle_file((secrets or secret_reader()).require(reference))


@lru_cache(maxsize=4)
def _bundle_file(pem: SecretValue) -> str:
    from courier.secrets import write_ca_bundle  # noqa: PLC0415

    return write_ca_bundle(pem)
