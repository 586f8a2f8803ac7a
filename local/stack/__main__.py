"""`python -m local.stack` (`make stack`): keep the local stack up, drop your own run folders into
it, and watch the timeline. A local emulation on loopback, not AWS.

    python -m local.stack                          # up until Ctrl-C; drop files with any S3 client
    python -m local.stack --drop path/to/folder    # drop a folder, print until its runs end
    python -m local.stack --write-env events/env.local.json   # env file for `sam local invoke`
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

from local.stack.paths import ensure_import_paths

FIXED = {"moto": 5000, "cromwell": 8000, "callback": 8001}
#: Read by `courier --local` (the runs console) while the stack is up.
STATE_FILE = Path(__file__).resolve().parents[2] / ".courier-local.json"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m local.stack", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--drop", type=Path, action="append", default=[], help="run folder to drop (repeatable)"
    )
    parser.add_argument("--prefix", default="runs", help="key prefix for dropped folders (default: runs)")
    parser.add_argument("--moto-port", type=int, default=FIXED["moto"], help="AWS endpoint port (0: any)")
    parser.add_argument("--cromwell-port", type=int, default=FIXED["cromwell"], help="Cromwell port (0: any)")
    parser.add_argument(
        "--callback-port", type=int, default=FIXED["callback"], help="callback URL port (0: any)"
    )
    parser.add_argument("--step", type=float, default=0.3, help="pause between a task's Batch states (s)")
    parser.add_argument(
        "--reconcile-every",
        type=float,
        default=None,
        help="seconds between reconciler runs (default: template)",
    )
    parser.add_argument(
        "--cromwell-auth",
        metavar="SPEC",
        help="the Cromwell API asks for a credential, as a proxy would: basic:<user>:<password>, "
        "bearer:<token> or header:<name>:<value> (kept in a secret the functions read)",
    )
    parser.add_argument(
        "--no-call-caching",
        action="store_true",
        help="run every call, as Cromwell with call-caching.enabled = false (default: call caching on)",
    )
    parser.add_argument(
        "--batch-window",
        type=int,
        default=0,
        metavar="SECONDS",
        help="inputs files dropped into one folder within this many seconds form one batch (one "
        "digest); 0 (default here; the template's is 300): every file its own run",
    )
    parser.add_argument(
        "--slack-bot",
        action="store_true",
        help="post to Slack as a bot token does (chat.postMessage, a thread per run and per batch) "
        "instead of through an incoming webhook",
    )
    parser.add_argument("--write-env", type=Path, help="write `sam local invoke --env-vars` JSON here")
    parser.add_argument(
        "--state-file",
        type=Path,
        default=STATE_FILE,
        help=f"where `courier --local` finds the stack, removed on exit (default: {STATE_FILE.name})",
    )
    parser.add_argument(
        "--timeout", type=float, default=0, help="with --drop: give up after this many seconds"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    for folder in args.drop:
        if not folder.is_dir():
            print(f"not a folder: {folder}", file=sys.stderr)
            return 2
    ensure_import_paths()
    from local.cromwell_api.auth import RequiredAuth  # noqa: PLC0415
    from local.stack import LocalStack, LocalStackOptions  # noqa: PLC0415

    width = min(shutil.get_terminal_size((110, 20)).columns, 140)
    options = LocalStackOptions(
        moto_port=args.moto_port,
        cromwell_port=args.cromwell_port,
        callback_port=args.callback_port,
        step_seconds=args.step,
        schedule_seconds=args.reconcile_every,
        cromwell_auth=RequiredAuth.parse(args.cromwell_auth) if args.cromwell_auth else None,
        call_caching=not args.no_call_caching,
        parameters={"BatchWindowSeconds": str(args.batch_window)},
        slack_bot=args.slack_bot,
        on_entry=lambda entry: print(entry.render(width), flush=True),
    )
    print("Cromwell Courier local stack - a LOCAL EMULATION on loopback (moto for AWS, a local engine")
    print("for Cromwell on AWS Batch, the functions' handlers in this process). Ctrl-C stops it.\n")
    # A TERM (kill, a supervisor) ends the stack as Ctrl-C does: closed, its state file removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with LocalStack(options) as stack:
        callback = next((spec.url for spec in stack.provisioned.functions.values() if spec.url), "")
        print(f"  AWS_ENDPOINT_URL={stack.moto_url}")
        print(f"  CROMWELL_URL={stack.cromwell_url}")
        print(f"  Swagger spec    {stack.cromwell_url}/swagger/cromwell.yaml   (see local/README.md)")
        print(f"  callback function URL {callback}")
        print(
            f"  runs bucket     s3://{stack.runs_bucket}"
            f"   (drop: aws --endpoint-url {stack.moto_url} s3 cp ...)"
        )
        print(f"  ledger table    {stack.table_name}")
        for name, url in stack.provisioned.email_queues.items():
            print(f"  e-mail inbox    {url}  ({name})")
        if stack.slack and args.slack_bot:
            print(f"  Slack Web API   {stack.slack.api_url}chat.postMessage (bot token, threads)")
        else:
            print(f"  Slack webhook   {stack.slack.webhook_url if stack.slack else '-'}")
        state = stack.console_state()
        if "cromwell_auth_secret" in state:
            print(f"  Cromwell's credential in the secret {state['cromwell_auth_secret']}")
        args.state_file.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
        print(f"  courier --local reads {args.state_file}")
        if args.write_env:
            args.write_env.write_text(json.dumps(stack.sam_env(), indent=2) + "\n", encoding="utf-8")
            print(f"  sam env file    {args.write_env}")
        print()
        workflow_ids = []
        for folder in args.drop:
            prefix = f"{args.prefix.strip('/')}/{folder.resolve().name}"
            for key in stack.drop_folder(folder, prefix):
                receipt = stack.wait_for_receipt(key, timeout=60)
                if receipt and receipt.get("status") == "Submitted":
                    workflow_ids.append(str(receipt["workflow_id"]))
        deadline = time.monotonic() + args.timeout if args.timeout else None
        try:
            if args.drop:
                batches = set()
                for workflow_id in workflow_ids:
                    remaining = (deadline - time.monotonic()) if deadline else 365 * 86400.0
                    run = stack.wait_for_end(workflow_id, timeout=max(remaining, 0.1))
                    if run is not None and run.batch_id:
                        batches.add(run.batch_id)
                for batch_id in sorted(batches):  # a folder batch's messages wait for its window
                    remaining = (deadline - time.monotonic()) if deadline else 365 * 86400.0
                    stack.wait_for_batch(batch_id, timeout=max(remaining, 0.1))
                stack.settle(timeout=5)
            else:
                threading.Event().wait()
        except KeyboardInterrupt:
            print("\nstopping ...", flush=True)
        finally:
            args.state_file.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
