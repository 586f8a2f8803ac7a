"""The run report's HTML: every task drawn, every user text escaped, nothing to fetch."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from html.parser import HTMLParser

from courier.costs import Prices
from courier.ledger.records import RunView
from courier.models import RunStatus
from courier.run_report import format_duration, render_report
from tests.support.run_samples import T0, sample_run, scatter_tasks

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


class Tags(HTMLParser):
    """The page's elements, with their attributes, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> Tags:
    tags = Tags()
    tags.feed(page)
    return tags


def test_every_task_has_a_bar_group_with_its_wait_and_run_apart() -> None:
    tasks = scatter_tasks(24)
    page = render_report(sample_run(), tasks, generated_at=T0 + timedelta(hours=1))
    tags = parse(page)
    groups = [attrs for tag, attrs in tags.tags if tag == "g" and attrs.get("class") == "task"]
    assert sorted(str(g["data-job"]) for g in groups) == sorted(t.job_id for t in tasks)
    rects = [attrs.get("class") for tag, attrs in tags.tags if tag == "rect"]
    assert rects.count("wait") == len(tasks)
    assert rects.count("ran ok") == 25
    assert rects.count("ran failed") == 1
    assert rects.count("ran running") == 1
    assert 'data-tasks-expected="27"' in page


def test_calls_are_drawn_in_the_order_they_began() -> None:
    page = render_report(sample_run(), scatter_tasks(3), generated_at=T0 + timedelta(hours=1))
    text = "".join(parse(page).text)
    assert text.index("rnaseq.prepare") < text.index("rnaseq.align[0]") < text.index("rnaseq.merge")


def test_user_text_is_escaped_everywhere() -> None:
    run = sample_run(
        workflow_name=HOSTILE,
        requester=HOSTILE,
        inputs_key=f"runs/{HOSTILE}/inputs.json",
        workflow_failures=(HOSTILE,),
        outputs={HOSTILE: HOSTILE},
    )
    tasks = scatter_tasks(2)
    tasks[0] = replace(tasks[0], call=HOSTILE)
    page = render_report(run, tasks, generated_at=T0, receipt={"status": HOSTILE})
    assert "<script>alert" not in page
    assert "<img" not in page
    tags = parse(page)
    assert [tag for tag, _ in tags.tags if tag == "script"] == ["script", "script"]  # the page's own two
    assert HOSTILE in "".join(tags.text)  # shown as text


def test_nothing_is_fetched_when_the_page_opens() -> None:
    page = render_report(sample_run(), scatter_tasks(4), generated_at=T0, region="us-east-1")
    tags = parse(page)
    for tag, attrs in tags.tags:
        assert tag not in ("link", "img", "iframe", "object", "embed"), tag
        assert "src" not in attrs, (tag, attrs)
    csp = [a for t, a in tags.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp
    assert "default-src 'none'" in str(csp[0]["content"])
    assert not re.search(r"url\(", page)


def test_summary_cost_failures_and_outputs() -> None:
    page = render_report(
        sample_run(),
        scatter_tasks(24),
        generated_at=T0,
        prices=Prices(1.0, 0.0, 0.5, 0.0),
        region="us-east-1",
    )
    text = " ".join("".join(parse(page).text).split())
    assert "Failures 1" in text
    assert "Out of memory" in text
    assert "rnaseq.align[7]" in text
    assert "s3://results/rnaseq/sampleA/counts.tsv" in text
    assert "Cost by call" in text
    assert "vCPU-hours" in text
    # the log link goes to the CloudWatch console of the region given
    assert "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1" in page


def test_a_rejected_run_without_tasks() -> None:
    run = RunView(
        workflow_id="abc",
        workflow_name=None,
        status=RunStatus.REJECTED,
        reasons=("inputs.json: unknown input 'w.x'",),
    )
    page = render_report(run, [], generated_at=T0)
    text = " ".join("".join(parse(page).text).split())
    assert "Rejected" in text
    assert "No task ran." in text
    assert "unknown input 'w.x'" in text


def test_durations_read_like_a_person_writes_them() -> None:
    assert [format_duration(timedelta(seconds=s)) for s in (5, 185, 7620, 3 * 86400 + 3600 * 4)] == [
        "5s",
        "3m 05s",
        "2h 07m",
        "3d 4h",
    ]
    assert format_duration(None) == "-"
