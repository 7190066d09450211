"""`evreplay local`: the whole pipeline in one process (docs/design.md §7).

Order matters and is the point of this module:
1. bind the HTTP API first, so `GET /health` answers 503 while the rest starts;
2. start moto in-process (Step Functions executes, Lambda runs without Docker) and moto's
   server on 127.0.0.1:--aws-port over the same backends (what `aws --endpoint-url` and boto3
   outside this process talk to);
3. set ONE environment for every function, from the template, BEFORE any handler module is
   imported (handlers create their boto3 clients at import);
4. apply the moto patches (speed, in-process Lambda invoke), create storage and the workflow
   from the template, start draining the replay queue into the processor;
5. load the /health function, mark ready, print where the API and the data are.

The functions' own boto3 calls stay in-process (moto's botocore stubber, as in the tests) rather
than going through the HTTP endpoint: measured on 2 cores with two batches in flight, batch
ingest ran at ~60 events/s in-process against ~7 events/s through moto's HTTP server (every
call pays HTTP, and the handlers' worker threads, the API's and the server's request threads
fight over one GIL). Both paths reach
the same moto backends, so what the API writes is what `aws --endpoint-url` reads.
`--via-http` routes the functions through the endpoint instead (AWS_ENDPOINT_URL), which is
what a separate process would see.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import urllib.request
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import boto3
from botocore.config import Config
from moto import mock_aws
from moto.server import ThreadedMotoServer

from evreplay.core import clients, settings
from evreplay.local import destinations as local_destinations
from evreplay.local import moto_patches, offline, persistence
from evreplay.local.deploy import deploy_storage
from evreplay.local.destinations import LocalDestination
from evreplay.local.gateway import LocalGateway
from evreplay.local.queue_driver import QueueDriver
from evreplay.local.server import BindRefused, LocalApi, LocalHttpServer, check_bind_address
from evreplay.local.template import Template, TemplateError
from evreplay.local.workflow import deploy_workflow

MOTO_CONFIG: Any = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}
_SERVICES = ("s3", "dynamodb", "sqs", "stepfunctions", "lambda", "iam", "events")
_STARTUP_TIMEOUT_SECONDS = 20.0


class StackError(RuntimeError):
    """The local stack cannot start (a port is taken, the template does not resolve...)."""


@dataclass(frozen=True)
class StackOptions:
    host: str = "127.0.0.1"
    port: int = 3000
    aws_port: int = 4566
    allow_remote: bool = False
    template_path: Path | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    log_level: str = "WARNING"
    access_log: bool = True
    via_http: bool = False
    # Seconds a message the processor failed stays hidden before its next try; None = the queue's
    # own visibility timeout, as with Lambda's SQS trigger (180 s for the replay queue).
    retry_visibility_timeout: int | None = None
    # Keep the data here across stops and starts (evreplay.local.persistence); None = memory only.
    data_dir: Path | None = None
    # Queues and buses to create and declare as ReplayDestinations (docs/design.md §4.12).
    destinations: tuple[LocalDestination, ...] = ()


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


class MotoEndpoint:
    """moto's ThreadedMotoServer on 127.0.0.1, started with a bound wait.

    ThreadedMotoServer.start() waits forever if its thread fails to bind, so the port is checked
    first and start() runs in a helper thread joined with a timeout."""

    HOST = "127.0.0.1"

    def __init__(self, port: int) -> None:
        self.port = port
        self._server = ThreadedMotoServer(ip_address=self.HOST, port=port, verbose=False)
        self._started = False

    @property
    def url(self) -> str:
        return f"http://{self.HOST}:{self.port}"

    def start(self) -> None:
        if not _port_free(self.HOST, self.port):
            raise StackError(f"port {self.port} on {self.HOST} is in use; choose another with --aws-port")
        starter = threading.Thread(target=self._server.start, name="moto-start", daemon=True)
        starter.start()
        starter.join(_STARTUP_TIMEOUT_SECONDS)
        if starter.is_alive():
            raise StackError(f"moto did not start on {self.url} within {_STARTUP_TIMEOUT_SECONDS:.0f}s")
        self._started = True

    def configure(self, config: dict[str, Any]) -> None:
        """moto's server-mode config API (there is no environment variable for these)."""
        request = urllib.request.Request(
            f"{self.url}/moto-api/config",
            data=json.dumps(config).encode("utf-8"),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def stop(self) -> None:
        if self._started:
            self._server.stop()
            self._started = False


def configure_environment(
    template: Template, aws_endpoint: str, aws_port: int, log_level: str, via_http: bool = False
) -> dict[str, str]:
    """The process environment every in-process function sees, set once."""
    offline.isolate(template.region)
    environment = {
        **template.merged_environment(),
        # moto's Step Functions interpreter calls Lambda and the SDK at http://localhost:$MOTO_PORT
        # when its calls are not intercepted in-process (--via-http).
        "MOTO_PORT": str(aws_port),
        # No X-Ray daemon and no CloudWatch here; EMF lines would only flood the console.
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": log_level,
    }
    if via_http:
        # boto3 (>= 1.28) sends every client here; the handlers never know they are local.
        environment["AWS_ENDPOINT_URL"] = aws_endpoint
    os.environ.update(environment)
    settings.reset_settings()
    clients.reset_clients()
    return environment


def aws_clients(endpoint: str | None, region: str) -> dict[str, Any]:
    """Clients for creating resources: through `endpoint`, or in-process when it is None."""
    session = boto3.session.Session(region_name=region, **_session_credentials())
    config = Config(retries={"mode": "standard", "max_attempts": 3})
    return {name: session.client(name, endpoint_url=endpoint, config=config) for name in _SERVICES}  # type: ignore[call-overload]


def _session_credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": offline.FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": offline.FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    }


