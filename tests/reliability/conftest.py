"""Fixtures of the reliability suites, and the counts they record.

Every scenario asks for `tally` and records what it saw (events delivered, Cromwell submissions,
ledger items, messages sent). With `COURIER_RELIABILITY_COUNTS=<file>` in the environment, the
counts of the scenarios that passed are written to that JSON file at the end of the session;
`python -m tests.reliability` (`make reliability`) does that and renders docs/reliability.md.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.cromwell_api import CromwellTestServer
from tests.reliability.harness import SubmitWorld
from tests.support.submit_fixtures import make_world

COUNTS_ENV = "COURIER_RELIABILITY_COUNTS"
_COUNTS: dict[str, dict[str, Any]] = {}
_PASSED: set[str] = set()


class Tally:
    """Per-scenario counts: `tally.add(events=3)`, `tally.set(ledger_items=12)`."""

    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid
        self.counts: dict[str, int] = {}
        self.note = ""

    def add(self, **counts: int) -> None:
        for name, value in counts.items():
            self.counts[name] = self.counts.get(name, 0) + int(value)

    def set(self, **counts: int) -> None:
        for name, value in counts.items():
            self.counts[name] = int(value)


@pytest.fixture
def tally(request: pytest.FixtureRequest) -> Iterator[Tally]:
    recorded = Tally(request.node.nodeid)
    yield recorded
    doc = (request.node.function.__doc__ or "").strip().splitlines()
    _COUNTS[request.node.nodeid] = {
        "scenario": doc[0] if doc else request.node.name,
        "counts": dict(recorded.counts),
        "note": recorded.note,
    }


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.passed:
        _PASSED.add(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    target = os.environ.get(COUNTS_ENV)
    if not target:
        return
    passed = {k: v for k, v in sorted(_COUNTS.items()) if k in _PASSED}
    Path(target).write_text(json.dumps(passed, indent=2) + "\n", encoding="utf-8")


@pytest.fixture
def world(aws: tuple[Any, Any], cromwell_server: CromwellTestServer) -> SubmitWorld:
    """The versioned runs bucket and the ledger table of `tests.support.submit_fixtures`."""
    base = make_world(aws, cromwell_server)
    return SubmitWorld(base.s3, base.dynamodb, cromwell_server)
