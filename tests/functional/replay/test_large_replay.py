"""A replay of more than 2 500 stored events over many pages, with duplicates near and far, checked
message by message against the plain-Python reference; and what it costs (docs/design.md §4.9-4.10):
history events and state transitions, SQS calls, the largest state payload."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from evreplay.core.event_ids import payload_sha256

from tests.builders import WINDOW, event
from tests.replay_reference import Occurrence, reference_replay
from tests.stacks import Replay, Workflow

DAY = datetime(2025, 12, 28, tzinfo=UTC)
OFFSETS = [timedelta(0), timedelta(hours=1), timedelta(hours=-5), timedelta(hours=5, minutes=30)]

# docs/design.md §4.10 and Step Functions' quotas
MAX_SQS_CALLS_PER_1000 = 101
MAX_TRANSITIONS_PER_1000 = 20
MAX_HISTORY_EVENTS = 25_000
MAX_PAYLOAD_BYTES = 256 * 1024


def at(moment: datetime, offset: timedelta) -> str:
    """`moment` written in another UTC offset, as different producers would."""
    return moment.astimezone(timezone(offset)).isoformat(timespec="microseconds")


def big_window() -> list[dict[str, Any]]:
    """2 400 events 30 s apart over the day, each payload unique (it says which post it is), then
    150 later arrivals of existing event_ids: 50 at the same instant (same page), 50 forty minutes
    later (other pages), 50 across the day (far apart; some earlier than their first arrival), and
    50 events just outside the window."""
    bodies = []
    for n in range(2400):
        moment = DAY + timedelta(seconds=30 * n)
        bodies.append(event("big", at(moment, OFFSETS[n % 4]), f"ev-{n:05d}", n=n))
    for k in range(50):
        n = 7 + 47 * k
        bodies.append(event("big", bodies[n]["event_time"], f"ev-{n:05d}", n=2400 + k))
        n = 11 + 41 * k
        bodies.append(
            event("big", at(DAY + timedelta(seconds=30 * n, minutes=40), OFFSETS[k % 4]), f"ev-{n:05d}", n=2450 + k)
        )
        n = 2399 - 37 * k
        bodies.append(
            event("big", at(DAY + timedelta(hours=(k * 7) % 24, seconds=13), OFFSETS[k % 4]), f"ev-{n:05d}", n=2500 + k)
        )
    for k in range(25):
        bodies.append(event("big", at(DAY - timedelta(seconds=k + 1), OFFSETS[k % 4]), f"before-{k}", n=2550 + k))
        bodies.append(event("big", at(DAY + timedelta(days=1, seconds=k), OFFSETS[k % 4]), f"after-{k}", n=2575 + k))
    return bodies


def stored(flow: Workflow, bodies: list[dict[str, Any]]) -> list[Occurrence]:
    """What the index holds, matched to each post by its unique payload (arrival = post order)."""
    by_payload = {row["payload_sha256"]: row for row in flow.index_rows()}
    assert len(by_payload) == len(bodies)
    occurrences = []
    for arrival, body in enumerate(bodies):
        row = by_payload[payload_sha256(body["payload"])]
        occurrences.append(
            Occurrence("big", body["event_id"], body["event_time"], arrival, row["s3_bucket"], row["s3_key"])
        )
    return occurrences


def measure(flow: Workflow, replay: Replay, sqs_calls: int) -> dict[str, Any]:
    """Cost of one replay, from its executions' histories and the SQS calls counted at botocore."""
    events: list[dict[str, Any]] = []
    for execution in replay.executions:
        events.extend(flow.history(execution["name"]))
    transitions = sum(1 for e in events if e["type"].endswith("StateEntered"))
    largest = 0
    for e in events:
        for details in e.values():
            if isinstance(details, dict):
                for name in ("input", "output", "parameters"):
                    if isinstance(details.get(name), str):
                        largest = max(largest, len(details[name].encode("utf-8")))
    enqueued = replay.result["enqueued"]
    per_1000 = 1000 / max(enqueued, 1)
    return {
        "enqueued": enqueued,
        "pages": replay.result["pages"],
        "executions": len(replay.executions),
        "history_events": len(events),
        "state_transitions": transitions,
        "sqs_send_calls": sqs_calls,
        "history_events_per_1000": round(len(events) * per_1000, 1),
        "state_transitions_per_1000": round(transitions * per_1000, 1),
        "sqs_calls_per_1000": round(sqs_calls * per_1000, 1),
        "largest_state_payload_bytes": largest,
    }


def check_budget(cost: dict[str, Any], transitions: bool = True) -> None:
    """docs/design.md §4.10's budget. Transitions are ~2 per page, so their budget holds for the template's
    page size (1 000 rows), not for the small pages a test uses to get many of them."""
    assert cost["sqs_calls_per_1000"] <= MAX_SQS_CALLS_PER_1000, cost
    if transitions:
        assert cost["state_transitions_per_1000"] <= MAX_TRANSITIONS_PER_1000, cost
    assert cost["history_events"] / cost["executions"] < MAX_HISTORY_EVENTS, cost
    assert cost["largest_state_payload_bytes"] < MAX_PAYLOAD_BYTES / 50, "the state stays tiny: no rows in it"


def test_large_replay_matches_the_reference_message_by_message(workflow, record_property):
    # GIVEN 2 600 posts through the ingest API: 2 400 events, 150 duplicate arrivals, 50 outside the window
    flow = workflow(ReplayPageSize=100)
    bodies = big_window()
    flow.ingest(bodies)
    occurrences = stored(flow, bodies)
    request = {"entity_id": "big", **WINDOW, "limit": 100_000}

    # WHEN it is replayed in pages of 100 rows, duplicates skipped
    replay = flow.replay("big-dedup", **request)

    # THEN every message is the reference's, in order, once
    expected, result = reference_replay(occurrences, "big-dedup", "big", **WINDOW, limit=100_000)
    assert len(expected) == 2400 and result["duplicates_skipped"] == 150
    assert sorted(replay.messages, key=lambda m: m["seq"]) == expected
    assert {k: replay.result[k] for k in result} == result
    assert replay.result["pages"] >= 26
    cost = measure(flow, replay, flow.sqs_calls.send_message_batch)
    check_budget(cost, transitions=False)
    record_property("cost_pages_of_100", json.dumps(cost))
    print("\nMEASURED pages of 100, dedup:", json.dumps(cost))

    # AND with the template's default page (1 000 rows), every occurrence and a limit that cuts it
    flow.configure()
    flow.sqs_calls.send_message_batch = 0
    request = {"entity_id": "big", **WINDOW, "include_duplicates": True, "limit": 2500}
    replay = flow.replay("big-all", **request)
    expected, result = reference_replay(occurrences, "big-all", "big", **WINDOW, include_duplicates=True, limit=2500)
    assert len(expected) == 2500 and result["truncated"] is True
    assert sorted(replay.messages, key=lambda m: m["seq"]) == expected
    assert {k: replay.result[k] for k in result} == result
    assert replay.result["pages"] == 3
    cost = measure(flow, replay, flow.sqs_calls.send_message_batch)
    check_budget(cost)
    record_property("cost_pages_of_1000", json.dumps(cost))
    print("MEASURED pages of 1000, all occurrences, limit 2500:", json.dumps(cost))
