"""`courier`: see and act on the runs of a Cromwell Courier deployment from a terminal."""

from __future__ import annotations

import json
import re
import sys
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from courier import __version__
from courier.costs import COST_ATTRIBUTES, CostEstimate
from courier.digest import RunDigest, digest
from courier.ledger.listing import RunFilter
from courier.ledger.records import RunView
from courier.models import RunStatus, TaskStatus
from courier.run_report import render_report
from courier_cli import render
from courier_cli.deployment import Connection, Location, connect
from courier_cli.drop import Dropper, Outcome, plan_drop
from courier_cli.errors import ConsoleError, explain
from courier_cli.logs import LogReader, select_tasks
from courier_cli.lookup import Ledger
from courier_cli.rerun import plan_rerun, read_receipt

#: Exit status of `drop` when a run was refused and of `watch` when a run did not succeed.
REFUSED_EXIT = 1


def _now() -> datetime:
    return datetime.now(UTC)


class Failure(click.ClickException):
    """A `ConsoleError` on its way out: one line on stderr, its exit status."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file: Any = None) -> None:
        click.echo(f"courier: {self.message}", err=True)


class CourierGroup(click.Group):
    """Turns every failure the user can act on into one line and exit status 2; lists the
    commands in the order a run meets them (drop, runs, show, ...), not alphabetically."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            session = ctx.obj if isinstance(ctx.obj, Session) else None
            known = explain(exc, cromwell_url=session.cromwell_url if session else None)
            if known is None:
                raise
            raise Failure(known.message, known.exit_code) from exc


class Session:
    """The options of one invocation and, once a command needs them, the deployment's clients."""

    def __init__(
        self, location: Location, console: Console | None = None, conn: Connection | None = None
    ) -> None:
        self.location = location
        self.console = console or Console(highlight=False)
        self._conn: Connection | None = conn
        self._ledger: Ledger | None = None

    @property
    def conn(self) -> Connection:
        if self._conn is None:
            self._conn = connect(self.location)
        return self._conn

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            self._ledger = Ledger(self.conn)
        return self._ledger

    @property
    def cromwell_url(self) -> str | None:
        return self._conn.deployment.cromwell_url if self._conn else None

    def digest(self, run: RunView, max_failed: int = 20) -> RunDigest:
        return digest(
            self.ledger.tasks(run.workflow_id),
            prices=self.conn.deployment.prices,
            failures=run.failures,
            region=None if self.conn.deployment.local else self.conn.region,
            max_failed=max_failed,
        )

    def cost(self, run: RunView) -> CostEstimate:
        estimate = CostEstimate(self.conn.deployment.prices)
        for task in self.ledger.tasks(run.workflow_id, COST_ATTRIBUTES):
            estimate.add(task)
        return estimate


def _emit_json(document: Any) -> None:
    click.echo(json.dumps(document, indent=2, ensure_ascii=False, default=str))


def _fail(message: str) -> NoReturn:
    raise ConsoleError(message)


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
_RUN_HELP = (
    "RUN is a workflow id or its first characters (at least 4), an inputs key"
    " (runs/rnaseq/sampleA.inputs.json) or the s3:// URL of an inputs file."
)


def naming_a_run(command: click.Command) -> click.Command:
    """Says in the command's help how RUN names a run (put above `@cli.command()`)."""
    command.help = f"{command.help or ''}\n\n{_RUN_HELP}".strip()
    return command


@click.group(
    cls=CourierGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Exit status: 0 done; 1 a run was refused (drop) or did not succeed (watch); 2 the"
    " command could not do what it was asked, said in one line. More: docs/cli.md.",
)
@click.option(
    "--stack", metavar="NAME", help="The CloudFormation stack of the deployment (or COURIER_STACK)."
)
@click.option("--local", is_flag=True, help="The local stack `make stack` runs (.courier-local.json).")
@click.option("--region", metavar="REGION", help="AWS region of the stack (or AWS_REGION).")
@click.option("--profile", metavar="PROFILE", help="AWS profile (or AWS_PROFILE).")
@click.version_option(version=__version__, message="courier %(version)s")
@click.pass_context
def cli(ctx: click.Context, stack: str | None, local: bool, region: str | None, profile: str | None) -> None:
    """See and act on the runs of a Cromwell Courier deployment.

    The deployment is --local, --stack NAME, or the environment: COURIER_STACK, or
    COURIER_TABLE and COURIER_BUCKET (with COURIER_CROMWELL_URL, COURIER_CA_BUNDLE). When
    Cromwell asks for a credential, it is read from the stack's CromwellAuthSecretArn secret
    (or the one COURIER_CROMWELL_AUTH_SECRET names).

    Runs are named by workflow id (or its first characters), by inputs key
    (runs/rnaseq/sampleA.inputs.json) or by s3:// URL. `courier COMMAND --help` for each.
    """
    if isinstance(ctx.obj, Session):  # given by the caller (tests: a console, a connection)
        ctx.obj.location = replace(ctx.obj.location, stack=stack, local=local, region=region, profile=profile)
    else:
        ctx.obj = Session(Location(stack=stack, local=local, region=region, profile=profile))


