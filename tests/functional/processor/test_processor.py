"""The processor on SQS-shaped batches: what a replay message adds to its aggregate version, and
that it adds it exactly once (docs/design.md §5)."""

from __future__ import annotations

import json
import random

from evreplay.core.event_ids import payload_sha256
from evreplay.processor.store import AggregateStore

from tests.builders import DAY, emf, event_at, message_id, replay_id_of
from tests.stacks import aggregate_items, expected_hash, ingest, process, replay_messages, version


def test_message_is_folded_into_its_replay_version(stack):
    # GIVEN one stored event and its replay message
    ingest(stack, [event_at("alice", 5, payload={"amount": 3})])
    bodies = replay_messages(stack, "alice", replay_id="r-one")

    # WHEN the processor gets it
    assert process(stack, bodies) == []

    # THEN the version of (alice, DAY, r-one) counts it, with its hash and times
    found = version(stack, "alice", "r-one")
    assert found == {
        "replay_id": "r-one",
        "entity_id": "alice",
        "day": DAY,
        "daily_event_count": 1,
        "counts_by_event_type": {"purchase": 1},
        "input_count": 1,
        "inputs_hash": expected_hash(stack, "alice"),
        "first_event_time": f"{DAY}T10:00:05.000000Z",
        "last_event_time": f"{DAY}T10:00:05.000000Z",
        "created_at": found["created_at"],
        "updated_at": found["updated_at"],
    }
    assert len(found["inputs_hash"]) == 64 and found["inputs_hash"] != "0" * 64
    # AND an applied-marker records the event and its payload hash (what a version diff reads)
    store = AggregateStore(stack.dynamodb, stack.env["AGGREGATES_TABLE"])
    (marker,) = store.markers("alice", DAY, "r-one")
    message = json.loads(bodies[0])
    assert (marker["event_id"], marker["seq"], marker["payload_sha256"]) == (
        message["event_id"],
        1,
        payload_sha256({"amount": 3}),
    )


def test_counts_per_event_type_and_time_bounds_over_many_events(stack):
    types = ["view"] * 7 + ["purchase"] * 3 + ["refund"]
    ingest(stack, [event_at("bob", 10 * i + 1, event_type) for i, event_type in enumerate(types)])
    bodies = replay_messages(stack, "bob")
    random.Random(4).shuffle(bodies)  # arrival order at the processor does not matter

    assert process(stack, bodies[:6]) == []
    assert process(stack, bodies[6:]) == []

    found = version(stack, "bob", replay_id_of(bodies))
    assert found["counts_by_event_type"] == {"purchase": 3, "refund": 1, "view": 7}
    assert found["daily_event_count"] == found["input_count"] == 11
    assert found["first_event_time"] == f"{DAY}T10:00:01.000000Z"
    assert found["last_event_time"] == f"{DAY}T10:01:41.000000Z"


def test_replay_split_across_many_batches_matches_computing_it_in_one_go(stack):
    # GIVEN 47 events and two replays of them
    ingest(stack, [event_at("carol", i, random.Random(i).choice(["a", "b", "c"])) for i in range(47)])
    split = replay_messages(stack, "carol", replay_id="r-split")
    whole = replay_messages(stack, "carol", replay_id="r-whole")

    # WHEN one replay is processed in shuffled batches of 1..7 and the other in a single batch
    random.Random(7).shuffle(split)
    rng, position = random.Random(11), 0
    while position < len(split):
        size = rng.randint(1, 7)
        assert process(stack, split[position : position + size]) == []
        position += size
    assert process(stack, whole) == []

    # THEN both have the exact count and the hash computed in one go from the index
    by_batches, in_one_go = version(stack, "carol", "r-split"), version(stack, "carol", "r-whole")
    assert by_batches["input_count"] == by_batches["daily_event_count"] == 47
    assert by_batches["inputs_hash"] == in_one_go["inputs_hash"] == expected_hash(stack, "carol")
    assert {k: v for k, v in by_batches.items() if k not in ("replay_id", "created_at", "updated_at")} == {
        k: v for k, v in in_one_go.items() if k not in ("replay_id", "created_at", "updated_at")
    }


