"""Invoke one function's handler the way `sam local invoke` does: in a process of its own whose
environment is the function's entry of an `--env-vars` file and whose import path holds only the
function's code and the layer, with one event file per invocation.

    python tests/e2e/sam_invoke.py <module.handler> <event.json> [<event.json> ...]

Each invocation prints one JSON line: {"event": <file>, "result": <the handler's answer>} or
{"event": <file>, "error": "<type>: <message>"}. The process exits 0 when no invocation raised.
It imports nothing from the repository itself: what the handler needs must be on PYTHONPATH.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
import uuid
from pathlib import Path
from typing import Any


class LambdaContext:
    """What Lambda hands a handler, as far as the handlers and Powertools read it."""

    def __init__(self, function_name: str, region: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = f"arn:aws:lambda:{region}:123456789012:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "sam-local"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    module_name, _, function_name = argv[0].rpartition(".")
    handler = getattr(importlib.import_module(module_name), function_name)
    name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", module_name)
    region = os.environ.get("AWS_REGION", "us-east-1")
    failed = False
    for path in argv[1:]:
        event = json.loads(Path(path).read_text(encoding="utf-8"))
        line: dict[str, Any] = {"event": path}
        try:
            line["result"] = handler(event, LambdaContext(name, region))
        except Exception as exc:
            failed = True
            line["error"] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc(file=sys.stderr)
        print(json.dumps(line, default=str), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
