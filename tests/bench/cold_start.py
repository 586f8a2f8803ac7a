"""Cold start: import and initialisation of each function's handler module in a fresh Python
process, against a minimal handler that only imports boto3 and creates one client.

The handler modules are the `Handler` properties of template.yaml. Each child process gets the
function's code directory and the layer on its path (as Lambda does: CodeUri + /opt/python) and
the environment tests/conftest.py sets. The figure is the median over `runs` processes of the
time `import <module>` takes inside the child (Powertools set-up included; the function is put
together, settings validated and clients built, at its first invocation), plus the whole process
wall time as seen from the parent.

`deferred` lists modules a handler loads lazily (only on the paths that need them, such as the
callback's Cromwell client, built at the first invocation) or no more at all (the Batch-events
function's Cromwell client and Powertools' batch processing); the "eager" column imports them
before the handler, which is what the module cost before they were deferred.

Target: every handler's import at most `TARGET_RATIO` times the minimal handler's. Where the time
goes comes from one more child run with `python -X importtime`: the self time of every module
imported, summed by top-level package.
"""

from __future__ import annotations

import json
import os
import re
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
TARGET_RATIO = 1.25
#: top-level packages shown together in the import-time breakdown
GROUPS = {
    "botocore": "boto3",
    "s3transfer": "boto3",
    "jmespath": "boto3",
    "dateutil": "boto3",
    "pydantic_core": "pydantic",
    "annotated_types": "pydantic",
    "typing_inspection": "pydantic",
    "urllib3": "requests",
    "idna": "requests",
    "charset_normalizer": "requests",
    "certifi": "requests",
}

#: Modules made lazy in the function code, by handler module (measured eagerly for comparison).
DEFERRED: dict[str, tuple[str, ...]] = {
    # the Cromwell client when the service is built; sheets and re-runs at their first upload
    "submit.handler": ("WDL", "WDL.Zip", "courier.cromwell", "submit.sheet_composition"),
    "submit.rows": ("WDL", "WDL.Zip", "courier.cromwell", "aws_lambda_powertools.utilities.data_classes"),
    "notify.handler": (
        "slack_sdk",
        "slack_sdk.webhook",
        "slack_sdk.http_retry.builtin_handlers",
        "aws_lambda_powertools.utilities.batch",
    ),
    # never loaded by the Batch-events function (it calls no Cromwell and reports batch failures
    # itself); loaded by the callback and the reconciler when their Cromwell client is built. The
    # Batch event's parser models load with the first event parsed.
    "monitor.batch_events": (
        "courier.cromwell",
        "aws_lambda_powertools.utilities.batch",
        "monitor.ending",
        "monitor.sweep",
        "monitor.event_models",
    ),
    "monitor.callback": ("courier.cromwell", "monitor.event_models"),
    "monitor.schedule": ("courier.cromwell", "monitor.event_models"),
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
names = ("WDL", "slack_sdk", "requests", "aws_xray_sdk", "boto3", "pydantic", "asyncio")
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


#: In the venv but not in the Lambda python3.13 runtime (which has boto3, botocore, s3transfer,
#: jmespath, python-dateutil, six and urllib3): botocore and urllib3 import them when present.
NOT_IN_RUNTIME = ("awscrt", "cryptography", "OpenSSL", "cffi", "_cffi_backend", "aws_xray_sdk")


def runtime_like_site(into: Path) -> Path:
    """This interpreter's site-packages as symbolic links, without NOT_IN_RUNTIME (used with -S)."""
    site = Path(next(p for p in sys.path if p.endswith("site-packages")))
    into.mkdir(parents=True, exist_ok=True)
    for entry in site.iterdir():
        top = entry.name.split(".")[0].split("-")[0]
        if top not in NOT_IN_RUNTIME and entry.suffix != ".pth":
            (into / entry.name).symlink_to(entry)
    return into


def _once(
    module: str, path: list[Path], preload: tuple[str, ...] = (), site: Path | None = None
) -> tuple[float, float, list[str]]:
    flags = ["-S"] if site is not None else []
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, *flags, "-c", _CHILD, module, ",".join(preload)],
        env=child_env([*path, *([site] if site is not None else [])]),
        capture_output=True,
        text=True,
        check=True,
        cwd=tempfile.gettempdir(),
    )
    wall = time.perf_counter() - started
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return float(data["seconds"]), wall, list(data["modules"])


