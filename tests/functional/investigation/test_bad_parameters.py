"""Every bad or missing query parameter is a 400 in the API's error shape, naming the parameter."""

from __future__ import annotations

import pytest

from tests.stacks import get

LAG = {"source": "shop", "event_type": "purchase", "day": "2025-06-01"}
VOLUME = {"source": "shop", "event_type": "purchase", "start_day": "2025-06-01", "end_day": "2025-06-02"}
GAPS = {"entity_id": "user_a", "start_time": "2025-06-01T00:00:00Z", "end_time": "2025-06-02T00:00:00Z"}
DUPLICATES = {"day": "2025-06-01"}
DIFF = {"entity_id": "user_x", "day": "2025-06-03", "base": "R-A", "other": "R-B"}
DROP = None


def with_(query: dict[str, str], **changes: str | None) -> dict[str, str]:
    return {name: value for name, value in (query | changes).items() if value is not None}


CASES = [
    # /stats/lag
    ("/stats/lag", with_(LAG, source=DROP), "source"),
    ("/stats/lag", with_(LAG, event_type=""), "event_type"),
    ("/stats/lag", with_(LAG, source="shop#purchase"), "source"),
    ("/stats/lag", with_(LAG, day="2025-02-30"), "day"),
    ("/stats/lag", with_(LAG, day="yesterday"), "day"),
    ("/stats/lag", with_(LAG, cursor="abc"), "cursor"),
    # /stats/volume
    ("/stats/volume", with_(VOLUME, start_day="2025-6-1"), "start_day"),
    ("/stats/volume", with_(VOLUME, end_day=DROP), "end_day"),
    ("/stats/volume", with_(VOLUME, end_day="2025-05-31"), "end_day"),
    ("/stats/volume", with_(VOLUME, end_day="2025-09-01"), "end_day"),  # 93 days by day
    ("/stats/volume", with_(VOLUME, end_day="2025-06-15", bucket="hour"), "end_day"),  # 15 days by hour
    ("/stats/volume", with_(VOLUME, bucket="week"), "bucket"),
    # /gaps
    ("/gaps", with_(GAPS, entity_id=DROP), "entity_id"),
    ("/gaps", with_(GAPS, start_time="2025-06-01T00:00:00"), "start_time"),
    ("/gaps", with_(GAPS, end_time="2025-06-01T00:00:00Z"), "end_time"),
    ("/gaps", with_(GAPS, end_time="2025-05-31T23:00:00Z"), "end_time"),
    ("/gaps", with_(GAPS, end_time="2026-07-22T17:00:00Z"), "end_time"),  # 10 001 hours
    ("/gaps", with_(GAPS, bucket="minute"), "bucket"),
    # /stats/duplicates
    ("/stats/duplicates", {}, "day"),
    ("/stats/duplicates", with_(DUPLICATES, limit="0"), "limit"),
    ("/stats/duplicates", with_(DUPLICATES, limit="101"), "limit"),
    ("/stats/duplicates", with_(DUPLICATES, limit="ten"), "limit"),
    ("/stats/duplicates", with_(DUPLICATES, limit="--5"), "limit"),
    ("/stats/duplicates", with_(DUPLICATES, limit="9" * 5000), "limit"),
    ("/stats/duplicates", with_(DUPLICATES, source="a b"), "source"),
    # /aggregates/diff
    ("/aggregates/diff", with_(DIFF, other=DROP), "other"),
    ("/aggregates/diff", with_(DIFF, day="2025-06-31"), "day"),
    ("/aggregates/diff", with_(DIFF, base="R#A"), "base"),
    ("/aggregates/diff", with_(DIFF, entity_id=DROP), "entity_id"),
]


ROUTES = sorted({path for path, _, _ in CASES})


@pytest.mark.parametrize("route", ROUTES)
def test_bad_parameter_is_a_400_naming_it(stack, route):
    # One stack per route, every case of the route against it (a stack per case costs ~0.3 s each)
    for path, query, field in CASES:
        if path != route:
            continue
        response, requests = get(stack, path, **query)

        assert response.status == 400, (query, response.body)
        error = response.json()["error"]
        assert (error["code"], error["field"]) == ("InvalidRequest", field), (query, error)
        assert error["message"]
        # AND nothing was read: the request is refused before any DynamoDB call
        assert requests == [], query


def test_gaps_take_up_to_10000_buckets(stack):
    # GIVEN exactly 10 000 hours (the limit) of an entity with no events at all
    response, requests = get(
        stack, "/gaps", entity_id="nobody", start_time="2025-06-01T00:00:00Z", end_time="2026-07-22T16:00:00Z"
    )

    # THEN it is one gap, found by one empty Query per segment (8 segments of 1 250 hours)
    assert response.status == 200, response.body
    body = response.json()
    assert (body["buckets"], body["empty_buckets"]) == (10_000, 10_000)
    assert body["gaps"] == [
        {"start": "2025-06-01T00:00:00.000000Z", "end": "2026-07-22T16:00:00.000000Z", "buckets": 10_000}
    ]
    assert [request.items_read for request in requests] == [0] * 8
