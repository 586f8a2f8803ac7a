"""template.yaml for pipelines of runs: MaxChainDepth reaches submit, the rows function and
notify, and notify may create only next runs' inputs files and lineage items."""

from __future__ import annotations

from typing import Any

import pytest

from local.stack.template import load_template


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    return dict(load_template()["Resources"])


def test_max_chain_depth_reaches_every_function_that_checks_a_chain(resources: dict[str, Any]) -> None:
    parameter = load_template()["Parameters"]["MaxChainDepth"]
    assert (parameter["Default"], parameter["MinValue"]) == (5, 1)
    for function in ("SubmitFunction", "SheetRowsFunction", "NotifyFunction"):
        env = resources[function]["Properties"]["Environment"]["Variables"]
        assert env["MAX_CHAIN_DEPTH"] == {"Ref": "MaxChainDepth"}, function


def statements(resources: dict[str, Any], role: str) -> dict[str, dict[str, Any]]:
    policies = resources[role]["Properties"]["Policies"]
    return {
        s["Sid"]: s
        for p in policies
        for s in p["PolicyDocument"]["Statement"]
        if isinstance(s, dict) and "Sid" in s
    }


def test_notify_creates_only_next_inputs_files_and_lineage_items(resources: dict[str, Any]) -> None:
    granted = statements(resources, "NotifyRole")
    start = granted["StartPipelineNextRuns"]
    assert start["Action"] == "s3:PutObject"
    assert start["Resource"]["Fn::Sub"][0].endswith("/*/from-*.inputs.json")
    lineage = granted["RecordPipelineLineage"]
    assert lineage["Action"] == "dynamodb:PutItem"
    assert lineage["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["NEXT#*"]}}
