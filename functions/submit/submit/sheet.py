"""A sample sheet (`samples.tsv`, `samples.csv`) read into one inputs object per row, or refused.

The header names workflow inputs: `sample_id` means `<workflow>.sample_id`, and full names
(`<workflow>.x`, `<workflow>.<call>.x`) are taken as they are. An optional `sample` column names
each row (else `line-<n>`). Cells are read by the input's WDL type: `Int`, `Float`, `Boolean`,
`String`, `File` from their text, anything else (arrays, maps, pairs, structs) from a JSON cell;
an empty cell leaves the input to the common values (`inputs.json`) or, when optional, unset. The
row's inputs (common values, then its cells) are then checked exactly as an inputs file is
(`submit.inputs.check_inputs`).

Two kinds of refusal:

- the sheet as a whole (`Sheet.reasons`; no row is kept): not UTF-8, empty, no rows, more rows
  than the limit, a header column that is empty, repeated or names no input, a required input
  neither a column nor a common value, a problem in the common values;
- one row (`SheetRow.reasons`): a row with more or fewer cells than the header, a cell a
  spreadsheet would run as a formula, a cell that is not of its input's type, an empty cell for
  a required input, a sample name used by another row (every row of that name is refused).

`read_sheet` is pure: no S3, no network.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import math
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import WDL

from submit.folder import Findings, shown
from submit.inputs import check_inputs
from submit.jsonfile import decode_text

SAMPLE_COLUMN = "sample"
MAX_SAMPLE_CHARS = 128
#: What starts a formula in a spreadsheet (OWASP's CSV injection list).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_INT_RE = re.compile(r"^[+-]?\d+$")
_BOOLEANS = {"true": True, "false": False}


@dataclass(frozen=True, slots=True)
class SheetRow:
    """One row: its line in the file, its sample name, and its inputs or why it is refused."""

    line: int
    sample: str
    inputs: dict[str, Any] | None
    reasons: tuple[str, ...] = ()
    s3_uris: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.inputs is not None and not self.reasons


@dataclass(frozen=True, slots=True)
class Sheet:
    name: str
    columns: tuple[str, ...] = ()
    rows: tuple[SheetRow, ...] = ()
    reasons: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    #: Required inputs are neither columns nor common values: an inputs.json may be on its way.
    needs_common: bool = False

    @property
    def refused(self) -> bool:
        return bool(self.reasons)


@dataclass(slots=True)
class _Header:
    columns: list[str] = field(default_factory=list)  # resolved input names ("" for `sample`)
    sample_index: int | None = None


def dialect_for(name: str) -> str:
    return "tsv" if name.lower().endswith(".tsv") else "csv"


def _records(text: str, dialect: str) -> Iterator[tuple[int, list[str]]]:
    stream = io.StringIO(text, newline="")
    if dialect == "tsv":
        reader = csv.reader(stream, delimiter="\t", quoting=csv.QUOTE_NONE, strict=True)
    else:
        reader = csv.reader(stream, strict=True)
    for cells in reader:
        yield reader.line_num, cells


def _hint(column: str, names: list[str]) -> str:
    close = difflib.get_close_matches(column, names, n=1, cutoff=0.75)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _read_header(cells: list[str], name: str, workflow: Any, findings: Findings) -> _Header:
    prefix = workflow.name + "."
    declared = {prefix + binding.name for binding in workflow.available_inputs}
    short = sorted({n[len(prefix) :] for n in declared} | declared)
    header = _Header()
    seen: dict[str, str] = {}
    for position, raw in enumerate(cells, start=1):
        column = raw.strip()
        if not column:
            findings.refuse(f"{name}: column {position} of the header has no name")
            header.columns.append("")
            continue
        if column == SAMPLE_COLUMN and prefix + SAMPLE_COLUMN not in declared:
            if header.sample_index is not None:
                findings.refuse(f"{name}: the header names the column 'sample' more than once")
            header.sample_index = position - 1
            header.columns.append("")
            continue
        full = column if column in declared else prefix + column
        if full not in declared:
            findings.refuse(
                f"{name}: the column '{shown(column)}' is not an input of workflow {workflow.name}"
                f"{_hint(column, short)}"
            )
            header.columns.append("")
            continue
        if full in seen:
            findings.refuse(
                f"{name}: the columns '{shown(seen[full])}' and '{shown(column)}' both name input '{full}'"
            )
        seen[full] = column
        if column == SAMPLE_COLUMN:
            header.sample_index = position - 1
        header.columns.append(full)
    return header


def _formula(cell: str) -> bool:
    return cell.startswith(_FORMULA_STARTS) and not _NUMBER_RE.match(cell)


def _cell_value(text: str, ty: Any) -> tuple[Any, str | None]:  # noqa: PLR0911
    """The JSON value of a cell for an input of type `ty`, or why it cannot be one."""
    if isinstance(ty, WDL.Type.Boolean):
        value = _BOOLEANS.get(text.lower())
        return (value, None) if value is not None else (None, "is not true or false")
    if isinstance(ty, WDL.Type.Int):
        return (int(text), None) if _INT_RE.match(text) else (None, "is not a whole number")
    if isinstance(ty, WDL.Type.Float):
        if not _NUMBER_RE.match(text) or not math.isfinite(float(text)):
            return None, "is not a number"
        return float(text), None
    if isinstance(ty, WDL.Type.String | WDL.Type.File | WDL.Type.Directory):
        return text, None
    try:
        return json.loads(text), None
    except ValueError:
        return None, "is not JSON (arrays, maps, pairs and structs are given as JSON in their cell)"


def _sample_problem(sample: str) -> str | None:
    if any(not ch.isprintable() for ch in sample):
        return "contains a control character"
    if len(sample) > MAX_SAMPLE_CHARS:
        return f"is {len(sample)} characters; at most {MAX_SAMPLE_CHARS}"
    return None


def _read_row(
    line: int, cells: list[str], header: _Header, types: Mapping[str, Any], name: str
) -> tuple[str, dict[str, Any], list[str]]:
    """The row's sample name, the values of its cells, and the problems of its cells."""
    sample = ""
    if header.sample_index is not None and header.sample_index < len(cells):
        sample = cells[header.sample_index].strip()
    sample = sample or f"line-{line}"
    where = f"{name} line {line} ({shown(sample, 60)})"
    problems: list[str] = []
    if len(cells) != len(header.columns):
        problems.append(
            f"{where} has {len(cells)} cell{'s' if len(cells) != 1 else ''}; the header has "
            f"{len(header.columns)} columns"
        )
        return sample, {}, problems
    problem = _sample_problem(sample)
    if problem is not None:
        problems.append(f"{where}: the sample name {problem}")
    values: dict[str, Any] = {}
    for column, raw in zip(header.columns, cells, strict=True):
        label = column or SAMPLE_COLUMN
        if _formula(raw):
            problems.append(
                f"{where}: the cell of '{shown(label)}' starts with '{shown(raw[0])}', which a spreadsheet "
                "would run as a formula; Courier refuses such cells"
            )
            continue
        text = raw.strip()
        if not column or not text:
            continue
        value, why = _cell_value(text, types[column])
        if why is not None:
            problems.append(
                f"{where}: input '{column}' should be {types[column]} but the cell '{shown(text, 60)}' {why}"
            )
            continue
        values[column] = value
    return sample, values, problems