class LocalStack:
    """Start, serve, stop. `start()` returns once /health is 200."""

    def __init__(self, options: StackOptions, out: TextIO | None = None) -> None:
        self.options = options
        self.out = out or sys.stdout
        self.template: Template | None = None
        self.http: LocalHttpServer | None = None
        self.moto: MotoEndpoint | None = None
        self.api: LocalApi | None = None
        self.clients: dict[str, Any] = {}
        self._drivers: list[tuple[QueueDriver, threading.Thread]] = []
        self._stop_drivers = threading.Event()
        self._in_process: Any = None
        self.started_in: float | None = None
        self.flusher: persistence.Flusher | None = None
        self.loaded: dict[str, int] | None = None

    @property
    def aws_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.options.aws_port}"

    @property
    def api_url(self) -> str:
        if self.http is None:
            raise StackError("the stack is not started")
        return self.http.url

    def start(self) -> None:
        began = time.perf_counter()
        options = self.options
        check_bind_address(options.host, options.allow_remote)
        if options.data_dir is not None and options.via_http:
            # The flusher reads this process's moto backends, which --via-http does not use.
            raise StackError("--data-dir cannot be combined with --via-http")
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per moto request otherwise
        # Powertools warns on every invocation that adds no metric; locally that is only noise.
        warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)
        parameters = dict(options.parameters)
        if options.destinations:
            region = Template(options.template_path).region
            parameters["ReplayDestinations"] = local_destinations.declared(
                options.destinations, region, parameters.get("ReplayDestinations")
            )
        template = Template(options.template_path, parameter_overrides=parameters or None)
        self.template = template
        self.api = LocalApi(LocalGateway(template), self.aws_endpoint)
        try:
            self.http = LocalHttpServer(
                self.api, options.host, options.port, options.allow_remote, self.out if options.access_log else None
            )
        except OSError as exc:
            raise StackError(f"cannot serve the API on {options.host}:{options.port}: {exc}") from exc
        self.http.start()
        try:
            self._start_backend(template)
        except BaseException as exc:
            self.api.startup_error = f"{type(exc).__name__}: {exc}"
            raise
        self.api.warm_up()
        self.api.ready.set()
        self.started_in = time.perf_counter() - began

    def _start_backend(self, template: Template) -> None:
        via_http = self.options.via_http
        if not via_http:
            # Starts with empty backends and intercepts this process's boto3 calls; the server
            # below serves the very same backends to other processes.
            self._in_process = mock_aws(config=MOTO_CONFIG)
            self._in_process.start()
        self.moto = MotoEndpoint(self.options.aws_port)
        self.moto.start()
        if via_http:
            self.moto.configure(MOTO_CONFIG)
        configure_environment(template, self.aws_endpoint, self.options.aws_port, self.options.log_level, via_http)
        moto_patches.apply(template)
        self.clients = aws_clients(self.aws_endpoint if via_http else None, template.region)
        deploy_storage(template, self.clients)
        local_destinations.create(self.options.destinations, self.clients)
        deploy_workflow(template, self.clients)
        if self.options.data_dir is not None:
            store = persistence.open_store(self.options.data_dir, template)
            self.loaded = store.load()
            self.flusher = persistence.Flusher(store)
            self.flusher.start()
        for trigger in template.queue_triggers():
            driver = QueueDriver(
                template, self.clients["sqs"], trigger, retry_visibility_timeout=self.options.retry_visibility_timeout
            )
            thread = threading.Thread(
                target=driver.run, args=(self._stop_drivers,), name=f"queue-{trigger.queue}", daemon=True
            )
            thread.start()
            self._drivers.append((driver, thread))

    def banner(self) -> str:
        started = f" in {self.started_in:.1f}s" if self.started_in is not None else ""
        endpoint = self.aws_endpoint
        lines = [
            f"evreplay local is ready{started}.",
            f"  API:          {self.api_url}    (try: curl {self.api_url}/health)",
            f"  AWS endpoint: {endpoint}    (aws --endpoint-url {endpoint} s3 ls; boto3 endpoint_url=...)",
            "  Credentials:  any (e.g. AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing), region "
            f"{self.template.region if self.template else 'us-east-1'}",
            *self._destination_lines(),
            self._data_line(),
        ]
        return "\n".join(lines)

    def _destination_lines(self) -> list[str]:
        region = self.template.region if self.template else "us-east-1"
        return [
            f'  Destination:  {d.name} ({d.type}) {d.arn(region)}    (POST /replays with "destination": "{d.name}")'
            for d in self.options.destinations
        ]

    def _data_line(self) -> str:
        if self.options.data_dir is None:
            return "  Data lives in memory until this process stops. Ctrl-C to stop."
        loaded = self.loaded or {}
        return (
            f"  Data:         {self.options.data_dir} (loaded {loaded.get('objects', 0)} objects, "
            f"{loaded.get('items', 0)} items; written every second). Ctrl-C to stop."
        )

    def stop(self, timeout: float = 5.0) -> None:
        """Stop taking requests, stop the queue drivers, flush the data directory, stop moto. Each
        step bounded."""
        if self.api is not None:
            self.api.ready.clear()
        if self.http is not None:
            self.http.stop(timeout)
            self.http = None
        self._stop_drivers.set()
        for _, thread in self._drivers:
            thread.join(timeout)
        self._drivers.clear()
        if self.flusher is not None:
            self.flusher.stop()
            self.flusher = None
        if self.moto is not None:
            stopper = threading.Thread(target=self.moto.stop, name="moto-stop", daemon=True)
            stopper.start()
            stopper.join(timeout)
            self.moto = None
        if self._in_process is not None:
            self._in_process.stop()
            self._in_process = None


def run(options: StackOptions, out: TextIO | None = None) -> int:
    """The `evreplay local` command: start, print, serve until SIGINT/SIGTERM, stop."""
    out = out or sys.stdout
    stop = threading.Event()

    def _request_stop(signum: int, _frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    stack = LocalStack(options, out)
    try:
        try:
            stack.start()
        except (StackError, BindRefused, TemplateError, moto_patches.MotoPatchError, persistence.DataDirError) as exc:
            print(f"evreplay local: {exc}", file=sys.stderr)
            return 1
        print(stack.banner(), file=out, flush=True)
        while not stop.wait(0.5):
            pass
        print("evreplay local: stopping...", file=out, flush=True)
        return 0
    finally:
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
