"""A miniwdl container backend that runs each task command as a plain local process (no container).

Loaded only inside the runner process (`local.engine.runner`), never by the engine itself. The
"container" directory is the task's own run directory, so the in-container paths miniwdl hands to
the command are real host paths; inputs are copied into `work/_miniwdl_inputs/` as a container
mount would show them. Every attempt is reported to the engine through `Reporter` (RUNNABLE,
STARTING, RUNNING, then the exit), and an abort (miniwdl's termination flag, raised by the SIGTERM
the engine sends) kills the task's whole process group. When the workflow reads the call cache and
an earlier call has the same hashes (`local.engine.hashing`), its results are copied into this
call's directory and the attempt is reported `CACHED`: no process, no Batch job.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import json
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import WDL
from WDL.runtime import config as wdl_config
from WDL.runtime.task_container import TaskContainer

from local.engine.callcache import OFF, CacheEntry, CachingMode, CallCache, copy_results
from local.engine.hashing import HashingError, aggregate, call_hashes

BACKEND_NAME = "courier_local"
_NOTED_RUNTIME = (
    "docker",
    "container",
    "cpu",
    "memory",
    "continueOnReturnCode",
    "returnCodes",
    "failOnStderr",
)
_POLL_SECONDS = 0.05
_KILL_GRACE_SECONDS = 3.0


class Reporter:
    """JSON lines to the engine over an inherited pipe; one writer lock for all task threads."""

    def __init__(self, fd: int, *, step_seconds: float = 0.0) -> None:
        self._stream = os.fdopen(fd, "w", buffering=1, encoding="utf-8")
        self._lock = threading.Lock()
        self.step_seconds = step_seconds
        #: Set by the runner once the document is loaded: resolves a task run dir to call frames.
        self.locate: Callable[[str], list[dict[str, Any]]] = lambda host_dir: []
        #: Set by the runner: the task a task run dir's call runs.
        self.task_of: Callable[[str], WDL.Tree.Task | None] = lambda host_dir: None
        #: The workflow's call-caching mode and the cache it reads (see `local.engine.callcache`).
        self.caching: CachingMode = OFF
        self.cache: CallCache | None = None

    def send(self, message: dict[str, Any]) -> None:
        line = json.dumps(message, default=str)
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()

    def close(self) -> None:
        with self._lock:
            self._stream.close()


#: The reporter of this process (one workflow per runner process).
REPORTER: Reporter | None = None


def _exit_status(returncode: int) -> int:
    """A killed process reports -signal; a container (and a shell) reports 128 + signal."""
    return 128 - returncode if returncode < 0 else returncode


class LocalProcessContainer(TaskContainer):
    """Runs the task command with bash in the host, in the task's own work directory."""

    @classmethod
    def global_init(cls, cfg: wdl_config.Loader, logger: logging.Logger) -> None:
        return None

    @classmethod
    def detect_resource_limits(cls, cfg: wdl_config.Loader, logger: logging.Logger) -> dict[str, int]:
        pages = os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 0
        page_size = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 0
        return {"cpu": os.cpu_count() or 1, "mem_bytes": max(pages * page_size, 1 << 30)}

    def __init__(self, cfg: wdl_config.Loader, run_id: str, host_dir: str) -> None:
        super().__init__(cfg, run_id, host_dir)
        # No mount namespace: the paths the command sees are the host paths under host_dir.
        self.container_dir = host_dir
        self.requested: dict[str, Any] = {}

    def host_work_dir(self) -> str:
        # Always `work/`, so in-container paths stay valid on every attempt (see reset()).
        return os.path.join(self.host_dir, "work")

    def reset(self, logger: logging.Logger) -> None:
        previous = self.host_work_dir()
        if os.path.isdir(previous):
            os.rename(previous, os.path.join(self.host_dir, f"work_attempt{self.try_counter}"))
        super().reset(logger)

    def process_runtime(self, logger: logging.Logger, runtime_eval: dict[str, WDL.Value.Base]) -> None:
        for key in _NOTED_RUNTIME:
            value = runtime_eval.get(key)
            if value is not None:
                self.requested[key] = value.json
        super().process_runtime(logger, runtime_eval)

    def _run(self, logger: logging.Logger, terminating: Callable[[], bool], command: str) -> int:
        reporter = REPORTER
        if reporter is None:
            raise RuntimeError("the local container backend runs only inside local.engine.runner")
        attempt = self.try_counter
        script = os.path.join(self.host_dir, f"script{attempt if attempt > 1 else ''}")
        with open(script, "w", encoding="utf-8") as out:
            out.write("#!/bin/bash\n" + command)
        base: dict[str, Any] = {
            "kind": "job",
            "frames": reporter.locate(self.host_dir),
            "attempt": attempt,
        }
        runtime = {
            "docker": self.requested.get("container") or self.requested.get("docker"),
            "cpu": self.requested.get("cpu"),
            "memory": self.requested.get("memory"),
        }
        caching = self._call_caching(reporter, attempt)
        hit = self._cache_hit(reporter, caching)
        if hit is not None:
            reporter.send(
                {
                    **base,
                    "state": "CACHED",
                    "script": script,
                    "runtime": runtime,
                    "callCaching": caching,
                    "hit": dataclasses.asdict(hit),
                    "rc": hit.return_code,
                    "stdout": self.host_stdout_txt(),
                    "stderr": self.host_stderr_txt(),
                }
            )
            return hit.return_code
        reporter.send(
            {**base, "state": "RUNNABLE", "script": script, "runtime": runtime, "callCaching": caching}
        )
        if self._pause(reporter.step_seconds, terminating):
            reporter.send({**base, "state": "STARTING"})
        if self._pause(reporter.step_seconds, terminating):
            return self._launch(reporter, base, script, terminating)
        reporter.send({**base, "state": "ABORTED", "rc": None})
        return -1

    def _call_caching(self, reporter: Reporter, attempt: int) -> dict[str, Any]:
        """The call's caching as the engine reports it: the effective mode, and the hashes and
        their aggregate when the mode reads or writes (a hashing error turns caching off)."""
        mode = reporter.caching if attempt == 1 else reporter.caching.without_read()
        task = reporter.task_of(self.host_dir)
        if task is None or task.meta.get("volatile") is True:
            mode = OFF
        if not mode.active or task is None:
            return {"mode": mode.name}
        try:
            with open(os.path.join(self.host_dir, "inputs.json"), encoding="utf-8") as written:
                inputs = json.load(written)
            hashes = call_hashes(task, inputs, self.requested)
        except (HashingError, OSError, ValueError) as exn:
            return {"mode": OFF.name, "error": f"Hashing Error: {exn}"}
        return {"mode": mode.name, "hashes": hashes, "aggregated": aggregate(hashes)}

    def _cache_hit(self, reporter: Reporter, caching: dict[str, Any]) -> CacheEntry | None:
        """The earlier call whose results this call copies, or None (then the command runs)."""
        if (
            reporter.cache is None
            or "aggregated" not in caching
            or not CachingMode.named(caching["mode"]).read
        ):
            return None
        caching["looked_up"] = True
        hit = reporter.cache.lookup(str(caching["aggregated"]))
        if hit is None:
            return None
        try:
            copy_results(
                hit, Path(self.host_work_dir()), Path(self.host_stdout_txt()), Path(self.host_stderr_txt())
            )
        except OSError as exn:  # Cromwell falls back to running the job when a copy fails
            caching["copy_error"] = f"{hit.details}: {exn}"
            return None
        return hit

    @staticmethod
    def _pause(seconds: float, terminating: Callable[[], bool]) -> bool:
        """Wait `seconds` unless an abort arrives; False when aborting."""
        deadline = time.monotonic() + seconds
        while not terminating() and time.monotonic() < deadline:
            time.sleep(min(_POLL_SECONDS, max(deadline - time.monotonic(), 0.0)))
        return not terminating()

    def _launch(
        self, reporter: Reporter, base: dict[str, Any], script: str, terminating: Callable[[], bool]
    ) -> int:
        env = dict(os.environ)
        env.update({str(k): str(v) for k, v in (self.runtime_values.get("env") or {}).items()})
        env["TMPDIR"] = self.host_work_dir()
        with (
            open(self.host_stdout_txt(), "wb") as stdout,
            open(self.host_stderr_txt(), "wb") as stderr,
        ):
            proc = subprocess.Popen(
                ["/bin/bash", script],
                cwd=self.host_work_dir(),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                env=env,
                start_new_session=True,
            )
            reporter.send({**base, "state": "RUNNING", "pid": proc.pid})
            killed = False
            while True:
                try:
                    proc.wait(timeout=_POLL_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    if terminating() and not killed:
                        killed = True
                        _kill_group(proc)
        rc = _exit_status(proc.returncode)
        reporter.send(
            {
                **base,
                "state": "ABORTED" if killed or terminating() else "EXITED",
                "rc": rc,
                "stdout": self.host_stdout_txt(),
                "stderr": self.host_stderr_txt(),
            }
        )
        return rc


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the task's process group, SIGKILL it if it lingers (as `docker stop` would)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=_KILL_GRACE_SECONDS)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    # The task's own children were orphaned when bash died; the runner is their subreaper (see
    # become_subreaper), so reap what is left of the group before reporting the abort.
    deadline = time.monotonic() + _KILL_GRACE_SECONDS
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        with contextlib.suppress(ChildProcessError):
            os.waitid(os.P_PGID, proc.pid, os.WEXITED | os.WNOHANG)
        time.sleep(_POLL_SECONDS)


def become_subreaper() -> None:
    """Adopt the orphans of task processes (Linux), so a killed task leaves no zombie behind."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass
