"""The local API over HTTP: a ThreadingHTTPServer that turns each request into one
`LocalGateway.request(...)` call (raw body bytes, query string and headers passed through) and
answers `GET /health` itself, as docs/design.md §7 describes: 503 until the stack is ready, then
`200 {"status": "ok", "aws_endpoint": ...}`.

The server binds to a loopback address only (docs/design.md §8): the local API has no authentication, so
anything else needs an explicit opt-in.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO
from urllib.parse import urlsplit

from evreplay.local.gateway import GatewayResponse, LocalGateway, error_response
from evreplay.local.runtime import function_lock

HEALTH_PATH = "/health"
# API Gateway's own ceiling for a request payload is 10 MB; the ingest function enforces its
# smaller limit itself (413), this only keeps one request from eating the machine's memory.
MAX_REQUEST_BYTES = 10 * 1024 * 1024
# Connections the kernel queues while the accept loop waits (for the GIL: moto runs in this process).
# socketserver's default, 5, reset the sixth of 16 clients connecting at once; werkzeug uses 128.
# Linux caps it at net.core.somaxconn (4096 by default).
LISTEN_BACKLOG = 1024
# Hop-by-hop and framing headers belong to this connection, not to the proxied response.
_SKIPPED_RESPONSE_HEADERS = {"content-length", "connection", "transfer-encoding", "keep-alive"}


class BindRefused(ValueError):
    """The requested bind address is not a loopback address and remote binding was not allowed."""


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and names that resolve only to loopback addresses."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    addresses = {str(info[4][0]) for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(address.split("%")[0]).is_loopback for address in addresses)


def check_bind_address(host: str, allow_remote: bool) -> None:
    if not allow_remote and not is_loopback(host):
        raise BindRefused(
            f"refusing to bind {host}: the local stack has no authentication and binds to a loopback "
            "address only (e.g. 127.0.0.1); pass --allow-remote to bind it anyway"
        )


def _json_body(status: int, body: Any, headers: dict[str, str] | None = None) -> GatewayResponse:
    return GatewayResponse(status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(body))


class LocalApi:
    """What the HTTP layer calls: readiness, /health, and the gateway for everything else."""

    def __init__(self, gateway: LocalGateway, aws_endpoint: str) -> None:
        self.gateway = gateway
        self.aws_endpoint = aws_endpoint
        self.ready = threading.Event()
        self.startup_error: str | None = None

    def health(self) -> GatewayResponse:
        if not self.ready.is_set():
            status = "failed" if self.startup_error else "starting"
            body: dict[str, Any] = {"status": status, "aws_endpoint": self.aws_endpoint}
            if self.startup_error:
                body["error"] = self.startup_error
            return _json_body(503, body, {"Retry-After": "1"})
        # The template may route GET /health to a function (it can check its dependencies);
        # its answer wins, with the AWS endpoint added so a client knows where the data lives.
        if self.gateway.match("GET", HEALTH_PATH) is not None:
            response = self.gateway.request("GET", HEALTH_PATH)
            body = response.json() if response.body else {}
            if isinstance(body, dict):
                body.setdefault("aws_endpoint", self.aws_endpoint)
                return GatewayResponse(response.status, response.headers, json.dumps(body))
            return response
        return _json_body(200, {"status": "ok", "aws_endpoint": self.aws_endpoint})

    def warm_up(self) -> None:
        """Load the function behind the template's /health route (its cold start) before the
        stack reports ready, so the first health check that says 200 is also a fast one."""
        if self.gateway.match("GET", HEALTH_PATH) is not None:
            self.gateway.request("GET", HEALTH_PATH)

    def handle(self, method: str, target: str, body: bytes | None, headers: dict[str, str]) -> GatewayResponse:
        parts = urlsplit(target)
        path = parts.path or "/"
        if path == HEALTH_PATH and method in ("GET", "HEAD"):
            return self.health()
        if not self.ready.is_set():
            return error_response(503, "ServiceUnavailable", "the local stack is still starting", {"Retry-After": "1"})
        matched = self.gateway.match(method, path)
        if matched is None:
            return self.gateway.request(method, path, body, headers, parts.query)  # its 403 / 405
        # One invocation of a function at a time, as in one Lambda execution environment: handlers
        # keep per-invocation state at module scope (the Powertools resolver's current_event, the
        # logger's keys, metrics, the idempotency config's context). Two concurrent requests in one
        # process would read each other's events (measured: a batch stored another batch's events).
        # The same lock as moto's in-process Lambda invokes take (evreplay.local.runtime).
        try:
            with function_lock(matched[0].function):
                return self.gateway.request(method, path, body, headers, parts.query)
        except Exception as exc:  # an exception escaping a handler is what Lambda reports as a 502
            print(f"evreplay local: {method} {path} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return error_response(502, "LambdaError", f"the function failed: {type(exc).__name__}: {exc}"[:500])


class _RequestHandler(BaseHTTPRequestHandler):
    server: LocalHttpServer
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        started = time.perf_counter()
        method = self.command.upper()
        body: bytes | None = None
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            response = error_response(411, "LengthRequired", "send a Content-Length; chunked bodies are not supported")
            self.close_connection = True
        else:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_REQUEST_BYTES:
                response = error_response(413, "PayloadTooLarge", f"request body is over {MAX_REQUEST_BYTES} bytes")
                self.close_connection = True
            else:
                body = self.rfile.read(length) if length else None
                headers = {name: value for name, value in self.headers.items()}
                response = self.server.api.handle(method, self.path, body, headers)
        payload = response.body.encode("utf-8")
        self.send_response(response.status)
        for name, value in response.headers.items():
            if name.lower() not in _SKIPPED_RESPONSE_HEADERS:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(payload)
        self.server.log_access(method, self.path, response.status, time.perf_counter() - started)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

    def __getattr__(self, name: str) -> Any:
        # Any other method (TRACE, CONNECT, made-up ones) is routed too, so it gets the gateway's 405 or
        # 404 in the error shape rather than http.server's 501 HTML page (schemathesis found TRACE).
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence http.server's default per-request line; LocalHttpServer.log_access replaces it."""


class LocalHttpServer(ThreadingHTTPServer):
    """One thread per connection (a keep-alive client keeps its thread); daemon threads so a stuck
    request never blocks shutdown. Requests to one function wait for each other in LocalApi, not in
    the accept queue, so a burst of clients is queued, never refused.

    werkzeug's development server (it comes with moto) is this same socketserver threading server
    with a WSGI layer on top and a backlog of 128: switching would add a translation step and gain
    nothing, so this one keeps http.server and sets the backlog itself."""

    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG

    def __init__(
        self,
        api: LocalApi,
        host: str = "127.0.0.1",
        port: int = 3000,
        allow_remote: bool = False,
        access_log: TextIO | None = None,
    ) -> None:
        check_bind_address(host, allow_remote)
        if ":" in host:
            self.address_family = socket.AF_INET6
        self.api = api
        self._access_log = access_log
        self._thread: threading.Thread | None = None
        super().__init__((host, port), _RequestHandler)

    @property
    def url(self) -> str:
        address = self.server_address
        host = address[0].decode() if isinstance(address[0], bytes) else str(address[0])
        port = address[1]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    def log_access(self, method: str, target: str, status: int, seconds: float) -> None:
        if self._access_log is not None:
            print(f"{method} {target} {status} {seconds * 1000:.0f}ms", file=self._access_log, flush=True)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, name="evreplay-http", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout)
        self.server_close()