pass_session = click.make_pass_decorator(Session)


# -- drop -----------------------------------------------------------------------------------------


@cli.command(short_help="Upload a run folder and wait for each run's receipt.")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option(
    "--to", metavar="runs/NAME/", help="Key prefix in the runs bucket (default: runs/<folder name>/)."
)
@click.option(
    "--timeout",
    default=180.0,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for the receipts.",
)
@json_option
@pass_session
def drop(session: Session, folder: Path, to: str | None, timeout: float, as_json: bool) -> None:
    """Upload a run folder and wait for each run's receipt.

    The WDL files go first, then options and labels, the inputs files last (each starts a
    run), as the submit rules need. Prints Submitted or Rejected with every reason.
    Exit status 1 when a run was refused.
    """
    plan = plan_drop(folder, to)
    bucket = session.conn.deployment.bucket
    dropper = Dropper(session.conn.client("s3"), bucket)
    before = dropper.receipt_etags(plan)
    console = session.console
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=as_json,
        transient=False,
    ) as bar:
        overall = bar.add_task(f"s3://{bucket}/{plan.prefix}", total=max(plan.total_bytes, 1))
        for item in plan.uploads:
            dropper.upload(item, lambda n: bar.advance(overall, n))
            if not as_json:
                bar.console.print(f"  uploaded {item.key}", style="dim", markup=False)
        bar.update(overall, completed=max(plan.total_bytes, 1))

    def shown(outcome: Outcome) -> None:
        if as_json:
            return
        style = (
            "green" if outcome.status == "Submitted" else ("yellow" if outcome.status == "Waiting" else "red")
        )
        line = f"[{style}]{escape(outcome.status)}[/] {escape(outcome.inputs_key)}"
        if outcome.workflow_id:
            line += f"  {outcome.workflow_id}"
        console.print(line)
        for reason in outcome.reasons:
            console.print(f"    - {reason}", markup=False, style="red")
        if outcome.status == "Waiting" and outcome.message:
            console.print(f"    {outcome.message}", markup=False)

    if not as_json:
        console.print(f"waiting for {len(plan.inputs)} receipt(s) ...", style="dim")
    outcomes = dropper.wait(before, timeout=timeout, on_outcome=shown)
    if as_json:
        _emit_json(
            {
                "bucket": bucket,
                "prefix": plan.prefix,
                "uploaded": [u.key for u in plan.uploads],
                "runs": [o.to_dict() for o in outcomes],
            }
        )
    if any(o.refused for o in outcomes):
        sys.exit(REFUSED_EXIT)


# -- runs -----------------------------------------------------------------------------------------

_SINCE = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime) -> datetime:
    """`30m`, `12h`, `7d`, `2w`, or a date / ISO time (UTC when no offset)."""
    match = _SINCE.match(text.strip().lower())
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        _fail(f"--since {text!r}: give an age (30m, 12h, 7d, 2w) or a date (2026-12-01)")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_statuses(values: Sequence[str]) -> tuple[RunStatus, ...]:
    known = {s.value.lower().replace(" ", ""): s for s in RunStatus}
    out: list[RunStatus] = []
    for value in values:
        for part in value.split(","):
            key = part.strip().lower().replace(" ", "").replace("-", "").replace("_", "")
            if not key:
                continue
            if key not in known:
                _fail(f"--status {part!r}: one of {', '.join(s.value for s in RunStatus)}")
            out.append(known[key])
    return tuple(dict.fromkeys(out))


