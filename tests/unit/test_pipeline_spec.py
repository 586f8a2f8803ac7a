"""courier.pipeline: the `courier_next` spec, chains, and the next inputs built from parents."""

from __future__ import annotations

import json

import pytest

from courier.models import RunStatus
from courier.pipeline import (
    Constant,
    Lineage,
    NextInputs,
    NextSpec,
    NextStep,
    ParentRun,
    Reference,
    Refusal,
    build_after_batch,
    build_after_run,
    captured_inputs,
    chain_problem,
    is_next_inputs,
    next_inputs_key,
    parse_source,
)

GATHER = {
    "folder": "runs/joint",
    "when": "batch",
    "inputs": {
        "joint.gvcfs": "outputs.call.gvcf",
        "joint.names": "inputs.call.sample_name",
        "joint.ploidy": 2,
        "joint.label": {"value": "cohort-1"},
    },
}


def spec(**changes: object) -> NextSpec:
    raw = {**GATHER, **changes}
    parsed = NextSpec.read(raw)
    assert isinstance(parsed, NextSpec), parsed
    return parsed


def sample(name: str, status: RunStatus = RunStatus.SUCCEEDED, **outputs: object) -> ParentRun:
    return ParentRun(
        workflow_id=f"wf-{name}",
        status=status,
        outputs={"call.gvcf": f"s3://b/{name}.g.vcf", **{f"call.{k}": v for k, v in outputs.items()}},
        inputs={"call.sample_name": name},
        sample=name,
    )


def test_the_spec_reads_references_and_both_constant_forms() -> None:
    parsed = spec()
    assert parsed.folder == "runs/joint/"
    assert parsed.sources == {
        "joint.gvcfs": Reference("outputs", "call.gvcf"),
        "joint.names": Reference("inputs", "call.sample_name"),
        "joint.ploidy": Constant(2),
        "joint.label": Constant("cohort-1"),
    }
    assert not parsed.require_all


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({**GATHER, "then": 1}, "unknown key 'then'"),
        ({**GATHER, "when": "later"}, "'when' must be"),
        ({**GATHER, "folder": "../elsewhere"}, "'..' segment"),
        ({**GATHER, "folder": "s3://b/runs/x/"}, "no s3://"),
        ({**GATHER, "inputs": {}}, "naming at least one input"),
        ({**GATHER, "inputs": {"x": "results.call.gvcf"}}, "is not a reference"),
        ({**GATHER, "inputs": {"x": "outputs.call"}}, "outputs.<workflow>.<output>"),
        ({**GATHER, "inputs": {"x": {"a": 1}}}, 'written {"value": ...}'),
        ({k: v for k, v in GATHER.items() if k != "folder"}, "'folder' is missing"),
        ("runs/joint", "must be an object"),
    ],
)
def test_a_bad_spec_says_what_is_wrong(raw: object, expected: str) -> None:
    problems = NextSpec.read(raw)
    assert isinstance(problems, list)
    assert any(expected in p for p in problems), problems


def test_a_string_is_always_a_reference_and_a_text_constant_is_wrapped() -> None:
    assert isinstance(parse_source("plain text"), str)  # a reason, not a constant
    assert parse_source({"value": "plain text"}) == Constant("plain text")
    assert parse_source(None) == Constant(None)
    assert parse_source([1, 2]) == Constant([1, 2])


def test_the_spec_survives_the_ledger_round_trip() -> None:
    stored = json.loads(json.dumps(spec().to_map()))
    assert NextSpec.stored(stored) == spec()
    assert NextSpec.stored({}) is None
    assert NextSpec.stored({"folder": "x"}) is None


def test_a_loop_and_a_chain_too_deep_are_refused() -> None:
    chain = ("runs/a/", "runs/b/")
    assert chain_problem(chain, "runs/c", 5) is None
    own = chain_problem(chain, "runs/b", 5)
    assert own is not None
    assert "own folder" in own
    loop = chain_problem(chain, "runs/a/", 5)
    assert loop is not None
    assert "runs/a/ -> runs/b/ -> runs/a/" in loop
    deep = chain_problem(chain, "runs/c", 2)
    assert deep is not None
    assert "at most 2 steps" in deep


