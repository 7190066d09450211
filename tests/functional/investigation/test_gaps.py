"""GET /gaps: the empty UTC hours or days of one entity, found by a skip-scan whose cost grows with
the non-empty buckets, not with the events."""

from __future__ import annotations

from tests.builders import D_AFTER, D_BEFORE, D
from tests.stacks import get, partitions


def gaps(dataset, **query: str):
    response, requests = get(dataset.stack, "/gaps", **query)
    assert response.status == 200, response.body
    # Every request is a one-item Query of the entity's own partition of the table
    assert partitions(requests) == {("table", f"E#{query['entity_id']}")}
    assert {request.params["Limit"] for request in requests} == {1}
    return response.json(), requests


def test_gaps_of_one_entity_in_hours_and_days(dataset):
    # WHEN user_c's day D is split in hours
    body, requests = gaps(dataset, entity_id="user_c", start_time=f"{D}T00:00:00Z", end_time=f"{D_AFTER}T00:00:00Z")

    # THEN the missing hour and the hour user_c skipped are its gaps
    assert body == {
        "entity_id": "user_c",
        "start_time": f"{D}T00:00:00.000000Z",
        "end_time": f"{D_AFTER}T00:00:00.000000Z",
        "bucket": "hour",
        "buckets": 24,
        "empty_buckets": 2,
        "gaps": [
            {"start": f"{D}T05:00:00.000000Z", "end": f"{D}T06:00:00.000000Z", "buckets": 1},
            {"start": f"{D}T14:00:00.000000Z", "end": f"{D}T15:00:00.000000Z", "buckets": 1},
        ],
    }
    # AND it cost one Query per non-empty hour (22; the last hour is non-empty, so no final miss),
    # one item each: user_c's other events and every other entity are never read
    assert (len(requests), sum(request.items_read for request in requests)) == (22, 22)

    # WHEN the window is given with an offset and starts before the entity's first event
    body, requests = gaps(
        dataset, entity_id="user_a", start_time=f"{D}T00:00:00+02:00", end_time=f"{D}T08:00:00Z", bucket="hour"
    )

    # THEN consecutive empty hours merge into one gap; hours 00-04, 06 and 07 hold events
    assert (body["start_time"], body["buckets"], body["empty_buckets"]) == (f"{D_BEFORE}T22:00:00.000000Z", 10, 3)
    assert body["gaps"] == [
        {"start": f"{D_BEFORE}T22:00:00.000000Z", "end": f"{D}T00:00:00.000000Z", "buckets": 2},
        {"start": f"{D}T05:00:00.000000Z", "end": f"{D}T06:00:00.000000Z", "buckets": 1},
    ]
    assert len(requests) == 7

    # WHEN the window is not aligned to hours: [04:30, 06:15) spans the buckets 04, 05 and 06
    body, requests = gaps(dataset, entity_id="user_a", start_time=f"{D}T04:30:00Z", end_time=f"{D}T06:15:00Z")

    # THEN a gap is clipped to the window: a-04 (04:10) is before it, a-06 (06:10) inside it
    assert (body["buckets"], body["empty_buckets"]) == (3, 2)
    assert body["gaps"] == [{"start": f"{D}T04:30:00.000000Z", "end": f"{D}T06:00:00.000000Z", "buckets": 2}]
    assert len(requests) == 1

    # WHEN the late batch's entity is split in days
    body, requests = gaps(
        dataset, entity_id="user_b", start_time=f"{D_BEFORE}T00:00:00Z", end_time="2025-06-03T00:00:00Z", bucket="day"
    )

    # THEN only D holds its events (the batch arrived on D+1, but gaps are about event time)
    assert body["gaps"] == [
        {"start": f"{D_BEFORE}T00:00:00.000000Z", "end": f"{D}T00:00:00.000000Z", "buckets": 1},
        {"start": f"{D_AFTER}T00:00:00.000000Z", "end": "2025-06-03T00:00:00.000000Z", "buckets": 1},
    ]
    assert len(requests) == 2  # one found D's first event, one found nothing after it

    # WHEN a 30-day window is asked for in hours (720 buckets: read as two concurrent segments)
    body, requests = gaps(dataset, entity_id="user_a", start_time=f"{D}T00:00:00Z", end_time="2025-07-01T00:00:00Z")

    # THEN the answer is the same as one pass would give, for 23 hits and one miss per segment
    assert (body["buckets"], body["empty_buckets"]) == (720, 697)
    assert body["gaps"] == [
        {"start": f"{D}T05:00:00.000000Z", "end": f"{D}T06:00:00.000000Z", "buckets": 1},
        {"start": f"{D_AFTER}T00:00:00.000000Z", "end": "2025-07-01T00:00:00.000000Z", "buckets": 696},
    ]
    assert (len(requests), sum(request.items_read for request in requests)) == (25, 23)
