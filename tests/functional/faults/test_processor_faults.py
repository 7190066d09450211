"""The processor under AWS faults: every call it makes for a replay message, failed the ways AWS
fails it, then the message redelivered (as SQS does for a batch item reported failed).

The calls (evreplay.processor.folding.MessageFolder):
- S3 GetObject - the raw event the message points at;
- DynamoDB TransactWriteItems - the first-occurrence markers of a version's messages and the
  version's counts, in one transaction; for a later occurrence of the same event
  (include_duplicates=true), a second transaction with its per-seq marker;
- DynamoDB UpdateItem - first_event_time / last_event_time (conditional min / max).

For each: the message is applied (botocore, or the processor's own transaction retry, retried the
call) or reported as a failed batch item, which SQS delivers again; after the redelivery the
version holds each message's effect exactly once - also when an applied write's answer was lost
and the whole batch is delivered once more.
"""

from __future__ import annotations

import json
import uuid

import pytest

from tests.builders import DAY, event_at, message_id
from tests.faults import (
    ALWAYS,
    INTERNAL,
    Faults,
    kinds_for,
    request_json,
)
from tests.stacks import Stack, expected_hash, ingest, process, replay_messages, version

# (service, operation, which of the operation's calls for the batch fails, what it does)
PROCESSOR_CALLS = [
    ("s3", "GetObject", 0, "the raw event"),
    ("dynamodb", "TransactWriteItems", 0, "first-occurrence marker + counts"),
    # the 2nd transaction: the first holds e0's and e1's first occurrences; e1's second occurrence
    # waits for it (one marker key per transaction) and then goes as a repeat
    ("dynamodb", "TransactWriteItems", 1, "a later occurrence's marker + counts"),
    ("dynamodb", "UpdateItem", 0, "first/last event_time"),
]


CELLS = [
    pytest.param(service, operation, skip, kind, id=f"{operation}{'-repeat' if skip else ''}-{kind}")
    for service, operation, skip, _ in PROCESSOR_CALLS
    for kind in kinds_for(service, operation)
]


@pytest.fixture
def stack(module_stack: Stack) -> Stack:
    return module_stack


def stored_window(stack: Stack) -> tuple[str, list[str]]:
    """A fresh entity with e0, e1, and a second occurrence of e1: three messages of a replay with
    include_duplicates=true (seq 3 is the repeat of an event already counted)."""
    entity = f"acct-{uuid.uuid4().hex[:8]}"
    ingest(
        stack,
        [
            event_at(entity, 5, event_id="e0"),
            event_at(entity, 10, event_id="e1", event_type="refund"),
            event_at(entity, 10, event_id="e1", event_type="refund"),
        ],
    )
    bodies = replay_messages(stack, entity, replay_id=f"r-{uuid.uuid4().hex[:12]}", include_duplicates=True)
    assert len(bodies) == 3
    return entity, bodies


def assert_applied_once(stack: Stack, entity: str, bodies: list[str]) -> None:
    replay_id = json.loads(bodies[0])["replay_id"]
    found = version(stack, entity, replay_id)
    assert (found["input_count"], found["daily_event_count"]) == (3, 2)
    assert found["counts_by_event_type"] == {"purchase": 1, "refund": 1}
    assert found["inputs_hash"] == expected_hash(stack, entity, include_duplicates=True)
    assert (found["first_event_time"], found["last_event_time"]) == (
        f"{DAY}T10:00:05.000000Z",
        f"{DAY}T10:00:10.000000Z",
    )


@pytest.mark.parametrize("times", [1, ALWAYS], ids=["once", "every-attempt"])
@pytest.mark.parametrize(("service", "operation", "skip", "kind"), CELLS)
def test_message_under_fault_is_applied_or_redelivered_and_counted_once(
    stack, faults: Faults, fast_retries, service, operation, skip, kind, times
):
    entity, bodies = stored_window(stack)
    # GIVEN the call fails once, or on every attempt from then on
    fault = faults.inject(service, operation, kind, times=times, skip=skip)

    # WHEN the processor gets the batch
    failed = process(stack, bodies)
    faults.clear()

    # THEN the message is applied (the call was retried) or reported failed for redelivery
    assert fault.fired >= 1, "the call was made"
    if times == 1:
        assert failed == [], "botocore (or the processor's transaction retry) retried the call"
    else:
        assert failed, "a message the processor could not apply is reported, never dropped"
        assert set(failed) <= {message_id(bodies, i) for i in range(3)}
    # WHEN SQS delivers the failed messages again (and, where an answer was lost, every message
    # once more: SQS delivers at least once)
    redelivered = [body for i, body in enumerate(bodies) if message_id(bodies, i) in failed]
    if redelivered:
        assert process(stack, redelivered) == []
    if kind.lost:
        assert process(stack, bodies) == []

    # THEN the version holds each message exactly once
    assert_applied_once(stack, entity, bodies)


def test_version_whose_times_cannot_be_widened_fails_only_its_own_messages(stack, faults: Faults, fast_retries):
    # GIVEN two versions' messages interleaved in one batch
    entity, bodies = stored_window(stack)
    other, other_bodies = stored_window(stack)
    batch = [body for pair in zip(bodies, other_bodies, strict=True) for body in pair]
    # AND first/last event_time of the first version cannot be written, on any attempt
    faults.inject(
        "dynamodb",
        "UpdateItem",
        INTERNAL,
        times=ALWAYS,
        when=lambda request: request_json(request).get("Key", {}).get("pk", {}).get("S") == f"AGG#{entity}",
    )

    # WHEN the processor gets the batch
    failed = process(stack, batch)
    faults.clear()

    # THEN exactly that version's messages are reported (applied, but their times not yet widened),
    # and the other version is complete
    assert failed == [message_id(batch, i) for i in (0, 2, 4)]
    assert_applied_once(stack, other, other_bodies)
    # WHEN SQS delivers them again THEN the redelivery widens the times and counts nothing twice
    assert process(stack, bodies) == []
    assert_applied_once(stack, entity, bodies)
