"""Fixtures for the monitor tests: Batch events as each Cromwell generation produces them, a fake
Cromwell, fake Batch tags and a call-counting DynamoDB wrapper. The fake ledger of the unit tests
is in `tests.support.monitor_fakes`."""

from __future__ import annotations

import base64
import json
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from courier.conventions import job_name_for_call, script_prefix
from courier.errors import CromwellNotFound
from local.stack.wiring import function_url_event

ACCOUNT = "123456789012"
REGION = "us-east-1"
QUEUE_ARN = f"arn:aws:batch:{REGION}:{ACCOUNT}:job-queue/cromwell-default"
T0 = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)


def ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


class Ctx:
    """A Lambda context for the Powertools decorators."""

    function_name = "monitor"
    memory_limit_in_mb = 512
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:monitor"
    aws_request_id = "req-1"
    function_version = "$LATEST"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


# -- Batch events ------------------------------------------------------------------------------


@dataclass
class Job:
    """One Batch job Cromwell submitted, and the generation-specific way it identifies itself."""

    call: str
    root: str
    shard: int = -1
    attempt: int = 1
    workflow_id: str | None = None  # sub-workflow's own id
    job_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    generation: int = 92  # 85 (nothing), 86-90 (callback only), 91 (script prefix), 92+ (tags)
    tags_in_event: bool = True  # Cromwell 92: tags on the event; False: only via ListTagsForResource
    vcpus: int = 2
    memory: int = 4096
    root_name: str = "wf"

    @property
    def arn(self) -> str:
        return f"arn:aws:batch:{REGION}:{ACCOUNT}:job/{self.job_id}"

    @property
    def task_id(self) -> str:
        shard = "None" if self.shard < 0 else f"Some_{self.shard}_"
        return f"{self.call}-{shard}-{self.attempt}"

    def tags(self) -> dict[str, str]:
        return {
            "cromwell-root-workflow-id": self.root,
            "cromwell-root-workflow-name": self.root_name,
            "cromwell-workflow-id": self.workflow_id or self.root,
            "cromwell-workflow-name": self.call.split(".")[0],
            "cromwell-task-id": self.task_id,
        }

    def script_url(self) -> str:
        prefix = script_prefix(self.root) if self.generation >= 91 else "scripts/"
        return f"s3://cromwell-scripts/{prefix}{uuid.uuid5(uuid.NAMESPACE_URL, self.job_id).hex}"

    def event(
        self,
        status: str,
        *,
        at: datetime | None = None,
        batch_attempts: int = 0,
        exit_code: int | None = None,
        reason: str | None = None,
        kind: str = "Batch Job State Change",
        log_group: str | None = None,
    ) -> dict[str, Any]:
        at = at or T0
        container: dict[str, Any] = {
            "image": "ubuntu:22.04",
            "command": ["/bin/bash", "-c", "..."],
            "volumes": [],
            "environment": [
                {"name": "BATCH_FILE_TYPE", "value": "script"},
                {"name": "BATCH_FILE_S3_URL", "value": self.script_url()},
            ],
            "mountPoints": [],
            "ulimits": [],
            "networkInterfaces": [],
            "resourceRequirements": [
                {"value": str(self.vcpus), "type": "VCPU"},
                {"value": str(self.memory), "type": "MEMORY"},
            ],
            "secrets": [],
        }
        if log_group:
            container["logConfiguration"] = {
                "logDriver": "awslogs",
                "options": {"awslogs-group": log_group},
                "secretOptions": [],
            }
        detail: dict[str, Any] = {
            "jobArn": self.arn,
            "jobName": job_name_for_call(self.call),
            "jobId": self.job_id,
            "jobQueue": QUEUE_ARN,
            "status": status,
            "attempts": [
                {
                    "container": {"exitCode": 137, "logStreamName": f"cromwell/default/{self.job_id}-{i}"},
                    "startedAt": ms(at) - 60_000,
                    "stoppedAt": ms(at) - 30_000,
                    "statusReason": "Host EC2 terminated",
                }
                for i in range(batch_attempts)
            ],
            "createdAt": ms(T0),
            "retryStrategy": {"attempts": 3, "evaluateOnExit": []},
            "dependsOn": [],
            "jobDefinition": f"arn:aws:batch:{REGION}:{ACCOUNT}:job-definition/cromwell_ubuntu_22_04_abc:1",
            "parameters": {},
            "container": container,
            "propagateTags": False,
            "platformCapabilities": [],
            "eksAttempts": [],
        }
        if reason:
            detail["statusReason"] = reason
        if status in ("STARTING", "RUNNING", "SUCCEEDED", "FAILED") and reason != "cromwell abort called":
            detail["startedAt"] = ms(at) - 1000
            container["logStreamName"] = f"cromwell/default/{self.job_id}"
        if status in ("SUCCEEDED", "FAILED"):
            detail["stoppedAt"] = ms(at)
            if exit_code is not None:
                container["exitCode"] = exit_code
        if self.generation >= 92 and self.tags_in_event:
            detail["tags"] = {"resourceArn": self.arn, **self.tags()}
        else:
            detail["tags"] = {"resourceArn": self.arn}
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": kind,
            "source": "aws.batch",
            "account": ACCOUNT,
            "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": REGION,
            "resources": [self.arn] + ([QUEUE_ARN] if kind != "Batch Job State Change" else []),
            "detail": detail,
        }


