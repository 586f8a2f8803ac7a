"""The composition functions: settings from the environment they are given, Cromwell's CA bundle
and the callback token read through the secret reader they are given, and the handlers' names in
template.yaml."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from courier.errors import ConfigurationError
from courier.ledger.runs import RunLedger
from courier.secrets import SecretReader
from local.stack.template import load_template
from monitor.composition import compose_batch_events, compose_callback, compose_reconciler
from submit.composition import compose
from tests.conftest import _ENV
from tests.support.monitor_fixtures import FakeTags

ROOT = Path(__file__).resolve().parents[2]

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
ENV = {
    "LEDGER_TABLE": "courier-ledger",
    "CROMWELL_URL": "https://cromwell.internal:8000/",
    "CROMWELL_CA_BUNDLE": "ssm:/courier/cromwell-ca",
}


class StubSsm:
    """SSM holding the CA bundle and the callback token."""

    def __init__(self) -> None:
        self.read: list[str] = []

    def get_parameter(self, Name: str, WithDecryption: bool) -> dict[str, Any]:
        self.read.append(Name)
        values = {"/courier/cromwell-ca": PEM, "/courier/callback-token": "s3cret"}
        return {"Parameter": {"Value": values[Name]}}


def reader() -> tuple[SecretReader, StubSsm]:
    ssm = StubSsm()
    return SecretReader(ssm_client=ssm), ssm  # type: ignore[arg-type]


def test_monitor_functions_verify_cromwell_against_the_configured_ca_bundle() -> None:
    secrets, ssm = reader()
    sweep = compose_reconciler(environ=ENV, dynamodb=object(), secrets=secrets)
    cromwell: Any = sweep.cromwell
    bundle = cromwell.verify()  # the bundle as it is now: a rotated one is used without a cold start
    assert bundle.endswith(".pem")
    assert cromwell.base_url == "https://cromwell.internal:8000"
    assert ssm.read == ["/courier/cromwell-ca"]  # read through the given reader, kept while fresh
    assert sweep.ender.cromwell.verify() == bundle  # type: ignore[attr-defined]


def test_the_batch_events_function_needs_no_cromwell_and_loads_neither_requests_nor_asyncio() -> None:
    """Put together in a fresh process as Lambda does (its code and the layer on the path): no
    Cromwell setting asked for, and nothing of the Cromwell client, the end of a run or
    Powertools' batch processing imported."""
    code = (
        "import sys\n"
        "import monitor.batch_events as handler\n"
        "from monitor.composition import compose_batch_events\n"
        "class Tags:\n"
        "    def tags(self, arn):\n"
        "        return {}\n"
        "environ = {'LEDGER_TABLE': 'courier-ledger'}\n"
        "service = compose_batch_events(environ=environ, dynamodb=object(), tags=Tags())\n"
        "assert not hasattr(service, 'ender')\n"
        "names = ('requests', 'asyncio', 'courier.cromwell', 'monitor.ending', 'monitor.sweep')\n"
        "print(','.join(sorted(n for n in names if n in sys.modules)))\n"
    )
    env = {**_ENV, "PATH": "/usr/bin:/bin"}
    env["PYTHONPATH"] = os.pathsep.join(str(ROOT / p) for p in ("functions/monitor", "layers/courier"))
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


@pytest.mark.parametrize(
    ("function", "module", "absent"),
    [
        ("notify", "notify.handler", ("asyncio", "aws_lambda_powertools.utilities.batch", "slack_sdk")),
        ("monitor", "monitor.callback", ("monitor.event_models", "asyncio")),
        ("monitor", "monitor.schedule", ("monitor.event_models", "asyncio")),
        (
            "submit",
            "submit.handler",
            ("requests", "courier.cromwell", "WDL", "submit.sheet_service", "submit.rerun"),
        ),
        (
            "submit",
            "submit.rows",
            ("requests", "courier.cromwell", "WDL", "aws_lambda_powertools.utilities.data_classes"),
        ),
    ],
)
def test_a_handler_module_leaves_out_at_import_what_only_some_paths_use(
    function: str, module: str, absent: tuple[str, ...]
) -> None:
    """Imported in a fresh process as Lambda does at cold start: the modules named load only on
    the paths that use them (Slack, the Cromwell client, miniwdl) or not at all (asyncio)."""
    code = f"import sys\nimport {module}\nprint(','.join(n for n in {absent!r} if n in sys.modules))\n"
    env = {**_ENV, "PATH": "/usr/bin:/bin"}
    env["PYTHONPATH"] = os.pathsep.join(str(ROOT / p) for p in (f"functions/{function}", "layers/courier"))
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_the_callback_token_is_read_through_the_given_reader_when_asked() -> None:
    secrets, ssm = reader()
    env = {**ENV, "CROMWELL_CA_BUNDLE": "", "CALLBACK_TOKEN_SECRET": "ssm:/courier/callback-token"}
    service = compose_callback(environ=env, dynamodb=object(), secrets=secrets)
    assert ssm.read == []  # read at the first callback, not when put together
    assert service.token() == "s3cret"
    assert service.ender.cromwell.verify is True  # type: ignore[attr-defined]


def test_submit_is_put_together_from_its_environment() -> None:
    secrets, _ = reader()
    env = {
        **ENV,
        "RETENTION_DAYS": "30",
        "MAX_FILE_BYTES": "2048",
        "CALLBACK_URL": "https://x.lambda-url.us-east-1.on.aws/callback",
        "CALLBACK_TOKEN_SECRET": "ssm:/courier/callback-token",
    }
    service = compose(environ=env, s3=object(), dynamodb=object(), secrets=secrets)
    assert service.options.callback_uri == "https://x.lambda-url.us-east-1.on.aws/callback?token=s3cret"
    assert service.limits.max_file_bytes == 2048
    assert isinstance(service.ledger, RunLedger)
    assert service.ledger.retention.days == 30
    wrapped = compose(
        environ=env, s3=object(), dynamodb=object(), secrets=secrets, wrap={"ledger": lambda x: ("w", x)}
    )
    assert wrapped.ledger[0] == "w"  # type: ignore[index]


def test_settings_are_checked_when_the_function_is_put_together() -> None:
    with pytest.raises(ConfigurationError, match="CROMWELL_URL"):
        compose_reconciler(environ={"LEDGER_TABLE": "courier-ledger"}, dynamodb=object())
    with pytest.raises(ConfigurationError, match="LEDGER_TABLE"):
        compose_batch_events(environ={"CROMWELL_URL": "https://cromwell"}, dynamodb=object(), tags=FakeTags())


def test_the_template_names_the_handler_modules_for_what_invokes_them() -> None:
    resources = load_template()["Resources"]
    handlers = {
        name: r["Properties"].get("Handler")
        for name, r in resources.items()
        if r["Type"] == "AWS::Serverless::Function"
    }
    assert handlers["MonitorFunction"] == "monitor.batch_events.lambda_handler"
    assert handlers["CallbackFunction"] == "monitor.callback.lambda_handler"
    assert handlers["ReconcilerFunction"] == "monitor.schedule.lambda_handler"
