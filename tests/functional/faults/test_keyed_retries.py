"""A producer retrying a keyed POST /events as the README advises (409 and 503, the same key, for up
to 10 s) gets its 201 within the documented bound, whatever failed: the event is stored once and
every 201 for the key is the first successful response, byte for byte.

An attempt that saved its idempotency record and then failed leaves one of two things:
- nothing that holds the key (the record was deleted, or the retried put knew the record for its
  own): the retry is answered at once;
- a record in progress that nobody will finish (its delete failed, or every answer of its put was
  lost): the key answers 409 until the record's in-progress window passes
  (evreplay.core.idempotency.IN_PROGRESS_SECONDS), then the retry runs.
An attempt that stored the event leaves its receipt, which answers every retry at once, before the
key's lock is asked for: the record stays in progress (Powertools' success write is not made) and
holds nobody up.
These tests wait for that window in real time: they show the bound, not a model of it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from functools import partial
from typing import Any

import pytest
from evreplay.core.idempotency import IN_PROGRESS_SECONDS
from evreplay.ingest.receipts import RECEIPT_PREFIX

from tests.builders import producer_event
from tests.faults import ALWAYS, APPLIED_THEN_INTERNAL, INTERNAL, READ_TIMEOUT, Faults, Kind
from tests.functional.faults.test_ingest_faults import post
from tests.stacks import (
    LONGEST_WAIT,
    RETRIED,
    RETRY_BUDGET_SECONDS,
    Stack,
    error_shape,
    occurrence_rows,
    registry,
    retry_as_advised,
)


@pytest.fixture
def stack(module_stack: Stack) -> Stack:
    return module_stack


def receipt_text(stack: Stack, key: str) -> str:
    """The exact 201 body the key's receipt holds (what the run that stored the event answered)."""
    wanted = RECEIPT_PREFIX + hashlib.sha256(key.encode()).hexdigest()
    (item,) = [item for item in stack.table_items(stack.env["IDEMPOTENCY_TABLE"]) if item["id"]["S"] == wanted]
    return str(item["body"]["S"])


def powertools_records(stack: Stack, key: str) -> list[dict[str, Any]]:
    """The key's idempotency records (Powertools' id: "<prefix>#<md5 of the key's JSON>")."""
    suffix = "#" + hashlib.md5(json.dumps(key).encode()).hexdigest()
    table = stack.env["IDEMPOTENCY_TABLE"]
    return [item for item in stack.table_items(table) if item["id"]["S"].endswith(suffix)]


def in_progress_left_ms(stack: Stack) -> list[int]:
    """Milliseconds until each standing in-progress record of the idempotency table expires."""
    now_ms = int(time.time() * 1000)
    return [
        int(item["in_progress_expiration"]["N"]) - now_ms
        for item in stack.table_items(stack.env["IDEMPOTENCY_TABLE"])
        if item.get("status", {}).get("S") == "INPROGRESS"
    ]


def assert_stored_once(stack: Stack, entity_id: str, answer: dict[str, Any]) -> None:
    (row,) = occurrence_rows(stack, entity_id)
    assert registry(stack, entity_id) == {answer["event_id"]: 1}
    assert (row["status"], row["s3_key"]) == ("ACCEPTED", answer["s3_key"])


@pytest.mark.parametrize("kind", [READ_TIMEOUT, APPLIED_THEN_INTERNAL], ids=str)
def test_put_of_the_record_applied_with_its_answer_lost_is_answered_at_once(
    stack, faults: Faults, fast_retries, kind: Kind
):
    # GIVEN the idempotency record's PutItem is applied and its answer lost (botocore retries it)
    entity_id = f"user-{uuid.uuid4().hex[:8]}"
    body, key = producer_event(entity_id=entity_id), f"key-{uuid.uuid4().hex}"
    put = faults.inject("dynamodb", "PutItem", kind, when=lambda request: b"INPROGRESS" in (request.body or b""))

    # WHEN the producer posts the event
    first = post(stack, body, key)
    faults.clear()

    # THEN the retried put knows the record for its own: 201 at once, not 409 for the key's lock
    assert put.fired == 1
    assert first.status == 201, first.body
    assert_stored_once(stack, entity_id, first.json())
    # AND a retry answers the same bytes and stores nothing
    again = post(stack, body, key)
    assert (again.status, again.body) == (201, first.body)
    assert len(occurrence_rows(stack, entity_id)) == 1


def test_attempt_that_fails_and_deletes_its_record_is_retried_at_once(stack, faults: Faults, fast_retries):
    # GIVEN the raw object cannot be stored (every attempt refused): the attempt fails after saving
    # its idempotency record, and Powertools deletes the record
    entity_id = f"user-{uuid.uuid4().hex[:8]}"
    body, key = producer_event(entity_id=entity_id), f"key-{uuid.uuid4().hex}"
    faults.inject("s3", "PutObject", INTERNAL, times=ALWAYS)
    first = post(stack, body, key)
    faults.clear()

    # WHEN the producer retries as advised
    retried = retry_as_advised(lambda: post(stack, body, key), first)

    # THEN its first retry is the 201
    assert retried.statuses == [503, 201], retried.statuses
    assert_stored_once(stack, entity_id, retried.final.json())
    assert post(stack, body, key).body == retried.final.body


