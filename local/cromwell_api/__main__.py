"""Run the local Cromwell-compatible server: `python -m local.cromwell_api --port 8000`."""

from __future__ import annotations

import argparse
import contextlib
import threading

from local.cromwell_api.auth import RequiredAuth
from local.cromwell_api.backend import InMemoryBackend
from local.cromwell_api.server import CromwellTestServer


def main() -> None:
    parser = argparse.ArgumentParser(description="Local Cromwell-compatible REST server (not Cromwell).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--early-404-seconds", type=float, default=0.0)
    parser.add_argument(
        "--auth",
        type=RequiredAuth.parse,
        help="require a credential, as a proxy would: basic:<user>:<password>, bearer:<token> "
        "or header:<name>:<value>",
    )
    args = parser.parse_args()
    backend = InMemoryBackend(early_404_seconds=args.early_404_seconds)
    with CromwellTestServer(backend, host=args.host, port=args.port, auth=args.auth) as server:
        print(f"local Cromwell-compatible server on {server.url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
