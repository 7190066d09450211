"""One wording for every client error, API and console alike: "<field>: <what is wrong, and what is
allowed>", the field named once, `body` only where there is a body, jsonschema's messages said for a
person, internal fields never offered."""

from __future__ import annotations

from typing import Any

import pytest
from evreplay.core import schemas
from evreplay.core.errors import InvalidReplayRequest, InvalidRequest
from evreplay.core.times import normalize
from evreplay.http import query as query_params
from evreplay.replay.request import parse_api_request
from evreplay.replay.workflow import start_replay

GOOD = {"entity_id": "u1", "start_time": "2025-12-28T00:00:00Z", "end_time": "2025-12-29T00:00:00Z"}


def console_error(execution_input: Any) -> InvalidReplayRequest:
    """What the workflow's input check raises: its message becomes the execution's cause."""
    with pytest.raises(InvalidReplayRequest) as raised:
        start_replay(execution_input, "by-hand", "arn:execution", "2025-12-28T00:00:00Z", 100_000, store=None)  # type: ignore[arg-type]
    return raised.value


@pytest.mark.parametrize("day", ["28-12-2025", "20251228", "2025/12/28", "2025-02-30", "0000-00-00"])
@pytest.mark.parametrize("schema", [schemas.AGGREGATES_QUERY, schemas.DUPLICATES_QUERY, schemas.LAG_QUERY])
def test_every_day_parameter_says_not_a_calendar_date(schema: str, day: str) -> None:
    params = {"entity_id": "u1", "source": "s", "event_type": "t", "day": day}
    allowed = schemas.load(schema)["properties"]
    with pytest.raises(InvalidRequest) as raised:
        query_params.schema_checked(schema, {k: v for k, v in params.items() if k in allowed})

    assert (raised.value.field, raised.value.message) == ("day", "day: not a calendar date (YYYY-MM-DD)")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2025-12-28T00:00:00", "timestamp has no UTC offset; add Z or ±hh:mm"),
        ("yesterday", None),
        ("2025-13-01T00:00:00Z", None),
    ],
)
@pytest.mark.parametrize("schema", [schemas.EVENTS_QUERY, schemas.GAPS_QUERY])
def test_every_time_parameter_is_checked_by_its_format_with_the_parsers_message(
    schema: str, value: str, message: str | None
) -> None:
    # GIVEN a query string whose start_time the API's time parser refuses (the schema's date-time format)
    params = {**GOOD, "start_time": value}
    with pytest.raises(InvalidRequest) as raised:
        query_params.schema_checked(schema, params)

    # THEN the schema check itself refuses it, naming start_time with what evreplay.core.times says
    assert raised.value.field == "start_time"
    with pytest.raises(ValueError) as parsed:
        normalize(value)
    assert raised.value.message == f"start_time: {parsed.value}"
    if message is not None:
        assert raised.value.message == f"start_time: {message}"


@pytest.mark.parametrize(
    ("execution_input", "message"),
    [
        ({**GOOD, "start_time": "2025-12-28T00:00:00"}, "start_time: timestamp has no UTC offset; add Z or ±hh:mm"),
        ({**GOOD, "limit": 0}, "limit: must be at least 1"),
        ({**GOOD, "limit": "10"}, "limit: must be an integer"),
        ({**GOOD, "dry_run": 1}, "dry_run: must be true or false (a JSON boolean)"),
        ({**GOOD, "entity_id": ""}, "entity_id: must not be empty"),
        ({**GOOD, "entity_id": "a\x01b"}, "entity_id: has a control character; any other character is allowed"),
        ({"entity_id": "u1", "end_time": GOOD["end_time"]}, "start_time: required"),
        ({**GOOD, "end_time": GOOD["start_time"]}, "end_time: must be later than start_time (the window is [start_time, end_time))"),
        (["not", "an", "object"], "input: must be a JSON object"),
    ],
)  # fmt: skip
def test_console_input_errors_name_the_field_once_and_say_what_is_allowed(execution_input: Any, message: str) -> None:
    assert console_error(execution_input).message == message


def test_unknown_fields_list_what_the_caller_may_send_never_the_internal_ones() -> None:
    console = console_error({**GOOD, "window": "today"})
    with pytest.raises(InvalidReplayRequest) as api:
        parse_api_request({**GOOD, "window": "today"}, 100_000)

    assert console.message == (
        "window: unknown field; allowed: destination, dry_run, end_time, entity_id, entity_ids, event_types, format, "
        "include_duplicates, limit, max_concurrency, max_events_per_second, requested_by, source, start_time"
    )
    assert api.value.message == (
        "window: unknown field; allowed: destination, dry_run, end_time, entity_id, entity_ids, event_types, format, "
        "include_duplicates, limit, max_concurrency, max_events_per_second, source, start_time"
    )


def test_the_api_says_body_where_there_is_one() -> None:
    with pytest.raises(InvalidReplayRequest) as raised:
        parse_api_request([], 100_000)

    assert (raised.value.field, raised.value.message) == ("body", "body: must be a JSON object")


def test_a_message_that_already_names_its_field_is_not_prefixed_again() -> None:
    assert InvalidRequest("limit: must be at least 1", field="limit").message == "limit: must be at least 1"
    assert InvalidRequest("must be at least 1", field="limit").message == "limit: must be at least 1"
    assert InvalidRequest("no field here").message == "no field here"


@pytest.mark.parametrize(
    ("params", "field", "detail"),
    [
        (
            {"status": "PAUSING"},
            "status",
            "must be one of RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED, PENDING_REDRIVE, PAUSED",
        ),
        ({"source": "ios app"}, "source", "has a character that is not allowed; allowed: letters, digits and _ . : -"),
    ],
)
def test_the_replay_listing_query_is_checked_by_its_schema_file_alone(
    params: dict[str, str], field: str, detail: str
) -> None:
    # GET /replays' status and source have no check in code beside replays_query.schema.json
    with pytest.raises(InvalidRequest) as raised:
        query_params.schema_checked(schemas.REPLAYS_QUERY, params, integers=("limit",))
    assert (raised.value.field, raised.value.message) == (field, f"{field}: {detail}")
