"""Property: for random stored events and random entity-list and stream replays, what the real
workflow (Distributed Map included) sends and counts equals the plain model of docs/design.md §4.11
(tests/replay_reference.py `reference_scope_replay`).

Random: up to five entities sharing a small pool of event_ids (duplicates within an entity, pages
apart, and across entities, where each entity keeps its own), two sources and three event types,
windows that cut anywhere, event_types and source filters, limits around the selection's size (the
guard), include_duplicates, dry_run, and max_concurrency 1 or 3. Work items are made tiny (two
entities or ten rows) and a worker step one page, so plans have many items, children loop, and
several run at once.

Each example stores its events under fresh entity ids and a fresh source (one POST /events/batch),
so examples never see each other's rows; derandomized, no example database, no shrinking.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from evreplay.replay import fanout as replay_fanout
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.functional.replay.test_properties import EVENT_IDS, MIDNIGHTS, OFFSETS, instants, rfc3339
from tests.functional.replay.test_scopes import BODY_FIELDS, per_entity
from tests.replay_reference import Occurrence, reference_scope_replay
from tests.stacks import Workflow

ENTITIES = "abcde"
TYPES = ["buy", "view", "refund"]
EXAMPLES = 8


@dataclass(frozen=True)
class Stored:
    entity: str
    event_id: str
    moment: Any
    offset: timedelta
    other_source: bool
    event_type: str


@dataclass(frozen=True)
class Scenario:
    events: list[Stored]
    start: Any
    end: Any
    listed: list[str] | None  # entity letters (and "z", never stored); None for a stream replay
    source_filter: bool  # with a list: filter on the example's main source
    event_types: list[str] | None
    limit: int | None
    include_duplicates: bool
    dry_run: bool
    max_concurrency: int


@st.composite
def scenarios(draw: Any) -> Scenario:
    events = [
        Stored(
            entity=draw(st.sampled_from(ENTITIES)),
            event_id=draw(st.sampled_from(EVENT_IDS[:5])),
            moment=draw(st.one_of(instants, st.sampled_from(MIDNIGHTS))),
            offset=draw(st.sampled_from(OFFSETS)),
            other_source=draw(st.sampled_from([False, False, False, True])),
            event_type=draw(st.sampled_from(TYPES)),
        )
        for _ in range(draw(st.integers(4, 40)))
    ]
    start, end = draw(
        st.one_of(
            st.just((MIDNIGHTS[0], MIDNIGHTS[1])),
            st.lists(st.one_of(instants, st.sampled_from(MIDNIGHTS)), min_size=2, max_size=2, unique=True).map(sorted),
        )
    )
    listed = draw(st.one_of(st.none(), st.lists(st.sampled_from(ENTITIES + "z"), min_size=1, max_size=6, unique=True)))
    event_types = draw(st.one_of(st.none(), st.lists(st.sampled_from(TYPES), min_size=1, max_size=2, unique=True)))
    return Scenario(
        events=events,
        start=start,
        end=end,
        listed=listed,
        source_filter=listed is not None and draw(st.booleans()),
        event_types=event_types,
        limit=draw(st.one_of(st.none(), st.integers(1, 30))),
        include_duplicates=draw(st.booleans()),
        dry_run=draw(st.sampled_from([False, False, True])),
        max_concurrency=draw(st.sampled_from([1, 3])),
    )


@pytest.fixture
def flow(workflow: Any, monkeypatch: pytest.MonkeyPatch) -> Workflow:
    monkeypatch.setattr(replay_fanout, "ITEM_ROWS", 10)
    monkeypatch.setattr(replay_fanout, "ITEM_ENTITIES", 2)
    monkeypatch.setattr(replay_fanout, "STEPS_ROWS", 1)
    return workflow(ReplayPageSize=10)


examples = itertools.count()


@pytest.mark.slow
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
def test_scope_replays_equal_the_model(flow: Workflow, scenario: Scenario) -> None:
    n = next(examples)
    tag = f"{n}{uuid.uuid4().hex[:6]}"
    entities = {letter: f"sp{tag}-{letter}" for letter in ENTITIES + "z"}
    source, other = f"main{tag}", f"other{tag}"
    bodies = [
        {
            "source": other if e.other_source else source,
            "event_type": e.event_type,
            "entity_id": entities[e.entity],
            "event_time": rfc3339(e.moment, e.offset),
            "event_id": e.event_id,
            "payload": {"n": i},
        }
        for i, e in enumerate(scenario.events)
    ]
    flow.ingest(bodies)
    mine = set(entities.values())
    rows = sorted((row for row in flow.index_rows() if row["entity_id"] in mine), key=lambda row: row["arrival_id"])
    occurrences = [
        Occurrence(
            row["entity_id"], row["event_id"], row["event_time"], arrival, row["s3_bucket"], row["s3_key"],
            row["source"], row["event_type"],
        )
        for arrival, row in enumerate(rows)
    ]  # fmt: skip
    request: dict[str, Any] = {
        "start_time": rfc3339(scenario.start, OFFSETS[n % len(OFFSETS)]),
        "end_time": rfc3339(scenario.end, OFFSETS[(n + 3) % len(OFFSETS)]),
        "include_duplicates": scenario.include_duplicates,
        "dry_run": scenario.dry_run,
        "max_concurrency": scenario.max_concurrency,
    }
    listed = [entities[letter] for letter in scenario.listed] if scenario.listed is not None else None
    if listed is not None:
        request["entity_ids"] = listed
        if scenario.source_filter:
            request["source"] = source
    else:
        request["source"] = source
    if scenario.event_types is not None:
        request["event_types"] = scenario.event_types
    if scenario.limit is not None:
        request["limit"] = scenario.limit
    expected = reference_scope_replay(
        occurrences,
        request["start_time"],
        request["end_time"],
        entity_ids=listed,
        source=request.get("source"),
        event_types=scenario.event_types,
        include_duplicates=scenario.include_duplicates,
        limit=scenario.limit if scenario.limit is not None else 500,
        dry_run=scenario.dry_run,
    )
    name = f"sprop-{tag}"

    replay = flow.replay(name, **request)

    if expected.error is not None:
        assert replay.status == "FAILED"
        assert (replay.last["error"], replay.last["cause"]) == expected.error
        assert replay.messages == []
        return
    assert replay.status == "SUCCEEDED", replay.last
    assert per_entity(replay.messages) == expected.per_entity
    output = replay.output
    for field, value in expected.result.items():
        got = output[field]
        if field == "preview":
            got = [{name: body[name] for name in BODY_FIELDS} for body in got]
        assert got == value, field
