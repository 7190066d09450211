"""`evreplay local` under 64 concurrent clients (each on its own connection, all connecting at once):
every request gets an HTTP answer, none a 5xx, and every event stored is in the index exactly once.

Bounded: 64 clients x EVREPLAY_LOAD_REQUESTS requests (default 10, one full cycle of tests/e2e/load.py,
~640 requests, ~35 s on 2 shared cores); set it higher for a longer soak. Speed figures come from
benchmarks/bench_local_api.py, not from here.
"""

from __future__ import annotations

import os

from tests.e2e.load import CYCLE, run_load
from tests.stacks import RunningStack

CLIENTS = 64
REQUESTS_PER_CLIENT = int(os.environ.get("EVREPLAY_LOAD_REQUESTS", str(len(CYCLE))))


def test_sixty_four_concurrent_clients_get_answers_and_every_event_is_stored_once(local_stack: RunningStack) -> None:
    # WHEN 64 clients connect at once and each sends the mixed requests
    result = run_load(local_stack.api_url, CLIENTS, REQUESTS_PER_CLIENT)

    # THEN every request got an HTTP answer, no 5xx, each one what the contract says
    assert result.connection_errors == [], result.connection_errors[:5]
    assert result.server_errors == 0
    assert result.problems == [], result.problems[:5]
    assert result.requests == CLIENTS * REQUESTS_PER_CLIENT
    # AND each client's stored events are in the index exactly once (the idempotent retries added none)
    for client in result.clients:
        rows = local_stack.api.pages("/events", entity_id=client.entity_id, include_duplicates="true")
        assert len(rows) == client.expected_rows, client.entity_id
        assert sorted(row["event_id"] for row in rows) == sorted(client.event_ids), client.entity_id
        assert {row["status"] for row in rows} == {"ACCEPTED"}, client.entity_id
