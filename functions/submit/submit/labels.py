"""Workflow labels: the user's labels.json checked against Cromwell's limits and against AWS tag
rules (Cromwell 92 copies every label to the Batch jobs' tags), and Courier's own labels made
tag-safe.

Cromwell: key 1..255 characters, value at most 255. AWS tags: key at most 128 characters, value
at most 256, letters, digits, spaces and `_ . : / = + - @` only, nothing starting with `aws:`,
at most 50 tags per resource, of which Cromwell takes 5 and Courier up to 5.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from courier.conventions import LABEL_INPUTS_KEY, LABEL_RUN_FOLDER, LABEL_SLACK_CHANNEL, LABEL_SOURCE_BUCKET
from submit.folder import Findings, shown
from submit.jsonfile import json_kind

MAX_KEY = 128
MAX_VALUE = 255
_TAG_PUNCTUATION = frozenset(" _.:/=+-@")
_RESERVED_PREFIXES = ("courier-", "cromwell-")
_HASH_CHARS = 12
_ALLOWED = "labels may hold only letters, digits, spaces and _ . : / = + - @"
#: Label keys only Courier sets (`project` may come from labels.json or from options.json).
RESERVED_LABELS = frozenset({LABEL_RUN_FOLDER, LABEL_INPUTS_KEY, LABEL_SOURCE_BUCKET, LABEL_SLACK_CHANNEL})


def _tag_safe_char(ch: str) -> bool:
    return ch.isalnum() or ch in _TAG_PUNCTUATION


def _bad_chars(text: str) -> str:
    bad = sorted({ch for ch in text if not _tag_safe_char(ch)})
    return " ".join(repr(ch) if ch.isprintable() else shown(ch) for ch in bad[:8])


def tag_safe(text: str, *, limit: int = MAX_VALUE) -> str:
    """`text` rewritten to be a valid label value and AWS tag: disallowed characters become `_`,
    an `aws:` prefix is defused, and text longer than `limit` keeps its start plus a stable hash."""
    safe = "".join(ch if _tag_safe_char(ch) else "_" for ch in text)
    if safe.lower().startswith("aws:"):
        safe = "_" + safe
    if len(safe) > limit:
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_CHARS]
        safe = safe[: limit - _HASH_CHARS - 1] + "-" + digest
    return safe


def _key_problems(key: str, reserved: frozenset[str]) -> list[str]:
    text = f"label '{shown(key, 60)}'"
    problems: list[str] = []
    if not key:
        problems.append(f"a label key is empty; keys need 1 to {MAX_KEY} characters")
    elif len(key) > MAX_KEY:
        problems.append(f"{text} key is {len(key)} characters; AWS tags allow at most {MAX_KEY}")
    if any(not _tag_safe_char(ch) for ch in key):
        problems.append(f"{text} key contains {_bad_chars(key)}; {_ALLOWED}")
    if key.lower().startswith("aws:"):
        problems.append(f"{text} starts with 'aws:', which AWS reserves")
    if key in reserved or key.lower().startswith(_RESERVED_PREFIXES):
        problems.append(f"{text} is reserved for Courier or Cromwell; choose another key")
    return problems


def _value_problems(key: str, value: Any) -> list[str]:
    text = f"label '{shown(key, 60)}'"
    if not isinstance(value, str):
        return [
            f"{text} has {json_kind(value)} value; label values must be strings "
            '(write it in quotes, e.g. "42")'
        ]
    problems: list[str] = []
    if len(value) > MAX_VALUE:
        problems.append(f"{text} value is {len(value)} characters; Cromwell allows at most {MAX_VALUE}")
    if any(not _tag_safe_char(ch) for ch in value):
        problems.append(f"{text} value contains {_bad_chars(value)}; {_ALLOWED}")
    if value.lower().startswith("aws:"):
        problems.append(f"{text} value starts with 'aws:', which AWS reserves")
    return problems


def check_user_labels(
    name: str, labels: dict[str, Any], findings: Findings, *, max_labels: int, reserved: frozenset[str]
) -> dict[str, str]:
    """Record every problem of the user's labels; return the usable ones."""
    label = shown(name)
    good: dict[str, str] = {}
    if len(labels) > max_labels:
        findings.refuse(
            f"{label} holds {len(labels)} labels; at most {max_labels} fit, because Cromwell copies labels "
            "to AWS tags (50 per job) next to its own and Courier's"
        )
    for key, value in labels.items():
        problems = _key_problems(key, reserved) + _value_problems(key, value)
        for problem in problems:
            findings.refuse(f"{label}: {problem}")
        if not problems and isinstance(value, str):
            good[key] = value
    return good


def courier_labels(
    *,
    run_folder: str,
    inputs_key: str,
    bucket: str,
    project: str | None,
    slack_channel: str | None,
) -> dict[str, str]:
    """The labels Courier adds to every run, each value tag-safe and within Cromwell's limits."""
    labels = {
        LABEL_RUN_FOLDER: tag_safe(run_folder),
        LABEL_INPUTS_KEY: tag_safe(inputs_key),
        LABEL_SOURCE_BUCKET: tag_safe(bucket),
    }
    if project:
        labels["project"] = tag_safe(project)
    if slack_channel:
        labels[LABEL_SLACK_CHANNEL] = tag_safe(slack_channel.lstrip("#"))
    return labels


def merge_labels(
    user: Mapping[str, str], courier: Mapping[str, str], extra: Mapping[str, str], findings: Findings
) -> dict[str, str]:
    """User labels, then deployment labels, then Courier's; an override is noted as a warning."""
    merged = dict(user)
    for source, labels in (("the deployment", extra), ("Courier", courier)):
        for key, value in labels.items():
            if key in merged and merged[key] != value:
                findings.warn(f"labels.json: label '{shown(key)}' is set by {source} to '{shown(value)}'")
            merged[key] = value
    return merged
