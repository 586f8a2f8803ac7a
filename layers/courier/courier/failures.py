"""What went wrong with a task, in words a person understands, from what Batch and Cromwell said.

The `courier` command and the run report classify with this module; the notify function still
carries its own copy (`notify.classify`) until it imports this one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class FailureKind(StrEnum):
    SPOT_INTERRUPTION = "spot_interruption"
    OUT_OF_MEMORY = "out_of_memory"
    CONTAINER_ERROR = "container_error"
    SCRIPT_FAILED = "script_failed"
    ABORTED = "aborted"
    CROMWELL_ERROR = "cromwell_error"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Classification:
    kind: FailureKind
    title: str
    explanation: str


_TEXT = {
    FailureKind.SPOT_INTERRUPTION: (
        "Spot interruption",
        "AWS reclaimed the Spot instance the task ran on; the task itself did nothing wrong. "
        "Cromwell's preemptible/maxRetries settings decide whether it is tried again.",
    ),
    FailureKind.OUT_OF_MEMORY: (
        "Out of memory",
        "The task used more memory than it asked for and was killed. Raise the task's `memory` "
        "runtime attribute.",
    ),
    FailureKind.CONTAINER_ERROR: (
        "Container or image error",
        "The container could not be pulled or started: check the `docker` image name, that it "
        "exists, and that the compute environment can reach the registry.",
    ),
    FailureKind.SCRIPT_FAILED: (
        "The task's script failed",
        "The command in the task exited with a non-zero code; its stderr says why.",
    ),
    FailureKind.ABORTED: (
        "Aborted",
        "The workflow was aborted, and Cromwell stopped the task.",
    ),
    FailureKind.CROMWELL_ERROR: (
        "Cromwell error",
        "Cromwell failed the workflow without a failed Batch job (inputs, WDL evaluation, file "
        "localisation or an engine error); the message says what.",
    ),
    FailureKind.UNKNOWN: (
        "Unknown cause",
        "Batch gave no reason Courier recognises; see the task's log stream.",
    ),
}

_SPOT = re.compile(r"Host EC2 \(instance [^)]*\) terminated", re.IGNORECASE)
_OOM = re.compile(r"OutOfMemory|Container killed due to memory usage|out of memory|\bOOM\b", re.IGNORECASE)
_CONTAINER = re.compile(
    r"CannotPullContainerError|CannotStartContainerError|ResourceInitializationError|"
    r"CannotInspectContainerError|CannotCreateContainerError|ContainerRuntimeError",
)
_ABORT = re.compile(r"cromwell abort called", re.IGNORECASE)
OOM_EXIT_CODE = 137


def of(kind: FailureKind) -> Classification:
    title, explanation = _TEXT[kind]
    return Classification(kind, title, explanation)


def classify(
    *,
    status_reason: str | None = None,
    exit_code: int | None = None,
    messages: tuple[str, ...] = (),
    has_batch_job: bool = True,
) -> Classification:
    """Classify one failure. `messages`: Cromwell's failure messages for the call, if any."""
    text = " | ".join([status_reason or "", *messages])
    rules = (
        (FailureKind.ABORTED, bool(_ABORT.search(text))),
        (FailureKind.SPOT_INTERRUPTION, bool(_SPOT.search(text))),
        (FailureKind.OUT_OF_MEMORY, exit_code == OOM_EXIT_CODE or bool(_OOM.search(text))),
        (FailureKind.CONTAINER_ERROR, bool(_CONTAINER.search(text))),
        (FailureKind.SCRIPT_FAILED, exit_code is not None and exit_code != 0),
        (FailureKind.CROMWELL_ERROR, not has_batch_job),
    )
    return of(next((kind for kind, matched in rules if matched), FailureKind.UNKNOWN))
