"""A replay message as the processor reads it: parsed and checked against its schema, then
turned into the contribution it makes to its version, checked against the raw object it points at.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from evreplay.core import schemas
from evreplay.core.errors import InvalidReplayMessage
from evreplay.core.event_ids import payload_sha256, reject_constant
from evreplay.core.times import utc_day
from evreplay.processor.hashing import input_hash
from evreplay.replay.queue import ReplayMessage


def parse_message(body: str) -> ReplayMessage:
    """The message, or InvalidReplayMessage naming the offending field (schema: replay_message)."""
    try:
        data = json.loads(body, parse_constant=reject_constant)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidReplayMessage("message body is not JSON", field="body") from exc
    schemas.check(schemas.REPLAY_MESSAGE, data, error_class=InvalidReplayMessage)
    return ReplayMessage(
        replay_id=data["replay_id"],
        seq=int(data["seq"]),
        event_id=data["event_id"],
        entity_id=data["entity_id"],
        event_time=data["event_time"],
        s3_bucket=data["s3_bucket"],
        s3_key=data["s3_key"],
    )


def log_keys(body: str) -> dict[str, Any]:
    """replay_id / seq / event_id of a body, best effort, for logging a message that may be bad."""
    try:
        data = json.loads(body)
    except (TypeError, ValueError, RecursionError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        key: data[key] for key in ("replay_id", "seq", "event_id", "entity_id") if isinstance(data.get(key), (str, int))
    }


@dataclass(frozen=True)
class Contribution:
    """What one message adds to its version."""

    replay_id: str
    seq: int
    entity_id: str
    day: str
    event_id: str
    event_type: str
    event_time: str
    payload_sha256: str
    s3_key: str

    @property
    def hash(self) -> int:
        return input_hash(self.event_id, self.payload_sha256)


def contribution_of(message: ReplayMessage, raw: dict[str, Any]) -> Contribution:
    """The message's contribution, read from its raw object. A message that disagrees with the
    object it points at is rejected rather than counted under the wrong entity or day."""
    for name in ("event_id", "entity_id", "event_time"):
        if raw.get(name) != getattr(message, name):
            raise InvalidReplayMessage(
                f"{name} {getattr(message, name)!r} does not match the raw object's {raw.get(name)!r}", field=name
            )
    event_type, payload = raw.get("event_type"), raw.get("payload")
    if not isinstance(event_type, str) or not event_type or not isinstance(payload, dict):
        raise InvalidReplayMessage("the raw object is not a stored evreplay event", field="s3_key")
    return Contribution(
        replay_id=message.replay_id,
        seq=message.seq,
        entity_id=message.entity_id,
        day=utc_day(message.event_time),
        event_id=message.event_id,
        event_type=event_type,
        event_time=message.event_time,
        payload_sha256=payload_sha256(payload),
        s3_key=message.s3_key,
    )
