"""Cromwell's own request rules, beyond what its Swagger spec can say (see cromwell-on-aws.md)."""

from __future__ import annotations

import io
import json
import re
import uuid
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import yaml  # type: ignore[import-untyped]

IN_USE_MESSAGE = "Requested workflow IDs are already in use"
LABEL_KEY_MAX = 255
LABEL_VALUE_MAX = 255
_INPUTS_N = re.compile(r"^workflowInputs_([0-9]+)$")


class Rejection(Exception):
    """A request Cromwell refuses: HTTP status plus its `{"status","message","errors"}` body."""

    def __init__(self, message: str, errors: Sequence[str] = (), *, http_status: int = 400) -> None:
        self.message = message
        self.errors = list(errors)
        self.http_status = http_status
        super().__init__(message)

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": "fail" if self.http_status < 500 else "error",
            "message": self.message,
        }
        if self.errors:
            out["errors"] = self.errors
        return out


@dataclass(frozen=True)
class Submission:
    """One accepted submission, every part decoded."""

    part_names: tuple[str, ...]
    workflow_source: str | None
    workflow_url: str | None
    inputs: dict[str, Any]
    raw_inputs: dict[str, str]
    options: dict[str, Any] | None
    labels: dict[str, str]
    workflow_type: str | None
    workflow_type_version: str | None
    on_hold: bool
    requested_workflow_id: str | None
    dependencies: dict[str, bytes] | None = field(default=None, repr=False)
    raw_parts: dict[str, bytes] = field(default_factory=dict, repr=False)

    @property
    def workflow_name(self) -> str:
        source = self.workflow_source or ""
        found = re.search(r"^\s*workflow\s+([A-Za-z][A-Za-z0-9_]*)", source, re.MULTILINE)
        if found:
            return found.group(1)
        if self.workflow_url:
            stem = urlsplit(self.workflow_url).path.rsplit("/", 1)[-1].split(".")[0]
            if re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", stem):
                return stem
        return "workflow"


def is_uuid(value: str) -> bool:
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return False
    return str(parsed) == value.lower()


def check_workflow_id(value: str) -> None:
    if not is_uuid(value):
        raise Rejection(f"Invalid workflow ID: '{value}'.")


