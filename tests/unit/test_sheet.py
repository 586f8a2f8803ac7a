"""The sample-sheet parser: header resolution, cells read by WDL type, common values, and every
hostile sheet refused with its own reason (the sheet as a whole, or the bad rows alone)."""

from __future__ import annotations

from typing import Any

import pytest
import WDL

from submit.sheet import Sheet, read_sheet

WDL_SOURCE = """
version 1.0

struct Lane {
  String id
  File fastq
}

workflow cohort {
  input {
    String sample_id
    File reads
    Int threads = 2
    Float min_quality = 20.5
    Boolean paired = false
    Array[String] tags = []
    Lane? lane
    String? note
  }
  output {
    String out = sample_id
  }
}
"""


@pytest.fixture(scope="module")
def workflow() -> Any:
    doc = WDL.parse_document(WDL_SOURCE)
    doc.typecheck()
    return doc.workflow


def read(text: str | bytes, workflow: Any, name: str = "samples.tsv", **kwargs: Any) -> Sheet:
    body = text.encode() if isinstance(text, str) else text
    return read_sheet(name, body, workflow=workflow, **kwargs)


def tsv(*lines: str) -> str:
    return "\n".join(lines) + "\n"


def test_rows_become_typed_inputs(workflow: Any) -> None:
    sheet = read(
        tsv(
            "sample\tsample_id\treads\tthreads\tmin_quality\tpaired\ttags\tcohort.lane",
            'S1\tid1\ts3://data-bucket/s1.fq\t4\t30\tTRUE\t["a","b"]\t{"id": "L1", "fastq": "s3://data-bucket/l1.fq"}',
            "S2\tid2\ts3://data-bucket/s2.fq\t-1\t1e2\tfalse\t\t",
        ),
        workflow,
    )
    assert not sheet.refused, sheet.reasons
    assert [row.sample for row in sheet.rows] == ["S1", "S2"]
    assert [row.line for row in sheet.rows] == [2, 3]
    first, second = sheet.rows
    assert first.inputs == {
        "cohort.sample_id": "id1",
        "cohort.reads": "s3://data-bucket/s1.fq",
        "cohort.threads": 4,
        "cohort.min_quality": 30.0,
        "cohort.paired": True,
        "cohort.tags": ["a", "b"],
        "cohort.lane": {"id": "L1", "fastq": "s3://data-bucket/l1.fq"},
    }
    assert first.s3_uris == ("s3://data-bucket/s1.fq", "s3://data-bucket/l1.fq")
    # a negative number is not a formula; empty cells leave optional inputs unset
    assert second.inputs == {
        "cohort.sample_id": "id2",
        "cohort.reads": "s3://data-bucket/s2.fq",
        "cohort.threads": -1,
        "cohort.min_quality": 100.0,
        "cohort.paired": False,
    }


def test_common_values_fill_empty_cells_and_cells_win(workflow: Any) -> None:
    common = {"cohort.reads": "s3://data-bucket/shared.fq", "cohort.threads": 8}
    sheet = read(tsv("sample_id\tthreads", "a\t", "b\t16"), workflow, common=common)
    assert not sheet.refused, sheet.reasons
    assert [row.inputs for row in sheet.rows] == [
        {"cohort.reads": "s3://data-bucket/shared.fq", "cohort.threads": 8, "cohort.sample_id": "a"},
        {"cohort.reads": "s3://data-bucket/shared.fq", "cohort.threads": 16, "cohort.sample_id": "b"},
    ]
    # no sample column: rows are named by their line
    assert [row.sample for row in sheet.rows] == ["line-2", "line-3"]


def test_csv_with_quoted_json_cell(workflow: Any) -> None:
    text = 'sample,sample_id,reads,tags\r\nS1,x,s3://data-bucket/r.fq,"[""a"", ""b""]"\r\n'
    sheet = read(text, workflow, name="samples.csv")
    assert not sheet.refused, sheet.reasons
    assert sheet.rows[0].inputs is not None
    assert sheet.rows[0].inputs["cohort.tags"] == ["a", "b"]


def test_byte_order_mark_is_dropped_with_a_warning(workflow: Any) -> None:
    sheet = read("\ufeff" + tsv("sample_id\treads", "a\ts3://data-bucket/a.fq"), workflow)
    assert not sheet.refused
    assert sheet.rows[0].ok
    assert any("byte-order mark" in w for w in sheet.warnings)


