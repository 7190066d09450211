"""docs/design.md §4.13 pacing: `max_events_per_second` holds the destination to at most 1.1x the rate in any
10-second window, measured from the destination's own receive times (SQS SentTimestamp), never from the
test's wall time; the waits are PaceWait states in the execution's history; the result says the rate achieved."""

from __future__ import annotations

from typing import Any

from tests.builders import WINDOW, event
from tests.stacks import Workflow, deploy


def busiest_window(received: list[dict[str, Any]], seconds: float = 10.0) -> int:
    """The most messages the queue received in any `seconds`-long window."""
    times = sorted(int(m["Attributes"]["SentTimestamp"]) / 1000 for m in received)
    busiest, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= seconds:
            start += 1
        busiest = max(busiest, end - start + 1)
    return busiest


def waits(flow: Workflow, name: str) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in flow.history(name) if e["type"] == "WaitStateEntered"]


def test_a_paced_replay_stays_within_the_bound_and_reports_its_rate(workflow, destinations):
    flow: Workflow = deploy(workflow, destinations)
    rate = 10
    # GIVEN 130 events: at 10 a second, 13 seconds of sending, so some 10-second windows are full
    flow.ingest([event("u1", f"2025-12-28T10:{m // 60:02d}:{m % 60:02d}Z", f"e{m}") for m in range(130)])

    replay = flow.replay("paced", entity_id="u1", destination="orders", max_events_per_second=rate, **WINDOW)

    assert replay.status == "SUCCEEDED", replay.last
    received = destinations.receive(destinations.orders)
    assert len(received) == 130
    # THEN no 10-second window of receive times holds more than 1.1 x 10 s x the rate
    assert busiest_window(received) <= 1.1 * rate * 10
    # AND the pacing is visible: one PaceWait per page but the last, each page at most a bucket
    assert waits(flow, "paced") == ["PaceWait"] * 12
    assert 0.5 * rate <= replay.output["achieved_events_per_second"] <= 1.1 * rate


def test_a_paced_stream_replay_shares_the_rate_among_its_workers(workflow, destinations):
    flow: Workflow = deploy(workflow, destinations)
    # GIVEN 4 entities of 9 events; 6 a second with at most 3 workers: 2 a second each
    flow.ingest([event(f"user-{e}", f"2025-12-28T10:00:{n:02d}Z", f"e{n}") for n in range(9) for e in range(4)])

    replay = flow.replay(
        "paced-stream", source="ios_app", destination="orders", max_events_per_second=6, max_concurrency=3, **WINDOW
    )

    assert replay.status == "SUCCEEDED", replay.last
    received = destinations.receive(destinations.orders)
    assert len(received) == 36
    # THEN any window of w seconds holds at most the rate for w seconds plus one bucket per worker
    assert busiest_window(received, 3.0) <= 6 * 3 + 6
    assert replay.output["achieved_events_per_second"] <= 6 * 1.1
