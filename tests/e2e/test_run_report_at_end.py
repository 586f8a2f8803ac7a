"""When a demo run ends in the local stack, its report is written beside its inputs file, its
receipt says how it ended, and the e-mail links the report; the report opens in headless Chromium
with a bar for every task (skipped, with the reason, where Chromium is absent)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from courier.links import s3_object_url
from local.stack import LocalStack
from tests.e2e.conftest import DEMO_RUNS, Observer
from tests.integration.test_run_report_browser import CHROMIUM, artifacts, chromium

pytestmark = pytest.mark.e2e


def test_an_ended_demo_run_has_its_report_and_an_up_to_date_receipt(
    stack: LocalStack, observer: Observer, tmp_path: Path
) -> None:
    (key,) = stack.drop_folder(DEMO_RUNS / "scatter", "e2e/report/scatter")
    receipt = stack.wait_for_receipt(key, timeout=30)
    assert receipt is not None
    workflow_id = str(receipt["workflow_id"])
    run = stack.wait_for_end(workflow_id, timeout=120)
    assert run is not None, f"run {workflow_id} did not end"
    stack.settle(timeout=10)

    report_key = f"{key}.report.html"
    ended = observer.receipt(key)
    assert ended is not None
    assert ended["run_status"] == "Succeeded"
    assert ended["ended_at"]
    assert ended["report"] == report_key
    assert {k: ended[k] for k in receipt} == receipt  # every field it had is kept

    html = observer.s3.get_object(Bucket=observer.bucket, Key=report_key)["Body"].read().decode()
    tasks = observer.tasks(workflow_id)
    assert tasks
    assert sorted(re.findall(r'data-job="([^"]+)"', html)) == sorted(str(t["job_id"]) for t in tasks)
    assert observer.wait_for_messages(workflow_id, 1)
    (email,) = observer.emails(workflow_id)
    assert s3_object_url(stack.options.region, observer.bucket, report_key) in email.body

    if CHROMIUM is None:
        pytest.skip("no Chromium on this machine: apt-get install chromium (the report was checked as text)")
    page = tmp_path / "scatter.report.html"
    page.write_text(html, encoding="utf-8")
    dom = chromium(page, tmp_path / "profile", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    root = re.search(r"<html[^>]*>", dom.stdout)
    assert root is not None
    assert 'data-report-ready="yes"' in root.group(0)
    assert "data-script-errors" not in root.group(0)
    assert f'data-tasks-drawn="{len(tasks)}"' in root.group(0)
    (artifacts() / "run-report-at-end-scatter.html").write_text(html, encoding="utf-8")
