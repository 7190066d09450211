"""End-to-end: `evreplay local` runs as a child process on free ports; the tests talk to it only
over HTTP (the API), the `evreplay` CLI (a subprocess) and boto3 at the AWS endpoint it prints.

One stack per pytest-xdist worker serves the module set (each test uses its own entities); it is always
stopped. The e2e tests are spread over both workers like the others (they are the longest: one worker
holding them all would be the suite's critical path).
The replay queue's maxReceiveCount is lowered to 2 through a template parameter override so a
poison message reaches the DLQ quickly.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from evreplay.cli.client import ApiClient
from evreplay.cli.local_process import LocalStackProcess

from tests.stacks import MAX_RECEIVE_COUNT, RunningStack, printed_aws_endpoint


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
