"""POST /events: what is stored, where, and what the producer is told (docs/design.md §2–3)."""

from __future__ import annotations

from evreplay.core.event_ids import derive_event_id, payload_sha256

from tests.builders import producer_event
from tests.stacks import index_rows, raw_object


def test_post_event_stores_raw_object_and_index_row(stack, post):
    # WHEN a producer posts a valid event
    response = post(producer_event())

    # THEN it is accepted with the contract's body
    assert response.status == 201
    body = response.json()
    expected_id = derive_event_id(
        "ios_app", "purchase", "user_123", "2025-12-28T22:59:59.250000Z", {"amount": 12.5, "currency": "EUR"}
    )
    assert body["event_id"] == expected_id
    assert body["status"] == "ACCEPTED"
    assert body["entity_id"] == "user_123"
    assert body["event_time"] == "2025-12-28T22:59:59.250000Z"
    assert body["ingest_time"].endswith("Z") and len(body["ingest_time"]) == 27
    assert body["ingest_lag_ms"] > 0

    # AND the raw object sits under Hive-style partitions with the event's content
    assert stack.raw_keys() == [body["s3_key"]]
    assert body["s3_key"].startswith(
        "raw/source=ios_app/event_type=purchase/event_date=2025-12-28/entity=user_123/20251228T225959.250000Z_"
    )
    stored = raw_object(stack, body["s3_key"])
    assert stored["payload"] == {"amount": 12.5, "currency": "EUR"}
    assert stored["event_time"] == "2025-12-28T22:59:59.250000Z"
    assert stored["event_time_original"] == "2025-12-28T23:59:59.250+01:00"
    assert stored["event_id"] == expected_id

    # AND exactly one index row points at it, with every field of docs/design.md §3
    (row,) = index_rows(stack)
    assert row["pk"] == "E#user_123"
    assert row["sk"].startswith(f"T#2025-12-28T22:59:59.250000Z#{expected_id}#")
    assert row["status"] == "ACCEPTED"
    assert row["s3_bucket"] == stack.bucket
    assert row["s3_key"] == body["s3_key"]
    assert row["ingest_time"] == body["ingest_time"]
    assert int(row["ingest_lag_ms"]) == body["ingest_lag_ms"]
    assert row["source"] == "ios_app"
    assert row["event_type"] == "purchase"
    assert row["payload_sha256"] == payload_sha256({"amount": 12.5, "currency": "EUR"})


def test_producer_event_id_is_kept(stack, post):
    response = post(producer_event(event_id="order-42:v1"))

    assert response.status == 201
    assert response.json()["event_id"] == "order-42:v1"
    (row,) = index_rows(stack)
    assert row["event_id"] == "order-42:v1"


def test_second_arrival_is_duplicate_with_its_own_object_and_row(stack, post):
    # GIVEN an event already stored
    first = post(producer_event()).json()
    (first_row,) = index_rows(stack)

    # WHEN the same event arrives again (no idempotency key: a real second arrival)
    second = post(producer_event())

    # THEN it is stored and indexed as its own DUPLICATE occurrence
    assert second.status == 201
    assert second.json()["status"] == "DUPLICATE"
    assert second.json()["event_id"] == first["event_id"]
    assert second.json()["s3_key"] != first["s3_key"]
    assert sorted(stack.raw_keys()) == sorted([first["s3_key"], second.json()["s3_key"]])
    rows = index_rows(stack)
    assert [row["status"] for row in rows] == ["ACCEPTED", "DUPLICATE"]  # arrival order within the same time and id

    # AND the first row is unchanged
    assert rows[0] == first_row


def test_same_event_id_for_another_entity_is_not_a_duplicate(stack, post):
    post(producer_event(event_id="shared-id"))

    response = post(producer_event(event_id="shared-id", entity_id="user_999"))

    assert response.json()["status"] == "ACCEPTED"


def test_entity_id_with_path_characters_stays_inside_its_prefix(stack, post):
    response = post(producer_event(entity_id="../../etc/passwd %2F ~ \u202e"))

    assert response.status == 201
    key = response.json()["s3_key"]
    segments = key.split("/")
    assert segments[:4] == ["raw", "source=ios_app", "event_type=purchase", "event_date=2025-12-28"]
    assert len(segments) == 6
    assert segments[4] == "entity=..%2F..%2Fetc%2Fpasswd%20%252F%20%7E%20%E2%80%AE"
