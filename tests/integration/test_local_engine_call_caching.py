"""The local engine honours Cromwell's call caching: a call with the same task, the same inputs
(files by content) and the same docker image as an earlier successful call copies its results,
runs no Batch job, and shows in the metadata as Cromwell shows a cache hit."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from courier.cromwell import CromwellClient, SubmitRequest
from local.cromwell_api import CromwellTestServer
from local.engine import EngineConfig, LocalEngine
from tests.support.engine_helpers import BUCKET, JOB_QUEUE_ARN, Recorder, jobs_by_task_id, wdl

CACHE_HIT_EVENTS = [
    "Pending",
    "RequestingExecutionToken",
    "WaitingForValueStore",
    "PreparingJob",
    "CallCacheReading",
    "UpdatingCallCache",
    "UpdatingJobStore",
]


class Engine:
    def __init__(
        self, engine: LocalEngine, server: CromwellTestServer, s3: Any, events: Recorder, data: Path
    ) -> None:
        self.engine = engine
        self.s3 = s3
        self.events = events
        self.data = data
        self.client = CromwellClient(server.url, max_attempts=1)

    def reads(self, folder: str, contents: dict[str, str]) -> list[str]:
        """Read files written under a folder of their own, so a re-run's files have new paths."""
        base = self.data / folder
        base.mkdir(parents=True)
        paths = []
        for name, text in contents.items():
            (base / name).write_text(text, encoding="utf-8")
            paths.append(str(base / name))
        return paths

    def run(self, reads: list[str], options: dict[str, Any] | None = None) -> tuple[str, str]:
        request = SubmitRequest(
            workflow_source=wdl("recover.wdl"),
            workflow_inputs=json.dumps({"recover.reads": reads}),
            workflow_options=json.dumps(options) if options is not None else None,
            requested_workflow_id=str(uuid.uuid4()),
        )
        workflow_id = self.client.submit(request).id
        assert self.engine.wait_idle(60), "the engine did not become idle"
        return workflow_id, self.client.status(workflow_id)

    def jobs_of(self, workflow_id: str) -> dict[str, list[dict[str, Any]]]:
        details = [d for d in self.events.details() if d["tags"]["cromwell-root-workflow-id"] == workflow_id]
        return jobs_by_task_id(details)

    def shards(self, workflow_id: str) -> list[dict[str, Any]]:
        calls = self.client.metadata(workflow_id)["calls"]
        return sorted(calls["recover.count"], key=lambda entry: entry["shardIndex"])

    def read(self, uri: str) -> str:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()

    def cache_entries(self) -> list[Path]:
        return sorted((self.engine.config.work_dir / "_call_cache").glob("*/*.json"))


GOOD = {"ana.txt": "a\nb\n", "bo.txt": "CORRUPT corrupt\n", "cy.txt": "x\ny\nz\n"}
FIXED = {**GOOD, "bo.txt": "one\n"}


@contextmanager
def running_engine(tmp_path: Path, *, call_caching: bool) -> Iterator[Engine]:
    """A local engine behind the REST server; `call_caching` is Cromwell's `call-caching.enabled`."""
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        events = Recorder()
        config = EngineConfig(
            work_dir=tmp_path / "work", bucket=BUCKET, job_queue_arn=JOB_QUEUE_ARN, call_caching=call_caching
        )
        local = LocalEngine(config, s3=s3, emit=events, post=Recorder())
        server = CromwellTestServer(backend=local).start()
        try:
            yield Engine(local, server, s3, events, tmp_path / "data")
        finally:
            server.stop()
            local.close()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    with running_engine(tmp_path, call_caching=True) as running:
        yield running


