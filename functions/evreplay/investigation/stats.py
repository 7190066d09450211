"""Investigation reads over the event index: lag, volume, gaps and duplicates (issue 8).

Every answer is exact and comes from DynamoDB Query calls on the partitions the question names;
nothing scans a table. Index layout: `evreplay.store.index`. What one call reads (eventually
consistent Query: 0.5 read unit per 4 KiB read, summed over a request's items; an index item is
the table and index keys plus a few projected attributes, ~350 bytes with 64-character derived
event ids, so ~3 000 per 1 MiB page and ~45 000 read units per million items):

- `lag` (GET /stats/lag): the stream's day partition of LagByTypeDay, every item, in lag order.
  Items read = arrivals that day (duplicates included: each arrival has its own lag); requests =
  one per 1 MiB page. The 20 latest arrivals are the last 20 read, so they cost nothing more;
  memory holds one integer per arrival.
- `volume` (GET /stats/volume): one LagByTypeDay partition per day of the range, at least one
  request per day (`Select=COUNT` by day; event_time only by hour). Items read = arrivals in the
  range; duplicates are read and filtered out, so the counts are of distinct events.
- `gaps` (GET /gaps): a skip-scan of the entity's partition of the table itself: a Query with
  `Limit 1` from the start of the first bucket not known yet returns the entity's next event,
  which proves its bucket non-empty and every bucket before it empty; the next Query starts at
  the following bucket. Requests = items read = non-empty buckets + at most one per segment (the
  Query that finds nothing more), however many events the buckets hold: 0.5 read unit each.
  Windows of more than 500 buckets are split into at most 8 segments read concurrently, so a
  10 000-bucket window costs at most ~1 250 sequential requests.
- `duplicates` (GET /stats/duplicates): the ingest day's partition of the sparse
  DuplicatesByIngestDay index, or only its `<source>#` key range. Items read = duplicate arrivals
  that day (of that source); requests = one per 1 MiB page.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from evreplay.core import schemas
from evreplay.core.errors import InvalidRequest
from evreplay.core.times import format_utc, normalize, parse_rfc3339
from evreplay.http.query import calendar_day, schema_checked
from evreplay.store import dynamo
from evreplay.store.dynamo import deserialize
from evreplay.store.index import (
    ACCEPTED,
    DUP_PK,
    DUP_SK,
    DUPLICATES_INDEX,
    LAG_INDEX,
    LAG_PK,
    duplicate_partition,
    duplicate_sort_prefix,
    lag_partition,
    window_condition,
)

Params = Mapping[str, str]

# ---------------------------------------------------------------- rules (documented in the README)
PERCENTILES = (50, 90, 99)
# Upper bounds (ms, inclusive) of the lag histogram; None = everything later.
HISTOGRAM_BOUNDS: tuple[int | None, ...] = (1000, 10_000, 60_000, 600_000, 3_600_000, 21_600_000, 86_400_000, None)
LATEST_COUNT = 20

BUCKET_SECONDS = {"hour": 3600, "day": 86400}
MAX_VOLUME_DAYS = {"day": 92, "hour": 14}
TRAILING_BUCKETS = {"hour": 24, "day": 7}
MIN_TRAILING_BUCKETS = 3
LOW_FRACTION = 0.5
EMPTY, LOW = "EMPTY", "LOW"

MAX_GAP_BUCKETS = 10_000
SEGMENT_BUCKETS = 500
MAX_SEGMENTS = 8

DEFAULT_TOP_ENTITIES = 20


# ---------------------------------------------------------------- queries (parsed strictly)
@dataclass(frozen=True)
class LagQuery:
    source: str
    event_type: str
    day: str


@dataclass(frozen=True)
class VolumeQuery:
    source: str
    event_type: str
    start_day: str
    end_day: str
    bucket: str

    def days(self) -> list[str]:
        first, last = date.fromisoformat(self.start_day), date.fromisoformat(self.end_day)
        return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


@dataclass(frozen=True)
class GapsQuery:
    entity_id: str
    start_time: str
    end_time: str
    bucket: str


@dataclass(frozen=True)
class DuplicatesQuery:
    day: str
    source: str | None
    limit: int


def parse_lag_query(params: Params) -> LagQuery:
    values = schema_checked(schemas.LAG_QUERY, params)
    calendar_day(values["day"], "day")
    return LagQuery(values["source"], values["event_type"], values["day"])


def parse_volume_query(params: Params) -> VolumeQuery:
    values = schema_checked(schemas.VOLUME_QUERY, params)
    bucket = values.get("bucket", "day")
    first = calendar_day(values["start_day"], "start_day")
    last = calendar_day(values["end_day"], "end_day")
    if last < first:
        raise InvalidRequest("must not be before start_day", field="end_day")
    span = (last - first).days + 1
    if span > MAX_VOLUME_DAYS[bucket]:
        raise InvalidRequest(
            f"at most {MAX_VOLUME_DAYS[bucket]} days per request with bucket={bucket}; this asks for {span}",
            field="end_day",
        )
    return VolumeQuery(values["source"], values["event_type"], values["start_day"], values["end_day"], bucket)


def parse_gaps_query(params: Params) -> GapsQuery:
    values = schema_checked(schemas.GAPS_QUERY, params)
    # The schema's date-time format took them (evreplay.core.times' parser): normalizing cannot fail.
    start_time, end_time = normalize(values["start_time"]), normalize(values["end_time"])
    if not start_time < end_time:
        raise InvalidRequest("must be later than start_time", field="end_time")
    query = GapsQuery(values["entity_id"], start_time, end_time, values.get("bucket", "hour"))
    count = BucketGrid.of(query).count
    if count > MAX_GAP_BUCKETS:
        raise InvalidRequest(
            f"the window spans {count} {query.bucket} buckets; at most {MAX_GAP_BUCKETS} per request",
            field="end_time",
        )
    return query


def parse_duplicates_query(params: Params) -> DuplicatesQuery:
    values = schema_checked(schemas.DUPLICATES_QUERY, params, integers=("limit",))
    calendar_day(values["day"], "day")
    return DuplicatesQuery(values["day"], values.get("source"), int(values.get("limit", DEFAULT_TOP_ENTITIES)))


# ---------------------------------------------------------------- pure computations
def nearest_rank(ordered: list[int], percentile: int) -> int | None:
    """The nearest-rank percentile of ascending values: the smallest value with at least
    `percentile`% of the values at or below it (None for no values)."""
    if not ordered:
        return None
    rank = max(1, math.ceil(percentile * len(ordered) / 100))
    return ordered[rank - 1]


def lag_histogram(ordered: list[int]) -> list[dict[str, int | None]]:
    """Arrivals per lag range: each bound counts the lags above the previous bound and at or below
    its own (the first bucket also holds negative lags: event_time in the future)."""
    counts = dict.fromkeys(HISTOGRAM_BOUNDS, 0)
    for lag in ordered:
        counts[next(bound for bound in HISTOGRAM_BOUNDS if bound is None or lag <= bound)] += 1
    return [{"le_ms": bound, "count": count} for bound, count in counts.items()]


def low_rule(bucket: str) -> str:
    return (
        f"a bucket is LOW when its count is below {LOW_FRACTION:.0%} of the median of the "
        f"{TRAILING_BUCKETS[bucket]} buckets ({bucket}s) before it in the requested range "
        f"(fewer at its start; no LOW with fewer than {MIN_TRAILING_BUCKETS}); EMPTY when it is 0"
    )


def flag_buckets(starts: list[str], counts: list[int], bucket: str) -> list[dict[str, Any]]:
    """Each bucket with its trailing median and flag (EMPTY, LOW or None), by `low_rule`."""
    window = TRAILING_BUCKETS[bucket]
    items: list[dict[str, Any]] = []
    for position, (start, count) in enumerate(zip(starts, counts, strict=True)):
        trailing = counts[max(0, position - window) : position]
        median = float(statistics.median(trailing)) if len(trailing) >= MIN_TRAILING_BUCKETS else None
        flag = EMPTY if count == 0 else LOW if median is not None and count < LOW_FRACTION * median else None
        items.append({"start": start, "count": count, "trailing_median": median, "flag": flag})
    return items


@dataclass(frozen=True)
class BucketGrid:
    """UTC-aligned buckets covering [start, end): the first starts at start floored to the bucket."""

    origin: datetime
    size: timedelta
    start: datetime
    end: datetime

    @classmethod
    def of(cls, query: GapsQuery) -> BucketGrid:
        start, end = parse_rfc3339(query.start_time), parse_rfc3339(query.end_time)
        size = timedelta(seconds=BUCKET_SECONDS[query.bucket])
        origin = datetime.combine(start.date(), datetime.min.time(), tzinfo=start.tzinfo)
        origin += (start - origin) // size * size
        return cls(origin, size, start, end)

    @property
    def count(self) -> int:
        return -((self.origin - self.end) // self.size)

    def index_of(self, moment: datetime) -> int:
        return (moment - self.origin) // self.size

    def lower(self, index: int) -> datetime:
        """Where bucket `index` starts, clipped to the window."""
        return max(self.start, self.origin + index * self.size)

    def upper(self, index: int) -> datetime:
        """Where bucket `index` ends, clipped to the window."""
        return min(self.end, self.origin + (index + 1) * self.size)


def merge_gaps(grid: BucketGrid, non_empty: set[int]) -> list[dict[str, Any]]:
    """Runs of consecutive empty buckets, clipped to the window."""
    gaps: list[dict[str, Any]] = []
    run_start: int | None = None
    for index in range(grid.count + 1):
        empty = index < grid.count and index not in non_empty
        if empty and run_start is None:
            run_start = index
        elif not empty and run_start is not None:
            gaps.append(
                {
                    "start": format_utc(grid.lower(run_start)),
                    "end": format_utc(grid.upper(index - 1)),
                    "buckets": index - run_start,
                }
            )
            run_start = None
    return gaps


# ---------------------------------------------------------------- reads
class Investigation:
    """Answers the investigation routes from the index table and its secondary indexes."""

    def __init__(self, dynamodb_client: Any, table: str) -> None:
        self._ddb = dynamodb_client
        self.table = table

    # ------------------------------------------------------------ lag
    def lag(self, query: LagQuery) -> dict[str, Any]:
        lags: list[int] = []
        latest: deque[dict[str, Any]] = deque(maxlen=LATEST_COUNT)
        params = {
            "TableName": self.table,
            "IndexName": LAG_INDEX,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": LAG_PK},
            "ExpressionAttributeValues": {":pk": {"S": lag_partition(query.source, query.event_type, query.day)}},
        }
        # Ascending by lag: the list arrives sorted and the last items read are the latest arrivals.
        for item in self._query_all(params):
            row = deserialize(item)
            lag = int(row["ingest_lag_ms"])
            lags.append(lag)
            latest.append(
                {
                    "event_id": row["event_id"],
                    "entity_id": row["entity_id"],
                    "event_time": row["event_time"],
                    "ingest_time": row["ingest_time"],
                    "ingest_lag_ms": lag,
                    "status": row["status"],
                }
            )
        return {
            "source": query.source,
            "event_type": query.event_type,
            "day": query.day,
            "count": len(lags),
            "lag_ms": {
                **{f"p{p}": nearest_rank(lags, p) for p in PERCENTILES},
                "max": lags[-1] if lags else None,
            },
            "histogram": lag_histogram(lags),
            "latest": list(reversed(latest)),
        }

    # ------------------------------------------------------------ volume
    def volume(self, query: VolumeQuery) -> dict[str, Any]:
        starts: list[str] = []
        counts: list[int] = []
        for day in query.days():
            if query.bucket == "day":
                starts.append(f"{day}T00:00:00Z")
                counts.append(self._count_events(query.source, query.event_type, day))
            else:
                per_hour = self._events_per_hour(query.source, query.event_type, day)
                starts.extend(f"{day}T{hour:02d}:00:00Z" for hour in range(24))
                counts.extend(per_hour)
        return {
            "source": query.source,
            "event_type": query.event_type,
            "start_day": query.start_day,
            "end_day": query.end_day,
            "bucket": query.bucket,
            "total": sum(counts),
            "low_rule": low_rule(query.bucket),
            "items": flag_buckets(starts, counts, query.bucket),
        }

    def _accepted_in(self, source: str, event_type: str, day: str) -> dict[str, Any]:
        """LagByTypeDay query of one stream's day, keeping first arrivals (ACCEPTED) only."""
        return {
            "TableName": self.table,
            "IndexName": LAG_INDEX,
            "KeyConditionExpression": "#pk = :pk",
            "FilterExpression": "#status = :accepted",
            "ExpressionAttributeNames": {"#pk": LAG_PK, "#status": "status"},
            "ExpressionAttributeValues": {
                ":pk": {"S": lag_partition(source, event_type, day)},
                ":accepted": {"S": ACCEPTED},
            },
        }

    def _count_events(self, source: str, event_type: str, day: str) -> int:
        params = {**self._accepted_in(source, event_type, day), "Select": "COUNT"}
        return sum(int(page.get("Count", 0)) for page in self._pages(params))

    def _events_per_hour(self, source: str, event_type: str, day: str) -> list[int]:
        params = self._accepted_in(source, event_type, day)
        params["ExpressionAttributeNames"] = {**params["ExpressionAttributeNames"], "#time": "event_time"}
        params["ProjectionExpression"] = "#time"
        hours = [0] * 24
        for item in self._query_all(params):
            hours[int(item["event_time"]["S"][11:13])] += 1
        return hours

    # ------------------------------------------------------------ gaps
    def gaps(self, query: GapsQuery) -> dict[str, Any]:
        grid = BucketGrid.of(query)
        count = grid.count
        segments = min(MAX_SEGMENTS, math.ceil(count / SEGMENT_BUCKETS))
        bounds = [count * n // segments for n in range(segments + 1)]
        ranges = list(itertools.pairwise(bounds))
        if segments == 1:
            found = [self._non_empty(query.entity_id, grid, *ranges[0])]
        else:
            with ThreadPoolExecutor(max_workers=segments) as pool:
                found = list(pool.map(lambda span: self._non_empty(query.entity_id, grid, *span), ranges))
        non_empty = {index for indexes in found for index in indexes}
        return {
            "entity_id": query.entity_id,
            "start_time": query.start_time,
            "end_time": query.end_time,
            "bucket": query.bucket,
            "buckets": count,
            "empty_buckets": count - len(non_empty),
            "gaps": merge_gaps(grid, non_empty),
        }

    def _non_empty(self, entity_id: str, grid: BucketGrid, first: int, stop: int) -> list[int]:
        """Skip-scan of buckets [first, stop): the indexes of those holding at least one event."""
        found: list[int] = []
        index = first
        until = format_utc(grid.upper(stop - 1))
        while index < stop:
            event_time = self._next_event_time(entity_id, format_utc(grid.lower(index)), until)
            if event_time is None:
                break
            index = grid.index_of(parse_rfc3339(event_time))
            found.append(index)
            index += 1
        return found

    def _next_event_time(self, entity_id: str, since: str, until: str) -> str | None:
        """event_time of the entity's first occurrence in [since, until), if any: one item read."""
        params = {
            "TableName": self.table,
            "Limit": 1,
            "ProjectionExpression": "event_time",
            **window_condition(entity_id, since, until),
        }
        items = self._query(params).get("Items", [])
        return str(items[0]["event_time"]["S"]) if items else None

    # ------------------------------------------------------------ duplicates
    def duplicates(self, query: DuplicatesQuery) -> dict[str, Any]:
        condition = "#pk = :pk"
        values: dict[str, Any] = {":pk": {"S": duplicate_partition(query.day)}}
        if query.source is not None:
            condition += " AND begins_with(#sk, :source)"
            values[":source"] = {"S": duplicate_sort_prefix(query.source)}
        params = {
            "TableName": self.table,
            "IndexName": DUPLICATES_INDEX,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": {"#pk": DUP_PK, **({"#sk": DUP_SK} if query.source is not None else {})},
            "ExpressionAttributeValues": values,
        }
        arrivals = 0
        by_type: dict[str, int] = {}
        per_entity: dict[str, int] = {}
        ids_per_entity: dict[str, set[str]] = {}
        for item in self._query_all(params):
            entity_id, event_id, event_type = (item[name]["S"] for name in ("entity_id", "event_id", "event_type"))
            arrivals += 1
            by_type[event_type] = by_type.get(event_type, 0) + 1
            per_entity[entity_id] = per_entity.get(entity_id, 0) + 1
            ids_per_entity.setdefault(entity_id, set()).add(event_id)
        top = sorted(per_entity, key=lambda entity: (-per_entity[entity], entity))[: query.limit]
        return {
            "day": query.day,
            "source": query.source,
            "duplicate_arrivals": arrivals,
            "distinct_event_ids": sum(len(ids) for ids in ids_per_entity.values()),
            "by_event_type": dict(sorted(by_type.items())),
            "top_entities": [
                {
                    "entity_id": entity,
                    "duplicate_arrivals": per_entity[entity],
                    "distinct_event_ids": len(ids_per_entity[entity]),
                }
                for entity in top
            ],
        }

    # ------------------------------------------------------------ plumbing
    def _query(self, params: dict[str, Any]) -> dict[str, Any]:
        return dynamo.query(self._ddb, params, "query the index")

    def _pages(self, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        return dynamo.query_pages(self._ddb, params, "query the index")

    def _query_all(self, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        for page in self._pages(params):
            yield from page.get("Items", [])
