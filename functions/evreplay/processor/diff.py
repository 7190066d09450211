"""GET /aggregates/diff: why did an entity's day change between two replays?

Compares two versions of one (entity, UTC day): their counts, and the event_ids each applied,
read from the applied-markers the processor keeps per version (`evreplay.processor.keys`). One
version's markers are one key range sorted by event_id, so the two are merged in one pass.
Cost: two single-item Queries for the versions, then every marker of both (items read = the two
versions' input counts; one request per 1 MiB page, ~3 000 markers).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from evreplay.core import schemas
from evreplay.core.errors import VersionNotFound
from evreplay.http.query import calendar_day, schema_checked
from evreplay.processor.store import AggregateStore
from evreplay.processor.versions import AggregateVersion


@dataclass(frozen=True)
class DiffQuery:
    entity_id: str
    day: str
    base: str
    other: str


def parse_diff_query(params: Mapping[str, str]) -> DiffQuery:
    """The query string, checked against aggregates_diff_query.schema.json; 400 naming the field."""
    values = schema_checked(schemas.AGGREGATES_DIFF_QUERY, params)
    calendar_day(values["day"], "day")
    return DiffQuery(values["entity_id"], values["day"], values["base"], values["other"])


def _payloads_by_event(markers: Iterable[dict[str, Any]]) -> Iterator[tuple[str, frozenset[str]]]:
    """(event_id, the payload sha256s its applied occurrences had), in event_id order."""
    for event_id, group in itertools.groupby(markers, key=lambda marker: str(marker["event_id"])):
        yield event_id, frozenset(str(marker["payload_sha256"]) for marker in group)


def _count(base: int, other: int) -> dict[str, int]:
    return {"base": base, "other": other, "delta": other - base}


def diff_versions(store: AggregateStore, query: DiffQuery) -> dict[str, Any]:
    versions: dict[str, AggregateVersion] = {}
    for field in ("base", "other"):
        replay_id = getattr(query, field)
        found = store.version(query.entity_id, query.day, replay_id)
        if found is None:
            raise VersionNotFound(
                f"no aggregate version of {query.entity_id!r} on {query.day} for replay {replay_id!r}", field=field
            )
        versions[field] = found
    base, other = versions["base"], versions["other"]

    only_in_base: list[str] = []
    only_in_other: list[str] = []
    payload_changed: list[str] = []
    left = _payloads_by_event(store.markers(query.entity_id, query.day, query.base))
    right = _payloads_by_event(store.markers(query.entity_id, query.day, query.other))
    a, b = next(left, None), next(right, None)
    while a is not None or b is not None:
        if b is None or (a is not None and a[0] < b[0]):
            assert a is not None
            only_in_base.append(a[0])
            a = next(left, None)
        elif a is None or b[0] < a[0]:
            only_in_other.append(b[0])
            b = next(right, None)
        else:
            if a[1] != b[1]:
                payload_changed.append(a[0])
            a, b = next(left, None), next(right, None)

    types = sorted(set(base.counts_by_event_type) | set(other.counts_by_event_type))
    return {
        "entity_id": query.entity_id,
        "day": query.day,
        "base": query.base,
        "other": query.other,
        "daily_event_count": _count(base.daily_event_count, other.daily_event_count),
        "counts_by_event_type": {
            name: _count(base.counts_by_event_type.get(name, 0), other.counts_by_event_type.get(name, 0))
            for name in types
        },
        "inputs_hash_equal": base.inputs_hash == other.inputs_hash,
        "only_in_base": only_in_base,
        "only_in_other": only_in_other,
        "payload_changed": payload_changed,
    }
