"""A run folder as the submit function sees it, the limits it is held to, and the findings (reasons,
warnings, missing files) that validation accumulates while it reads one."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from pydantic import BaseModel, ConfigDict, Field

#: Names Courier reads from the top of a run folder.
OPTIONS_NAME = "options.json"
LABELS_NAME = "labels.json"
WDL_SUFFIX = ".wdl"


class Limits(BaseModel):
    """How much of a run folder Courier is willing to read and check."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    max_file_bytes: int = Field(default=1_048_576, ge=1, description="largest single file read")
    max_wdl_files: int = Field(default=200, ge=1, description="most .wdl files in one run folder")
    max_total_bytes: int = Field(default=10 * 1_048_576, ge=1, description="all files read, together")
    max_s3_checks: int = Field(default=200, ge=0, description="most s3:// inputs checked per run")
    max_user_labels: int = Field(
        default=40,
        ge=0,
        le=50,
        description="labels.json entries (50 AWS tags minus Cromwell's and Courier's)",
    )


@dataclass(frozen=True, slots=True)
class RunFolder:
    """The files of one run folder, by POSIX path relative to `prefix`.

    `files` holds the bytes of every file that could be read; `oversized` names the files that
    were not read because they exceed the per-file limit (relative path -> size in bytes);
    `truncated` says the listing stopped before the end of the folder, and `skipped_wdl` counts
    the .wdl files left unread because the folder holds more than the limit. `inputs_name` is the
    relative path of the inputs file this run is for.
    """

    prefix: str
    files: Mapping[str, bytes]
    inputs_name: str
    oversized: Mapping[str, int] = field(default_factory=dict)
    truncated: bool = False
    #: .wdl files in the folder that were not read because there were too many
    skipped_wdl: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "files", MappingProxyType(dict(self.files)))
        object.__setattr__(self, "oversized", MappingProxyType(dict(self.oversized)))


@dataclass(slots=True)
class Findings:
    """What validation found so far: refusal reasons, warnings, and files the run still needs."""

    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    missing_files: list[str] = field(default_factory=list)

    def refuse(self, reason: str, *, missing: str | None = None) -> None:
        if reason not in self.reasons:
            self.reasons.append(reason)
        if missing is not None and missing not in self.missing_files:
            self.missing_files.append(missing)

    def warn(self, warning: str) -> None:
        if warning not in self.warnings:
            self.warnings.append(warning)


def shown(text: str, limit: int = 120) -> str:
    """`text` safe to quote in a sentence: control characters escaped, long text shortened."""
    out = "".join(
        ch if ch.isprintable() else f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}"
        for ch in text
    )
    return out if len(out) <= limit else out[: limit - 1] + "…"


def path_problem(path: str) -> str | None:  # noqa: PLR0911
    """Why `path` is not a usable relative POSIX path inside a run folder, or None when it is."""
    if not path:
        return "is an empty name"
    if any(not ch.isprintable() and ch != " " for ch in path):
        return "contains a control character"
    if path.startswith("/"):
        return "starts with '/'"
    if "\\" in path:
        return "contains a backslash"
    parts = path.split("/")
    if any(part in ("..", ".") for part in parts):
        return "contains a '.' or '..' path segment"
    if any(not part for part in parts):
        return "contains an empty path segment ('//' or a trailing '/')"
    return None


def is_wdl(path: str) -> bool:
    return path.lower().endswith(WDL_SUFFIX)


def top_level(path: str) -> bool:
    return posixpath.dirname(path) == ""
