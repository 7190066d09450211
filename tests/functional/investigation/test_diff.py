"""GET /aggregates/diff: what changed in an entity's day between two replays, down to event ids."""

from __future__ import annotations

from tests.builders import D2
from tests.stacks import get


def diff(dataset, base: str, other: str):
    return get(dataset.stack, "/aggregates/diff", entity_id="user_x", day=D2, base=base, other=other)


def test_diff_explains_an_event_added_and_a_payload_corrected_between_two_replays(dataset):
    # WHEN R-A (x-1, x-2, x-3) is compared with R-B, replayed after x-2 was resent with a corrected
    # payload and x-4 arrived, with include_duplicates=true
    response, requests = diff(dataset, "R-A", "R-B")

    # THEN the count grew by the added refund, and x-2's payload shows as changed
    assert response.status == 200, response.body
    assert response.json() == {
        "entity_id": "user_x",
        "day": D2,
        "base": "R-A",
        "other": "R-B",
        "daily_event_count": {"base": 3, "other": 4, "delta": 1},
        "counts_by_event_type": {
            "purchase": {"base": 2, "other": 2, "delta": 0},
            "refund": {"base": 0, "other": 1, "delta": 1},
            "view": {"base": 1, "other": 1, "delta": 0},
        },
        "inputs_hash_equal": False,
        "only_in_base": [],
        "only_in_other": ["x-4"],
        "payload_changed": ["x-2"],
    }
    # AND it read the two versions (one item each) and their markers (3 + 5), nothing else
    assert [(request.operation, request.items_read) for request in requests] == [
        ("Query", 1),
        ("Query", 1),
        ("Query", 3),
        ("Query", 5),
    ]
    assert {request.params["ExpressionAttributeValues"][":pk"]["S"] for request in requests} == {"AGG#user_x"}

    # WHEN two replays of the same unchanged window are compared
    same, _ = diff(dataset, "R-A", "R-A2")

    # THEN nothing differs
    assert same.json()["daily_event_count"] == {"base": 3, "other": 3, "delta": 0}
    assert same.json()["inputs_hash_equal"] is True
    assert (same.json()["only_in_base"], same.json()["only_in_other"], same.json()["payload_changed"]) == ([], [], [])

    # WHEN R-A is compared with R-C, a replay of the day's second half only
    half, _ = diff(dataset, "R-A", "R-C")

    # THEN the morning's purchases are only in the base, the refund only in the other
    assert half.json()["daily_event_count"] == {"base": 3, "other": 2, "delta": -1}
    assert half.json()["counts_by_event_type"]["purchase"] == {"base": 2, "other": 0, "delta": -2}
    assert (half.json()["only_in_base"], half.json()["only_in_other"]) == (["x-1", "x-2"], ["x-4"])
    assert half.json()["payload_changed"] == []

    # WHEN a version does not exist
    missing_base, _ = diff(dataset, "R-nope", "R-B")
    missing_other, _ = diff(dataset, "R-A", "R-nope")

    # THEN 404 names the parameter that points at nothing
    assert missing_base.status == missing_other.status == 404
    assert missing_base.json()["error"]["code"] == "VersionNotFound"
    assert (missing_base.json()["error"]["field"], missing_other.json()["error"]["field"]) == ("base", "other")
