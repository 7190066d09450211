"""`evreplay local --data-dir`: ingest overhead, restart time and disk size, against the in-memory
stack in the same run.

For each size N: start `evreplay local` (child process) without and with --data-dir, ingest N events
(POST /events/batch, 500 per call, 200 entities), time it; stop with SIGINT; start again on the same
directory and time until /health is 200 (the load), against a start with an empty directory.

    .venv/bin/python benchmarks/bench_data_dir.py [--sizes 1000,4000]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import machine
from evreplay.cli.client import ApiClient
from evreplay.cli.local_process import LocalStackProcess


def events(count: int) -> list[dict[str, Any]]:
    return [
        {
            "source": "ios_app",
            "event_type": "purchase",
            "entity_id": f"user_{n % 200}",
            "event_time": f"2025-12-28T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z",
            "payload": {"amount": n, "currency": "EUR"},
        }
        for n in range(count)
    ]


def ingest(process: LocalStackProcess, bodies: list[dict[str, Any]]) -> float:
    api = ApiClient(process.api_url, timeout=120)
    began = time.perf_counter()
    for start in range(0, len(bodies), 500):
        results = api.post("/events/batch", {"events": bodies[start : start + 500]})["results"]
        assert all(result["status"] in ("ACCEPTED", "DUPLICATE") for result in results)
    return time.perf_counter() - began


def start(data_dir: Path | None) -> LocalStackProcess:
    extra = ["--quiet"] + (["--data-dir", str(data_dir)] if data_dir else [])
    return LocalStackProcess(extra_args=extra, start_timeout=300).start()


def disk(root: Path) -> tuple[int, int, int]:
    files = [path for path in root.rglob("*") if path.is_file()]
    content = sum(path.stat().st_size for path in files)
    blocks = int(subprocess.run(["du", "-sk", str(root)], capture_output=True, text=True).stdout.split()[0]) * 1024
    return len(files), content, blocks


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,4000")
    sizes = [int(size) for size in parser.parse_args().sizes.split(",")]
    print(f"evreplay local --data-dir, {machine()}\n")
    print(
        f"{'events':>7} {'memory ev/s':>12} {'data-dir ev/s':>14} {'ratio':>6} {'stop s':>7} {'empty start s':>14} "
        f"{'restart s':>10} {'files':>6} {'bytes/event':>12} {'disk bytes/event':>17}"
    )
    for size in sizes:
        bodies = events(size)
        memory = start(None)
        try:
            in_memory = size / ingest(memory, bodies)
        finally:
            memory.stop()
        root = Path(tempfile.mkdtemp(prefix="evreplay-data-"))
        try:
            persisted = start(root)
            try:
                with_dir = size / ingest(persisted, bodies)
            finally:
                began = time.perf_counter()
                persisted.stop()
                stop_seconds = time.perf_counter() - began
            empty = start(Path(tempfile.mkdtemp(prefix="evreplay-empty-")))
            empty_seconds = empty.startup_seconds or 0.0
            empty.stop()
            again = start(root)
            restart_seconds = again.startup_seconds or 0.0
            api = ApiClient(again.api_url, timeout=120)
            kept = api.get(
                "/events",
                entity_id="user_0",
                start_time="2025-12-28T00:00:00Z",
                end_time="2025-12-29T00:00:00Z",
                limit="1000",
            )
            again.stop()
            assert len(kept["items"]) == len([b for b in bodies if b["entity_id"] == "user_0"]), "events lost"
            files, content, blocks = disk(root)
            print(
                f"{size:>7} {in_memory:>12.0f} {with_dir:>14.0f} {with_dir / in_memory:>6.2f} {stop_seconds:>7.1f} "
                f"{empty_seconds:>14.1f} {restart_seconds:>10.1f} {files:>6} {content / size:>12.0f} "
                f"{blocks / size:>17.0f}"
            )
        finally:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
