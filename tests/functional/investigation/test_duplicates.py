"""GET /stats/duplicates: DUPLICATE arrivals of one UTC ingest day, by source, type and entity."""

from __future__ import annotations

from tests.builders import D_AFTER, D
from tests.stacks import get, partitions


def test_duplicate_storm_from_one_entity_tops_the_day_and_source_and_day_narrow_it(dataset):
    # WHEN every source's duplicates of D are asked for
    response, requests = get(dataset.stack, "/stats/duplicates", day=D)

    # THEN the storm (s-1 nine more times, s-2 twice) leads, then user_c's c-08 and web's w-1
    assert response.status == 200, response.body
    assert response.json() == {
        "day": D,
        "source": None,
        "duplicate_arrivals": 13,
        "distinct_event_ids": 4,
        "by_event_type": {"purchase": 11, "refund": 2},
        "top_entities": [
            {"entity_id": "user_s", "duplicate_arrivals": 11, "distinct_event_ids": 2},
            {"entity_id": "user_c", "duplicate_arrivals": 1, "distinct_event_ids": 1},
            {"entity_id": "user_w", "duplicate_arrivals": 1, "distinct_event_ids": 1},
        ],
    }
    # AND only the day's partition of the sparse index was read: 13 items, nothing else
    assert partitions(requests) == {("DuplicatesByIngestDay", f"DUP#{D}")}
    assert [(request.operation, request.items_read) for request in requests] == [("Query", 13)]

    # WHEN one source is asked for, with only the top entity
    shop, requests = get(dataset.stack, "/stats/duplicates", day=D, source="shop", limit="1")

    # THEN web's duplicate is left out by the key condition itself (12 items read, not 13)
    assert shop.status == 200, shop.body
    assert shop.json() == {
        "day": D,
        "source": "shop",
        "duplicate_arrivals": 12,
        "distinct_event_ids": 3,
        "by_event_type": {"purchase": 10, "refund": 2},
        "top_entities": [{"entity_id": "user_s", "duplicate_arrivals": 11, "distinct_event_ids": 2}],
    }
    assert [request.items_read for request in requests] == [12]
    assert requests[0].params["ExpressionAttributeValues"][":source"] == {"S": "shop#"}

    # WHEN the next day is asked for: the late batch's b-1 arrived twice, the second time on D+1
    next_day, _ = get(dataset.stack, "/stats/duplicates", day=D_AFTER)

    # THEN a duplicate counts on the day it arrived, not on its event's day
    assert next_day.json()["duplicate_arrivals"] == 1
    assert next_day.json()["top_entities"] == [
        {"entity_id": "user_b", "duplicate_arrivals": 1, "distinct_event_ids": 1}
    ]
    assert next_day.json()["by_event_type"] == {"purchase": 1}
