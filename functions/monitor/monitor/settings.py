"""Environment of the three monitor functions, each validated when the function is put together
(`monitor.composition`)."""

from __future__ import annotations

from pydantic import Field, field_validator

from courier.settings import BaseSettings


class CromwellSettings(BaseSettings):
    cromwell_url: str = Field(
        alias="CROMWELL_URL", pattern=r"^https?://[^\s/]+", description="Cromwell base URL"
    )
    cromwell_ca_bundle: str = Field(
        default="",
        alias="CROMWELL_CA_BUNDLE",
        pattern=r"^$|^(ssm:/|secretsmanager:).+",
        description="reference to the PEM of Cromwell's certificate: ssm:/path or secretsmanager:<id>",
    )
    cromwell_max_attempts: int = Field(default=3, alias="CROMWELL_MAX_ATTEMPTS", ge=1, le=10)
    cromwell_auth_secret: str = Field(
        default="",
        alias="CROMWELL_AUTH_SECRET",
        pattern=r"^$|^(arn:aws[a-z-]*:secretsmanager:|secretsmanager:|ssm:/)\S+$",
        description="the Secrets Manager secret (ARN) of Cromwell's credential; empty: none",
    )

    @field_validator("cromwell_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")


class MonitorSettings(BaseSettings):
    """MonitorFunction: Batch events from SQS. It never calls Cromwell, so it names none."""

    track_all_workflows: bool = Field(default=False, alias="TRACK_ALL_WORKFLOWS")
    stuck_after_minutes: int = Field(default=60, alias="STUCK_AFTER_MINUTES", ge=1, le=10_080)


class ReconcilerSettings(MonitorSettings, CromwellSettings):
    """ReconcilerFunction: the scheduled sweep."""

    max_metadata_calls: int = Field(default=25, alias="RECONCILE_MAX_METADATA_CALLS", ge=0, le=1000)
    max_unattributed: int = Field(default=500, alias="RECONCILE_MAX_UNATTRIBUTED", ge=0, le=10_000)


class CallbackSettings(CromwellSettings):
    """CallbackFunction: Cromwell's workflow-state callback through a function URL."""

    callback_token_secret: str = Field(alias="CALLBACK_TOKEN_SECRET", min_length=1)
    track_all_workflows: bool = Field(default=False, alias="TRACK_ALL_WORKFLOWS")
    max_body_bytes: int = Field(
        default=256 * 1024, alias="CALLBACK_MAX_BODY_BYTES", ge=1024, le=6 * 1024 * 1024
    )

    @property
    def token_reference(self) -> str:
        """The secret as a SecretReader reference (a bare ARN or name means Secrets Manager)."""
        secret = self.callback_token_secret
        return secret if secret.startswith(("ssm:", "secretsmanager:")) else f"secretsmanager:{secret}"
