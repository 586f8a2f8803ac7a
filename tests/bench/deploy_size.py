"""Deployment size of each function and of the layers, unzipped and zipped (deflate, level 6, as
`sam deploy` packages them), read from a `sam build` output directory (`.aws-sam/build`), each
beside its target: a layer at most 10 MB zipped, a function at most 5 MB unzipped (MB = 10^6 bytes).
"""

from __future__ import annotations

import io
import os
import subprocess
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BUILD_DIR = ROOT / ".aws-sam" / "build"
SAM_BUILD = "AWS_DEFAULT_REGION=us-east-1 sam build --template template.yaml"

#: kind -> (measure, most bytes)
TARGETS: dict[str, tuple[str, int]] = {"layer": ("zipped", 10_000_000), "function": ("unzipped", 5_000_000)}
#: Modules the Lambda runtime provides (or only an option needs) that no artifact may carry.
NOT_SHIPPED = ("boto3", "botocore", "s3transfer", "aws_xray_sdk")
#: Layers deployed only when a template parameter asks for them, and what they exist to carry.
OPTIONAL = {"TracingLayer": "EnableTracing=true"}
CARRIES = {"TracingLayer": {"aws_xray_sdk"}}


def sam_build(root: Path = ROOT) -> None:
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0"}
    sam = root / ".venv" / "bin" / "sam"
    subprocess.run(
        [str(sam) if sam.exists() else "sam", "build", "--template", "template.yaml"],
        cwd=root,
        env=env,
        check=True,
    )


def _sizes(folder: Path) -> tuple[int, int, int]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    unzipped = sum(p.stat().st_size for p in files)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for path in files:
            archive.write(path, path.relative_to(folder).as_posix())
    return len(files), unzipped, buffer.tell()


def measure(build_dir: Path = BUILD_DIR, *, build: str = "auto") -> dict[str, Any]:
    """`build`: "auto" builds once when `build_dir` is missing, "always" rebuilds, "never" only reads."""
    built = False
    build_seconds = None
    if build == "always" or (build == "auto" and not build_dir.is_dir()):
        started = time.monotonic()
        sam_build()
        build_seconds = round(time.monotonic() - started, 1)
        built = True
    if not build_dir.is_dir():
        raise FileNotFoundError(f"{build_dir} does not exist; run `{SAM_BUILD}` or pass --sam-build")
    rows = []
    for folder in sorted(p for p in build_dir.iterdir() if p.is_dir()):
        files, unzipped, zipped = _sizes(folder)
        kind = "layer" if (folder / "python").is_dir() else "function"
        top = folder / "python" if kind == "layer" else folder
        largest = sorted(
            (
                (p.name, sum(f.stat().st_size for f in p.rglob("*") if f.is_file()))
                for p in top.iterdir()
                if p.is_dir()
            ),
            key=lambda pair: -pair[1],
        )[:4]
        measure_name, most = TARGETS[kind]
        size = zipped if measure_name == "zipped" else unzipped
        rows.append(
            {
                "name": folder.name,
                "kind": kind,
                "files": files,
                "unzipped": unzipped,
                "zipped": zipped,
                "largest": largest,
                "target": {"measure": measure_name, "most": most, "met": size <= most},
                "shipped_runtime_modules": sorted(
                    n for n in NOT_SHIPPED if (top / n).exists() and n not in CARRIES.get(folder.name, ())
                ),
            }
        )
    return {
        "build_dir": str(build_dir.relative_to(ROOT) if build_dir.is_relative_to(ROOT) else build_dir),
        "built_now": built,
        "build_seconds": build_seconds,
        "artifacts": rows,
    }


def _mb(n: int) -> str:
    return f"{n / 1_000_000:.2f}"


def _target(row: dict[str, Any]) -> str:
    target = row.get("target")
    if not target:
        return ""
    return f"{'yes' if target['met'] else '**no**'} (at most {_mb(target['most'])} {target['measure']})"


def render(fig: dict[str, Any]) -> list[str]:
    built = "yes" if fig["built_now"] else "no"
    if fig.get("build_seconds") is not None:
        built += f", in {fig['build_seconds']} s"
    lines = [
        f"From `{fig['build_dir']}` (`{SAM_BUILD}`; built by this run: {built}). Zipped = deflate "
        "level 6 of the artifact folder; MB = 10^6 bytes. Targets: a layer at most 10 MB zipped, a "
        "function at most 5 MB unzipped. Lambda's own limit is 250 MB unzipped for a function and "
        f"its layers together. Not packaged anywhere: {', '.join(NOT_SHIPPED)} (boto3 and botocore "
        "come with the Lambda runtime; the X-Ray SDK only in the tracing layer, deployed with "
        "EnableTracing=true).",
        "",
        "| Artifact | kind | files | unzipped MB | zipped MB | within target | largest folders (MB) |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for row in fig["artifacts"]:
        kind = row["kind"] + (f" (only with {OPTIONAL[row['name']]})" if row["name"] in OPTIONAL else "")
        lines.append(
            f"| {row['name']} | {kind} | {row['files']} "
            f"| {_mb(row['unzipped'])} | {_mb(row['zipped'])} | {_target(row)} "
            f"| {', '.join(f'{name} {_mb(size)}' for name, size in row.get('largest', []))} |"
        )
    shipped = {row["name"]: row["shipped_runtime_modules"] for row in fig["artifacts"]}
    wrong = {name: modules for name, modules in shipped.items() if modules}
    lines += [
        "",
        "Runtime-provided modules packaged: "
        + ("; ".join(f"**{name}: {', '.join(m)}**" for name, m in wrong.items()) if wrong else "none"),
    ]
    return lines


def targets(fig: dict[str, Any]) -> list[str]:
    """One line per artifact: its size beside the target."""
    lines = []
    for row in fig["artifacts"]:
        target = row.get("target")
        if target:
            size = row[target["measure"]]
            lines.append(
                f"deploy size {row['name']}: {_mb(size)} MB {target['measure']} "
                f"(target <= {_mb(target['most'])}: {'met' if target['met'] else 'NOT met'})"
            )
    return lines
