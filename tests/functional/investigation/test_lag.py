"""GET /stats/lag: one stream's UTC event day, every arrival's ingest lag (docs/investigating.md)."""

from __future__ import annotations

import math

from tests.builders import D_BEFORE, D
from tests.stacks import get, partitions

HOUR_MS = 3_600_000


def plain_percentile(values: list[int], p: int) -> int:
    """Nearest rank, computed the plain way: sort, take the ceil(p% · n)-th value."""
    ordered = sorted(values)
    return ordered[math.ceil(p / 100 * len(ordered)) - 1]


def test_lag_of_a_day_with_a_late_batch_of_another_stream_and_of_an_empty_day(dataset):
    # WHEN the purchases of day D are asked for
    response, requests = get(dataset.stack, "/stats/lag", source="shop", event_type="purchase", day=D)

    # THEN every arrival of D is counted, duplicates and the batch that came a day late included
    assert response.status == 200, response.body
    body = response.json()
    lags = dataset.lags("shop", "purchase", D)
    assert body["count"] == len(lags) == 83

    # AND the percentiles are the nearest-rank ones of exactly those lags
    assert body["lag_ms"] == {
        "p50": plain_percentile(lags, 50),
        "p90": plain_percentile(lags, 90),
        "p99": plain_percentile(lags, 99),
        "max": max(lags),
    }
    assert body["lag_ms"] == {"p50": 39_000, "p90": 140_000, "p99": 93_900_000, "max": 93_900_000}

    # AND the histogram puts the late batch (~26 h) past the last bound
    assert body["histogram"] == [
        {"le_ms": 1000, "count": 5},
        {"le_ms": 10_000, "count": 28},
        {"le_ms": 60_000, "count": 23},
        {"le_ms": 600_000, "count": 22},
        {"le_ms": 3_600_000, "count": 0},
        {"le_ms": 21_600_000, "count": 0},
        {"le_ms": 86_400_000, "count": 0},
        {"le_ms": None, "count": 5},
    ]
    assert sum(bucket["count"] for bucket in body["histogram"]) == body["count"]

    # AND the 20 latest arrivals come most late first: the batch (and b-1's second arrival), then user_d
    latest = body["latest"]
    assert [(row["event_id"], row["status"]) for row in latest[:5]] == [
        ("b-1", "DUPLICATE"),
        ("b-1", "ACCEPTED"),
        ("b-2", "ACCEPTED"),
        ("b-3", "ACCEPTED"),
        ("b-4", "ACCEPTED"),
    ]
    assert [row["event_id"] for row in latest[5:]] == [
        f"d-{hour:02d}" for hour in (23, 22, 21, 20, 19, 18, 17, 16, 15, 13, 12, 11, 10, 9, 8)
    ]
    assert latest[0] == {
        "event_id": "b-1",
        "entity_id": "user_b",
        "event_time": f"{D}T10:00:00.000000Z",
        "ingest_time": "2025-06-02T12:05:00.000000Z",
        "ingest_lag_ms": 26 * HOUR_MS + 5 * 60_000,
        "status": "DUPLICATE",
    }
    assert [row["ingest_lag_ms"] for row in latest] == sorted(lags, reverse=True)[:20]

    # AND it cost one Query of the stream's day partition of the lag index, reading only its items
    assert [request.operation for request in requests] == ["Query"]
    assert partitions(requests) == {("LagByTypeDay", f"shop#purchase#{D}")}
    assert sum(request.items_read for request in requests) == 83

    # WHEN the refunds of D are asked for: only the storm's s-2, three arrivals
    refunds, _ = get(dataset.stack, "/stats/lag", source="shop", event_type="refund", day=D)

    assert refunds.status == 200
    assert refunds.json()["count"] == 3
    assert refunds.json()["lag_ms"] == {"p50": 3000, "p90": 4000, "p99": 4000, "max": 4000}

    # WHEN a day without data is asked for
    empty, requests = get(dataset.stack, "/stats/lag", source="shop", event_type="purchase", day=D_BEFORE)

    # THEN it answers zero, with no percentiles, after one Query that read nothing
    assert empty.status == 200
    body = empty.json()
    assert body["count"] == 0
    assert body["lag_ms"] == {"p50": None, "p90": None, "p99": None, "max": None}
    assert all(bucket["count"] == 0 for bucket in body["histogram"])
    assert body["latest"] == []
    assert [(request.operation, request.items_read) for request in requests] == [("Query", 0)]
