"""The local engine's model of Cromwell's call caching: the mode a workflow gets, the hashes of a
call (what makes two calls the same), the cache's entries and the `callCaching` metadata."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import WDL

from local.engine.callcache import CacheEntry, CallCache, metadata_block, mode_for
from local.engine.hashing import aggregate, call_hashes

TASK = """version 1.0
task count {
  input {
    File reads
    String unit = "lines"
    Int threads = 1
  }
  command <<<
    wc -l < ~{reads} > counted.txt
  >>>
  output {
    File counted = "counted.txt"
  }
  runtime {
    docker: docker_image
    cpu: threads
  }
}
"""


@pytest.mark.parametrize(
    ("enabled", "options", "expected"),
    [
        (False, {"read_from_cache": True}, "CallCachingOff"),
        (True, None, "ReadAndWriteCache"),
        (True, {"read_from_cache": False}, "WriteCache"),
        (True, {"write_to_cache": False}, "ReadCache"),
        (True, {"read_from_cache": "false", "write_to_cache": False}, "CallCachingOff"),
    ],
)
def test_the_server_setting_and_the_workflow_options_make_the_mode(
    enabled: bool, options: dict[str, Any] | None, expected: str
) -> None:
    assert mode_for(enabled, options).name == expected


def test_a_retried_attempt_only_writes() -> None:
    assert mode_for(True, None).without_read().name == "WriteCache"
    assert mode_for(True, {"write_to_cache": False}).without_read().name == "CallCachingOff"


def load_task(tmp_path: Path, text: str = TASK) -> WDL.Tree.Task:
    source = tmp_path / "task.wdl"
    source.write_text(text.replace("docker_image", '"ubuntu:22.04"'), encoding="utf-8")
    (task,) = WDL.load(str(source)).tasks
    return task


def hashes(task: WDL.Tree.Task, reads: Path, **runtime: Any) -> dict[str, Any]:
    return call_hashes(task, {"reads": str(reads)}, {"docker": "ubuntu:22.04", "cpu": 1, **runtime})


def test_files_are_hashed_by_content_wherever_they_are(tmp_path: Path) -> None:
    task = load_task(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one, same, other = tmp_path / "a" / "r.txt", tmp_path / "b" / "elsewhere.txt", tmp_path / "b" / "r.txt"
    one.write_text("x\ny\n")
    same.write_text("x\ny\n")
    other.write_text("x\n")

    first = hashes(task, one)

    assert aggregate(first) == aggregate(hashes(task, same))
    assert aggregate(first) != aggregate(hashes(task, other))
    # The content's MD5 in lower case, as S3 gives it as the ETag of a one-part upload.
    assert first["input"]["File reads"] == hashlib.md5(b"x\ny\n", usedforsecurity=False).hexdigest()
    assert first["output count"] == "C4CA4238A0B923820DCC509A6F75849B"  # md5("1"), upper case
    assert set(first["runtime attribute"]) == {"docker", "continueOnReturnCode", "failOnStderr"}


def test_the_image_and_the_command_count_cpu_does_not(tmp_path: Path) -> None:
    task = load_task(tmp_path)
    reads = tmp_path / "r.txt"
    reads.write_text("x\n")
    base = aggregate(hashes(task, reads))

    assert aggregate(hashes(task, reads, cpu=8)) == base
    assert aggregate(hashes(task, reads, docker="ubuntu:24.04")) != base
    (tmp_path / "other").mkdir()
    changed = load_task(tmp_path / "other", TASK.replace("wc -l", "wc -w"))
    assert aggregate(hashes(changed, reads)) != base


def entry(tmp_path: Path, name: str, written_at: float, *, finished: bool) -> CacheEntry:
    task_dir = tmp_path / name
    (task_dir / "work").mkdir(parents=True)
    if finished:
        (task_dir / "outputs.json").write_text("{}")
    return CacheEntry(
        workflow_id=f"wf-{name}",
        fqn="w.count",
        shard=0,
        attempt=1,
        return_code=0,
        task_dir=str(task_dir),
        stdout=str(task_dir / "stdout.txt"),
        stderr=str(task_dir / "stderr.txt"),
        written_at=written_at,
    )


def test_a_lookup_finds_the_oldest_call_whose_outputs_were_all_read(tmp_path: Path) -> None:
    cache = CallCache(tmp_path / "cache")
    cache.write("ABC", entry(tmp_path, "unfinished", 1.0, finished=False))
    cache.write("ABC", entry(tmp_path, "newer", 3.0, finished=True))
    cache.write("ABC", entry(tmp_path, "older", 2.0, finished=True))
    (tmp_path / "cache" / "ABC" / "garbage.json").write_text("{not json")

    found = cache.lookup("ABC")

    assert found is not None
    assert found.workflow_id == "wf-older"
    assert found.details == "wf-older:w.count:0"
    assert cache.lookup("DEF") is None
    assert len(cache.entries("ABC")) == 3
    assert not list((tmp_path / "cache" / "ABC").glob(".*.tmp"))


def test_the_metadata_block_reads_as_cromwell_writes_it(tmp_path: Path) -> None:
    mode = mode_for(True, None)
    hit = entry(tmp_path, "source", 1.0, finished=True)

    assert metadata_block(mode, hit=hit, hashes={"input count": "X"}) == {
        "effectiveCallCachingMode": "ReadAndWriteCache",
        "allowResultReuse": True,
        "hit": True,
        "result": "Cache Hit: wf-source:w.count:0",
        "hashes": {"input count": "X"},
    }
    assert metadata_block(mode, looked_up=True, allow_reuse=False) == {
        "effectiveCallCachingMode": "ReadAndWriteCache",
        "allowResultReuse": False,
        "hit": False,
        "result": "Cache Miss",
    }
    assert json.loads(json.dumps(metadata_block(mode_for(False, None)))) == {
        "effectiveCallCachingMode": "CallCachingOff",
        "allowResultReuse": False,
    }