def import_profile(module: str, path: list[Path], top: int = 6) -> list[tuple[str, float]]:
    """(package, ms) of the `top` packages by summed self import time, from `-X importtime`."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        env=child_env(path),
        capture_output=True,
        text=True,
        check=True,
        cwd=tempfile.gettempdir(),
    )
    totals: dict[str, float] = {}
    for line in out.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if match:
            package = match.group(2).split(".")[0]
            package = GROUPS.get(package, package)
            if package.startswith("_") or package in sys.stdlib_module_names:
                package = "(standard library)"
            totals[package] = totals.get(package, 0.0) + int(match.group(1)) / 1000
    ranked = sorted(totals.items(), key=lambda item: -item[1])[:top]
    return [(name, round(ms, 1)) for name, ms in ranked]


@dataclass(frozen=True)
class _Case:
    key: str
    module: str
    path: list[Path]
    preload: tuple[str, ...] = ()
    site: Path | None = None


def _rounds(cases: list[_Case], runs: int) -> dict[str, list[tuple[float, float, list[str]]]]:
    """`runs` rounds, each running every case once in turn (after one warm-up round that is not
    counted), so that a change of load on the machine weighs on every case alike."""
    samples: dict[str, list[tuple[float, float, list[str]]]] = {c.key: [] for c in cases}
    for round_no in range(runs + 1):
        for case in cases:
            sample = _once(case.module, case.path, case.preload, case.site)
            if round_no:
                samples[case.key].append(sample)
    return samples


def _summary(samples: list[tuple[float, float, list[str]]]) -> dict[str, Any]:
    return {
        "import_ms": round(statistics.median(s[0] for s in samples) * 1000, 1),
        "process_ms": round(statistics.median(s[1] for s in samples) * 1000, 1),
        "modules": samples[-1][2],
    }


def _ratio(
    samples: list[tuple[float, float, list[str]]], base: list[tuple[float, float, list[str]]]
) -> float:
    """The median over rounds of this case's import time over the minimal handler's in that round."""
    return round(statistics.median(s[0] / b[0] for s, b in zip(samples, base, strict=True)), 2)


def measure(runs: int = 7) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        minimal = Path(tmp) / "minimal"
        minimal.mkdir()
        (minimal / "minimal_handler.py").write_text(BASELINE_SOURCE, encoding="utf-8")
        site = runtime_like_site(Path(tmp) / "site-packages")
        specs = handlers()
        cases = [
            _Case("base", "minimal_handler", [minimal]),
            _Case("base@rt", "minimal_handler", [minimal], site=site),
        ]
        for spec in specs:
            path = [ROOT / spec.code_uri, LAYER]
            cases.append(_Case(spec.function, spec.module, path))
            cases.append(_Case(f"{spec.function}@rt", spec.module, path, site=site))
            if spec.module in DEFERRED:
                cases.append(_Case(f"{spec.function}@eager", spec.module, path, DEFERRED[spec.module]))
        samples = _rounds(cases, runs)
        baseline = _summary(samples["base"])
        baseline["import_profile"] = import_profile("minimal_handler", [minimal])
        baseline["runtime_like_import_ms"] = _summary(samples["base@rt"])["import_ms"]
        rows: list[dict[str, Any]] = []
        for spec in specs:
            path = [ROOT / spec.code_uri, LAYER]
            row: dict[str, Any] = {
                "function": spec.function,
                "module": spec.module,
                **_summary(samples[spec.function]),
            }
            row["ratio"] = _ratio(samples[spec.function], samples["base"])
            row["within_target"] = row["ratio"] <= TARGET_RATIO
            row["runtime_like_import_ms"] = _summary(samples[f"{spec.function}@rt"])["import_ms"]
            row["runtime_like_ratio"] = _ratio(samples[f"{spec.function}@rt"], samples["base@rt"])
            row["import_profile"] = import_profile(spec.module, path)
            if spec.module in DEFERRED:
                row["eager_import_ms"] = _summary(samples[f"{spec.function}@eager"])["import_ms"]
                row["eager_ratio"] = _ratio(samples[f"{spec.function}@eager"], samples["base"])
                row["deferred"] = list(DEFERRED[spec.module])
            rows.append(row)
    return {"runs": runs, "target_ratio": TARGET_RATIO, "baseline": baseline, "handlers": rows}


def _profile(row: dict[str, Any]) -> str:
    return ", ".join(f"{name} {ms:.0f}" for name, ms in row.get("import_profile", []))


def render(fig: dict[str, Any]) -> list[str]:
    base = fig["baseline"]
    target = fig.get("target_ratio", TARGET_RATIO)
    lines = [
        f"Median of {fig['runs']} fresh processes each (one warm-up run first, not counted). "
        "`import` is the time of `import <handler module>` inside the process (Powertools set-up "
        "included; settings are validated and clients built when the function is put together, at "
        "its first invocation). `process` is "
        "the whole interpreter run seen from outside. Tracing off, as deployed by default "
        "(`POWERTOOLS_TRACE_DISABLED`): the X-Ray SDK is neither deployed nor imported. "
        "Every round runs each case once in turn and *x minimal* is the median over rounds of the "
        "handler's import time over the minimal handler's in the same round. *Runtime-like*: the "
        f"same, in processes started with `-S` whose site-packages lack {', '.join(NOT_IN_RUNTIME)} "
        "(in the venv, not in the Lambda runtime; botocore and urllib3 import the first ones when "
        "present, which makes the minimal handler slower here than in Lambda). "
        f"Target: x minimal at most {target:.2f}. *Where the time goes*: self import time (ms) "
        "summed by package, from one `python -X importtime` run (which inflates the figures).",
        "",
        f"| Function | Handler module | import ms | process ms | x minimal | target <= {target:.2f} "
        "| runtime-like: import ms | x minimal | heavy modules loaded | where the time goes |",
        "|---|---|---:|---:|---:|---|---:|---:|---|---|",
        f"| (minimal: boto3 + one client) | `minimal_handler` | {base['import_ms']} | {base['process_ms']} "
        f"| 1.00 | | {base.get('runtime_like_import_ms', '')} | 1.00 | {', '.join(base['modules'])} "
        f"| {_profile(base)} |",
    ]
    for row in fig["handlers"]:
        met = row["ratio"] <= target
        lines.append(
            f"| {row['function']} | `{row['module']}` | {row['import_ms']} | {row['process_ms']} "
            f"| {row['ratio']:.2f} | {'yes' if met else '**no**'} | {row.get('runtime_like_import_ms', '')} "
            f"| {row.get('runtime_like_ratio', '')} | {', '.join(row['modules'])} | {_profile(row)} |"
        )
    deferred = [r for r in fig["handlers"] if "eager_import_ms" in r]
    if deferred:
        lines += [
            "",
            "Modules a handler loads lazily, only on the paths that need them, or not at all (before = "
            "the same modules imported eagerly, as the code did before). A module most invocations "
            "need (submit's Cromwell client, the monitor's Batch event models) then loads during the "
            "first invocation, in its duration rather than in the import; the *before* column is the "
            "cold start counted that way:",
            "",
        ]
        lines += [
            "| Handler module | deferred | before ms | after ms | before x minimal | after x minimal |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for row in deferred:
            lines.append(
                f"| `{row['module']}` | {', '.join(row['deferred'])} | {row['eager_import_ms']} "
                f"| {row['import_ms']} | {row.get('eager_ratio', '')} | {row['ratio']:.2f} |"
            )
    return lines


def targets(fig: dict[str, Any]) -> list[str]:
    """One line per function: its ratio beside the target."""
    target = fig.get("target_ratio", TARGET_RATIO)
    return [
        f"cold start {row['function']}: x{row['ratio']:.2f} of the minimal handler "
        f"(runtime-like x{row.get('runtime_like_ratio', '-')}; target <= {target:.2f}: "
        f"{'met' if row['ratio'] <= target else 'NOT met'})"
        for row in fig["handlers"]
    ]