def _common_problems(common: Mapping[str, Any], workflow: Any, common_name: str) -> Findings:
    findings = Findings()
    check_inputs(common_name, dict(common), workflow, findings, complete=False)
    return findings


def _required_columns(header: _Header, common: Mapping[str, Any], workflow: Any, name: str) -> list[str]:
    prefix = workflow.name + "."
    given = set(header.columns) | set(common)
    return [
        f"{name}: required input '{prefix}{binding.name}' ({binding.value.type}) is neither a column "
        "nor in inputs.json"
        for binding in workflow.required_inputs
        if prefix + binding.name not in given
    ]


def read_sheet(
    name: str,
    body: bytes,
    *,
    workflow: Any,
    common: Mapping[str, Any] | None = None,
    common_name: str = "inputs.json",
    max_rows: int = 5000,
) -> Sheet:
    """Read the sheet `name` for `workflow` (miniwdl's `WDL.Tree.Workflow`); see the module doc."""
    common = dict(common or {})
    findings = Findings()
    text = decode_text(name, body, findings)
    if text is None:
        return Sheet(name, reasons=tuple(findings.reasons))
    header, raw_rows = _split(text, name, workflow, max_rows, findings)
    if header is None and not findings.reasons:
        findings.refuse(f"{name} is empty; it needs a header line naming inputs and one line per sample")
    elif header is not None and not raw_rows and not findings.reasons:
        findings.refuse(f"{name} has a header but no rows; add one line per sample")
    missing = _required_columns(header, common, workflow, name) if header is not None else []
    for reason in missing:
        findings.refuse(reason)
    common_findings = _common_problems(common, workflow, common_name)
    for reason in common_findings.reasons:
        findings.refuse(reason)
    for warning in common_findings.warnings:
        findings.warn(warning)
    if findings.reasons or header is None:
        return Sheet(
            name,
            reasons=tuple(findings.reasons),
            warnings=tuple(findings.warnings),
            needs_common=bool(missing),
        )

    types = {binding_name: decl.type for binding_name, decl in _declarations(workflow).items()}
    read = [(line, *_read_row(line, cells, header, types, name)) for line, cells in raw_rows]
    rows = _checked_rows(read, common, workflow, name)
    columns = tuple(column or SAMPLE_COLUMN for column in header.columns)
    return Sheet(name, columns=columns, rows=tuple(rows), warnings=tuple(findings.warnings))