def _text(name: str, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Rejection(f"Part {name} is not UTF-8 text") from exc


def _json_object(name: str, text: str, *, yaml_ok: bool = False) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        if not yaml_ok:
            raise Rejection(f"Invalid {name}: not a valid JSON object") from None
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise Rejection(f"Invalid {name}: not a valid JSON or YAML object") from None
    if not isinstance(value, dict):
        raise Rejection(f"Invalid {name}: must be a JSON object, got {type(value).__name__}")
    return value


def check_labels(labels: Mapping[str, Any]) -> dict[str, str]:
    """Cromwell's label rules: string values, keys of 1..255 characters, values of at most 255."""
    problems: list[str] = []
    for key, value in labels.items():
        if not isinstance(value, str):
            problems.append(f"Label {key!r}: value must be a string")
            continue
        if not 1 <= len(key) <= LABEL_KEY_MAX:
            problems.append(f"Invalid label key {key[:40]!r}: must be 1 to {LABEL_KEY_MAX} characters")
        if len(value) > LABEL_VALUE_MAX:
            problems.append(f"Invalid label value for {key!r}: must be at most {LABEL_VALUE_MAX} characters")
    if problems:
        raise Rejection("Invalid labels", problems)
    return {str(k): str(v) for k, v in labels.items()}


def _unzip(data: bytes) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            broken = archive.testzip()
            if broken is not None:
                raise Rejection(f"Invalid workflowDependencies: {broken} is corrupt")
            return {info.filename: archive.read(info) for info in archive.infolist() if not info.is_dir()}
    except zipfile.BadZipFile as exc:
        raise Rejection("Invalid workflowDependencies: not a valid zip file") from exc


def _input_sets(raw: Mapping[str, bytes], *, batch: bool) -> list[tuple[dict[str, Any], str]]:
    """The inputs of each workflow, `workflowInputs_N` merged over `workflowInputs` (higher N wins),
    with the `workflowInputs` text each came from. `workflowInputs` may be a JSON array: one
    workflow per element (the batch route; the single route takes an array of one)."""
    base: list[tuple[dict[str, Any], str]] = [({}, "{}")]
    if "workflowInputs" in raw:
        text = _text("workflowInputs", raw["workflowInputs"])
        try:
            parsed = json.loads(text)
        except ValueError:
            try:
                parsed = yaml.safe_load(text)
            except yaml.YAMLError:
                raise Rejection("Invalid workflowInputs: not a valid JSON or YAML object") from None
        elements = parsed if isinstance(parsed, list) else [parsed]
        for element in elements:
            if not isinstance(element, dict):
                kind = type(element).__name__
                raise Rejection(f"Invalid workflowInputs: must be a JSON object, got {kind}")
        if not elements:
            raise Rejection("No inputs were provided")
        base = [(element, json.dumps(element) if isinstance(parsed, list) else text) for element in elements]
    elif batch:
        raise Rejection("No inputs were provided")
    if len(base) > 1 and not batch:
        raise Rejection("To submit more than one workflow at a time, use the batch endpoint.")
    extra = sorted((n for n in raw if _INPUTS_N.match(n)), key=lambda n: int(n.rsplit("_", 1)[1]))
    merged: dict[str, Any] = {}
    for name in extra:
        merged.update(_json_object(name, _text(name, raw[name])))
    return [({**inputs, **merged}, text) for inputs, text in base]


def _requested_ids(raw: Mapping[str, bytes], count: int, *, batch: bool) -> list[str | None]:
    """The requested workflow ids: one UUID (single route) or a JSON list of as many UUIDs as there
    are input sets (batch route)."""
    if "requestedWorkflowId" not in raw:
        return [None] * count
    text = _text("requestedWorkflowId", raw["requestedWorkflowId"]).strip()
    if not batch:
        if not is_uuid(text):
            raise Rejection(f"Invalid requestedWorkflowId: '{text}' is not a UUID")
        return [text.lower()]
    try:
        ids = json.loads(text)
    except ValueError:
        ids = None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise Rejection("Invalid requestedWorkflowId: must be a JSON list of UUID strings")
    bad = [i for i in ids if not is_uuid(i)]
    if bad:
        raise Rejection(f"Invalid requestedWorkflowId: {', '.join(repr(b) for b in bad)} not a UUID")
    if len(ids) != count:
        raise Rejection(
            f"Invalid requestedWorkflowId: {len(ids)} ids for {count} sets of inputs; give one id per set"
        )
    lowered = [i.lower() for i in ids]
    if len(set(lowered)) != len(lowered):
        raise Rejection("Invalid requestedWorkflowId: the same id is requested twice")
    return list(lowered)


def parse_submissions(
    parts: Sequence[tuple[str, bytes]], allowed: set[str], *, batch: bool
) -> list[Submission]:
    """Decode and check the multipart parts of a submit (one workflow) or of a batch submit (one
    workflow per element of the `workflowInputs` array, the other parts shared), as Cromwell does."""
    names = tuple(name for name, _ in parts)
    for name in names:
        if name not in allowed and not _INPUTS_N.match(name):
            raise Rejection(f"Unexpected body part name: {name}", [f"Unexpected body part name: {name}"])
    raw = dict(parts)

    source = _text("workflowSource", raw["workflowSource"]) if "workflowSource" in raw else None
    url = _text("workflowUrl", raw["workflowUrl"]).strip() if "workflowUrl" in raw else None
    if source is None and url is None:
        raise Rejection("Workflow source or workflow url needs to be supplied")
    if source is not None and url is not None:
        raise Rejection("Both workflow source and url can't be supplied")
    if url is not None:
        split = urlsplit(url)
        if split.scheme not in ("http", "https") or not split.netloc:
            raise Rejection(f"Error while validating workflow url: {url} is not an http or https URL")

    input_sets = _input_sets(raw, batch=batch)
    requested = _requested_ids(raw, len(input_sets), batch=batch)
    extra_inputs = {n: _text(n, raw[n]) for n in raw if _INPUTS_N.match(n)}

    options = (
        _json_object("workflowOptions", _text("workflowOptions", raw["workflowOptions"]))
        if ("workflowOptions" in raw)
        else None
    )
    labels = check_labels(_json_object("labels", _text("labels", raw["labels"]))) if "labels" in raw else {}

    on_hold = False
    if "workflowOnHold" in raw:
        flag = _text("workflowOnHold", raw["workflowOnHold"]).strip().lower()
        if flag not in ("true", "false"):
            raise Rejection(f"Invalid workflowOnHold: {flag!r} is not true or false")
        on_hold = flag == "true"

    deps = _unzip(raw["workflowDependencies"]) if "workflowDependencies" in raw else None
    wf_type = _text("workflowType", raw["workflowType"]) if "workflowType" in raw else None
    wf_version = (
        _text("workflowTypeVersion", raw["workflowTypeVersion"]) if "workflowTypeVersion" in raw else None
    )
    return [
        Submission(
            part_names=names,
            workflow_source=source,
            workflow_url=url,
            inputs=inputs,
            raw_inputs={"workflowInputs": text, **extra_inputs} if "workflowInputs" in raw else extra_inputs,
            options=options,
            labels=dict(labels),
            workflow_type=wf_type,
            workflow_type_version=wf_version,
            on_hold=on_hold,
            requested_workflow_id=workflow_id,
            dependencies=deps,
            raw_parts=raw,
        )
        for (inputs, text), workflow_id in zip(input_sets, requested, strict=True)
    ]
