"""Environment of the notify function, validated once at cold start."""

from __future__ import annotations

from pydantic import Field, model_validator

from courier.costs import (
    DEFAULT_ON_DEMAND_GB_HOUR,
    DEFAULT_ON_DEMAND_VCPU_HOUR,
    DEFAULT_SPOT_GB_HOUR,
    DEFAULT_SPOT_VCPU_HOUR,
)
from courier.pipeline import DEFAULT_MAX_CHAIN_DEPTH
from courier.settings import BaseSettings


class NotifySettings(BaseSettings):
    topic_arn: str = Field(alias="TOPIC_ARN", pattern=r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[\w-]+$")
    slack_secret_arn: str = Field(
        default="", alias="SLACK_SECRET_ARN", description="Secrets Manager secret of the Slack set-up"
    )
    notify_submitted: bool = Field(default=False, alias="NOTIFY_SUBMITTED")
    on_demand_vcpu_hour: float = Field(default=DEFAULT_ON_DEMAND_VCPU_HOUR, alias="ON_DEMAND_VCPU_HOUR", ge=0)
    on_demand_gb_hour: float = Field(default=DEFAULT_ON_DEMAND_GB_HOUR, alias="ON_DEMAND_GB_HOUR", ge=0)
    spot_vcpu_hour: float = Field(default=DEFAULT_SPOT_VCPU_HOUR, alias="SPOT_VCPU_HOUR", ge=0)
    spot_gb_hour: float = Field(default=DEFAULT_SPOT_GB_HOUR, alias="SPOT_GB_HOUR", ge=0)
    aws_region: str = Field(default="us-east-1", alias="AWS_REGION")
    console_region: str = Field(default="", alias="CONSOLE_REGION", pattern=r"^$|^[a-z]{2}(-[a-z]+)+-\d$")
    stderr_tail_lines: int = Field(default=20, alias="STDERR_TAIL_LINES", ge=0, le=200)
    runs_bucket: str = Field(
        default="",
        alias="RUNS_BUCKET",
        description="Where run reports and receipts are written",
    )
    stderr_max_bytes: int = Field(default=65536, alias="STDERR_MAX_BYTES", ge=1024, le=1_048_576)
    max_chain_depth: int = Field(default=DEFAULT_MAX_CHAIN_DEPTH, alias="MAX_CHAIN_DEPTH", ge=1, le=50)
    #: At most one early-failure alert per batch, stuck alert per run, queue-blocked alert per
    #: queue in this many seconds (0: every alert goes out).
    alert_group_seconds: int = Field(default=300, alias="ALERT_GROUP_SECONDS", ge=0, le=86_400)

    @model_validator(mode="after")
    def _default_console_region(self) -> NotifySettings:
        if not self.console_region:
            object.__setattr__(self, "console_region", self.aws_region)
        return self
