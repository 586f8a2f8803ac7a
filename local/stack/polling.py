"""How long a poller of the local stack waits before asking an empty source again."""

from __future__ import annotations

import threading


class IdleBackoff:
    """`shortest` after a delivery, doubling while the source stays empty, up to `longest`.

    The stack's pollers (the SQS stand-ins, the ledger stream, the e-mail inbox) share this
    process with the moto server, and every empty receive costs the server as much as a real
    one: polling idle sources at a fixed short period takes time from the functions at work.
    """

    def __init__(self, stop: threading.Event, shortest: float, longest: float) -> None:
        self._stop = stop
        self.shortest = shortest
        self.longest = max(shortest, longest)
        self.next = shortest

    def idle(self) -> None:
        """Wait (or return at once when stopping) and wait longer next time."""
        self._stop.wait(self.next)
        self.next = min(self.next * 2, self.longest)

    def delivered(self) -> None:
        self.next = self.shortest

    def after(self, got: bool) -> None:
        """After one poll: back to the shortest wait if it `got` something, else wait."""
        if got:
            self.delivered()
        else:
            self.idle()