def test_a_rerun_with_the_fix_reuses_the_calls_that_succeeded(engine: Engine) -> None:
    first, status = engine.run(engine.reads("first", GOOD))
    assert status == "Failed"
    ran_first = engine.jobs_of(first)
    assert set(ran_first) == {f"recover.count-Some_{i}_-1" for i in range(3)}
    first_shards = engine.shards(first)
    assert [s["executionStatus"] for s in first_shards] == ["Done", "Failed", "Done"]
    for shard in first_shards:
        caching = shard["callCaching"]
        assert caching["effectiveCallCachingMode"] == "ReadAndWriteCache"
        assert (caching["hit"], caching["result"]) == (False, "Cache Miss")
        assert "CallCacheReading" in [e["description"] for e in shard["executionEvents"]]
    assert [s["callCaching"]["allowResultReuse"] for s in first_shards] == [True, False, True]
    # Only the two calls that succeeded were written to the cache; the failed one never.
    assert len(engine.cache_entries()) == 2

    # The same reads at new paths (files are hashed by content), the corrupt one fixed.
    second, status = engine.run(engine.reads("second", FIXED))

    assert status == "Succeeded"
    ran = engine.jobs_of(second)
    assert set(ran) == {"recover.count-Some_1_-1", "recover.total-None-1"}  # no Batch job for the hits
    shards = engine.shards(second)
    assert [s["executionStatus"] for s in shards] == ["Done", "Done", "Done"]
    for index in (0, 2):
        hit = shards[index]
        caching = hit["callCaching"]
        assert caching["hit"] is True
        assert caching["result"] == f"Cache Hit: {first}:recover.count:{index}"
        assert caching["effectiveCallCachingMode"] == "ReadAndWriteCache"
        assert caching["allowResultReuse"] is True
        assert caching["hashes"] == first_shards[index]["callCaching"]["hashes"]
        assert set(caching["hashes"]) == {
            "command template",
            "backend name",
            "input count",
            "output count",
            "runtime attribute",
            "output expression",
            "input",
        }
        runtime = set(caching["hashes"]["runtime attribute"])
        assert runtime == {"docker", "continueOnReturnCode", "failOnStderr"}
        assert set(caching["hashes"]["input"]) == {"File reads", "String unit"}
        assert caching["hashes"]["output count"] == "C4CA4238A0B923820DCC509A6F75849B"  # md5("1")
        assert [e["description"] for e in hit["executionEvents"]] == CACHE_HIT_EVENTS
        assert "jobId" not in hit
        assert hit["returnCode"] == 0
        # The results were copied under the new workflow's call folder.
        assert f"/recover/{second}/call-count/shard-{index}" in hit["callRoot"]
        assert engine.read(hit["stderr"]).startswith("counting ")
        assert engine.read(f"{hit['callRoot']}/count-{index}-rc.txt").strip() == "0"
    fixed = shards[1]["callCaching"]
    assert (fixed["hit"], fixed["result"]) == (False, "Cache Miss")
    assert shards[1]["jobId"] == ran["recover.count-Some_1_-1"][-1]["jobId"]

    outputs = engine.client.outputs(second)
    assert outputs["recover.sum"] == 2 + 1 + 3
    counts = outputs["recover.counts"]
    assert [engine.read(uri).split() for uri in counts] == [["2", "lines"], ["1", "lines"], ["3", "lines"]]
    assert all(f"/recover/{second}/call-count/shard-" in uri for uri in counts)


def test_read_from_cache_false_runs_every_call(engine: Engine) -> None:
    first, _ = engine.run(engine.reads("first", FIXED))
    assert len(engine.jobs_of(first)) == 4

    second, status = engine.run(engine.reads("second", FIXED), {"read_from_cache": False})

    assert status == "Succeeded"
    assert len(engine.jobs_of(second)) == 4
    for shard in engine.shards(second):
        caching = shard["callCaching"]
        assert caching["effectiveCallCachingMode"] == "WriteCache"
        assert "hit" not in caching
        assert "result" not in caching
        assert "CallCacheReading" not in [e["description"] for e in shard["executionEvents"]]
    # It still wrote its calls: a third run is served from the cache.
    third, _ = engine.run(engine.reads("third", FIXED))
    assert engine.jobs_of(third) == {}
    assert all(s["callCaching"]["hit"] for s in engine.shards(third))


def test_write_to_cache_false_leaves_nothing_to_reuse(engine: Engine) -> None:
    first, status = engine.run(engine.reads("first", FIXED), {"write_to_cache": False})
    assert status == "Succeeded"
    assert engine.cache_entries() == []
    assert {s["callCaching"]["effectiveCallCachingMode"] for s in engine.shards(first)} == {"ReadCache"}
    assert {s["callCaching"]["allowResultReuse"] for s in engine.shards(first)} == {False}

    second, _ = engine.run(engine.reads("second", FIXED))

    assert len(engine.jobs_of(second)) == 4
    assert {s["callCaching"]["result"] for s in engine.shards(second)} == {"Cache Miss"}


def test_without_call_caching_on_the_server_nothing_is_cached(tmp_path: Path) -> None:
    off = {"effectiveCallCachingMode": "CallCachingOff", "allowResultReuse": False}
    with running_engine(tmp_path, call_caching=False) as engine:
        engine.run(engine.reads("first", FIXED))
        second, _ = engine.run(engine.reads("second", FIXED), {"read_from_cache": True})

        assert len(engine.jobs_of(second)) == 4
        assert engine.cache_entries() == []
        assert [s["callCaching"] for s in engine.shards(second)] == [off, off, off]
