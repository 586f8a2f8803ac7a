"""Cromwell's call caching, as the local engine models it: the mode, the cache, the metadata.

Cromwell reads and writes its call cache only when `call-caching.enabled = true` in its
configuration (`EngineConfig.call_caching` here); each workflow may then turn reading or writing off
with the workflow options `read_from_cache` and `write_to_cache` (both true when absent). A call's
hashes (see `local.engine.hashing`) aggregate into one key; a successful call is written under it;
a later call with the same key copies the earlier call's outputs instead of running (no Batch job).

The cache is a directory of JSON entries, `<dir>/<aggregated hash>/<entry>.json`, written by the
engine (one process) and read by the workflow runners (other processes): each entry is written
whole under a temporary name, then renamed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

OPTION_READ = "read_from_cache"
OPTION_WRITE = "write_to_cache"
#: The backend name Cromwell hashes (`backend name`) and shows in each call's `backend`.
BACKEND_NAME = "AWSBatch"
#: Files of a call's work directory a cache hit does not copy (miniwdl's copies of the inputs).
_NOT_COPIED = ("_miniwdl_inputs",)


@dataclass(frozen=True)
class CachingMode:
    """Whether a call reads and writes the cache; `name` is Cromwell's `effectiveCallCachingMode`."""

    read: bool
    write: bool

    @property
    def name(self) -> str:
        if self.read and self.write:
            return "ReadAndWriteCache"
        if self.read:
            return "ReadCache"
        if self.write:
            return "WriteCache"
        return "CallCachingOff"

    @property
    def active(self) -> bool:
        return self.read or self.write

    def without_read(self) -> CachingMode:
        """A retried attempt (or a volatile task) never reads the cache, as in Cromwell."""
        return CachingMode(read=False, write=self.write)

    @classmethod
    def named(cls, name: str) -> CachingMode:
        return {
            "ReadAndWriteCache": cls(True, True),
            "ReadCache": cls(True, False),
            "WriteCache": cls(False, True),
        }.get(name, OFF)


OFF = CachingMode(read=False, write=False)


def _flag(options: Mapping[str, Any], name: str) -> bool:
    value = options.get(name, True)
    if isinstance(value, str):
        return value.strip().lower() != "false"
    return bool(value)


def mode_for(enabled: bool, options: Mapping[str, Any] | None) -> CachingMode:
    """The workflow's mode: off unless the server enables call caching; then the options decide."""
    if not enabled:
        return OFF
    given = options or {}
    return CachingMode(read=_flag(given, OPTION_READ), write=_flag(given, OPTION_WRITE))


@dataclass(frozen=True)
class CacheEntry:
    """One successful call in the cache: where its results are, and who it was."""

    workflow_id: str
    fqn: str
    shard: int
    attempt: int
    return_code: int
    #: The call's miniwdl run directory on this machine (holding `work/` and `outputs.json`).
    task_dir: str
    stdout: str
    stderr: str
    written_at: float

    @property
    def details(self) -> str:
        """`<workflow id>:<call fqn>:<shard>`, as Cromwell names the source of a hit."""
        return f"{self.workflow_id}:{self.fqn}:{self.shard}"

    def usable(self) -> bool:
        """The source call's outputs are all there: miniwdl writes `outputs.json` only once every
        output was evaluated, so a call whose command succeeded but whose outputs did not is never
        copied."""
        base = Path(self.task_dir)
        return (base / "outputs.json").is_file() and (base / "work").is_dir()


class CallCache:
    """The cache directory: entries by aggregated hash."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def write(self, aggregated: str, entry: CacheEntry) -> Path:
        folder = self.directory / aggregated
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{entry.workflow_id}-{entry.fqn}-{entry.shard}-{entry.attempt}.json"
        target = folder / name
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(asdict(entry), out)
        os.replace(temporary, target)
        return target

    def entries(self, aggregated: str) -> list[CacheEntry]:
        """The entries written under `aggregated`, oldest first; unreadable ones are skipped."""
        found: list[CacheEntry] = []
        folder = self.directory / aggregated
        if not folder.is_dir():
            return found
        for path in folder.glob("*.json"):
            try:
                found.append(CacheEntry(**json.loads(path.read_text(encoding="utf-8"))))
            except (OSError, ValueError, TypeError):
                continue
        return sorted(found, key=lambda e: (e.written_at, e.details))

    def lookup(self, aggregated: str) -> CacheEntry | None:
        """The oldest usable entry for `aggregated`, or None (a cache miss)."""
        return next((e for e in self.entries(aggregated) if e.usable()), None)


def copy_results(entry: CacheEntry, work_dir: Path, stdout: Path, stderr: Path) -> None:
    """Copy a hit's results into the new call's directory (Cromwell's `copy` duplication
    strategy): its work directory (outputs and whatever else the command wrote, not miniwdl's
    copies of the inputs), stdout and stderr."""
    source = Path(entry.task_dir) / "work"
    shutil.copytree(
        source, work_dir, symlinks=True, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*_NOT_COPIED)
    )
    for origin, target in ((entry.stdout, stdout), (entry.stderr, stderr)):
        if os.path.isfile(origin):
            shutil.copyfile(origin, target)
        else:
            target.write_bytes(b"")


def metadata_block(
    mode: CachingMode,
    *,
    hit: CacheEntry | None = None,
    looked_up: bool = False,
    allow_reuse: bool | None = None,
    hashes: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A call's `callCaching` metadata, keys as Cromwell writes them (`CallCachingKeys`):
    `effectiveCallCachingMode` and `allowResultReuse` always; `hit` and `result` once the cache was
    read; `hashes` once the call ended."""
    block: dict[str, Any] = {
        "effectiveCallCachingMode": mode.name,
        "allowResultReuse": mode.write if allow_reuse is None else allow_reuse,
    }
    if hit is not None:
        block["hit"] = True
        block["result"] = f"Cache Hit: {hit.details}"
    elif looked_up:
        block["hit"] = False
        block["result"] = "Cache Miss"
    if hashes is not None:
        block["hashes"] = json.loads(json.dumps(hashes))
    return block
