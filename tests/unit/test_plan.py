"""plan_submission on the fixture workflows: what Cromwell would receive, how the main WDL is
chosen, what is warned about, and that nothing but RunRejected ever escapes."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
import WDL
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from courier.conventions import (
    LABEL_INPUTS_KEY,
    LABEL_RUN_FOLDER,
    LABEL_SLACK_CHANNEL,
    LABEL_SOURCE_BUCKET,
    OPTION_CALLBACK_URI,
    OPTION_SCRIPT_PREFIX,
    requested_workflow_id,
    script_prefix,
)
from courier.errors import RunRejected
from submit.labels import tag_safe
from submit.plan import Limits, RunFolder, SubmissionPlan, plan_submission
from tests.fixtures.bad_runs import GOOD_INPUTS, GREET_WDL, MAIN_WDL, folder

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "wdl"
BUCKET = "courier-runs"
CALLBACK = "https://courier.example/callback?token=secret"


def fixture_files(name: str) -> dict[str, bytes]:
    root = FIXTURES / name
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def plan(
    files: dict[str, bytes],
    inputs_name: str,
    *,
    prefix: str = "runs/demo/",
    version_id: str | None = "v1",
    limits: Limits | None = None,
    callback_uri: str | None = CALLBACK,
    **kwargs: Any,
) -> SubmissionPlan:
    return plan_submission(
        RunFolder(prefix=prefix, files=files, inputs_name=inputs_name),
        bucket=BUCKET,
        inputs_key=prefix + inputs_name,
        version_id=version_id,
        sequencer="0055AED6DCD90281E5",
        limits=limits or Limits(),
        callback_uri=callback_uri,
        **kwargs,
    )


def refusal(files: dict[str, bytes], inputs_name: str = "sampleA.inputs.json", **kwargs: Any) -> RunRejected:
    with pytest.raises(RunRejected) as refused:
        plan(files, inputs_name, **kwargs)
    return refused.value


def zip_entries(data: bytes | None) -> dict[str, bytes]:
    assert data is not None
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def load_as_cromwell_would(tmp_path: Path, p: SubmissionPlan) -> Any:
    """Unzip the dependencies and resolve the workflow source's imports against the ZIP root."""
    if p.workflow_dependencies is not None:
        for name, body in zip_entries(p.workflow_dependencies).items():
            target = tmp_path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
    source = tmp_path / "workflowSource.wdl"
    source.write_text(p.workflow_source, encoding="utf-8")
    return WDL.load(str(source), check_quant=True)


# --- the three fixtures -------------------------------------------------------------------------


@pytest.mark.parametrize("sample", ["sampleA", "sampleB", "sampleC"])
def test_rnaseq_sample_plans(sample: str) -> None:
    files = fixture_files("rnaseq")
    p = plan(files, f"{sample}.inputs.json", prefix="runs/rnaseq/")

    assert p.workflow_name == "rnaseq"
    assert p.main_wdl == "main.wdl"
    assert p.workflow_type == "WDL"
    assert p.workflow_type_version == "1.0"
    assert p.workflow_id == requested_workflow_id(BUCKET, f"runs/rnaseq/{sample}.inputs.json", "v1", None)
    assert p.workflow_inputs == files[f"{sample}.inputs.json"].decode()
    assert p.workflow_source.rstrip() == files["main.wdl"].decode().rstrip()
    assert p.workflow_source == zip_entries(p.workflow_dependencies)["main.wdl"].decode()
    assert p.warnings == ()
    assert p.s3_uris
    assert all(uri.startswith("s3://courier-test-data/") for uri in p.s3_uris)
    assert len(set(p.s3_uris)) == len(p.s3_uris)


