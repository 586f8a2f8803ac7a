"""The local stack's pollers back off while their source is empty and come back at once."""

from __future__ import annotations

import threading

from local.stack.polling import IdleBackoff


class RecordingStop(threading.Event):
    """A stop event whose waits return at once and are recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(float(timeout or 0))
        return self.is_set()


def test_waits_double_while_idle_up_to_the_longest() -> None:
    stop = RecordingStop()
    backoff = IdleBackoff(stop, shortest=0.05, longest=0.4)

    for _ in range(6):
        backoff.idle()

    assert stop.waits == [0.05, 0.1, 0.2, 0.4, 0.4, 0.4]


def test_a_delivery_brings_the_shortest_wait_back() -> None:
    stop = RecordingStop()
    backoff = IdleBackoff(stop, shortest=0.05, longest=0.4)
    backoff.idle()
    backoff.idle()

    backoff.delivered()
    backoff.idle()

    assert stop.waits == [0.05, 0.1, 0.05]


def test_the_longest_wait_is_never_below_the_shortest() -> None:
    stop = RecordingStop()
    backoff = IdleBackoff(stop, shortest=0.2, longest=0.1)

    backoff.idle()
    backoff.idle()

    assert stop.waits == [0.2, 0.2]


def test_after_a_poll_waits_only_when_nothing_came() -> None:
    stop = RecordingStop()
    backoff = IdleBackoff(stop, shortest=0.05, longest=0.4)

    backoff.after(False)
    backoff.after(False)
    backoff.after(True)
    backoff.after(False)

    assert stop.waits == [0.05, 0.1, 0.05]
