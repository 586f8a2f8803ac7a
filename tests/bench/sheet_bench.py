"""Benchmark of sample sheets: a sheet of N rows through the local stack (`local.stack.LocalStack`).

The sheet lands in the runs bucket beside its WDL, options.json (naming the sheet) and inputs.json
(the common values). The stack then does what AWS would: EventBridge hands the upload to the
submit function, which validates the sheet and queues its rows (SendMessageBatch by tens); the
rows queue's event source hands batches of ten to the rows function, which submits each row to
Cromwell (paced at MaxSubmitsPerSecond / ROW_CONCURRENCY per invocation), records it and rewrites
the receipts when due. Cromwell is an `InMemoryBackend` behind the Cromwell-compatible server:
it accepts each submission and runs nothing, so the figures are Courier's own.

Timestamps are `time.perf_counter()` in this process:

- put: just before `PutObject` of the sheet;
- queued: when the submit function's answer for the sheet reaches the stack's invocation log;
- each Cromwell submission: when the server logs its answer (`StampedLog`, from the latency
  benchmark);
- last receipt line: when `<sheet>.receipts.tsv`, read every 0.25 s, first shows every row decided.

The local router drives each event source with one poller, so one rows invocation runs at a
time: locally the rows are submitted at most MaxSubmitsPerSecond / 2 per second (in AWS the event
source's MaximumConcurrency of 2 gives the whole rate).
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tests.bench.latency import StampedLog

COHORT = Path(__file__).resolve().parents[1] / "fixtures" / "wdl" / "cohort"
TIMEOUT = 3600.0


def sheet_body(rows: int) -> str:
    lines = ["sample\tsample_id\treads\ttags"]
    lines += [f'S{n:05d}\tsample-{n}\t{1000 + n}\t["batch-{n % 7}"]' for n in range(1, rows + 1)]
    return "\n".join(lines) + "\n"


def _decided(s3: Any, bucket: str, key: str, rows: int) -> bool:
    try:
        body = s3.get_object(Bucket=bucket, Key=key + ".receipts.tsv")["Body"].read().decode()
    except Exception:  # not written yet
        return False
    table = list(csv.DictReader(io.StringIO(body), delimiter="\t"))
    return len(table) == rows and all(r["status"] in ("Submitted", "Rejected") for r in table)


def through_stack(rows: int, per_second: float) -> dict[str, Any]:
    from local.cromwell_api.backend import InMemoryBackend  # noqa: PLC0415
    from local.stack import LocalStack, LocalStackOptions  # noqa: PLC0415

    options = LocalStackOptions(
        engine_factory=lambda _stack: InMemoryBackend(),
        schedule_seconds=86_400.0,
        log_level="CRITICAL",
        parameters={"MaxSubmitsPerSecond": per_second},
    )
    with LocalStack(options) as stack:
        prefix = f"bench/sheet-{rows}"
        stack.put(f"{prefix}/main.wdl", (COHORT / "main.wdl").read_bytes())
        stack.put(f"{prefix}/options.json", json.dumps({"courier_sample_sheet": "samples.tsv"}))
        stack.put(f"{prefix}/inputs.json", json.dumps({"cohort.greeting": "Hello"}))
        stack.settle(timeout=30)
        log = StampedLog()
        stack.cromwell.app.requests = log
        key = f"{prefix}/samples.tsv"
        s3 = stack.client("s3")
        invoked_before = len(stack.invocations)
        started = time.perf_counter()
        stack.put(key, sheet_body(rows))
        queued_at = stack.wait_for(
            lambda: next(
                (
                    time.perf_counter()
                    for c in stack.invocations[invoked_before:]
                    if (c.get("result") or {}).get("key") == key
                ),
                None,
            ),
            timeout=TIMEOUT,
            interval=0.05,
        )
        done = stack.wait_for(
            lambda: time.perf_counter() if _decided(s3, stack.runs_bucket, key, rows) else None,
            timeout=TIMEOUT,
            interval=0.25,
        )
        assert done is not None, "the receipts table never showed every row decided"
        assert stack.router is not None
        stack.wait_for(stack.router.queues_drained, timeout=600, interval=0.2)
        stamps = [at for at, request in log.stamps if request.operation == "submit" and request.status == 201]
        ops = Counter(str(request.operation) for request in log)
        answer = next(
            c["result"]
            for c in stack.invocations[invoked_before:]
            if (c.get("result") or {}).get("key") == key
        )
        row_calls = [c for c in stack.invocations[invoked_before:] if c["function"] == "SheetRowsFunction"]
        per_window = Counter(int(at - stamps[0]) for at in stamps) if stamps else Counter()
        submitting = (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
        return {
            "rows": rows,
            "max_submits_per_second": per_second,
            "local_rate_cap": per_second / 2,
            "sheet_status": answer.get("status"),
            "queued": answer.get("queued"),
            "seconds_to_rows_queued": round(queued_at - started, 2),
            "seconds_to_last_receipt_line": round(done - started, 2),
            "seconds_first_to_last_submission": round(submitting, 2),
            "rows_per_second": round((len(stamps) - 1) / submitting, 2) if submitting else None,
            "most_submissions_in_one_second": max(per_window.values(), default=0),
            "cromwell_calls": dict(ops),
            "cromwell_submissions": len(stamps),
            "rows_invocations": len(row_calls),
            "rows_retried": sum(
                len((c.get("result") or {}).get("batchItemFailures") or []) for c in row_calls
            ),
        }


def measure(rows: int, paced_rows: int) -> dict[str, Any]:
    """The stack's own pace (a limit it does not reach), and the default limit holding."""
    return {
        "unpaced": through_stack(rows, 100.0),
        "paced": through_stack(paced_rows, 5.0),
    }


def render(fig: dict[str, Any]) -> list[str]:
    lines = [
        "A sample sheet dropped into the local stack's runs bucket: the submit function validates "
        "it and queues its rows, the rows function submits them to a Cromwell-compatible server that "
        "accepts each one and runs nothing. *Last receipt line*: from the sheet's PutObject until "
        "`samples.tsv.receipts.tsv` shows every row decided.",
        "",
        "| MaxSubmitsPerSecond | rows | rows queued after (s) | last receipt line after (s) "
        "| rows/s (Cromwell 201s) | most submissions in one second | Cromwell calls | rows invocations "
        "| rows retried |",
        "|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for key in ("unpaced", "paced"):
        s = fig[key]
        calls = ", ".join(f"{k} {v}" for k, v in sorted(s["cromwell_calls"].items()))
        lines.append(
            f"| {s['max_submits_per_second']:g} | {s['rows']} | {s['seconds_to_rows_queued']} "
            f"| {s['seconds_to_last_receipt_line']} | {s['rows_per_second']} "
            f"| {s['most_submissions_in_one_second']} | {calls} | {s['rows_invocations']} "
            f"| {s['rows_retried']} |"
        )
    lines += [
        "",
        "One Cromwell call per row (`submit`), none for the sheet. The local router runs one rows "
        "invocation at a time, so locally the rate is at most MaxSubmitsPerSecond / 2 (each "
        "invocation's share; in AWS the event source's MaximumConcurrency of 2 runs two). At 100 per "
        "second the limit is not reached: the figure is the stack's own pace, where every AWS call is "
        "a request to moto's server in the same process (per row: the run folder listed and read, "
        "the run and its SUBMITTED event, the row's verdict and the sheet's count in one transaction, "
        "the ledger stream read for notify).",
    ]
    return lines