def test_rnaseq_zip_holds_the_imports_only() -> None:
    files = fixture_files("rnaseq")
    p = plan(files, "sampleA.inputs.json", prefix="runs/rnaseq/")
    entries = zip_entries(p.workflow_dependencies)
    assert sorted(entries) == [
        "main.wdl",
        "subworkflows/quant.wdl",
        "tasks/align.wdl",
        "tasks/qc.wdl",
        "tasks/structs.wdl",
    ]
    assert "MANIFEST.json" not in entries
    for name in entries:
        assert entries[name].decode().strip() == files[name].decode().strip()


def test_rnaseq_s3_uris_are_the_file_inputs() -> None:
    p = plan(fixture_files("rnaseq"), "sampleA.inputs.json", prefix="runs/rnaseq/")
    assert p.s3_uris == (
        "s3://courier-test-data/rnaseq/sampleA_L001_R1.fastq.gz",
        "s3://courier-test-data/rnaseq/sampleA_L001_R2.fastq.gz",
        "s3://courier-test-data/rnaseq/sampleA_L002_R1.fastq.gz",
        "s3://courier-test-data/rnaseq/sampleA_L002_R2.fastq.gz",
        "s3://courier-test-data/reference/GRCh38.transcripts.fa",
    )


def test_rnaseq_options_and_labels() -> None:
    p = plan(fixture_files("rnaseq"), "sampleB.inputs.json", prefix="runs/rnaseq/")
    options = json.loads(p.workflow_options)
    assert options == {
        "read_from_cache": True,
        "write_to_cache": True,
        "final_workflow_outputs_dir": "s3://courier-test-data/outputs/rnaseq",
        OPTION_SCRIPT_PREFIX: script_prefix(p.workflow_id),
        OPTION_CALLBACK_URI: CALLBACK,
    }
    labels = json.loads(p.labels)
    assert labels == {
        "team": "genomics",
        "cost-centre": "RNA-42",
        "study": "pilot 2026",
        LABEL_RUN_FOLDER: "runs/rnaseq/",
        LABEL_INPUTS_KEY: "runs/rnaseq/sampleB.inputs.json",
        LABEL_SOURCE_BUCKET: BUCKET,
        "project": "rnaseq-pilot",
        LABEL_SLACK_CHANNEL: "rnaseq-runs",
    }
    assert dict(p.label_map) == labels
    assert dict(p.routing) == {"slack_channel": "#rnaseq-runs", "project": "rnaseq-pilot"}
    assert p.slack_channel == "#rnaseq-runs"
    assert p.project == "rnaseq-pilot"


def test_no_callback_uri_means_no_callback_option() -> None:
    p = plan(fixture_files("hello"), "inputs.json", callback_uri=None)
    assert OPTION_CALLBACK_URI not in json.loads(p.workflow_options)


def test_rnaseq_source_loads_against_the_zip(tmp_path: Path) -> None:
    p = plan(fixture_files("rnaseq"), "sampleC.inputs.json", prefix="runs/rnaseq/")
    doc = load_as_cromwell_would(tmp_path, p)
    assert doc.workflow.name == "rnaseq"


def test_nested_main_climbs_out_of_its_directory(tmp_path: Path) -> None:
    files = fixture_files("nested")
    p = plan(files, "inputs.json", prefix="runs/nested/")
    assert p.main_wdl == "pipelines/x/main.wdl"
    assert p.workflow_name == "x"
    entries = zip_entries(p.workflow_dependencies)
    assert sorted(entries) == ["__outside_wdl/tasks/common.wdl", "main.wdl"]
    assert 'import "__outside_wdl/tasks/common.wdl" as common' in p.workflow_source
    assert "../../tasks/common.wdl" not in p.workflow_source
    assert entries["main.wdl"].decode() == p.workflow_source
    assert b"../../tasks/common.wdl" in files["pipelines/x/main.wdl"]  # the user's file is untouched
    doc = load_as_cromwell_would(tmp_path, p)
    assert [t.name for t in doc.imports[0].doc.tasks] == ["greet", "shout"]


