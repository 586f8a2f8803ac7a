"""Which deployment the command talks to: its ledger table, runs bucket, Cromwell and prices.

From, in this order: `--local` (the state file `make stack` writes), `--stack NAME` (the
CloudFormation stack's outputs and parameters), or the environment (`COURIER_STACK`, or
`COURIER_TABLE` and `COURIER_BUCKET` with `COURIER_CROMWELL_URL` and `COURIER_CA_BUNDLE`).

A Cromwell behind a proxy that asks for a credential is called with the one in the secret the
functions read (the stack's `CromwellAuthSecretArn`, the local stack's state, or
`COURIER_CROMWELL_AUTH_SECRET`, which overrides both), through the functions' own
`SecretCredentials`: read when Cromwell is first called, read again once when it is refused.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from courier.costs import Prices
from courier.cromwell import CromwellClient
from courier.cromwell_auth import credentials_from
from courier.secrets import SecretError, SecretReader, parse_reference, write_ca_bundle
from courier_cli.errors import AUTH_SECRET_ENV, ConsoleError

#: The file `make stack` writes at the repository's root while the local stack is up.
LOCAL_STATE_FILE: Final = ".courier-local.json"
LOCAL_STATE_ENV: Final = "COURIER_LOCAL_STATE"
#: The stack parameter the functions read Cromwell's credential from.
AUTH_SECRET_PARAMETER: Final = "CromwellAuthSecretArn"  # noqa: S105  # nosec B105: a parameter name
_LOCAL_CREDENTIALS: Final = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
_CONFIG: Final = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5, read_timeout=30)

_PRICE_PARAMETERS: Final = {
    "on_demand_vcpu_hour": "OnDemandVcpuHour",
    "on_demand_gb_hour": "OnDemandGbHour",
    "spot_vcpu_hour": "SpotVcpuHour",
    "spot_gb_hour": "SpotGbHour",
}


@dataclass(frozen=True, slots=True)
class Deployment:
    """What the command needs to know of a deployment (no clients: see `Connection`)."""

    table: str
    bucket: str
    described_as: str
    cromwell_url: str | None = None
    ca_bundle: str = ""
    region: str | None = None
    endpoint_url: str | None = None
    prices: Prices = field(default_factory=Prices)
    local: bool = False
    #: The secret holding Cromwell's credential (its ARN or name); empty: Cromwell asks for none.
    cromwell_auth_secret: str = ""


@dataclass(frozen=True, slots=True)
class Location:
    """Where to look, as the options and the environment say."""

    stack: str | None = None
    local: bool = False
    region: str | None = None
    profile: str | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    cwd: Path = field(default_factory=Path.cwd)


class Connection:
    """A deployment and the clients that reach it, built when first used."""

    def __init__(self, deployment: Deployment, session: boto3.session.Session) -> None:
        self.deployment = deployment
        self.session = session
        self._clients: dict[str, Any] = {}
        self._cromwell: CromwellClient | None = None
        self._secrets: SecretReader | None = None

    @property
    def region(self) -> str:
        return self.deployment.region or self.session.region_name or "us-east-1"

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(  # type: ignore[call-overload]
                service, endpoint_url=self.deployment.endpoint_url, config=_CONFIG
            )
        return self._clients[service]

    @property
    def secrets(self) -> SecretReader:
        """Reads the CA bundle and Cromwell's credential, as the functions do."""
        if self._secrets is None:
            self._secrets = SecretReader(
                ssm_client=self.client("ssm"), secrets_client=self.client("secretsmanager")
            )
        return self._secrets

    def cromwell(self) -> CromwellClient:
        """The Cromwell client the functions use (retries, TLS verified against the CA bundle, the
        credential of the deployment's secret, read again once when Cromwell refuses it)."""
        if self._cromwell is None:
            url = self.deployment.cromwell_url
            if not url:
                raise ConsoleError(
                    f"no Cromwell URL for {self.deployment.described_as}: set COURIER_CROMWELL_URL"
                )
            self._cromwell = CromwellClient(
                url,
                verify=self._verify(),
                credentials=credentials_from(self.secrets, self.deployment.cromwell_auth_secret),
                max_attempts=2,
                backoff_max=2.0,
            )
        return self._cromwell

    def _verify(self) -> bool | str:
        ref = self.deployment.ca_bundle
        if not ref:
            return True
        if parse_reference(ref) is None:
            if not Path(ref).is_file():
                raise ConsoleError(
                    f"the CA bundle {ref} is not a file nor an ssm:/ or secretsmanager: reference"
                )
            return ref
        try:
            pem = self.secrets.require(ref)
            return write_ca_bundle(pem, tempfile.gettempdir())
        except SecretError as exc:
            raise ConsoleError(
                f"cannot read Cromwell's CA bundle {ref}: {exc.reason}; check the stack's CromwellCaBundle"
                " (or COURIER_CA_BUNDLE) and that you may read it (docs/cli.md, Permissions)"
            ) from exc
        except ValueError as exc:
            raise ConsoleError(f"the CA bundle {ref} is not a PEM certificate: {exc}") from exc


