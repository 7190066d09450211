"""Idempotent retries through Powertools' Idempotency utility (docs/design.md §2)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from evreplay.store.dynamo import deserialize

from tests.builders import producer_event
from tests.stacks import index_rows


def test_retry_with_same_key_returns_first_response_and_stores_nothing(stack, post):
    first = post(producer_event(), headers={"Idempotency-Key": "req-1"})
    assert first.status == 201

    again = post(producer_event(), headers={"Idempotency-Key": "req-1"})

    assert again.status == first.status
    assert again.json() == first.json()
    assert len(stack.raw_keys()) == 1
    assert len(index_rows(stack)) == 1


def test_retry_with_same_key_returns_the_first_response_byte_for_byte(stack, post):
    # GIVEN a keyed event whose answer has non-ASCII text and fields in the contract's order
    body = producer_event(entity_id="usér-ü", payload={"zeta": 1, "alpha": "ß"})
    first = post(body, headers={"Idempotency-Key": "req-bytes"})
    assert first.status == 201
    assert list(first.json()) == [
        "event_id",
        "status",
        "entity_id",
        "event_time",
        "ingest_time",
        "ingest_lag_ms",
        "s3_key",
    ]

    # WHEN the same request comes again (answered from the idempotency record)
    again = post(body, headers={"Idempotency-Key": "req-bytes"})

    # THEN the body is the same bytes, not the same fields re-serialized in another order
    assert again.status == 201
    assert again.body.encode("utf-8") == first.body.encode("utf-8")
    assert len(index_rows(stack)) == 1


def test_key_in_body_and_header_are_the_same_key(stack, post):
    first = post(producer_event(idempotency_key="req-2"))

    again = post(producer_event(), headers={"Idempotency-Key": "req-2"})

    assert again.json() == first.json()
    assert len(stack.raw_keys()) == 1


def test_same_key_different_body_is_422(stack, post):
    post(producer_event(), headers={"Idempotency-Key": "req-3"})

    response = post(producer_event(payload={"amount": 99}), headers={"Idempotency-Key": "req-3"})

    assert response.status == 422
    assert response.json()["error"]["code"] == "IdempotencyKeyReused"
    assert response.json()["error"]["field"] == "idempotency_key"
    assert len(stack.raw_keys()) == 1


def test_same_key_while_first_in_flight_is_409(stack, post):
    # GIVEN a request holding the key (an INPROGRESS record that has not expired)
    import evreplay.handlers.ingest as ingest_handler

    entered, release = threading.Event(), threading.Event()
    original_put = ingest_handler.ingestor._raw.put_new

    def slow_put(*args, **kwargs):
        entered.set()
        assert release.wait(10)
        return original_put(*args, **kwargs)

    ingest_handler.ingestor._raw.put_new = slow_put  # type: ignore[method-assign]
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            first = pool.submit(post, producer_event(), {"Idempotency-Key": "req-4"})
            assert entered.wait(10)
            # WHEN the same key arrives while the first is in flight
            ingest_handler.ingestor._raw.put_new = original_put  # type: ignore[method-assign]
            second = post(producer_event(), headers={"Idempotency-Key": "req-4"})
            release.set()
            first_response = first.result(10)
    finally:
        ingest_handler.ingestor._raw.put_new = original_put  # type: ignore[method-assign]
        release.set()

    # THEN it is told to retry later, and only the first is stored
    assert second.status == 409
    assert second.json()["error"]["field"] == "idempotency_key"
    assert first_response.status == 201
    assert len(stack.raw_keys()) == 1


def test_key_mismatch_between_header_and_body_is_400(stack, post):
    response = post(producer_event(idempotency_key="a"), headers={"Idempotency-Key": "b"})

    assert response.status == 400
    assert response.json()["error"]["field"] == "idempotency_key"
    assert stack.raw_keys() == []


@pytest.mark.slow
def test_fifty_concurrent_posts_with_one_key_store_exactly_once(stack, post):
    # WHEN 50 threads post the same event with the same key at once
    barrier = threading.Barrier(50)

    def send(_: int):
        barrier.wait(10)
        return post(producer_event(), headers={"Idempotency-Key": "storm"})

    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(send, range(50)))

    # THEN exactly one object and one index row exist
    assert len(stack.raw_keys()) == 1
    rows = index_rows(stack)
    assert len(rows) == 1
    # AND every answer is the stored 201 body or a 409
    stored = next(r.json() for r in responses if r.status == 201)
    assert stored["s3_key"] == rows[0]["s3_key"]
    for response in responses:
        assert response.status in (201, 409), response.body
        if response.status == 201:
            assert response.json() == stored
        else:
            assert response.json()["error"]["code"] == "Conflict"
    registry = [deserialize(i) for i in stack.table_items(stack.index_table) if i["sk"]["S"].startswith("I#")]
    assert [int(r["occurrences"]) for r in registry] == [1]