def test_hello_has_no_dependencies() -> None:
    files = fixture_files("hello")
    p = plan(files, "inputs.json", prefix="runs/hello/")
    assert p.workflow_dependencies is None
    assert p.workflow_source == files["hello.wdl"].decode()
    assert p.main_wdl == "hello.wdl"
    assert p.s3_uris == ()
    assert json.loads(p.workflow_inputs) == {"hello.who": "Courier"}


def test_plans_are_deterministic() -> None:
    files = fixture_files("rnaseq")
    first = plan(files, "sampleA.inputs.json", prefix="runs/rnaseq/")
    again = plan(dict(reversed(list(files.items()))), "sampleA.inputs.json", prefix="runs/rnaseq/")
    assert first == again
    assert first.workflow_dependencies == again.workflow_dependencies
    elsewhere = plan(files, "sampleA.inputs.json", prefix="elsewhere/deeper/rnaseq/")
    assert elsewhere.workflow_dependencies == first.workflow_dependencies
    reupload = plan(files, "sampleA.inputs.json", prefix="runs/rnaseq/", version_id="v2")
    assert reupload.workflow_id != first.workflow_id


def test_zip_entries_have_fixed_dates() -> None:
    p = plan(fixture_files("nested"), "inputs.json")
    assert p.workflow_dependencies is not None
    with zipfile.ZipFile(io.BytesIO(p.workflow_dependencies)) as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_draft2_workflow_type_version() -> None:
    wdl = b"workflow w {\n  call t\n}\n\ntask t {\n  command {\n    echo hi\n  }\n}\n"
    p = plan({"w.wdl": wdl, "inputs.json": b"{}"}, "inputs.json")
    assert p.workflow_type_version == "draft-2"


def test_version_1_1_workflow() -> None:
    source = MAIN_WDL.replace("version 1.0", "version 1.1")
    files = folder(main=source, greet=GREET_WDL.replace("version 1.0", "version 1.1"))
    assert plan(files, "sampleA.inputs.json").workflow_type_version == "1.1"


# --- main WDL selection ---------------------------------------------------------------------------

OTHER_WORKFLOW = (
    b"version 1.0\n\nworkflow other {\n  call nothing\n}\n\ntask nothing {\n  command <<< echo x >>>\n}\n"
)


def test_courier_main_wdl_chooses_among_candidates() -> None:
    options = json.dumps({"courier_main_wdl": "other.wdl"}).encode()
    files = folder(inputs={}, more={"other.wdl": OTHER_WORKFLOW, "options.json": options})
    p = plan(files, "sampleA.inputs.json")
    assert p.main_wdl == "other.wdl"
    assert p.workflow_name == "other"
    assert p.workflow_dependencies is None
    assert "courier_main_wdl" not in json.loads(p.workflow_options)


def test_courier_main_wdl_accepts_leading_dot_slash() -> None:
    options = json.dumps({"courier_main_wdl": "./main.wdl"}).encode()
    files = folder(more={"other.wdl": OTHER_WORKFLOW, "options.json": options})
    assert plan(files, "sampleA.inputs.json").main_wdl == "main.wdl"


def test_ambiguity_lists_candidates_and_how_to_choose() -> None:
    refused = refusal(folder(more={"other.wdl": OTHER_WORKFLOW}))
    [reason] = refused.reasons
    assert "main.wdl (workflow demo)" in reason
    assert "other.wdl (workflow other)" in reason
    assert '"courier_main_wdl"' in reason
    assert refused.missing_files == []


def test_imported_sub_workflow_is_not_a_candidate() -> None:
    files = fixture_files("rnaseq")
    assert plan(files, "sampleA.inputs.json").main_wdl == "main.wdl"


def test_main_wdl_named_without_workflow_is_refused() -> None:
    options = json.dumps({"courier_main_wdl": "tasks/greet.wdl"}).encode()
    refused = refusal(folder(more={"options.json": options}))
    assert any("tasks/greet.wdl holds no workflow" in r for r in refused.reasons)


