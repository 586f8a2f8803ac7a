"""The one place where logging, tracing and metrics are set up for every function."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from courier.errors import CromwellAuthError, CromwellBadRequest, CromwellNotFound, CromwellUnavailable

if TYPE_CHECKING:
    from courier.cromwell import CallOutcome

SERVICE = "cromwell-courier"
NAMESPACE = "CromwellCourier"

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(service=SERVICE, namespace=NAMESPACE)


def count_cromwell_call(outcome: CallOutcome) -> None:
    """Metrics of one Cromwell call (the shared client's `on_call`): every call, its retries, and
    its failure. An answer Cromwell gave on purpose (404 unknown id, 400 refused) is no failure
    of the call. `CromwellUnavailable` and `CromwellAuthFailed` each have an alarm."""
    metrics.add_metric(name="CromwellCalls", unit=MetricUnit.Count, value=1)
    if outcome.tries > 1:
        metrics.add_metric(name="CromwellRetries", unit=MetricUnit.Count, value=outcome.tries - 1)
    error = outcome.error
    if error is None or isinstance(error, CromwellNotFound | CromwellBadRequest):
        return
    metrics.add_metric(name="CromwellCallFailures", unit=MetricUnit.Count, value=1)
    if isinstance(error, CromwellUnavailable):
        metrics.add_metric(name="CromwellUnavailable", unit=MetricUnit.Count, value=1)
    elif isinstance(error, CromwellAuthError):
        metrics.add_metric(name="CromwellAuthFailed", unit=MetricUnit.Count, value=1)


__all__ = ["NAMESPACE", "SERVICE", "count_cromwell_call", "logger", "metrics", "tracer"]
