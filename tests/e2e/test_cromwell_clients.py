"""Real Cromwell clients against the local stack: cromshell 2.x, and the calls Cromwell's Swagger UI
makes. Workflows submitted straight to Cromwell (not through the runs bucket) are adopted by
Courier from their Batch jobs' events, followed in the ledger and reported by e-mail and Slack;
what the clients then show agrees with the ledger.

cromshell runs as a process of its own, configured through a home of the test's own
(`CROMSHELL_CONFIG`), never the user's.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import requests

from courier.ledger.records import RunView, TaskView
from courier.ledger.views import RunViews
from courier.models import RunStatus, TaskStatus
from local.stack import LocalStack, LocalStackOptions
from tests.e2e.conftest import RUNS, Observer
from tests.support.processes import run_python

pytestmark = pytest.mark.e2e

RUN_TIMEOUT = 90.0
#: The headers Swagger UI sends with every call it makes.
SWAGGER = {"accept": "application/json"}


@pytest.fixture(scope="module")
def stack_options() -> LocalStackOptions:
    """Runs submitted straight to Cromwell carry no completion callback: when the last Batch event is
    read before Cromwell marks the workflow done, the reconciler's sweep ends the run, so it sweeps
    every 2 seconds here instead of every few minutes. Call caching is off: the same run is
    submitted several times and each must run its job."""
    return LocalStackOptions(step_seconds=0.0, schedule_seconds=2.0, call_caching=False)


class Cromshell:
    """`cromshell` as a user runs it, pointed at the stack's Cromwell through its own config dir."""

    def __init__(self, home: Path, cromwell_url: str) -> None:
        self.home = home
        config = home / ".cromshell"
        config.mkdir(parents=True)
        (config / "cromshell_config.json").write_text(
            json.dumps({"cromwell_server": cromwell_url, "requests_timeout": 30}), encoding="utf-8"
        )
        self.env = {**os.environ, "HOME": str(home), "CROMSHELL_CONFIG": str(home)}

    def __call__(self, *args: str) -> str:
        """Run one command; its standard output. Fails the test when the command fails."""
        return run_python(
            ["-m", "cromshell", "--no_turtle", "--machine_processable", *args],
            env=self.env,
            what=f"cromshell {' '.join(args)}",
            timeout=120,
        )

    def json(self, *args: str) -> Any:
        out = self(*args)
        return json.loads(out[out.index("{") :])


