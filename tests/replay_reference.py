"""docs/design.md §4 in plain Python, written from the contract and nothing else: the expected messages and
result of a replay over a list of stored occurrences. Tests compare the real workflow against it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class Occurrence:
    """One stored arrival, as the contract describes it."""

    entity_id: str
    event_id: str
    event_time: str  # RFC 3339 with an offset, as the producer sent it
    arrival: int  # arrival order (the order the producer's requests were stored in)
    s3_bucket: str = ""
    s3_key: str = ""

    @property
    def utc(self) -> datetime:
        return datetime.fromisoformat(self.event_time.replace("Z", "+00:00")).astimezone(UTC)


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def reference_replay(
    occurrences: list[Occurrence],
    replay_id: str,
    entity_id: str,
    start_time: str,
    end_time: str,
    include_duplicates: bool = False,
    limit: int = 500,
    dry_run: bool = False,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(messages, result) for one replay, exactly as docs/design.md §4.1-4.7 state them."""
    start, end = _utc(start_time), _utc(end_time)
    # 4.1 half-open window, one entity; 4.2 order: event_time, event_id, arrival.
    selected = sorted(
        (o for o in occurrences if o.entity_id == entity_id and start <= o.utc < end),
        key=lambda o: (o.utc, o.event_id, o.arrival),
    )
    messages: list[dict[str, Any]] = []
    seen: set[str] = set()
    skipped = 0
    truncated = False
    for occurrence in selected:
        duplicate = not include_duplicates and occurrence.event_id in seen
        if len(messages) == limit:  # 4.4: the first `limit` messages; truncated when more matched
            if not duplicate:
                truncated = True
                break
            continue
        if duplicate:  # 4.3: one message per event_id, its first occurrence in replay order
            skipped += 1
            continue
        seen.add(occurrence.event_id)
        messages.append(
            {  # 4.6: exactly these fields, seq 1-based in replay order
                "replay_id": replay_id,
                "seq": len(messages) + 1,
                "event_id": occurrence.event_id,
                "entity_id": occurrence.entity_id,
                "event_time": _stamp(occurrence.utc),
                "s3_bucket": occurrence.s3_bucket,
                "s3_key": occurrence.s3_key,
            }
        )
    result = {
        "scanned": len(messages) + skipped,
        "duplicates_skipped": skipped,
        "enqueued": len(messages),
        "truncated": truncated,
    }
    # 4.5: a dry run selects and counts the same, and sends nothing
    return ([] if dry_run else messages), result
