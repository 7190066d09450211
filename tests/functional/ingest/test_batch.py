"""POST /events/batch: each item valid or rejected on its own (docs/design.md §2)."""

from __future__ import annotations

from tests.builders import DROP, producer_event
from tests.stacks import index_rows


def test_mixed_batch_gives_one_result_per_item(stack, post):
    # GIVEN a batch with valid, invalid and duplicate items
    items = [
        producer_event(event_id="a"),
        producer_event(event_time="not a time"),
        producer_event(event_id="a"),
        producer_event(entity_id=DROP),
        producer_event(event_id="b", entity_id="user_9"),
        "not an object",
    ]

    response = post({"events": items}, path="/events/batch")

    # THEN each item has its own result, in input order
    assert response.status == 200
    results = response.json()["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4, 5]
    assert [r["status"] for r in results] == ["ACCEPTED", "REJECTED", "DUPLICATE", "REJECTED", "ACCEPTED", "REJECTED"]
    assert results[0]["event_id"] == "a" and results[4]["event_id"] == "b"
    assert results[1]["error"]["field"] == "events[1].event_time"
    assert results[3]["error"]["field"] == "events[3].entity_id"
    assert results[5]["error"]["field"] == "events[5]"
    # AND only the valid ones are stored
    assert len(stack.raw_keys()) == 3
    assert len(index_rows(stack)) == 3


def test_batch_items_with_idempotency_keys_are_stored_once(stack, post):
    items = [producer_event(event_id=f"e{i}", idempotency_key=f"line-{i}") for i in range(5)]

    first = post({"events": items}, path="/events/batch").json()["results"]
    again = post({"events": items}, path="/events/batch").json()["results"]

    assert [r["status"] for r in first] == ["ACCEPTED"] * 5
    assert again == first
    assert len(stack.raw_keys()) == 5


def test_batch_over_500_items_is_400(stack, post):
    response = post({"events": [producer_event()] * 501}, path="/events/batch")

    assert response.status == 400
    assert response.json()["error"]["field"] == "events"
    assert stack.raw_keys() == []


def test_batch_without_events_is_400(stack, post):
    response = post({"items": []}, path="/events/batch")

    assert response.status == 400
    assert response.json()["error"]["field"] in ("events", "items")
