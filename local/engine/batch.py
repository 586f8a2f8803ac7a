"""The AWS Batch side of a task attempt: job names, tags and `Batch Job State Change` details,
shaped as Cromwell 92 (AWS Batch backend, `tagResources = true`) causes them."""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

ABORT_REASON = "cromwell abort called"
EXIT_REASON = "Essential container in task exited"
DEFAULT_IMAGE = "ubuntu:latest"
LOG_GROUP = "/aws/batch/job"


def job_name_for_call(fqn: str) -> str:
    """Cromwell's Batch job name: the call name sanitised (`wf.task` -> `wf_task`), max 128 chars."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", fqn)[:128]


def now_ms() -> int:
    return int(time.time() * 1000)


def task_id_tag(fqn: str, shard: int, attempt: int) -> str:
    """`wf.task-None-1`, `wf.task-Some_3_-2`."""
    return f"{fqn}-{'None' if shard < 0 else f'Some_{shard}_'}-{attempt}"


def job_definition_name(image: str) -> str:
    """`cromwell_<image>_<sha1>`, the shared job definition Cromwell registers per image."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", image)[:80]
    return f"cromwell_{safe}_{hashlib.sha1(image.encode(), usedforsecurity=False).hexdigest()[:12]}"


def _memory_mib(memory: Any) -> str:
    if isinstance(memory, str):
        found = re.match(r"^\s*([0-9.]+)\s*([KMGT]i?B?|B)?\s*$", memory, re.IGNORECASE)
        if found:
            value = float(found.group(1))
            unit = (found.group(2) or "B").upper().rstrip("B").rstrip("I")
            scale = {"": 1 / 2**20, "K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}.get(unit, 1)
            return str(max(int(value * scale), 1))
    return "2048"


@dataclass
class BatchJob:
    """One Batch job: one attempt of one call."""

    region: str
    account: str
    queue_arn: str
    fqn: str
    shard: int
    attempt: int
    tags: dict[str, str]
    script_url: str
    image: str = DEFAULT_IMAGE
    vcpus: Any = None
    memory: Any = None
    job_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_at: int = field(default_factory=now_ms)
    started_at: int | None = None
    stopped_at: int | None = None
    log_stream: str | None = None

    @property
    def arn(self) -> str:
        return f"arn:aws:batch:{self.region}:{self.account}:job/{self.job_id}"

    @property
    def name(self) -> str:
        return job_name_for_call(self.fqn)

    @property
    def definition(self) -> str:
        return job_definition_name(self.image)

    def start(self) -> None:
        self.started_at = now_ms()
        self.log_stream = f"{self.definition}/default/{uuid.uuid4().hex}"

    def detail(
        self, status: str, *, exit_code: int | None = None, reason: str | None = None
    ) -> dict[str, Any]:
        """The event `detail` for `status` (RUNNABLE, STARTING, RUNNING, SUCCEEDED, FAILED)."""
        terminal = status in ("SUCCEEDED", "FAILED")
        if terminal and self.stopped_at is None:
            self.stopped_at = now_ms()
        container: dict[str, Any] = {
            "image": self.image,
            "command": ["/bin/bash", "-c", "..."],
            "volumes": [],
            "environment": [
                {"name": "BATCH_FILE_TYPE", "value": "script"},
                {"name": "BATCH_FILE_S3_URL", "value": self.script_url},
            ],
            "mountPoints": [],
            "ulimits": [],
            "networkInterfaces": [],
            "resourceRequirements": [
                {"value": str(self.vcpus if isinstance(self.vcpus, int) else 1), "type": "VCPU"},
                {"value": _memory_mib(self.memory), "type": "MEMORY"},
            ],
            "secrets": [],
        }
        if self.log_stream is not None and status in ("RUNNING", "SUCCEEDED", "FAILED"):
            container["logStreamName"] = self.log_stream
        if terminal and exit_code is not None:
            container["exitCode"] = exit_code
        detail: dict[str, Any] = {
            "jobArn": self.arn,
            "jobName": self.name,
            "jobId": self.job_id,
            "jobQueue": self.queue_arn,
            "status": status,
            "attempts": [],
            "createdAt": self.created_at,
            "retryStrategy": {"attempts": 1, "evaluateOnExit": []},
            "dependsOn": [],
            "jobDefinition": f"arn:aws:batch:{self.region}:{self.account}:job-definition/{self.definition}:1",
            "parameters": {},
            "container": container,
            "propagateTags": False,
            "platformCapabilities": [],
            "eksAttempts": [],
            "tags": {"resourceArn": self.arn, **self.tags},
        }
        if self.started_at is not None and status in ("RUNNING", "SUCCEEDED", "FAILED"):
            detail["startedAt"] = self.started_at
        if terminal:
            detail["stoppedAt"] = self.stopped_at
            if reason is not None:
                detail["statusReason"] = reason
            if self.started_at is not None:
                attempt_container: dict[str, Any] = {"logStreamName": self.log_stream}
                if exit_code is not None:
                    attempt_container["exitCode"] = exit_code
                detail["attempts"] = [
                    {
                        "container": attempt_container,
                        "startedAt": self.started_at,
                        "stoppedAt": self.stopped_at,
                        "statusReason": reason or EXIT_REASON,
                    }
                ]
        return detail
