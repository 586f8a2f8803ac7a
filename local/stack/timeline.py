"""The story of the runs, as the local stack sees it: drops, receipts, run and task transitions
(from the ledger's stream), and the messages as delivered (e-mail stand-in queue, Slack receiver).
"""

from __future__ import annotations

import textwrap
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Entry:
    at: float  # seconds since the stack started
    run: str  # the run's label (its folder), or its short workflow id
    kind: str
    text: str
    workflow_id: str = ""

    def render(self, width: int = 110) -> str:
        """`  12.3s  run-label   kind      text`, continuation lines indented under the text."""
        head = f"{self.at:7.1f}s  {self.run[:18]:<18}  {self.kind:<8} "
        # Never narrower than an e-mail line (72 columns), so messages keep their own line breaks.
        room = max(80, width - len(head))
        out: list[str] = []
        for line in self.text.splitlines() or [""]:
            if not line.strip():
                continue
            out.extend(textwrap.wrap(line, room, subsequent_indent="  ") or [""])
        pad = " " * len(head)
        return "\n".join((head if i == 0 else pad) + line for i, line in enumerate(out or [""]))


class Timeline:
    def __init__(
        self, sink: Callable[[Entry], None] | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self._start = clock()
        self._lock = threading.Lock()
        #: Held from an entry's creation until the sink has taken it, so that entries reach the
        #: sink whole and in the order of `entries` (threads add concurrently).
        self._sink_lock = threading.Lock()
        self.entries: list[Entry] = []
        self.labels: dict[str, str] = {}
        self.sink = sink

    def label(self, workflow_id: str, name: str) -> None:
        with self._lock:
            self.labels.setdefault(workflow_id, name)

    def add(self, kind: str, text: str, *, workflow_id: str = "", run: str = "") -> Entry:
        with self._sink_lock:
            with self._lock:
                name = run or self.labels.get(workflow_id) or (workflow_id[:8] if workflow_id else "-")
                entry = Entry(self._clock() - self._start, name, kind, text, workflow_id)
                self.entries.append(entry)
            if self.sink is not None:
                self.sink(entry)
        return entry

    # -- ledger stream ----------------------------------------------------------------------

    def ledger_change(self, record: Mapping[str, Any]) -> None:
        """One stream record: a run or task that changed status, or an outbox event inserted."""
        from courier.ledger.records import decode_image  # noqa: PLC0415

        stream = record.get("dynamodb") or {}
        new = decode_image(stream.get("NewImage"))
        old = decode_image(stream.get("OldImage"))
        item_type = new.get("type")
        if item_type == "run" and new.get("status") != old.get("status"):
            workflow_id = str(new.get("workflow_id") or "")
            text = f"{new.get('status')}"
            if new.get("workflow_name"):
                text += f"  ({new.get('workflow_name')})"
            reasons = new.get("reasons") or []
            if reasons:
                text += "\n" + "\n".join(f"- {r}" for r in reasons)
            self.add("run", text, workflow_id=workflow_id)
        elif item_type == "task" and new.get("status") != old.get("status"):
            shard = int(new.get("shard", -1))
            call = f"{new.get('call')}" + (f"[{shard}]" if shard >= 0 else "")
            text = f"{call} attempt {new.get('attempt', 1)}: {new.get('status')}"
            if new.get("status") == "FAILED":
                detail = ", ".join(
                    part
                    for part in (
                        f"exit code {new['exit_code']}" if new.get("exit_code") is not None else "",
                        str(new.get("status_reason") or ""),
                    )
                    if part
                )
                if detail:
                    text += f" ({detail})"
            self.add(
                "task", text, workflow_id=str(new.get("root_workflow_id") or new.get("workflow_id") or "")
            )
        elif item_type == "event" and record.get("eventName") == "INSERT":
            self.add(
                "outbox",
                f"{new.get('kind')} queued for notify",
                workflow_id=str(new.get("workflow_id") or ""),
            )
