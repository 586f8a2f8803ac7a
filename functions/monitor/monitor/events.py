"""Batch events parsed at the edge into typed values. Nothing past this module reads raw JSON.

An SQS message body is one EventBridge event, exactly as EventBridge delivered it: `source`
`aws.batch`, `detail-type` `Batch Job State Change` or `Batch Job Queue Blocked`, and a `detail`
shaped like DescribeJobs' JobDetail. It is validated with a Powertools parser model
(`monitor.event_models`, loaded by the first event parsed: the callback and the reconciler import
this module for `BatchJobEvent` and rarely parse a Batch event): the envelope, the job id and a
known status are required; the rest of the detail is read where it has the expected type and left
out where it has not (a field of an unexpected shape never loses the transition).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
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
    """One SQS message body (the JSON text of one EventBridge event)."""
    try:
        event = json.loads(body)
    except (TypeError, ValueError) as exc:
        raise InvalidEvent(f"SQS message body is not JSON: {exc}") from None
    return parse_event(event)


def parse_event(event: Any) -> BatchJobEvent:
    """One EventBridge event, already decoded from JSON."""
    if not isinstance(event, Mapping):
        raise InvalidEvent("EventBridge event is not a JSON object", event=event)
    from monitor.event_models import batch_job_event  # noqa: PLC0415 - pydantic models at first use

    return batch_job_event(event)
