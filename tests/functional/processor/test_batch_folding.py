"""The processor folds a batch in waves (evreplay.processor.folding): the raw objects read at once,
different versions applied concurrently and one version's messages in order, first/last event_time
widened once per version. Held against a plain model of docs/design.md §5, and the requests counted
at botocore on the handler's own clients."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.awsrequest import AWSPreparedRequest
from evreplay.core.event_ids import payload_sha256
from evreplay.processor.hashing import inputs_hash
from moto.core.botocore_stubber import BotocoreStubber

from tests.builders import DAY, event_at, message_id
from tests.faults import request_json
from tests.stacks import aggregate_items, ingest, process, replay_messages, version


def reference_versions(bodies: list[str], events: dict[str, dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """docs/design.md §5 in plain Python: the versions that the messages `bodies` (each applied once
    per (replay_id, seq), whatever the batches and redeliveries) make, keyed by (entity_id, replay_id)."""
    applied = {(m["replay_id"], m["seq"]): m for m in map(json.loads, bodies)}
    versions: dict[tuple[str, str], dict[str, Any]] = {}
    for (replay_id, _), m in sorted(applied.items()):
        event = events[m["event_id"]]
        v = versions.setdefault((m["entity_id"], replay_id), {"inputs": [], "types": {}, "times": []})
        v["inputs"].append((m["event_id"], payload_sha256(event["payload"])))
        v["types"].setdefault(m["event_id"], event["event_type"])
        v["times"].append(m["event_time"])
    return {
        key: {
            "daily_event_count": len(v["types"]),
            "counts_by_event_type": dict(Counter(v["types"].values())),
            "input_count": len(v["inputs"]),
            "inputs_hash": inputs_hash(v["inputs"]),
            "first_event_time": min(v["times"]),
            "last_event_time": max(v["times"]),
        }
        for key, v in versions.items()
    }


def public_numbers(stack: Any, entity: str, replay_id: str) -> dict[str, Any]:
    found = version(stack, entity, replay_id)
    return {k: v for k, v in found.items() if k not in ("replay_id", "entity_id", "day", "created_at", "updated_at")}


def renumbered(bodies: list[str], replay_id: str, first_seq: int) -> list[str]:
    """The bodies as messages of one replay over several entities (seq unique within the replay)."""
    return [
        json.dumps({**json.loads(body), "replay_id": replay_id, "seq": seq})
        for seq, body in enumerate(bodies, start=first_seq)
    ]


@contextmanager
def watched_requests(delay: float = 0.0) -> Iterator[dict[str, Any]]:
    """Every AWS request made in the process meanwhile (the handler's, here): counted per operation,
    and the most in flight at once (overall and per aggregates partition), each held `delay` seconds
    before moto answers it so overlaps show. Hooked where every client's request reaches moto."""
    seen: dict[str, Any] = {"count": Counter(), "most": Counter()}
    now: Counter[str] = Counter()
    lock = threading.Lock()
    original = BotocoreStubber.__call__

    def watched(stubber: BotocoreStubber, event_name: str, request: AWSPreparedRequest, **kwargs: Any) -> Any:
        if not stubber.enabled:
            return original(stubber, event_name, request, **kwargs)
        operation = event_name.rsplit(".", 1)[-1]
        lanes = [operation]
        if operation == "TransactWriteItems":
            items = request_json(request)["TransactItems"]
            lanes += {f"{operation} {item['Update']['Key']['pk']['S']}" for item in items if "Update" in item}
        with lock:
            seen["count"][operation] += 1
            for lane in lanes:
                now[lane] += 1
                seen["most"][lane] = max(seen["most"][lane], now[lane])
        try:
            time.sleep(delay)
            return original(stubber, event_name, request, **kwargs)
        finally:
            with lock:
                for lane in lanes:
                    now[lane] -= 1

    BotocoreStubber.__call__ = watched  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        BotocoreStubber.__call__ = original  # type: ignore[method-assign]


def test_batch_with_repeated_messages_duplicates_and_a_missing_object_matches_the_reference(stack):
    # GIVEN three entities' events, one event stored twice (include_duplicates=true sends both)
    events = {
        "e1": event_at("ann", 1, event_id="e1"),
        "e2": event_at("ann", 2, "view", event_id="e2"),
        "e3": event_at("ben", 3, event_id="e3"),
        "e4": event_at("ben", 4, "refund", event_id="e4"),
        "e5": event_at("cal", 5, event_id="e5"),
    }
    ingest(stack, list(events.values()))
    ingest(stack, [events["e2"]])
    ann = renumbered(replay_messages(stack, "ann", include_duplicates=True), "r-mixed", 1)
    ben = renumbered(replay_messages(stack, "ben"), "r-mixed", 4)
    cal = renumbered(replay_messages(stack, "cal"), "r-mixed", 6)
    assert (len(ann), len(ben), len(cal)) == (3, 2, 1)
    missing = json.dumps({**json.loads(cal[0]), "seq": 7, "s3_key": "raw/source=test/gone.json"})
    # AND one batch of 10 holding every message, two of them twice (SQS delivers at least once), the
    # two occurrences of e2, a message whose object is missing and a body that is not JSON
    batch = [ann[0], ben[0], ann[1], missing, ann[0], ben[1], "not json", cal[0], ann[2], ann[1]]

    # WHEN the processor gets the batch
    failed = process(stack, batch)
    after_first = aggregate_items(stack)

    # THEN exactly the missing object's message and the bad body are reported
    assert failed == [message_id(batch, 3), message_id(batch, 6)]
    # AND every version holds what the plain model computes from the good messages, each once
    expected = reference_versions([*ann, *ben, *cal], events)
    assert set(expected) == {("ann", "r-mixed"), ("ben", "r-mixed"), ("cal", "r-mixed")}
    for entity, replay_id in expected:
        assert public_numbers(stack, entity, replay_id) == expected[entity, replay_id], entity
    assert expected["ann", "r-mixed"]["input_count"] == 3 and expected["ann", "r-mixed"]["daily_event_count"] == 2

    # WHEN the whole batch is delivered again
    assert process(stack, batch) == failed
    # THEN not one item of the table changed
    assert aggregate_items(stack) == after_first


def test_batch_of_one_version_is_one_transaction_and_one_widening(stack):
    # GIVEN ten events of one entity on one day: one aggregate version
    ingest(stack, [event_at("dan", 7 * i + 3) for i in range(10)])
    bodies = replay_messages(stack, "dan", replay_id="r-once")
    shuffled = [bodies[i] for i in (4, 9, 0, 7, 2, 5, 1, 8, 3, 6)]

    # WHEN they arrive as one batch, shuffled
    with watched_requests() as seen:
        assert process(stack, shuffled) == []

    # THEN each message costs its read; the version one transaction (ten markers and the counts)
    # and two conditional updates for its times
    assert seen["count"] == {"GetObject": 10, "TransactWriteItems": 1, "UpdateItem": 2}
    found = version(stack, "dan", "r-once")
    assert (found["first_event_time"], found["last_event_time"]) == (
        f"{DAY}T10:00:03.000000Z",
        f"{DAY}T10:01:06.000000Z",
    )
    assert (found["input_count"], found["daily_event_count"]) == (10, 10)
    before = aggregate_items(stack)

    # WHEN the batch is delivered again
    with watched_requests() as seen:
        assert process(stack, shuffled) == []

    # THEN one cancelled transaction tells every message apart as applied before: nothing changes
    assert seen["count"] == {"GetObject": 10, "TransactWriteItems": 1, "UpdateItem": 2}
    assert aggregate_items(stack) == before


def test_batch_folds_different_versions_concurrently_and_one_versions_messages_in_order(stack):
    # GIVEN five events each of two entities, interleaved in one batch
    ingest(stack, [event_at(entity, i) for i in range(5) for entity in ("eve", "fin")])
    eve, fin = replay_messages(stack, "eve", replay_id="r-lanes"), replay_messages(stack, "fin", replay_id="r-lanes")
    batch = [body for pair in zip(eve, fin, strict=True) for body in pair]

    # WHEN the batch is folded, each request held a moment so overlapping ones show
    with watched_requests(delay=0.05) as seen:
        assert process(stack, batch) == []

    # THEN the raw objects were read together and the two versions' transactions ran side by side
    assert seen["most"]["GetObject"] > 1
    assert seen["most"]["TransactWriteItems"] == 2
    assert seen["most"]["TransactWriteItems AGG#eve"] == seen["most"]["TransactWriteItems AGG#fin"] == 1
    assert version(stack, "eve", "r-lanes")["input_count"] == version(stack, "fin", "r-lanes")["input_count"] == 5


def test_random_batches_with_redeliveries_and_missing_objects_match_the_reference(stack):
    # GIVEN three entities' events, some stored two or three times, replayed with include_duplicates=true
    events = {f"e{n}": event_at(f"ent{n % 3}", n, ("a", "b", "c")[n % 2], event_id=f"e{n}") for n in range(12)}
    ingest(stack, list(events.values()))
    ingest(stack, [events["e1"], events["e4"], events["e4"], events["e9"]])
    for seed in range(4):
        rng = random.Random(seed)
        replay_id, good, seq = f"r-random-{seed}", [], 1
        for entity in ("ent0", "ent1", "ent2"):
            good += renumbered(replay_messages(stack, entity, include_duplicates=True), replay_id, seq)
            seq = len(good) + 1
        assert len(good) == 16
        missing = [
            json.dumps({**json.loads(rng.choice(good)), "seq": seq + k, "s3_key": f"raw/source=test/gone-{k}.json"})
            for k in range(3)
        ]
        # WHEN the messages arrive shuffled, in batches of 1 to 10, some again (in the same batch or a
        # later one), with messages whose objects are missing among them
        arrivals = good + missing + rng.sample(good, 6)
        rng.shuffle(arrivals)
        position = 0
        while position < len(arrivals):
            batch = arrivals[position : position + rng.randint(1, 10)]
            position += len(batch)
            # THEN each batch reports exactly its missing-object messages
            assert process(stack, batch) == [message_id(batch, i) for i, body in enumerate(batch) if body in missing]

        # AND every version is what the plain model computes from the good messages, each once
        expected = reference_versions(good, events)
        assert len(expected) == 3
        for entity, replay in expected:
            assert public_numbers(stack, entity, replay) == expected[entity, replay], (seed, entity)
