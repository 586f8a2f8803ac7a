"""Deployment size of each function and of the layer, unzipped and zipped (deflate, level 6, as
`sam deploy` packages them), read from a `sam build` output directory (`.aws-sam/build`)."""

from __future__ import annotations

import io
import os
import subprocess
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BUILD_DIR = ROOT / ".aws-sam" / "build"
SAM_BUILD = "AWS_DEFAULT_REGION=us-east-1 sam build --template template.yaml"


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
    if build == "always" or (build == "auto" and not build_dir.is_dir()):
        sam_build()
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
        rows.append(
            {
                "name": folder.name,
                "kind": kind,
                "files": files,
                "unzipped": unzipped,
                "zipped": zipped,
                "largest": largest,
            }
        )
    return {
        "build_dir": str(build_dir.relative_to(ROOT) if build_dir.is_relative_to(ROOT) else build_dir),
        "built_now": built,
        "artifacts": rows,
    }


def _mb(n: int) -> str:
    return f"{n / 1_000_000:.2f}"


def render(fig: dict[str, Any]) -> list[str]:
    lines = [
        f"From `{fig['build_dir']}` (`{SAM_BUILD}`; "
        f"built by this run: {'yes' if fig['built_now'] else 'no'}). "
        "Zipped = deflate level 6 of the artifact folder. Lambda's limit is 250 MB unzipped for a "
        "function and its layers together; boto3 comes from the runtime and is not packaged.",
        "",
        "| Artifact | kind | files | unzipped MB | zipped MB | largest folders (MB) |",
        "|---|---|---:|---:|---:|---|",
    ]
    for row in fig["artifacts"]:
        lines.append(
            f"| {row['name']} | {row['kind']} | {row['files']} "
            f"| {_mb(row['unzipped'])} | {_mb(row['zipped'])} "
            f"| {', '.join(f'{name} {_mb(size)}' for name, size in row.get('largest', []))} |"
        )
    return lines
