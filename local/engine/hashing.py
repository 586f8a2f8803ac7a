"""A task call's call-caching hashes, as Cromwell computes them (`CallCacheHashingJobActor`).

Loaded only inside the runner process (it reads miniwdl's task objects). The hashes are MD5s,
upper-case hex as Cromwell writes them, of: the task's command template, the backend name, the
number of inputs and of outputs, each output's expression, the call-caching runtime attributes
(`docker`, `continueOnReturnCode`, `failOnStderr`; unspecified ones take their defaults), and each
input by value. File inputs are hashed by content: the lower-case hex MD5 of the file, which is the
ETag S3 gives an object uploaded in one part (Cromwell on AWS hashes `s3://` inputs by ETag).
Equal command templates and equal inputs make equal commands after input substitution.

The aggregated hash, the cache key, is the MD5 of every `<key><value>` sorted by key, keys written
as Cromwell joins their components (`runtime attribute: docker`, `input: File reads`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import WDL

from local.engine.callcache import BACKEND_NAME

_RUNTIME_DEFAULTS = {"continueOnReturnCode": "0", "failOnStderr": "false"}
_CHUNK = 1 << 20
UNSPECIFIED = "N/A"


class HashingError(Exception):
    """A value could not be hashed (an input file missing, unreadable inputs)."""


def md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest().upper()


def file_md5(path: str) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with open(path, "rb") as source:
            while chunk := source.read(_CHUNK):
                digest.update(chunk)
    except OSError as exn:
        raise HashingError(f"cannot hash {path}: {exn}") from exn
    return digest.hexdigest()


def _directory_md5(path: str) -> str:
    lines = []
    for root, _, names in sorted(os.walk(path)):
        for name in sorted(names):
            full = os.path.join(root, name)
            lines.append(f"{os.path.relpath(full, path)} {file_md5(full)}")
    return hashlib.md5("\n".join(lines).encode(), usedforsecurity=False).hexdigest()


def source_text(pos: WDL.Error.SourcePosition) -> str:
    """The WDL text at `pos` (a task's command, an output's expression), as written."""
    try:
        lines = Path(pos.abspath).read_text(encoding="utf-8").splitlines()
    except OSError:
        return f"{pos.uri}:{pos.line}:{pos.column}"
    picked = lines[pos.line - 1 : pos.end_line]
    if not picked:
        return ""
    if len(picked) == 1:
        return picked[0][pos.column - 1 : pos.end_column - 1]
    picked[0] = picked[0][pos.column - 1 :]
    picked[-1] = picked[-1][: pos.end_column - 1]
    return "\n".join(picked)


def _simpletons(name: str, value: WDL.Value.Base) -> Iterator[tuple[str, str, WDL.Value.Base]]:
    """Cromwell's `WomValueSimpleton`s: compound values flattened to (type, name, value)."""
    if isinstance(value, WDL.Value.Null):
        return
    if isinstance(value, WDL.Value.Array):
        for index, item in enumerate(value.value):
            yield from _simpletons(f"{name}[{index}]", item)
    elif isinstance(value, WDL.Value.Map):
        for key, item in value.value:
            yield from _simpletons(f"{name}:{key.value}", item)
    elif isinstance(value, WDL.Value.Pair):
        yield from _simpletons(f"{name}:left", value.value[0])
        yield from _simpletons(f"{name}:right", value.value[1])
    elif isinstance(value, WDL.Value.Struct):
        for member, item in value.value.items():
            yield from _simpletons(f"{name}:{member}", item)
    elif isinstance(value, WDL.Value.File):
        yield "File", name, value
    elif isinstance(value, WDL.Value.Directory):
        yield "Directory", name, value
    else:
        yield str(value.type).rstrip("?"), name, value


def _value_hash(value: WDL.Value.Base) -> str:
    if isinstance(value, WDL.Value.File):
        return file_md5(str(value.value))
    if isinstance(value, WDL.Value.Directory):
        return _directory_md5(str(value.value))
    if isinstance(value, WDL.Value.String):
        return md5(value.value)
    return md5(json.dumps(value.json))


def call_hashes(task: WDL.Tree.Task, inputs: Mapping[str, Any], runtime: Mapping[str, Any]) -> dict[str, Any]:
    """The call's hashes, nested as Cromwell's metadata shows them (`callCaching.hashes`).

    `inputs` is the call's inputs as miniwdl writes them (`inputs.json` of the task's run
    directory: names without namespace, files as host paths); `runtime` the evaluated runtime
    attributes (JSON values)."""
    try:
        values = WDL.values_from_json(dict(inputs), task.available_inputs)
    except Exception as exn:
        raise HashingError(f"unreadable call inputs: {exn}") from exn
    flat = [s for binding in values for s in _simpletons(binding.name, binding.value)]
    hashed_inputs = {f"{kind} {name}": _value_hash(value) for kind, name, value in flat}
    docker = runtime.get("docker") or runtime.get("container")
    if isinstance(docker, list):
        docker = docker[0] if docker else None
    attributes = {"docker": md5(str(docker)) if docker else UNSPECIFIED}
    for name, default in _RUNTIME_DEFAULTS.items():
        given = runtime.get(name)
        if given is None and name == "continueOnReturnCode":
            given = runtime.get("returnCodes")
        text = default if given is None else (given if isinstance(given, str) else json.dumps(given))
        attributes[name] = md5(text)
    return {
        "command template": md5(source_text(task.command.pos)),
        "backend name": md5(BACKEND_NAME),
        "input count": md5(str(len(flat))),
        "output count": md5(str(len(task.outputs))),
        "runtime attribute": attributes,
        "output expression": {
            f"{str(decl.type).rstrip('?')} {decl.name}": md5(source_text(decl.expr.pos))
            for decl in task.outputs
            if decl.expr is not None
        },
        "input": hashed_inputs,
    }


def aggregate(hashes: Mapping[str, Any]) -> str:
    """The cache key: MD5 of the sorted `<key><value>` pairs, keys joined with `: `."""
    pairs: list[tuple[str, str]] = []

    def walk(prefix: str, node: Mapping[str, Any]) -> None:
        for key, value in node.items():
            full = f"{prefix}: {key}" if prefix else key
            if isinstance(value, Mapping):
                walk(full, value)
            else:
                pairs.append((full, str(value)))

    walk("", hashes)
    digest = hashlib.md5(usedforsecurity=False)
    for key, value in sorted(pairs):
        digest.update((key + value).encode("utf-8"))
    return digest.hexdigest().upper()
