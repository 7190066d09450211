"""An aggregate version as `GET /aggregates` shows it, and that route's query."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from evreplay.core import schemas
from evreplay.http.query import calendar_day, schema_checked
from evreplay.processor.hashing import LIMB_COUNT, from_limbs, render_hash
from evreplay.processor.keys import PARTITION_PREFIX, TYPE_PREFIX, VERSION_PREFIX, limb_name
from evreplay.store.dynamo import deserialize


@dataclass(frozen=True)
class AggregateVersion:
    """One version of an entity's day, as the API shows it."""

    replay_id: str
    entity_id: str
    day: str
    daily_event_count: int
    counts_by_event_type: dict[str, int]
    input_count: int
    inputs_hash: str
    first_event_time: str | None
    last_event_time: str | None
    created_at: str | None
    updated_at: str | None

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> AggregateVersion:
        plain = deserialize(item)
        day, _, replay_id = plain["sk"][len(VERSION_PREFIX) :].partition("#")
        return cls(
            replay_id=plain.get("replay_id", replay_id),
            entity_id=plain.get("entity_id", plain["pk"][len(PARTITION_PREFIX) :]),
            day=plain.get("day", day),
            daily_event_count=int(plain.get("daily_event_count", 0)),
            counts_by_event_type={
                name[len(TYPE_PREFIX) :]: int(value)
                for name, value in sorted(plain.items())
                if name.startswith(TYPE_PREFIX)
            },
            input_count=int(plain.get("input_count", 0)),
            inputs_hash=render_hash(from_limbs([int(plain.get(limb_name(i), 0)) for i in range(LIMB_COUNT)])),
            first_event_time=plain.get("first_event_time"),
            last_event_time=plain.get("last_event_time"),
            created_at=plain.get("created_at"),
            updated_at=plain.get("updated_at"),
        )

    def public(self) -> dict[str, Any]:
        return {
            "replay_id": self.replay_id,
            "entity_id": self.entity_id,
            "day": self.day,
            "daily_event_count": self.daily_event_count,
            "counts_by_event_type": dict(self.counts_by_event_type),
            "input_count": self.input_count,
            "inputs_hash": self.inputs_hash,
            "first_event_time": self.first_event_time,
            "last_event_time": self.last_event_time,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class ListQuery:
    entity_id: str
    day: str | None
    limit: int
    cursor: str | None


DEFAULT_LIST_LIMIT = 100


def parse_list_query(params: dict[str, str]) -> ListQuery:
    """GET /aggregates query string, checked against aggregates_query.schema.json."""
    values = schema_checked(schemas.AGGREGATES_QUERY, params, integers=("limit",))
    day = values.get("day")
    if day is not None:
        calendar_day(day, "day")
    return ListQuery(
        entity_id=values["entity_id"],
        day=day,
        limit=int(values.get("limit", DEFAULT_LIST_LIMIT)),
        cursor=values.get("cursor"),
    )
