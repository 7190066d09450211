"""The local HTTP layer: /health before and after readiness, loopback-only binding."""

from __future__ import annotations

import json
from typing import Any

import pytest
from evreplay.local.gateway import GatewayResponse
from evreplay.local.server import BindRefused, LocalApi, LocalHttpServer, check_bind_address, is_loopback

ENDPOINT = "http://127.0.0.1:4566"


class StubGateway:
    def __init__(self, health_route: bool = False) -> None:
        self.health_route = health_route
        self.calls: list[tuple[Any, ...]] = []

    def match(self, method: str, path: str) -> Any:
        return ("route", {}) if self.health_route and path == "/health" else None

    def request(self, method: str, path: str, body: Any = None, headers: Any = None, query: Any = None) -> Any:
        self.calls.append((method, path, body, headers, query))
        if path == "/health":
            return GatewayResponse(200, {"Content-Type": "application/json"}, json.dumps({"status": "ok"}))
        return GatewayResponse(201, {}, "{}")


def test_health_is_503_until_ready_then_200_with_the_aws_endpoint() -> None:
    api = LocalApi(StubGateway(), ENDPOINT)  # type: ignore[arg-type]
    before = api.handle("GET", "/health", None, {})
    assert before.status == 503 and before.json()["status"] == "starting"
    api.ready.set()
    after = api.handle("GET", "/health", None, {})
    assert after.status == 200
    assert after.json() == {"status": "ok", "aws_endpoint": ENDPOINT}


def test_health_adds_the_aws_endpoint_to_the_templates_own_health_route() -> None:
    gateway = StubGateway(health_route=True)
    api = LocalApi(gateway, ENDPOINT)  # type: ignore[arg-type]
    api.ready.set()
    assert api.handle("GET", "/health", None, {}).json() == {"status": "ok", "aws_endpoint": ENDPOINT}
    assert gateway.calls[0][:2] == ("GET", "/health")


def test_requests_before_ready_get_503_and_after_reach_the_gateway_with_raw_body_and_query() -> None:
    gateway = StubGateway()
    api = LocalApi(gateway, ENDPOINT)  # type: ignore[arg-type]
    assert api.handle("POST", "/events", b"{}", {}).status == 503
    api.ready.set()
    assert api.handle("POST", "/events?x=1&x=2", b'{"a": 1}', {"Idempotency-Key": "k"}).status == 201
    assert gateway.calls == [("POST", "/events", b'{"a": 1}', {"Idempotency-Key": "k"}, "x=1&x=2")]


def test_a_failed_start_is_reported_on_health() -> None:
    api = LocalApi(StubGateway(), ENDPOINT)  # type: ignore[arg-type]
    api.startup_error = "StackError: port in use"
    body = api.handle("GET", "/health", None, {}).json()
    assert body["status"] == "failed" and "port in use" in body["error"]


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_loopback_hosts_are_allowed(host: str) -> None:
    assert is_loopback(host)
    check_bind_address(host, allow_remote=False)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3"])
def test_other_addresses_are_refused_unless_allowed(host: str) -> None:
    with pytest.raises(BindRefused, match="--allow-remote"):
        check_bind_address(host, allow_remote=False)
    check_bind_address(host, allow_remote=True)


def test_server_refuses_to_bind_a_public_address() -> None:
    with pytest.raises(BindRefused):
        LocalHttpServer(LocalApi(StubGateway(), ENDPOINT), "0.0.0.0", 0)  # type: ignore[arg-type]
