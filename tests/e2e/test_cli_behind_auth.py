"""`courier --local` against the local stack started with its Cromwell behind basic auth, as
`make stack ARGS='--cromwell-auth basic:<user>:<password>'` starts it: the stack's state names the
secret holding the credential, and the command, run as a process of its own as a person runs it,
aborts a run and reads a task's log through Cromwell with it. When the proxy stops accepting it,
or no secret is named, each command is one line naming what to fix, exit status 2. Whatever
happens, the credential is in nothing the process writes (stdout, stderr, `--json`)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from local.cromwell_api.auth import RequireAuth, RequiredAuth
from local.stack import LocalStack, LocalStackOptions
from tests.e2e.conftest import RUNS

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
USER, PASSWORD = "courier", "e2e-cli-pa55word"
ROTATED = "rotated-without-telling-anyone"


@pytest.fixture(scope="module")
def stack_options() -> LocalStackOptions:
    return LocalStackOptions(
        step_seconds=0.0, call_caching=False, cromwell_auth=RequiredAuth.basic(USER, PASSWORD)
    )


class Courier:
    """`python -m courier_cli --local ...` as a process of its own, with only what it needs."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.outputs: list[str] = []

    def __call__(self, *args: str, state: Path | None = None) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.state.parent),
            "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("layers/courier", "cli")),
            "COURIER_LOCAL_STATE": str(state or self.state),
        }
        done = subprocess.run(
            [sys.executable, "-m", "courier_cli", "--local", *args],
            env=env,
            cwd=self.state.parent,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        self.outputs += [done.stdout, done.stderr]
        return done

    def refused(self, *args: str, state: Path | None = None) -> str:
        done = self(*args, state=state)
        assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        (line,) = done.stderr.strip().splitlines()
        return line


@pytest.fixture(scope="module")
def courier(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Courier:
    state = tmp_path_factory.mktemp("state") / ".courier-local.json"
    state.write_text(json.dumps(stack.console_state()), encoding="utf-8")
    return Courier(state)


def proxy(stack: LocalStack) -> RequireAuth:
    auth = stack.cromwell.auth
    assert auth is not None
    return auth


def running(stack: LocalStack, folder: str) -> str:
    (key,) = stack.drop_folder(RUNS / "abortable", folder)
    receipt = stack.wait_for_receipt(key, timeout=30)
    assert receipt is not None
    assert receipt["status"] == "Submitted", receipt
    return str(receipt["workflow_id"])


def test_the_local_state_names_the_credential_secret(stack: LocalStack, courier: Courier) -> None:
    state = json.loads(courier.state.read_text())
    assert state["cromwell_auth_secret"] == stack.parameters["CromwellAuthSecretArn"]
    assert PASSWORD not in courier.state.read_text()


def test_abort_and_logs_with_the_credential_and_one_line_without_it(
    stack: LocalStack, courier: Courier, tmp_path: Path
) -> None:
    auth = proxy(stack)
    secret = stack.parameters["CromwellAuthSecretArn"]
    (key,) = stack.drop_folder(RUNS / "quick", "e2e/cli-auth/quick")
    receipt = stack.wait_for_receipt(key, timeout=30)
    assert receipt is not None
    quick = str(receipt["workflow_id"])
    assert stack.wait_for_end(quick, timeout=60) is not None
    stack.settle(timeout=10)

    read = courier("logs", quick, "--stdout", "--json")
    assert read.returncode == 0, read.stderr
    (log,) = json.loads(read.stdout)["logs"]
    assert log["source"].startswith("s3://"), "the log's path came from Cromwell's metadata"

    doomed = running(stack, "e2e/cli-auth/abortable")
    accepted = auth.accepted
    aborted = courier("abort", doomed, "--json")
    assert aborted.returncode == 0, aborted.stderr
    answer = json.loads(aborted.stdout)
    assert answer == {"workflow_id": doomed, "status": answer["status"]}
    assert answer["status"] in ("Aborting", "Aborted")
    assert auth.accepted > accepted

    spared = running(stack, "e2e/cli-auth/spared")
    auth.rotate(RequiredAuth.basic(USER, ROTATED))
    try:
        refused = (
            f"courier: Cromwell at {stack.cromwell_url} refused the credential in the secret {secret}:"
            " check that the secret holds the credential Cromwell's proxy accepts now"
        )
        assert courier.refused("abort", spared).startswith(refused)
        assert courier.refused("logs", quick).startswith(refused)

        state = json.loads(courier.state.read_text())
        del state["cromwell_auth_secret"]
        unnamed = tmp_path / "no-secret.json"
        unnamed.write_text(json.dumps(state))
        assert courier.refused("abort", spared, state=unnamed) == (
            f"courier: Cromwell at {stack.cromwell_url} asks for a credential and none is configured:"
            " set COURIER_CROMWELL_AUTH_SECRET to the secret holding it (the stack's CromwellAuthSecretArn)"
        )
    finally:
        auth.rotate(RequiredAuth.basic(USER, PASSWORD))
    assert courier("abort", spared, "--json").returncode == 0

    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    for output in courier.outputs:
        for text in (PASSWORD, ROTATED, basic):
            assert text not in output