def test_same_message_processed_twice_changes_nothing(stack):
    ingest(stack, [event_at("dave", i) for i in range(3)])
    bodies = replay_messages(stack, "dave")
    assert process(stack, bodies) == []
    before = aggregate_items(stack)

    # WHEN SQS delivers one message again, alone and inside another batch
    assert process(stack, [bodies[1]]) == []
    assert process(stack, [bodies[2], bodies[0]]) == []

    # THEN not one item of the table changed (counts, hash, times, markers, updated_at)
    assert aggregate_items(stack) == before
    assert version(stack, "dave", replay_id_of(bodies))["input_count"] == 3


def test_whole_batch_retried_after_partial_failure_leaves_the_aggregate_unchanged(stack):
    # GIVEN a batch of 10 where one message points at a missing object
    ingest(stack, [event_at("erin", i) for i in range(9)])
    bodies = replay_messages(stack, "erin")
    broken = json.loads(bodies[4])
    broken.update(seq=10, s3_key="raw/missing/object.json")
    batch = [*bodies, json.dumps(broken)]

    # WHEN the batch is processed: only the broken one is reported
    assert process(stack, batch) == [message_id(batch, 9)]
    after_first = aggregate_items(stack)

    # AND the whole batch comes back (a crash after the writes, a timeout) and is processed again
    assert process(stack, batch) == [message_id(batch, 9)]

    # THEN the aggregate is exactly what it was after the first attempt
    assert aggregate_items(stack) == after_first
    assert version(stack, "erin", replay_id_of(bodies))["input_count"] == 9


def test_bad_messages_are_reported_counted_and_logged_while_the_rest_succeeds(stack, capsys, caplog):
    # GIVEN a batch mixing good messages with every kind of bad one
    ingest(stack, [event_at("fay", i) for i in range(3)])
    good = replay_messages(stack, "fay", replay_id="r-fay")
    missing = {**json.loads(good[0]), "seq": 4, "s3_key": "raw/source=test/gone.json"}
    mismatched = {**json.loads(good[1]), "seq": 5, "event_id": "not-the-stored-one"}
    other_bucket = {**json.loads(good[2]), "seq": 6, "s3_bucket": "someone-elses-bucket"}
    no_seq = {key: value for key, value in json.loads(good[0]).items() if key != "seq"}
    batch = [
        good[0],
        json.dumps(missing),
        "not json at all",
        good[1],
        json.dumps(no_seq),
        json.dumps(mismatched),
        json.dumps(["a", "list"]),
        json.dumps(other_bucket),
        good[2],
    ]
    capsys.readouterr()

    # WHEN the processor runs on it
    failed = process(stack, batch)

    # THEN exactly the bad ones are in batchItemFailures and the good ones are folded
    assert failed == [message_id(batch, i) for i in (1, 2, 4, 5, 6, 7)]
    assert version(stack, "fay", "r-fay")["input_count"] == 3
    # AND the metrics count both kinds
    output = capsys.readouterr().out
    metrics = emf(output)
    assert metrics["ProcessorErrorCount"] == 6
    assert metrics["ProcessorMessageCount"] == 3
    # AND each failure is logged with its replay_id and event_id where the body has them
    warnings = [vars(r) for r in caplog.records if r.levelname == "WARNING" and "failed" in r.getMessage()]
    codes = sorted(line["error_code"] for line in warnings)
    assert codes == sorted(["RawObjectMissing", "InvalidReplayMessage", *["InvalidReplayMessage"] * 4])
    missing_log = next(line for line in warnings if line["error_code"] == "RawObjectMissing")
    assert (missing_log["replay_id"], missing_log["event_id"], missing_log["seq"]) == ("r-fay", missing["event_id"], 4)
    assert {line.get("error_field") for line in warnings} >= {"body", "seq", "event_id", "s3_bucket"}