@cli.command()
@click.option("--folder", metavar="PREFIX", help="Only runs of this run folder (or folders under it).")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    metavar="STATUS",
    help="Only runs in this status: " + ", ".join(status.value for status in RunStatus) + " (repeatable).",
)
@click.option("--since", metavar="AGE", help="Only runs submitted since: 30m, 12h, 7d, 2w or a date.")
@click.option(
    "--limit",
    default=20,
    show_default=True,
    type=click.IntRange(1, 1000),
    metavar="N",
    help="At most this many runs.",
)
@click.option("--no-cost", is_flag=True, help="Leave out the cost estimate (reads no task).")
@json_option
@pass_session
def runs(
    session: Session,
    folder: str | None,
    statuses: tuple[str, ...],
    since: str | None,
    limit: int,
    no_cost: bool,
    as_json: bool,
) -> None:
    """List runs, newest first."""
    now = _now()
    where = RunFilter(
        folder=folder.lstrip("/") if folder else None,
        statuses=parse_statuses(statuses),
        since=parse_since(since, now) if since else None,
    )
    ledger = session.ledger
    listed = ledger.listing.complete(list(ledger.listing.newest(where, limit=limit)))
    costs = {} if no_cost else {run.workflow_id: session.cost(run) for run in listed}
    if as_json:
        _emit_json({"runs": [render.run_dict(r, now, costs.get(r.workflow_id)) for r in listed]})
        return
    if not listed:
        session.console.print("No runs" + (" match." if folder or statuses or since else " yet."))
        return
    session.console.print(render.runs_table(listed, costs, now))


# -- show -----------------------------------------------------------------------------------------


@naming_a_run
@cli.command(short_help="Show a run: status, receipt, pipeline, tasks, failures, outputs.")
@click.argument("run")
@json_option
@pass_session
def show(session: Session, run: str, as_json: bool) -> None:
    """Show a run: status, receipt, tasks by call, failures, outputs, and its pipeline (the run or
    batch it was built from, the next run it started or why not)."""
    found = session.ledger.find(run)
    summary = session.digest(found)
    receipt = session.ledger.receipt_of(found)
    batch = session.ledger.views.batch(found.batch_id) if found.batch_id else None
    now = _now()
    if as_json:
        _emit_json(render.show_dict(found, summary, receipt, now, batch))
        return
    session.console.print(render.show_view(found, summary, receipt, now, batch))


# -- logs -----------------------------------------------------------------------------------------


@naming_a_run
@cli.command()
@click.argument("run")
@click.option("--call", metavar="CALL", help="The call (wf.task or task).")
@click.option("--shard", type=int, metavar="N", help="The shard of a scattered call.")
@click.option("--failed", is_flag=True, help="Failed tasks only.")
@click.option("--stderr/--stdout", "stderr", default=True, help="Which stream (default: stderr).")
@click.option("--tail", type=click.IntRange(0), metavar="N", help="Only the last N lines.")
@click.option("--all", "every", is_flag=True, help="Every task the options select, not only one.")
@json_option
@pass_session
def logs(
    session: Session,
    run: str,
    call: str | None,
    shard: int | None,
    failed: bool,
    stderr: bool,
    tail: int | None,
    every: bool,
    as_json: bool,
) -> None:
    """Print a task's stderr or stdout (from S3, else CloudWatch).

    When the options select several tasks: the one that failed, or the last attempt of one shard;
    otherwise name it with --call and --shard, or print them all with --all. The log's S3 path
    comes from Cromwell's metadata (with Cromwell's credential when it asks for one).
    """
    found = session.ledger.find(run)
    tasks = select_tasks(session.ledger.tasks(found.workflow_id), call=call, shard=shard, failed=failed)
    if not tasks:
        what = ", ".join(
            x
            for x in (
                f"call {call}" if call else "",
                f"shard {shard}" if shard is not None else "",
                "failed" if failed else "",
            )
            if x
        )
        _fail(
            f"no task of run {found.workflow_id[:8]} matches ({what or 'it has no task yet'}):"
            " `courier show` lists them"
        )
    if len(tasks) > 1 and not every:
        failed_ones = [t for t in tasks if t.status is TaskStatus.FAILED]
        if len(failed_ones) == 1 or (failed_ones and failed):
            tasks = failed_ones[:1]
        elif len({(t.call, t.shard) for t in tasks}) == 1:
            tasks = tasks[-1:]  # the last attempt of one call and shard
        else:
            names = sorted({t.label for t in tasks})
            shown = ", ".join(names[:8]) + (" ..." if len(names) > 8 else "")
            _fail(f"{len(tasks)} tasks match: name one with --call/--shard (or --all): {shown}")
    # no Cromwell URL: the CloudWatch streams still answer; a CA bundle or credential that cannot
    # be used is said, as for abort
    cromwell = session.conn.cromwell() if session.conn.deployment.cromwell_url else None
    reader = LogReader(session.conn.client("s3"), session.conn.client("logs"), cromwell)
    stream = "stderr" if stderr else "stdout"
    found_logs = [reader.read(found.workflow_id, task, stream, tail) for task in tasks]
    if as_json:
        _emit_json({"workflow_id": found.workflow_id, "logs": [log.to_dict() for log in found_logs]})
        return
    for log in found_logs:
        if len(found_logs) > 1 or sys.stdout.isatty():
            session.console.print(
                f"==> {log.task.label} {log.stream} ({log.source}) <==", style="bold", markup=False
            )
        click.echo(log.text, nl=False)


