"""Property: for random stored events and random replay requests, what the real workflow sends and
counts equals the plain-Python model of docs/design.md §4 (tests/replay_reference.py).

Random: two entities sharing a small pool of event_ids (so duplicates happen, on the same page and
pages apart, at the same instant and at other times), event times written with random UTC offsets
(several of them the same instant), windows that cut anywhere (with offsets too), limits, and
include_duplicates / dry_run. Pages of 10 rows and two pages per execution, so paging, batch
boundaries and continuing in a new execution all happen.

Cost: the workflow is deployed once per test; each example stores its events under fresh entity ids
(one POST /events/batch) and runs one replay, so examples never see each other's rows. Hypothesis
runs derandomized and without an example database, so every run (and CI) tries the same examples,
and does not shrink a failure (every step would be a workflow run).
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from evreplay.store.dynamo import deserialize
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from tests.replay_reference import Occurrence, reference_replay
from tests.stacks import Workflow

DAY = datetime(2025, 12, 28, tzinfo=UTC)
MIDNIGHTS = [DAY, DAY + timedelta(days=1)]
EVENT_IDS = [f"e{n}" for n in range(8)]
OFFSETS = [timedelta(hours=h, minutes=m) for h, m in [(-8, 0), (-5, 0), (-3, -30), (0, 0), (1, 0), (5, 30), (14, 0)]]
PAGE_SIZE = 10
EXAMPLES = 48


@dataclass(frozen=True)
class Stored:
    entity: str  # "a" (the replayed one) or "b"
    event_id: str
    moment: datetime  # UTC
    offset: timedelta  # how the producer wrote it
    z: bool  # "Z" rather than "+00:00" when the offset is 0


@dataclass(frozen=True)
class Scenario:
    events: list[Stored]
    start: tuple[datetime, timedelta]
    end: tuple[datetime, timedelta]
    limit: int | None
    include_duplicates: bool
    dry_run: bool


def rfc3339(moment: datetime, offset: timedelta, z: bool = False) -> str:
    local = moment.astimezone(timezone(offset))
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    if local.microsecond:
        text += f".{local.microsecond:06d}".rstrip("0")
    if offset == timedelta(0) and z:
        return text + "Z"
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{text}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


# Around the day, on a coarse grid so that instants repeat and bounds fall exactly on events.
instants = st.builds(
    lambda minute, second, micro: DAY + timedelta(minutes=minute, seconds=second, microseconds=micro),
    st.integers(-90, 24 * 60 + 90).map(lambda m: m - m % 15),
    st.sampled_from([0, 0, 0, 30]),
    st.sampled_from([0, 0, 0, 250_000, 999_999]),
)


@st.composite
def scenarios(draw: Any) -> Scenario:
    # Instants that several events share, midnight included, so window bounds fall exactly on events.
    moments = draw(st.lists(st.one_of(instants, st.sampled_from(MIDNIGHTS)), min_size=1, max_size=6))
    events = [
        Stored(
            entity=draw(st.sampled_from("aaab")),
            event_id=draw(st.sampled_from(EVENT_IDS)),
            moment=draw(st.one_of(st.sampled_from(moments), instants)),
            offset=draw(st.sampled_from(OFFSETS)),
            z=draw(st.booleans()),
        )
        for _ in range(draw(st.integers(6, 32)))
    ]
    bound = st.one_of(st.sampled_from(moments), st.sampled_from(MIDNIGHTS), instants)
    start, end = draw(
        st.one_of(
            st.just((MIDNIGHTS[0], MIDNIGHTS[1])),
            st.lists(bound, min_size=2, max_size=2, unique=True).map(sorted),
            st.tuples(bound, st.integers(1, 26 * 60)).map(lambda p: (p[0], p[0] + timedelta(minutes=p[1]))),
        )
    )
    # Limits at the edges that matter: around the number of distinct events and of occurrences in
    # the window (limit reached exactly, with only repeats after it, or with one more event).
    selected = [e for e in events if e.entity == "a" and start <= e.moment < end]
    edges = {len({e.event_id for e in selected}), len(selected)}
    near = sorted({k + d for k in edges for d in (-1, 0, 1) if k + d >= 1})
    return Scenario(
        events=events,
        start=(start, draw(st.sampled_from(OFFSETS))),
        end=(end, draw(st.sampled_from(OFFSETS))),
        limit=draw(
            st.one_of(
                st.none(), st.integers(1, 25), st.sampled_from(sorted(edges - {0}) or [1]), st.sampled_from(near or [1])
            )
        ),
        include_duplicates=draw(st.booleans()),
        dry_run=draw(st.sampled_from([False, False, False, True])),
    )


def spread_out(include_duplicates: bool, limit: int | None, dry_run: bool) -> Scenario:
    """A fixed example: 30 arrivals over the day in every offset, each event_id stored 3-4 times
    (first occurrences on the first page, repeats up to three pages later), some at the same
    instant; over 3 pages, so the replay continues in a second execution."""
    events = [
        Stored("a" if n % 7 else "b", EVENT_IDS[(n * 3) % 8], DAY + timedelta(minutes=40 * n - 20 * (n % 3)),
               OFFSETS[n % len(OFFSETS)], n % 2 == 0)
        for n in range(30)
    ]  # fmt: skip
    events.insert(5, Stored("a", EVENT_IDS[0], events[4].moment, timedelta(hours=9), False))
    return Scenario(
        events=events,
        start=(DAY + timedelta(minutes=30), timedelta(hours=-5)),
        end=(DAY + timedelta(hours=23), timedelta(hours=2)),
        limit=limit,
        include_duplicates=include_duplicates,
        dry_run=dry_run,
    )


def partition(flow: Workflow, entity_id: str) -> list[dict[str, Any]]:
    pages = flow.stack.dynamodb.get_paginator("query").paginate(
        TableName=flow.stack.index_table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :t)",
        ExpressionAttributeValues={":pk": {"S": f"E#{entity_id}"}, ":t": {"S": "T#"}},
    )
    return [deserialize(item) for page in pages for item in page["Items"]]


def store(flow: Workflow, events: list[Stored], entities: dict[str, str]) -> list[Occurrence]:
    """POST /events/batch (items of one event_id are stored in input order, so input order is
    arrival order); each input as the model's Occurrence, with the S3 key the index gave it."""
    bodies = [
        {
            "source": "prop",
            "event_type": "t",
            "entity_id": entities[e.entity],
            "event_time": rfc3339(e.moment, e.offset, e.z),
            "event_id": e.event_id,
            "payload": {"n": n},
        }
        for n, e in enumerate(events)
    ]
    flow.ingest(bodies)
    occurrences = [
        Occurrence(body["entity_id"], body["event_id"], body["event_time"], arrival)
        for arrival, body in enumerate(bodies)
    ]
    # Arrivals of one (entity, event_id, instant) in input order = their rows in arrival_id order.
    rows: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for entity_id in entities.values():
        for row in sorted(partition(flow, entity_id), key=lambda row: row["arrival_id"]):
            rows.setdefault((entity_id, row["event_id"], row["event_time"]), []).append(row)
    keyed = []
    for o in occurrences:
        row = rows[(o.entity_id, o.event_id, o.utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))].pop(0)
        keyed.append(Occurrence(o.entity_id, o.event_id, o.event_time, o.arrival, row["s3_bucket"], row["s3_key"]))
    assert not any(rows.values()), "every stored row is one of the inputs"
    return keyed