def connect(where: Location) -> Connection:
    """Find the deployment `where` points at, or raise a `ConsoleError` that says what to do."""
    env = where.environ
    region = where.region or env.get("COURIER_REGION") or None
    if where.local:
        deployment = _local(where)
        session = boto3.session.Session(
            aws_access_key_id=_LOCAL_CREDENTIALS["aws_access_key_id"],
            aws_secret_access_key=_LOCAL_CREDENTIALS["aws_secret_access_key"],
            region_name=deployment.region,
        )
        return Connection(_with_auth_secret(deployment, env), session)
    session = boto3.session.Session(profile_name=where.profile or None, region_name=region)
    stack = where.stack or env.get("COURIER_STACK")
    if stack:
        return Connection(_with_auth_secret(_from_stack(stack, session), env), session)
    table, bucket = env.get("COURIER_TABLE"), env.get("COURIER_BUCKET")
    if table and bucket:
        deployment = Deployment(
            table=table,
            bucket=bucket,
            described_as=f"table {table}",
            cromwell_url=env.get("COURIER_CROMWELL_URL") or None,
            ca_bundle=env.get("COURIER_CA_BUNDLE", ""),
            region=session.region_name,
            endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
        )
        return Connection(_with_auth_secret(deployment, env), session)
    raise ConsoleError(
        "which deployment? pass --stack NAME (the CloudFormation stack), --local (for `make stack`),"
        " or set COURIER_STACK, or COURIER_TABLE and COURIER_BUCKET"
    )


def _with_auth_secret(deployment: Deployment, env: Mapping[str, str]) -> Deployment:
    """`COURIER_CROMWELL_AUTH_SECRET`, when set, names Cromwell's credential whatever the
    deployment says (a copy of the secret that people may read, say)."""
    named = env.get(AUTH_SECRET_ENV, "").strip()
    return replace(deployment, cromwell_auth_secret=named) if named else deployment


def _local(where: Location) -> Deployment:
    path = _find_state_file(where)
    if path is None:
        raise ConsoleError(
            f"no local stack found ({LOCAL_STATE_FILE} is missing): start one with `make stack`"
            " in the repository, and run courier from there"
        )
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        return Deployment(
            table=str(state["table"]),
            bucket=str(state["bucket"]),
            described_as="the local stack",
            cromwell_url=str(state["cromwell_url"]),
            region=str(state.get("region") or "us-east-1"),
            endpoint_url=str(state["aws_endpoint_url"]),
            local=True,
            cromwell_auth_secret=str(state.get("cromwell_auth_secret") or ""),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConsoleError(f"{path} is not a local stack's state ({exc}): restart `make stack`") from exc


def _find_state_file(where: Location) -> Path | None:
    named = where.environ.get(LOCAL_STATE_ENV)
    if named:
        return Path(named) if Path(named).is_file() else None
    for folder in (where.cwd, *where.cwd.parents):
        candidate = folder / LOCAL_STATE_FILE
        if candidate.is_file():
            return candidate
    return None


def _from_stack(name: str, session: boto3.session.Session) -> Deployment:
    if session.region_name is None:
        raise ConsoleError("no AWS region: pass --region or set AWS_REGION")
    cloudformation = session.client("cloudformation", config=_CONFIG)
    try:
        stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") == "ValidationError" and "does not exist" in str(error.get("Message", "")):
            raise ConsoleError(
                f"no stack {name} in {session.region_name}: check --stack and --region"
                " (`aws cloudformation list-stacks`)"
            ) from exc
        raise
    stack = stacks[0]
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs", [])}
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
    table, bucket = outputs.get("LedgerTableName"), outputs.get("RunsBucketName")
    if not table or not bucket:
        raise ConsoleError(
            f"stack {name} has no LedgerTableName/RunsBucketName outputs: is it a Cromwell Courier stack,"
            f" fully deployed (status {stack.get('StackStatus')})?"
        )
    prices: dict[str, float] = {}
    for attr, param in _PRICE_PARAMETERS.items():
        try:
            prices[attr] = float(parameters[param])
        except (KeyError, ValueError):
            continue
    return Deployment(
        table=table,
        bucket=bucket,
        described_as=f"stack {name}",
        cromwell_url=outputs.get("CromwellUrl") or parameters.get("CromwellUrl") or None,
        ca_bundle=outputs.get("CromwellCaBundle") or parameters.get("CromwellCaBundle") or "",
        region=session.region_name,
        prices=Prices(**prices),
        cromwell_auth_secret=parameters.get(AUTH_SECRET_PARAMETER, ""),
    )
