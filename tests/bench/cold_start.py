"""Cold start: import and initialisation of each function's handler module in a fresh Python
process, against a minimal handler that only imports boto3 and creates one client.

The handler modules are the `Handler` properties of template.yaml. Each child process gets the
function's code directory and the layer on its path (as Lambda does: CodeUri + /opt/python) and
the environment tests/conftest.py sets. The figure is the median over `runs` processes of the
time `import <module>` takes inside the child (Powertools set-up included; the function is put
together, settings validated and clients built, at its first invocation), plus the whole process
wall time as seen from the parent.

`deferred` lists modules a handler loads lazily (only on the paths that need them); the "eager"
column imports them before the handler, which is what the module cost before they were deferred.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local.stack.paths import ROOT
from local.stack.template import TEMPLATE_PATH, load_template
from tests.conftest import _ENV

LAYER = ROOT / "layers" / "courier"

#: Modules made lazy in the function code, by handler module (measured eagerly for comparison).
DEFERRED: dict[str, tuple[str, ...]] = {
    "submit.handler": ("WDL", "WDL.Zip"),
    "submit.rows": ("WDL", "WDL.Zip"),
    "notify.handler": ("slack_sdk", "slack_sdk.webhook", "slack_sdk.http_retry.builtin_handlers"),
}

BASELINE_SOURCE = '''"""Minimal handler: boto3 and one client."""
import boto3

client = boto3.client("s3")


def lambda_handler(event, context):
    return {}
'''

_CHILD = """
import json, sys, time
started = time.perf_counter()
for name in [m for m in sys.argv[2].split(",") if m]:
    __import__(name)
__import__(sys.argv[1])
elapsed = time.perf_counter() - started
names = ("WDL", "slack_sdk", "requests", "aws_xray_sdk", "boto3", "pydantic")
heavy = sorted(m for m in names if m in sys.modules)
print(json.dumps({"seconds": elapsed, "modules": heavy}))
"""


@dataclass(frozen=True)
class HandlerSpec:
    function: str  # logical id in template.yaml
    code_uri: str
    module: str


def handlers(template: Path = TEMPLATE_PATH) -> list[HandlerSpec]:
    """(function, CodeUri, handler module) of every function in the template, in order."""
    return [
        HandlerSpec(
            name, str(resource["Properties"]["CodeUri"]), resource["Properties"]["Handler"].rsplit(".", 1)[0]
        )
        for name, resource in load_template(template)["Resources"].items()
        if resource.get("Type") == "AWS::Serverless::Function"
    ]


def child_env(extra_path: list[Path]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    env.update(_ENV)
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in extra_path)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _once(module: str, path: list[Path], preload: tuple[str, ...] = ()) -> tuple[float, float, list[str]]:
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, module, ",".join(preload)],
        env=child_env(path),
        capture_output=True,
        text=True,
        check=True,
        cwd=tempfile.gettempdir(),
    )
    wall = time.perf_counter() - started
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return float(data["seconds"]), wall, list(data["modules"])


def _median_ms(module: str, path: list[Path], runs: int, preload: tuple[str, ...] = ()) -> dict[str, Any]:
    _once(module, path, preload)  # warm the file cache and the .pyc files; not counted
    imports, walls, modules = [], [], []
    for _ in range(runs):
        seconds, wall, modules = _once(module, path, preload)
        imports.append(seconds)
        walls.append(wall)
    return {
        "import_ms": round(statistics.median(imports) * 1000, 1),
        "process_ms": round(statistics.median(walls) * 1000, 1),
        "modules": modules,
    }


def measure(runs: int = 7) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "minimal_handler.py").write_text(BASELINE_SOURCE, encoding="utf-8")
        baseline = _median_ms("minimal_handler", [Path(tmp)], runs)
    rows: list[dict[str, Any]] = []
    for spec in handlers():
        path = [ROOT / spec.code_uri, LAYER]
        row: dict[str, Any] = {
            "function": spec.function,
            "module": spec.module,
            **_median_ms(spec.module, path, runs),
        }
        row["ratio"] = round(row["import_ms"] / baseline["import_ms"], 2)
        deferred = DEFERRED.get(spec.module)
        if deferred:
            row["eager_import_ms"] = _median_ms(spec.module, path, runs, preload=deferred)["import_ms"]
            row["deferred"] = list(deferred)
        rows.append(row)
    return {"runs": runs, "baseline": baseline, "handlers": rows}


def render(fig: dict[str, Any]) -> list[str]:
    base = fig["baseline"]
    lines = [
        f"Median of {fig['runs']} fresh processes each (one warm-up run first, not counted). "
        "`import` is the time of `import <handler module>` inside the process (Powertools set-up "
        "included; settings are validated and clients built when the function is put together, at "
        "its first invocation). `process` is the whole interpreter run seen from outside.",
        "",
        "| Function | Handler module | import ms | process ms | x minimal | heavy modules loaded |",
        "|---|---|---:|---:|---:|---|",
        f"| (minimal: boto3 + one client) | `minimal_handler` | {base['import_ms']} | {base['process_ms']} "
        f"| 1.00 | {', '.join(base['modules'])} |",
    ]
    for row in fig["handlers"]:
        lines.append(
            f"| {row['function']} | `{row['module']}` | {row['import_ms']} | {row['process_ms']} "
            f"| {row['ratio']:.2f} | {', '.join(row['modules'])} |"
        )
    deferred = [r for r in fig["handlers"] if "eager_import_ms" in r]
    if deferred:
        lines += [
            "",
            "Lazy imports (before = the same modules imported eagerly, as the code did before):",
            "",
        ]
        lines += ["| Handler module | deferred | before ms | after ms |", "|---|---|---:|---:|"]
        for row in deferred:
            lines.append(
                f"| `{row['module']}` | {', '.join(row['deferred'])} | {row['eager_import_ms']} "
                f"| {row['import_ms']} |"
            )
    return lines
