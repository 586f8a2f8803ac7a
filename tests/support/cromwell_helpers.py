"""Helpers for tests that talk to the local Cromwell-compatible server."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from courier.cromwell import SubmitRequest
from local.cromwell_api import CromwellTestServer

HELLO_WDL = """version 1.0

workflow hello {
  input { String who }
  call greet { input: who = who }
  output { String greeting = greet.out }
}

task greet {
  input { String who }
  command <<< echo "hello ~{who}" >>>
  output { String out = read_string(stdout()) }
  runtime { docker: "ubuntu:24.04" }
}
"""


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def submit_request(
    workflow_id: str | None = None,
    *,
    inputs: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
    **overrides: Any,
) -> SubmitRequest:
    """A valid submission of HELLO_WDL; keyword arguments override SubmitRequest fields."""
    fields: dict[str, Any] = {
        "workflow_source": HELLO_WDL,
        "workflow_inputs": json.dumps(dict(inputs or {"hello.who": "world"})),
        "requested_workflow_id": workflow_id or str(uuid.uuid4()),
        "labels": json.dumps(dict(labels)) if labels is not None else None,
        "workflow_type_version": "1.0",
    }
    fields.update(overrides)
    return SubmitRequest(**fields)


def contract_problems(server: CromwellTestServer) -> list[str]:
    """Every answer the server gave (injected faults aside) checked against Cromwell's spec."""
    problems: list[str] = []
    for entry in server.requests:
        if entry.injected or entry.operation is None:
            continue
        for problem in server.app.spec.response_problems(entry.operation, entry.status, entry.response):
            problems.append(f"{entry.method} {entry.path}: {problem}")
    return problems
