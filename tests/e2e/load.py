"""Concurrent clients against `evreplay local` over HTTP: the load test (tests/e2e/test_load.py) and
the benchmark (benchmarks/bench_local_api.py) run this same mix.

Each client opens its own connection (as separate producer processes would, so a burst of clients
is a burst of connects) and sends `requests` requests in a fixed cycle: keyed and unkeyed
POST /events, the same keyed request again (an idempotent retry: same bytes, nothing stored),
POST /events/batch, GET /events, a dry-run POST /replays and GET /replays/{id}. Every client has its
own entity, so what it stored can be counted afterwards: `Client.expected_rows` is the number of
stored occurrences the index must hold for it, each once.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import urllib3

CYCLE = (
    "post-keyed",
    "post",
    "post-keyed-again",
    "batch",
    "get-events",
    "post-keyed",
    "start-replay",
    "get-replay",
    "post",
    "get-events",
)
BATCH_SIZE = 5
WINDOW = {"start_time": "2025-12-28T00:00:00Z", "end_time": "2025-12-29T00:00:00Z"}


@dataclass
class Client:
    """One client's requests and what it saw."""

    number: int
    run: str
    entity_id: str = ""
    latencies: dict[str, list[float]] = field(default_factory=dict)  # route kind -> seconds
    statuses: Counter[int] = field(default_factory=Counter)
    connection_errors: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # answers that break the contract
    expected_rows: int = 0
    event_ids: list[str] = field(default_factory=list)  # of every stored occurrence
    _sent: int = 0
    _last_keyed: tuple[str, dict[str, Any], str] | None = None  # key, body, first answer's text
    _replay_id: str | None = None

    def __post_init__(self) -> None:
        self.entity_id = f"load-{self.run}-{self.number}"

    def event(self) -> dict[str, Any]:
        self._sent += 1
        n = self._sent
        return {
            "source": "load",
            "event_type": "tick",
            "entity_id": self.entity_id,
            "event_time": f"2025-12-28T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}.{n % 1000:03d}Z",
            "payload": {"client": self.number, "n": n},
        }


def _send(
    pool: urllib3.HTTPConnectionPool,
    client: Client,
    kind: str,
    method: str,
    path: str,
    body: Any = None,
    **headers: str,
) -> tuple[int, str] | None:
    data = None if body is None else json.dumps(body).encode()
    started = time.perf_counter()
    try:
        response = pool.request(
            method, path, body=data, headers={"Content-Type": "application/json", **headers}, retries=False
        )
    except urllib3.exceptions.HTTPError as exc:  # no HTTP answer at all: reset, refused, timed out
        client.connection_errors.append(f"{kind}: {type(exc).__name__}: {exc}"[:300])
        return None
    client.latencies.setdefault(kind, []).append(time.perf_counter() - started)
    client.statuses[response.status] += 1
    return response.status, response.data.decode("utf-8")


def _expect(client: Client, kind: str, answer: tuple[int, str] | None, status: int) -> Any:
    if answer is None:
        return None
    if answer[0] != status:
        client.problems.append(f"{kind}: {answer[0]} {answer[1][:200]}")
        return None
    return json.loads(answer[1])


def run_client(base_url: str, client: Client, requests: int, start: threading.Barrier | None = None) -> None:
    parts = urlsplit(base_url)
    pool = urllib3.HTTPConnectionPool(
        parts.hostname, parts.port, maxsize=1, timeout=urllib3.Timeout(connect=10, read=120)
    )
    if start is not None:
        start.wait(60)
    for position in range(requests):
        kind = CYCLE[position % len(CYCLE)]
        step(pool, client, kind)
    pool.close()


def step(pool: urllib3.HTTPConnectionPool, client: Client, kind: str) -> None:
    if kind in ("post", "post-keyed"):
        body, headers = client.event(), {}
        if kind == "post-keyed":
            headers["Idempotency-Key"] = f"{client.entity_id}-{uuid.uuid4().hex}"
        answer = _send(pool, client, kind, "POST", "/events", body, **headers)
        stored = _expect(client, kind, answer, 201)
        if stored is not None and answer is not None:
            client.expected_rows += 1
            client.event_ids.append(stored["event_id"])
            if headers:
                client._last_keyed = (headers["Idempotency-Key"], body, answer[1])
    elif kind == "post-keyed-again":
        if client._last_keyed is None:
            return
        key, body, text = client._last_keyed
        answer = _send(pool, client, kind, "POST", "/events", body, **{"Idempotency-Key": key})
        if answer is not None and answer != (201, text):
            client.problems.append(f"{kind}: not the first answer: {answer[0]} {answer[1][:200]}")
    elif kind == "batch":
        events = [client.event() for _ in range(BATCH_SIZE)]
        results = _expect(client, kind, _send(pool, client, kind, "POST", "/events/batch", {"events": events}), 200)
        for result in (results or {}).get("results", []):
            if result["status"] == "ACCEPTED":
                client.expected_rows += 1
                client.event_ids.append(result["event_id"])
            else:
                client.problems.append(f"{kind}: item {result}")
    elif kind == "get-events":
        query = urlencode({"entity_id": client.entity_id, "limit": 50, **WINDOW})
        _expect(client, kind, _send(pool, client, kind, "GET", f"/events?{query}"), 200)
    elif kind == "start-replay":
        request = {"entity_id": client.entity_id, **WINDOW, "dry_run": True}
        started = _expect(client, kind, _send(pool, client, kind, "POST", "/replays", request), 202)
        if started is not None:
            client._replay_id = started["replay_id"]
    elif kind == "get-replay" and client._replay_id is not None:
        path = f"/replays/{quote(client._replay_id, safe='')}"
        _expect(client, kind, _send(pool, client, kind, "GET", path), 200)


@dataclass
class LoadResult:
    clients: list[Client]
    seconds: float

    @property
    def requests(self) -> int:
        return sum(sum(client.statuses.values()) for client in self.clients) + len(self.connection_errors)

    @property
    def connection_errors(self) -> list[str]:
        return [error for client in self.clients for error in client.connection_errors]

    @property
    def server_errors(self) -> int:
        return sum(n for client in self.clients for status, n in client.statuses.items() if status >= 500)

    @property
    def problems(self) -> list[str]:
        return [problem for client in self.clients for problem in client.problems]

    def latencies(self) -> list[float]:
        return sorted(value for client in self.clients for values in client.latencies.values() for value in values)

    def percentile(self, fraction: float) -> float:
        values = self.latencies()
        if not values:
            return float("nan")
        return values[min(len(values) - 1, int(fraction * len(values)))]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies()) if self.latencies() else float("nan")


def run_load(base_url: str, clients: int, requests_per_client: int, run: str | None = None) -> LoadResult:
    """`clients` threads connecting at once, each sending `requests_per_client` requests."""
    run = run or uuid.uuid4().hex[:8]
    everyone = [Client(number, run) for number in range(clients)]
    barrier = threading.Barrier(clients)
    work: Callable[[Client], None] = lambda client: run_client(base_url, client, requests_per_client, barrier)  # noqa: E731
    threads = [threading.Thread(target=work, args=(client,), name=f"load-{client.number}") for client in everyone]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return LoadResult(everyone, time.perf_counter() - started)
