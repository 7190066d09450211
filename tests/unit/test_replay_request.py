"""The replay request rules shared by POST /replays and the workflow's input check."""

from __future__ import annotations

import pytest
from evreplay.core.errors import InvalidReplayRequest
from evreplay.replay.request import parse_api_request, parse_replay_request
from evreplay.replay.workflow import MAX_EXECUTION_NAME, continuation_name

GOOD = {"entity_id": "u1", "start_time": "2025-12-28T01:00:00+01:00", "end_time": "2025-12-29T00:00:00Z"}


def test_defaults_and_normalized_times():
    request = parse_replay_request(GOOD, max_limit=100_000)

    assert request.as_dict() == {
        "entity_id": "u1",
        "start_time": "2025-12-28T00:00:00.000000Z",
        "end_time": "2025-12-29T00:00:00.000000Z",
        "include_duplicates": False,
        "limit": 500,
        "dry_run": False,
    }


def test_a_limit_written_as_a_whole_float_is_an_integer():
    assert parse_replay_request({**GOOD, "limit": 5.0}, max_limit=10).limit == 5


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**GOOD, "limit": 11}, "limit"),
        ({**GOOD, "end_time": "2025-12-28T00:00:00Z"}, "end_time"),
        ({**GOOD, "start_time": "2025-12-28 00:00:00"}, "start_time"),
        ({**GOOD, "include_duplicates": None}, "include_duplicates"),
        ({**GOOD, "entity_id": "a\u0000b"}, "entity_id"),
        ({**GOOD, "continuation": {"replay_id": "r"}}, "continuation.generation"),
    ],
)
def test_bad_requests_name_the_field(body, field):
    with pytest.raises(InvalidReplayRequest) as raised:
        parse_replay_request(body, max_limit=10)

    assert raised.value.field == field


@pytest.mark.parametrize("name", ["requested_by", "continuation"])
def test_the_api_refuses_fields_the_system_sets(name):
    with pytest.raises(InvalidReplayRequest) as raised:
        parse_api_request({**GOOD, name: {}}, max_limit=10)

    assert raised.value.field == name


def test_continuation_names_are_unique_and_fit_step_functions():
    assert continuation_name("r-1", 3) == "r-1--c3"
    long_a, long_b = "a" * 80, "a" * 79 + "b"

    names = {continuation_name(long_a, 1), continuation_name(long_b, 1), continuation_name(long_a, 2)}

    assert len(names) == 3 and all(len(name) <= MAX_EXECUTION_NAME for name in names)


def test_scopes_are_one_entity_a_list_or_a_stream():
    window = {"start_time": "2025-12-28T00:00:00Z", "end_time": "2025-12-29T00:00:00Z"}
    assert parse_replay_request({"entity_id": "u1", **window}, max_limit=1000).scope == "entity"
    listed = parse_replay_request({"entity_ids": ["u1", "u2"], "source": "web", **window}, max_limit=1000)
    assert (listed.scope, listed.source, listed.limit) == ("entities", "web", 500)
    stream = parse_replay_request({"source": "web", "event_types": ["buy"], "limit": 1_000_000, **window}, 1000)
    assert (stream.scope, stream.event_types, stream.limit) == ("stream", ["buy"], 1_000_000)
    # A one-entity request reads as it always did: no field of the other scopes.
    assert set(parse_replay_request({"entity_id": "u1", **window}, 1000).as_dict()) == {
        "entity_id", "start_time", "end_time", "include_duplicates", "limit", "dry_run"
    }  # fmt: skip
