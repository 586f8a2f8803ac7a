"""The process that runs one workflow with miniwdl: `python -m local.engine.runner <spec.json> <fd>`.

Started by `LocalEngine`, one per workflow, so that miniwdl's process-wide state (its termination
flag, signal handlers, backend registry) belongs to that workflow alone and an abort is a SIGTERM.
It reports to the engine as JSON lines on the inherited file descriptor `<fd>`:

- `{"kind": "started", "name": <workflow name>}` once the WDL is loaded and its inputs accepted;
- `{"kind": "job", "state": ..., "frames": [...], "attempt": n, ...}` for each task attempt
  (see `container.LocalProcessContainer`), `"state": "CACHED"` for a call served from the call
  cache (no process, no Batch job);
- `{"kind": "finished", "status": "Succeeded", "outputs": {...}, "files": [...]}` or
  `{"kind": "finished", "status": "Failed", "error": "..."}` at the end.

Each frame of a job names one call on the way from the root workflow to the task:
`{"key": <run-dir path of the call>, "alias": <call name>, "shard": <scatter index or -1>,
"callee": <task or sub-workflow name>}`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import WDL
from WDL.runtime import config as wdl_config
from WDL.runtime import task_container

from local.engine import container as local_container
from local.engine.callcache import CachingMode, CallCache


class NotAllowedImport(Exception):
    pass


def _register_backend(cfg: wdl_config.Loader) -> None:
    """Make the local-process backend known to miniwdl's container registry, without entry points.

    `task_container.new()` loads the entry-point backends only while its registry is empty; filling
    it with the plugins miniwdl would have loaded plus ours keeps every backend available."""
    with task_container._backends_lock:
        if not task_container._backends:
            for name, cls in wdl_config.load_plugins(cfg, "container_backend"):
                task_container._backends[name] = cls
        task_container._backends[local_container.BACKEND_NAME] = local_container.LocalProcessContainer


def make_config(run_dir: Path, max_parallel_tasks: int) -> wdl_config.Loader:
    logger = logging.getLogger("local.engine.runner")
    overrides: dict[str, dict[str, Any]] = {
        "scheduler": {
            "container_backend": local_container.BACKEND_NAME,
            "task_concurrency": max(1, max_parallel_tasks),
            "fail_fast": False,  # True would SIGUSR1 this process; Cromwell's default is NoNewCalls
            "scatter_tag_max": 0,  # call dirs named call-<alias>-<index>, nothing more
        },
        "file_io": {
            "root": "/",
            "copy_input_files": True,
            "output_hardlinks": False,
            "delete_work": "false",
        },
        "call_cache": {"get": False, "put": False, "dir": str(run_dir / "_cache")},
        "download_cache": {"get": False, "put": False, "dir": str(run_dir / "_download_cache")},
        "task_runtime": {"cpu_max": -1, "memory_max": "-1", "memory_limit_multiplier": 0.0},
    }
    cfg = wdl_config.Loader(logger, filenames=[], overrides=overrides)
    _register_backend(cfg)
    return cfg


def load_document(main: Path, src_dir: Path) -> WDL.Tree.Document:
    """Parse and typecheck; imports resolve inside `src_dir` only, as Cromwell's DirectoryResolver."""
    root = src_dir.resolve()

    async def read_source(uri: str, path: list[str], importer: WDL.Tree.Document | None) -> Any:
        found = await WDL.read_source_default(uri, path, importer)
        resolved = Path(found.abspath).resolve()
        if resolved != root and root not in resolved.parents:
            raise NotAllowedImport(f"{uri} is not an allowed import path")
        return found

    return WDL.load(str(main), path=[str(src_dir)], read_source=read_source)


