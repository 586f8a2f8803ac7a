"""Every event file under events/ invoked against the local stack the way

    sam local invoke <Function> -e events/<function>/<file> --env-vars events/env.local.json

does it with `make stack` up: one process per invocation, whose environment is the function's
entry of events/env.local.json and whose import path holds only the function's code and the layer
(`tests/e2e/sam_invoke.py` plays the container). Docker is not needed.

The stack here listens on free ports rather than the fixed ones `make stack` uses, so that it can
never clash with anything else on the machine; the env file is first checked to be exactly what
the stack on its fixed ports points at (what `python -m local.stack --write-env` writes), then
its fixed URLs are swapped for the ones this stack got.

The stack is seeded with what the sample events name: the `courier-runs` bucket and its run
folders for the submit events, the sheet and row items the rows events stand for, the token the
callback events carry, and the runs and outbox items the notify events stand for.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from courier.conventions import requested_workflow_id, sheet_row_key, workflow_id_from_script_url
from courier.ledger import schema
from courier.ledger._codec import from_item, to_item
from courier.ledger.sheets import QUEUED, RowRecord, SheetLedger, SheetRecord
from local.stack import LocalStack, LocalStackOptions
from local.stack.__main__ import FIXED
from local.stack.template import TEMPLATE_PATH, load_template
from tests.e2e.conftest import Observer
from tests.support.notify_fixtures import T0, iso, run_item, task_item
from tests.support.processes import run_python

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
ENV_FILE = EVENTS / "env.local.json"
INVOKER = Path(__file__).resolve().parent / "sam_invoke.py"
HELLO = ROOT / "tests" / "fixtures" / "wdl" / "hello"

#: The URLs events/env.local.json names: the stack of `make stack`, on its fixed ports.
FIXED_URLS = {
    "moto": f"http://127.0.0.1:{FIXED['moto']}",
    "cromwell": f"http://127.0.0.1:{FIXED['cromwell']}",
    "callback": f"http://127.0.0.1:{FIXED['callback']}/",
}


@cache
def template_properties(logical_id: str) -> dict[str, Any]:
    properties: dict[str, Any] = load_template(TEMPLATE_PATH)["Resources"][logical_id]["Properties"]
    return properties


@dataclass
class Invocation:
    function: str
    event_file: Path
    event: dict[str, Any]
    result: Any


Check = Callable[[Invocation, Observer], None]


# -- what each event must do -------------------------------------------------------------------------


def submit(expected: str) -> Check:
    def check(call: Invocation, observer: Observer) -> None:
        detail = call.event["detail"]
        bucket, key = detail["bucket"]["name"], detail["object"]["key"]
        assert call.result["status"] == expected
        assert call.result["key"] == key
        receipt = observer.receipt(key, bucket=bucket)
        if expected == "Ignored":
            assert receipt is None
            return
        assert receipt is not None
        assert (receipt["status"], receipt["workflow_id"]) == (expected, call.result["workflow_id"])
        run = observer.run(receipt["workflow_id"])
        assert (run["source_bucket"], run["inputs_key"]) == (bucket, key)
        in_cromwell = observer.cromwell_status(receipt["workflow_id"])
        if expected == "Submitted":
            assert in_cromwell is not None  # the local engine runs it from here on
        else:
            assert run["status"] == "Rejected"
            assert receipt["reasons"]
            assert in_cromwell is None

    return check


def sample_sheet(call: Invocation, observer: Observer) -> None:
    """The sheet's rows queued (on the stack's rows queue, whose function submits them), and the
    sheet's receipts beside it."""
    detail = call.event["detail"]
    bucket, key = detail["bucket"]["name"], detail["object"]["key"]
    assert (call.result["status"], call.result["queued"], call.result["refused"]) == ("Queued", 2, 0)
    receipt = observer.receipt(key, bucket=bucket)
    assert receipt is not None
    assert (receipt["kind"], receipt["rows"], receipt["workflow_name"]) == ("sample-sheet", 2, "hello")
    table = observer.s3.get_object(Bucket=bucket, Key=f"{key}.receipts.tsv")["Body"].read().decode()
    rows = [line.split("\t")[1:3] for line in table.splitlines()[1:]]
    # the stack's own rows function may have taken them already
    assert [sample for sample, _ in rows] == ["S1", "S2"]
    assert {status for _, status in rows} <= {"Queued", "Submitted"}


