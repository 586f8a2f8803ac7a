"""The local engine: Cromwell's bookkeeping for the REST layer, runs delegated to miniwdl.

Each workflow runs in its own runner process (`local.engine.runner`), supervised by one thread
here that turns the runner's reports into call metadata, AWS Batch events (`emit`), S3 objects
(script, stdout, stderr, rc, output files) and, at the end, Cromwell's completion callback.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import mimetypes
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from local.cromwell_api.backend import (
    TERMINAL,
    IdInUse,
    NotOnHold,
    Workflow,
    call_root,
    call_stem,
    failure,
    iso,
)
from local.cromwell_api.rules import Submission
from local.engine.batch import ABORT_REASON, DEFAULT_IMAGE, EXIT_REASON, LOG_GROUP, BatchJob, task_id_tag
from local.engine.callcache import (
    BACKEND_NAME,
    OFF,
    CacheEntry,
    CachingMode,
    CallCache,
    metadata_block,
    mode_for,
)

_REPO_ROOT = Path(__file__).resolve().parents[2]
_MAIN_WDL = "__main__.wdl"
_OPTION_CALLBACK = "workflow_callback_uri"
_OPTION_SCRIPT_PREFIX = "aws_batch_script_bucket_prefix"
_CALLBACK_ATTEMPTS = 3
_STOP_GRACE_SECONDS = 10.0


@dataclass(frozen=True)
class EngineConfig:
    work_dir: Path
    bucket: str
    job_queue_arn: str
    region: str = "us-east-1"
    account: str = "123456789012"
    step_seconds: float = 0.0
    max_parallel_tasks: int = 4
    #: Cromwell's `call-caching.enabled` (false by default, as in Cromwell): when true, each
    #: workflow reads and writes the call cache unless its options say `read_from_cache` or
    #: `write_to_cache` false. The cache lives in `work_dir/_call_cache`, shared by every workflow.
    call_caching: bool = False


def _now() -> datetime:
    return datetime.now(UTC)


def _event(description: str, start: datetime, end: datetime | None = None) -> dict[str, Any]:
    """One of a call's `executionEvents`, named for the step of Cromwell's job actor it stands for."""
    event = {"description": description, "startTime": iso(start)}
    if end is not None:
        event["endTime"] = iso(end)
    return event


#: The steps every call goes through before Cromwell decides to read the cache or run the job.
_PREPARATION = ("Pending", "RequestingExecutionToken", "WaitingForValueStore", "PreparingJob")


def _default_post(url: str, body: dict[str, Any]) -> None:
    response = requests.post(url, json=body, timeout=10)
    response.raise_for_status()


def _job_failure(job: BatchJob, rc: int) -> str:
    where = "NA" if job.shard < 0 else str(job.shard)
    return (
        f"Job {job.fqn}:{where}:{job.attempt} exited with return code {rc} which has not been declared as a "
        "valid return code. See 'continueOnReturnCode' runtime attribute for more details."
    )


@dataclass
class _Attempt:
    """One task attempt as the engine tracks it (call, shard and attempt number are the job's)."""

    call_root: str
    stem: str
    entry: dict[str, Any]
    job: BatchJob
    pid: int | None = None
    done: bool = False
    #: The call's caching as the runner reported it: mode, hashes, aggregated hash.
    caching: dict[str, Any] = field(default_factory=dict)
    #: The call's run directory on this machine (miniwdl's), where its results are.
    task_dir: str = ""


@dataclass
class _Run:
    """One root workflow: its runner process, sub-workflows and task attempts."""

    root: Workflow
    submission: Submission
    dir: Path
    thread: threading.Thread | None = None
    proc: subprocess.Popen[bytes] | None = None
    abort_requested: bool = False
    subs: dict[str, Workflow] = field(default_factory=dict)
    sub_entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    attempts: dict[tuple[str, int], _Attempt] = field(default_factory=dict)
    #: Calls served from the call cache (no Batch job): run-dir key -> call root.
    cached: dict[str, str] = field(default_factory=dict)
    caching: CachingMode = OFF


class LocalEngine:
    """A `local.cromwell_api.backend.Backend` that really runs WDL. Thread-safe."""

    def __init__(
        self,
        config: EngineConfig,
        *,
        s3: Any,
        emit: Callable[[str, dict[str, Any]], None],
        post: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.config = config
        self._s3 = s3
        self._emit = emit
        self._post = post or _default_post
        self._lock = threading.RLock()
        self._idle = threading.Condition(self._lock)
        self._workflows: dict[str, Workflow] = {}
        self._runs: dict[str, _Run] = {}
        self._closed = False
        self.call_cache = CallCache(config.work_dir / "_call_cache")

    # -- Backend -----------------------------------------------------------------------------

    def create(self, submission: Submission) -> Workflow:
        (workflow,) = self.create_batch([submission])
        return workflow

    def create_batch(self, submissions: Sequence[Submission]) -> list[Workflow]:
        with self._lock:
            if self._closed:
                raise RuntimeError("the local engine is closed")
            workflows = [Workflow.submitted_as(s, _now()) for s in submissions]
            taken = [w.id for w in workflows if w.id in self._workflows]
            if taken:
                raise IdInUse(", ".join(taken))
            for workflow, submission in zip(workflows, submissions, strict=True):
                self._workflows[workflow.id] = workflow
                run = _Run(root=workflow, submission=submission, dir=self.config.work_dir / workflow.id)
                self._runs[workflow.id] = run
                if not submission.on_hold:
                    self._start(run)
            return [self._snapshot(w) for w in workflows]

    def release_hold(self, workflow_id: str) -> Workflow | None:
        with self._lock:
            workflow = self._workflows.get(workflow_id.lower())
            if workflow is None:
                return None
            run = self._runs.get(workflow.id)
            if run is None:  # a sub-workflow: never On Hold
                raise NotOnHold(workflow.id)
            workflow.release(_now())
            self._start(run)
            return self._snapshot(workflow)

    def _start(self, run: _Run) -> None:
        """Start the run's supervising thread. Holds the lock."""
        run.thread = threading.Thread(target=self._supervise, args=(run,), name=f"engine-{run.root.id[:8]}")
        run.thread.start()

    def find(self, workflow_id: str) -> Workflow | None:
        with self._lock:
            workflow = self._workflows.get(workflow_id.lower())
            return None if workflow is None else self._snapshot(workflow)

    def abort(self, workflow_id: str) -> str | None:
        with self._lock:
            workflow = self._workflows.get(workflow_id.lower())
            if workflow is None or workflow.status in TERMINAL:
                return None
            run = self._runs[workflow.root_id or workflow.id]
            run.abort_requested = True
            if workflow.status in ("On Hold", "Submitted"):
                # Nothing ran yet: Cromwell answers Aborted at once and sends no callback.
                run.root.move("Aborted", _now())
                self._idle.notify_all()
            else:
                run.root.move("Aborting", _now())
            proc = run.proc
            status = workflow.status
        if proc is not None and proc.poll() is None:
            self._signal(proc, signal.SIGTERM)
        return status

    def update_labels(self, workflow_id: str, labels: Mapping[str, str]) -> dict[str, str] | None:
        with self._lock:
            workflow = self._workflows.get(workflow_id.lower())
            if workflow is None:
                return None
            workflow.labels.update(labels)
            return workflow.all_labels()

    def workflows(self) -> list[Workflow]:
        with self._lock:
            return [self._snapshot(w) for w in self._workflows.values()]

    # -- lifecycle ---------------------------------------------------------------------------

    def wait_idle(self, timeout: float) -> bool:
        """True once every workflow is terminal (On Hold ones excepted: they never start)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while not self._is_idle():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
            return True

    def close(self) -> None:
        """Abort what runs and join every supervising thread; idempotent."""
        with self._lock:
            self._closed = True
            runs = list(self._runs.values())
        for run in runs:
            if run.root.status not in TERMINAL and run.root.status != "On Hold":
                self.abort(run.root.id)
        deadline = time.monotonic() + _STOP_GRACE_SECONDS
        for run in runs:
            if run.thread is not None:
                run.thread.join(max(deadline - time.monotonic(), 0.1))
        for run in runs:
            if run.thread is not None and run.thread.is_alive():
                self._kill_everything(run)
                run.thread.join(5.0)

    def __enter__(self) -> LocalEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the supervising thread --------------------------------------------------------------

    def _supervise(self, run: _Run) -> None:
        try:
            self._run(run)
        except Exception as exn:  # never leave a workflow hanging in Running
            with self._lock:
                if run.root.status not in TERMINAL:
                    run.root.failures = [failure("Workflow failed", f"{type(exn).__name__}: {exn}")]
                    self._conclude(run, "Aborted" if run.abort_requested else "Failed")
        finally:
            with self._lock:
                self._idle.notify_all()

    def _run(self, run: _Run) -> None:
        spec_path = self._prepare(run)
        read_fd, write_fd = os.pipe()
        log = open(run.dir / "runner.log", "wb")  # noqa: SIM115 - closed below
        try:
            with self._lock:
                if run.abort_requested:
                    os.close(read_fd)
                    os.close(write_fd)
                    return
                env = dict(os.environ)
                env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_REPO_ROOT), env.get("PYTHONPATH")]))
                run.proc = subprocess.Popen(
                    [sys.executable, "-m", "local.engine.runner", str(spec_path), str(write_fd)],
                    pass_fds=(write_fd,),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    env=env,
                    cwd=str(run.dir),
                )
            os.close(write_fd)
            finished: dict[str, Any] | None = None
            with os.fdopen(read_fd, "r", encoding="utf-8") as reports:
                for line in reports:
                    try:
                        message = json.loads(line)
                    except ValueError:
                        continue
                    if message.get("kind") == "finished":
                        finished = message
                    else:
                        self._on_report(run, message)
            run.proc.wait()
        finally:
            log.close()
        self._finalize(run, finished)

    def _prepare(self, run: _Run) -> Path:
        sub = run.submission
        src = run.dir / "src"
        src.mkdir(parents=True, exist_ok=True)
        inside = src.resolve()
        for name, data in (sub.dependencies or {}).items():
            target = (src / name).resolve()
            if inside not in target.parents:
                continue  # a path leaving the unzipped directory is never written
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        source = sub.workflow_source
        if source is None and sub.workflow_url is not None:
            response = requests.get(sub.workflow_url, timeout=30)
            response.raise_for_status()
            source = response.text
        (src / _MAIN_WDL).write_text(source or "", encoding="utf-8")
        run.caching = mode_for(self.config.call_caching, sub.options)
        spec = {
            "main": str(src / _MAIN_WDL),
            "src_dir": str(src),
            "run_dir": str(run.dir),
            "inputs": sub.inputs,
            "step_seconds": self.config.step_seconds,
            "max_parallel_tasks": self.config.max_parallel_tasks,
            "call_caching": {"mode": run.caching.name, "dir": str(self.call_cache.directory)},
        }
        spec_path = run.dir / "spec.json"
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        return spec_path

    # -- reports -----------------------------------------------------------------------------

    def _on_report(self, run: _Run, message: dict[str, Any]) -> None:
        if message.get("kind") == "started":
            with self._lock:
                run.root.name = str(message.get("name") or run.root.name)
                if run.root.status == "Submitted":
                    run.root.move("Running", _now())
                run.root.extra["workflowRoot"] = self._root_base(run)
            return
        if message.get("kind") != "job" or not message.get("frames"):
            return
        state = str(message.get("state"))
        if state == "RUNNABLE":
            self._job_created(run, message)
            return
        if state == "CACHED":
            self._call_cached(run, message)
            return
        frames = message["frames"]
        key = (frames[-1]["key"], int(message.get("attempt", 1)))
        with self._lock:
            attempt = run.attempts.get(key)
        if attempt is None:
            return
        if state == "STARTING":
            self._emit_state(attempt, "STARTING")
        elif state == "RUNNING":
            with self._lock:
                attempt.pid = message.get("pid")
                attempt.job.start()
            self._emit_state(attempt, "RUNNING")
        elif state in ("EXITED", "ABORTED"):
            self._job_ended(run, attempt, message, aborted=state == "ABORTED")

    def _root_base(self, run: _Run) -> str:
        return f"s3://{self.config.bucket}/cromwell-execution/{run.root.name}/{run.root.id}"

    def _workflow_for(self, run: _Run, frames: list[dict[str, Any]]) -> tuple[Workflow, str]:
        """The (sub-)workflow owning the last frame's call, and its S3 base; creates sub-workflows."""
        workflow, base = run.root, self._root_base(run)
        for frame in frames[:-1]:
            key = frame["key"]
            sub = run.subs.get(key)
            if sub is None:
                root = call_root(base, frame["alias"], frame["shard"])
                sub = Workflow(
                    id=str(uuid.uuid4()),
                    name=str(frame["callee"]),
                    status="Running",
                    submission=_now(),
                    start=_now(),
                    labels=dict(run.root.labels),
                    parent_id=workflow.id,
                    root_id=run.root.id,
                )
                sub.extra["workflowRoot"] = f"{root}/{sub.name}/{sub.id}"
                run.subs[key] = sub
                self._workflows[sub.id] = sub
                entry = {
                    "executionStatus": "Running",
                    "shardIndex": frame["shard"],
                    "attempt": 1,
                    "subWorkflowId": sub.id,
                    "callRoot": root,
                    "start": iso(_now()),
                }
                workflow.calls.setdefault(f"{workflow.name}.{frame['alias']}", []).append(entry)
                run.sub_entries[key] = entry
            workflow, base = sub, sub.extra["workflowRoot"]
        return workflow, base

    def _job_created(self, run: _Run, message: dict[str, Any]) -> None:
        frames = message["frames"]
        frame = frames[-1]
        number = int(message.get("attempt", 1))
        runtime = message.get("runtime") or {}
        script_text = ""
        script_path = message.get("script")
        if isinstance(script_path, str) and os.path.exists(script_path):
            script_text = Path(script_path).read_text(encoding="utf-8", errors="replace")
        with self._lock:
            workflow, fqn, shard, root, stem = self._locate(run, frames, number)
            previous = run.attempts.get((frame["key"], number - 1))
            if previous is not None and previous.entry.get("executionStatus") == "Failed":
                previous.entry["executionStatus"] = "RetryableFailure"
            options = run.submission.options or {}
            prefix = str(options.get(_OPTION_SCRIPT_PREFIX) or "scripts/")
            digest = hashlib.md5(script_text.encode(), usedforsecurity=False).hexdigest()
            script_url = f"s3://{self.config.bucket}/{prefix}{digest}"
            tags = dict(run.root.labels.items())
            tags.update(
                {
                    "cromwell-root-workflow-id": run.root.id,
                    "cromwell-root-workflow-name": run.root.name,
                    "cromwell-workflow-id": workflow.id,
                    "cromwell-workflow-name": workflow.name,
                    "cromwell-task-id": task_id_tag(fqn, shard, number),
                }
            )
            job = BatchJob(
                region=self.config.region,
                account=self.config.account,
                queue_arn=self.config.job_queue_arn,
                fqn=fqn,
                shard=shard,
                attempt=number,
                tags=tags,
                script_url=script_url,
                image=str(runtime.get("docker") or DEFAULT_IMAGE),
                vcpus=runtime.get("cpu"),
                memory=runtime.get("memory"),
            )
            entry: dict[str, Any] = {
                "executionStatus": "Running",
                "backendStatus": "Runnable",
                "shardIndex": shard,
                "attempt": number,
                "backend": "AWSBatch",
                "jobId": job.job_id,
                "callRoot": root,
                "stdout": f"{root}/{stem}-stdout.log",
                "stderr": f"{root}/{stem}-stderr.log",
                "runtimeAttributes": _runtime_attributes(job.image, runtime),
                "start": iso(_now()),
            }
            caching = dict(message.get("callCaching") or {})
            entry["callCaching"] = _caching_block(caching)
            entry["executionEvents"] = _opening_events(caching, _now())
            workflow.calls.setdefault(fqn, []).append(entry)
            attempt = _Attempt(root, stem, entry, job, caching=caching, task_dir=self._task_dir(run, frame))
            run.attempts[(frame["key"], number)] = attempt
        self._put(f"{root}/script", script_text.encode())
        self._put(script_url, script_text.encode())
        self._emit_state(attempt, "RUNNABLE")

    def _job_ended(self, run: _Run, attempt: _Attempt, message: dict[str, Any], *, aborted: bool) -> None:
        rc = message.get("rc")
        for stream in ("stdout", "stderr"):
            path = message.get(stream)
            if isinstance(path, str) and os.path.exists(path):
                self._put(attempt.entry[stream], Path(path).read_bytes())
        if not aborted and rc is not None:
            self._put(f"{attempt.call_root}/{attempt.stem}-rc.txt", f"{rc}\n".encode())
        if aborted:
            execution, batch, reason = "Aborted", "FAILED", ABORT_REASON
        elif rc == 0:
            execution, batch, reason = "Done", "SUCCEEDED", EXIT_REASON
        else:
            execution, batch, reason = "Failed", "FAILED", EXIT_REASON
        written = None
        if execution == "Done":
            job = attempt.job
            source = (job.fqn, job.shard, job.attempt, attempt.task_dir)
            written = self._write_cache(run, attempt.caching, source, int(rc or 0), message)
        with self._lock:
            attempt.done = True
            entry = attempt.entry
            entry["end"] = iso(_now())
            entry["executionStatus"] = execution
            self._close_caching(attempt, execution, written)
            entry["backendStatus"] = batch.capitalize()
            if rc is not None:
                entry["returnCode"] = rc
            if attempt.job.log_stream is not None:
                entry["logConfig:logGroupName"] = LOG_GROUP
                entry["logConfig:logStreamName"] = attempt.job.log_stream
            if execution == "Failed":
                entry["failures"] = [failure(_job_failure(attempt.job, int(rc)))]
        self._emit_state(attempt, batch, exit_code=rc, reason=reason)

    def _emit_state(
        self, attempt: _Attempt, status: str, *, exit_code: int | None = None, reason: str | None = None
    ) -> None:
        with self._lock:
            detail = attempt.job.detail(status, exit_code=exit_code, reason=reason)
            attempt.entry["backendStatus"] = status.capitalize()
        self._emit("Batch Job State Change", detail)

    # -- call caching ------------------------------------------------------------------------

    def _task_dir(self, run: _Run, frame: Mapping[str, Any]) -> str:
        return str((run.dir / "run").joinpath(*str(frame["key"]).split("/")))

    def _locate(
        self, run: _Run, frames: list[dict[str, Any]], number: int
    ) -> tuple[Workflow, str, int, str, str]:
        """The workflow, fqn, shard, call root and log stem of a call attempt. Holds the lock."""
        frame = frames[-1]
        workflow, base = self._workflow_for(run, frames)
        shard = int(frame["shard"])
        return (
            workflow,
            f"{workflow.name}.{frame['alias']}",
            shard,
            call_root(base, frame["alias"], shard, number),
            call_stem(frame["alias"], shard),
        )

    def _write_cache(
        self,
        run: _Run,
        caching: Mapping[str, Any],
        source: tuple[str, int, int, str],
        rc: int,
        message: Mapping[str, Any],
    ) -> CacheEntry | None:
        """Write a successful call (fqn, shard, attempt, run directory) to the cache when its mode
        writes; None when it does not."""
        aggregated = caching.get("aggregated")
        if not CachingMode.named(str(caching.get("mode"))).write or not aggregated:
            return None
        fqn, shard, number, task_dir = source
        entry = CacheEntry(
            workflow_id=run.root.id,
            fqn=fqn,
            shard=shard,
            attempt=number,
            return_code=rc,
            task_dir=task_dir,
            stdout=str(message.get("stdout") or ""),
            stderr=str(message.get("stderr") or ""),
            written_at=time.time(),
        )
        self.call_cache.write(str(aggregated), entry)
        return entry

    def _close_caching(self, attempt: _Attempt, execution: str, written: CacheEntry | None) -> None:
        """The call's caching metadata and last events once it ended. Holds the lock."""
        entry, caching, now = attempt.entry, attempt.caching, _now()
        events = entry.setdefault("executionEvents", [])
        for event in events:
            event.setdefault("endTime", iso(now))
        if written is not None:
            events.append(_event("UpdatingCallCache", now, now))
        if execution != "Aborted":
            events.append(_event("UpdatingJobStore", now, now))
        reuse = execution == "Done" and written is not None
        entry["callCaching"] = _caching_block(caching, allow_reuse=reuse, ended=execution != "Aborted")

    def _call_cached(self, run: _Run, message: dict[str, Any]) -> None:
        """A call served from the cache: its results copied, no Batch job, shown as Cromwell shows
        a cache hit (`callCaching.hit`, the `CallCacheReading` event, `executionStatus` Done)."""
        frames = message["frames"]
        frame = frames[-1]
        number = int(message.get("attempt", 1))
        rc = int(message.get("rc") or 0)
        hit = CacheEntry(**message["hit"])
        caching = dict(message.get("callCaching") or {})
        mode = CachingMode.named(str(caching.get("mode")))
        now = _now()
        with self._lock:
            workflow, fqn, shard, root, stem = self._locate(run, frames, number)
            run.cached[str(frame["key"])] = root
        source = (fqn, shard, number, self._task_dir(run, frame))
        written = self._write_cache(run, caching, source, rc, message)
        script_path = message.get("script")
        if isinstance(script_path, str) and os.path.exists(script_path):
            self._put(f"{root}/script", Path(script_path).read_bytes())
        for stream in ("stdout", "stderr"):
            path = message.get(stream)
            body = Path(path).read_bytes() if isinstance(path, str) and os.path.exists(path) else b""
            self._put(f"{root}/{stem}-{stream}.log", body)
        self._put(f"{root}/{stem}-rc.txt", f"{rc}\n".encode())
        events = [_event(step, now, now) for step in _PREPARATION]
        events.append(_event("CallCacheReading", now, now))
        if written is not None:
            events.append(_event("UpdatingCallCache", now, now))
        events.append(_event("UpdatingJobStore", now, now))
        runtime = message.get("runtime") or {}
        entry: dict[str, Any] = {
            "executionStatus": "Done",
            "shardIndex": shard,
            "attempt": number,
            "backend": BACKEND_NAME,
            "callRoot": root,
            "stdout": f"{root}/{stem}-stdout.log",
            "stderr": f"{root}/{stem}-stderr.log",
            "returnCode": rc,
            "runtimeAttributes": _runtime_attributes(str(runtime.get("docker") or DEFAULT_IMAGE), runtime),
            "callCaching": metadata_block(
                mode, hit=hit, allow_reuse=written is not None, hashes=caching.get("hashes")
            ),
            "executionEvents": events,
            "start": iso(now),
            "end": iso(now),
        }
        with self._lock:
            workflow.calls.setdefault(fqn, []).append(entry)

    # -- the end -----------------------------------------------------------------------------

    def _finalize(self, run: _Run, finished: dict[str, Any] | None) -> None:
        with self._lock:
            if run.root.status in TERMINAL:
                return  # aborted before it started: already Aborted, and no callback
        outputs: dict[str, Any] = {}
        if finished is not None and finished.get("status") == "Succeeded" and not run.abort_requested:
            outputs = self._publish_outputs(run, finished)
        with self._lock:
            # Jobs the runner never reported as ended (killed runner): FAILED like a terminated job.
            loose = [a for a in run.attempts.values() if not a.done]
        for attempt in loose:
            self._job_ended(run, attempt, {"rc": None}, aborted=True)
        with self._lock:
            if run.abort_requested:
                state = "Aborted"
            elif finished is not None and finished.get("status") == "Succeeded":
                state = "Succeeded"
                run.root.outputs = outputs
            else:
                state = "Failed"
                run.root.failures = self._failures(run, finished)
            self._conclude(run, state)

    def _conclude(self, run: _Run, state: str) -> None:
        """Close sub-workflows, then the root; POST the callback; wake wait_idle. Holds the lock."""
        for key, sub in run.subs.items():
            inside = [a for (k, _), a in run.attempts.items() if k.startswith(key + "/")]
            if state == "Aborted":
                sub_state = "Aborted"
            elif any(a.entry.get("executionStatus") == "Failed" or not a.done for a in inside):
                sub_state = "Failed"
            else:
                sub_state = "Succeeded"
            sub.move(sub_state, _now())
            entry = run.sub_entries.get(key)
            if entry is not None:
                entry["executionStatus"] = {"Succeeded": "Done", "Failed": "Failed"}.get(sub_state, "Aborted")
                entry["end"] = iso(_now())
        callback = (run.submission.options or {}).get(_OPTION_CALLBACK)
        if isinstance(callback, str) and callback:
            body = {
                "workflowId": run.root.id,
                "state": state,
                "outputs": dict(run.root.outputs),
                "failures": [dict(f) for f in run.root.failures],
            }
            self._lock.release()
            try:
                self._send_callback(callback, body)
            finally:
                self._lock.acquire()
        run.root.move(state, _now())
        self._idle.notify_all()

    def _send_callback(self, url: str, body: dict[str, Any]) -> None:
        for attempt in range(_CALLBACK_ATTEMPTS):
            try:
                self._post(url, body)
                return
            except Exception:
                if attempt + 1 < _CALLBACK_ATTEMPTS:
                    time.sleep(0.2 * (attempt + 1))

    def _failures(self, run: _Run, finished: dict[str, Any] | None) -> list[dict[str, Any]]:
        if finished is not None and finished.get("stage") == "input":
            return [
                failure("Workflow input processing failed", str(finished.get("error") or "unknown error"))
            ]
        messages = [
            f["message"]
            for a in run.attempts.values()
            if a.entry.get("executionStatus") == "Failed"
            for f in a.entry.get("failures", [])
        ]
        if not messages:
            error = (finished or {}).get("error") or "the workflow runner stopped without a result"
            messages = [str(error)]
        return [failure("Workflow failed", *messages)]

    def _publish_outputs(self, run: _Run, finished: dict[str, Any]) -> dict[str, Any]:
        """Copy output files to their call roots in S3 and answer with those s3:// paths."""
        replacements: dict[str, str] = {}
        run_root = (run.dir / "run").resolve()
        with self._lock:
            roots = {
                str(run_root.joinpath(*key.split("/"))): a.call_root for (key, _), a in run.attempts.items()
            }
            roots.update({str(run_root.joinpath(*key.split("/"))): root for key, root in run.cached.items()})
        for item in finished.get("files") or []:
            root = roots.get(item.get("task_dir", ""))
            if root is None:
                continue
            target = f"{root}/{item['relative']}"
            local = Path(item["local"])
            if local.is_file():
                self._put(target, local.read_bytes())
                replacements[item["value"]] = target

        def swap(value: Any) -> Any:
            if isinstance(value, str):
                return replacements.get(value, value)
            if isinstance(value, list):
                return [swap(v) for v in value]
            if isinstance(value, dict):
                return {k: swap(v) for k, v in value.items()}
            return value

        return {k: swap(v) for k, v in (finished.get("outputs") or {}).items()}

    # -- helpers -----------------------------------------------------------------------------

    def _put(self, uri: str, body: bytes) -> None:
        bucket, _, key = uri[len("s3://") :].partition("/")
        content_type = mimetypes.guess_type(key)[0] or "text/plain"
        self._s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)

    def _is_idle(self) -> bool:
        return all(w.status in TERMINAL or w.status == "On Hold" for w in self._workflows.values())

    @staticmethod
    def _snapshot(workflow: Workflow) -> Workflow:
        return replace(
            workflow,
            outputs=json.loads(json.dumps(workflow.outputs)),
            labels=dict(workflow.labels),
            calls={fqn: [dict(e) for e in entries] for fqn, entries in workflow.calls.items()},
            failures=[dict(f) for f in workflow.failures],
            extra=dict(workflow.extra),
        )

    @staticmethod
    def _signal(proc: subprocess.Popen[bytes], sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)

    def _kill_everything(self, run: _Run) -> None:
        """Last resort when a runner ignores SIGTERM: kill it and every task process group it started."""
        with self._lock:
            pids = [a.pid for a in run.attempts.values() if a.pid is not None and not a.done]
            proc = run.proc
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        if proc is not None and proc.poll() is None:
            self._signal(proc, signal.SIGKILL)


def _runtime_attributes(image: str, runtime: Mapping[str, Any]) -> dict[str, str]:
    return {
        "docker": image,
        "cpu": str(runtime.get("cpu") or 1),
        "memory": str(runtime.get("memory") or "2 GiB"),
    }


def _caching_block(
    caching: Mapping[str, Any], *, allow_reuse: bool | None = None, ended: bool = False
) -> dict[str, Any]:
    """A run call's `callCaching` metadata from what the runner reported: the mode, a cache miss
    once the cache was read (or why hashing failed), the hashes once the call ended."""
    mode = CachingMode.named(str(caching.get("mode")))
    block = metadata_block(
        mode,
        looked_up=bool(caching.get("looked_up")),
        allow_reuse=allow_reuse if ended else None,
        hashes=caching.get("hashes") if ended else None,
    )
    if caching.get("error"):
        block["hit"] = False
        block["result"] = str(caching["error"])
    return block


def _opening_events(caching: Mapping[str, Any], now: datetime) -> list[dict[str, Any]]:
    """A run call's events up to its job: preparation, reading the cache (a miss), running."""
    events = [_event(step, now, now) for step in _PREPARATION]
    if caching.get("looked_up"):
        events.append(_event("CallCacheReading", now, now))
    events.append(_event("RunningJob", now))
    return events
