"""Logger, Tracer and Metrics, created once for every function. Service name and metrics
namespace come from the template's POWERTOOLS_* variables."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()
