"""Aggregates are versioned by replay: equal inputs give equal numbers under their own versions,
a changed input shows up as a changed count and hash (docs/design.md §5)."""

from __future__ import annotations

from tests.builders import DAY, event_at
from tests.stacks import aggregates, expected_hash, ingest, process, replay_messages

COMPARED = (
    "daily_event_count",
    "counts_by_event_type",
    "input_count",
    "inputs_hash",
    "first_event_time",
    "last_event_time",
)


def numbers(version: dict) -> dict:
    return {name: version[name] for name in COMPARED}


def test_two_replays_of_a_window_agree_and_a_later_arrival_makes_a_third_differ(stack):
    # GIVEN a day of events for one entity
    ingest(stack, [event_at("nia", i, "view" if i % 3 else "purchase") for i in range(0, 300, 17)])

    # WHEN the same window is replayed twice
    assert process(stack, replay_messages(stack, "nia", replay_id="r-1")) == []
    assert process(stack, replay_messages(stack, "nia", replay_id="r-2")) == []

    # THEN there are two versions with equal counts and equal hashes
    first, second = aggregates(stack, "nia")
    assert (first["replay_id"], second["replay_id"]) == ("r-1", "r-2")
    assert numbers(first) == numbers(second)
    assert first["inputs_hash"] == expected_hash(stack, "nia")

    # WHEN a late event arrives in the window and the window is replayed again
    ingest(stack, [event_at("nia", 301, "view", payload={"late": True})])
    assert process(stack, replay_messages(stack, "nia", replay_id="r-3")) == []

    # THEN the new version differs in count and hash, and the earlier versions are untouched
    versions = {item["replay_id"]: item for item in aggregates(stack, "nia")}
    assert numbers(versions["r-1"]) == numbers(first) and numbers(versions["r-2"]) == numbers(second)
    third = versions["r-3"]
    assert third["input_count"] == first["input_count"] + 1
    assert third["daily_event_count"] == first["daily_event_count"] + 1
    assert third["counts_by_event_type"]["view"] == first["counts_by_event_type"]["view"] + 1
    assert third["inputs_hash"] != first["inputs_hash"]
    assert third["inputs_hash"] == expected_hash(stack, "nia")
    assert third["last_event_time"] == f"{DAY}T10:05:01.000000Z"


def test_a_changed_payload_under_the_same_event_id_changes_the_hash_not_the_counts(stack):
    ingest(stack, [event_at("oli", 1, event_id="order-1", payload={"amount": 10})])
    assert process(stack, replay_messages(stack, "oli", replay_id="r-before")) == []
    # A corrected arrival of the same event_id, replayed with every occurrence...
    ingest(stack, [event_at("oli", 1, event_id="order-1", payload={"amount": 12})])
    assert process(stack, replay_messages(stack, "oli", replay_id="r-after", include_duplicates=True)) == []

    versions = {item["replay_id"]: item for item in aggregates(stack, "oli")}
    before, after = versions["r-before"], versions["r-after"]
    assert (before["daily_event_count"], after["daily_event_count"]) == (1, 1)
    assert (before["input_count"], after["input_count"]) == (1, 2)
    assert before["inputs_hash"] != after["inputs_hash"]