def sheet_rows(call: Invocation, observer: Observer) -> None:
    """Each row submitted as one run of its sheet's folder, and its verdict in the sheet's ledger."""
    assert call.result == {"batchItemFailures": []}
    for record in call.event["Records"]:
        row = json.loads(record["body"])
        key = sheet_row_key(row["key"], row["line"])
        workflow_id = requested_workflow_id(row["bucket"], key, row["version_id"], row["sequencer"])
        run = observer.run(workflow_id)
        assert (run["status"], run["inputs_key"], run["workflow_name"]) == ("Submitted", key, "hello")
        assert observer.cromwell_status(workflow_id) is not None
        item = SheetLedger(observer.table, observer.dynamodb).row(row["sheet_id"], row["line"])
        assert item is not None
        assert (item["status"], item["workflow_id"]) == ("Submitted", workflow_id)


def _root_of(detail: Mapping[str, Any]) -> str | None:
    """The run a Batch job belongs to, as far as its event tells: the Cromwell tags, else the
    script prefix Courier asks Cromwell for; None for an older Cromwell's bare job."""
    tags = detail.get("tags") or {}
    if tags.get("cromwell-root-workflow-id"):
        return str(tags["cromwell-root-workflow-id"])
    for variable in (detail.get("container") or {}).get("environment") or []:
        if variable.get("name") == "BATCH_FILE_S3_URL":
            root = workflow_id_from_script_url(str(variable.get("value")))
            if root:
                return root
    return None


def batch_events(call: Invocation, observer: Observer) -> None:
    """Every record taken, and every job it names recorded: as a task of its run, or (no tags, no
    script prefix) kept unattributed for the reconciler to tie later."""
    assert call.result == {"batchItemFailures": []}
    for record in call.event["Records"]:
        detail = json.loads(record["body"])["detail"]
        job_id, root = detail["jobId"], _root_of(detail)
        if root is not None:
            assert schema.task_sk(job_id) in observer.partition(root), (call.event_file.name, job_id)
        else:
            item = observer.dynamodb.get_item(
                TableName=observer.table,
                Key=to_item({schema.PK: schema.UNATTRIBUTED_PK, schema.SK: schema.unattributed_sk(job_id)}),
                ConsistentRead=True,
            )
            assert "Item" in item, (call.event_file.name, job_id)


def callback(call: Invocation, observer: Observer) -> None:
    body_text = call.event["body"]
    if call.event.get("isBase64Encoded"):
        body_text = base64.b64decode(body_text).decode("utf-8")
    body = json.loads(body_text)
    assert call.result["statusCode"] == 200, call.result
    answer = json.loads(call.result["body"])
    assert answer["workflowId"] == body["workflowId"]
    assert answer["result"] in ("ended", "already-ended")
    assert observer.run(body["workflowId"])["status"] == body["state"]


def reconcile(call: Invocation, observer: Observer) -> None:
    """A sweep that ran through: the only errors are the runs the sample Batch events stand for,
    which never ran on this Cromwell."""
    assert {"active", "ended", "cromwell_calls", "errors"} <= set(call.result)
    assert all("Unrecognized workflow ID" in error for error in call.result["errors"]), call.result


#: The message each notify event must produce (subject fragment; None: no message at all).
NOTIFY_SUBJECTS = {
    ("REJECTED", None): "Run rejected",
    ("SUBMITTED", None): None,  # NOTIFY_SUBMITTED is false in the template's defaults
    ("EARLY_FAILURE", None): "A task failed",
    ("STUCK", None): "Task stuck",
    ("QUEUE_BLOCKED", None): "Queue blocked",
    ("ENDED", "Succeeded"): "Run succeeded",
    ("ENDED", "Failed"): "Run failed",
    ("ENDED", "Aborted"): "Run aborted",
}


def outbox_image(record: Mapping[str, Any]) -> dict[str, Any]:
    return from_item(record["dynamodb"]["NewImage"])