# -- watch ----------------------------------------------------------------------------------------


def _watched(session: Session, target: str) -> list[RunView]:
    """RUN, or every run of a run folder (the runs its receipts name)."""
    text = target.strip()
    is_folder = text.endswith("/") or (text.startswith("s3://") and text.endswith("/"))
    if not is_folder:
        return [session.ledger.find(text)]
    bucket = session.conn.deployment.bucket
    prefix = text
    if text.startswith("s3://"):
        bucket, _, prefix = text[5:].partition("/")
    s3 = session.conn.client("s3")
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix.lstrip("/")):
        keys.extend(o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".receipt.json"))
    found: list[RunView] = []
    for key in sorted(keys):
        receipt = session.ledger.receipt(bucket, key.removesuffix(".receipt.json")) or {}
        workflow_id = receipt.get("workflow_id")
        run = session.ledger.views.run(workflow_id) if isinstance(workflow_id, str) else None
        if run is not None:
            found.append(run)
    if not found:
        _fail(f"no run in s3://{bucket}/{prefix.lstrip('/')} (no receipt names one): `courier drop` it first")
    return found


def _poll(session: Session, runs: Sequence[RunView]) -> list[tuple[RunView, RunDigest]]:
    out = []
    for run in runs:
        current = session.ledger.views.run(run.workflow_id) or run
        out.append((current, session.digest(current, max_failed=5)))
    return out


@naming_a_run
@cli.command()
@click.argument("target", metavar="RUN|FOLDER/")
@click.option(
    "--interval",
    default=2.0,
    show_default=True,
    metavar="SECONDS",
    help="Time between looks at the ledger.",
)
@click.option("--timeout", type=float, metavar="SECONDS", help="Give up after this long (exit status 2).")
@json_option
@pass_session
def watch(session: Session, target: str, interval: float, timeout: float | None, as_json: bool) -> None:
    """Follow a run (or every run of a folder) until it ends.

    FOLDER/ is a run folder in the runs bucket (runs/rnaseq/, or an s3:// URL ending in /): every
    run its receipts name. Exit status 0 when every run succeeded, 1 when one failed or was
    aborted.
    """
    runs_ = _watched(session, target)
    deadline = time.monotonic() + timeout if timeout else None

    def states() -> Iterator[list[tuple[RunView, RunDigest]]]:
        while True:
            current = _poll(session, runs_)
            yield current
            if all(run.ended for run, _ in current):
                return
            if deadline is not None and time.monotonic() >= deadline:
                _fail(
                    f"still running after {timeout:.0f}s: "
                    + ", ".join(r.workflow_id[:8] for r, _ in current if not r.ended)
                )
            time.sleep(interval)

    final: list[tuple[RunView, RunDigest]] = []
    if as_json or not session.console.is_terminal:  # no live view to redraw: the end only
        final = deque(states(), maxlen=1)[0]
        if not as_json:
            session.console.print(render.watch_view(final, _now()))
    else:
        with Live(console=session.console, refresh_per_second=4, transient=False) as live:
            for final in states():
                live.update(render.watch_view(final, _now()))
    now = _now()
    if as_json:
        _emit_json({"runs": [render.show_dict(run, summary, None, now) for run, summary in final]})
    if any(run.status is not RunStatus.SUCCEEDED for run, _ in final):
        sys.exit(REFUSED_EXIT)


# -- abort ----------------------------------------------------------------------------------------


@naming_a_run
@cli.command()
@click.argument("run")
@json_option
@pass_session
def abort(session: Session, run: str, as_json: bool) -> None:
    """Ask Cromwell to abort a run.

    A run that has ended is refused. Cromwell is called through the deployment's URL, with its
    CA bundle and, when it asks for one, the credential in the deployment's secret.
    """
    found = session.ledger.find(run)
    if found.ended:
        _fail(
            f"run {found.workflow_id} already ended ({found.status.value if found.status else '?'}"
            f" at {render.when(found.ended_at)}): there is nothing to abort"
        )
    status = session.conn.cromwell().abort(found.workflow_id)
    if as_json:
        _emit_json({"workflow_id": found.workflow_id, "status": status})
        return
    session.console.print(
        f"{escape(found.name)} {found.workflow_id}: Cromwell says [bold]{escape(status)}[/]"
    )


