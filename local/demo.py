"""`python -m local.demo` (`make demo`): the whole flow on loopback, printed as a timeline.

A LOCAL EMULATION: moto stands in for AWS (resources created from template.yaml), the local engine
runs the WDL as local processes and causes the AWS Batch events Cromwell would, the functions'
handlers run in this process. Two run folders are dropped into the runs bucket: a scatter over
three samples with an imported task file, and a run whose second task fails; then a small cohort,
a sample sheet of three samples one of which fails, whose batch ends with one digest (printed at
the end); and a two-step pipeline from one drop: a per-sample step over a sheet of three samples
whose options.json names the next step, then one joint run over the three, started by itself when
the first step's batch ends (docs/pipelines.md). The demo ends by itself once every run is over
and reported, and exits 0 when they ended as expected.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from local.stack.paths import ensure_import_paths

if TYPE_CHECKING:
    from courier.ledger.records import BatchView
    from local.stack import LocalStack

DEMO_RUNS = Path(__file__).resolve().parent / "demo_runs"
EXPECTED = {"scatter": "Succeeded", "failing": "Failed"}
#: The cohort's sheet: its runs by how they ended, once its batch has ended.
COHORT = "cohort"
COHORT_EXPECTED = {"Succeeded": 2, "Failed": 1}
#: The pipeline's folders, the next step's first (its WDL is there when its inputs file arrives).
PIPELINE = "pipeline"
PIPELINE_STEPS = ("joint", "genotype")
PIPELINE_EXPECTED = ({"Succeeded": 3}, "Succeeded")

BANNER = """\
Cromwell Courier - local demo
=============================
This is a LOCAL EMULATION, not AWS: moto plays S3, DynamoDB, EventBridge, SQS, SNS and Secrets
Manager (resources created from template.yaml), a local engine runs the WDL tasks as processes on
this machine and emits the AWS Batch events Cromwell would cause, and the submit, monitor,
callback and notify handlers run in this process. E-mail goes to an SQS queue subscribed to the
topic; Slack goes to a webhook receiver on 127.0.0.1.
"""


def main(argv: list[str] | None = None, *, before_stop: Callable[[LocalStack], None] | None = None) -> int:
    """Run the demo; 0 when both runs ended as expected. `before_stop`, if given, is called with
    the stack once the runs are over and the stack is quiet, before it stops (to look at the
    ledger, the receipts and the messages it holds)."""
    parser = argparse.ArgumentParser(prog="python -m local.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the runs")
    parser.add_argument("--step", type=float, default=0.3, help="pause between a task's Batch states")
    args = parser.parse_args(argv)
    ensure_import_paths()

    from local.stack import LocalStack, LocalStackOptions  # noqa: PLC0415

    width = min(shutil.get_terminal_size((110, 20)).columns, 140)
    print(BANNER)
    print("Starting the local stack ...", flush=True)
    options = LocalStackOptions(
        on_entry=lambda entry: print(entry.render(width), flush=True),
        step_seconds=args.step,
    )
    started = time.monotonic()
    outcomes: dict[str, str] = {}
    with LocalStack(options) as stack:
        print(
            f"  AWS (moto)      {stack.moto_url}\n"
            f"  Cromwell        {stack.cromwell_url}  (local engine)\n"
            f"  runs bucket     s3://{stack.runs_bucket}\n"
            f"  ledger table    {stack.table_name}\n"
            f"  functions       {', '.join(stack.provisioned.functions)}\n",
            flush=True,
        )
        print(f"{'time':>8}  {'run':<18}  {'what':<8} detail")
        workflow_ids: dict[str, str] = {}
        for name in EXPECTED:
            (inputs_key,) = stack.drop_folder(DEMO_RUNS / name, f"demo/{name}")
            receipt = stack.wait_for_receipt(inputs_key, timeout=30)
            if receipt is None:
                print(f"no receipt for {inputs_key}", file=sys.stderr)
                return 1
            workflow_ids[name] = str(receipt["workflow_id"])
        (sheet,) = stack.drop_folder(DEMO_RUNS / COHORT, f"demo/{COHORT}")
        pipeline_sheet = next(
            key
            for step in PIPELINE_STEPS
            for key in stack.drop_folder(DEMO_RUNS / PIPELINE / step, f"demo/{PIPELINE}/{step}")
        )
        deadline = time.monotonic() + args.timeout
        for name, workflow_id in workflow_ids.items():
            run = stack.wait_for_end(workflow_id, timeout=max(1.0, deadline - time.monotonic()))
            outcomes[name] = str(run.status) if run else "unfinished"
        batch = _batch(stack, sheet, timeout=max(1.0, deadline - time.monotonic()))
        cohort = dict(batch.counts) if batch is not None else {}
        pipeline = _pipeline(stack, pipeline_sheet, timeout=max(1.0, deadline - time.monotonic()))
        stack.settle(timeout=5)
        if before_stop is not None:
            before_stop(stack)
        digest = next(
            (
                e
                for e in stack.emails()
                if e.subject.startswith("Courier: Batch") and batch and e.mentions(batch.batch_id)
            ),
            None,
        )
        print("\nStopping the local stack ...", flush=True)
    elapsed = time.monotonic() - started
    print("\nSummary (local emulation)")
    ok = True
    for name, expected in EXPECTED.items():
        got = outcomes.get(name, "unfinished")
        mark = "as expected" if got == expected else f"EXPECTED {expected}"
        ok = ok and got == expected
        print(f"  {name:<10} {got:<11} {mark}")
    cohort_ok = cohort == COHORT_EXPECTED and digest is not None
    print(
        f"  {COHORT:<10} {sum(cohort.values())} runs ({_counts(cohort)}), one digest: "
        + ("as expected" if cohort_ok else f"EXPECTED {COHORT_EXPECTED}")
    )
    steps, joint, told = pipeline
    pipeline_ok = (steps, joint) == PIPELINE_EXPECTED
    print(
        f"  {PIPELINE:<10} {sum(steps.values())} samples ({_counts(steps)}), then the joint step: {joint}, "
        "started by itself: " + ("as expected" if pipeline_ok else f"EXPECTED {PIPELINE_EXPECTED}")
    )
    if told:
        print(f"             {told}")
    print(f"  done in {elapsed:.0f} s; everything it started has stopped.")
    if digest is not None:
        print(f"\nThe cohort's digest (e-mail), {digest.subject}:\n")
        print(digest.body)
    return 0 if ok and cohort_ok and pipeline_ok else 1


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items())) or "unfinished"


def _batch(stack: LocalStack, sheet: str, timeout: float) -> BatchView | None:
    """A sheet's batch, once it has ended and its digest is out."""
    receipt = stack.wait_for(
        lambda: (
            (r := stack.wait_for_receipt(sheet, timeout=1)) is not None and r.get("status") == "Done" and r
        ),
        timeout,
    )
    if not receipt:
        print(f"no receipt for {sheet}", file=sys.stderr)
        return None
    return stack.wait_for_batch(str(receipt["sheet_id"]), timeout=timeout)


def _pipeline(stack: LocalStack, sheet: str, timeout: float) -> tuple[dict[str, int], str, str]:
    """The first step's runs by how they ended, how the joint step its batch started ended, and
    what the batch's digest said it started."""
    from courier.pipeline import NextStep, next_inputs_key  # noqa: PLC0415

    batch = _batch(stack, sheet, timeout)
    if batch is None:
        return {}, "unfinished", ""
    step = NextStep.from_map(batch.next_step)
    key = next_inputs_key(f"demo/{PIPELINE}/{PIPELINE_STEPS[0]}/", batch.batch_id)
    receipt = stack.wait_for(
        lambda: (
            (r := stack.receipt(stack.runs_bucket, key)) is not None and r.get("status") != "Waiting" and r
        ),
        timeout,
    )
    if not receipt or receipt.get("status") != "Submitted":
        return dict(batch.counts), "not started", step.line if step else ""
    run = stack.wait_for_end(str(receipt["workflow_id"]), timeout=timeout)
    return dict(batch.counts), str(run.status) if run else "unfinished", step.line if step else ""


if __name__ == "__main__":
    sys.exit(main())
