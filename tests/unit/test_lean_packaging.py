"""What the deployment leaves out, and proof that the code works without it.

* SubmitFunction ships miniwdl without its command-line dependencies (packaging/Makefile
  installs requirements.txt with --no-deps): submit's WDL validation runs in a child process
  without those modules, and still accepts a valid WDL and refuses a bad one.
* The courier layer ships no X-Ray SDK: without it `courier.observability` gives a tracer whose
  decorator leaves the handler as it is, and every handler module imports (same child process).

The child runs with `python -S` and a copy of site-packages from which those modules are removed,
so to it they are not installed at all.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib.metadata import requires
from pathlib import Path

import pytest

from courier.observability import NoTracer, make_tracer, tracing_wanted
from tests.conftest import _ENV

ROOT = Path(__file__).resolve().parents[2]
SUBMIT_REQUIREMENTS = ROOT / "functions" / "submit" / "requirements.txt"

#: miniwdl's dependencies that only its command line (or its local task runner) imports, by
#: distribution name -> the modules they install (with their own dependencies').
CLI_ONLY = {
    "docker": ("docker",),
    "psutil": ("psutil",),
    "coloredlogs": ("coloredlogs", "humanfriendly"),
    "questionary": ("questionary", "prompt_toolkit", "wcwidth"),
    "argcomplete": ("argcomplete",),
    "ruamel.yaml": ("ruamel",),
    "xdg": ("xdg",),
}
BLOCKED = sorted({m for modules in CLI_ONLY.values() for m in modules} | {"aws_xray_sdk"})

_CHILD = r"""
import json, sys

BLOCKED = set(sys.argv[1].split(","))
refused = []
for name in sorted(BLOCKED):
    try:
        __import__(name)
    except ImportError:
        refused.append(name)

import monitor.batch_events, monitor.callback, monitor.schedule, notify.handler, submit.handler, submit.rows
from courier.observability import tracer
from submit.folder import Findings
from submit.wdl import analyse

VALID = (
    b"version 1.0\nworkflow hello {\n  input { String who }\n  call greet { input: who = who }\n}\n"
    b"task greet {\n  input { String who }\n  command <<< echo hi ~{who} >>>\n"
    b"  output { String out = read_string(stdout()) }\n}\n"
)
INVALID = b"version 1.0\nworkflow hello {\n  call nowhere\n}\n"
results = {}
for name, text in (("valid", VALID), ("invalid", INVALID)):
    findings = Findings()
    package = analyse({"hello.wdl": text}, {}, findings, chosen_main=None, option_name="main_wdl")
    results[name] = {
        "workflow": package.workflow_name if package else None,
        "zip": bool(package and package.workflow_source),
        "reasons": findings.reasons,
    }
loaded = sorted({m.split(".")[0] for m in sys.modules} & BLOCKED)
print(json.dumps({"refused": refused, "results": results, "loaded": loaded,
                  "tracer": type(tracer).__name__}))
"""


def site_packages_without(blocked: list[str], into: Path) -> Path:
    """A copy (by symbolic links) of this interpreter's site-packages without the `blocked`
    top-level modules: run with `python -S` and it on the path, they are simply not installed."""
    site = Path(next(p for p in sys.path if p.endswith("site-packages")))
    into.mkdir()
    for entry in site.iterdir():
        if entry.name.split(".")[0].split("-")[0] not in blocked and entry.suffix != ".pth":
            (into / entry.name).symlink_to(entry)
    return into


def _run_child(site: Path, *code_dirs: Path) -> dict[str, object]:
    env = {**_ENV, "PATH": "/usr/bin:/bin", "POWERTOOLS_TRACE_DISABLED": "false"}
    env["PYTHONPATH"] = ":".join(str(p) for p in (*code_dirs, ROOT / "layers" / "courier", site))
    out = subprocess.run(
        [sys.executable, "-S", "-c", _CHILD, ",".join(BLOCKED)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_every_miniwdl_dependency_is_shipped_or_known_to_be_cli_only() -> None:
    shipped = {
        re.split(r"[=<>~ ]", line, maxsplit=1)[0].lower()
        for line in SUBMIT_REQUIREMENTS.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    needed = {
        re.split(r"[=<>~!; \[]", req, maxsplit=1)[0].lower()
        for req in requires("miniwdl") or []
        if "extra ==" not in req
    }
    unaccounted = needed - shipped - set(CLI_ONLY)
    assert not unaccounted, f"miniwdl depends on {sorted(unaccounted)}: ship it or prove it CLI-only"
    assert not (shipped & set(CLI_ONLY))


def test_submit_validates_wdl_without_the_cli_dependencies_and_the_xray_sdk(tmp_path: Path) -> None:
    site = site_packages_without(BLOCKED, tmp_path / "site-packages")
    child = _run_child(site, *(ROOT / "functions" / name for name in ("submit", "monitor", "notify")))
    assert child["refused"] == BLOCKED  # the child really cannot import them
    assert child["loaded"] == []
    results = child["results"]
    assert isinstance(results, dict)
    assert results["valid"] == {"workflow": "hello", "zip": True, "reasons": []}
    assert results["invalid"]["workflow"] is None
    assert any("nowhere" in reason for reason in results["invalid"]["reasons"])
    # tracing asked for, SDK absent: the no-op tracer, not an ImportError at cold start
    assert child["tracer"] == "NoTracer"


@pytest.mark.parametrize(
    ("environ", "sdk", "expected"),
    [
        ({"POWERTOOLS_TRACE_DISABLED": "true"}, True, "NoTracer"),
        ({"POWERTOOLS_TRACE_DISABLED": "1"}, True, "NoTracer"),
        ({"POWERTOOLS_TRACE_DISABLED": "false"}, False, "NoTracer"),
        ({}, False, "NoTracer"),
        ({"POWERTOOLS_TRACE_DISABLED": "false"}, True, "Tracer"),
    ],
)
def test_tracer_is_powertools_only_with_tracing_on_and_the_sdk(
    environ: dict[str, str], sdk: bool, expected: str
) -> None:
    assert type(make_tracer(environ, sdk_present=sdk)).__name__ == expected


def test_no_tracer_leaves_the_handler_unchanged() -> None:
    def handler(event: dict[str, int], context: object) -> int:
        return event["n"] + 1

    tracer = NoTracer()
    assert tracer.capture_lambda_handler(handler) is handler
    assert tracer.capture_lambda_handler(capture_response=False)(handler) is handler
    assert tracing_wanted({}) is True
    assert tracing_wanted({"POWERTOOLS_TRACE_DISABLED": "TRUE"}) is False


def test_every_makefile_build_has_its_target_for_the_functions_architecture() -> None:
    from local.stack.template import load_template  # noqa: PLC0415

    template = load_template()
    makefile = (ROOT / "packaging" / "Makefile").read_text(encoding="utf-8")
    built = {
        name: resource
        for name, resource in template["Resources"].items()
        if (resource.get("Metadata") or {}).get("BuildMethod") == "makefile"
    }
    assert set(built) == {"SubmitFunction", "SheetRowsFunction", "TracingLayer"}
    for name, resource in built.items():
        assert resource["Metadata"]["ContextPath"] == "packaging", name
        assert re.search(rf"^build-{name}:", makefile, flags=re.M), name
    assert template["Globals"]["Function"]["Architectures"] == ["arm64"]
    assert "PLATFORM ?= manylinux2014_aarch64" in makefile
