"""Pure parts of the processor: the inputs_hash and its limbs, message and query parsing, and the
exactly-once transaction logic against a stubbed DynamoDB client (no AWS)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from evreplay.core.errors import InvalidReplayMessage, InvalidRequest, StorageUnavailable
from evreplay.processor.hashing import LIMB_COUNT, from_limbs, input_hash, inputs_hash, render_hash, to_limbs
from evreplay.processor.messages import Contribution, contribution_of, parse_message
from evreplay.processor.store import ALREADY_APPLIED, APPLIED, APPLIED_REPEAT, AggregateStore
from evreplay.processor.versions import parse_list_query
from evreplay.replay.queue import ReplayMessage
from hypothesis import given
from hypothesis import strategies as st

# ---------------------------------------------------------------- inputs_hash

sha = st.binary(min_size=1, max_size=8).map(lambda b: hashlib.sha256(b).hexdigest())
event_ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_.:-", min_size=1, max_size=20)
inputs = st.lists(st.tuples(event_ids, sha), max_size=60)


def test_inputs_hash_is_pinned():
    # The definition must never drift: stored versions are compared with new ones.
    payload = "a8b88b82fe90a16048eb8851fe382405395cd395dafaa7ca9be90ec00f82a72b"  # sha256 of {"amount":10}
    by_definition = hashlib.sha256(f'["order-1","{payload}"]'.encode()).hexdigest()

    assert inputs_hash([("order-1", payload)]) == by_definition
    assert by_definition == "54046dcade877c35d46889c284368d967433856fa31578fd6e1e2fa5d0353bac"
    assert inputs_hash([]) == "0" * 64


@given(inputs, st.randoms(use_true_random=False))
def test_limb_sums_over_any_split_and_order_equal_the_hash_in_one_go(pairs, rng):
    # GIVEN the inputs shuffled and cut into arbitrary batches
    shuffled = list(pairs)
    rng.shuffle(shuffled)
    stored = [0] * LIMB_COUNT  # what DynamoDB's ADD accumulates, attribute by attribute
    position = 0
    while position < len(shuffled):
        size = rng.randint(1, 7)
        for event_id, digest in shuffled[position : position + size]:
            for i, limb in enumerate(to_limbs(input_hash(event_id, digest))):
                stored[i] += limb
        position += size

    # THEN folding the limb sums on read gives the hash computed in one go
    assert render_hash(from_limbs(stored)) == inputs_hash(pairs)


@given(st.integers(min_value=0, max_value=(1 << 256) - 1))
def test_limbs_round_trip_and_fit_32_bits(value):
    limbs = to_limbs(value)

    assert len(limbs) == 8 and all(0 <= limb < 2**32 for limb in limbs)
    assert from_limbs(limbs) == value


def test_sum_wraps_modulo_2_to_the_256():
    top = (1 << 256) - 1
    stored = [a + b for a, b in zip(to_limbs(top), to_limbs(2), strict=True)]

    assert from_limbs(stored) == 1
    assert render_hash(from_limbs(stored)) == "0" * 63 + "1"


# ---------------------------------------------------------------- messages

VALID: dict[str, Any] = {
    "replay_id": "replay-1",
    "seq": 3,
    "event_id": "evt-1",
    "entity_id": "user_123",
    "event_time": "2025-12-28T22:59:59.250000Z",
    "s3_bucket": "raw-bucket",
    "s3_key": "raw/source=a/x.json",
}


def test_parse_message_reads_the_contract_fields():
    assert parse_message(json.dumps(VALID)) == ReplayMessage(**VALID)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("{not json", "body"),
        ("NaN", "body"),
        ("[1, 2]", "body"),
        (json.dumps({**VALID, "seq": 0}), "seq"),
        (json.dumps({**VALID, "seq": "3"}), "seq"),
        (json.dumps({**VALID, "seq": True}), "seq"),
        (json.dumps({k: v for k, v in VALID.items() if k != "s3_key"}), "s3_key"),
        (json.dumps({**VALID, "payload": {}}), "payload"),
        (json.dumps({**VALID, "replay_id": "a#b"}), "replay_id"),
        (json.dumps({**VALID, "event_id": "has space"}), "event_id"),
        (json.dumps({**VALID, "event_time": "2025-12-28T23:59:59+01:00"}), "event_time"),
        (json.dumps({**VALID, "s3_key": "elsewhere/x.json"}), "s3_key"),
    ],
)
def test_parse_message_names_the_bad_field(body, field):
    with pytest.raises(InvalidReplayMessage) as caught:
        parse_message(body)

    assert caught.value.field == field


RAW = {
    "event_id": "evt-1",
    "entity_id": "user_123",
    "event_time": "2025-12-28T22:59:59.250000Z",
    "event_type": "purchase",
    "payload": {"amount": 1},
}


def test_contribution_takes_type_and_payload_hash_from_the_raw_object():
    found = contribution_of(ReplayMessage(**VALID), RAW)

    assert (found.day, found.event_type, found.seq) == ("2025-12-28", "purchase", 3)
    assert found.payload_sha256 == hashlib.sha256(b'{"amount":1}').hexdigest()


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({**RAW, "event_id": "other"}, "event_id"),
        ({**RAW, "entity_id": "other"}, "entity_id"),
        ({**RAW, "event_time": "2025-12-29T00:00:00.000000Z"}, "event_time"),
        ({k: v for k, v in RAW.items() if k != "payload"}, "s3_key"),
    ],
)
def test_contribution_rejects_a_message_that_disagrees_with_its_object(raw, field):
    with pytest.raises(InvalidReplayMessage) as caught:
        contribution_of(ReplayMessage(**VALID), raw)

    assert caught.value.field == field


def test_list_query_converts_limit_and_defaults_it():
    assert parse_list_query({"entity_id": "a", "limit": "7"}).limit == 7
    assert parse_list_query({"entity_id": "a"}).limit == 100
    with pytest.raises(InvalidRequest) as caught:
        parse_list_query({"entity_id": "a", "day": "2025-13-01"})
    assert caught.value.field == "day"


# ---------------------------------------------------------------- exactly once, against a stub


def cancelled(*reasons: dict[str, Any]) -> ClientError:
    return ClientError(
        {"Error": {"Code": "TransactionCanceledException"}, "CancellationReasons": list(reasons)},
        "TransactWriteItems",
    )


class StubDynamoDB:
    """Answers transact_write_items with a scripted sequence and records what was asked."""

    def __init__(self, *answers: Exception | None) -> None:
        self.answers = list(answers)
        self.transactions: list[list[dict[str, Any]]] = []

    def transact_write_items(self, TransactItems: list[dict[str, Any]]) -> dict[str, Any]:
        self.transactions.append(TransactItems)
        answer = self.answers.pop(0)
        if answer is not None:
            raise answer
        return {}


CONTRIBUTION = Contribution(
    replay_id="r",
    seq=4,
    entity_id="e",
    day="2025-06-01",
    event_id="evt",
    event_type="view",
    event_time="2025-06-01T10:00:00.000000Z",
    payload_sha256="0" * 64,
    s3_key="raw/x.json",
)
CONFLICT = {"Code": "TransactionConflict"}
NONE = {"Code": "None"}
FAILED = {"Code": "ConditionalCheckFailed"}


def store(stub: StubDynamoDB, sleeps: list[float] | None = None) -> AggregateStore:
    return AggregateStore(stub, "Aggregates", sleep=(sleeps if sleeps is not None else []).append)


def test_a_conflicting_transaction_is_retried_with_backoff():
    stub, sleeps = StubDynamoDB(cancelled(NONE, CONFLICT), cancelled(CONFLICT, NONE), None), list[float]()

    assert store(stub, sleeps).apply(CONTRIBUTION) == APPLIED
    assert len(stub.transactions) == 3 and len(sleeps) == 2


def test_conflicts_that_never_end_become_a_retryable_failure_of_the_message():
    stub = StubDynamoDB(*[cancelled(NONE, CONFLICT)] * 6)

    with pytest.raises(StorageUnavailable):
        store(stub).apply(CONTRIBUTION)
    assert len(stub.transactions) == 6


def test_an_existing_marker_with_the_same_seq_means_already_applied():
    existing = {**FAILED, "Item": {"seq": {"N": "4"}}}
    stub = StubDynamoDB(cancelled(existing, NONE))

    assert store(stub).apply(CONTRIBUTION) == ALREADY_APPLIED
    assert len(stub.transactions) == 1


def test_an_existing_marker_of_another_seq_applies_a_repeat_without_counting_the_event_again():
    existing = {**FAILED, "Item": {"seq": {"N": "1"}}}
    stub = StubDynamoDB(cancelled(existing, NONE), None)

    assert store(stub).apply(CONTRIBUTION) == APPLIED_REPEAT
    marker, update = stub.transactions[1]
    assert marker["Put"]["Item"]["sk"]["S"] == "M#2025-06-01#r#evt#0000000004"
    expression = update["Update"]["UpdateExpression"]
    assert "#inputs :inputs" in expression and "#events" not in expression and "#type" not in expression
    assert update["Update"]["ExpressionAttributeValues"][":inputs"] == {"N": "1"}


def test_a_repeat_whose_own_marker_exists_is_already_applied():
    stub = StubDynamoDB(cancelled({**FAILED, "Item": {"seq": {"N": "1"}}}, NONE), cancelled(FAILED, NONE))

    assert store(stub).apply(CONTRIBUTION) == ALREADY_APPLIED


def contribution(seq: int, event_id: str = "evt", event_type: str = "view") -> Contribution:
    return Contribution(**{**vars(CONTRIBUTION), "seq": seq, "event_id": event_id, "event_type": event_type})


def marker_keys(transaction: list[dict[str, Any]]) -> list[str]:
    return [item["Put"]["Item"]["sk"]["S"] for item in transaction if "Put" in item]


def test_messages_of_one_version_go_in_one_transaction_with_their_sums():
    stub = StubDynamoDB(None)
    batch = [contribution(1, "a"), contribution(2, "b", "buy"), contribution(3, "c")]

    assert store(stub).apply_all(batch) == [APPLIED, APPLIED, APPLIED]

    (transaction,) = stub.transactions
    assert marker_keys(transaction) == ["M#2025-06-01#r#a", "M#2025-06-01#r#b", "M#2025-06-01#r#c"]
    update = transaction[-1]["Update"]
    values, names = update["ExpressionAttributeValues"], update["ExpressionAttributeNames"]
    assert (values[":inputs"], values[":events"]) == ({"N": "3"}, {"N": "3"})
    assert {names[f"#type{n}"]: values[f":type{n}"]["N"] for n in range(2)} == {"ET#buy": "1", "ET#view": "2"}
    # the limbs are the sums of each message's limbs: what three one-message updates would have ADDed
    per_message = [to_limbs(c.hash) for c in batch]
    assert [int(values[f":h{i}"]["N"]) for i in range(LIMB_COUNT)] == [
        sum(limbs) for limbs in zip(*per_message, strict=True)
    ]


def test_two_occurrences_of_one_event_take_two_rounds_the_later_one_a_repeat():
    stub = StubDynamoDB(None, None)

    assert store(stub).apply_all([contribution(1), contribution(2, "other"), contribution(3)]) == [
        APPLIED,
        APPLIED,
        APPLIED_REPEAT,
    ]

    first, second = stub.transactions
    assert marker_keys(first) == ["M#2025-06-01#r#evt", "M#2025-06-01#r#other"]
    assert marker_keys(second) == ["M#2025-06-01#r#evt#0000000003"]
    assert "#events" not in second[-1]["Update"]["UpdateExpression"]


def test_the_same_message_twice_is_applied_once_without_another_request():
    stub = StubDynamoDB(None)

    assert store(stub).apply_all([contribution(4), contribution(4)]) == [APPLIED, ALREADY_APPLIED]
    assert len(stub.transactions) == 1


def test_a_round_cancelled_by_existing_markers_settles_them_and_retries_the_rest():
    # GIVEN seq 1's marker exists (applied before) and seq 2's event already counted under seq 9
    stub = StubDynamoDB(
        cancelled({**FAILED, "Item": {"seq": {"N": "1"}}}, {**FAILED, "Item": {"seq": {"N": "9"}}}, NONE, NONE),
        None,
    )

    outcomes = store(stub).apply_all([contribution(1, "a"), contribution(2, "b"), contribution(3, "c")])

    assert outcomes == [ALREADY_APPLIED, APPLIED_REPEAT, APPLIED]
    assert marker_keys(stub.transactions[1]) == ["M#2025-06-01#r#b#0000000002", "M#2025-06-01#r#c"]
    values = stub.transactions[1][-1]["Update"]["ExpressionAttributeValues"]
    assert (values[":inputs"], values[":events"]) == ({"N": "2"}, {"N": "1"})


def test_a_failed_round_fails_the_messages_left_and_keeps_those_applied_before():
    stub = StubDynamoDB(None, *[cancelled(NONE, CONFLICT)] * 6)

    first, repeat = store(stub).apply_all([contribution(1), contribution(2)])

    assert first == APPLIED
    assert isinstance(repeat, StorageUnavailable)
    assert len(stub.transactions) == 7
