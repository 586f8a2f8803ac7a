"""Test-wide environment: fake AWS credentials, no tracing, and the settings every function's
module validates at import (its cold start). Individual tests inject their own collaborators
through the handlers' keyword arguments."""

from __future__ import annotations

import os

pytest_plugins = ["tests.support.cromwell_fixtures", "tests.support.submit_fixtures"]

_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_SERVICE_NAME": "cromwell-courier",
    "POWERTOOLS_METRICS_NAMESPACE": "CromwellCourier",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "LEDGER_TABLE": "courier-ledger",
    "RETENTION_DAYS": "90",
    "CROMWELL_URL": "http://127.0.0.1:9",
    "RUNS_BUCKET": "courier-runs",
    "TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:courier-notifications",
    "CALLBACK_TOKEN_SECRET": "arn:aws:secretsmanager:us-east-1:123456789012:secret:courier-callback-token",
}
for _name, _value in _ENV.items():
    os.environ[_name] = _value
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)