@pytest.fixture
def flow(workflow: Any) -> Workflow:
    return workflow(ReplayPageSize=PAGE_SIZE, ReplayPagesPerExecution=2)


examples = itertools.count()


@pytest.mark.slow  # ~20-35 s: 53 workflow runs
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    # no shrinking (each step would run a workflow): a failure prints its scenario as found
    phases=[Phase.explicit, Phase.generate],
    report_multiple_bugs=False,
    # one deployment serves every example (fresh entity ids each time); examples are slow by nature
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
@example(scenario=spread_out(include_duplicates=False, limit=6, dry_run=False))
@example(scenario=spread_out(include_duplicates=False, limit=8, dry_run=False))  # then only repeats
@example(scenario=spread_out(include_duplicates=True, limit=None, dry_run=False))
@example(scenario=spread_out(include_duplicates=True, limit=10, dry_run=False))
@example(scenario=spread_out(include_duplicates=False, limit=None, dry_run=True))
def test_workflow_messages_and_counts_equal_the_model(flow: Workflow, scenario: Scenario) -> None:
    n = next(examples)
    entities = {"a": f"prop{n}-a-{uuid.uuid4().hex[:6]}", "b": f"prop{n}-b-{uuid.uuid4().hex[:6]}"}
    occurrences = store(flow, scenario.events, entities)
    request: dict[str, Any] = {
        "entity_id": entities["a"],
        "start_time": rfc3339(*scenario.start),
        "end_time": rfc3339(*scenario.end),
        "include_duplicates": scenario.include_duplicates,
        "dry_run": scenario.dry_run,
    }
    if scenario.limit is not None:
        request["limit"] = scenario.limit
    name = f"prop-{n}-{uuid.uuid4().hex[:8]}"

    replay = flow.replay(name, **request)

    expected, result = reference_replay(
        occurrences,
        name,
        entities["a"],
        request["start_time"],
        request["end_time"],
        scenario.include_duplicates,
        scenario.limit if scenario.limit is not None else 500,
        scenario.dry_run,
    )
    assert replay.status == "SUCCEEDED", replay.last
    assert sorted(replay.messages, key=lambda message: message["seq"]) == expected
    assert len(replay.messages) == len(expected), "each message once"
    assert {key: replay.result[key] for key in result} == result
