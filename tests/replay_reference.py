"""docs/design.md §4 and §4.11 in plain Python, written from the contract and nothing else: the expected messages
and result of a replay over a list of stored occurrences. Tests compare the real workflow against it."""

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
    source: str = "ios_app"
    event_type: str = "purchase"

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


@dataclass(frozen=True)
class ScopeReplay:
    """What docs/design.md §4.11 says an entity-list or stream replay does: per entity, the messages in replay
    order (seq left out: the contract fixes only that it is unique and increases within an entity),
    the result's counts, or the guard's error."""

    per_entity: dict[str, list[dict[str, Any]]]
    result: dict[str, Any]
    error: tuple[str, str] | None = None  # (error, cause) when the execution fails


def reference_scope_replay(
    occurrences: list[Occurrence],
    start_time: str,
    end_time: str,
    entity_ids: list[str] | None = None,
    source: str | None = None,
    event_types: list[str] | None = None,
    include_duplicates: bool = False,
    limit: int = 500,
    dry_run: bool = False,
) -> ScopeReplay:
    """§4.11 rules 1-6 for `entity_ids`, or a whole `source` when no list is given."""
    start, end = _utc(start_time), _utc(end_time)
    # Rule 1: every filter given, half-open window.
    selected = [
        o
        for o in occurrences
        if start <= o.utc < end
        and (entity_ids is None or o.entity_id in entity_ids)
        and (source is None or o.source == source)
        and (event_types is None or o.event_type in event_types)
    ]
    counts: dict[str, int] = {}
    for o in selected:
        counts[o.entity_id] = counts.get(o.entity_id, 0) + 1
    occurrences_matched = len(selected)
    # Rule 4: a guard, not a cut.
    if occurrences_matched > limit and not dry_run:
        return ScopeReplay({}, {}, ("ReplayTooLarge", f"matched {occurrences_matched} occurrences; limit {limit}"))
    per_entity: dict[str, list[dict[str, Any]]] = {}
    skipped = 0
    for entity in sorted(counts):
        # Rules 2 and 3: replay order within the entity, first occurrence per (entity_id, event_id).
        rows = sorted((o for o in selected if o.entity_id == entity), key=lambda o: (o.utc, o.event_id, o.arrival))
        seen: set[str] = set()
        messages = []
        for o in rows:
            if not include_duplicates and o.event_id in seen:
                skipped += 1
                continue
            seen.add(o.event_id)
            messages.append(
                {
                    "event_id": o.event_id,
                    "entity_id": o.entity_id,
                    "event_time": _stamp(o.utc),
                    "s3_bucket": o.s3_bucket,
                    "s3_key": o.s3_key,
                }
            )
        per_entity[entity] = messages
    enqueued = sum(len(messages) for messages in per_entity.values())
    result: dict[str, Any] = {
        "scanned": enqueued + skipped,
        "duplicates_skipped": skipped,
        "enqueued": enqueued,
        "truncated": False,
        "entities": len(counts),
        "occurrences": occurrences_matched,
    }
    if dry_run:
        # Rule 6: the 20 entities with most occurrences, and the first entity's first 10 bodies.
        top = sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))[:20]
        result["top_entities"] = [{"entity_id": entity, "occurrences": count} for entity, count in top]
        first = min(counts) if counts else None
        result["preview"] = per_entity[first][:10] if first is not None else []
    return ScopeReplay({} if dry_run else per_entity, result)