def notify(call: Invocation, observer: Observer) -> None:
    assert call.result == {"batchItemFailures": []}
    for record in call.event["Records"]:
        image = outbox_image(record)
        workflow_id = image["workflow_id"]
        status = image["payload"].get("status") if image["kind"] == "ENDED" else None
        subject = NOTIFY_SUBJECTS[(image["kind"], status)]
        if subject is None:
            observer.stack.settle(timeout=5)
            assert observer.emails(workflow_id) == []
            assert observer.slack_posts(workflow_id) == []
            continue
        assert observer.wait_for_messages(workflow_id, 1), f"no message for {call.event_file.name}"
        observer.stack.settle(timeout=5)
        (email,) = observer.emails(workflow_id)
        assert email.subject.startswith(f"Courier: {subject}")
        (post,) = observer.slack_posts(workflow_id)
        assert subject in post.rendered()


#: Every event file under events/, the function `sam local invoke` is given it for, and what it
#: must do against the seeded stack.
EXPECTED: dict[str, tuple[str, Check]] = {
    "submit/object-created-inputs.json": ("SubmitFunction", submit("Submitted")),
    "submit/object-created-sample-inputs.json": ("SubmitFunction", submit("Submitted")),
    "submit/object-created-non-ascii-key.json": ("SubmitFunction", submit("Submitted")),
    "submit/object-created-wdl-ignored.json": ("SubmitFunction", submit("Ignored")),
    "submit/object-created-missing-wdl.json": ("SubmitFunction", submit("Rejected")),
    "submit/object-created-no-sequencer.json": ("SubmitFunction", submit("Rejected")),
    "submit/object-created-sample-sheet.json": ("SubmitFunction", sample_sheet),
    "sheet-rows/sqs-row.json": ("SheetRowsFunction", sheet_rows),
    "monitor/sqs-cromwell92-scatter-tags.json": ("MonitorFunction", batch_events),
    "monitor/sqs-cromwell92-subworkflow.json": ("MonitorFunction", batch_events),
    "monitor/sqs-cromwell91-script-prefix.json": ("MonitorFunction", batch_events),
    "monitor/sqs-cromwell88-no-tags.json": ("MonitorFunction", batch_events),
    "monitor/sqs-cromwell85-no-tags.json": ("MonitorFunction", batch_events),
    "monitor/sqs-batch-retry.json": ("MonitorFunction", batch_events),
    "monitor/sqs-cromwell-retry.json": ("MonitorFunction", batch_events),
    "monitor/sqs-abort.json": ("MonitorFunction", batch_events),
    "monitor/sqs-queue-blocked.json": ("MonitorFunction", batch_events),
    "monitor/callback-succeeded.json": ("CallbackFunction", callback),
    "monitor/callback-failed-base64.json": ("CallbackFunction", callback),
    "monitor/callback-cromwell88-succeeded.json": ("CallbackFunction", callback),
    "monitor/scheduled-reconcile.json": ("ReconcilerFunction", reconcile),
    "notify/rejected.json": ("NotifyFunction", notify),
    "notify/submitted.json": ("NotifyFunction", notify),
    "notify/early_failure.json": ("NotifyFunction", notify),
    "notify/stuck.json": ("NotifyFunction", notify),
    "notify/queue_blocked.json": ("NotifyFunction", notify),
    "notify/ended_succeeded.json": ("NotifyFunction", notify),
    "notify/ended_failed.json": ("NotifyFunction", notify),
    "notify/ended_aborted.json": ("NotifyFunction", notify),
}
ENV_FILES = {"env.json"}


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return event


def test_every_event_file_is_invoked_here() -> None:
    on_disk = {p.relative_to(EVENTS).as_posix() for p in EVENTS.glob("*/*.json") if p.name not in ENV_FILES}
    assert on_disk == set(EXPECTED), "add the new event file to EXPECTED with what it must do"
    env = json.loads(ENV_FILE.read_text(encoding="utf-8"))
    assert {function for function, _ in EXPECTED.values()} == set(env)


# -- the stack, seeded with what the events name ------------------------------------------------------


