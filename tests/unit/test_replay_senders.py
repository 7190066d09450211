"""The senders (evreplay.replay.senders): one batch loop for every destination type, each type's limits,
marking, FIFO ids, EventBridge failures resent by position, the event format's fallback to a pointer."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from evreplay.core.errors import EventBridgeSendFailed
from evreplay.replay.destinations import InvalidDestinations, destination_names, parse_destinations
from evreplay.replay.queue import ReplayMessage
from evreplay.replay.senders import (
    BodyBuilder,
    EventBridgeSender,
    FifoSender,
    SqsSender,
    deduplication_id,
)


class FakeSqs:
    def __init__(self) -> None:
        self.calls: list[list[dict[str, Any]]] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(Entries)
        return {"Successful": [], "Failed": []}


class FakeEvents:
    def __init__(self, failing: dict[int, int]) -> None:
        self.failing = dict(failing)  # seq -> failures left
        self.calls: list[list[int]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        seqs = [json.loads(entry["Detail"])["seq"] for entry in Entries]
        self.calls.append(seqs)
        results: list[dict[str, Any]] = []
        for seq in seqs:
            if self.failing.get(seq, 0) > 0:
                self.failing[seq] -= 1
                results.append({"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"})
            else:
                results.append({"EventId": f"id-{seq}"})
        return {"FailedEntryCount": sum(1 for r in results if "ErrorCode" in r), "Entries": results}


class FakeRaw:
    def __init__(self, payload_bytes: dict[str, int]) -> None:
        self.payload_bytes = payload_bytes

    def get(self, bucket: str, key: str) -> dict[str, Any]:
        return {
            "source": "app",
            "event_type": "purchase",
            "entity_id": "u",
            "event_id": key,
            "event_time": "2025-12-28T00:00:00.000000Z",
            "ingest_time": "2025-12-28T00:00:01.000000Z",
            "payload": {"blob": "x" * self.payload_bytes.get(key, 10)},
            "request_id": "not part of the body",
        }


def message(seq: int, entity: str = "u", event_type: str = "purchase") -> ReplayMessage:
    return ReplayMessage("r1", seq, f"e{seq}", entity, "2025-12-28T00:00:00.000000Z", "b", f"k{seq}", event_type)


def test_sqs_entries_carry_the_marking_attributes():
    sqs = FakeSqs()

    SqsSender(sqs, "url").send([message(7)])

    (entry,) = sqs.calls[0]
    assert entry["MessageAttributes"] == {
        "evreplay-replay-id": {"DataType": "String", "StringValue": "r1"},
        "evreplay-seq": {"DataType": "Number", "StringValue": "7"},
    }
    assert "MessageGroupId" not in entry


def test_batches_stay_under_256_kib_as_well_as_ten_entries():
    sqs = FakeSqs()
    raw = FakeRaw({f"k{seq}": 100_000 for seq in range(1, 6)})

    SqsSender(sqs, "url", bodies=BodyBuilder("event", raw)).send([message(seq) for seq in range(1, 6)])  # type: ignore[arg-type]

    assert [len(call) for call in sqs.calls] == [2, 2, 1]
    assert all(sum(len(e["MessageBody"].encode()) for e in call) < 256 * 1024 for call in sqs.calls)


def test_fifo_batches_hold_one_entity_each_in_order_with_group_and_dedup_ids():
    sqs = FakeSqs()
    messages = [message(seq, entity) for seq, entity in enumerate(["a"] * 12 + ["b"] * 3 + ["c"], start=1)]

    FifoSender(sqs, "url").send(messages)

    assert [[e["MessageGroupId"] for e in call] for call in sqs.calls] == [["a"] * 10, ["a"] * 2, ["b"] * 3, ["c"]]
    assert [int(e["Id"]) for call in sqs.calls for e in call] == list(range(1, 17))
    dedup = [e["MessageDeduplicationId"] for call in sqs.calls for e in call]
    assert dedup[0] == deduplication_id("r1", 1) and len(set(dedup)) == 16 and max(map(len, dedup)) <= 128
    assert deduplication_id("r1", 1) == deduplication_id("r1", 1) != deduplication_id("r2", 1)


def test_eventbridge_resends_only_the_entries_reported_failed():
    events = FakeEvents({3: 2, 12: 1})

    report = EventBridgeSender(events, "bus", sleep=lambda _: None).send([message(s) for s in range(1, 13)])

    assert events.calls == [list(range(1, 11)), [3], [3], [11, 12], [12]]
    assert report.resent_entries == 3 and report.calls == 5


def test_eventbridge_entries_that_keep_failing_raise_naming_them():
    events = FakeEvents({4: 99})

    with pytest.raises(EventBridgeSendFailed, match=r"seq 4; codes ThrottlingException"):
        EventBridgeSender(events, "bus", attempts=3, sleep=lambda _: None).send([message(s) for s in range(1, 6)])


def test_eventbridge_entries_are_marked_by_source_and_detail_type():
    events = FakeEvents({})
    sender = EventBridgeSender(events, "team-bus")

    entry = sender.entry(message(1, event_type="refund"), message(1).body())

    assert {k: v for k, v in entry.request.items() if k != "Detail"} == {
        "Source": "evreplay.replay",
        "DetailType": "refund",
        "EventBusName": "team-bus",
    }


def test_an_event_too_large_goes_as_its_pointer_and_is_counted():
    sqs = FakeSqs()
    raw = FakeRaw({"k2": 300_000})

    report = SqsSender(sqs, "url", bodies=BodyBuilder("event", raw)).send([message(1), message(2)])  # type: ignore[arg-type]

    bodies = [json.loads(e["MessageBody"]) for call in sqs.calls for e in call]
    assert bodies[0]["replay"] == {"replay_id": "r1", "seq": 1} and "request_id" not in bodies[0]["event"]
    assert bodies[1] == json.loads(message(2).body())
    assert report.sent_as_pointer == 1


class OverlappingRaw(FakeRaw):
    """Each read waits until `together` reads are in flight at once: reads one after another break it."""

    def __init__(self, together: int) -> None:
        super().__init__({})
        self.barrier = threading.Barrier(together, timeout=5)

    def get(self, bucket: str, key: str) -> dict[str, Any]:
        self.barrier.wait()
        return super().get(bucket, key)


def test_event_format_reads_stored_events_side_by_side_and_keeps_message_order():
    # GIVEN stored events whose reads only complete when 4 are in flight together
    sqs = FakeSqs()
    raw = OverlappingRaw(together=4)
    messages = [message(seq) for seq in range(1, 21)]

    # WHEN 20 messages are sent in the event format, 4 workers
    SqsSender(sqs, "url", bodies=BodyBuilder("event", raw), max_workers=4).send(messages)  # type: ignore[arg-type]

    # THEN every body is its own message's event, in seq order
    bodies = [json.loads(e["MessageBody"]) for call in sqs.calls for e in call]
    assert [body["replay"]["seq"] for body in bodies] == list(range(1, 21))
    assert [body["event"]["event_id"] for body in bodies] == [f"k{seq}" for seq in range(1, 21)]


def test_destinations_parse_by_arn_type_and_refuse_what_cannot_be_sent_to():
    declared = "a=arn:aws:sqs:us-east-1:123456789012:q,b=arn:aws:sqs:us-east-1:123456789012:q.fifo," + (
        "c=arn:aws:events:eu-west-1:123456789012:event-bus/bus"
    )

    parsed = parse_destinations(declared, "arn:aws:sqs:us-east-1:123456789012:ReplayQueue")

    assert [(d.name, d.type) for d in parsed.values()] == [
        ("default", "sqs"),
        ("a", "sqs"),
        ("b", "sqs-fifo"),
        ("c", "eventbridge"),
    ]
    assert parsed["b"].queue_url == "https://sqs.us-east-1.amazonaws.com/123456789012/q.fifo"
    assert parsed["c"].bus_name == "bus"
    assert destination_names(declared) == {"default", "a", "b", "c"}
    for bad in ("a=arn:aws:sns:us-east-1:123456789012:t", "default=arn:aws:sqs:us-east-1:123456789012:q", "noarn"):
        with pytest.raises(InvalidDestinations):
            parse_destinations(bad, None)
