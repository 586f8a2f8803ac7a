"""The local engine runs real WDL (miniwdl, local processes) behind the Cromwell REST API, emitting
the AWS Batch events and S3 objects Cromwell 92 on AWS Batch would cause."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from moto import mock_aws

from courier.conventions import parse_task_id
from courier.cromwell import CromwellClient, SubmitRequest
from courier.errors import WorkflowIdInUse
from local.cromwell_api import CromwellTestServer
from local.engine import EngineConfig, LocalEngine
from tests.support.engine_helpers import (
    BUCKET,
    JOB_QUEUE_ARN,
    Recorder,
    dependencies_zip,
    jobs_by_task_id,
    wdl,
)


class Stack:
    def __init__(
        self, engine: LocalEngine, server: CromwellTestServer, s3: Any, events: Recorder, posts: Recorder
    ):
        self.engine = engine
        self.server = server
        self.s3 = s3
        self.events = events
        self.posts = posts
        self.client = CromwellClient(server.url, max_attempts=1)

    def submit(self, source: str, inputs: dict[str, Any] | None = None, **kwargs: Any) -> str:
        workflow_id = kwargs.pop("requested_workflow_id", None) or str(uuid.uuid4())
        request = SubmitRequest(
            workflow_source=source,
            workflow_inputs=json.dumps(inputs or {}),
            requested_workflow_id=workflow_id,
            **kwargs,
        )
        return self.client.submit(request).id

    def finish(self, workflow_id: str) -> str:
        assert self.engine.wait_idle(40), "the engine did not become idle"
        return self.client.status(workflow_id)

    def read(self, uri: str) -> str:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()

    def keys(self, prefix: str) -> set[str]:
        found = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
        return {item["Key"] for item in found}


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        events, posts = Recorder(), Recorder()
        config = EngineConfig(work_dir=tmp_path / "work", bucket=BUCKET, job_queue_arn=JOB_QUEUE_ARN)
        engine = LocalEngine(config, s3=s3, emit=events, post=posts)
        server = CromwellTestServer(backend=engine).start()
        try:
            yield Stack(engine, server, s3, events, posts)
        finally:
            server.stop()
            engine.close()


def test_scatter_with_imports_runs_for_real_and_emits_batch_events_per_shard(stack: Stack) -> None:
    workflow_id = stack.submit(
        wdl("scatter.wdl"),
        {"cohort.samples": ["ana", "bo", "cy"], "cohort.greeting": "hi"},
        workflow_dependencies=dependencies_zip("tasks/greet.wdl"),
        labels=json.dumps({"project": "demo"}),
    )

    assert stack.finish(workflow_id) == "Succeeded"
    outputs = stack.client.outputs(workflow_id)
    assert outputs["cohort.lines"] == ["hi ana", "hi bo", "hi cy"]
    assert outputs["cohort.count"] == 3
    base = f"s3://{BUCKET}/cromwell-execution/cohort/{workflow_id}"
    assert outputs["cohort.report"] == f"{base}/call-collect/report.txt"
    assert stack.read(outputs["cohort.report"]).splitlines() == ["hi ana", "hi bo", "hi cy"]

    # Batch events: one job per shard and one for collect, each RUNNABLE, STARTING, RUNNING, SUCCEEDED.
    jobs = jobs_by_task_id(stack.events.details())
    assert set(jobs) == {
        "cohort.say-Some_0_-1",
        "cohort.say-Some_1_-1",
        "cohort.say-Some_2_-1",
        "cohort.collect-None-1",
    }
    job_ids = set()
    for task_id, details in jobs.items():
        assert [d["status"] for d in details] == ["RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED"]
        ref = parse_task_id(task_id)
        assert ref is not None
        assert ref.attempt == 1
        assert len({d["jobId"] for d in details}) == 1
        job_ids.add(details[0]["jobId"])
        last = details[-1]
        assert last["jobName"] == ref.call.replace(".", "_")
        assert last["jobQueue"] == JOB_QUEUE_ARN
        assert last["jobArn"].endswith("/" + last["jobId"])
        assert last["tags"]["cromwell-root-workflow-id"] == workflow_id
        assert last["tags"]["cromwell-workflow-id"] == workflow_id
        assert last["tags"]["cromwell-root-workflow-name"] == "cohort"
        assert last["tags"]["project"] == "demo"
        assert last["container"]["exitCode"] == 0
        assert last["container"]["logStreamName"]
        assert last["createdAt"] <= last["startedAt"] <= last["stoppedAt"]
    assert {parse_task_id(t).shard for t in jobs if t.startswith("cohort.say")} == {0, 1, 2}  # type: ignore[union-attr]
    assert len(job_ids) == 4

    # Call metadata matches the jobs, and includeKey filtering applies inside the calls.
    metadata = stack.client.metadata(
        workflow_id, include_keys=["calls", "status"], exclude_keys=["runtimeAttributes"]
    )
    says = sorted(metadata["calls"]["cohort.say"], key=lambda entry: entry["shardIndex"])
    assert [entry["shardIndex"] for entry in says] == [0, 1, 2]
    assert {entry["jobId"] for entry in says} | {metadata["calls"]["cohort.collect"][0]["jobId"]} == job_ids
    for entry in says:
        assert entry["executionStatus"] == "Done"
        assert entry["returnCode"] == 0
        assert entry["attempt"] == 1
        assert "runtimeAttributes" not in entry
    shard1 = says[1]
    assert shard1["stderr"] == f"{base}/call-say/shard-1/say-1-stderr.log"
    assert stack.read(shard1["stderr"]).strip() == "said hi to bo"
    assert stack.read(shard1["stdout"]).strip() == "hi bo"
    assert stack.keys(f"cromwell-execution/cohort/{workflow_id}/call-say/shard-1/") >= {
        f"cromwell-execution/cohort/{workflow_id}/call-say/shard-1/{name}"
        for name in ("script", "say-1-rc.txt", "say-1-stdout.log", "say-1-stderr.log")
    }
    assert "echo" in stack.read(f"{base}/call-say/shard-1/script")
    narrow = stack.client.metadata(workflow_id, include_keys=["status"])
    assert "calls" not in narrow or not narrow["calls"]
    assert stack.client.labels(workflow_id)["project"] == "demo"


def test_failing_task_fails_the_workflow_with_its_exit_code_and_stderr(stack: Stack) -> None:
    workflow_id = stack.submit(wdl("fail.wdl"))

    assert stack.finish(workflow_id) == "Failed"
    metadata = stack.client.metadata(workflow_id)
    (entry,) = metadata["calls"]["breaks.boom"]
    assert entry["executionStatus"] == "Failed"
    assert entry["returnCode"] == 3
    assert "return code 3" in entry["failures"][0]["message"]
    assert "return code 3" in metadata["failures"][0]["causedBy"][0]["message"]
    assert stack.read(entry["stderr"]).strip() == "reference genome not found: /ref/hg38.fa"
    assert stack.read(entry["stderr"].replace("-stderr.log", "-rc.txt")).strip() == "3"

    failed = stack.client.failed_jobs(workflow_id)
    assert [e["jobId"] for e in failed["calls"]["breaks.boom"]] == [entry["jobId"]]
    details = stack.events.details()
    assert [d["status"] for d in details] == ["RUNNABLE", "STARTING", "RUNNING", "FAILED"]
    assert details[-1]["jobId"] == entry["jobId"]
    assert details[-1]["container"]["exitCode"] == 3
    assert details[-1]["tags"]["cromwell-task-id"] == "breaks.boom-None-1"


def test_abort_kills_the_running_task_and_ends_aborted(stack: Stack) -> None:
    workflow_id = stack.submit(
        wdl("sleep.wdl"), workflow_options=json.dumps({"workflow_callback_uri": "https://hooks.example/cb"})
    )
    running = stack.events.wait_for(lambda d: d["status"] == "RUNNING")
    pid_file = stack.engine.config.work_dir / workflow_id / "run" / "call-nap" / "work" / "pid.txt"
    stack.events.wait_for(lambda d: pid_file.exists() and pid_file.read_text().strip() != "")
    pid = int(pid_file.read_text())
    os.killpg(pid, 0)  # the task's process group is alive

    assert stack.client.abort(workflow_id) == "Aborting"
    assert stack.finish(workflow_id) == "Aborted"

    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)
    last = stack.events.details()[-1]
    assert last["jobId"] == running["jobId"]
    assert last["status"] == "FAILED"
    assert last["statusReason"] == "cromwell abort called"
    (entry,) = stack.client.metadata(workflow_id)["calls"]["naps.nap"]
    assert entry["executionStatus"] == "Aborted"
    assert [body["state"] for _, body in stack.posts.items] == ["Aborted"]


def test_requested_id_in_use_is_refused(stack: Stack) -> None:
    workflow_id = stack.submit(wdl("echo.wdl"))
    with pytest.raises(WorkflowIdInUse):
        stack.submit(wdl("echo.wdl"), requested_workflow_id=workflow_id)
    refused = [r for r in stack.server.requests if r.operation == "submit" and r.status == 400]
    assert len(refused) == 1
    assert "already in use" in refused[0].response["message"]
    assert stack.finish(workflow_id) == "Succeeded"
    assert len(stack.events.details()) == 4  # the refused repeat ran nothing


def test_callback_is_posted_once_on_the_terminal_transition(stack: Stack) -> None:
    url = "https://hooks.example/cromwell?token=secret"
    workflow_id = stack.submit(
        wdl("echo.wdl"),
        {"echoes.message": "bonjour"},
        workflow_options=json.dumps({"workflow_callback_uri": url}),
    )

    assert stack.finish(workflow_id) == "Succeeded"
    assert stack.posts.items == [
        (
            url,
            {
                "workflowId": workflow_id,
                "state": "Succeeded",
                "outputs": {"echoes.said": "bonjour"},
                "failures": [],
            },
        )
    ]


def test_an_unresolvable_import_fails_before_any_job(stack: Stack) -> None:
    workflow_id = stack.submit(wdl("scatter.wdl"), {"cohort.samples": ["a"]})

    assert stack.finish(workflow_id) == "Failed"
    failures = stack.client.metadata(workflow_id)["failures"]
    assert failures[0]["message"] == "Workflow input processing failed"
    assert "greet.wdl" in failures[0]["causedBy"][0]["message"]
    assert stack.events.details() == []


def test_a_workflow_on_hold_runs_only_once_released(stack: Stack) -> None:
    workflow_id = stack.submit(wdl("echo.wdl"), {"echoes.message": "later"}, on_hold=True)
    assert stack.engine.wait_idle(1)  # nothing to wait for: On Hold never starts by itself
    assert stack.client.status(workflow_id) == "On Hold"
    assert stack.events.details() == []

    released = requests.post(f"{stack.server.url}/api/workflows/v1/{workflow_id}/releaseHold", timeout=10)

    assert released.json() == {"id": workflow_id, "status": "Submitted"}
    assert stack.finish(workflow_id) == "Succeeded"
    assert stack.client.outputs(workflow_id) == {"echoes.said": "later"}
    assert len(stack.events.details()) == 4
    again = requests.post(f"{stack.server.url}/api/workflows/v1/{workflow_id}/releaseHold", timeout=10)
    assert again.status_code == 403


def test_a_batch_runs_one_workflow_per_set_of_inputs(stack: Stack) -> None:
    answer = requests.post(
        f"{stack.server.url}/api/workflows/v1/batch",
        files={
            "workflowSource": ("echo.wdl", wdl("echo.wdl")),
            "workflowInputs": ("inputs.json", json.dumps([{"echoes.message": "a"}, {"echoes.message": "b"}])),
        },
        timeout=10,
    )

    assert answer.status_code == 201, answer.text
    ids = [w["id"] for w in answer.json()]
    assert stack.engine.wait_idle(40)
    assert [stack.client.outputs(i) for i in ids] == [{"echoes.said": "a"}, {"echoes.said": "b"}]
    assert {d["tags"]["cromwell-root-workflow-id"] for d in stack.events.details()} == set(ids)