def test_unused_broken_wdl_is_a_warning_when_main_is_named() -> None:
    options = json.dumps({"courier_main_wdl": "main.wdl"}).encode()
    files = folder(more={"options.json": options, "old/broken.wdl": b"version 1.0\nworkflow {"})
    p = plan(files, "sampleA.inputs.json")
    assert any("old/broken.wdl" in w and "not used by the run" in w for w in p.warnings)


def test_unused_broken_wdl_is_a_refusal_when_main_is_detected() -> None:
    refused = refusal(folder(more={"old/broken.wdl": b"version 1.0\nworkflow {"}))
    assert any(r.startswith("old/broken.wdl:2:") for r in refused.reasons)


def test_missing_import_is_reported_as_missing_file() -> None:
    refused = refusal(folder(greet=None))
    assert refused.missing_files == ["tasks/greet.wdl"]


def test_wdl_not_yet_copied_is_a_missing_file() -> None:
    refused = refusal(folder(main=None, greet=None))
    assert refused.missing_files


# --- names ----------------------------------------------------------------------------------------


def test_spaces_and_non_ascii_names_work(tmp_path: Path) -> None:
    main = MAIN_WDL.replace('"tasks/greet.wdl"', '"my tasks/grüße.wdl"')
    files = folder(main=main, greet=None, more={"my tasks/grüße.wdl": GREET_WDL.encode()})
    p = plan(files, "sampleA.inputs.json", prefix="runs/ünïcode run/")
    assert sorted(zip_entries(p.workflow_dependencies)) == ["main.wdl", "my tasks/grüße.wdl"]
    labels = json.loads(p.labels)
    assert labels[LABEL_RUN_FOLDER] == "runs/ünïcode run/"
    load_as_cromwell_would(tmp_path, p)


def test_courier_labels_are_tag_safe_and_short() -> None:
    prefix = "runs/" + "very-long-folder-name#" * 20 + "/"
    p = plan(folder(), "sampleA.inputs.json", prefix=prefix)
    labels = json.loads(p.labels)
    for key in (LABEL_RUN_FOLDER, LABEL_INPUTS_KEY):
        assert len(labels[key]) <= 255
        assert "#" not in labels[key]
    assert labels[LABEL_RUN_FOLDER] == tag_safe(prefix)
    assert tag_safe(prefix) != tag_safe(prefix + "x/")


def test_tag_safe_defuses_aws_prefix() -> None:
    assert not tag_safe("aws:thing").lower().startswith("aws:")
    assert tag_safe("a\x00b") == "a_b"


# --- warnings -------------------------------------------------------------------------------------


def test_user_values_for_courier_options_are_overridden_with_a_warning() -> None:
    options = json.dumps({OPTION_SCRIPT_PREFIX: "mine/", OPTION_CALLBACK_URI: "https://elsewhere/"}).encode()
    p = plan(folder(more={"options.json": options}), "sampleA.inputs.json")
    parsed = json.loads(p.workflow_options)
    assert parsed[OPTION_SCRIPT_PREFIX] == script_prefix(p.workflow_id)
    assert parsed[OPTION_CALLBACK_URI] == CALLBACK
    assert len([w for w in p.warnings if "is set by Courier" in w]) == 2


def test_s3_checks_are_bounded_with_a_warning() -> None:
    inputs = {
        "rnaseq.sample_id": "s",
        "rnaseq.reference": "s3://courier-test-data/ref.fa",
        "rnaseq.lanes": [{"id": f"L{n}", "r1": f"s3://courier-test-data/L{n}.fq"} for n in range(5)],
    }
    files = fixture_files("rnaseq")
    files["big.inputs.json"] = json.dumps(inputs).encode()
    p = plan(files, "big.inputs.json", limits=Limits(max_s3_checks=2))
    assert p.s3_uris == ("s3://courier-test-data/ref.fa", "s3://courier-test-data/L0.fq")
    assert any("names 6 s3:// files" in w for w in p.warnings)


