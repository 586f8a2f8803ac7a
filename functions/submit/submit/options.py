"""Workflow options: Courier's own keys read out of options.json (and removed before Cromwell
sees the file), and the options Courier always sets."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from courier.conventions import (
    NOTIFY_MODES,
    OPTION_CALLBACK_URI,
    OPTION_MAIN_WDL,
    OPTION_NEXT,
    OPTION_NOTIFY,
    OPTION_PROJECT,
    OPTION_SAMPLE_SHEET,
    OPTION_SCRIPT_PREFIX,
    OPTION_SLACK_CHANNEL,
    SAMPLE_SHEET_SUFFIXES,
    script_prefix,
)
from courier.pipeline import NextSpec
from submit.folder import OPTIONS_NAME, Findings, path_problem, shown
from submit.jsonfile import json_kind

COURIER_OPTIONS = (
    OPTION_MAIN_WDL,
    OPTION_SLACK_CHANNEL,
    OPTION_PROJECT,
    OPTION_SAMPLE_SHEET,
    OPTION_NOTIFY,
    OPTION_NEXT,
)
_SLACK_CHANNEL_RE = re.compile(r"^[#@]?[\w.-]{1,80}$")


@dataclass(frozen=True, slots=True)
class CourierOptions:
    """Courier's keys from options.json, and the options left for Cromwell."""

    main_wdl: str | None
    slack_channel: str | None
    project: str | None
    cromwell_options: dict[str, Any]
    sample_sheet: str | None = None
    notify: str | None = None
    next_step: NextSpec | None = None


def _text(options: Mapping[str, Any], key: str, findings: Findings) -> str | None:
    if key not in options:
        return None
    value = options[key]
    if not isinstance(value, str) or not value.strip():
        findings.refuse(f"{OPTIONS_NAME}: {key} must be a non-empty string; it is {json_kind(value)}")
        return None
    return value.strip()


def read_courier_options(options: Mapping[str, Any], findings: Findings) -> CourierOptions:
    """Split options.json into Courier's keys (validated) and Cromwell's options."""
    for key in options:
        if key.startswith("courier_") and key not in COURIER_OPTIONS:
            close = difflib.get_close_matches(key, COURIER_OPTIONS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(COURIER_OPTIONS)})"
            findings.refuse(f"{OPTIONS_NAME}: unknown Courier option '{shown(key)}'{hint}")
    main_wdl = _text(options, OPTION_MAIN_WDL, findings)
    if main_wdl is not None:
        main_wdl = main_wdl.removeprefix("./")
        problem = path_problem(main_wdl)
        if problem is not None:
            findings.refuse(
                f"{OPTIONS_NAME}: {OPTION_MAIN_WDL} '{shown(main_wdl)}' {problem}; give the main WDL's "
                'path relative to the run folder, e.g. "main.wdl" or "pipelines/x/main.wdl"'
            )
            main_wdl = None
    slack_channel = _text(options, OPTION_SLACK_CHANNEL, findings)
    if slack_channel is not None and not _SLACK_CHANNEL_RE.match(slack_channel):
        findings.refuse(
            f"{OPTIONS_NAME}: {OPTION_SLACK_CHANNEL} '{shown(slack_channel)}' is not a Slack channel name "
            "or id (letters, digits, '-', '_' and '.', at most 80)"
        )
        slack_channel = None
    project = _text(options, OPTION_PROJECT, findings)
    if project is not None and len(project) > 255:
        findings.refuse(f"{OPTIONS_NAME}: {OPTION_PROJECT} is {len(project)} characters; at most 255")
        project = None
    sample_sheet = _text(options, OPTION_SAMPLE_SHEET, findings)
    if sample_sheet is not None and (
        "/" in sample_sheet
        or path_problem(sample_sheet) is not None
        or not sample_sheet.lower().endswith(SAMPLE_SHEET_SUFFIXES)
    ):
        findings.refuse(
            f"{OPTIONS_NAME}: {OPTION_SAMPLE_SHEET} '{shown(sample_sheet)}' must be the name of a .tsv or "
            'a .csv file beside options.json, e.g. "cohort.tsv"'
        )
        sample_sheet = None
    notify = _text(options, OPTION_NOTIFY, findings)
    if notify is not None and notify not in NOTIFY_MODES:
        findings.refuse(
            f"{OPTIONS_NAME}: {OPTION_NOTIFY} '{shown(notify)}' is not one of {', '.join(NOTIFY_MODES)} "
            "(the end messages of a batch's runs: its digest, one per run, or both)"
        )
        notify = None
    next_step: NextSpec | None = None
    if OPTION_NEXT in options:
        spec = NextSpec.read(options[OPTION_NEXT])
        if isinstance(spec, NextSpec):
            next_step = spec
        else:
            for problem in spec:
                findings.refuse(f"{OPTIONS_NAME}: {OPTION_NEXT}: {shown(problem, 400)}")
    rest = {key: value for key, value in options.items() if not key.startswith("courier_")}
    return CourierOptions(main_wdl, slack_channel, project, rest, sample_sheet, notify, next_step)


def finish_options(
    cromwell_options: Mapping[str, Any],
    *,
    workflow_id: str,
    callback_uri: str | None,
    extra: Mapping[str, Any],
    findings: Findings,
) -> dict[str, Any]:
    """The options sent to Cromwell: the user's, the deployment's, then Courier's own."""
    merged = dict(cromwell_options)
    for key, value in extra.items():
        if key in merged and merged[key] != value:
            findings.warn(f"{OPTIONS_NAME}: option '{shown(key)}' is set by the deployment")
        merged[key] = value
    fixed: dict[str, Any] = {OPTION_SCRIPT_PREFIX: script_prefix(workflow_id)}
    if callback_uri:
        fixed[OPTION_CALLBACK_URI] = callback_uri
    for key, value in fixed.items():
        if key in merged and merged[key] != value:
            findings.warn(f"{OPTIONS_NAME}: option '{key}' is set by Courier; your value was replaced")
        merged[key] = value
    return merged