def test_folded_messages_are_logged_with_replay_id_and_event_id(stack, caplog):
    from evreplay.core.observability import logger

    ingest(stack, [event_at("gus", 1)])
    bodies = replay_messages(stack, "gus", replay_id="r-gus")
    previous = logger.log_level
    logger.setLevel("INFO")
    try:
        assert process(stack, bodies) == []
        assert process(stack, bodies) == []
    finally:
        logger.setLevel(previous)

    folded = [vars(r) for r in caplog.records if r.getMessage() == "replay message folded"]
    assert [(line["replay_id"], line["event_id"], line["outcome"]) for line in folded] == [
        ("r-gus", json.loads(bodies[0])["event_id"], "APPLIED"),
        ("r-gus", json.loads(bodies[0])["event_id"], "ALREADY_APPLIED"),
    ]


def test_a_batch_where_every_message_fails_is_still_a_partial_response(stack):
    bodies = ["{}", "[]"]

    assert process(stack, bodies) == [message_id(bodies, 0), message_id(bodies, 1)]


def test_with_duplicates_input_count_counts_occurrences_and_daily_count_counts_events(stack):
    # GIVEN 4 events, one of which arrived 3 times (the same event_id and payload)
    ingest(stack, [event_at("hal", 1), event_at("hal", 2, "view"), event_at("hal", 3), event_at("hal", 4)])
    ingest(stack, [event_at("hal", 2, "view"), event_at("hal", 2, "view")])
    with_duplicates = replay_messages(stack, "hal", replay_id="r-all", include_duplicates=True)
    deduplicated = replay_messages(stack, "hal", replay_id="r-dedup")
    assert len(with_duplicates) == 6 and len(deduplicated) == 4

    # WHEN both replays are processed (the duplicates' messages twice, as a redelivery)
    assert process(stack, with_duplicates) == []
    assert process(stack, with_duplicates[1:4]) == []
    assert process(stack, deduplicated) == []

    # THEN input_count counts every occurrence once, daily_event_count and the per-type counts
    # count each event once, and the hash covers every input
    everything, distinct = version(stack, "hal", "r-all"), version(stack, "hal", "r-dedup")
    assert (everything["input_count"], everything["daily_event_count"]) == (6, 4)
    assert (distinct["input_count"], distinct["daily_event_count"]) == (4, 4)
    assert everything["counts_by_event_type"] == distinct["counts_by_event_type"] == {"purchase": 3, "view": 1}
    assert everything["inputs_hash"] == expected_hash(stack, "hal", include_duplicates=True)
    assert distinct["inputs_hash"] == expected_hash(stack, "hal")
    assert everything["inputs_hash"] != distinct["inputs_hash"]
    # AND the version's markers record every occurrence, sorted by event_id
    store = AggregateStore(stack.dynamodb, stack.env["AGGREGATES_TABLE"])
    markers = list(store.markers("hal", DAY, "r-all"))
    assert sorted(marker["seq"] for marker in markers) == [1, 2, 3, 4, 5, 6]
    assert [marker["event_id"] for marker in markers] == sorted(marker["event_id"] for marker in markers)


def test_events_of_two_utc_days_fold_into_two_versions(stack):
    # 23:30 at +01:00 is still the same UTC day; 00:15 UTC the next day is not
    ingest(
        stack,
        [
            {**event_at("ivy", 0), "event_time": f"{DAY}T23:30:00+01:00"},
            {**event_at("ivy", 1), "event_time": "2025-06-02T00:15:00Z"},
        ],
    )
    bodies = replay_messages(stack, "ivy", replay_id="r-days", end="2025-06-03T00:00:00.000000Z")

    assert process(stack, bodies) == []

    assert version(stack, "ivy", "r-days", DAY)["last_event_time"] == f"{DAY}T22:30:00.000000Z"
    assert version(stack, "ivy", "r-days", "2025-06-02")["first_event_time"] == "2025-06-02T00:15:00.000000Z"
