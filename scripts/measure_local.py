"""Measure the local stack as a user meets it: `evreplay local` until GET /health is 200, Ctrl-C until
it has exited, and the wall time of `evreplay demo` (the README's main command).

    .venv/bin/python scripts/measure_local.py [--runs 3] [--demo-runs 1]
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import time

from evreplay.cli.local_process import free_port, health


def time_to_healthy() -> tuple[float, float]:
    port, aws_port = free_port(), free_port()
    command = [sys.executable, "-m", "evreplay.cli.main", "local", "--port", str(port), "--aws-port", str(aws_port)]
    began = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while health(f"http://127.0.0.1:{port}", timeout=1.0)[0] != 200:
            if process.poll() is not None or time.monotonic() - began > 120:
                raise RuntimeError("evreplay local did not become healthy")
            time.sleep(0.05)
        healthy = time.monotonic() - began
        stopping = time.monotonic()
        process.send_signal(signal.SIGINT)
        process.wait(30)
        return healthy, time.monotonic() - stopping
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def demo_wall_time() -> float:
    began = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "evreplay.cli.main", "demo", "--json"],
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=300,
    )
    return time.monotonic() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--demo-runs", type=int, default=1)
    args = parser.parse_args()
    starts = [time_to_healthy() for _ in range(args.runs)]
    demos = [demo_wall_time() for _ in range(args.demo_runs)]
    healthy = [s[0] for s in starts]
    stopped = [s[1] for s in starts]
    print(f"evreplay local -> healthy /health: median {statistics.median(healthy):.2f}s  runs {_fmt(healthy)}")
    print(f"Ctrl-C -> exited:                 median {statistics.median(stopped):.2f}s  runs {_fmt(stopped)}")
    if demos:
        print(f"evreplay demo wall time:          median {statistics.median(demos):.2f}s  runs {_fmt(demos)}")


def _fmt(values: list[float]) -> str:
    return ", ".join(f"{value:.2f}" for value in values)


if __name__ == "__main__":
    main()
