"""boto3 clients, created once per process and replaceable in tests.

Clients are cached per service. Retries use botocore's standard mode, which retries
throttling and transient errors with backoff; our own code adds retries only where AWS
reports partial failures inside a successful response (SendMessageBatch, BatchWriteItem).
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

import boto3
from botocore.config import Config

# A replay page sends on up to 16 threads (evreplay.replay.concurrency): a pooled connection each, and
# room for the calls of other threads of the same process.
MAX_POOL_CONNECTIONS = 32
_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 8},
    connect_timeout=5,
    read_timeout=30,
    max_pool_connections=MAX_POOL_CONNECTIONS,
)


@cache
def _session() -> boto3.session.Session:
    # One session for every client: each new session reloads botocore's data files (~0.25 s).
    return boto3.session.Session()


# Creating clients from one botocore session is not thread-safe, and a page's worker threads may be
# the first to ask for one (functools.cache alone can run the factory twice at once).
_creating = threading.Lock()


@cache
def client(service: str) -> Any:
    """The process-wide client for an AWS service."""
    with _creating:
        return _session().client(service, config=_CONFIG)  # type: ignore[call-overload]


def s3() -> Any:
    return client("s3")


def dynamodb() -> Any:
    return client("dynamodb")


def sqs() -> Any:
    return client("sqs")


def events() -> Any:
    return client("events")


def stepfunctions() -> Any:
    return client("stepfunctions")


def reset_clients() -> None:
    """Drop cached clients, and with them any event hooks a test registered on them. The session
    stays: it holds botocore's parsed service data, which never changes within a process."""
    client.cache_clear()
