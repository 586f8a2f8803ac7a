"""Run the benchmarks and (re)write docs/benchmarks.md with their figures.

    python -m tests.bench                 # every benchmark, full sizes (what `make bench` runs)
    python -m tests.bench --quick         # smaller sizes
    python -m tests.bench cold-start      # one benchmark (or several) by name
    python -m tests.bench --sam-build     # rebuild .aws-sam/build before measuring sizes

Each benchmark owns one section of the document between `<!-- bench:NAME -->` markers; running
some of them rewrites only their sections and keeps the others. Figures, not pass/fail.
"""

# ruff: noqa: PLC0415 - each benchmark's module is imported only when that benchmark runs
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tests.conftest  # noqa: F401 - the fake AWS environment every handler module validates at import
from local.stack.paths import ROOT, ensure_import_paths

DOC = ROOT / "docs" / "benchmarks.md"
ensure_import_paths()


@dataclass(frozen=True)
class Sizes:
    cold_runs: int = 7
    shards: int = 10_000
    stack_shards: int = 10_000
    reconciler_runs: int = 1000
    lifecycle_hours: tuple[int, ...] = (1, 10, 100)
    lifecycle_tasks: tuple[int, ...] = (1, 10, 1000)
    #: failed runs: (hours, tasks, the task that fails)
    lifecycle_failed: tuple[tuple[int, int, int], ...] = ((1, 1, 1), (100, 1, 1), (10, 10, 5))
    concurrency: tuple[int, ...] = (1, 1000)
    notify_tasks: int = 10_000
    cli_runs: int = 10_000
    cli_tasks: int = 10_000
    latency_repeats: int = 7
    sheet_rows: int = 1000
    sheet_paced_rows: int = 200
    build: str = "auto"  # deployment size: "auto", "always" or "never"
    build_dir: Path | None = None


FULL = Sizes()
QUICK = Sizes(
    cold_runs=3,
    shards=1000,
    stack_shards=200,
    reconciler_runs=200,
    concurrency=(1, 1000),
    notify_tasks=1000,
    cli_runs=1000,
    cli_tasks=1000,
    latency_repeats=3,
    sheet_rows=100,
    sheet_paced_rows=20,
)


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str
    run: Callable[[Sizes], dict[str, Any]]
    render: Callable[[dict[str, Any]], list[str]]


def _cold_start(sizes: Sizes) -> dict[str, Any]:
    from tests.bench import cold_start

    return cold_start.measure(sizes.cold_runs)


def _monitor(sizes: Sizes) -> dict[str, Any]:
    from tests.bench import monitor_bench

    report: dict[str, Any] = {}
    monitor_bench.run(
        report, shards=sizes.shards, stack_shards=sizes.stack_shards, runs=sizes.reconciler_runs
    )
    figures: dict[str, Any] = report["monitor"]
    return figures


def _lifecycle(sizes: Sizes) -> dict[str, Any]:
    from tests.bench import lifecycle

    return lifecycle.measure(
        sizes.lifecycle_hours, sizes.lifecycle_tasks, sizes.concurrency, sizes.lifecycle_failed
    )


def _notify(sizes: Sizes) -> dict[str, Any]:
    from tests.bench import notify_bench

    return notify_bench.measure(tasks=sizes.notify_tasks)


def _cli(sizes: Sizes) -> dict[str, Any]:
    from tests.bench import cli_bench

    return cli_bench.measure(runs=sizes.cli_runs, tasks=sizes.cli_tasks)


def _latency(sizes: Sizes) -> dict[str, Any]:
    from tests.bench import latency

    return latency.measure(sizes.latency_repeats)


def _sheets(sizes: Sizes) -> dict[str, Any]:
    from tests.bench import sheet_bench

    return sheet_bench.measure(sizes.sheet_rows, sizes.sheet_paced_rows)


def _deploy_size(sizes: Sizes) -> dict[str, Any]:
    from tests.bench import deploy_size

    return deploy_size.measure(sizes.build_dir or deploy_size.BUILD_DIR, build=sizes.build)


def _render(module: str) -> Callable[[dict[str, Any]], list[str]]:
    def render(figures: dict[str, Any]) -> list[str]:
        from importlib import import_module

        lines: list[str] = import_module(f"tests.bench.{module}").render(figures)
        return lines

    return render


#: benchmarks whose module has `targets(figures)`: lines of each figure beside its target
_WITH_TARGETS = {"cold-start": "cold_start", "cromwell-calls": "lifecycle", "deploy-size": "deploy_size"}


