"""`evreplay local` from the outside: 503 while it starts, 200 with the AWS endpoint when ready,
Ctrl-C stops it cleanly and frees both ports; and the README's main command, `evreplay demo`."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time

from evreplay.cli.local_process import free_port, health


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_health_is_503_while_starting_then_200_and_ctrl_c_stops_cleanly() -> None:
    port, aws_port = free_port(), free_port()
    command = [sys.executable, "-m", "evreplay.cli.main", "local", "--port", str(port), "--aws-port", str(aws_port)]
    began = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        seen: list[int] = []
        body = None
        while time.monotonic() - began < 60 and process.poll() is None:
            status, body = health(f"http://127.0.0.1:{port}", timeout=1.0)
            if status and (not seen or seen[-1] != status):
                seen.append(status)
            if status == 200:
                break
            time.sleep(0.05)
        healthy_after = time.monotonic() - began
        assert seen and seen[-1] == 200, f"never healthy: {seen}"
        assert set(seen) <= {503, 200} and seen[0] == 503, f"statuses seen while starting: {seen}"
        assert body == {"status": "ok", "aws_endpoint": f"http://127.0.0.1:{aws_port}"}
        print(f"\nevreplay local: healthy {healthy_after:.2f}s after the command started")

        # WHEN Ctrl-C arrives
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    # THEN it exits 0, said where everything was, and both ports are free again
    assert process.returncode == 0, output
    assert f"http://127.0.0.1:{port}" in output and f"http://127.0.0.1:{aws_port}" in output
    assert "stopping" in output
    assert _bindable(port) and _bindable(aws_port)


def test_the_demo_runs_the_whole_story_on_its_own_local_stack() -> None:
    began = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "evreplay.cli.main", "demo", "--json"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    wall = time.monotonic() - began
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["ingest"]["idempotent_retry_same_response"] is True
    assert (report["ingest"]["producer_retry"], report["ingest"]["double_beacon"]) == ("DUPLICATE", "DUPLICATE")
    assert report["duplicates"] == 2
    plain, with_duplicates = report["replays"]
    assert plain["status"] == with_duplicates["status"] == "SUCCEEDED"
    assert (plain["result"]["enqueued"], with_duplicates["result"]["enqueued"]) == (9, 11)
    inputs = {item["replay_id"]: item["input_count"] for item in report["aggregates"]}
    assert inputs == {plain["replay_id"]: 9, with_duplicates["replay_id"]: 11}
    assert report["history"]["status"] == "SUCCEEDED"
    print(f"\nevreplay demo: {wall:.1f}s wall ({report['startup_seconds']}s of it starting the local stack)")
