"""Helpers for tests of the local engine (`local.engine`): recorders for what it emits and
POSTs, the fixture WDLs, and Batch-event lookups."""

from __future__ import annotations

import io
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ENGINE_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "engine"
JOB_QUEUE_ARN = "arn:aws:batch:us-east-1:123456789012:job-queue/cromwell-default"
BUCKET = "cromwell-local"


class Recorder:
    """Collects `(first, second)` calls from engine threads: Batch events or callback POSTs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, first: str, second: dict[str, Any]) -> None:
        with self._lock:
            self._items.append((first, second))

    @property
    def items(self) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            return list(self._items)

    def details(self) -> list[dict[str, Any]]:
        return [detail for _, detail in self.items]

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 20.0) -> dict[str, Any]:
        """The first recorded item matching `predicate`, waiting for it up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            for detail in self.details():
                if predicate(detail):
                    return detail
            if time.monotonic() > deadline:
                raise AssertionError("nothing matching was recorded in time")
            time.sleep(0.05)


def wdl(name: str) -> str:
    return (ENGINE_FIXTURES / name).read_text(encoding="utf-8")


def dependencies_zip(*names: str) -> bytes:
    """A `workflowDependencies` ZIP holding fixture files at their paths under tests/fixtures/engine."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, (ENGINE_FIXTURES / name).read_text(encoding="utf-8"))
    return buffer.getvalue()


def jobs_by_task_id(details: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Batch event details grouped by their `cromwell-task-id` tag, in emission order."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for detail in details:
        grouped.setdefault(detail["tags"]["cromwell-task-id"], []).append(detail)
    return grouped
