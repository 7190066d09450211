"""GET /events: look at an entity's index rows, in replay order, before replaying them.

`include_duplicates=false` (the default) hides rows whose status is DUPLICATE (later arrivals of an
event_id), and a page still holds `limit` shown rows (fewer only on the last page); a replay decides
duplicates within its window instead (docs/design.md §4.3), so the two can differ when a window holds a
later arrival but not the first one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from evreplay.core import schemas
from evreplay.core.cursors import decode_cursor, encode_cursor
from evreplay.core.errors import InvalidRequest
from evreplay.core.times import normalize
from evreplay.http import query as query_params
from evreplay.store.index import DUPLICATE, OCCURRENCE_PREFIX, EventIndex, IndexRow, entity_pk

_LIMIT = schemas.load(schemas.EVENTS_QUERY)["properties"]["limit"]
DEFAULT_LIMIT: int = _LIMIT["default"]
MAX_LIMIT: int = _LIMIT["maximum"]
# Open ends of the window when start_time / end_time are not given.
EARLIEST = "0000-01-01T00:00:00.000000Z"
LATEST = "9999-12-31T23:59:59.999999Z"


@dataclass(frozen=True)
class EventQuery:
    entity_id: str
    start_time: str
    end_time: str
    include_duplicates: bool
    limit: int
    after_sk: str | None


def parse_event_query(params: query_params.Params) -> EventQuery:
    values = query_params.schema_checked(
        schemas.EVENTS_QUERY, params, integers=("limit",), booleans=("include_duplicates",)
    )
    entity_id: str = values["entity_id"]
    # The schema's date-time format took them (evreplay.core.times' parser): normalizing cannot fail.
    start_time = normalize(values["start_time"]) if "start_time" in values else EARLIEST
    end_time = normalize(values["end_time"]) if "end_time" in values else LATEST
    if not start_time < end_time:
        raise InvalidRequest("must be later than start_time", field="end_time")
    position = decode_cursor(params.get("cursor"), ("sk",))
    after_sk = position["sk"] if position else None
    # DynamoDB refuses a start key outside the key condition: that is the caller's cursor, not a 500.
    if after_sk is not None and not OCCURRENCE_PREFIX + start_time <= after_sk < OCCURRENCE_PREFIX + end_time:
        raise InvalidRequest("does not belong to this window; pass the next_cursor of the same query", field="cursor")
    return EventQuery(
        entity_id=entity_id,
        start_time=start_time,
        end_time=end_time,
        include_duplicates=values.get("include_duplicates", False),
        limit=values.get("limit", DEFAULT_LIMIT),
        after_sk=after_sk,
    )


def list_events(index: EventIndex, query: EventQuery) -> dict[str, Any]:
    """A page of `limit` shown rows, fewer only on the last page: hidden DUPLICATE rows do not count,
    so the index is read until one row more than the page is found (then there is a next page, and
    the cursor is the page's last row) or the window ends (no cursor: an empty page never follows)."""
    shown: list[IndexRow] = []
    after_sk = query.after_sk
    while len(shown) <= query.limit:
        start_key = {"pk": {"S": entity_pk(query.entity_id)}, "sk": {"S": after_sk}} if after_sk else None
        wanted = query.limit + 1 - len(shown)
        rows, last_key = index.query_window(
            query.entity_id,
            query.start_time,
            query.end_time,
            # Hidden rows are rare (duplicates); read a little more than needed, within one page's cap.
            limit=min(MAX_LIMIT + 1, wanted if query.include_duplicates else 2 * wanted),
            exclusive_start_key=start_key,
        )
        shown += [row for row in rows if query.include_duplicates or row.status != DUPLICATE]
        if last_key is None:
            break
        after_sk = last_key["sk"]["S"]
    page, more = shown[: query.limit], len(shown) > query.limit
    return {
        "items": [row.public() for row in page],
        "next_cursor": encode_cursor({"sk": page[-1].sk}) if more else None,
    }
