"""Batch events parsed at the edge into typed values. Nothing past this module reads raw JSON.

An SQS message body is one EventBridge event, exactly as EventBridge delivered it: `source`
`aws.batch`, `detail-type` `Batch Job State Change` or `Batch Job Queue Blocked`, and a `detail`
shaped like DescribeJobs' JobDetail.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from courier.errors import InvalidEvent
from courier.models import TaskStatus, task_order

DEFAULT_LOG_GROUP: Final = "/aws/batch/job"
SCRIPT_URL_VARIABLE: Final = "BATCH_FILE_S3_URL"


class EventKind(StrEnum):
    STATE_CHANGE = "Batch Job State Change"
    QUEUE_BLOCKED = "Batch Job Queue Blocked"


@dataclass(frozen=True, slots=True)
class BatchJobEvent:
    """What the monitor needs from one Batch event."""

    kind: EventKind
    event_id: str
    time: datetime
    job_id: str
    job_arn: str
    job_name: str
    queue: str
    status: TaskStatus
    status_reason: str | None
    batch_attempts: int
    created_at: datetime | None
    started_at: datetime | None
    stopped_at: datetime | None
    exit_code: int | None
    vcpus: float | None
    memory_mib: int | None
    log_group: str
    log_stream: str | None
    script_url: str | None
    #: `detail.tags`, when the event carries any (often absent or only `resourceArn`).
    tags: Mapping[str, str] = field(default_factory=dict)
    #: The event as delivered, kept for jobs that cannot be tied to a run yet.
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def order(self) -> int:
        return task_order(self.status, self.batch_attempts)


def parse_sqs_body(body: str) -> BatchJobEvent:
    try:
        event = json.loads(body)
    except (TypeError, ValueError) as exc:
        raise InvalidEvent(f"SQS message body is not JSON: {exc}") from None
    return parse_event(event)


def parse_event(event: Any) -> BatchJobEvent:
    if not isinstance(event, Mapping):
        raise InvalidEvent("EventBridge event is not a JSON object", event=event)
    if event.get("source") != "aws.batch":
        raise InvalidEvent(f"not an AWS Batch event (source {event.get('source')!r})", event=event)
    try:
        kind = EventKind(str(event.get("detail-type")))
    except ValueError:
        raise InvalidEvent(f"unexpected detail-type {event.get('detail-type')!r}", event=event) from None
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise InvalidEvent("event has no detail object", event=event)
    job_id = _str(detail.get("jobId"))
    if not job_id:
        raise InvalidEvent("event detail has no jobId", event=event)
    raw_status = _str(detail.get("status")) or ""
    try:
        status = TaskStatus(raw_status)
    except ValueError:
        raise InvalidEvent(f"unknown Batch job status {raw_status!r}", event=event) from None
    attempts = _list(detail.get("attempts"))
    container = _mapping(detail.get("container"))
    last_attempt = _mapping(attempts[-1]) if attempts else {}
    last_container = _mapping(last_attempt.get("container"))
    vcpus, memory = _resources(container)
    exit_code = _int(container.get("exitCode"))
    if exit_code is None:
        exit_code = _int(last_container.get("exitCode"))
    tags = detail.get("tags")
    return BatchJobEvent(
        kind=kind,
        event_id=_str(event.get("id")) or job_id,
        time=_iso_time(event.get("time")),
        job_id=job_id,
        job_arn=_str(detail.get("jobArn")) or "",
        job_name=_str(detail.get("jobName")) or "",
        queue=_queue_name(_str(detail.get("jobQueue")) or ""),
        status=status,
        status_reason=_str(detail.get("statusReason")) or _str(last_attempt.get("statusReason")),
        batch_attempts=len(attempts),
        created_at=_epoch_ms(detail.get("createdAt")),
        started_at=_epoch_ms(detail.get("startedAt")),
        stopped_at=_epoch_ms(detail.get("stoppedAt")),
        exit_code=exit_code,
        vcpus=vcpus,
        memory_mib=memory,
        log_group=_log_group(container),
        log_stream=_str(container.get("logStreamName")) or _str(last_container.get("logStreamName")),
        script_url=_environment(container).get(SCRIPT_URL_VARIABLE),
        tags={str(k): str(v) for k, v in tags.items()} if isinstance(tags, Mapping) else {},
        raw=event,
    )


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _resources(container: Mapping[str, Any]) -> tuple[float | None, int | None]:
    vcpus = _number(container.get("vcpus"))
    memory_value = _number(container.get("memory"))
    requirements = container.get("resourceRequirements")
    if isinstance(requirements, list):
        for req in requirements:
            if not isinstance(req, Mapping):
                continue
            kind = req.get("type")
            if kind == "VCPU" and vcpus is None:
                vcpus = _number(req.get("value"))
            elif kind == "MEMORY" and memory_value is None:
                memory_value = _number(req.get("value"))
    memory = int(memory_value) if memory_value is not None else None
    if vcpus is not None and vcpus.is_integer():
        vcpus = float(int(vcpus))
    return vcpus, memory


def _environment(container: Mapping[str, Any]) -> dict[str, str]:
    env = container.get("environment")
    out: dict[str, str] = {}
    if isinstance(env, list):
        for entry in env:
            if isinstance(entry, Mapping) and isinstance(entry.get("name"), str):
                out[entry["name"]] = str(entry.get("value") or "")
    return out


def _log_group(container: Mapping[str, Any]) -> str:
    config = container.get("logConfiguration")
    if isinstance(config, Mapping) and config.get("logDriver") == "awslogs":
        options = config.get("options")
        if isinstance(options, Mapping) and _str(options.get("awslogs-group")):
            return str(options["awslogs-group"])
    return DEFAULT_LOG_GROUP


def _queue_name(arn: str) -> str:
    return arn.rsplit("/", 1)[-1] if "/" in arn else arn


def _epoch_ms(value: Any) -> datetime | None:
    number = _int(value)
    if number is None or number <= 0:
        return None
    return datetime.fromtimestamp(number / 1000, tz=UTC)


def _iso_time(value: Any) -> datetime:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidEvent(f"event time {value!r} is not ISO 8601") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise InvalidEvent("event has no time")
