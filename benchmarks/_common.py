"""Shared set-up for the benchmarks: the same environment and moto deployment as the tests."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from evreplay.local import offline

offline.isolate("us-east-1")
os.environ.update(
    {
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }
)

import boto3  # noqa: E402
from evreplay.core import clients  # noqa: E402
from evreplay.core.settings import reset_settings  # noqa: E402
from evreplay.local.deploy import deploy_storage  # noqa: E402
from evreplay.local.stack import MOTO_CONFIG  # noqa: E402
from evreplay.local.template import Template  # noqa: E402
from moto import mock_aws  # noqa: E402

TEMPLATE = Template()
os.environ.update(TEMPLATE.merged_environment())
os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
reset_settings()


@contextmanager
def local_aws() -> Iterator[dict[str, Any]]:
    """A fresh moto with the template's storage; yields clients by service name."""
    with mock_aws(config=MOTO_CONFIG):
        clients.reset_clients()
        session = boto3.session.Session()
        handles = {name: session.client(name) for name in ("s3", "dynamodb", "sqs", "stepfunctions")}
        deploy_storage(TEMPLATE, handles)
        yield handles


def rate(count: int, work: Callable[[], Any], repeats: int = 3) -> tuple[float, list[float]]:
    """Median items/s of `work` (which handles `count` items) over `repeats` runs."""
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        rates.append(count / (time.perf_counter() - started))
    return statistics.median(rates), rates


def machine() -> str:
    python = f"{platform.python_implementation()} {platform.python_version()}"
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return f"{python} on {platform.machine()}, {os.cpu_count()} cores, load average {load} (shared machine)"