def lifecycle(job: Job, *, final: str = "SUCCEEDED", start: datetime = T0) -> list[dict[str, Any]]:
    """The events of one job from RUNNABLE to the end (Batch sends none for SUBMITTED)."""
    steps = ["PENDING", "RUNNABLE", "STARTING", "RUNNING", final]
    return [
        job.event(st, at=start + timedelta(seconds=i), exit_code=0 if final == "SUCCEEDED" else 1)
        for i, st in enumerate(steps)
    ]


def sqs_batch(events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """An SQS event as Lambda delivers it, one EventBridge event per message."""
    records = []
    for i, event in enumerate(events):
        body = json.dumps(event)
        records.append(
            {
                "messageId": str(uuid.uuid5(uuid.NAMESPACE_OID, f"{i}-{body}")),
                "receiptHandle": f"AQEB{i}",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1772445600000",
                    "SenderId": "AIDAEVENTBRIDGE",
                    "ApproximateFirstReceiveTimestamp": "1772445600001",
                },
                "messageAttributes": {},
                "md5OfBody": "0" * 32,
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:courier-batch-events",
                "awsRegion": REGION,
            }
        )
    return {"Records": records}


# -- Cromwell ----------------------------------------------------------------------------------


@dataclass
class Row:
    id: str
    status: str
    name: str | None = None
    submission: str | None = None
    parent_workflow_id: str | None = None


