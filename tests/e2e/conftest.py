"""End-to-end: `evreplay local` runs as a child process on free ports; the tests talk to it only
over HTTP (the API), the `evreplay` CLI (a subprocess) and boto3 at the AWS endpoint it prints.

One stack serves the whole module set (each test uses its own entities); it is always stopped.
The replay queue's maxReceiveCount is lowered to 2 through a template parameter override so a
poison message reaches the DLQ quickly.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from evreplay.cli.client import ApiClient
from evreplay.cli.local_process import LocalStackProcess

MAX_RECEIVE_COUNT = 2
CLI_TIMEOUT = 120.0


@dataclass
class RunningStack:
    process: LocalStackProcess
    api: ApiClient
    aws_endpoint: str  # as printed by `evreplay local`

    @property
    def api_url(self) -> str:
        return self.process.api_url

    def aws(self, service: str) -> Any:
        """A boto3 client at the printed endpoint, as a developer would make one."""
        return boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        ).client(service, endpoint_url=self.aws_endpoint)  # type: ignore[call-overload]

    def cli(
        self, *args: str, stdin: str = "", timeout: float = CLI_TIMEOUT, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Run `evreplay ARGS --api-url <this stack>` and return what it printed."""
        command = [sys.executable, "-m", "evreplay.cli.main", *args, "--api-url", self.api_url]
        result = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result


def printed_aws_endpoint(process: LocalStackProcess, timeout: float = 30.0) -> str:
    """The AWS endpoint the banner names. The banner is printed just after /health turns 200, so on a
    loaded machine it can lag the health check that ended `start()`: wait for it."""
    pattern = re.compile(r"AWS endpoint:\s+(http://\S+)")
    deadline = time.monotonic() + timeout
    while not (found := pattern.search(process.output())):
        assert time.monotonic() < deadline, f"`evreplay local` did not print its AWS endpoint:\n{process.output()}"
        time.sleep(0.1)
    return found.group(1)


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    log = tmp_path_factory.mktemp("local") / "evreplay-local.log"
    process = LocalStackProcess(
        log_path=log,
        extra_args=[
            "--parameter",
            f"ProcessorMaxReceiveCount={MAX_RECEIVE_COUNT}",
            # Replay destinations a test reads back at the AWS endpoint (tests/e2e/test_destinations.py).
            *("--destination", "team-orders=sqs-fifo", "--destination", "team-bus=eventbridge"),
        ],
        start_timeout=90,
    )
    process.start()
    try:
        print(f"\n`evreplay local` healthy after {process.startup_seconds:.2f}s (log: {log})")
        yield RunningStack(process, ApiClient(process.api_url, timeout=60), printed_aws_endpoint(process))
    finally:
        process.stop()


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.25) -> Any:
    """Poll until predicate() is truthy; fail after `timeout` seconds (tests never hang)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Under pytest-xdist the session-scoped local stack is per worker: keep e2e tests on one worker
    # so one `evreplay local` serves them all.
    for item in items:
        if "tests/e2e/" in item.nodeid:
            item.add_marker(pytest.mark.xdist_group("e2e"))
