"""Running a Python program of this environment as a process of its own, as a user would."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path


def run_python(
    args: Sequence[str], *, env: Mapping[str, str], what: str, timeout: float, cwd: Path | None = None
) -> str:
    """Run `python <args>` with only `env`; its standard output. Fails the test, naming `what` and
    showing both outputs, when the process exits non-zero."""
    done = subprocess.run(
        [sys.executable, *args],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{what}: {done.stdout}\n{done.stderr}"
    return done.stdout
