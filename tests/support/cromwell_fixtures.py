"""Fixtures around the local Cromwell-compatible server and the Cromwell client.

cromwell_clock    a settable monotonic clock driving the backend's early-404 window
cromwell_backend  an InMemoryBackend (tests set status, calls, outputs, labels on it)
cromwell_server   a started CromwellTestServer on 127.0.0.1 (stopped afterwards)
cromwell_sleeps   the backoff delays the client asked for (no real sleeping)
cromwell_client   a CromwellClient pointed at cromwell_server, recording into cromwell_sleeps

Register with `pytest_plugins = ["tests.support.cromwell_fixtures"]`. Helpers (submit_request,
FakeClock, contract_problems) live in tests.support.cromwell_helpers.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from courier.cromwell import CromwellClient
from local.cromwell_api import CromwellTestServer, InMemoryBackend
from tests.support.cromwell_helpers import FakeClock


@pytest.fixture
def cromwell_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cromwell_backend(cromwell_clock: FakeClock) -> InMemoryBackend:
    return InMemoryBackend(clock=cromwell_clock)


@pytest.fixture
def cromwell_server(cromwell_backend: InMemoryBackend) -> Iterator[CromwellTestServer]:
    with CromwellTestServer(cromwell_backend) as server:
        yield server


@pytest.fixture
def cromwell_sleeps() -> list[float]:
    return []


@pytest.fixture
def cromwell_client(cromwell_server: CromwellTestServer, cromwell_sleeps: list[float]) -> CromwellClient:
    return CromwellClient(cromwell_server.url, timeout=(2, 5), max_attempts=3, sleep=cromwell_sleeps.append)
