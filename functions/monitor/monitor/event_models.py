"""The Powertools parser models of a Batch event (`monitor.events` explains the shape), and the
reading of a validated event into a `BatchJobEvent`. Loaded by the first event parsed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)

from courier.errors import InvalidEvent
from courier.models import TaskStatus
from monitor.events import DEFAULT_LOG_GROUP, SCRIPT_URL_VARIABLE, BatchJobEvent, EventKind

# -- the parser models ---------------------------------------------------------------------------


def _or_default(default: Callable[[], Any]) -> WrapValidator:
    """An optional part of the detail: its value when it validates, else `default()`."""

    def validate(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError:
            return default()

    return WrapValidator(validate)


def _blank_is_none(value: Any) -> Any:
    return None if value == "" else value


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    return value


Text = Annotated[str | None, BeforeValidator(_blank_is_none), _or_default(lambda: None)]
Number = Annotated[float | None, BeforeValidator(_no_bool), _or_default(lambda: None)]
Whole = Annotated[int | None, BeforeValidator(_no_bool), _or_default(lambda: None)]


#: A list whose entries of an unexpected shape are None (and skipped by the reader).
type Entries[T] = Annotated[list[Annotated[T | None, _or_default(lambda: None)]], _or_default(list)]


class NameValue(BaseModel):
    name: str
    value: Text = None


class ResourceRequirement(BaseModel):
    type: Text = None
    value: Number = None


class LogConfiguration(BaseModel):
    logDriver: Text = None
    options: Annotated[dict[str, Any], _or_default(dict)] = Field(default_factory=dict)


class BatchContainer(BaseModel):
    vcpus: Number = None
    memory: Number = None
    exitCode: Whole = None
    logStreamName: Text = None
    environment: Entries[NameValue] = Field(default_factory=list)
    resourceRequirements: Entries[ResourceRequirement] = Field(default_factory=list)
    logConfiguration: Annotated[LogConfiguration | None, _or_default(lambda: None)] = None


Container = Annotated[BatchContainer, _or_default(BatchContainer)]


class BatchAttempt(BaseModel):
    container: Container = Field(default_factory=BatchContainer)
    statusReason: Text = None


class BatchJobDetail(BaseModel):
    """The part of DescribeJobs' JobDetail the monitor reads."""

    jobId: str = Field(min_length=1)
    status: TaskStatus
    jobArn: Text = None
    jobName: Text = None
    jobQueue: Text = None
    statusReason: Text = None
    attempts: Entries[BatchAttempt] = Field(default_factory=list)
    createdAt: Whole = None
    startedAt: Whole = None
    stoppedAt: Whole = None
    container: Container = Field(default_factory=BatchContainer)
    tags: Annotated[dict[str, Any] | None, _or_default(lambda: None)] = None


class BatchEventModel(EventBridgeModel):
    """An AWS Batch job event as EventBridge delivers it. The monitor reads `id`, `time`,
    `source`, `detail-type` and `detail`; the envelope's other fields may be absent (a hand-built
    replay; moto's EventBridge leaves out `account`) without refusing the event."""

    version: str = "0"
    account: str = ""
    region: str = ""
    resources: list[str] = Field(default_factory=list)
    source: Literal["aws.batch"]
    detail_type: EventKind = Field(alias="detail-type")
    detail: BatchJobDetail


def batch_job_event(event: Mapping[str, Any]) -> BatchJobEvent:
    """One EventBridge event (a JSON object) validated and read into a `BatchJobEvent`."""
    try:
        model: BatchEventModel = parse(event=dict(event), model=BatchEventModel)
    except ValidationError as exc:
        raise InvalidEvent(_problem(exc), event=event) from None
    detail = model.detail
    last = (detail.attempts[-1] if detail.attempts else None) or BatchAttempt()
    container, last_container = detail.container, last.container
    vcpus, memory = _resources(container)
    exit_code = container.exitCode if container.exitCode is not None else last_container.exitCode
    tags = detail.tags or {}
    return BatchJobEvent(
        kind=model.detail_type,
        event_id=model.id or detail.jobId,
        time=model.time if model.time.tzinfo else model.time.replace(tzinfo=UTC),
        job_id=detail.jobId,
        job_arn=detail.jobArn or "",
        job_name=detail.jobName or "",
        queue=_queue_name(detail.jobQueue or ""),
        status=detail.status,
        status_reason=detail.statusReason or last.statusReason,
        batch_attempts=len(detail.attempts),
        created_at=_epoch_ms(detail.createdAt),
        started_at=_epoch_ms(detail.startedAt),
        stopped_at=_epoch_ms(detail.stoppedAt),
        exit_code=exit_code,
        vcpus=vcpus,
        memory_mib=memory,
        log_group=_log_group(container),
        log_stream=container.logStreamName or last_container.logStreamName,
        script_url=_environment(container).get(SCRIPT_URL_VARIABLE),
        tags={str(k): str(v) for k, v in tags.items()},
        raw=event,
    )


def _problem(exc: ValidationError) -> str:
    """What is wrong, in one line: the first problems by field path (never the values)."""
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error["loc"]) or "event"
        parts.append(f"{where}: {error['msg']}")
    return "not a usable AWS Batch event: " + "; ".join(parts)


def _resources(container: BatchContainer) -> tuple[float | None, int | None]:
    vcpus, memory_value = container.vcpus, container.memory
    for req in container.resourceRequirements:
        if req is None:
            continue
        if req.type == "VCPU" and vcpus is None:
            vcpus = req.value
        elif req.type == "MEMORY" and memory_value is None:
            memory_value = req.value
    memory = int(memory_value) if memory_value is not None else None
    if vcpus is not None and vcpus.is_integer():
        vcpus = float(int(vcpus))
    return vcpus, memory


def _environment(container: BatchContainer) -> dict[str, str]:
    return {entry.name: entry.value or "" for entry in container.environment if entry is not None}


def _log_group(container: BatchContainer) -> str:
    config = container.logConfiguration
    if config is not None and config.logDriver == "awslogs":
        group = config.options.get("awslogs-group")
        if isinstance(group, str) and group:
            return group
    return DEFAULT_LOG_GROUP


def _queue_name(arn: str) -> str:
    return arn.rsplit("/", 1)[-1] if "/" in arn else arn


def _epoch_ms(value: int | None) -> datetime | None:
    if value is None or value <= 0:
        return None
    return datetime.fromtimestamp(value / 1000, tz=UTC)
