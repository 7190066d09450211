"""Ingest under AWS faults: every call POST /events makes, failed the ways AWS fails it.

The calls (evreplay.ingest.service, evreplay.core.idempotency through Powertools):
- S3 PutObject (conditional, If-None-Match) - the raw object, written first;
- DynamoDB TransactWriteItems - the occurrence row, the registry item and, for a request with an
  idempotency key, its receipt, in one transaction;
- DynamoDB GetItem - the receipt of an earlier attempt with the same key (every keyed request:
  before it asks for the key's lock, and again under it);
- DynamoDB PutItem / DeleteItem - Powertools' idempotency record: in progress (the key's lock),
  deleted when the request failed. Its success UpdateItem is not made: the receipt keeps the answer
  (evreplay.core.idempotency.IdempotencyStore.records_answers).

For each call and each way it fails, once (botocore retries it) or on every attempt (the caller
gets the error): the answer is a 201 or a retryable error in the contract's shape (503, or 409
"retry later" while the key's in-progress record stands); and once the fault is gone, retrying the
same request leaves exactly one stored occurrence and one index row, and answers what the first
success answered.

The one acceptable leftover: a raw object whose index write failed (or whose answer was lost). It
is never indexed (nothing indexes by listing S3) and so never replayed; the retry stores and indexes
its own object.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.builders import producer_event
from tests.faults import (
    ALWAYS,
    CONNECT_TIMEOUT,
    INTERNAL,
    READ_TIMEOUT,
    THROTTLED,
    TRANSACTION_CONFLICT,
    Faults,
    Kind,
    body_has,
    kinds_for,
)
from tests.stacks import Stack, error_shape, expire_in_progress, occurrence_rows, raw_keys_of, registry

# (service, operation, what it writes or reads): every AWS call of POST /events.
INGEST_CALLS = [
    ("s3", "PutObject", "the raw object"),
    ("dynamodb", "TransactWriteItems", "row + registry + receipt"),
    ("dynamodb", "GetItem", "an earlier attempt's receipt"),
    ("dynamodb", "PutItem", "idempotency: in-progress record"),
]


@pytest.fixture
def stack(module_stack: Stack) -> Stack:
    return module_stack


CELLS = [
    pytest.param(service, operation, kind, id=f"{operation}-{kind}")
    for service, operation, _ in INGEST_CALLS
    for kind in kinds_for(service, operation)
]


def expected_first_status(operation: str, kind: Kind, times: int) -> int:
    """What the first request answers while the fault is on."""
    if kind.cancellation is not None:
        return 503  # botocore does not retry a cancelled transaction: the caller does
    if times == ALWAYS and operation == "TransactWriteItems" and kind.lost:
        return 201  # applied, every answer lost: the receipt it wrote answers at once
    if times == ALWAYS:
        return 503
    # botocore retried the call (a retried PutItem that meets the record its lost first attempt wrote
    # knows it for its own: evreplay.core.idempotency)
    return 201


def post(stack: Stack, body: dict[str, Any], key: str | None) -> Any:
    return stack.gateway.request("POST", "/events", body, headers={"Idempotency-Key": key} if key else None)


def assert_one_occurrence(stack: Stack, entity_id: str, answer: dict[str, Any], failed_answers: int) -> None:
    """Exactly one stored occurrence, one index row, registry count 1; any other raw object of the
    entity is a leftover of a failed answer that the index does not point at."""
    (row,) = occurrence_rows(stack, entity_id)
    assert registry(stack, entity_id) == {answer["event_id"]: 1}
    assert (row["status"], row["s3_key"], row["event_id"]) == ("ACCEPTED", answer["s3_key"], answer["event_id"])
    assert answer["status"] == "ACCEPTED"
    leftovers = [key for key in raw_keys_of(stack, entity_id) if key != row["s3_key"]]
    assert answer["s3_key"] in raw_keys_of(stack, entity_id)
    assert len(leftovers) <= failed_answers, leftovers


@pytest.mark.parametrize("times", [1, ALWAYS], ids=["once", "every-attempt"])
@pytest.mark.parametrize(("service", "operation", "kind"), CELLS)
def test_post_event_under_fault_then_retry_stores_exactly_one(
    stack, faults: Faults, fast_retries, service, operation, kind, times
):
    entity_id = f"user-{uuid.uuid4().hex[:8]}"
    body, key = producer_event(entity_id=entity_id), f"key-{uuid.uuid4().hex}"
    # GIVEN the call fails once, or on every attempt
    fault = faults.inject(service, operation, kind, times=times)

    # WHEN the producer posts the event with an idempotency key
    first = post(stack, body, key)
    faults.clear()

    # THEN it is stored (botocore retried), or the producer is told to retry, in the error shape
    assert fault.fired >= 1, "the call was made"
    assert first.status == expected_first_status(operation, kind, times), first.body
    answers = [first]
    if first.status != 201:
        error = error_shape(first.json())
        assert (first.status, error["code"]) in {(503, "StorageUnavailable"), (409, "Conflict")}, error
        # WHEN it retries the same request once the fault is gone (and, after a 409, once the first
        # attempt's Lambda timeout has passed)
        retry = post(stack, body, key)
        if retry.status == 409:
            assert expire_in_progress(stack, key) == 1
            retry = post(stack, body, key)
        answers.append(retry)
    final = answers[-1]
    assert final.status == 201, final.body

    # THEN exactly one occurrence is stored and indexed
    failed = sum(answer.status != 201 for answer in answers)
    assert_one_occurrence(stack, entity_id, final.json(), failed)
    # AND the same request again answers the same and stores nothing more
    again = post(stack, body, key)
    assert (again.status, again.json()) == (201, final.json())
    assert len(occurrence_rows(stack, entity_id)) == 1


@pytest.mark.parametrize("kind", [THROTTLED, INTERNAL, CONNECT_TIMEOUT], ids=str)
@pytest.mark.parametrize(("service", "operation"), [("s3", "PutObject"), ("dynamodb", "TransactWriteItems")])
def test_failed_request_whose_record_cannot_be_deleted_is_retried_after_its_timeout(
    stack, faults: Faults, fast_retries, service, operation, kind
):
    # GIVEN the request fails (503) and Powertools cannot delete its in-progress record (DeleteItem)
    entity_id = f"user-{uuid.uuid4().hex[:8]}"
    body, key = producer_event(entity_id=entity_id), f"key-{uuid.uuid4().hex}"
    faults.inject(service, operation, INTERNAL, times=ALWAYS)
    delete = faults.inject("dynamodb", "DeleteItem", kind, times=ALWAYS)

    first = post(stack, body, key)
    faults.clear()

    assert delete.fired >= 1
    assert first.status == 503 and error_shape(first.json())["code"] == "StorageUnavailable"
    # THEN a retry is told to wait while the record stands, and succeeds once it has expired
    second = post(stack, body, key)
    assert second.status == 409 and error_shape(second.json())["field"] == "idempotency_key"
    assert expire_in_progress(stack, key) == 1
    third = post(stack, body, key)
    assert third.status == 201, third.body
    assert_one_occurrence(stack, entity_id, third.json(), failed_answers=2)


@pytest.mark.parametrize("kind", [THROTTLED, INTERNAL, CONNECT_TIMEOUT, TRANSACTION_CONFLICT], ids=str)
def test_without_a_key_a_refused_write_is_retried_into_one_occurrence(stack, faults: Faults, fast_retries, kind):
    # GIVEN the index transaction is refused on every attempt (nothing applied)
    entity_id = f"user-{uuid.uuid4().hex[:8]}"
    body = producer_event(entity_id=entity_id)
    faults.inject("dynamodb", "TransactWriteItems", kind, times=ALWAYS)

    first = post(stack, body, key=None)
    faults.clear()
    retry = post(stack, body, key=None)

    # THEN 503, and the plain retry stores one occurrence (the first left only its raw object)
    assert first.status == 503 and error_shape(first.json())["code"] == "StorageUnavailable"
    assert retry.status == 201
    assert_one_occurrence(stack, entity_id, retry.json(), failed_answers=1)
    assert len(raw_keys_of(stack, entity_id)) == 2


def test_batch_items_that_fail_are_reported_failed_and_a_retried_batch_stores_each_once(
    stack, faults: Faults, fast_retries
):
    # GIVEN a batch of keyed events, and the index refusing every write for one entity
    entities = [f"user-{uuid.uuid4().hex[:8]}" for _ in range(4)]
    events = [producer_event(entity_id=entity, idempotency_key=f"key-{entity}") for entity in entities]
    faults.inject("dynamodb", "TransactWriteItems", INTERNAL, times=ALWAYS, when=body_has(entities[1]))
    faults.inject("s3", "PutObject", READ_TIMEOUT, times=ALWAYS, when=lambda request: entities[2] in request.url)

    first = stack.gateway.request("POST", "/events/batch", {"events": events})
    faults.clear()

    # THEN those items are FAILED with a retryable error, the others stored
    assert first.status == 200
    results = first.json()["results"]
    assert [result["status"] for result in results] == ["ACCEPTED", "FAILED", "FAILED", "ACCEPTED"]
    assert {result["error"]["code"] for result in results if result["status"] == "FAILED"} == {"StorageUnavailable"}
    # WHEN the producer sends the whole batch again
    second = stack.gateway.request("POST", "/events/batch", {"events": events})

    # THEN every event is stored exactly once, and the retried answers match the first successes
    assert [result["status"] for result in second.json()["results"]] == ["ACCEPTED"] * 4
    assert [second.json()["results"][i]["event_id"] for i in (0, 3)] == [results[i]["event_id"] for i in (0, 3)]
    for entity in entities:
        (row,) = occurrence_rows(stack, entity)
        assert registry(stack, entity) == {row["event_id"]: 1}
