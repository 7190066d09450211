"""docs/design.md §4.13 pause and resume, through the API over the real state machine: a paused replay stops at
a page boundary and shows PAUSED; resumed (and a FAILED one resumed) under the same replay_id it delivers
exactly the (replay_id, seq) set of an uninterrupted replay, none missing; 409 for running or finished ones."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from tests.builders import WINDOW, event
from tests.faults import FailEntries
from tests.stacks import Workflow


def api(flow: Workflow, method: str, path: str, body: Any = None) -> Any:
    return flow.stack.gateway.request(method, path, body)


def start(flow: Workflow, body: dict[str, Any]) -> str:
    response = api(flow, "POST", "/replays", body)
    assert response.status == 202, response.body
    return str(response.json()["replay_id"])


def status(flow: Workflow, replay_id: str) -> dict[str, Any]:
    response = api(flow, "GET", f"/replays/{replay_id}")
    assert response.status == 200, response.body
    return dict(response.json())


def until(flow: Workflow, replay_id: str, done: Any, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while not done(view := status(flow, replay_id)):
        assert time.monotonic() < deadline, view
        time.sleep(0.1)
    return view


def seqs(messages: list[dict[str, Any]]) -> Counter[tuple[str, int]]:
    return Counter((m["replay_id"], m["seq"]) for m in messages)


def bodies(messages: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {m["seq"]: {k: v for k, v in m.items() if k != "replay_id"} for m in messages}


def test_a_paused_replay_stops_at_a_page_and_resumes_to_the_uninterrupted_set(workflow):
    flow = workflow(ReplayPageSize=10)
    flow.ingest([event("u1", f"2025-12-28T10:{m // 60:02d}:{m % 60:02d}Z", f"e{m}") for m in range(60)])
    uninterrupted = flow.replay("whole", entity_id="u1", **WINDOW).messages
    # GIVEN a paced replay (10 a second: a page a second) under way
    replay_id = start(flow, {"entity_id": "u1", **WINDOW, "max_events_per_second": 10})
    until(flow, replay_id, lambda v: (v.get("progress") or {}).get("enqueued", 0) >= 10)

    # WHEN it is paused
    assert api(flow, "POST", f"/replays/{replay_id}/pause").status == 202
    paused = until(flow, replay_id, lambda v: v["status"] != "RUNNING")

    # THEN it stops at a page boundary, part of it sent, and says PAUSED (also in the listing)
    assert paused["status"] == "PAUSED", paused
    sent_before = flow.drain()
    assert 10 <= len(sent_before) < 60 and len(sent_before) % 10 == 0
    assert paused["progress"]["enqueued"] == len(sent_before)
    assert api(flow, "POST", f"/replays/{replay_id}/resume").status == 202  # AND resumes
    assert api(flow, "POST", f"/replays/{replay_id}/resume").status == 409  # (a running one: 409)
    finished = until(flow, replay_id, lambda v: v["status"] not in ("RUNNING", "PAUSED"))

    # THEN together: the uninterrupted replay's messages under this replay_id, each once
    assert finished["status"] == "SUCCEEDED", finished
    messages = sent_before + flow.drain()
    assert seqs(messages) == Counter((replay_id, seq) for seq in range(1, 61))
    assert bodies(messages) == bodies(uninterrupted)
    assert finished["result"]["enqueued"] == 60 and len(finished["executions"]) == 2
    assert api(flow, "POST", f"/replays/{replay_id}/resume").status == 409  # a succeeded one: 409
    assert api(flow, "POST", f"/replays/{replay_id}/pause").status == 409


def test_a_paused_stream_replay_resumes_every_worker_where_it_stopped(workflow):
    flow = workflow(ReplayPageSize=10)
    flow.ingest([event(f"user-{e}", f"2025-12-28T10:00:{n:02d}Z", f"e{n}") for n in range(20) for e in range(4)])
    uninterrupted = flow.replay("whole-stream", source="ios_app", limit=1000, **WINDOW).messages
    # GIVEN a paced stream replay (8 a second over 2 workers) under way
    replay_id = start(
        flow, {"source": "ios_app", "limit": 1000, "max_concurrency": 2, "max_events_per_second": 8, **WINDOW}
    )
    until(flow, replay_id, lambda v: (v.get("progress") or {}).get("enqueued", 0) >= 8)

    assert api(flow, "POST", f"/replays/{replay_id}/pause").status == 202
    paused = until(flow, replay_id, lambda v: v["status"] != "RUNNING")

    assert paused["status"] == "PAUSED", paused
    sent_before = flow.drain()
    assert 0 < len(sent_before) < 80
    assert api(flow, "POST", f"/replays/{replay_id}/resume").status == 202
    finished = until(flow, replay_id, lambda v: v["status"] not in ("RUNNING", "PAUSED"), timeout=90)

    assert finished["status"] == "SUCCEEDED", finished
    messages = sent_before + flow.drain()
    assert set(seqs(messages)) == {(replay_id, seq) for seq in range(1, 81)}
    assert bodies(messages) == bodies(uninterrupted)
    assert finished["result"]["enqueued"] == 80


def test_a_failed_replay_resumes_to_the_uninterrupted_set(workflow, fast_retries):
    flow = workflow(ReplayPageSize=10)
    flow.ingest([event("u1", f"2025-12-28T10:{m // 60:02d}:{m % 60:02d}Z", f"e{m}") for m in range(45)])
    uninterrupted = flow.replay("whole", entity_id="u1", **WINDOW).messages
    # GIVEN the destination refuses seq 25 until it is back up: the replay fails on its third page
    down = {"now": True}
    faults = FailEntries(lambda seq, attempt: seq == 25 and down["now"])
    faults.install()
    replay_id = start(flow, {"entity_id": "u1", **WINDOW})
    failed = until(flow, replay_id, lambda v: v["status"] != "RUNNING", timeout=90)
    assert failed["status"] == "FAILED", failed

    # WHEN it is back up and the replay is resumed
    down["now"] = False
    assert api(flow, "POST", f"/replays/{replay_id}/resume").status == 202
    finished = until(flow, replay_id, lambda v: v["status"] == "SUCCEEDED" or v["status"] == "FAILED", timeout=90)

    # THEN every seq arrived (the failed page's others may have arrived twice, same seqs)
    assert finished["status"] == "SUCCEEDED", finished
    messages = flow.drain()
    assert set(seqs(messages)) == {(replay_id, seq) for seq in range(1, 46)}
    assert bodies(messages) == bodies(uninterrupted)
    assert finished["result"]["enqueued"] == 45
