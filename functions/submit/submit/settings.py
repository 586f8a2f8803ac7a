"""Environment of the submit function, validated when the function is put together."""

from __future__ import annotations

from pydantic import Field, field_validator

from courier.pipeline import DEFAULT_MAX_CHAIN_DEPTH
from courier.settings import BaseSettings


class SubmitSettings(BaseSettings):
    cromwell_url: str = Field(
        alias="CROMWELL_URL", pattern=r"^https?://[^\s/]+", description="Cromwell base URL"
    )
    cromwell_ca_bundle: str = Field(
        default="",
        alias="CROMWELL_CA_BUNDLE",
        pattern=r"^$|^(ssm:/|secretsmanager:).+",
        description="reference to the PEM of Cromwell's certificate: ssm:/path or secretsmanager:<id>",
    )
    check_s3_inputs: bool = Field(default=True, alias="CHECK_S3_INPUTS")
    max_s3_checks: int = Field(default=200, alias="MAX_S3_CHECKS", ge=0, le=5000)
    wdl_wait_seconds: float = Field(default=60, alias="WDL_WAIT_SECONDS", ge=0, le=600)
    poll_seconds: float = Field(default=5, alias="WDL_POLL_SECONDS", gt=0, le=60)
    max_file_bytes: int = Field(default=1_048_576, alias="MAX_FILE_BYTES", ge=1024, le=50 * 1_048_576)
    batch_window_seconds: int = Field(
        default=0,
        alias="BATCH_WINDOW_SECONDS",
        ge=0,
        le=3600,
        description="inputs files dropped into one folder within this many seconds form one batch; 0: off",
    )
    callback_url: str = Field(default="", alias="CALLBACK_URL", pattern=r"^$|^https?://")
    callback_token_secret: str = Field(default="", alias="CALLBACK_TOKEN_SECRET")
    max_chain_depth: int = Field(
        default=DEFAULT_MAX_CHAIN_DEPTH,
        alias="MAX_CHAIN_DEPTH",
        ge=1,
        le=50,
        description="the most steps a pipeline of runs (courier_next) may have",
    )
    cromwell_max_attempts: int = Field(default=4, alias="CROMWELL_MAX_ATTEMPTS", ge=1, le=10)
    cromwell_auth_secret: str = Field(
        default="",
        alias="CROMWELL_AUTH_SECRET",
        pattern=r"^$|^(arn:aws[a-z-]*:secretsmanager:|secretsmanager:|ssm:/)\S+$",
        description="the Secrets Manager secret (ARN) of Cromwell's credential; empty: none",
    )

    @property
    def token_reference(self) -> str:
        """The callback token secret as a SecretReader reference (a bare ARN or name means
        Secrets Manager)."""
        secret = self.callback_token_secret
        return secret if secret.startswith(("ssm:", "secretsmanager:")) else f"secretsmanager:{secret}"

    @field_validator("cromwell_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")
