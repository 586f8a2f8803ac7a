"""`pip install .` from the repository gives a working `courier` command, with only what it needs.

The install goes into a fresh virtual environment (pip's cache makes repeats quick), outside the
development venv, and the command runs from there with no access to the repository's code."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: What the command imports, and theirs; nothing of the functions' own dependencies.
NOT_NEEDED = {"miniwdl", "moto", "slack-sdk", "pydantic", "pytest", "werkzeug", "aws-xray-sdk"}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("courier-install")
    venv.EnvBuilder(with_pip=True).create(home / "venv")
    python = home / "venv" / "bin" / "python"
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return home / "venv" / "bin"


def run(bin_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(cwd), "AWS_EC2_METADATA_DISABLED": "true"}
    return subprocess.run(
        [str(bin_dir / "courier"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=60,
        check=False,
    )


def test_the_command_is_installed_with_only_what_it_needs(installed: Path, tmp_path: Path) -> None:
    helped = run(installed, "--help", cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    for command in ("drop", "runs", "show", "logs", "watch", "abort", "report"):
        assert f"  {command} " in helped.stdout

    listed = subprocess.run(
        [str(installed / "python"), "-m", "pip", "list", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    names = {str(p["name"]).lower().replace("_", "-") for p in json.loads(listed.stdout)}
    assert {"cromwell-courier", "boto3", "click", "rich", "requests", "aws-lambda-powertools"} <= names
    assert not names & NOT_NEEDED, names & NOT_NEEDED


def test_the_installed_command_says_what_to_do_when_it_finds_no_deployment(
    installed: Path, tmp_path: Path
) -> None:
    for args, expected in (
        (("runs",), "which deployment? pass --stack NAME"),
        (
            ("--local", "runs"),
            "no local stack found (.courier-local.json is missing): start one with `make stack`",
        ),
    ):
        result = run(installed, *args, cwd=tmp_path)
        assert result.returncode == 2, (result.stdout, result.stderr)
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith(f"courier: {expected}")
        assert "Traceback" not in result.stderr


def test_the_repository_code_is_not_what_runs(installed: Path) -> None:
    located = subprocess.run(
        [
            str(installed / "python"),
            "-c",
            "import courier, courier_cli; print(courier.__file__, courier_cli.__file__)",
        ],
        capture_output=True,
        text=True,
        cwd="/",
        check=True,
    )
    assert str(ROOT) not in located.stdout
    assert sys.prefix not in located.stdout
