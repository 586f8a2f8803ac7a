"""The run report opened in headless Chromium: no script error, a bar for every task, and a
screenshot kept under test-artifacts/ (COURIER_TEST_ARTIFACTS) to look at.

Skipped, with the reason shown, where no Chromium is installed (`.ci/run` installs Debian's)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from courier.models import RunStatus
from courier.run_report import render_report
from tests.support.run_samples import T0, sample_run, scatter_tasks

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = next(
    (found for name in ("chromium", "chromium-browser", "google-chrome") if (found := shutil.which(name))),
    None,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine: apt-get install chromium"),
]


def artifacts() -> Path:
    folder = Path(os.environ.get("COURIER_TEST_ARTIFACTS", ROOT / "test-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def chromium(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        *args,
        page.as_uri(),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize(
    ("name", "shards", "status"),
    [("scatter-failed", 24, RunStatus.FAILED), ("scatter-600", 600, RunStatus.SUCCEEDED)],
)
def test_the_report_draws_every_task_without_script_errors(
    tmp_path: Path, name: str, shards: int, status: RunStatus
) -> None:
    failed = status is RunStatus.FAILED
    tasks = scatter_tasks(shards, failed_shard=7 if failed else None, merge_running=failed)
    run = sample_run(status, workflow_name=f"rnaseq <{name}>")
    page = tmp_path / f"{name}.report.html"
    page.write_text(render_report(run, tasks, generated_at=T0 + timedelta(hours=1)), encoding="utf-8")

    dom = chromium(page, tmp_path / "profile-dom", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    root = re.search(r"<html[^>]*>", dom.stdout)
    assert root is not None, dom.stdout[:500]
    assert 'data-report-ready="yes"' in root.group(0), "the page's script did not run to its end"
    assert "data-script-errors" not in root.group(0), root.group(0)
    assert f'data-tasks-drawn="{len(tasks)}"' in root.group(0)
    assert f"tasks drawn: {len(tasks)}" in dom.stdout
    drawn = re.findall(r'<g class="task" data-status="([A-Z]+)" data-job="([^"]+)"', dom.stdout)
    assert sorted(job for _, job in drawn) == sorted(t.job_id for t in tasks)

    shot = artifacts() / f"run-report-{name}.png"
    shot.unlink(missing_ok=True)
    taken = chromium(page, tmp_path / "profile-shot", "--window-size=1200,1800", f"--screenshot={shot}")
    assert taken.returncode == 0, taken.stderr[-2000:]
    assert shot.stat().st_size > 10_000
    shutil.copy(page, artifacts() / page.name)