# -- report ---------------------------------------------------------------------------------------


@naming_a_run
@cli.command(short_help="Write a run's report: one self-contained HTML page.")
@click.argument("run")
@click.option(
    "--html", "html_file", type=click.Path(path_type=Path, dir_okay=False), help="Write the page here."
)
@json_option
@pass_session
def report(session: Session, run: str, html_file: Path | None, as_json: bool) -> None:
    """Write a run's report: one self-contained HTML page (timeline, cost, failures, outputs).

    Written to --html FILE, else to <workflow name>-<id's first 8 characters>.report.html here.
    """
    found = session.ledger.find(run)
    conn = session.conn
    page = render_report(
        found,
        session.ledger.tasks(found.workflow_id),
        generated_at=_now(),
        prices=conn.deployment.prices,
        region=None if conn.deployment.local else conn.region,
        receipt=session.ledger.receipt_of(found),
    )
    target = html_file or Path(f"{_slug(found.name)}-{found.workflow_id[:8]}.report.html")
    try:
        target.write_text(page, encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot write {target}: {exc.strerror or exc}")
    if as_json:
        _emit_json({"workflow_id": found.workflow_id, "html": str(target), "bytes": len(page.encode())})
        return
    session.console.print(f"Report of {found.name} written to {target}", markup=False)


# -- rerun ----------------------------------------------------------------------------------------


@cli.command()
@click.argument("target", metavar="BATCH|RUN")
@click.option("--failed", is_flag=True, help="Only the runs that did not succeed.")
@click.option(
    "--timeout", default=180.0, show_default=True, metavar="SECONDS", help="How long to wait for the receipt."
)
@json_option
@pass_session
def rerun(session: Session, target: str, failed: bool, timeout: float, as_json: bool) -> None:
    """Re-run a batch or a run, with call caching.

    BATCH is a sample sheet's batch id (its receipt's sheet_id, named in the batch's digest). RUN
    is a workflow id or its first characters, an inputs key or s3:// URL. Writes the folder's
    rerun.json and waits for its receipt. Exit status 1 when it was refused.
    """
    conn = session.conn
    plan = plan_rerun(
        target,
        failed_only=failed,
        batches=session.ledger.views,
        find_run=session.ledger.find,
        bucket=conn.deployment.bucket,
    )
    s3 = conn.client("s3")
    dropper = Dropper(s3, plan.bucket)
    before = {plan.key: dropper.receipt_etag(plan.key)}
    s3.put_object(
        Bucket=plan.bucket, Key=plan.key, Body=plan.document.encode(), ContentType="application/json"
    )
    if not as_json:
        session.console.print(
            f"wrote s3://{plan.bucket}/{plan.key}; waiting for its receipt ...", style="dim"
        )
    (outcome,) = dropper.wait(before, timeout=timeout, on_outcome=lambda _: None)
    receipt = read_receipt(s3, plan.bucket, plan.key)
    runs = [r for r in receipt.get("runs") or [] if isinstance(r, dict)]
    if as_json:
        _emit_json({"rerun": f"s3://{plan.bucket}/{plan.key}", **receipt})
    else:
        console = session.console
        style = (
            "green" if outcome.status == "Submitted" else ("yellow" if outcome.status == "Nothing" else "red")
        )
        console.print(
            f"[{style}]{escape(outcome.status)}[/] batch {escape(str(receipt.get('batch_id') or '-'))}"
        )
        for line in runs:
            console.print(
                f"  {line.get('sample') or '-'}: {line.get('status')} {line.get('workflow_id') or ''}"
                f" (replaces {line.get('replaces')})",
                markup=False,
            )
            for reason in line.get("reasons") or []:
                console.print(f"    - {reason}", markup=False, style="red")
        for reason in outcome.reasons:
            console.print(f"  - {reason}", markup=False, style="red")
    if outcome.refused or any(line.get("status") == "Rejected" for line in runs):
        sys.exit(REFUSED_EXIT)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "run"


def main(argv: Sequence[str] | None = None) -> None:
    cli.main(args=list(argv) if argv is not None else None, prog_name="courier")