# What leaves a record in progress that no attempt will finish, after an attempt that stored nothing.
STANDING = [
    pytest.param([("s3", "PutObject", INTERNAL), ("dynamodb", "DeleteItem", INTERNAL)],
                 id="failed-and-its-record-could-not-be-deleted"),
    pytest.param([("dynamodb", "PutItem", READ_TIMEOUT)], id="every-answer-of-the-records-put-lost"),
]  # fmt: skip


@pytest.mark.parametrize("failing", STANDING)
def test_attempt_that_leaves_its_record_in_progress_frees_the_key_within_the_bound(
    stack, faults: Faults, fast_retries, failing: list[tuple[str, str, Kind]]
):
    # GIVEN an attempt that fails after saving its idempotency record and leaves the record standing
    entity_id = f"user-{uuid.uuid4().hex[:8]}"
    body, key = producer_event(entity_id=entity_id), f"key-{uuid.uuid4().hex}"
    for service, operation, kind in failing:
        faults.inject(service, operation, kind, times=ALWAYS)
    first = post(stack, body, key)
    faults.clear()
    assert first.status == 503 and error_shape(first.json())["code"] == "StorageUnavailable", first.body
    assert all(left <= IN_PROGRESS_SECONDS * 1000 for left in in_progress_left_ms(stack))

    # WHEN the producer retries as advised
    retried = retry_as_advised(lambda: post(stack, body, key), first)

    # THEN it is told 409 "retry in a second" for at most the window, then gets its 201
    assert retried.final.status == 201, retried.statuses
    assert retried.seconds <= IN_PROGRESS_SECONDS + LONGEST_WAIT + 1, retried.seconds
    assert retried.seconds <= RETRY_BUDGET_SECONDS
    conflicts = [error_shape(answer.json()) for answer in retried.answers if answer.status == 409]
    assert conflicts and all(error["field"] == "idempotency_key" for error in conflicts)
    assert set(retried.statuses[1:-1]) == {409}, retried.statuses
    # AND the event is stored once; the 201 is the receipt's, byte for byte, and stays so
    assert_stored_once(stack, entity_id, retried.final.json())
    assert retried.final.body == receipt_text(stack, key)
    assert post(stack, body, key).body == retried.final.body


def test_retry_of_a_stored_keyed_request_is_answered_from_its_receipt_while_its_lock_stands(stack):
    # GIVEN a keyed request that stored its event
    entity_id = f"user-{uuid.uuid4().hex[:8]}"
    body, key = producer_event(entity_id=entity_id), f"key-{uuid.uuid4().hex}"
    first = post(stack, body, key)
    assert first.status == 201, first.body
    # THEN its idempotency record is only the key's lock: still in progress, never completed
    (record,) = powertools_records(stack, key)
    assert record["status"]["S"] == "INPROGRESS"
    assert int(record["in_progress_expiration"]["N"]) > time.time() * 1000

    # WHEN the producer sends it again at once, and again with another body
    again = post(stack, body, key)
    reused = post(stack, {**body, "payload": {"amount": -1}}, key)

    # THEN the receipt answers the first 201 byte for byte, not a 409 for the standing lock, and a
    # different body under the key is a 422; nothing more is stored
    assert (again.status, again.body) == (201, first.body) == (201, receipt_text(stack, key))
    assert reused.status == 422 and error_shape(reused.json())["field"] == "idempotency_key", reused.body
    assert len(occurrence_rows(stack, entity_id)) == 1


def test_hundred_keyed_posts_under_random_storage_faults_reach_201_within_the_retry_budget(
    stack, faults: Faults, request: pytest.FixtureRequest
):
    # botocore's own backoff is shortened unless EVREPLAY_FAULTS_REAL_BACKOFF=1 (for figures);
    # EVREPLAY_FAULTS_SEED picks other faults
    if not os.environ.get("EVREPLAY_FAULTS_REAL_BACKOFF"):
        request.getfixturevalue("fast_retries")
    # GIVEN every S3 and DynamoDB request fails with probability 0.1 (half refused, half applied
    # with the answer lost)
    chaos = faults.inject_random(0.1, seed=int(os.environ.get("EVREPLAY_FAULTS_SEED", "19")))
    entities = [f"user-{uuid.uuid4().hex[:8]}" for _ in range(100)]
    runs = []

    # WHEN a producer posts 100 keyed events, retrying each as advised
    for entity_id in entities:
        request = partial(post, stack, producer_event(entity_id=entity_id), f"key-{entity_id}")
        runs.append((entity_id, retry_as_advised(request)))
    repeats = [post(stack, producer_event(entity_id=entity_id), f"key-{entity_id}") for entity_id in entities]
    faults.clear()

    statuses = [status for _, run in runs for status in run.statuses]
    print(
        f"\n{chaos.requests} storage requests, {sum(chaos.fired.values())} failed {chaos.fired}; "
        f"answers: {statuses.count(201)} x 201, {statuses.count(409)} x 409, {statuses.count(503)} x 503; "
        f"{sum(len(run.answers) > 1 for _, run in runs)} events retried; "
        f"slowest event {max(run.seconds for _, run in runs):.2f} s from its first attempt to its 201"
    )
    assert sum(chaos.fired.values()) >= 20, "faults were injected"
    # THEN each reached 201 within the budget, was stored once, and a repeat answers its bytes
    for (entity_id, run), repeat in zip(runs, repeats, strict=True):
        assert run.final.status == 201 and run.seconds <= RETRY_BUDGET_SECONDS, (entity_id, run.statuses)
        assert_stored_once(stack, entity_id, run.final.json())
        assert repeat.status in (201, *RETRIED)
        if repeat.status == 201:
            assert repeat.body == run.final.body
