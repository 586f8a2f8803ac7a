"""The whole stack with its Cromwell behind basic auth, as nginx in front of Cromwell asks for it:
the credential lives in a secret (CromwellAuthSecretArn), the functions send it, a run is submitted,
followed through its Batch events and ended; when the proxy stops accepting it, the next run is
refused with a receipt that names the secret."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.cromwell_api.auth import RequiredAuth
from local.stack import LocalStack, LocalStackOptions
from tests.e2e.conftest import RUNS, Observer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def guarded() -> Iterator[LocalStack]:
    options = LocalStackOptions(step_seconds=0.0, cromwell_auth=RequiredAuth.basic("courier", "e2e-s3cret"))
    with LocalStack(options) as running:
        yield running


def test_a_run_through_a_cromwell_that_asks_for_credentials(guarded: LocalStack) -> None:
    observer = Observer(guarded)
    auth = guarded.cromwell.auth
    assert auth is not None
    secret = guarded.parameters["CromwellAuthSecretArn"]

    (key,) = guarded.drop_folder(RUNS / "quick", "e2e/auth/quick")
    receipt = guarded.wait_for_receipt(key, timeout=30)
    assert receipt is not None
    assert receipt["status"] == "Submitted", receipt
    workflow_id = str(receipt["workflow_id"])
    assert guarded.wait_for_end(workflow_id, timeout=60) is not None
    guarded.settle(timeout=10)
    run = observer.run(workflow_id)
    assert run["status"] == "Succeeded"
    assert [t["status"] for t in observer.tasks(workflow_id)] == ["SUCCEEDED"]
    assert auth.accepted > 0
    assert auth.refused == 0

    auth.rotate(RequiredAuth.basic("courier", "rotated-without-telling-courier"))
    (refused_key,) = guarded.drop_folder(RUNS / "quick", "e2e/auth/refused")
    refusal = guarded.wait_for_receipt(refused_key, timeout=30)
    assert refusal is not None
    assert refusal["status"] == "Rejected"
    assert any(f"check the secret {secret}" in reason for reason in refusal["reasons"])
    assert auth.refused == 2, "the kept credential, then the one read again; no retry loop"
