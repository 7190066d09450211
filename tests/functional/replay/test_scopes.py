"""docs/design.md §4.11, rule by rule: entity-list and stream replays run by the real state machine (the
Distributed Map on moto's interpreter, its tasks in-process) over events stored through the ingest API,
the messages read back off the replay queue and held against the plain model (tests/replay_reference.py)."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from typing import Any

import pytest
from evreplay.core import clients

from tests.builders import WINDOW, event
from tests.replay_reference import Occurrence, ScopeReplay, reference_scope_replay
from tests.stacks import Workflow

BODY_FIELDS = ("event_id", "entity_id", "event_time", "s3_bucket", "s3_key")


def stored(flow: Workflow, bodies: list[dict[str, Any]]) -> list[Occurrence]:
    """Ingest in one batch and describe every stored occurrence (the index says which raw object each
    arrival has, and its arrival order: the arrival id starts with the ingest time)."""
    flow.ingest(bodies)
    rows = sorted(flow.index_rows(), key=lambda row: row["arrival_id"])
    return [
        Occurrence(
            row["entity_id"],
            row["event_id"],
            row["event_time"],
            arrival,
            row["s3_bucket"],
            row["s3_key"],
            row["source"],
            row["event_type"],
        )
        for arrival, row in enumerate(rows)
    ]


def per_entity(messages: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Messages grouped by entity in seq order, checking rule 5 on the way: seq unique in the replay."""
    seqs = [message["seq"] for message in messages]
    assert len(seqs) == len(set(seqs)), "seq is unique within the replay"
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for message in sorted(messages, key=lambda m: m["seq"]):
        grouped[message["entity_id"]].append({name: message[name] for name in BODY_FIELDS})
    return dict(grouped)


def check(flow: Workflow, name: str, expected: ScopeReplay, **request: Any) -> dict[str, Any]:
    replay = flow.replay(name, **request)
    assert replay.status == "SUCCEEDED", replay.last
    assert {message["replay_id"] for message in replay.messages} <= {name}
    assert per_entity(replay.messages) == expected.per_entity
    output = replay.output
    for field, value in expected.result.items():
        got = output[field]
        if field == "preview":  # bodies as sent: the seq is the workflow's (rule 5 fixes only its properties)
            got = [{name: body[name] for name in BODY_FIELDS} for body in got]
        assert got == value, field
    return output


def spread(entities: int, per_entity: int, source: str = "ios_app") -> list[dict[str, Any]]:
    """Events of several entities, sharing event ids across entities (each entity its own dedup)."""
    bodies = []
    for n in range(per_entity):
        for e in range(entities):
            body = event(f"user-{e:03d}", f"2025-12-28T{(n % 24):02d}:{(e * 7) % 60:02d}:00Z", f"ev{n % 4}", amount=n)
            body["source"] = source
            body["event_type"] = ["purchase", "refund", "view"][(n + e) % 3]
            bodies.append(body)
    return bodies


def test_entity_list_replays_each_entity_by_the_one_entity_rules(workflow):
    flow = workflow(ReplayPageSize=10)
    # GIVEN 6 entities with 12 events each: event ids repeat within (duplicates pages apart) and across entities
    occurrences = stored(flow, spread(6, 12))
    listed = ["user-000", "user-002", "user-003", "user-005", "nobody"]
    expected = reference_scope_replay(occurrences, WINDOW["start_time"], WINDOW["end_time"], entity_ids=listed)
    # WHEN the list is replayed
    output = check(flow, "list-1", expected, entity_ids=listed, **WINDOW)
    # THEN each entity's messages are its own replay's (order, dedup per entity), and 4 entities matched
    assert output["entities"] == 4 and output["enqueued"] == 16


def test_stream_replay_takes_every_entity_of_the_source_and_the_filters(workflow):
    flow = workflow(ReplayPageSize=10)
    # GIVEN two sources, events at the window's edges too
    bodies = spread(5, 6) + spread(3, 4, source="web")
    edges = [
        event("user-edge", "2025-12-29T00:00:00Z", "at_end"),
        event("user-edge", "2025-12-28T00:00:00Z", "at_start"),
    ]
    occurrences = stored(flow, bodies + edges)
    for types in (None, ["purchase", "view"]):
        expected = reference_scope_replay(
            occurrences, WINDOW["start_time"], WINDOW["end_time"], source="ios_app", event_types=types
        )
        request = {"source": "ios_app", **WINDOW, **({"event_types": types} if types else {})}
        # WHEN the stream is replayed (with and without an event_types filter)
        output = check(flow, f"stream-{len(types or [])}", expected, **request)
        # THEN no web entity, the event at end_time left out, the one at start_time in
        assert "user-edge" in expected.per_entity and output["entities"] == expected.result["entities"]


def test_a_source_filter_narrows_an_entity_list(workflow):
    flow = workflow()
    occurrences = stored(flow, spread(2, 3) + spread(2, 3, source="web"))
    listed = ["user-000", "user-001"]
    expected = reference_scope_replay(
        occurrences, WINDOW["start_time"], WINDOW["end_time"], entity_ids=listed, source="web"
    )
    check(flow, "list-web", expected, entity_ids=listed, source="web", **WINDOW)
    assert {m["s3_key"].split("/")[1] for messages in expected.per_entity.values() for m in messages} == {"source=web"}


