"""Where the deployed code lives in the repository, for running the handlers in this process
(the same paths `pythonpath` in pyproject.toml gives pytest)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CODE_PATHS = ("layers/courier", "functions/submit", "functions/monitor", "functions/notify", "cli")


def ensure_import_paths() -> None:
    for relative in reversed(CODE_PATHS):
        path = str(ROOT / relative)
        if path not in sys.path:
            sys.path.insert(0, path)
