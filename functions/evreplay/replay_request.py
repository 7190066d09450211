"""A replay request (docs/design.md §4), checked the same way whether it comes from POST /replays or is
typed into the Step Functions console as an execution input.

The JSON Schema file is the first check (types, required fields, unknown fields); then the rules a
schema cannot express: both times are RFC 3339 with an offset, `start_time < end_time`, and
`limit` at most the configured maximum. Every failure is an `InvalidReplayRequest` naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from evreplay import schemas
from evreplay.errors import InvalidReplayRequest
from evreplay.times import InvalidTimestamp, normalize

DEFAULT_LIMIT = 500

# Set by the system, never by a caller of POST /replays.
API_FORBIDDEN_FIELDS = ("requested_by", "continuation")


@dataclass(frozen=True)
class ReplayRequest:
    """A valid request: times normalized to fixed-width UTC, defaults applied."""

    entity_id: str
    start_time: str
    end_time: str
    include_duplicates: bool = False
    limit: int = DEFAULT_LIMIT
    dry_run: bool = False
    requested_by: dict[str, Any] | str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The request as the workflow carries it and reports it (no requested_by when unknown)."""
        out: dict[str, Any] = {
            "entity_id": self.entity_id,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "include_duplicates": self.include_duplicates,
            "limit": self.limit,
            "dry_run": self.dry_run,
        }
        if self.requested_by is not None:
            out["requested_by"] = self.requested_by
        return out


def _time(body: dict[str, Any], name: str) -> str:
    try:
        return normalize(body[name])
    except InvalidTimestamp as exc:
        raise InvalidReplayRequest(str(exc), field=name) from exc


def parse_replay_request(body: Any, max_limit: int, root: str = "body", hidden: tuple[str, ...] = ()) -> ReplayRequest:
    """Validate an execution input / request body; raise InvalidReplayRequest naming the field
    (`root` names the whole value: "body" for the API, "input" for an execution; `hidden` fields are
    not offered to this caller as allowed)."""
    schemas.check(schemas.REPLAY_REQUEST, body, root=root, hidden=hidden, error_class=InvalidReplayRequest)
    start_time = _time(body, "start_time")
    end_time = _time(body, "end_time")
    if not start_time < end_time:
        raise InvalidReplayRequest(
            "must be later than start_time (the window is [start_time, end_time))", field="end_time"
        )
    limit = body.get("limit", DEFAULT_LIMIT)
    if limit > max_limit:
        raise InvalidReplayRequest(f"must be at most {max_limit} (MaxReplayLimit)", field="limit")
    return ReplayRequest(
        entity_id=body["entity_id"],
        start_time=start_time,
        end_time=end_time,
        include_duplicates=body.get("include_duplicates", False),
        limit=int(limit),  # JSON Schema counts 5.0 as an integer
        dry_run=body.get("dry_run", False),
        requested_by=body.get("requested_by"),
    )


def parse_api_request(body: Any, max_limit: int) -> ReplayRequest:
    """POST /replays: the same rules, and no field the system sets itself."""
    if isinstance(body, dict):
        for name in API_FORBIDDEN_FIELDS:
            if name in body:
                raise InvalidReplayRequest("is set by evreplay, not by the caller; leave it out", field=name)
    return parse_replay_request(body, max_limit, hidden=API_FORBIDDEN_FIELDS)


def request_view(execution_input: Any, max_limit: int) -> Any:
    """The request as the workflow understands it (normalized, defaults, without requested_by), or
    the raw input when it is not a valid request (the execution then failed with InvalidReplayRequest)."""
    try:
        request = parse_replay_request(execution_input, max_limit).as_dict()
    except InvalidReplayRequest:
        return execution_input
    request.pop("requested_by", None)
    return request