def test_byte_order_mark_is_dropped_with_a_warning() -> None:
    files = folder(inputs=b"\xef\xbb\xbf" + json.dumps(GOOD_INPUTS).encode())
    p = plan(files, "sampleA.inputs.json")
    assert json.loads(p.workflow_inputs) == GOOD_INPUTS
    assert any("byte-order mark" in w for w in p.warnings)


def test_string_inputs_holding_s3_prefixes_are_not_checked() -> None:
    main = MAIN_WDL.replace("Int threads = 1", 'Int threads = 1\n    String out_prefix = ""')
    files = folder(main=main, inputs={**GOOD_INPUTS, "demo.out_prefix": "s3://courier-test-data/out/"})
    assert plan(files, "sampleA.inputs.json").s3_uris == ("s3://courier-test-data/demo/sampleA.fastq.gz",)


def test_nested_call_inputs_are_accepted() -> None:
    p = plan(fixture_files("rnaseq"), "sampleC.inputs.json")
    assert json.loads(p.workflow_inputs)["rnaseq.quant.min_count"] == 5


def test_deployment_labels_and_options() -> None:
    p = plan(
        folder(),
        "sampleA.inputs.json",
        extra_options={"read_from_cache": False},
        extra_labels={"environment": "test"},
    )
    assert json.loads(p.workflow_options)["read_from_cache"] is False
    assert json.loads(p.labels)["environment"] == "test"


def test_oversized_file_reported_by_the_adapter() -> None:
    files = folder()
    refused_folder = RunFolder(
        prefix="runs/demo/",
        files=files,
        inputs_name="sampleA.inputs.json",
        oversized={"big.wdl": 5_000_000},
    )
    with pytest.raises(RunRejected) as refused:
        plan_submission(
            refused_folder,
            bucket=BUCKET,
            inputs_key="runs/demo/sampleA.inputs.json",
            version_id="1",
            sequencer=None,
        )
    assert "big.wdl is 5,000,000 bytes; the limit is 1,048,576" in refused.value.reasons


# --- never anything but RunRejected -------------------------------------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
_json_objects = st.dictionaries(
    st.sampled_from(["hello.who", "hello.say_hello.who", "who", "courier_main_wdl", "team", "aws:x", ""])
    | st.text(max_size=15),
    _json_values,
    max_size=5,
)
_payloads = st.binary(max_size=200) | _json_objects.map(lambda value: json.dumps(value).encode())


def _outcome(files: dict[str, bytes]) -> SubmissionPlan | RunRejected:
    """The plan, or the refusal; any other exception propagates and fails the test."""
    try:
        return plan(files, "inputs.json")
    except RunRejected as refused:
        return refused


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inputs=_payloads, labels=_payloads | st.none(), options=_payloads | st.none())
def test_arbitrary_bytes_never_raise_anything_but_run_rejected(
    inputs: bytes, labels: bytes | None, options: bytes | None
) -> None:
    files = fixture_files("hello")
    files["inputs.json"] = inputs
    if labels is not None:
        files["labels.json"] = labels
    if options is not None:
        files["options.json"] = options
    outcome = _outcome(files)
    if isinstance(outcome, RunRejected):
        assert outcome.reasons
        assert all(isinstance(reason, str) and reason for reason in outcome.reasons)
    else:
        assert isinstance(json.loads(outcome.workflow_inputs), dict)
        assert isinstance(json.loads(outcome.workflow_options), dict)
        assert isinstance(json.loads(outcome.labels), dict)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    wdl=st.binary(max_size=300) | st.text(max_size=300).map(lambda text: ("version 1.0\n" + text).encode())
)
def test_arbitrary_wdl_never_raises_anything_but_run_rejected(wdl: bytes) -> None:
    files = {"main.wdl": wdl, "inputs.json": b"{}"}
    outcome = _outcome(files)
    if isinstance(outcome, RunRejected):
        assert outcome.reasons
