"""GET /stats/volume: distinct events of one stream per UTC hour or day of event_time, with empty
and far-below-normal buckets flagged."""

from __future__ import annotations

from tests.builders import D_AFTER, D_BEFORE, D
from tests.stacks import get, partitions

# Day D's purchases per hour (first arrivals only): user_a, user_c and user_d each send one an hour,
# nobody sends at 05:00, user_c and user_d skip 14:00, the late batch adds 4 at 10:00 and the
# storm's s-1 counts once at 16:00.
PER_HOUR = {hour: 3 for hour in range(24)} | {5: 0, 10: 7, 14: 1, 16: 4}


def test_volume_flags_the_missing_hour_and_the_thin_one_and_counts_by_event_day(dataset):
    # WHEN day D's purchases are counted by hour
    response, requests = get(
        dataset.stack, "/stats/volume", source="shop", event_type="purchase", start_day=D, end_day=D, bucket="hour"
    )

    # THEN every hour has its count of distinct events (first arrivals), the duplicates left out
    assert response.status == 200, response.body
    body = response.json()
    assert (body["bucket"], body["start_day"], body["end_day"]) == ("hour", D, D)
    assert body["total"] == sum(PER_HOUR.values()) == 72
    items = body["items"]
    assert [item["start"] for item in items] == [f"{D}T{hour:02d}:00:00Z" for hour in range(24)]
    assert [item["count"] for item in items] == [PER_HOUR[hour] for hour in range(24)]
    # 05:00 is EMPTY; 14:00 holds 1 where the hours before it had a median of 3 (1 < 50% of 3): LOW
    assert {item["start"][11:13]: item["flag"] for item in items if item["flag"]} == {"05": "EMPTY", "14": "LOW"}
    # the first three hours have fewer than 3 hours before them: no median, no LOW
    assert [item["trailing_median"] for item in items] == [None, None, None] + [3.0] * 21
    assert "50%" in body["low_rule"] and "24" in body["low_rule"]

    # AND it read one partition of the lag index (D's), duplicates read but not counted
    assert partitions(requests) == {("LagByTypeDay", f"shop#purchase#{D}")}
    assert len(requests) == 1
    assert requests[0].items_read == 83

    # WHEN the same stream is counted by day over D-1..D+1
    response, requests = get(
        dataset.stack, "/stats/volume", source="shop", event_type="purchase", start_day=D_BEFORE, end_day=D_AFTER
    )

    # THEN the late batch counts on D (volume is by event time, though it arrived on D+1)
    assert response.status == 200, response.body
    body = response.json()
    assert body["bucket"] == "day"
    assert body["total"] == 72
    assert body["items"] == [
        {"start": f"{D_BEFORE}T00:00:00Z", "count": 0, "trailing_median": None, "flag": "EMPTY"},
        {"start": f"{D}T00:00:00Z", "count": 72, "trailing_median": None, "flag": None},
        {"start": f"{D_AFTER}T00:00:00Z", "count": 0, "trailing_median": None, "flag": "EMPTY"},
    ]
    # AND it read each day's partition once, counting on the server side (Select=COUNT)
    assert partitions(requests) == {("LagByTypeDay", f"shop#purchase#{day}") for day in (D_BEFORE, D, D_AFTER)}
    assert [request.params.get("Select") for request in requests] == ["COUNT"] * 3
    assert [request.items_read for request in requests] == [0, 83, 0]