def seed_submit_events(observer: Observer) -> None:
    """The run folders the submit events name: runs/hello (the WDL and an inputs file for each
    event), and runs/empty (an inputs file and no WDL)."""
    details = [load_event(name)["detail"] for name in EXPECTED if name.startswith("submit/")]
    keys = {detail["object"]["key"] for detail in details}
    (bucket,) = {detail["bucket"]["name"] for detail in details}
    s3 = observer.s3
    s3.create_bucket(Bucket=bucket)
    for key in sorted(keys):
        assert key.rsplit("/", 1)[0] in ("runs/hello", "runs/empty", "runs/sheet"), (
            f"seed the folder of {key}"
        )
        if key.endswith(".tsv"):
            s3.put_object(Bucket=bucket, Key=key, Body=b"sample\twho\nS1\tAda\nS2\tGrace\n")
            s3.put_object(Bucket=bucket, Key="runs/sheet/hello.wdl", Body=(HELLO / "hello.wdl").read_bytes())
        elif key.endswith(".wdl"):
            s3.put_object(Bucket=bucket, Key=key, Body=(HELLO / "hello.wdl").read_bytes())
        else:
            s3.put_object(Bucket=bucket, Key=key, Body=(HELLO / "inputs.json").read_bytes())


def seed_sheet_rows(observer: Observer) -> None:
    """The sheets and rows the rows events name, recorded Queued as the submit function leaves them
    (their folder, runs/sheet, is seeded with the submit events)."""
    book = SheetLedger(observer.table, observer.dynamodb)
    for name, (function, _) in EXPECTED.items():
        if function != "SheetRowsFunction":
            continue
        for record in load_event(name)["Records"]:
            row = json.loads(record["body"])
            key = sheet_row_key(row["key"], row["line"])
            record_ = SheetRecord(
                sheet_id=row["sheet_id"],
                bucket=row["bucket"],
                key=row["key"],
                version=row["sequencer"],
                run_folder=row["key"].rsplit("/", 1)[0] + "/",
                workflow_name="hello",
                main_wdl="hello.wdl",
            )
            workflow_id = requested_workflow_id(row["bucket"], key, row["version_id"], row["sequencer"])
            book.create(record_, [RowRecord(row["line"], row["sample"], QUEUED, workflow_id)])


def seed_callback_token(stack: LocalStack, env: Mapping[str, Mapping[str, str]]) -> None:
    """The callback events carry one token; the stack's callback secret is set to it."""
    tokens = {
        load_event(name)["queryStringParameters"]["token"]
        for name, (function, _) in EXPECTED.items()
        if function == "CallbackFunction"
    }
    (token,) = tokens
    stack.client("secretsmanager").put_secret_value(
        SecretId=env["CallbackFunction"]["CALLBACK_TOKEN_SECRET"], SecretString=token
    )


def seed_notify_events(observer: Observer) -> None:
    """The run, a task and the outbox item behind each notify event.

    The outbox item is written as an update of an item of another type: the stack's own notify
    function takes INSERTs of outbox items from the ledger's stream (the template's filter), so it
    leaves these to the invocations under test."""
    ddb = observer.dynamodb
    for name, (function, _) in EXPECTED.items():
        if function != "NotifyFunction":
            continue
        for record in load_event(name)["Records"]:
            image = outbox_image(record)
            workflow_id, kind = image["workflow_id"], image["kind"]
            status = image["payload"].get("status") or {"REJECTED": "Rejected", "SUBMITTED": "Submitted"}.get(
                kind, "Running"
            )
            fields: dict[str, Any] = {"status": status}
            if kind == "REJECTED":
                fields["reasons"] = image["payload"]["reasons"]
            if kind == "ENDED":
                fields["ended_at"] = iso(T0 + timedelta(hours=2))
                fields["outputs"] = {"germline.vcf": f"s3://lab-out/{workflow_id}/out.vcf.gz"}
            ddb.put_item(TableName=observer.table, Item=to_item(run_item(workflow_id, **fields)))
            failed = status in ("Failed", "Aborted") or kind == "EARLY_FAILURE"
            job_id = (
                image["payload"].get("job_id")
                or (image["payload"].get("task") or {}).get("job_id")
                or f"job-{workflow_id[:8]}"
            )
            task = task_item(
                workflow_id, job_id, status="FAILED" if failed else "SUCCEEDED", exit_code=1 if failed else 0
            )
            ddb.put_item(TableName=observer.table, Item=to_item(task))
            ddb.put_item(TableName=observer.table, Item=to_item({**image, schema.TYPE: "outbox-seed"}))
            ddb.update_item(
                TableName=observer.table,
                Key=to_item({schema.PK: image[schema.PK], schema.SK: image[schema.SK]}),
                UpdateExpression="SET #t = :event",
                ExpressionAttributeNames={"#t": schema.TYPE},
                ExpressionAttributeValues={":event": {"S": schema.ITEM_EVENT}},
            )


