"""`make demo` (`python -m local.demo`): it exits 0, and the timeline it prints tells what
happened: the receipts, run and task states and messages it shows are the ones in the runs
bucket, the ledger, the e-mail stand-in queue and the Slack receiver of the stack it ran."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

from local import demo
from local.stack import Email, LocalStack, SlackPost
from tests.e2e.conftest import Observer

pytestmark = pytest.mark.e2e

_HEAD = re.compile(r"^\s*\d+\.\ds  (?P<run>\S+)\s+(?P<kind>\S+)\s+(?P<text>.*)$")
_RECEIPT = re.compile(
    r"^(?P<status>\w+): workflow (?P<id>[0-9a-f-]{36}), receipt (?P<key>\S+)\.receipt\.json$"
)
_TASK = re.compile(r"^(?P<call>[\w.]+?)(?:\[(?P<shard>\d+)\])? attempt (?P<attempt>\d+): (?P<status>\w+)")
_SUMMARY = re.compile(r"^  (?P<run>\w+)\s+(?P<status>\w+)\s+(?:as expected|EXPECTED \w+)$")


@dataclass
class Printed:
    """One timeline entry as printed: its first line, and the whole text with wrapped lines
    joined back."""

    run: str
    kind: str
    first: str
    lines: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join([self.first, *self.lines])


def printed_entries(out: str) -> list[Printed]:
    entries: list[Printed] = []
    in_timeline = False
    for line in out.splitlines():
        if line.lstrip().startswith("time  run"):
            in_timeline = True
            continue
        if not in_timeline or not line.strip():
            continue
        if line.startswith("Stopping") or line.startswith("Summary"):
            break
        match = _HEAD.match(line)
        if match:
            entries.append(Printed(match["run"], match["kind"], match["text"].strip()))
        elif entries:
            entries[-1].lines.append(line.strip())
    return entries


@dataclass
class Held:
    """What the stack held just before it stopped, read through its endpoints."""

    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    tasks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    receipts: dict[str, dict[str, Any]] = field(default_factory=dict)
    emails: list[Email] = field(default_factory=list)
    posts: list[SlackPost] = field(default_factory=list)

    def take(self, stack: LocalStack) -> None:
        observer = Observer(stack)
        for run in observer.all_runs():
            workflow_id = str(run["workflow_id"])
            self.runs[workflow_id] = run
            self.tasks[workflow_id] = observer.tasks(workflow_id)
        for key in observer.receipts_under(""):
            receipt = observer.receipt(key.removesuffix(".receipt.json"))
            assert receipt is not None
            self.receipts[key.removesuffix(".receipt.json")] = receipt
        self.emails = stack.emails()
        self.posts = stack.slack_posts()


def test_make_demo_prints_what_happened(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "140")  # the timeline's width: long lines wrap past it
    held = Held()

    code = demo.main([], before_stop=held.take)
    out = capsys.readouterr().out

    assert code == 0
    entries = printed_entries(out)
    labels = {"scatter", "failing"}
    assert labels <= {e.run for e in entries}

    # Receipts: one per run, printed with the workflow id the receipt in the bucket holds.
    printed_receipts = {
        e.run: _RECEIPT.match(e.text) for e in entries if e.kind == "receipt" and e.run in labels
    }
    assert set(printed_receipts) == labels
    ids: dict[str, str] = {}
    for label, match in printed_receipts.items():
        assert match is not None, label
        receipt = held.receipts[match["key"]]
        assert match["status"] == receipt["status"] == "Submitted"
        assert match["id"] == receipt["workflow_id"]
        ids[label] = match["id"]
    cohort = {
        wf for wf, run in held.runs.items() if str(run.get("inputs_key", "")).startswith("demo/cohort/")
    }
    pipeline = {
        wf: run
        for wf, run in held.runs.items()
        if str(run.get("inputs_key", "")).startswith("demo/pipeline/")
    }
    assert set(held.runs) - cohort - set(pipeline) == set(ids.values())
    assert len(cohort) == 3
    # the pipeline: three per-sample runs, then one joint run its batch started
    (joint,) = [run for run in pipeline.values() if run["run_folder"] == "demo/pipeline/joint/"]
    assert len(pipeline) == 4
    assert joint["status"] == "Succeeded"
    joint_key = str(joint["inputs_key"])
    assert joint_key == f"demo/pipeline/joint/from-{joint['parent_batch']}.inputs.json"
    assert set(held.receipts) == {f"demo/{label}/inputs.json" for label in labels} | {
        "demo/cohort/samples.tsv",
        "demo/pipeline/genotype/samples.tsv",
        joint_key,
    }

    # Runs: the last state printed for each is the ledger's, and the summary says the same.
    summary = {m["run"]: m["status"] for m in map(_SUMMARY.match, out.splitlines()) if m}
    assert summary == {"scatter": "Succeeded", "failing": "Failed"}
    for label, workflow_id in ids.items():
        states = [e.first.split()[0] for e in entries if e.run == label and e.kind == "run"]
        assert states[-1] == held.runs[workflow_id]["status"] == summary[label]

    # Tasks: every task of the ledger printed, its last printed state the ledger's.
    for label, workflow_id in ids.items():
        printed_tasks: dict[tuple[str, int, int], str] = {}
        for entry in entries:
            match = _TASK.match(entry.first) if entry.run == label and entry.kind == "task" else None
            if match:
                key = (match["call"], int(match["shard"] or -1), int(match["attempt"]))
                printed_tasks[key] = match["status"]
        ledger_tasks = {
            (str(t["call"]), int(t["shard"]), int(t["attempt"])): str(t["status"])
            for t in held.tasks[workflow_id]
        }
        assert printed_tasks == ledger_tasks
    (align,) = [
        e
        for e in entries
        if e.run == "failing" and e.first.startswith("failing_demo.align attempt 1: FAILED")
    ]
    assert "(exit code 3" in align.text
    (failed_task,) = [t for t in held.tasks[ids["failing"]] if t["call"] == "failing_demo.align"]
    assert failed_task["exit_code"] == 3

    # Messages: the e-mails and Slack posts printed for each run are the ones delivered.
    for label, workflow_id in ids.items():
        printed_subjects = Counter(e.first for e in entries if e.run == label and e.kind == "e-mail")
        delivered = Counter(m.subject for m in held.emails if m.mentions(workflow_id))
        assert printed_subjects == delivered
        printed_posts = [e for e in entries if e.run == label and e.kind == "slack"]
        assert len(printed_posts) == len([p for p in held.posts if p.mentions(workflow_id)])
    assert set(Counter(e.first for e in entries if e.kind == "e-mail")) == {
        "Courier: Run succeeded: scatter_demo",
        "Courier: A task failed: failing_demo",
        "Courier: Run failed: failing_demo",
        "Courier: A task failed: cohort_demo",
        "Courier: Batch ended: 1 of 3 not succeeded: cohort_demo",
        "Courier: Batch succeeded: per_sample",
        "Courier: Run succeeded: joint",
    }
    # the pipeline: one message per step, the first saying what it started
    (first,) = [m for m in held.emails if m.subject == "Courier: Batch succeeded: per_sample"]
    started = f"Started s3://{held.receipts[joint_key]['inputs'].removeprefix('s3://')}"
    assert started in first.body
    assert f"  {started}" in out
    assert (
        "  pipeline   3 samples (3 succeeded), then the joint step: Succeeded, started by itself: as expected"
        in out
    )
    assert len([m for m in held.emails if m.subject == "Courier: Run succeeded: joint"]) == 1
    # the cohort: one digest, printed at the end
    (digest,) = [m for m in held.emails if m.subject.startswith("Courier: Batch ended")]
    assert "  cohort     3 runs (1 failed, 2 succeeded), one digest: as expected" in out
    assert out.rstrip().endswith(digest.body.rstrip())
    assert "NA12891  Failed" in digest.body
    (failed_email,) = [m for m in held.emails if m.subject == "Courier: Run failed: failing_demo"]
    (printed_failed,) = [e for e in entries if e.kind == "e-mail" and e.first == failed_email.subject]
    stderr_line = "error: reference genome /refs/GRCh38.fa not found"
    assert stderr_line in failed_email.body
    assert stderr_line in printed_failed.text
    (scatter_email,) = [m for m in held.emails if m.subject == "Courier: Run succeeded: scatter_demo"]
    assert "scatter_demo.summary = 3 samples, 7 + 7 + 7 letters" in scatter_email.body
    assert "Summary (local emulation)" in out