def test_limit_is_a_guard_over_the_whole_selection(workflow):
    flow = workflow()
    stored(flow, spread(3, 4))
    # WHEN 12 matching occurrences meet a limit of 11
    replay = flow.replay("guard-1", source="ios_app", limit=11, **WINDOW)
    # THEN nothing is sent and the execution fails naming the count
    assert replay.status == "FAILED"
    assert (replay.last["error"], replay.last["cause"]) == ("ReplayTooLarge", "matched 12 occurrences; limit 11")
    assert replay.messages == []
    # and at the limit exactly, it runs
    assert flow.replay("guard-2", source="ios_app", limit=12, **WINDOW).status == "SUCCEEDED"


def test_dry_run_answers_counts_top_entities_and_a_preview_without_sending(workflow):
    flow = workflow(ReplayPageSize=10)
    occurrences = stored(flow, spread(4, 5) + spread(1, 9)[:9])
    expected = reference_scope_replay(
        occurrences, WINDOW["start_time"], WINDOW["end_time"], source="ios_app", limit=3, dry_run=True
    )
    # WHEN a dry run is over the limit: it answers the count instead of failing
    output = check(flow, "dry-1", expected, source="ios_app", limit=3, dry_run=True, **WINDOW)
    assert output["occurrences"] == 29 and output["top_entities"][0] == {"entity_id": "user-000", "occurrences": 14}
    assert [set(body) for body in output["preview"]] == [
        {"replay_id", "seq", "event_id", "entity_id", "event_time", "s3_bucket", "s3_key"}
    ] * len(output["preview"])
    assert [{name: body[name] for name in BODY_FIELDS} for body in output["preview"]] == expected.result["preview"]


def test_one_entity_dry_run_has_the_preview_too(workflow):
    flow = workflow(ReplayPageSize=10)
    stored(flow, spread(1, 14))
    replay = flow.replay("dry-one", entity_id="user-000", dry_run=True, **WINDOW)
    output = replay.output
    assert replay.messages == []
    assert output["entities"] == 1 and output["top_entities"] == [{"entity_id": "user-000", "occurrences": 14}]
    assert [body["seq"] for body in output["preview"]] == list(range(1, 5))  # ev0..ev3 once each
    # and a real replay of one entity carries no preview in its result
    real = flow.replay("real-one", entity_id="user-000", **WINDOW)
    assert real.output["preview"] == [] and len(real.messages) == 4


class QueriesAtOnce:
    """A `before-send` hook that gives each index Query a round trip's time and counts how many overlap."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = self.most = 0

    def __call__(self, **_: Any) -> None:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.02)
        with self.lock:
            self.running -= 1


def test_a_step_reads_its_small_entities_together_and_sends_exactly_the_reference(workflow):
    flow = workflow(ReplayPageSize=10)
    # GIVEN many small entities (repeated event ids within each) and one of several pages among them
    bodies = spread(12, 6)
    bodies += [event("user-005x", f"2025-12-28T10:{m:02d}:00Z", f"big{m % 9}") for m in range(27)]
    occurrences = stored(flow, bodies)
    queries = QueriesAtOnce()
    clients.dynamodb().meta.events.register("before-send.dynamodb.Query", queries)
    expected = reference_scope_replay(occurrences, WINDOW["start_time"], WINDOW["end_time"], source="ios_app")
    # WHEN the stream is replayed
    check(flow, "together", expected, source="ios_app", **WINDOW)
    # THEN the entities' pages were read several at a time, and every message is the reference's
    assert queries.most > 1


@pytest.mark.parametrize("max_concurrency", [1, 3])
def test_max_concurrency_changes_nothing_but_the_pace(workflow, max_concurrency):
    flow = workflow(ReplayPageSize=10)
    occurrences = stored(flow, spread(8, 3))
    expected = reference_scope_replay(occurrences, WINDOW["start_time"], WINDOW["end_time"], source="ios_app")
    check(flow, f"mc-{max_concurrency}", expected, source="ios_app", max_concurrency=max_concurrency, **WINDOW)
    runs = flow.sfn.list_map_runs(executionArn=flow.execution_arn(f"mc-{max_concurrency}"))["mapRuns"]
    described = flow.sfn.describe_map_run(mapRunArn=runs[0]["mapRunArn"])
    assert described["maxConcurrency"] == max_concurrency


@pytest.mark.parametrize(
    ("execution_input", "field"),
    [
        ({"entity_id": "u1", "entity_ids": ["u2"], **WINDOW}, "entity_ids"),
        ({"entity_ids": [], **WINDOW}, "entity_ids"),
        ({"entity_ids": [f"u{n}" for n in range(1001)], **WINDOW}, "entity_ids"),
        ({"entity_ids": ["u1", "u1"], **WINDOW}, "entity_ids"),
        ({"event_types": ["purchase"], **WINDOW}, "event_types"),
        ({"source": "ios app", **WINDOW}, "source"),
        ({"source": "ios_app", "event_types": [], **WINDOW}, "event_types"),
        ({"source": "ios_app", "max_concurrency": 0, **WINDOW}, "max_concurrency"),
        ({"source": "ios_app", "max_concurrency": 41, **WINDOW}, "max_concurrency"),
        ({"source": "ios_app", "limit": 10_000_001, **WINDOW}, "limit"),
    ],
)
def test_console_bad_scope_fails_naming_the_field(workflow, execution_input, field):
    flow = workflow()
    replay = flow.replay("bad-scope", drain=False, **execution_input)
    assert replay.status == "FAILED"
    assert replay.last["error"] == "InvalidReplayRequest"
    assert json.loads(replay.last["cause"])["errorMessage"].startswith(f"{field}: ")