@dataclass
class SamWorld:
    stack: LocalStack
    observer: Observer
    env: dict[str, dict[str, str]]
    home: Path

    def environment(self, function: str) -> dict[str, str]:
        """The process environment `sam local invoke` gives the function: the env file's entry
        (its fixed URLs swapped for this stack's), Lambda's own variables, nothing of this one's."""
        actual = {
            FIXED_URLS["moto"]: self.stack.moto_url,
            FIXED_URLS["cromwell"]: self.stack.cromwell_url,
            FIXED_URLS["callback"]: self.stack.provisioned.functions["CallbackFunction"].url,
        }
        env: dict[str, str] = {}
        for name, value in self.env[function].items():
            pointed = value
            for fixed, url in actual.items():
                pointed = pointed.replace(fixed, url)
            env[name] = pointed
        code = template_properties(function)["CodeUri"]
        layer = template_properties("CourierLayer")["ContentUri"]
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "PYTHONPATH": os.pathsep.join([str(ROOT / code), str(ROOT / layer)]),
            "AWS_LAMBDA_FUNCTION_NAME": function,
            "AWS_REGION": self.stack.options.region,
            **env,
        }

    def invoke(self, function: str, event_file: Path) -> Invocation:
        handler = template_properties(function)["Handler"]
        out = run_python(
            [str(INVOKER), handler, str(event_file)],
            env=self.environment(function),
            what=event_file.name,
            timeout=180,
            cwd=self.home,
        )
        (line,) = [json.loads(x) for x in out.splitlines() if x.startswith('{"event"')]
        assert "error" not in line, line
        return Invocation(
            function, event_file, json.loads(event_file.read_text(encoding="utf-8")), line["result"]
        )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SamWorld]:
    env = json.loads(ENV_FILE.read_text(encoding="utf-8"))
    with LocalStack(LocalStackOptions(step_seconds=0.0)) as stack:
        observer = Observer(stack)
        seed_submit_events(observer)
        seed_sheet_rows(observer)
        seed_callback_token(stack, env)
        seed_notify_events(observer)
        yield SamWorld(stack, observer, env, tmp_path_factory.mktemp("sam-local"))


def test_the_env_file_points_at_the_stack_on_its_fixed_ports(world: SamWorld) -> None:
    """events/env.local.json is what `python -m local.stack --write-env` writes: each function's
    environment from the template, pointed at the stack `make stack` keeps up."""
    expected = world.stack.sam_env(
        moto_url=FIXED_URLS["moto"], cromwell_url=FIXED_URLS["cromwell"], callback_url=FIXED_URLS["callback"]
    )
    assert world.env == expected
    for function, env in world.env.items():
        assert env["AWS_ENDPOINT_URL"] == FIXED_URLS["moto"], function
        if "CROMWELL_URL" in env:
            assert env["CROMWELL_URL"] == FIXED_URLS["cromwell"], function
    assert world.env["SubmitFunction"]["CALLBACK_URL"] == f"{FIXED_URLS['callback']}callback"


@pytest.mark.parametrize("name", list(EXPECTED))
def test_sample_event_through_its_handler(world: SamWorld, name: str) -> None:
    function, check = EXPECTED[name]
    call = world.invoke(function, EVENTS / name)
    check(call, world.observer)
