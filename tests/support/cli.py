"""Running the `courier` command in this process, as the CLI tests do, and reading its refusals."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from courier_cli.app import Session, cli
from courier_cli.deployment import Connection, Location


def runner() -> CliRunner:
    """A runner that keeps stderr apart from stdout."""
    try:
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:  # click 8.2 keeps stderr apart by itself
        return CliRunner()


def invoke(conn: Connection | None, *args: str, env: dict[str, str] | None = None) -> Result:
    """`courier ARGS` over `conn` (None: the deployment the options and `env` name)."""
    location = Location(environ=env or {}, cwd=Path("/"))
    return runner().invoke(
        cli, list(args), obj=Session(location, conn=conn), catch_exceptions=False, prog_name="courier"
    )


def one_line(result: Result) -> str:
    """The one line of a refusal, which must exit with status 2 and show no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("courier: ")
    return line