def _targets(name: str, figures: dict[str, Any]) -> list[str]:
    module = _WITH_TARGETS.get(name)
    if module is None:
        return []
    from importlib import import_module

    lines: list[str] = import_module(f"tests.bench.{module}").targets(figures)
    return lines


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark("cold-start", "Cold start", _cold_start, _render("cold_start")),
        Benchmark("monitor", "Monitor: Batch events and the reconciler", _monitor, _render("monitor_bench")),
        Benchmark(
            "cromwell-calls", "Cromwell calls per workflow vs polling", _lifecycle, _render("lifecycle")
        ),
        Benchmark("notify", "Notify: report of a 10,000-task failed run", _notify, _render("notify_bench")),
        Benchmark(
            "cli",
            "The courier command: runs over 10,000 runs, show of a 10,000-task run",
            _cli,
            _render("cli_bench"),
        ),
        Benchmark("latency", "Latency", _latency, _render("latency")),
        Benchmark("sheets", "Sample sheets through the local stack", _sheets, _render("sheet_bench")),
        Benchmark("deploy-size", "Deployment size", _deploy_size, _render("deploy_size")),
    )
}


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": f"{cpu}, {os.cpu_count()} CPU(s), {platform.machine()}",
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }


def command_for(name: str, quick: bool, options: Sequence[str] = ()) -> str:
    return shlex.join(["python", "-m", "tests.bench", *(["--quick"] if quick else []), *options, name])


def section(
    bench: Benchmark, figures: dict[str, Any], *, command: str, when: str, host: dict[str, str]
) -> str:
    body = [
        f"<!-- bench:{bench.name} -->",
        f"## {bench.title}",
        "",
        f"Command: `{command}` - {when} - {host['python']} on {host['cpu']}",
        "",
        *bench.render(figures),
        "",
        "<details><summary>raw figures</summary>",
        "",
        "```json",
        json.dumps(figures, indent=1, sort_keys=True, default=str),
        "```",
        "",
        "</details>",
        f"<!-- /bench:{bench.name} -->",
    ]
    return "\n".join(body)


HEADER = """# Benchmarks

Written by `make bench` (`python -m tests.bench`); do not edit by hand. Figures, not pass/fail:
they depend on the machine below. Each section names the exact command that produced it.
"""


def document(previous: str, sections: dict[str, str], host: dict[str, str], when: str, argv: str) -> str:
    """The whole document: the header, the machine of this run, and one section per benchmark in
    registry order (new sections from `sections`, the others kept from `previous`)."""
    kept = {
        m.group(1): m.group(0)
        for m in re.finditer(r"<!-- bench:([a-z-]+) -->.*?<!-- /bench:\1 -->", previous, flags=re.S)
    }
    kept.update(sections)
    parts = [
        HEADER,
        "## Machine",
        "",
        f"- Last run: {when}, `{argv}`",
        f"- CPU: {host['cpu']}",
        f"- OS: {host['os']}",
        f"- Python: {host['python']}",
        "",
    ]
    parts += [kept[name] + "\n" for name in BENCHMARKS if name in kept]
    return "\n".join(parts)


def run(
    names: Sequence[str],
    sizes: Sizes,
    *,
    quick: bool,
    doc: Path = DOC,
    argv: str = "python -m tests.bench",
    options: Sequence[str] = (),
) -> dict[str, dict[str, Any]]:
    host = machine()
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    results: dict[str, dict[str, Any]] = {}
    sections: dict[str, str] = {}
    for name in names:
        bench = BENCHMARKS[name]
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        figures = bench.run(sizes)
        results[name] = figures
        for line in _targets(name, figures):
            print(f"[bench] {line}", file=sys.stderr, flush=True)
        sections[name] = section(
            bench, figures, command=command_for(name, quick, options), when=when, host=host
        )
        previous = doc.read_text(encoding="utf-8") if doc.exists() else ""
        doc.parent.mkdir(parents=True, exist_ok=True)
        doc.write_text(document(previous, sections, host, when, argv), encoding="utf-8")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all): {', '.join(BENCHMARKS)}")
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--sam-build", action="store_true", help="run `sam build` before measuring sizes")
    parser.add_argument(
        "--stack-shards",
        type=int,
        metavar="N",
        help="shards of the monitor's scatter through the local stack (default: 10,000; 200 with --quick)",
    )
    parser.add_argument("--output", type=Path, default=DOC, help="the document to (re)write")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    sizes = QUICK if args.quick else FULL
    options: list[str] = []
    if args.sam_build:
        sizes = replace(sizes, build="always")
    if args.stack_shards is not None:
        sizes = replace(sizes, stack_shards=args.stack_shards)
        options += ["--stack-shards", str(args.stack_shards)]
    names = args.names or list(BENCHMARKS)
    shown = shlex.join(["python", "-m", "tests.bench", *(argv if argv is not None else sys.argv[1:])])
    run(names, sizes, quick=args.quick, doc=args.output, argv=shown, options=options)
    print(f"[bench] wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
