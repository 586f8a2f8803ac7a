"""`LocalStack`: the whole application on loopback, in this process.

moto's server stands in for AWS (resources created from `template.yaml`), the local engine runs
the WDL and causes the AWS Batch events Cromwell on AWS would, the Cromwell-compatible REST server
serves the engine, the router invokes the three functions' handlers with the events their event
sources would deliver, a loopback receiver takes the Slack posts and an SQS queue subscribed to
the topic takes the e-mails. This is a local emulation, not AWS.

    with LocalStack(LocalStackOptions()) as stack:
        key = stack.drop_folder(Path("local/demo_runs/scatter"), "runs/scatter")
        stack.wait_for_end(stack.workflow_id_for(key), timeout=60)
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from local.stack.paths import ensure_import_paths
from local.stack.receivers import Email, Inbox, SlackPost, SlackReceiver
from local.stack.resources import Provisioned, Provisioner
from local.stack.router import FunctionUrlServer, Router
from local.stack.template import TEMPLATE_PATH, Resolver, load_template
from local.stack.timeline import Entry, Timeline
from local.stack.transactions import install as install_transactions

if TYPE_CHECKING:
    from courier.ledger.records import BatchView, RunView

#: moto accepts any credentials; "testing" is its documented placeholder, never a real one.
FAKE_CREDENTIALS = dict.fromkeys(
    ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"), "testing"
)
#: Process-wide settings for the handlers' Powertools utilities (no X-Ray, no EMF output).
POWERTOOLS_LOCAL = {"POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true"}


@dataclass
class LocalStackOptions:
    stack_name: str = "courier-local"
    region: str = "us-east-1"
    account: str = "123456789012"
    template: Path = TEMPLATE_PATH
    moto_port: int = 0  # 0: a free port
    cromwell_port: int = 0
    callback_port: int = 0
    #: Template parameters chosen over the stack's own choices (see `LocalStack.parameters`).
    parameters: dict[str, Any] = field(default_factory=dict)
    #: Seconds between scheduled invocations (None: the template's schedule).
    schedule_seconds: float | None = None
    #: Pause between a task's Batch states, for readable timelines.
    step_seconds: float = 0.0
    max_parallel_tasks: int = 4
    #: Cromwell's `call-caching.enabled` for the local engine: on, so that a re-run of a failed
    #: sample reuses the calls that succeeded (workflow options `read_from_cache` and
    #: `write_to_cache` still decide per run). Off: every run runs every call.
    call_caching: bool = True
    work_dir: Path | None = None
    #: Builds the Cromwell backend: (config, s3 client, emit, post) -> backend. Default: LocalEngine.
    engine_factory: Callable[..., Any] | None = None
    on_entry: Callable[[Entry], None] | None = None
    log_level: str = "ERROR"
    #: A credential the Cromwell API asks for, as a proxy would (`local.cromwell_api.auth`); the
    #: stack keeps it in a secret and names it in the CromwellAuthSecretArn parameter.
    cromwell_auth: Any = None
    #: Slack as a bot token posts (`chat.postMessage` to the receiver, one thread per run and per
    #: batch) instead of an incoming webhook (no threads).
    slack_bot: bool = False
    #: The channel the bot posts to when a run names none (the Slack secret's `channel`).
    slack_channel: str = "C0LOCALRUNS"


class LocalStack:
    def __init__(self, options: LocalStackOptions | None = None) -> None:
        self.options = options or LocalStackOptions()
        self.timeline = Timeline(self.options.on_entry)
        self.provisioned = Provisioned()
        self._clients: dict[tuple[str, str], Any] = {}
        self._saved_env: dict[str, str | None] = {}
        self._closers: list[Callable[[], None]] = []
        self._url_servers: dict[str, FunctionUrlServer] = {}
        self._closed = False
        self._started = False
        self.moto_url = ""
        self.cromwell_url = ""
        self.engine: Any = None
        self.router: Router | None = None
        self.slack: SlackReceiver | None = None
        self.inbox: Inbox | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._lock = threading.Lock()
        #: Every invocation the router made: {"function", "source", "event", "result"}.
        self.invocations: list[dict[str, Any]] = []

    # -- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def start(self) -> LocalStack:
        if self._started:
            return self
        self._started = True
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def _cromwell_auth_parameter(self) -> dict[str, str]:
        """The CromwellAuthSecretArn parameter: a secret holding the credential the Cromwell API
        asks for, when it asks for one."""
        auth = self.options.cromwell_auth
        if auth is None:
            return {}
        arn = self.client("secretsmanager").create_secret(
            Name=f"{self.options.stack_name}-cromwell-credentials",
            Description="The credential the local Cromwell API asks for",
            SecretString=auth.secret_json(),
        )["ARN"]
        return {"CromwellAuthSecretArn": arn}

    def _set_env(self, name: str, value: str, *, override: bool = True) -> None:
        if name not in self._saved_env:
            self._saved_env[name] = os.environ.get(name)
        if override or name not in os.environ:
            os.environ[name] = value

    def _start(self) -> None:
        from moto.server import ThreadedMotoServer  # noqa: PLC0415

        opts = self.options
        ensure_import_paths()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        for name, value in FAKE_CREDENTIALS.items():
            self._set_env(name, value, override=False)
        self._set_env("AWS_DEFAULT_REGION", opts.region)
        self._set_env("AWS_REGION", opts.region)

        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=opts.moto_port, verbose=False)
        moto.start()
        self._closers.append(moto.stop)
        host, port = moto.get_host_and_port()
        self.moto_url = f"http://{host}:{port}"
        # moto keeps its state in this process, whichever server serves it: the stack starts from
        # an empty account and leaves one behind, so that another stack can follow in this process.
        self._reset_moto()
        self._closers.append(self._reset_moto)
        # moto's transactions copy whole tables; the stack's save only what they touch.
        install_transactions(opts.account, opts.region)
        # boto3 reads AWS_ENDPOINT_URL by itself: whatever the handlers build on their own goes here.
        self._set_env("AWS_ENDPOINT_URL", self.moto_url)

        self.slack = SlackReceiver(on_post=self._slack_posted)
        self._closers.append(self.slack.close)
        slack_secret = self.client("secretsmanager").create_secret(
            Name=f"{opts.stack_name}-slack-webhook",
            Description="Slack of the local stack (the loopback receiver): a webhook or a bot token",
            SecretString=json.dumps(
                {"bot_token": self.slack.bot_token, "channel": opts.slack_channel}
                if opts.slack_bot
                else {"webhook_url": self.slack.webhook_url}
            ),
        )["ARN"]

        if opts.work_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="courier-local-")
            self._closers.append(self._tmp.cleanup)
            work_dir = Path(self._tmp.name)
        else:
            work_dir = opts.work_dir
        self.cromwell_bucket = f"{opts.stack_name}-cromwell"
        self.client("s3").create_bucket(Bucket=self.cromwell_bucket)
        self.job_queue_arn = f"arn:aws:batch:{opts.region}:{opts.account}:job-queue/{opts.stack_name}-default"

        self.engine = self._engine(work_dir)
        from local.cromwell_api import CromwellTestServer  # noqa: PLC0415

        server = CromwellTestServer(
            backend=self.engine, port=opts.cromwell_port, auth=opts.cromwell_auth
        ).start()
        self._closers.append(server.stop)
        self.cromwell = server
        self.cromwell_url = server.url

        template = load_template(opts.template)
        self.parameters = {
            "CromwellUrl": self.cromwell_url,
            "SubnetIds": "subnet-local",
            "SecurityGroupIds": "sg-local",
            "JobQueueArns": self.job_queue_arn,
            "DataBucketNames": self.cromwell_bucket,
            "NotificationEmail": "runs@example.org",
            "SlackWebhookSecretArn": slack_secret,
            "WdlWaitSeconds": "5",
            # every inputs file its own run, as the demos and most tests expect; a test or
            # `make stack ARGS="--batch-window 20"` groups a folder's files (template default 300)
            "BatchWindowSeconds": "0",
            "LogLevel": opts.log_level,
            **self._cromwell_auth_parameter(),
            **opts.parameters,
        }
        declared = template.get("Parameters") or {}
        self.parameters = {k: v for k, v in self.parameters.items() if k in declared or k in opts.parameters}
        resolver = Resolver.for_template(
            template,
            self.parameters,
            region=opts.region,
            account=opts.account,
            stack_name=opts.stack_name,
        )
        self.provisioned = Provisioner(resolver, self.client, function_url=self._function_url).provision()

        # Each handler module validates its settings when imported; make sure it finds them.
        for spec in self.provisioned.functions.values():
            for name, value in spec.environment.items():
                self._set_env(name, value, override=False)
        for name, value in POWERTOOLS_LOCAL.items():
            self._set_env(name, value, override=False)
        self._set_env("POWERTOOLS_LOG_LEVEL", opts.log_level)

        self.router = Router(
            self.provisioned,
            self.client,
            function_clients=lambda function: lambda service: self.function_client(function, service),
            region=opts.region,
            account=opts.account,
            observe=self._observe,
            url_servers=self._url_servers,
            schedule_override=opts.schedule_seconds,
            wiring_options={"notify.handler.lambda_handler": {"slack_base_url": self.slack.api_url}}
            if opts.slack_bot
            else None,
        )
        self.router.start()
        self._closers.append(self.router.close)
        self.inbox = Inbox(
            self.client("sqs"),
            list(self.provisioned.email_queues.values()),
            self._emailed,
            email_text=self._email_text,
        )
        self.inbox.start()
        self._closers.append(self.inbox.close)

    def _engine(self, work_dir: Path) -> Any:
        opts = self.options
        factory = opts.engine_factory
        if factory is None:
            from local.engine import EngineConfig, LocalEngine  # noqa: PLC0415

            config = EngineConfig(
                work_dir=work_dir,
                bucket=self.cromwell_bucket,
                job_queue_arn=self.job_queue_arn,
                region=opts.region,
                account=opts.account,
                step_seconds=opts.step_seconds,
                max_parallel_tasks=opts.max_parallel_tasks,
                call_caching=opts.call_caching,
            )
            engine = LocalEngine(
                config, s3=self.client("s3"), emit=self.emit_batch_event, post=self.post_callback
            )
        else:
            engine = factory(self)
        closer = getattr(engine, "close", None)
        if callable(closer):
            self._closers.append(closer)
        return engine

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Stop the engine before the router and AWS: its last events and callbacks still land.
        for closer in reversed(self._closers):
            try:
                closer()
            except Exception as exc:  # keep closing the rest
                self.timeline.add("error", f"while stopping: {type(exc).__name__}: {exc}")
        for server in self._url_servers.values():
            server.close()
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def _reset_moto(self) -> None:
        import requests  # noqa: PLC0415

        requests.post(f"{self.moto_url}/moto-api/reset", timeout=10).raise_for_status()

    # -- AWS clients --------------------------------------------------------------------------

    def client(self, service: str) -> Any:
        """The stack's own client for `service` (provisioning, the router, the inbox, tests)."""
        return self._client_for("", service)

    def function_client(self, function: str, service: str) -> Any:
        """The client `function` is given for `service`. Each function has its own clients, as
        each Lambda function does, so that its calls can be observed (botocore's event hooks)
        apart from the rest of the stack's."""
        return self._client_for(function, service)

    def _client_for(self, owner: str, service: str) -> Any:
        with self._lock:
            if (owner, service) not in self._clients:
                self._clients[owner, service] = boto3.client(  # type: ignore[call-overload]
                    service,
                    endpoint_url=self.moto_url,
                    region_name=self.options.region,
                    aws_access_key_id="testing",
                    aws_secret_access_key="testing",  # noqa: S106 - moto's fake credentials  # nosec B106
                    config=Config(retries={"mode": "standard", "max_attempts": 3}),
                )
            return self._clients[owner, service]

    def _email_text(self, message_id: str) -> str | None:
        """What SNS sends an e-mail subscriber for a message published with MessageStructure=json.
        moto runs in this process; its topic keeps every published message."""
        from moto.sns.models import sns_backends  # noqa: PLC0415

        backend = sns_backends[self.options.account][self.options.region]
        for topic_arn in self.provisioned.topics.values():
            topic = backend.topics.get(topic_arn)
            for sent in list(getattr(topic, "sent_notifications", [])):
                if sent[0] != message_id:
                    continue
                try:
                    structured = json.loads(sent[1])
                except ValueError:
                    return str(sent[1])
                if isinstance(structured, dict):
                    return str(structured.get("email") or structured.get("default") or sent[1])
                return str(sent[1])
        return None

    def _function_url(self, logical_id: str) -> str:
        if logical_id not in self._url_servers:
            self._url_servers[logical_id] = FunctionUrlServer(port=self.options.callback_port)
        return self._url_servers[logical_id].url

    # -- what the engine causes -----------------------------------------------------------------

    def emit_batch_event(self, detail_type: str, detail: dict[str, Any]) -> None:
        """An AWS Batch event, put on the default bus so that the template's own rules route it."""
        answer = self.client("events").put_events(
            Entries=[
                {
                    "Source": "aws.batch",
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail),
                    "Resources": [str(detail.get("jobArn", ""))],
                }
            ]
        )
        if answer.get("FailedEntryCount"):
            self.timeline.add("error", f"EventBridge refused a Batch event: {answer['Entries']}")

    def post_callback(self, url: str, body: dict[str, Any]) -> None:
        """Cromwell's completion callback. Cromwell learns that the last job ended by polling
        Batch, after Batch has published the job's event; so the POST waits (a few seconds at
        most) until the Batch events in flight have been taken by the monitor."""
        import requests  # noqa: PLC0415

        router = self.router
        if router is not None:
            with contextlib.suppress(Exception):  # the stack is stopping: post at once
                self.wait_for(router.queues_drained, timeout=5, interval=0.05)
        response = requests.post(url, json=body, timeout=10)
        response.raise_for_status()

    # -- observation ------------------------------------------------------------------------------

    def _observe(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "invoke":
            with self._lock:
                self.invocations.append(data)
        if kind == "stream":
            self.timeline.ledger_change(data["record"])
        elif kind == "invoke" and data["source"] != "url" and "key" in (data.get("result") or {}):
            self._receipt_seen(data["event"], data["result"])
        elif kind == "error":
            error = data.get("error")
            self.timeline.add(
                "error", f"{data.get('function')} ({data.get('source')}): {type(error).__name__}: {error}"
            )

    def _receipt_seen(self, event: Mapping[str, Any], result: Mapping[str, Any]) -> None:
        detail = event.get("detail") or {}
        bucket = str((detail.get("bucket") or {}).get("name") or "")
        key = str(result.get("key"))
        workflow_id = str(result.get("workflow_id") or "")
        if workflow_id:
            folder = key.rsplit("/", 1)[0] if "/" in key else key
            self.timeline.label(workflow_id, folder.rsplit("/", 1)[-1])
        receipt = self.receipt(bucket, key) if bucket else None
        if receipt is None:
            self.timeline.add("submit", f"{result.get('status')}: {key}", workflow_id=workflow_id)
            return
        text = f"{receipt.get('status')}: workflow {workflow_id}, receipt {key}.receipt.json"
        if result.get("status") == "Duplicate":
            text = (
                f"same upload delivered again: receipt rewritten ({receipt.get('status')}), nothing submitted"
            )
        reasons = receipt.get("reasons") or []
        if reasons:
            text += "\n" + "\n".join(f"- {r}" for r in reasons)
        self.timeline.add("receipt", text, workflow_id=workflow_id)

    def _slack_posted(self, post: SlackPost) -> None:
        workflow_id = self._workflow_mentioned(json.dumps(post.payload))
        self.timeline.add("slack", post.rendered(), workflow_id=workflow_id)

    def _emailed(self, email: Email) -> None:
        workflow_id = self._workflow_mentioned(email.subject + "\n" + email.body)
        body = "\n".join(line for line in email.body.splitlines() if line.strip())
        self.timeline.add("e-mail", f"{email.subject}\n{body}", workflow_id=workflow_id)

    def _workflow_mentioned(self, text: str) -> str:
        """The run a message is about: the last labelled of those it names (a pipeline's next run
        names, in its inputs key, the batch it was built from)."""
        for workflow_id in reversed(list(self.timeline.labels)):
            if workflow_id in text:
                return workflow_id
        return ""

    def sam_env(
        self,
        *,
        moto_url: str | None = None,
        cromwell_url: str | None = None,
        callback_url: str | None = None,
    ) -> dict[str, dict[str, str]]:
        """`sam local invoke --env-vars` content: each function's resolved environment, pointed
        at this stack (or at the URLs given, for a file that names fixed ports). Secrets are
        named by name, not ARN (moto's ARNs end in a random suffix); the handlers accept both."""
        replacements = {
            self.moto_url: moto_url or self.moto_url,
            self.cromwell_url: cromwell_url or self.cromwell_url,
        }
        for server in self._url_servers.values():
            replacements[server.url] = callback_url or server.url
        secrets = self.client("secretsmanager")
        names = {}
        for arn in [
            *self.provisioned.secrets.values(),
            str(self.parameters.get("SlackWebhookSecretArn", "")),
        ]:
            if arn:
                names[arn] = secrets.describe_secret(SecretId=arn)["Name"]
        out: dict[str, dict[str, str]] = {}
        for logical_id, spec in self.provisioned.functions.items():
            env = {
                "AWS_ENDPOINT_URL": self.moto_url,
                "AWS_DEFAULT_REGION": self.options.region,
                "AWS_ACCESS_KEY_ID": FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                "AWS_SECRET_ACCESS_KEY": FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                **POWERTOOLS_LOCAL,
            }
            env.update(spec.environment)
            for key, declared in list(env.items()):
                value = declared
                for old, new in replacements.items():
                    value = value.replace(old, new)
                env[key] = names.get(value, value)
            out[logical_id] = dict(sorted(env.items()))
        return out

    # -- using the stack ---------------------------------------------------------------------------

    @property
    def runs_bucket(self) -> str:
        return next(iter(self.provisioned.buckets.values()))

    @property
    def table_name(self) -> str:
        return next(iter(self.provisioned.tables.values()))

    def console_state(self) -> dict[str, str]:
        """What `courier --local` reads to find this stack (`make stack` writes it to
        `.courier-local.json`): the AWS endpoint, region, ledger table, runs bucket, Cromwell, and
        the ARN of the secret holding the credential Cromwell asks for (with `--cromwell-auth`)."""
        state = {
            "aws_endpoint_url": self.moto_url,
            "region": self.options.region,
            "table": self.table_name,
            "bucket": self.runs_bucket,
            "cromwell_url": self.cromwell_url,
            "stack_name": self.options.stack_name,
        }
        secret = str(self.parameters.get("CromwellAuthSecretArn") or "")
        if secret:
            state["cromwell_auth_secret"] = secret
        return state

    def put(self, key: str, body: bytes | str, *, label: str = "") -> str:
        """Upload one object to the runs bucket; the workflow id an inputs file there gets."""
        from courier.conventions import requested_workflow_id  # noqa: PLC0415

        data = body.encode("utf-8") if isinstance(body, str) else body
        answer = self.client("s3").put_object(Bucket=self.runs_bucket, Key=key, Body=data)
        workflow_id = requested_workflow_id(self.runs_bucket, key, answer.get("VersionId"), None)
        if label:
            self.timeline.label(workflow_id, label)
        return workflow_id

    def drop_folder(self, folder: Path, prefix: str) -> list[str]:
        """Upload a run folder under `prefix`, the inputs files last and a sample sheet after them
        (as a careful user would); the keys that start runs: its inputs files, or its sheet (whose
        `inputs.json` holds the values common to the rows and starts no run)."""
        from courier.conventions import SAMPLE_SHEET_NAMES  # noqa: PLC0415
        from submit.upload import INPUTS_NAME, is_inputs_file  # noqa: PLC0415

        prefix = prefix.strip("/")
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        sheets = [p for p in files if p.parent == folder and p.name in SAMPLE_SHEET_NAMES]
        inputs = [p for p in files if is_inputs_file(p.name)]
        label = prefix.rsplit("/", 1)[-1]
        self.timeline.add("dropped", f"s3://{self.runs_bucket}/{prefix}/ ({len(files)} files)", run=label)
        keys = []
        for path in [p for p in files if p not in inputs and p not in sheets] + inputs + sheets:
            key = f"{prefix}/{path.relative_to(folder).as_posix()}"
            starts = path in sheets or (path in inputs and not (sheets and path.name == INPUTS_NAME))
            self.put(key, path.read_bytes(), label=label if starts else "")
            if starts:
                keys.append(key)
        return keys

    def redeliver(self, function: str, event: Mapping[str, Any]) -> None:
        """Deliver an EventBridge event to `function` once more (EventBridge delivers at least
        once): it goes on the function's stand-in queue like the first delivery did."""
        spec = self.provisioned.functions[function]
        queue = next(s.queue_url for s in spec.sources if s.kind == "eventbridge")
        self.client("sqs").send_message(QueueUrl=queue, MessageBody=json.dumps(event))

    def submit_results(self, key: str) -> list[dict[str, Any]]:
        """What the submit function answered for each delivery of the upload events of `key`."""
        with self._lock:
            calls = list(self.invocations)
        return [
            {"event": c["event"], **c["result"]}
            for c in calls
            if isinstance(c.get("result"), dict) and c["result"].get("key") == key and c["source"] != "url"
        ]

    def receipt(self, bucket: str, key: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError  # noqa: PLC0415

        try:
            body = self.client("s3").get_object(Bucket=bucket, Key=f"{key}.receipt.json")["Body"].read()
        except ClientError:
            return None
        document: dict[str, Any] = json.loads(body)
        return document

    def emails(self, workflow_id: str | None = None) -> list[Email]:
        received = self.inbox.received() if self.inbox else []
        return [e for e in received if workflow_id is None or e.mentions(workflow_id)]

    def slack_posts(self, workflow_id: str | None = None) -> list[SlackPost]:
        received = self.slack.received() if self.slack else []
        return [p for p in received if workflow_id is None or p.mentions(workflow_id)]

    def wait_for(self, condition: Callable[[], Any], timeout: float, interval: float = 0.1) -> Any:
        """Poll `condition` until it returns something truthy; that value, or None on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() >= deadline:
                return None
            time.sleep(interval)

    def wait_for_receipt(self, key: str, timeout: float = 30) -> dict[str, Any] | None:
        result: dict[str, Any] | None = self.wait_for(lambda: self.receipt(self.runs_bucket, key), timeout)
        return result

    def wait_for_end(self, workflow_id: str, timeout: float = 60) -> RunView | None:
        """The run once it is terminal and its ENDED (or REJECTED) message was delivered."""
        from courier.ledger.records import DeliveryState, EndedPayload  # noqa: PLC0415
        from courier.ledger.views import RunViews  # noqa: PLC0415
        from courier.models import NotificationKind  # noqa: PLC0415

        views = RunViews(self.table_name, self.client("dynamodb"))
        ends = (NotificationKind.ENDED, NotificationKind.REJECTED)

        def ended() -> RunView | None:
            run = views.run(workflow_id)
            if run is None or not run.ended:
                return None
            for event in views.events(workflow_id):
                told_by_digest = isinstance(event.payload, EndedPayload) and event.payload.left_to_digest(run)
                if event.kind not in ends or told_by_digest:
                    continue
                states = [d.state for d in event.delivery.values()]
                if not states or DeliveryState.CLAIMED in states:
                    return None
            return run

        result: RunView | None = self.wait_for(ended, timeout, interval=0.2)
        return result

    def wait_for_batch(self, batch_id: str, timeout: float = 60) -> BatchView | None:
        """The batch once its last run has ended and its digest was delivered."""
        from courier.ledger.records import DeliveryState  # noqa: PLC0415
        from courier.ledger.schema import event_sk  # noqa: PLC0415
        from courier.ledger.views import RunViews  # noqa: PLC0415
        from courier.models import NotificationKind  # noqa: PLC0415

        views = RunViews(self.table_name, self.client("dynamodb"))

        def ended() -> BatchView | None:
            batch = views.batch(batch_id)
            if batch is None or not batch.ended_by:
                return None
            digest = views.event(batch.ended_by, event_sk(NotificationKind.BATCH_ENDED.value, batch_id))
            states = [d.state for d in digest.delivery.values()] if digest else []
            return batch if states and DeliveryState.CLAIMED not in states else None

        result: BatchView | None = self.wait_for(ended, timeout, interval=0.2)
        return result

    def settle(self, timeout: float = 10.0, quiet_seconds: float = 0.5) -> bool:
        """True once nothing has happened for `quiet_seconds` (queues drained, no invocation)."""
        deadline = time.monotonic() + timeout
        last_count = len(self.timeline.entries)
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            busy = self.router is not None and self.router.busy()
            count = len(self.timeline.entries)
            if busy or count != last_count:
                last_count = count
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= quiet_seconds:
                return True
            time.sleep(0.05)
        return False
