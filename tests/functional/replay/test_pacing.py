"""docs/design.md §4.13 pacing: `max_events_per_second` holds the destination to at most 1.1x the rate in any
10-second window, measured from the destination's own receive times (SQS SentTimestamp), never from the
test's wall time; the waits are PaceWait states in the execution's history; the result says the rate achieved.

The bucket holds one second's worth and refills only between sends, so any W-second window holds at most
(W + 1) s of the rate (1.1x for the contract's 10 s). A full window needs more than W s of sending, each
second of it a real PaceWait: the tests sample 3-second windows, whose bound is the same bucket's."""

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


def window_bound(rate: float, seconds: float) -> float:
    """The most a bucket of one second's worth, refilled at `rate` between sends, lets through in any
    `seconds`-long window: a full bucket at its start plus the refill during it."""
    return rate * (seconds + 1)


def test_a_paced_replay_stays_within_the_bound_and_reports_its_rate(workflow, destinations):
    flow: Workflow = deploy(workflow, destinations)
    rate, window, events = 20, 3.0, 120
    # GIVEN 120 events: at 20 a second, 6 buckets over 5 seconds of sending, so some 3-second windows are full
    flow.ingest([event("u1", f"2025-12-28T10:{m // 60:02d}:{m % 60:02d}Z", f"e{m}") for m in range(events)])

    replay = flow.replay("paced", entity_id="u1", destination="orders", max_events_per_second=rate, **WINDOW)

    assert replay.status == "SUCCEEDED", replay.last
    received = destinations.receive(destinations.orders)
    assert len(received) == events
    # THEN no 3-second window of receive times holds more than (3 + 1) s x the rate
    assert busiest_window(received, window) <= window_bound(rate, window)
    # AND the pacing is visible: one PaceWait per page but the last, each page at most a bucket
    assert waits(flow, "paced") == ["PaceWait"] * 5
    # AND the rate achieved is at most what the bucket allows over the span sent in (events <= rate x
    # (span + 1 s)): with 6 buckets, 6/5 of the rate
    assert 0.5 * rate <= replay.output["achieved_events_per_second"] <= rate * events / (events - rate)


def test_a_paced_stream_replay_shares_the_rate_among_its_workers(workflow, destinations):
    flow: Workflow = deploy(workflow, destinations)
    # GIVEN 4 entities of 5 events; 6 a second with at most 3 workers: 2 a second each, so the fourth
    # entity's work item takes the place of a finished one
    flow.ingest([event(f"user-{e}", f"2025-12-28T10:00:{n:02d}Z", f"e{n}") for n in range(5) for e in range(4)])

    replay = flow.replay(
        "paced-stream", source="ios_app", destination="orders", max_events_per_second=6, max_concurrency=3, **WINDOW
    )

    assert replay.status == "SUCCEEDED", replay.last
    received = destinations.receive(destinations.orders)
    assert len(received) == 20
    # THEN any window of w seconds holds at most the rate for w seconds plus one bucket per worker
    assert busiest_window(received, 3.0) <= 6 * 3 + 6
    assert replay.output["achieved_events_per_second"] <= 6 * 1.1
