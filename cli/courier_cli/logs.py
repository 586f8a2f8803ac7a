"""A task's stdout or stderr: from the run's execution folder in S3 (where Cromwell on AWS Batch
copies them, as its metadata says), else from the Batch job's CloudWatch log stream (stdout and
stderr together there)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from botocore.exceptions import ClientError

from courier.cromwell import CromwellClient
from courier.errors import CromwellAuthError, CromwellError
from courier.ledger.records import TaskView
from courier.links import DEFAULT_LOG_GROUP, split_s3_uri
from courier.models import TaskStatus
from courier_cli.errors import ConsoleError

_METADATA_KEYS: Final = ("jobId", "stdout", "stderr", "shardIndex", "attempt", "subWorkflowId")
#: Read at most this much of an S3 log (its end, with --tail).
MAX_LOG_BYTES: Final = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class TaskLog:
    task: TaskView
    stream: str
    source: str
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.task.job_id,
            "task": self.task.label,
            "stream": self.stream,
            "source": self.source,
            "text": self.text,
        }


def select_tasks(
    tasks: Iterable[TaskView], *, call: str | None, shard: int | None, failed: bool
) -> list[TaskView]:
    """The tasks the options name. `call` matches `wf.task` or its last part (`task`)."""
    chosen = []
    for task in tasks:
        name = task.call or task.job_name or ""
        if call is not None and call not in (name, name.rsplit(".", 1)[-1]):
            continue
        if shard is not None and task.shard != shard:
            continue
        if failed and task.status is not TaskStatus.FAILED:
            continue
        chosen.append(task)
    return sorted(chosen, key=lambda t: (t.call or "", t.shard, t.attempt or 1, t.job_id))


def _call_entries(metadata: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    calls = metadata.get("calls")
    if not isinstance(calls, Mapping):
        return
    for entries in calls.values():
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, Mapping):
                nested = entry.get("subWorkflowMetadata")
                if isinstance(nested, Mapping):
                    yield from _call_entries(nested)
                yield entry


class LogReader:
    """Reads task logs; the clients are injected (S3, CloudWatch Logs, Cromwell when reachable)."""

    def __init__(self, s3: Any, logs: Any, cromwell: CromwellClient | None) -> None:
        self.s3 = s3
        self.logs = logs
        self.cromwell = cromwell
        self._paths: dict[str, Mapping[str, Any]] | None = None
        self.cromwell_error: str | None = None

    def log_paths(self, workflow_id: str) -> Mapping[str, Mapping[str, Any]]:
        """jobId -> the call entry with its `stdout` and `stderr` S3 paths (sub-workflows included)."""
        if self._paths is None:
            self._paths = {}
            if self.cromwell is not None:
                try:
                    metadata = self.cromwell.metadata(workflow_id, _METADATA_KEYS, expand_subworkflows=True)
                except CromwellAuthError:
                    raise  # a setting to fix, not a Cromwell out of reach: say so rather than fall back
                except CromwellError as exc:
                    self.cromwell_error = str(exc)
                    metadata = {}
                for entry in _call_entries(metadata):
                    job = entry.get("jobId")
                    if isinstance(job, str):
                        self._paths[job] = entry
        return self._paths

    def read(self, workflow_id: str, task: TaskView, stream: str, tail: int | None) -> TaskLog:
        entry = self.log_paths(workflow_id).get(task.job_id, {})
        uri = entry.get(stream)
        if isinstance(uri, str) and (text := self._s3_text(uri, tail)) is not None:
            return TaskLog(task, stream, uri, text)
        if task.log_stream:
            group = task.log_group or DEFAULT_LOG_GROUP
            text = self._cloudwatch_text(group, task.log_stream, tail)
            if text is not None:
                return TaskLog(task, "stdout+stderr", f"cloudwatch:{group}/{task.log_stream}", text)
        where = f"no {stream} in S3" + (f" ({uri})" if isinstance(uri, str) else "")
        if self.cromwell_error:
            where += f", Cromwell's metadata unreadable ({self.cromwell_error})"
        raise ConsoleError(
            f"no log for {task.label}: {where}, and no CloudWatch log stream"
            + ("" if task.started_at else " (the task has not started)")
        )

    def _s3_text(self, uri: str, tail: int | None) -> str | None:
        parts = split_s3_uri(uri)
        if parts is None:
            return None
        bucket, key = parts
        try:
            body = self.s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=-{MAX_LOG_BYTES}")["Body"].read()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code == "InvalidRange":  # an empty object
                return ""
            if code in ("NoSuchKey", "404"):
                return None
            raise
        return _tail(body.decode("utf-8", errors="replace"), tail)

    def _cloudwatch_text(self, group: str, stream: str, tail: int | None) -> str | None:
        request: dict[str, Any] = {
            "logGroupName": group,
            "logStreamName": stream,
            "startFromHead": tail is None,
        }
        if tail is not None:
            request["limit"] = max(tail, 1)
        lines: list[str] = []
        try:
            while True:
                page = self.logs.get_log_events(**request)
                lines.extend(str(e.get("message", "")) for e in page.get("events", []))
                token = page.get("nextForwardToken")
                if tail is not None or not page.get("events") or token == request.get("nextToken"):
                    break
                request["nextToken"] = token
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None
            raise
        return _tail("\n".join(lines), tail)


def _tail(text: str, lines: int | None) -> str:
    if lines is None:
        return text
    kept = text.splitlines()[-lines:] if lines > 0 else []
    return "\n".join(kept) + ("\n" if kept else "")