class FakeCromwell:
    """Answers like CromwellClient; records every call."""

    def __init__(self) -> None:
        self.status_of: dict[str, str] = {}
        self.outputs_of: dict[str, dict[str, Any]] = {}
        self.failed_of: dict[str, dict[str, Any]] = {}
        self.metadata_of: dict[str, dict[str, Any]] = {}
        #: what a metadata call with these includeKey values raises instead of answering
        self.metadata_errors: dict[tuple[str, ...], Exception] = {}
        self.names: dict[str, str] = {}
        self.calls: list[tuple[str, Any]] = []

    def status(self, workflow_id: str) -> str:
        self.calls.append(("status", workflow_id))
        if workflow_id not in self.status_of:
            raise CromwellNotFound("Unrecognized workflow ID", http_status=404)
        return self.status_of[workflow_id]

    def statuses(self, workflow_ids: Sequence[str]) -> dict[str, str]:
        ids = list(dict.fromkeys(workflow_ids))
        for start in range(0, len(ids), 100):
            self.calls.append(("query", len(ids[start : start + 100])))
        return {wid: self.status_of[wid] for wid in ids if wid in self.status_of}

    def outputs(self, workflow_id: str) -> dict[str, Any]:
        self.calls.append(("outputs", workflow_id))
        return dict(self.outputs_of.get(workflow_id, {}))

    def failed_jobs(self, workflow_id: str) -> dict[str, Any]:
        self.calls.append(("failed_jobs", workflow_id))
        return self.failed_of.get(workflow_id, {"id": workflow_id, "calls": {}})

    def metadata(
        self,
        workflow_id: str,
        include_keys: Sequence[str] = (),
        exclude_keys: Sequence[str] = (),
        *,
        expand_subworkflows: bool = False,
    ) -> dict[str, Any]:
        assert include_keys or exclude_keys, "metadata must always be filtered"
        self.calls.append(("metadata", (workflow_id, tuple(include_keys), tuple(exclude_keys))))
        if tuple(include_keys) in self.metadata_errors:
            raise self.metadata_errors[tuple(include_keys)]
        if workflow_id not in self.metadata_of and workflow_id not in self.status_of:
            raise CromwellNotFound("Unrecognized workflow ID", http_status=404)
        return self.metadata_of.get(workflow_id, {"id": workflow_id})

    def query(self, filters: Sequence[tuple[str, str]], *, page_size: int = 100) -> Iterable[Row]:
        self.calls.append(("query", tuple(filters)))
        wanted = {v for k, v in filters if k == "status"}
        for wid, st in self.status_of.items():
            if not wanted or st in wanted:
                yield Row(wid, st, self.names.get(wid, "wf"), "2026-03-02T09:00:00.000Z")

    def count(self, name: str) -> int:
        return sum(1 for call, _ in self.calls if call == name)


class FakeTags:
    def __init__(self, tags: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self.by_arn = dict(tags or {})
        self.calls = 0

    def tags(self, job_arn: str) -> Mapping[str, str]:
        self.calls += 1
        return self.by_arn.get(job_arn, {})


# -- DynamoDB call counting --------------------------------------------------------------------


class CountingClient:
    """Wraps a DynamoDB client (moto or MemoryDynamoDB) and counts calls by operation."""

    WRITES = frozenset({"put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item"})

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.counts: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._inner, name)
        if not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            self.counts[name] += 1
            return target(*args, **kwargs)

        return call

    @property
    def writes(self) -> int:
        return sum(n for op, n in self.counts.items() if op in self.WRITES)

    @property
    def reads(self) -> int:
        return sum(n for op, n in self.counts.items() if op not in self.WRITES)

    def reset(self) -> None:
        self.counts.clear()


# -- sample events in events/monitor/ ----------------------------------------------------------


def sample_id(name: str) -> str:
    """The ids used by the sample event files (uuid5 of a readable name)."""
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"courier-sample-{name}"))


ROOT92 = sample_id("root92")
SUB92 = sample_id("sub92")
ROOT91 = sample_id("root91")
ROOT85 = sample_id("root85")
ROOT_RETRY = sample_id("retry")
ROOT_ABORT = sample_id("abort")
ROOT_BLOCKED = sample_id("blocked")
CALLBACK_TOKEN = "local-callback-token-0123456789abcdef"
ROOT88 = sample_id("root88")


def function_url_request(
    body: Any,
    *,
    token: str | None = CALLBACK_TOKEN,
    b64: bool = False,
    length: int | None = None,
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Cromwell's callback as Lambda hands it to the function (a function URL request, payload
    format 2.0, every field Lambda sends). `body` is JSON-encoded unless it is text already;
    `length` overrides the Content-Length header."""
    raw = body if isinstance(body, str) else json.dumps(body)
    declared = str(len(raw.encode()) if length is None else length)
    sent = {"content-type": "application/json", "content-length": declared, **(headers or {})}
    query = f"token={token}" if token is not None else ""
    event = function_url_event(method, "/callback", query, sent, b"", HOST)
    event["body"] = base64.b64encode(raw.encode()).decode() if b64 else raw
    event["isBase64Encoded"] = b64
    return event


HOST = "abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws"
