"""From a run folder to a submission plan, or to a refusal that names every problem found.

`plan_submission` is pure: it reads only the `RunFolder` it is given (no S3, no network), and it
raises nothing but `RunRejected`. A refusal whose reasons include files that are not there yet
(no WDL at all, an import not found, the main WDL named in options.json) lists them in
`RunRejected.missing_files`, so the caller can wait for a folder still being copied.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from courier.conventions import OPTION_MAIN_WDL, requested_workflow_id
from courier.errors import RunRejected
from courier.pipeline import NextSpec
from submit.folder import (
    LABELS_NAME,
    OPTIONS_NAME,
    Findings,
    Limits,
    RunFolder,
    is_wdl,
    path_problem,
    shown,
)
from submit.jsonfile import read_json_object
from submit.labels import RESERVED_LABELS, check_user_labels, courier_labels, merge_labels
from submit.next_step import check_references
from submit.options import CourierOptions, finish_options, read_courier_options

if TYPE_CHECKING:
    from submit.wdl import WdlPackage

__all__ = ["Limits", "RunFolder", "SubmissionPlan", "analyse_folder", "plan_submission"]

_EMPTY_MAPPING: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class SubmissionPlan:
    """Everything a Cromwell submission needs, already validated.

    `workflow_inputs`, `workflow_options` and `labels` are JSON text, ready to be multipart parts.
    `workflow_source` is the main WDL as stored in `workflow_dependencies` (its imports rewritten
    when it climbs out of its directory), so Cromwell resolves imports against the ZIP's root.
    `s3_uris` are the input objects to check before submitting (at most `Limits.max_s3_checks`).
    `routing` holds `slack_channel`, `project` and `notify` when options.json names them.
    """

    workflow_id: str
    workflow_name: str
    workflow_source: str
    workflow_dependencies: bytes | None
    workflow_inputs: str
    workflow_options: str
    labels: str
    workflow_type: str
    workflow_type_version: str
    main_wdl: str
    s3_uris: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    routing: Mapping[str, str] = field(default=_EMPTY_MAPPING)
    #: `courier_next` of options.json, checked against this workflow (`submit.next_step`).
    next_step: NextSpec | None = None
    #: The run's place in a pipeline, as the run item keeps it (`courier.models.RunRecord.pipeline`).
    pipeline: Mapping[str, Any] = field(default=_EMPTY_MAPPING)

    @property
    def label_map(self) -> Mapping[str, str]:
        """The labels as a mapping (the `labels` JSON text, parsed)."""
        parsed: dict[str, str] = json.loads(self.labels)
        return MappingProxyType(parsed)

    @property
    def slack_channel(self) -> str | None:
        return self.routing.get("slack_channel")

    @property
    def project(self) -> str | None:
        return self.routing.get("project")


def _check_folder(
    folder: RunFolder, limits: Limits, findings: Findings
) -> tuple[dict[str, bytes], dict[str, int]]:
    """Names, sizes and counts; return the files that can be used, and those too big to use."""
    oversized = dict(folder.oversized)
    for path, size in sorted(folder.oversized.items()):
        if size > limits.max_file_bytes:
            findings.refuse(f"{shown(path)} is {size:,} bytes; the limit is {limits.max_file_bytes:,}")
        else:
            findings.refuse(
                f"{shown(path)} ({size:,} bytes) was not read: the run folder's files add up to more than "
                f"{limits.max_total_bytes:,} bytes"
            )
    usable: dict[str, bytes] = {}
    total = 0
    wdl_count = 0
    for path, body in sorted(folder.files.items()):
        problem = path_problem(path)
        relevant = is_wdl(path) or path in (OPTIONS_NAME, LABELS_NAME) or path == folder.inputs_name
        if problem is not None:
            if relevant and path != folder.inputs_name:  # the inputs file's name is reported on its own
                findings.refuse(f"the file name '{shown(path)}' {problem}; rename it")
            continue
        if len(body) > limits.max_file_bytes:
            oversized[path] = len(body)
            findings.refuse(f"{shown(path)} is {len(body):,} bytes; the limit is {limits.max_file_bytes:,}")
            continue
        total += len(body)
        wdl_count += is_wdl(path)
        usable[path] = body
    wdl_count += folder.skipped_wdl
    if wdl_count > limits.max_wdl_files:
        findings.refuse(
            f"the run folder holds {wdl_count:,} .wdl files; the limit is {limits.max_wdl_files:,}"
        )
    if total > limits.max_total_bytes:
        findings.refuse(
            f"the run folder's files add up to {total:,} bytes; the limit is {limits.max_total_bytes:,}"
        )
    if folder.truncated:
        findings.refuse(
            f"the run folder holds more files than Courier reads (it stopped after {len(folder.files):,}); "
            "keep only the workflow's files and its inputs in the folder"
        )
    return usable, oversized


def _read_optional(name: str, files: Mapping[str, bytes], findings: Findings) -> dict[str, Any] | None:
    if name not in files:
        return None
    parsed = read_json_object(name, files[name], findings)
    return parsed[0] if parsed is not None else None


def _inputs_path_problem(folder: RunFolder) -> str | None:
    problem = path_problem(folder.inputs_name)
    if problem is not None:
        return f"the inputs file name '{shown(folder.inputs_name)}' {problem}; rename it"
    return None


def plan_submission(
    folder: RunFolder,
    *,
    bucket: str,
    inputs_key: str,
    version_id: str | None,
    sequencer: str | None,
    limits: Limits | None = None,
    callback_uri: str | None = None,
    extra_options: Mapping[str, Any] | None = None,
    extra_labels: Mapping[str, str] | None = None,
) -> SubmissionPlan:
    """Validate `folder` for the inputs file `inputs_key` and plan its Cromwell submission.

    `extra_options` and `extra_labels` are the deployment's: they override the user's values
    (with a warning) and are themselves overridden by Courier's. Raises `RunRejected` with every
    reason found; never anything else.
    """
    limits = limits or Limits()
    extra_options = dict(extra_options or {})
    extra_labels = dict(extra_labels or {})
    findings = Findings()
    workflow_id = requested_workflow_id(bucket, inputs_key, version_id, sequencer)

    inputs_problem = _inputs_path_problem(folder)
    if inputs_problem is not None:
        findings.refuse(inputs_problem)
    files, oversized = _check_folder(folder, limits, findings)

    options_doc = _read_optional(OPTIONS_NAME, files, findings)
    courier = read_courier_options(options_doc or {}, findings)
    labels_doc = _read_optional(LABELS_NAME, files, findings)

    inputs: tuple[dict[str, Any], str] | None = None
    if folder.inputs_name in files:
        inputs = read_json_object(folder.inputs_name, files[folder.inputs_name], findings)
    elif folder.inputs_name not in oversized and inputs_problem is None:
        findings.refuse(f"{shown(folder.inputs_name)}: the inputs file is not in the run folder")

    package = _analyse_wdl(files, oversized, folder.inputs_name, courier, findings)

    # miniwdl is heavy to import: it is loaded by the first run that gets this far, not at cold
    # start, so redeliveries, ignored keys and refusals before planning never pay for it.
    from submit.inputs import CheckedInputs, check_inputs  # noqa: PLC0415

    checked = CheckedInputs(s3_uris=(), total_s3_uris=0)
    if package is not None and inputs is not None:
        checked = check_inputs(folder.inputs_name, inputs[0], package.workflow, findings)
    if package is not None and courier.next_step is not None:
        check_references(courier.next_step, package.workflow, findings, folder=folder.prefix)

    user_labels = check_user_labels(
        LABELS_NAME,
        labels_doc or {},
        findings,
        max_labels=max(0, limits.max_user_labels - len(extra_labels)),
        reserved=RESERVED_LABELS,
    )

    if findings.reasons or package is None or inputs is None:
        if not findings.reasons:
            findings.refuse("the run could not be validated")
        raise RunRejected(findings.reasons, missing_files=findings.missing_files)

    s3_uris = checked.s3_uris
    if len(s3_uris) > limits.max_s3_checks:
        findings.warn(
            f"{shown(folder.inputs_name)} names {len(s3_uris):,} s3:// files; Courier checked that the first "
            f"{limits.max_s3_checks:,} exist"
        )
        s3_uris = s3_uris[: limits.max_s3_checks]

    options = finish_options(
        courier.cromwell_options,
        workflow_id=workflow_id,
        callback_uri=callback_uri,
        extra=extra_options,
        findings=findings,
    )
    labels = merge_labels(
        user_labels,
        courier_labels(
            run_folder=folder.prefix,
            inputs_key=inputs_key,
            bucket=bucket,
            project=courier.project,
            slack_channel=courier.slack_channel,
        ),
        {key: value for key, value in extra_labels.items() if isinstance(value, str)},
        findings,
    )
    routing = {
        key: value
        for key, value in (
            ("slack_channel", courier.slack_channel),
            ("project", courier.project),
            ("notify", courier.notify),
        )
        if value
    }
    return SubmissionPlan(
        workflow_id=workflow_id,
        workflow_name=package.workflow_name,
        workflow_source=package.workflow_source,
        workflow_dependencies=package.dependencies,
        workflow_inputs=inputs[1],
        workflow_options=json.dumps(options, ensure_ascii=False),
        labels=json.dumps(labels, ensure_ascii=False),
        workflow_type="WDL",
        workflow_type_version=package.version,
        main_wdl=package.main_wdl,
        s3_uris=s3_uris,
        warnings=tuple(findings.warnings),
        routing=MappingProxyType(routing),
        next_step=courier.next_step,
    )


def analyse_folder(
    folder: RunFolder, limits: Limits, findings: Findings
) -> tuple[WdlPackage | None, CourierOptions, dict[str, Any] | None]:
    """The checks `plan_submission` makes of a folder before it reads an inputs file: sizes and
    names, options.json, the main WDL. Returns the type-checked workflow (None when refused),
    Courier's options, and `folder.inputs_name` read as a JSON object when the folder holds it.
    A sample sheet reads its folder through this, so its rows meet the same workflow."""
    files, oversized = _check_folder(folder, limits, findings)
    courier = read_courier_options(_read_optional(OPTIONS_NAME, files, findings) or {}, findings)
    common = _read_optional(folder.inputs_name, files, findings)
    package = _analyse_wdl(files, oversized, folder.inputs_name, courier, findings)
    if package is not None and courier.next_step is not None:
        check_references(courier.next_step, package.workflow, findings, folder=folder.prefix)
    return package, courier, common


def _analyse_wdl(
    files: Mapping[str, bytes],
    oversized: Mapping[str, int],
    inputs_name: str,
    courier: CourierOptions,
    findings: Findings,
) -> WdlPackage | None:
    from submit.wdl import analyse  # noqa: PLC0415 - lazy: see plan_submission()

    sources = {path: body for path, body in files.items() if path != inputs_name}
    return analyse(sources, oversized, findings, chosen_main=courier.main_wdl, option_name=OPTION_MAIN_WDL)
