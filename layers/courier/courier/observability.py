"""The one place where logging, tracing and metrics are set up for every function.

Tracing is an option (`EnableTracing` in template.yaml). The X-Ray SDK is not in the courier
layer: it comes with the tracing layer, which the template attaches only when tracing is on.
Without it (or with `POWERTOOLS_TRACE_DISABLED`), `tracer` is a `NoTracer` whose decorator
returns the handler unchanged, so no handler imports or patches anything for tracing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from courier.errors import CromwellAuthError, CromwellBadRequest, CromwellNotFound, CromwellUnavailable

if TYPE_CHECKING:
    from courier.cromwell import CallOutcome

SERVICE = "cromwell-courier"
NAMESPACE = "CromwellCourier"
_TRUTHY = {"1", "true", "yes", "on", "y", "t"}


class TracerLike(Protocol):
    """What the functions use of Powertools' Tracer."""

    def capture_lambda_handler(
        self, lambda_handler: Callable[..., Any] | None = None, capture_response: bool | None = None
    ) -> Callable[..., Any]: ...


class NoTracer:
    """Tracing off: the decorator hands back the handler itself."""

    def capture_lambda_handler(
        self, lambda_handler: Callable[..., Any] | None = None, capture_response: bool | None = None
    ) -> Callable[..., Any]:
        return lambda_handler if lambda_handler is not None else _unchanged


def _unchanged[F: Callable[..., Any]](function: F) -> F:
    return function


def tracing_wanted(environ: Mapping[str, str]) -> bool:
    """Tracing is on unless `POWERTOOLS_TRACE_DISABLED` says otherwise."""
    return environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() not in _TRUTHY


def make_tracer(environ: Mapping[str, str] | None = None, *, sdk_present: bool | None = None) -> TracerLike:
    """Powertools' Tracer when tracing is wanted and the X-Ray SDK is importable, else `NoTracer`."""
    env = os.environ if environ is None else environ
    if not tracing_wanted(env):
        return NoTracer()
    if sdk_present is None:
        sdk_present = find_spec("aws_xray_sdk") is not None
    if not sdk_present:
        logger.warning(
            "tracing is on but the X-Ray SDK is not installed (the tracing layer is missing); "
            "only Lambda's own trace segments are recorded"
        )
        return NoTracer()
    from aws_lambda_powertools import Tracer  # noqa: PLC0415 - only with tracing on

    powertools_tracer: TracerLike = Tracer(service=SERVICE)
    return powertools_tracer


logger = Logger(service=SERVICE)
tracer = make_tracer()
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


__all__ = [
    "NAMESPACE",
    "SERVICE",
    "NoTracer",
    "TracerLike",
    "count_cromwell_call",
    "logger",
    "make_tracer",
    "metrics",
    "tracer",
]
