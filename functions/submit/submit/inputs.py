"""Checking an inputs file against the main workflow's inputs, and finding the s3:// objects it
names.

Keys are Cromwell's: `<workflow>.<input>` for the workflow's own inputs and `<workflow>.<call>.<input>`
for call inputs the workflow leaves open (miniwdl's `available_inputs`). Values are checked
against the declared types with `WDL.values_from_json`, one input at a time so every bad value is
named.

The s3:// URIs returned for an existence check are the values at `File` positions (a `File`
input, the items of an `Array[File]`, the `File` members of a struct, ...): a `String` that
happens to hold an s3:// prefix (an output location, say) need not exist yet. Every s3:// string,
whatever its type, must still be a well-formed URI.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import WDL

from submit.folder import Findings, shown
from submit.jsonfile import json_kind

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_BAD_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BAD_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap")


@dataclass(frozen=True, slots=True)
class CheckedInputs:
    """What the inputs file asks of the workflow: the objects to check exist, in order, deduplicated."""

    s3_uris: tuple[str, ...]
    total_s3_uris: int


def s3_uri_problem(uri: str) -> str | None:  # noqa: PLR0911
    """Why `uri` is not a usable `s3://bucket/key` object URI, or None."""
    rest = uri[len("s3://") :]
    bucket, slash, key = rest.partition("/")
    if not bucket:
        return "it names no bucket"
    if not _BUCKET_RE.match(bucket):
        if len(bucket) < 3 or len(bucket) > 63:
            return f"the bucket name '{shown(bucket)}' must be 3 to 63 characters long"
        return (
            f"the bucket name '{shown(bucket)}' may hold only lowercase letters, digits, dots and hyphens, "
            "and must start and end with a letter or digit"
        )
    if ".." in bucket:
        return f"the bucket name '{shown(bucket)}' holds two dots in a row"
    try:
        ipaddress.IPv4Address(bucket)
    except ValueError:
        pass
    else:
        return f"the bucket name '{shown(bucket)}' is an IP address"
    if bucket.startswith(_BAD_BUCKET_PREFIXES) or bucket.endswith(_BAD_BUCKET_SUFFIXES):
        return f"'{shown(bucket)}' is not a valid bucket name"
    if not slash or not key:
        return "it names a bucket but no object key"
    if any(not ch.isprintable() for ch in key):
        return "its key contains a control character"
    return None


def _walk_strings(value: Any) -> Iterator[str]:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))


def _file_values(ty: Any, value: Any) -> Iterator[str]:
    """Strings at File positions of `value`, read along the WDL type `ty`."""
    stack: list[tuple[Any, Any]] = [(ty, value)]
    while stack:
        t, v = stack.pop()
        if isinstance(t, WDL.Type.File) and isinstance(v, str):
            yield v
        elif isinstance(t, WDL.Type.Array) and isinstance(v, list):
            stack.extend((t.item_type, item) for item in reversed(v))
        elif isinstance(t, WDL.Type.Map) and isinstance(v, dict):
            key_type, value_type = t.item_type
            if isinstance(key_type, WDL.Type.File):
                yield from (k for k in v if isinstance(k, str))
            stack.extend((value_type, item) for item in reversed(list(v.values())))
        elif isinstance(t, WDL.Type.Pair) and isinstance(v, dict):
            lowered = {str(k).lower(): item for k, item in v.items()}
            stack.append((t.right_type, lowered.get("right")))
            stack.append((t.left_type, lowered.get("left")))
        elif isinstance(t, WDL.Type.StructInstance) and isinstance(v, dict):
            members = t.members or {}
            stack.extend((members[k], item) for k, item in reversed(list(v.items())) if k in members)


def _suggestion(key: str, names: list[str]) -> str:
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.75)
    if not close:
        bare = key.rsplit(".", 1)[-1]
        close = [n for n in names if n.rsplit(".", 1)[-1] == bare][:1]
    return f" (did you mean '{close[0]}'?)" if close else ""


def _excerpt(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return shown(text, 60)


def _type_problem(key: str, value: Any, available: Any, namespace: str) -> str | None:
    """None when miniwdl accepts `value` for `key`; else "" or the detail of a nested problem."""
    try:
        WDL.values_from_json({key: value}, available, namespace=namespace)
    except WDL.Error.InputError as exc:
        nested = len(getattr(exc, "value_path", None) or ()) > 1
        return shown(str(exc), 200) if nested else ""
    except Exception as exc:
        return shown(str(exc) or type(exc).__name__, 200)
    return None


def _unknown_input_hint(key: str, prefix: str, names: list[str]) -> str:
    if not key.startswith(prefix) and "." not in key and prefix + key in names:
        return f" (inputs are named '{prefix}<input>': did you mean '{prefix}{shown(key)}'?)"
    if not key.startswith(prefix):
        return f" (inputs of workflow {prefix[:-1]} are named '{prefix}<input>'){_suggestion(key, names)}"
    return _suggestion(key, names)


def _value_problems(label: str, key: str, value: Any, decl: Any, workflow: Any) -> list[str]:
    """Every problem of one input's value; empty when it can be submitted."""
    where = f"{label}: input '{shown(key)}'"
    problems = [
        f"{where}: '{shown(text)}' is not a valid S3 URI: {problem}"
        for text in _walk_strings(value)
        if text.startswith("s3://") and (problem := s3_uri_problem(text)) is not None
    ]
    if value is None and not decl.type.optional and decl.expr is None:
        return [*problems, f"{where} ({decl.type}) is required and cannot be null"]
    folders = [
        f"{where} is a File but '{shown(text)}' names a folder"
        for text in _file_values(decl.type, value)
        if text.startswith("s3://") and text.endswith("/")
    ]
    if folders:
        return problems + folders
    detail = _type_problem(key, value, workflow.available_inputs, workflow.name)
    if detail is not None:
        detail = f": {detail}" if detail else ""
        problems.append(f"{where} should be {decl.type} but is {json_kind(value)} {_excerpt(value)}{detail}")
    return problems


def check_inputs(
    name: str, inputs: dict[str, Any], workflow: Any, findings: Findings, *, complete: bool = True
) -> CheckedInputs:
    """Record every problem of `inputs` for `workflow`; return the s3:// objects to check.
    `complete=False` checks the inputs given without asking for the required ones (values common
    to the rows of a sample sheet, which the rows complete)."""
    label = shown(name)
    prefix = workflow.name + "."
    declared: dict[str, Any] = {prefix + binding.name: binding.value for binding in workflow.available_inputs}
    names = sorted(declared)

    file_uris: list[str] = []
    for key, value in inputs.items():
        if key.startswith("#"):
            findings.warn(f"{label}: the key '{shown(key)}' is treated as a comment")
            continue
        if key not in declared:
            findings.refuse(f"{label}: unknown input '{shown(key)}'{_unknown_input_hint(key, prefix, names)}")
            continue
        problems = _value_problems(label, key, value, declared[key], workflow)
        for problem in problems:
            findings.refuse(problem)
        if not problems:
            file_uris.extend(
                text for text in _file_values(declared[key].type, value) if text.startswith("s3://")
            )

    for binding in workflow.required_inputs if complete else ():
        full = prefix + binding.name
        if full not in inputs:
            findings.refuse(f"{label}: required input '{full}' ({binding.value.type}) is missing")

    unique = tuple(dict.fromkeys(file_uris))
    return CheckedInputs(s3_uris=unique, total_s3_uris=len(unique))