@pytest.fixture(scope="module")
def cromshell(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Cromshell:
    return Cromshell(tmp_path_factory.mktemp("cromshell-home"), stack.cromwell_url)


@pytest.fixture(scope="module")
def views(observer: Observer) -> RunViews:
    return RunViews(observer.table, observer.dynamodb)


def ended(stack: LocalStack, views: RunViews, workflow_id: str) -> tuple[RunView, list[TaskView]]:
    """The run once it ended and its end was reported, and its tasks."""
    assert stack.wait_for_end(workflow_id, timeout=RUN_TIMEOUT) is not None, f"{workflow_id} did not end"
    stack.settle(timeout=10)
    run = views.run(workflow_id)
    assert run is not None
    return run, list(views.tasks(workflow_id))


def asked(stack: LocalStack, since: int) -> list[tuple[str, str | None, tuple[tuple[str, str], ...]]]:
    """The requests Cromwell received since the `since`-th: method, operation and query."""
    return [(r.method, r.operation, r.query) for r in stack.cromwell.requests[since:]]


def clients_only(calls: list[tuple[str, str | None, tuple[tuple[str, str], ...]]]) -> list[str | None]:
    """The operations asked, leaving out the reconciler's and the monitor's own calls."""
    return [op for _, op, _ in calls if op not in ("queryPost", "status", "outputs", "failed-jobs")]


# -- cromshell ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def quick_run(stack: LocalStack, cromshell: Cromshell) -> str:
    """`cromshell submit` of the quick workflow; its id."""
    before = len(stack.cromwell.requests)
    answer = cromshell.json("submit", str(RUNS / "quick" / "main.wdl"), str(RUNS / "quick" / "inputs.json"))
    assert answer["status"] == "Submitted"
    # cromshell checks the server, has the WDL and inputs described, then submits.
    assert clients_only(asked(stack, before))[:3] == ["backends", "describe", "submit"]
    return str(answer["id"])


def test_cromshell_submit_is_adopted_and_reported(
    stack: LocalStack, observer: Observer, views: RunViews, quick_run: str
) -> None:
    run, tasks = ended(stack, views, quick_run)

    assert (run.origin, run.status, run.workflow_name) == ("adopted", RunStatus.SUCCEEDED, "quick")
    assert run.inputs_key is None  # nothing was dropped in the runs bucket
    assert [(t.call, t.status, t.exit_code) for t in tasks] == [("quick.say", TaskStatus.SUCCEEDED, 0)]
    assert dict(run.outputs) == {"quick.message": "Hello, Courier!"}
    assert sorted(e.kind.value for e in views.events(quick_run)) == ["ENDED"]
    (email,) = observer.emails(quick_run)
    assert email.subject == "Courier: Run succeeded: quick"
    assert "quick.message = Hello, Courier!" in email.body
    (post,) = observer.slack_posts(quick_run)
    assert "Run succeeded: quick" in post.rendered()


def test_cromshell_status_metadata_and_counts_agree_with_the_ledger(
    stack: LocalStack, views: RunViews, cromshell: Cromshell, quick_run: str
) -> None:
    run, tasks = ended(stack, views, quick_run)
    before = len(stack.cromwell.requests)

    status = cromshell.json("status", quick_run)
    assert status == {"id": quick_run, "status": str(run.status)}

    metadata = cromshell.json("metadata", quick_run)
    assert (metadata["id"], metadata["status"], metadata["workflowName"]) == (quick_run, "Succeeded", "quick")
    assert "submittedFiles" not in metadata
    assert metadata["outputs"] == dict(run.outputs)
    (call,) = metadata["calls"]["quick.say"]
    (task,) = tasks
    assert (call["jobId"], call["executionStatus"], call["returnCode"]) == (
        task.job_id,
        "Done",
        task.exit_code,
    )

    assert cromshell.json("counts", "--json-summary", quick_run) == {"quick.say": {"Done": 1}}
    assert run.counts == {"SUCCEEDED": 1}
    summary = cromshell("counts", quick_run).splitlines()
    assert summary[0] == f"{quick_run}\tSucceeded"
    assert summary[1] == "\tquick.say\t0 Running, 1 Done, 0 Preempted, 0 Failed"

    calls = asked(stack, before)
    metadata_queries = [dict(query) for _, op, query in calls if op == "metadata"]
    assert {"excludeKey": "submittedFiles", "expandSubWorkflows": "true"} in metadata_queries
    assert clients_only(calls).count("backends") == 4  # each command checks the server first


def test_cromshell_outputs_and_logs_agree_with_the_ledger(
    stack: LocalStack, observer: Observer, views: RunViews, cromshell: Cromshell, quick_run: str
) -> None:
    run, tasks = ended(stack, views, quick_run)

    assert cromshell.json("list-outputs", "--json-summary", quick_run) == dict(run.outputs)
    detailed = cromshell.json("list-outputs", "--detailed", "--json-summary", quick_run)
    assert list(detailed) == [t.call for t in tasks]

    (task,) = tasks
    listed = cromshell("logs", "--status", "ALL", quick_run).splitlines()
    # Cromwell on AWS Batch names no backend log: cromshell says so beside each call.
    assert listed == [f"{task.call}:\tDone\t Backend Logs Not Found"]
    failed_only = cromshell("logs", quick_run)
    assert "No logs with status ['Failed'] found" in failed_only


def test_cromshell_abort(
    stack: LocalStack, observer: Observer, views: RunViews, cromshell: Cromshell
) -> None:
    answer = cromshell.json(
        "submit", str(RUNS / "abortable" / "main.wdl"), str(RUNS / "abortable" / "inputs.json")
    )
    workflow_id = str(answer["id"])

    def task_running() -> bool:
        return any(t.status is TaskStatus.RUNNING for t in views.tasks(workflow_id))

    assert stack.wait_for(task_running, timeout=60), "the task never ran"
    run = views.run(workflow_id)
    assert run is not None
    assert (run.origin, run.status) == ("adopted", RunStatus.RUNNING)
    assert cromshell.json("status", workflow_id)["status"] == "Running"

    assert cromshell.json("abort", workflow_id) == {"id": workflow_id, "status": "Aborting"}

    run, tasks = ended(stack, views, workflow_id)
    assert run.status is RunStatus.ABORTED
    assert [(t.call, t.status, t.status_reason) for t in tasks] == [
        ("abortable.wait_a_while", TaskStatus.FAILED, "cromwell abort called")
    ]
    assert cromshell.json("status", workflow_id) == {"id": workflow_id, "status": "Aborted"}
    # The terminated task is a failed task: an early alert, unless the run was seen to end first.
    kinds = sorted(e.kind.value for e in views.events(workflow_id))
    assert kinds in (["EARLY_FAILURE", "ENDED"], ["ENDED"])
    subjects = [e.subject for e in observer.emails(workflow_id)]
    assert [s for s in subjects if "Run " in s] == ["Courier: Run aborted: abortable"]
    assert len(subjects) == len(observer.slack_posts(workflow_id)) == len(kinds)


# -- Swagger UI --------------------------------------------------------------------------------


def swagger_files(folder: Path, **fields: str) -> dict[str, Any]:
    """A submission's parts as Swagger UI sends a form: files with their names and types, the
    other fields as plain parts."""
    files: dict[str, Any] = {
        "workflowSource": ("main.wdl", (folder / "main.wdl").read_bytes(), "application/octet-stream"),
        "workflowInputs": ("inputs.json", (folder / "inputs.json").read_bytes(), "application/json"),
    }
    files.update({name: (None, value) for name, value in fields.items()})
    return files


@pytest.fixture(scope="module")
def api(stack: LocalStack) -> str:
    return f"{stack.cromwell_url}/api/workflows/v1"


@pytest.fixture(scope="module")
def held_run(stack: LocalStack, views: RunViews, api: str) -> str:
    """The quick workflow submitted on hold from Swagger UI, with labels, seen to wait (Courier
    has nothing to adopt while nothing runs), then released; its id."""
    labels = ("labels.json", b'{"project": "swagger", "owner": "ana"}', "application/json")
    files = {**swagger_files(RUNS / "quick", workflowOnHold="true"), "labels": labels}
    answer = requests.post(api, files=files, headers=SWAGGER, timeout=30)
    assert answer.status_code == 201, answer.text
    assert answer.json()["status"] == "On Hold"
    workflow_id = str(answer.json()["id"])

    status = requests.get(f"{api}/{workflow_id}/status", headers=SWAGGER, timeout=10)
    assert status.json() == {"id": workflow_id, "status": "On Hold"}
    stack.settle(timeout=10, quiet_seconds=2.5)  # longer than a sweep
    assert views.run(workflow_id) is None

    released = requests.post(f"{api}/{workflow_id}/releaseHold", headers=SWAGGER, timeout=10)
    assert released.json() == {"id": workflow_id, "status": "Submitted"}
    return workflow_id


def test_swagger_on_hold_then_released_is_adopted(
    stack: LocalStack, observer: Observer, views: RunViews, held_run: str
) -> None:
    run, tasks = ended(stack, views, held_run)
    assert (run.origin, run.status, run.workflow_name) == ("adopted", RunStatus.SUCCEEDED, "quick")
    assert [(t.call, t.status) for t in tasks] == [("quick.say", TaskStatus.SUCCEEDED)]
    assert [e.subject for e in observer.emails(held_run)] == ["Courier: Run succeeded: quick"]
    assert len(observer.slack_posts(held_run)) == 1


def test_swagger_reads_agree_with_the_ledger(
    stack: LocalStack, observer: Observer, views: RunViews, api: str, held_run: str
) -> None:
    run, tasks = ended(stack, views, held_run)
    (task,) = tasks

    outputs = requests.get(f"{api}/{held_run}/outputs", headers=SWAGGER, timeout=10).json()
    assert outputs == {"id": held_run, "outputs": dict(run.outputs)}

    metadata = requests.get(
        f"{api}/{held_run}/metadata",
        params=[("includeKey", "status"), ("includeKey", "jobId"), ("expandSubWorkflows", "false")],
        headers=SWAGGER,
        timeout=10,
    ).json()
    assert metadata == {
        "id": held_run,
        "status": "Succeeded",
        "calls": {"quick.say": [{"jobId": task.job_id, "shardIndex": -1, "attempt": 1}]},
    }
    trimmed = requests.get(
        f"{api}/{held_run}/metadata", params={"excludeKey": "calls"}, headers=SWAGGER, timeout=10
    ).json()
    assert "calls" not in trimmed
    assert trimmed["labels"]["project"] == "swagger"

    logs = requests.get(f"{api}/{held_run}/logs", headers=SWAGGER, timeout=10).json()
    (entry,) = logs["calls"]["quick.say"]
    bucket, _, key = entry["stdout"].removeprefix("s3://").partition("/")
    assert observer.s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"Hello, Courier!\n"

    timing = requests.get(f"{api}/{held_run}/timing", timeout=10)
    assert timing.headers["Content-Type"].startswith("text/html")
    assert "quick.say" in timing.text


def test_swagger_labels_and_query(stack: LocalStack, views: RunViews, api: str, held_run: str) -> None:
    run, _ = ended(stack, views, held_run)

    labels = requests.get(f"{api}/{held_run}/labels", headers=SWAGGER, timeout=10).json()
    assert labels["labels"]["owner"] == "ana"
    patched = requests.patch(
        f"{api}/{held_run}/labels",
        data=json.dumps({"owner": "bo"}),
        headers={**SWAGGER, "Content-Type": "application/json"},
        timeout=10,
    )
    assert patched.status_code == 200
    assert patched.json()["labels"]["owner"] == "bo"

    found = requests.get(
        f"{api}/query",
        params=[
            ("label", "project:swagger"),
            ("status", "Succeeded"),
            ("additionalQueryResultFields", "labels"),
        ],
        headers=SWAGGER,
        timeout=10,
    ).json()
    assert [(r["id"], r["status"], r["labels"]["owner"]) for r in found["results"]] == [
        (held_run, str(run.status), "bo")
    ]
    posted = requests.post(
        f"{api}/query",
        data=json.dumps([{"label": "project:swagger"}, {"name": "quick"}]),
        headers={**SWAGGER, "Content-Type": "application/json"},
        timeout=10,
    ).json()
    assert [r["id"] for r in posted["results"]] == [held_run]

    finished = requests.post(f"{api}/{held_run}/abort", headers=SWAGGER, timeout=10)
    assert finished.status_code == 404
    assert finished.json()["status"] == "error"


def test_swagger_batch_submission(stack: LocalStack, views: RunViews, api: str, tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    (folder / "main.wdl").write_bytes((RUNS / "quick" / "main.wdl").read_bytes())
    (folder / "inputs.json").write_text(json.dumps([{"quick.who": "Ana"}, {"quick.who": "Bo"}]))

    answer = requests.post(f"{api}/batch", files=swagger_files(folder), headers=SWAGGER, timeout=30)

    assert answer.status_code == 201, answer.text
    ids = [str(w["id"]) for w in answer.json()]
    assert [w["status"] for w in answer.json()] == ["Submitted", "Submitted"]
    outputs = []
    for workflow_id in ids:
        run, _ = ended(stack, views, workflow_id)
        assert (run.origin, run.status) == ("adopted", RunStatus.SUCCEEDED)
        outputs.append(run.outputs["quick.message"])
    assert outputs == ["Hello, Ana!", "Hello, Bo!"]


def test_swagger_engine_and_backends(stack: LocalStack, api: str) -> None:
    assert requests.get(f"{api}/backends", headers=SWAGGER, timeout=10).json() == {
        "supportedBackends": ["AWSBatch"],
        "defaultBackend": "AWSBatch",
    }
    version = requests.get(f"{stack.cromwell_url}/engine/v1/version", headers=SWAGGER, timeout=10)
    assert version.json()["cromwell"].startswith("92")
    assert (
        requests.get(f"{stack.cromwell_url}/engine/v1/status", headers=SWAGGER, timeout=10).status_code == 200
    )
