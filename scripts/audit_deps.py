"""Audit the project's Python dependencies with pip-audit: the four runtime requirements files
(resolved with their transitive dependencies) and the dev group (as installed in the venv).

    python scripts/audit_deps.py --pip-audit .venv-scan/bin/pip-audit --venv .venv

Exit status: 1 when a known vulnerability is found (or pip-audit fails for another reason),
0 otherwise. When the vulnerability service (PyPI's JSON API) cannot be reached, it says so
plainly, does not pretend the audit passed, and exits 0 unless `--strict`: an offline machine
cannot audit, and that alone should not fail CI. Ignored vulnerabilities are listed in
`IGNORED` below, each with its reason.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = [
    "layers/courier/requirements.txt",
    "layers/tracing/requirements.txt",
    "functions/submit/requirements.txt",
    "functions/notify/requirements.txt",
]
#: Vulnerability id -> why it does not apply. Empty: nothing is ignored.
IGNORED: dict[str, str] = {}
UNREACHABLE = ("ConnectionError", "Max retries exceeded", "Temporary failure in name resolution", "timed out")


def run_audit(pip_audit: str, args: list[str], label: str) -> tuple[str, int]:
    """Returns ("ok" | "vulnerable" | "unreachable" | "error", number of findings)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        ignore = [arg for vuln in IGNORED for arg in ("--ignore-vuln", vuln)]
        proc = subprocess.run(
            [pip_audit, *args, *ignore, "--progress-spinner", "off", "-f", "json", "-o", str(report)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        output = proc.stdout + proc.stderr
        findings = []
        if report.exists() and report.stat().st_size:
            data = json.loads(report.read_text())
            for dep in data.get("dependencies", []):
                for vuln in dep.get("vulns", []):
                    findings.append(
                        f"{dep['name']} {dep.get('version')}: {vuln['id']} (fix: {vuln.get('fix_versions')})"
                    )
    if findings:
        print(f"pip-audit [{label}]: {len(findings)} known vulnerabilities")
        for line in findings:
            print(f"  {line}")
        return "vulnerable", len(findings)
    if proc.returncode == 0:
        print(f"pip-audit [{label}]: no known vulnerabilities")
        return "ok", 0
    if any(marker in output for marker in UNREACHABLE):
        print(f"pip-audit [{label}]: NOT AUDITED - the vulnerability service could not be reached")
        return "unreachable", 0
    print(f"pip-audit [{label}]: failed:\n{output[-2000:]}")
    return "error", 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pip-audit", required=True, help="the pip-audit executable")
    parser.add_argument("--venv", default=".venv", help="the project venv holding the dev group")
    parser.add_argument("--strict", action="store_true", help="fail when the service cannot be reached")
    args = parser.parse_args(argv)
    for vuln, reason in IGNORED.items():
        print(f"pip-audit: ignoring {vuln}: {reason}")
    results = [run_audit(args.pip_audit, [arg for req in RUNTIME for arg in ("-r", req)], "runtime")]
    frozen = subprocess.run(
        [str(Path(args.venv) / "bin" / "python"), "-m", "pip", "freeze", "--exclude-editable"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pinned = "\n".join(line for line in frozen.splitlines() if "==" in line) + "\n"
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
        handle.write(pinned)
    try:
        results.append(
            run_audit(args.pip_audit, ["--no-deps", "--disable-pip", "-r", handle.name], "dev group")
        )
    finally:
        Path(handle.name).unlink()
    states = {state for state, _n in results}
    if states & {"vulnerable", "error"}:
        return 1
    if "unreachable" in states:
        print("pip-audit: the dependency audit could not run here (no access to PyPI's vulnerability data)")
        return 1 if args.strict else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