def test_lineage_and_keys() -> None:
    child = Lineage.root("runs/a/").child("runs/b", parents=["w1"], parent_batch=None)
    assert child == Lineage(("runs/a/", "runs/b/"), ("w1",))
    assert Lineage.from_map(child.to_map()) == child
    assert Lineage.from_map({"chain": []}) is None
    key = next_inputs_key("runs/b", "w1")
    assert key == "runs/b/from-w1.inputs.json"
    assert is_next_inputs(key)
    assert not is_next_inputs("runs/b/from-w1.json")
    assert not is_next_inputs("runs/b/inputs.json")


def test_captured_inputs_are_only_those_referenced() -> None:
    inputs = {"call.sample_name": "NA1", "call.reads": "s3://b/r.fq"}
    assert captured_inputs(spec(), inputs) == {"call.sample_name": "NA1"}


def test_after_a_run_references_become_values_and_constants_stay() -> None:
    built = build_after_run(spec(when="run"), sample("NA1"))
    assert built == NextInputs(
        {
            "joint.gvcfs": "s3://b/NA1.g.vcf",
            "joint.names": "NA1",
            "joint.ploidy": 2,
            "joint.label": "cohort-1",
        },
        ("wf-NA1",),
    )


def test_after_a_run_a_missing_output_or_input_refuses_with_each_reason() -> None:
    parent = ParentRun("wf-1", RunStatus.SUCCEEDED, outputs={"call.other": 1}, inputs={}, sample="NA1")
    built = build_after_run(spec(when="run"), parent)
    assert isinstance(built, Refusal)
    assert any("NA1: the run has no output call.gvcf (its outputs: call.other)" in r for r in built.reasons)
    assert any("input call.sample_name was not given" in r for r in built.reasons)


def test_an_output_the_ledger_left_out_is_named_as_such() -> None:
    parent = ParentRun("wf-1", RunStatus.SUCCEEDED, outputs={}, inputs={}, outputs_left_out=3)
    built = build_after_run(spec(when="run", inputs={"x": "outputs.call.gvcf"}), parent)
    assert isinstance(built, Refusal)
    assert "3 left out" in built.reasons[0]


def test_after_a_failed_run_nothing_is_built() -> None:
    built = build_after_run(spec(when="run"), sample("NA1", RunStatus.FAILED))
    assert isinstance(built, Refusal)
    assert "the run failed" in built.reasons[0]


def test_a_batch_gathers_arrays_of_the_succeeded_samples_in_the_order_given() -> None:
    samples = [sample("NA3"), sample("NA1", RunStatus.FAILED), sample("NA2")]
    built = build_after_batch(spec(), samples)
    assert isinstance(built, NextInputs)
    assert built.document["joint.gvcfs"] == ["s3://b/NA3.g.vcf", "s3://b/NA2.g.vcf"]
    assert built.document["joint.names"] == ["NA3", "NA2"]
    assert built.document["joint.ploidy"] == 2
    assert built.parents == ("wf-NA3", "wf-NA2")


def test_require_all_refuses_when_any_sample_did_not_succeed() -> None:
    samples = [sample("NA1"), sample("NA2", RunStatus.FAILED)]
    built = build_after_batch(spec(require_all=True), samples)
    assert isinstance(built, Refusal)
    assert "require_all is set and 1 of 2 samples did not succeed: NA2 (Failed)" in built.reasons[0]


def test_a_batch_with_no_success_starts_nothing() -> None:
    built = build_after_batch(spec(), [sample("NA1", RunStatus.FAILED)])
    assert isinstance(built, Refusal)
    assert "none of the batch's 1 samples succeeded" in built.reasons[0]


def test_the_next_step_says_what_it_started_or_why_not() -> None:
    started = NextStep("b", "runs/j/from-x.inputs.json", started=True, workflow_id="w")
    assert started.line == "Started s3://b/runs/j/from-x.inputs.json"
    refused = NextStep("b", "runs/j/from-x.inputs.json", started=False, reasons=("one", "two"))
    assert refused.line == "Next step not started: one; two"
    assert NextStep.from_map(refused.to_map()) == refused
    assert NextStep.from_map(started.to_map()) == started
    assert NextStep.from_map({}) is None