class Locator:
    """Maps a task run dir to the calls that lead to it (root workflow -> sub-workflows -> task)."""

    def __init__(self, run_dir: Path, workflow: WDL.Tree.Workflow) -> None:
        self.run_dir = run_dir.resolve()
        self.workflow = workflow

    @staticmethod
    def _calls(workflow: WDL.Tree.Workflow) -> dict[str, WDL.Tree.Call]:
        found: dict[str, WDL.Tree.Call] = {}

        def walk(nodes: list[Any]) -> None:
            for node in nodes:
                if isinstance(node, WDL.Tree.Call):
                    found[node.name] = node
                elif isinstance(node, WDL.Tree.WorkflowSection):
                    walk(list(node.body))

        walk(list(workflow.body))
        return found

    def _walk(self, host_dir: str) -> list[tuple[dict[str, Any], Any]]:
        parts = Path(host_dir).resolve().relative_to(self.run_dir).parts
        found: list[tuple[dict[str, Any], Any]] = []
        current: WDL.Tree.Workflow | None = self.workflow
        for depth, part in enumerate(parts):
            if current is None or not part.startswith("call-"):
                break
            alias, *indices = part[len("call-") :].split("-")
            call = self._calls(current).get(alias)
            callee = call.callee if call is not None else None
            frame = {
                "key": "/".join(parts[: depth + 1]),
                "alias": alias,
                "shard": int(indices[-1]) if indices and indices[-1].isdigit() else -1,
                "callee": getattr(callee, "name", alias),
            }
            found.append((frame, callee))
            current = callee if isinstance(callee, WDL.Tree.Workflow) else None
        return found

    def __call__(self, host_dir: str) -> list[dict[str, Any]]:
        return [frame for frame, _ in self._walk(host_dir)]

    def task(self, host_dir: str) -> WDL.Tree.Task | None:
        """The task the call at `host_dir` runs (None when the path names no task call)."""
        walked = self._walk(host_dir)
        callee = walked[-1][1] if walked else None
        return callee if isinstance(callee, WDL.Tree.Task) else None


def _files(outputs: WDL.Env.Bindings[WDL.Value.Base], run_dir: Path) -> list[dict[str, str]]:
    """Every File output with the task dir it was written in (for the S3 copy)."""
    files: list[dict[str, str]] = []
    root = run_dir.resolve()

    def note(value: WDL.Value.File | WDL.Value.Directory) -> str:
        if isinstance(value, WDL.Value.Directory):
            return str(value.value)  # directories are not copied to S3
        real = Path(os.path.realpath(value.value))
        try:
            parts = real.relative_to(root).parts
        except ValueError:
            return str(value.value)
        if "work" in parts:
            cut = parts.index("work")
            files.append(
                {
                    "value": str(value.value),
                    "local": str(real),
                    "task_dir": str(root.joinpath(*parts[:cut])),
                    "relative": "/".join(parts[cut + 1 :]),
                }
            )
        return str(value.value)

    WDL.Value.rewrite_env_paths(outputs, note)
    return files


def _error_text(exn: BaseException) -> str:
    chain: list[str] = []
    current: BaseException | None = exn
    while current is not None and len(chain) < 8:
        text = str(current).strip()
        if text and text not in chain:
            chain.append(text)
        current = current.__cause__ or current.__context__
    return ": ".join(chain) or type(exn).__name__


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    reporter = local_container.Reporter(int(argv[2]), step_seconds=float(spec.get("step_seconds", 0.0)))
    local_container.REPORTER = reporter
    local_container.become_subreaper()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    run_dir = Path(spec["run_dir"])
    try:
        try:
            asyncio.set_event_loop(asyncio.new_event_loop())
            doc = load_document(Path(spec["main"]), Path(spec["src_dir"]))
            if doc.workflow is None:
                raise ValueError("the WDL has no workflow")
            workflow = doc.workflow
            inputs = WDL.values_from_json(
                spec.get("inputs") or {},
                workflow.available_inputs,
                workflow.required_inputs,
                namespace=workflow.name,
            )
            cfg = make_config(run_dir, int(spec.get("max_parallel_tasks", 4)))
        except Exception as exn:
            reporter.send(
                {"kind": "finished", "status": "Failed", "stage": "input", "error": _error_text(exn)}
            )
            return 1
        locator = Locator(run_dir / "run", workflow)
        reporter.locate = locator
        reporter.task_of = locator.task
        caching = spec.get("call_caching") or {}
        reporter.caching = CachingMode.named(str(caching.get("mode") or ""))
        if caching.get("dir"):
            reporter.cache = CallCache(Path(str(caching["dir"])))
        reporter.send({"kind": "started", "name": workflow.name})
        try:
            _, outputs = WDL.runtime.run(
                cfg, workflow, inputs, run_dir=os.path.join(str(run_dir / "run"), ".")
            )
        except Exception as exn:
            reporter.send({"kind": "finished", "status": "Failed", "stage": "run", "error": _error_text(exn)})
            return 1
        reporter.send(
            {
                "kind": "finished",
                "status": "Succeeded",
                "outputs": WDL.values_to_json(outputs, namespace=workflow.name),
                "files": _files(outputs, run_dir / "run"),
            }
        )
        return 0
    finally:
        reporter.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
