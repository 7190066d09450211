"""`evreplay local` as a child process: start it on free ports, wait for a healthy /health, stop it.

The demo uses it, and so do the end-to-end tests: the child is the real command, talked to only
over HTTP. Every wait is bounded and the child is always stopped (SIGINT, then SIGKILL).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO, Any

DEFAULT_START_TIMEOUT = 60.0


class LocalStackFailed(RuntimeError):
    """The child did not become healthy (its output tail is in the message)."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def health(api_url: str, timeout: float = 2.0) -> tuple[int, Any]:
    """(status, body) of GET /health; status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, None
    except (urllib.error.URLError, OSError, ValueError):
        return 0, None


class LocalStackProcess:
    """A running `evreplay local` child on its own ports.

    with LocalStackProcess() as stack:
        stack.api_url, stack.aws_endpoint, stack.startup_seconds
    """

    def __init__(
        self,
        port: int | None = None,
        aws_port: int | None = None,
        log_path: Path | None = None,
        extra_args: list[str] | None = None,
        env: dict[str, str] | None = None,
        start_timeout: float = DEFAULT_START_TIMEOUT,
    ) -> None:
        self.port = port or free_port()
        self.aws_port = aws_port or free_port()
        self.log_path = log_path
        self.extra_args = extra_args or []
        self.env = env
        self.start_timeout = start_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None
        self._log: IO[bytes] | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def aws_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.aws_port}"

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "evreplay.cli.main", "local",
            "--port", str(self.port), "--aws-port", str(self.aws_port), *self.extra_args,
        ]  # fmt: skip

    def start(self) -> LocalStackProcess:
        began = time.monotonic()
        env = {**os.environ, **(self.env or {}), "PYTHONUNBUFFERED": "1"}
        if self.log_path is not None:
            self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            self.command(),
            stdout=self._log if self._log else subprocess.DEVNULL,
            stderr=subprocess.STDOUT if self._log else subprocess.DEVNULL,
            env=env,
        )
        deadline = began + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                raise LocalStackFailed(f"evreplay local exited with {self.process.returncode}{self._tail()}")
            status, _ = health(self.api_url, timeout=1.0)
            if status == 200:
                self.startup_seconds = time.monotonic() - began
                return self
            time.sleep(0.1)
        self.stop()
        raise LocalStackFailed(f"evreplay local was not healthy within {self.start_timeout:.0f}s{self._tail()}")

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGINT (what Ctrl-C sends), then SIGKILL if it has not exited in `timeout` seconds."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None
        return process.returncode

    def output(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def _tail(self) -> str:
        text = self.output()
        return f"; last output:\n{text[-2000:]}" if text else ""

    def __enter__(self) -> LocalStackProcess:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
