"""The one place where logging, tracing and metrics are set up for every function."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "cromwell-courier"
NAMESPACE = "CromwellCourier"

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(service=SERVICE, namespace=NAMESPACE)

__all__ = ["NAMESPACE", "SERVICE", "logger", "metrics", "tracer"]