def _split(
    text: str, name: str, workflow: Any, max_rows: int, findings: Findings
) -> tuple[_Header | None, list[tuple[int, list[str]]]]:
    """The header (resolved) and the raw rows, blank lines left out, at most `max_rows`."""
    header: _Header | None = None
    raw_rows: list[tuple[int, list[str]]] = []
    last_line = 0
    try:
        for line, cells in _records(text, dialect_for(name)):
            last_line = line
            if not any(cell.strip() for cell in cells):
                continue  # blank lines
            if header is None:
                header = _read_header(cells, name, workflow, findings)
                continue
            if len(raw_rows) >= max_rows:
                findings.refuse(
                    f"{name} holds more than {max_rows:,} rows (the limit); split it into sheets of at "
                    f"most {max_rows:,} rows"
                )
                break
            raw_rows.append((line, cells))
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            findings.refuse(
                f"{name} line {last_line + 1}: a cell holds more than {csv.field_size_limit():,} characters; "
                "put large values in a file and give its s3:// path"
            )
        else:
            findings.refuse(f"{name} cannot be read as {dialect_for(name).upper()}: {shown(str(exc))}")
    return header, raw_rows


def _checked_rows(
    read: list[tuple[int, str, dict[str, Any], list[str]]],
    common: Mapping[str, Any],
    workflow: Any,
    name: str,
) -> list[SheetRow]:
    """Each row's inputs (common values, then its cells) checked as an inputs file is; a sample
    name used twice refuses every row of that name."""
    counts = Counter(sample for _, sample, _, _ in read)
    rows = []
    for line, sample, values, problems in read:
        if counts[sample] > 1:
            others = [str(other) for other, named, _, _ in read if named == sample and other != line]
            problems.append(
                f"{name} line {line}: the sample name '{shown(sample, 60)}' is also on line "
                f"{', '.join(others[:5])}; sample names must be unique"
            )
        inputs = {**common, **values}
        uris: tuple[str, ...] = ()
        if not problems:
            checked = Findings()
            result = check_inputs(f"{name} line {line} ({shown(sample, 60)})", inputs, workflow, checked)
            problems.extend(checked.reasons)
            uris = result.s3_uris
        rows.append(
            SheetRow(
                line=line,
                sample=sample,
                inputs=None if problems else inputs,
                reasons=tuple(problems),
                s3_uris=uris,
            )
        )
    return rows


def _declarations(workflow: Any) -> dict[str, Any]:
    prefix = workflow.name + "."
    return {prefix + binding.name: binding.value for binding in workflow.available_inputs}
