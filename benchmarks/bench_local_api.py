"""The local API under concurrent clients: requests/s and latency at 1, 16 and 64 clients.

    python benchmarks/bench_local_api.py [--requests 40] [--clients 1,16,64]

Starts `evreplay local` as a child process (the command a user runs) and drives it over HTTP with
the load test's mix (tests/e2e/load.py: keyed and unkeyed POST /events, an idempotent retry,
POST /events/batch of 5, GET /events, a dry-run POST /replays, GET /replays/{id}), each client on
its own connection, all connecting at once. The baseline is the same mix from one client: the
ratios show what concurrency costs each request (the stack runs one invocation per function at a
time, like one Lambda environment per function, and moto shares one process and its GIL).
Connection errors and 5xx are counted, not hidden: with the old listen backlog of 5, clients got
ECONNRESET here.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

# The load mix lives with the load test, so the benchmark measures exactly what the test checks.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evreplay.cli.local_process import LocalStackProcess

from tests.e2e.load import run_load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40, help="requests per client (default 40)")
    parser.add_argument("--clients", default="1,16,64", help="comma-separated client counts (default 1,16,64)")
    args = parser.parse_args()
    counts = [int(value) for value in args.clients.split(",")]

    with tempfile.TemporaryDirectory() as scratch, LocalStackProcess(log_path=Path(scratch) / "local.log") as stack:
        # Not benchmarks/_common: it sets up an in-process moto environment the child would inherit.
        python = f"{platform.python_implementation()} {platform.python_version()}"
        print(f"evreplay local healthy after {stack.startup_seconds:.1f} s; {python}, {os.cpu_count()} cores")
        run_load(stack.api_url, 4, 10)  # warm every route's function (its cold start) before measuring
        print(f"{'clients':>7} {'requests':>8} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'conn err':>8} {'5xx':>4}"
              f" {'req/s vs 1':>10} {'p50 vs 1':>8}")  # fmt: skip
        baseline = None
        for clients in counts:
            result = run_load(stack.api_url, clients, args.requests)
            rate = result.requests / result.seconds
            baseline = baseline or (rate, result.p50)
            print(
                f"{clients:>7} {result.requests:>8} {rate:>7.1f} {result.p50 * 1000:>7.0f} "
                f"{result.percentile(0.99) * 1000:>7.0f} {len(result.connection_errors):>8} {result.server_errors:>4} "
                f"{rate / baseline[0]:>10.2f} {result.p50 / baseline[1]:>8.1f}"
            )
            for error in result.connection_errors[:3]:
                print(f"        e.g. {error}")


if __name__ == "__main__":
    main()
