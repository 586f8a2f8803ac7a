"""Event storms: every event delivered several times, in any order, to several instances at once
(each with its own caches). Submit and monitor here; notify's storm is in test_notify_faults.py."""

from __future__ import annotations

import random
from typing import Any

import pytest

from monitor.composition import MonitorService
from tests.reliability.conftest import Tally
from tests.reliability.harness import SubmitWorld
from tests.reliability.test_monitor_faults import MonitorWorld, all_events, mworld  # noqa: F401
from tests.support.monitor_fixtures import sqs_batch

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:No application metrics:UserWarning"),
]


def test_submit_storm_fifty_inputs_files_each_event_five_times(world: SubmitWorld, tally: Tally) -> None:
    """50 inputs files in 5 folders, each event delivered 5 times, shuffled over 3 instances."""
    events: list[dict[str, Any]] = []
    for folder in range(5):
        events += world.drop_run(f"runs/storm-{folder}", inputs=10)
    deliveries = events * 5
    random.Random(5).shuffle(deliveries)
    instances = [world.service() for _ in range(3)]
    outcomes: dict[str, int] = {}
    for n, event in enumerate(deliveries):
        status = world.invoke(event, instances[n % 3])["status"]
        outcomes[status] = outcomes.get(status, 0) + 1
    assert outcomes == {"Submitted": 50, "Duplicate": 200}
    seen = world.check([e["detail"]["object"]["key"] for e in events])
    assert seen["submissions"] == 50
    assert seen["outbox_events"] == 50
    tally.set(events_delivered=world.delivered, **seen)


def test_submit_storm_with_rejections_mixed_in(world: SubmitWorld, tally: Tally) -> None:
    """Good and broken inputs files in one folder, redelivered and shuffled: one verdict each."""
    events = world.drop_run("runs/mixed", inputs=6)
    events += [world.put(f"runs/mixed/bad{i}.inputs.json", b'{"hello.who": ') for i in range(4)]
    deliveries = events * 4
    random.Random(9).shuffle(deliveries)
    service = world.service()
    for event in deliveries:
        world.invoke(event, service)
    seen = world.check([e["detail"]["object"]["key"] for e in events])
    runs = world.runs().values()
    assert sorted(r["status"] for r in runs) == ["Rejected"] * 4 + ["Submitted"] * 6
    tally.set(events_delivered=world.delivered, **seen)


def test_monitor_storm_every_event_five_times_over_three_instances(
    mworld: MonitorWorld,  # noqa: F811
    tally: Tally,
) -> None:
    """8 runs x 2 jobs x 5 Batch events, each delivered 5 times, shuffled over 3 instances."""
    runs = [mworld.run(f"storm{i}", 2) for i in range(8)]
    for root, _jobs in runs:
        mworld.server.backend.set_status(root, "Succeeded")
    messages = [event for _root, jobs in runs for event in all_events(jobs)] * 5
    random.Random(3).shuffle(messages)
    instances: list[MonitorService] = [mworld.service() for _ in range(3)]
    for n, start in enumerate(range(0, len(messages), 10)):
        assert mworld.deliver(sqs_batch(messages[start : start + 10]), instances[n % 3]) == []
    assert mworld.reconciler().sweep().ended == len(runs), "each run's end check, once"
    totals: dict[str, int] = {"ledger_items": 0, "tasks": 0, "outbox_events": 0}
    for root, jobs in runs:
        for name, value in mworld.check(root, jobs, final="SUCCEEDED", ended="Succeeded").items():
            totals[name] += value
    assert totals["tasks"] == 16
    assert totals["outbox_events"] == 16, "one SUBMITTED and one ENDED per run"
    tally.set(events_delivered=mworld.delivered, runs=len(runs), **totals)