# -- the sheet as a whole is refused: no row is kept -------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected", "kwargs"),
    [
        pytest.param(
            b"sample_id\treads\n\xff\xfe\tx\n",
            "is not UTF-8 text (byte 0xff at offset 16)",
            {},
            id="non-utf8",
        ),
        pytest.param(b"", "samples.tsv is empty", {}, id="empty"),
        pytest.param(b"\n\n  \n", "samples.tsv is empty", {}, id="blank"),
        pytest.param(b"sample_id\treads\n", "has a header but no rows", {}, id="header-only"),
        pytest.param(
            b"sample_id\treads\tthreds\na\ts3://b-1/x\t1\n",
            "the column 'threds' is not an input of workflow cohort (did you mean 'threads'?)",
            {},
            id="unknown-column",
        ),
        pytest.param(
            b"sample_id\tthreads\na\t1\n",
            "required input 'cohort.reads' (File) is neither a column nor in inputs.json",
            {},
            id="missing-required-column",
        ),
        pytest.param(
            b"sample_id\treads\tcohort.reads\na\ts3://b-1/x\ts3://b-1/y\n",
            "the columns 'reads' and 'cohort.reads' both name input 'cohort.reads'",
            {},
            id="duplicate-column",
        ),
        pytest.param(
            b"sample_id\treads\n" + b"".join(b"s%d\ts3://b-1/x\n" % n for n in range(4)),
            "holds more than 3 rows (the limit)",
            {"max_rows": 3},
            id="over-row-limit",
        ),
        pytest.param(
            b"sample_id\treads\na\ts3://b-1/x\nb\t" + b"x" * 200_000 + b"\n",
            "samples.tsv line 3: a cell holds more than 131,072 characters",
            {},
            id="huge-cell",
        ),
        pytest.param(
            b"sample_id\treads\na\ts3://b-1/x\n",
            "inputs.json: input 'cohort.threads' should be Int but is a string",
            {"common": {"cohort.threads": "four"}},
            id="bad-common-value",
        ),
    ],
)
def test_hostile_sheets_are_refused_whole(
    workflow: Any, body: bytes, expected: str, kwargs: dict[str, Any]
) -> None:
    sheet = read(body, workflow, **kwargs)
    assert sheet.refused
    assert sheet.rows == ()
    assert any(expected in reason for reason in sheet.reasons), sheet.reasons


# -- one bad row refuses that row alone ------------------------------------------------------


@pytest.mark.parametrize(
    ("bad_line", "expected"),
    [
        pytest.param(
            "S2\tb\ts3://b-1/x",
            "samples.tsv line 3 (S2) has 3 cells; the header has 4 columns",
            id="ragged-short",
        ),
        pytest.param(
            "S2\tb\ts3://b-1/x\t1\textra", "has 5 cells; the header has 4 columns", id="ragged-long"
        ),
        pytest.param(
            "S2\tb\ts3://b-1/x\tfour",
            "input 'cohort.threads' should be Int but the cell 'four' is not a whole number",
            id="wrong-type",
        ),
        pytest.param(
            'S2\t=HYPERLINK("http://x")\ts3://b-1/x\t1',
            "the cell of 'cohort.sample_id' starts with '=', which a spreadsheet would run as a formula",
            id="formula-equals",
        ),
        pytest.param("S2\t@SUM(A1)\ts3://b-1/x\t1", "starts with '@'", id="formula-at"),
        pytest.param("S2\t+cmd|' /C calc'!A0\ts3://b-1/x\t1", "starts with '+'", id="formula-plus"),
        pytest.param(
            "-2+3\tb\ts3://b-1/x\t1", "the cell of 'sample' starts with '-'", id="formula-minus-sample"
        ),
        pytest.param(
            "S2\t\ts3://b-1/x\t1",
            "samples.tsv line 3 (S2): required input 'cohort.sample_id' (String) is missing",
            id="empty-required",
        ),
        pytest.param(
            "S1\tb\ts3://b-1/x\t1",
            "the sample name 'S1' is also on line 2; sample names must be unique",
            id="duplicate-sample",
        ),
    ],
)
def test_a_bad_row_is_refused_alone(workflow: Any, bad_line: str, expected: str) -> None:
    sheet = read(
        tsv("sample\tsample_id\treads\tthreads", "S1\ta\ts3://b-1/x\t1", bad_line, "S3\tc\ts3://b-1/z\t3"),
        workflow,
    )
    assert not sheet.refused, sheet.reasons
    rows = {row.line: row for row in sheet.rows}
    assert rows[3].inputs is None
    assert any(expected in reason for reason in rows[3].reasons), rows[3].reasons
    assert rows[4].ok
    if "unique" in expected:  # both rows of a repeated name are refused: neither is the one meant
        assert not rows[2].ok
    else:
        assert rows[2].ok


def test_struct_cell_checked_like_an_inputs_file(workflow: Any) -> None:
    sheet = read(
        tsv("sample_id\treads\tlane", 'a\ts3://b-1/x\t{"id": "L1"}', "b\ts3://b-1/x\tnot json"), workflow
    )
    first, second = sheet.rows
    assert not first.ok
    assert any("input 'cohort.lane' should be Lane" in r for r in first.reasons), first.reasons
    assert any("is not JSON" in r for r in second.reasons), second.reasons


def test_float_and_boolean_cells(workflow: Any) -> None:
    sheet = read(tsv("sample_id\treads\tmin_quality\tpaired", "a\ts3://b-1/x\tnan\tyes"), workflow)
    (row,) = sheet.rows
    assert any("'nan' is not a number" in r for r in row.reasons)
    assert any("'yes' is not true or false" in r for r in row.reasons)
