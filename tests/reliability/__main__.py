"""Run the reliability and hostile-input suites and write their counts into docs/reliability.md.

    python -m tests.reliability            (make reliability)
    python -m tests.reliability --check    run only; leave the document alone

The counts table sits between the `counts:begin` and `counts:end` markers of the document; the
rest of it is prose kept by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reliability.md"
BEGIN, END = "<!-- counts:begin -->", "<!-- counts:end -->"
SUITES = ["tests/reliability", "tests/fuzz"]
COMMAND = "python -m tests.reliability"
COLUMNS = [
    ("events_delivered", "events delivered"),
    ("submissions", "Cromwell submissions"),
    ("runs", "runs"),
    ("tasks", "tasks"),
    ("ledger_items", "ledger items"),
    ("outbox_events", "outbox events"),
    ("messages", "messages sent"),
]


def render(counts: dict[str, dict[str, Any]], pytest_line: str) -> str:
    lines = [
        BEGIN,
        "",
        f"Produced by `{COMMAND}` (`make reliability`) on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"Python {platform.python_version()}; pytest: {pytest_line}.",
        "",
        "| scenario | test | " + " | ".join(title for _k, title in COLUMNS) + " |",
        "|---|---|" + "---:|" * len(COLUMNS),
    ]
    for nodeid, row in counts.items():
        test = nodeid.split("::", 1)[1] if "::" in nodeid else nodeid
        module = Path(nodeid.split("::", 1)[0]).stem
        values = [str(row["counts"].get(key, "")) for key, _title in COLUMNS]
        scenario = str(row["scenario"]).replace("|", "\\|")
        if row.get("note"):
            scenario += f" ({row['note']})"
        lines.append(f"| {scenario} | `{module}::{test}` | " + " | ".join(values) + " |")
    lines += ["", END]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="run the suites; do not write the document")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "counts.json"
        env = {**os.environ, "COURIER_RELIABILITY_COUNTS": str(target)}
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SUITES],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        sys.stdout.write(proc.stdout[-3000:])
        sys.stderr.write(proc.stderr[-3000:])
        summary = next((ln for ln in reversed(proc.stdout.splitlines()) if " in " in ln), "").strip("= ")
        if proc.returncode != 0:
            print("reliability suites failed; docs/reliability.md left as it was", file=sys.stderr)
            return proc.returncode
        counts = json.loads(target.read_text()) if target.exists() else {}
    if args.check:
        return 0
    text = DOC.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        print(f"{DOC}: markers {BEGIN} / {END} not found", file=sys.stderr)
        return 1
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    DOC.write_text(head + render(counts, summary) + tail, encoding="utf-8")
    print(f"wrote the counts of {len(counts)} scenarios to {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
