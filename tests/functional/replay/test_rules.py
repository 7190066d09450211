"""One test per rule of docs/design.md §4, each running the real state machine over events stored through
the ingest API and reading the messages back off the replay queue, checked against the plain-Python
reference (tests/replay_reference.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.builders import WINDOW, event
from tests.replay_reference import Occurrence, reference_replay
from tests.stacks import Workflow

MESSAGE_FIELDS = ["replay_id", "seq", "event_id", "entity_id", "event_time", "s3_bucket", "s3_key"]


def by_seq(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ordered = sorted(messages, key=lambda message: message["seq"])
    assert [m["seq"] for m in ordered] == list(range(1, len(ordered) + 1)), "seq is 1..n, each once"
    return ordered


def post_all(flow: Workflow, bodies: list[dict[str, Any]]) -> list[Occurrence]:
    """POST each event in turn (arrival order = list order) and describe what was stored."""
    stored = []
    for arrival, body in enumerate(bodies):
        answer = flow.post(body)
        stored.append(
            Occurrence(
                body["entity_id"], answer["event_id"], body["event_time"], arrival, flow.stack.bucket, answer["s3_key"]
            )
        )
    return stored


def expect(
    stored: list[Occurrence], replay_id: str, request: dict[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    return reference_replay(
        stored,
        replay_id,
        request["entity_id"],
        request["start_time"],
        request["end_time"],
        request.get("include_duplicates", False),
        request.get("limit", 500),
    )


def test_window_is_half_open_at_both_edges(workflow):
    flow = workflow()
    # GIVEN events just before, exactly at (written with an offset), inside, just before and exactly at the end
    stored = post_all(
        flow,
        [
            event("u1", "2025-12-27T23:59:59.999999Z", "before"),
            event("u1", "2025-12-28T01:00:00+01:00", "at_start"),
            event("u1", "2025-12-28T12:00:00Z", "inside"),
            event("u1", "2025-12-28T23:59:59.999999Z", "last"),
            event("u1", "2025-12-28T19:00:00-05:00", "at_end"),
        ],
    )
    request = {"entity_id": "u1", **WINDOW}

    # WHEN the day [2025-12-28, 2025-12-29) is replayed, then the next day
    day = flow.replay("day", **request)
    next_day = flow.replay(
        "next-day", entity_id="u1", start_time="2025-12-29T00:00:00Z", end_time="2025-12-30T00:00:00Z"
    )

    # THEN the start is included and the end excluded, so back-to-back windows neither overlap nor miss
    assert [m["event_id"] for m in by_seq(day.messages)] == ["at_start", "inside", "last"]
    assert [m["event_id"] for m in by_seq(next_day.messages)] == ["at_end"]
    expected, result = expect(stored, "day", request)
    assert by_seq(day.messages) == expected
    assert day.result == {**result, "pages": 1}


def test_window_bounds_given_with_offsets_mean_the_same_instants(workflow):
    flow = workflow()
    post_all(flow, [event("u1", "2025-12-28T00:00:00Z", "at_start"), event("u1", "2025-12-29T00:00:00Z", "at_end")])

    replay = flow.replay(
        "offsets", entity_id="u1", start_time="2025-12-28T09:00:00+09:00", end_time="2025-12-28T16:00:00-08:00"
    )

    assert [m["event_id"] for m in replay.messages] == ["at_start"]
    assert replay.output["request"]["start_time"] == "2025-12-28T00:00:00.000000Z"
    assert replay.output["request"]["end_time"] == "2025-12-29T00:00:00.000000Z"


def test_order_is_event_time_then_event_id_then_arrival_across_offsets(workflow):
    flow = workflow()
    # GIVEN events posted out of order, in different offsets, some at the same instant
    stored = post_all(
        flow,
        [
            event("u1", "2025-12-28T07:30:00-01:00", "b"),  # 08:30Z
            event("u1", "2025-12-28T10:00:00+02:00", "a"),  # 08:00Z
            event("u1", "2025-12-28T09:00:00Z", "z", n=1),  # 09:00Z
            event("u1", "2025-12-28T10:00:00+01:00", "m"),  # 09:00Z, same instant, smaller id
            event("u1", "2025-12-28T08:15:00.000000Z", "c"),  # 08:15Z
            event("u1", "2025-12-28T04:00:00-05:00", "z", n=2),  # 09:00Z again: a later arrival of z
        ],
    )
    request = {"entity_id": "u1", **WINDOW, "include_duplicates": True}

    replay = flow.replay("order", **request)

    messages = by_seq(replay.messages)
    assert [m["event_id"] for m in messages] == ["a", "c", "b", "m", "z", "z"]
    assert [m["event_time"][11:19] for m in messages] == [
        "08:00:00",
        "08:15:00",
        "08:30:00",
        "09:00:00",
        "09:00:00",
        "09:00:00",
    ]
    # the two arrivals of z in arrival order: the first-posted object first
    assert [m["s3_key"] for m in messages[4:]] == [stored[2].s3_key, stored[5].s3_key]
    assert messages == expect(stored, "order", request)[0]


def duplicate_scenario(flow: Workflow) -> list[Occurrence]:
    """35 events (e00..e34, one a minute) over pages of 10 rows, and four later arrivals:
    e02 again at the same time (same page), e05 again after e14 (another page), e01 again after e34
    (far apart), and e30 again *before* e00 (so its later arrival comes first in replay order)."""
    bodies = [event("u1", f"2025-12-28T10:{m:02d}:00Z", f"e{m:02d}", v=1) for m in range(35)]
    bodies += [
        event("u1", "2025-12-28T10:02:00Z", "e02", v=2),
        event("u1", "2025-12-28T10:14:30Z", "e05", v=2),
        event("u1", "2025-12-28T10:59:00Z", "e01", v=2),
        event("u1", "2025-12-28T09:00:00Z", "e30", v=2),
    ]
    return post_all(flow, bodies)


@pytest.mark.parametrize("include_duplicates", [False, True])
def test_duplicates_in_the_same_page_in_other_pages_and_far_apart(workflow, include_duplicates):
    flow = workflow(ReplayPageSize=10)
    stored = duplicate_scenario(flow)
    request = {"entity_id": "u1", **WINDOW, "include_duplicates": include_duplicates}

    replay = flow.replay("dups", **request)

    expected, result = expect(stored, "dups", request)
    assert by_seq(replay.messages) == expected
    assert {k: replay.result[k] for k in result} == result
    assert replay.result["pages"] >= 4, "39 rows in pages of at most 10"
    ids = [m["event_id"] for m in by_seq(replay.messages)]
    if include_duplicates:
        assert len(ids) == 39 and replay.result["duplicates_skipped"] == 0
    else:
        assert len(ids) == len(set(ids)) == 35 and replay.result["duplicates_skipped"] == 4
        # e30's later arrival is earlier in replay order: it is the one replayed
        (e30,) = [m for m in replay.messages if m["event_id"] == "e30"]
        assert e30["s3_key"] == stored[-1].s3_key and e30["seq"] == 1


def test_limit_cutting_inside_a_page_is_truncated(workflow):
    flow = workflow(ReplayPageSize=10)
    stored = post_all(flow, [event("u1", f"2025-12-28T10:{m:02d}:00Z", f"e{m:02d}") for m in range(25)])
    request = {"entity_id": "u1", **WINDOW, "limit": 13}

    replay = flow.replay("limit-inside", **request)

    expected, result = expect(stored, "limit-inside", request)
    assert by_seq(replay.messages) == expected
    assert [m["event_id"] for m in expected] == [f"e{m:02d}" for m in range(13)]
    assert replay.result == {**result, "pages": 2} and result["truncated"] is True


@pytest.mark.parametrize(("events", "truncated"), [(25, True), (20, False)])
def test_limit_exactly_at_a_page_edge(workflow, events, truncated):
    # GIVEN pages of 10 rows and a limit of 20: the limit is reached on the last row of page 2
    flow = workflow(ReplayPageSize=10)
    stored = post_all(flow, [event("u1", f"2025-12-28T10:{m:02d}:00Z", f"e{m:02d}") for m in range(events)])
    request = {"entity_id": "u1", **WINDOW, "limit": 20}

    replay = flow.replay("limit-edge", **request)

    # THEN 20 messages, and `truncated` says whether anything was left (found by one more page)
    expected, result = expect(stored, "limit-edge", request)
    assert by_seq(replay.messages) == expected and len(expected) == 20
    assert {k: replay.result[k] for k in result} == result and result["truncated"] is truncated
    # A third page finds out what follows the limit. (When nothing follows, moto sends no
    # LastEvaluatedKey after page 2; DynamoDB may, which costs one more, empty, page.)
    assert replay.result["pages"] == (3 if truncated else 2)


def test_limit_followed_only_by_duplicates_is_not_truncated(workflow):
    flow = workflow(ReplayPageSize=10)
    bodies = [event("u1", f"2025-12-28T10:{m:02d}:00Z", f"e{m}", v=1) for m in range(5)]
    bodies += [event("u1", f"2025-12-28T11:{m:02d}:00Z", f"e{m}", v=2) for m in range(5)]
    stored = post_all(flow, bodies)
    request = {"entity_id": "u1", **WINDOW, "limit": 5}

    replay = flow.replay("limit-dups", **request)

    expected, result = expect(stored, "limit-dups", request)
    assert by_seq(replay.messages) == expected
    assert {k: replay.result[k] for k in result} == result
    assert result == {"scanned": 5, "duplicates_skipped": 0, "enqueued": 5, "truncated": False}


def test_dry_run_sends_nothing_and_counts_the_same(workflow):
    flow = workflow(ReplayPageSize=10)
    duplicate_scenario(flow)
    request = {"entity_id": "u1", **WINDOW, "limit": 30}

    dry = flow.replay("dry", **request, dry_run=True)
    assert dry.messages == [] and flow.sqs_calls.send_message_batch == 0

    real = flow.replay("real", **request)

    assert len(real.messages) == flow.sqs_calls.entries == 30
    assert dry.result == real.result
    assert real.result["enqueued"] == 30 and real.result["truncated"] is True
    assert dry.output["request"]["dry_run"] is True


def test_empty_window(workflow):
    flow = workflow()
    post_all(flow, [event("u1", "2025-12-27T10:00:00Z", "before"), event("u2", "2025-12-28T10:00:00Z", "other")])

    replay = flow.replay("empty", entity_id="u1", **WINDOW)

    assert replay.status == "SUCCEEDED"
    assert replay.messages == [] and flow.sqs_calls.send_message_batch == 0
    assert replay.result == {"scanned": 0, "duplicates_skipped": 0, "enqueued": 0, "truncated": False, "pages": 1}


def test_message_bodies_are_exactly_the_contract(workflow):
    flow = workflow()
    answers = [flow.post(event("user_123", f"2025-12-28T{h:02d}:30:00.250+01:00", amount=h)) for h in range(1, 13)]

    replay = flow.replay("bodies", entity_id="user_123", **WINDOW)

    messages = by_seq(replay.messages)
    assert len(messages) == 12
    for message, answer in zip(messages, answers, strict=True):
        assert list(message) == MESSAGE_FIELDS
        assert message == {
            "replay_id": "bodies",
            "seq": message["seq"],
            "event_id": answer["event_id"],
            "entity_id": "user_123",
            "event_time": answer["event_time"],
            "s3_bucket": flow.stack.bucket,
            "s3_key": answer["s3_key"],
        }
        raw = json.loads(flow.stack.s3.get_object(Bucket=message["s3_bucket"], Key=message["s3_key"])["Body"].read())
        assert (raw["event_id"], raw["event_time"]) == (message["event_id"], message["event_time"])
    assert flow.sqs_calls.send_message_batch == 2 and flow.sqs_calls.entries == 12
