"""A replay request (docs/design.md §4, §4.11), checked the same way whether it comes from POST /replays or is
typed into the Step Functions console as an execution input.

The JSON Schema file is the first check (types, required fields, unknown fields); then the rules a
schema cannot express: both times are RFC 3339 with an offset, `start_time < end_time`, exactly one
scope (`entity_id`, `entity_ids`, or `source` alone for a whole stream), `event_types` only with a
scope, `limit` at most the configured maximum of its scope and `max_concurrency` at most the
template's. Every failure is an `InvalidReplayRequest` naming the field.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from evreplay.core import schemas
from evreplay.core.errors import InvalidReplayRequest
from evreplay.core.times import InvalidTimestamp, normalize

DEFAULT_LIMIT = 500
DEFAULT_MAX_SCOPE_LIMIT = 10_000_000  # template parameter MaxScopeReplayLimit
DEFAULT_MAX_CONCURRENCY = 40  # template parameter ReplayMaxConcurrency

# What a request selects (docs/design.md §4.11).
ENTITY = "entity"  # one entity: the paged loop of §4 (limit is a cut)
ENTITIES = "entities"  # a list of entities: the Distributed Map (limit is a guard)
STREAM = "stream"  # every entity of a source: the Distributed Map

# Set by the system, never by a caller of POST /replays.
API_FORBIDDEN_FIELDS = ("requested_by", "continuation")


@dataclass(frozen=True)
class ReplayRequest:
    """A valid request: times normalized to fixed-width UTC, defaults applied."""

    entity_id: str | None
    start_time: str
    end_time: str
    include_duplicates: bool = False
    limit: int = DEFAULT_LIMIT
    dry_run: bool = False
    requested_by: dict[str, Any] | str | None = None
    entity_ids: list[str] | None = None
    source: str | None = None
    event_types: list[str] | None = None
    max_concurrency: int | None = None
    destination: str | None = None  # docs/design.md §4.12; None: the built-in queue
    format: str | None = None  # pointer (None) or event
    max_events_per_second: int | None = None  # §4.13; None: as fast as the destination takes them

    @property
    def scope(self) -> str:
        if self.entity_id is not None:
            return ENTITY
        return ENTITIES if self.entity_ids is not None else STREAM

    def as_dict(self) -> dict[str, Any]:
        """The request as the workflow carries it and reports it (no requested_by when unknown; the
        fields of §4.11 only when given, so a one-entity request reads as it always did)."""
        out: dict[str, Any] = {}
        if self.entity_id is not None:
            out["entity_id"] = self.entity_id
        out.update(
            start_time=self.start_time,
            end_time=self.end_time,
            include_duplicates=self.include_duplicates,
            limit=self.limit,
            dry_run=self.dry_run,
        )
        for name in (
            "entity_ids",
            "source",
            "event_types",
            "max_concurrency",
            "destination",
            "format",
            "max_events_per_second",
        ):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.requested_by is not None:
            out["requested_by"] = self.requested_by
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReplayRequest:
        """The inverse of `as_dict` (the workflow's state carries the dict)."""
        return cls(**{"entity_id": None, **data})

    def matches(self, source: str, event_type: str) -> bool:
        """Whether a row of this source and event type passes the request's filters."""
        return (self.source is None or source == self.source) and (
            self.event_types is None or event_type in self.event_types
        )


def _time(body: dict[str, Any], name: str) -> str:
    try:
        return normalize(body[name])
    except InvalidTimestamp as exc:
        raise InvalidReplayRequest(str(exc), field=name) from exc


def _check_scope(body: dict[str, Any]) -> None:
    if "entity_id" in body and "entity_ids" in body:
        raise InvalidReplayRequest("cannot be given with entity_id: give one entity or a list", field="entity_ids")
    if not any(name in body for name in ("entity_id", "entity_ids", "source")):
        if "event_types" in body:
            raise InvalidReplayRequest(
                "filters a scope: give entity_id, entity_ids or source with it", field="event_types"
            )
        raise InvalidReplayRequest(
            "required (or entity_ids for a list of entities, or source for a whole stream)", field="entity_id"
        )


def parse_replay_request(
    body: Any,
    max_limit: int,
    root: str = "body",
    hidden: tuple[str, ...] = (),
    *,
    max_scope_limit: int | None = DEFAULT_MAX_SCOPE_LIMIT,
    max_concurrency: int | None = DEFAULT_MAX_CONCURRENCY,
    destinations: Collection[str] | None = None,
    max_events_per_second: int | None = None,
) -> ReplayRequest:
    """Validate an execution input / request body; raise InvalidReplayRequest naming the field
    (`root` names the whole value: "body" for the API, "input" for an execution; `hidden` fields are
    not offered to this caller as allowed). `max_limit` bounds
    a one-entity replay, `max_scope_limit` an entity-list or stream replay; None skips a bound (to read
    back a request checked before under settings this caller does not know), and likewise
    `destinations` (the names a replay may send to) and `max_events_per_second` (the template's cap)."""
    schemas.check(schemas.REPLAY_REQUEST, body, root=root, hidden=hidden, error_class=InvalidReplayRequest)
    _check_scope(body)
    start_time = _time(body, "start_time")
    end_time = _time(body, "end_time")
    if not start_time < end_time:
        raise InvalidReplayRequest(
            "must be later than start_time (the window is [start_time, end_time))", field="end_time"
        )
    one_entity = "entity_id" in body
    limit = body.get("limit", DEFAULT_LIMIT)
    if one_entity and limit > max_limit:
        raise InvalidReplayRequest(f"must be at most {max_limit} (MaxReplayLimit)", field="limit")
    if not one_entity and max_scope_limit is not None and limit > max_scope_limit:
        raise InvalidReplayRequest(
            f"must be at most {max_scope_limit} for an entity list or a stream (MaxScopeReplayLimit)", field="limit"
        )
    concurrency = body.get("max_concurrency")
    if concurrency is not None and max_concurrency is not None and concurrency > max_concurrency:
        raise InvalidReplayRequest(f"must be at most {max_concurrency} (ReplayMaxConcurrency)", field="max_concurrency")
    destination = body.get("destination")
    if destination is not None and destinations is not None and destination not in destinations:
        raise InvalidReplayRequest(
            f"{destination!r} is not a declared destination; GET /destinations lists them "
            f"({', '.join(sorted(destinations))})",
            field="destination",
        )
    rate = body.get("max_events_per_second")
    if rate is not None and max_events_per_second is not None and rate > max_events_per_second:
        raise InvalidReplayRequest(
            f"must be at most {max_events_per_second} (MaxReplayEventsPerSecond)", field="max_events_per_second"
        )
    return ReplayRequest(
        entity_id=body.get("entity_id"),
        start_time=start_time,
        end_time=end_time,
        include_duplicates=body.get("include_duplicates", False),
        limit=int(limit),  # JSON Schema counts 5.0 as an integer
        dry_run=body.get("dry_run", False),
        requested_by=body.get("requested_by"),
        entity_ids=list(body["entity_ids"]) if "entity_ids" in body else None,
        source=body.get("source"),
        event_types=list(body["event_types"]) if "event_types" in body else None,
        max_concurrency=int(concurrency) if concurrency is not None else None,
        destination=destination,
        format=body.get("format"),
        max_events_per_second=int(rate) if rate is not None else None,
    )


def parse_api_request(
    body: Any,
    max_limit: int,
    *,
    max_scope_limit: int = DEFAULT_MAX_SCOPE_LIMIT,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    destinations: Collection[str] | None = None,
    max_events_per_second: int | None = None,
) -> ReplayRequest:
    """POST /replays: the same rules, and no field the system sets itself."""
    if isinstance(body, dict):
        for name in API_FORBIDDEN_FIELDS:
            if name in body:
                raise InvalidReplayRequest("is set by evreplay, not by the caller; leave it out", field=name)
    return parse_replay_request(
        body,
        max_limit,
        hidden=API_FORBIDDEN_FIELDS,
        max_scope_limit=max_scope_limit,
        max_concurrency=max_concurrency,
        destinations=destinations,
        max_events_per_second=max_events_per_second,
    )


def request_view(execution_input: Any, max_limit: int) -> Any:
    """The request as the workflow understands it (normalized, defaults, without requested_by), or
    the raw input when it is not a valid request (the execution then failed with InvalidReplayRequest)."""
    try:
        request = parse_replay_request(execution_input, max_limit, max_scope_limit=None, max_concurrency=None).as_dict()
    except InvalidReplayRequest:
        return execution_input
    request.pop("requested_by", None)
    return request
