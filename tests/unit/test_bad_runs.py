"""Every run of the bad-runs corpus is refused with the expected reasons, and only ever with
RunRejected."""

from __future__ import annotations

import pytest

from courier.errors import RunRejected
from submit.plan import Limits, RunFolder, plan_submission
from tests.fixtures.bad_runs import BAD_RUNS, BUCKET, PREFIX, BadRun


def _plan(case: BadRun) -> None:
    plan_submission(
        RunFolder(prefix=PREFIX, files=case.files, inputs_name=case.inputs_name),
        bucket=BUCKET,
        inputs_key=PREFIX + case.inputs_name,
        version_id="3HL4kqtJlcpXroDTDmJ-rmSpXd3dIbrHY",
        sequencer=None,
        limits=Limits(),
        callback_uri="https://courier.example/callback?token=t",
    )


def test_corpus_is_large_and_ids_are_unique() -> None:
    ids = [case.id for case in BAD_RUNS]
    assert len(ids) >= 30
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("case", BAD_RUNS, ids=lambda case: case.id)
def test_bad_run_is_refused_with_reason(case: BadRun) -> None:
    with pytest.raises(RunRejected) as refused:
        _plan(case)
    reasons = refused.value.reasons
    for expected in case.expected:
        assert any(expected in reason for reason in reasons), (expected, reasons)
    assert all(isinstance(reason, str) and reason for reason in reasons)
    assert bool(refused.value.missing_files) == case.expects_missing_files, refused.value.missing_files
