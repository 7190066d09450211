"""Reconcile the index with the raw store, which is the truth (README "Reconcile and rebuild").

The raw store is cut into partitions, one per (source, event_type, UTC event day): the Hive prefix
`raw/source=<s>/event_type=<t>/event_date=<day>/`, which is also one LagByTypeDay partition of the
index. For each partition, a `PartitionReconciler` run:

1. lists its objects a page at a time. Every key names its row: the entity (percent-decoded from
   the key; a hashed long entity is read from the object), event time, event id and arrival id give
   the row's (pk, sk), so the rows are read with BatchGetItem by exact key, no scan;
   - an object without a row is *missing*; a repair reads it and indexes it exactly as ingest would
     have (`EventIndex.restore`: first arrival ACCEPTED, later ones DUPLICATE, the registry counting
     every occurrence, an earlier restored arrival demoting the old first row);
   - a row lacking an index key that `IndexRow.index_keys()` says it should carry (rows written
     before a secondary index existed) is *stale*; a repair sets the keys (*backfilled*);
2. counts the LagByTypeDay partition; when it holds more rows than the objects matched, some row's
   object is gone: every row of the partition is then checked with a HEAD, and rows without an
   object are *dangling*: reported, never changed, never deleted.

Everything a row holds is in its raw object or derived from it: `ingest_lag_ms` from `ingest_time`
and `event_time` (both microsecond-exact, so the same integer ingest computed), `payload_sha256`
from the payload, the status from arrival order. Objects written by every earlier version of ingest
carry the same fields, so they are rebuilt with what they hold.

A run is bounded (`pages_per_task` pages of any phase) and resumable: its state is small JSON that
the workflow hands back until `done`, so one Lambda call never nears its timeout whatever a
partition holds. Repairs are idempotent (a restored row exists on the next look), so a retried or
repeated run changes nothing more.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import unquote

from evreplay.core import schemas
from evreplay.core.errors import AWS_CALL_ERRORS, InvalidRequest, StorageUnavailable, aws_error_code
from evreplay.core.event_ids import payload_sha256
from evreplay.core.times import parse_rfc3339
from evreplay.store.index import (
    EXISTING,
    LAG_PK,
    EventIndex,
    IndexRow,
    arrival_of,
    entity_pk,
    lag_partition,
    occurrence_sk,
)
from evreplay.store.raw import RawStore, raw_key

RAW_PREFIX = "raw/"
# What a result reports. objects/rows/missing_rows/stale_rows/dangling_rows are found in both modes;
# indexed/backfilled/statuses_fixed are what a repair changed (0 without one).
COUNTS = (
    "objects",
    "rows",
    "missing_rows",
    "indexed",
    "dangling_rows",
    "stale_rows",
    "backfilled",
    "statuses_fixed",
)
_OBJECT_NAME = re.compile(
    r"^(?P<time>\d{8}T\d{6}\.\d{6}Z)_(?P<event_id>[A-Za-z0-9_.:-]+)_(?P<arrival>\d{8}T\d{6}\d{6}-[0-9a-f]{16})\.json$"
)


class InvalidReconcileRequest(InvalidRequest):
    """A reconcile request (API body or execution input) breaks the schema or the day rules."""

    code = "InvalidReconcileRequest"


class ReconcileIncomplete(Exception):
    """Some partitions produced no result (their child runs failed): the counts are partial."""


@dataclass(frozen=True)
class ReconcileRequest:
    start_day: str
    end_day: str
    repair: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"start_day": self.start_day, "end_day": self.end_day, "repair": self.repair}

    def days(self) -> list[str]:
        first, last = date.fromisoformat(self.start_day), date.fromisoformat(self.end_day)
        return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def _day(body: dict[str, Any], name: str) -> date:
    try:
        return date.fromisoformat(body[name])
    except ValueError as exc:
        raise InvalidReconcileRequest(f"{name} {body[name]!r} is not a calendar date (YYYY-MM-DD)", field=name) from exc


def parse_reconcile_request(body: Any, max_days: int) -> ReconcileRequest:
    """Validate a POST /reconcile body or execution input: UTC days, start_day to end_day inclusive,
    at most `max_days` of them. InvalidReconcileRequest naming the field otherwise."""
    schemas.check(schemas.RECONCILE_REQUEST, body, error_class=InvalidReconcileRequest)
    start, end = _day(body, "start_day"), _day(body, "end_day")
    if end < start:
        raise InvalidReconcileRequest("end_day must not be before start_day (both days included)", field="end_day")
    if (end - start).days + 1 > max_days:
        raise InvalidReconcileRequest(
            f"at most {max_days} days per reconcile; split the range (asked for {(end - start).days + 1})",
            field="end_day",
        )
    return ReconcileRequest(start.isoformat(), end.isoformat(), bool(body.get("repair", False)))


@dataclass(frozen=True)
class Partition:
    """One (source, event_type, UTC event day) of the raw store."""

    source: str
    event_type: str
    day: str

    @property
    def prefix(self) -> str:
        return f"{RAW_PREFIX}source={self.source}/event_type={self.event_type}/event_date={self.day}/"

    @property
    def lag_partition(self) -> str:
        return lag_partition(self.source, self.event_type, self.day)

    def as_dict(self) -> dict[str, str]:
        return {"source": self.source, "event_type": self.event_type, "day": self.day}

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> Partition:
        return cls(str(value["source"]), str(value["event_type"]), str(value["day"]))


@dataclass(frozen=True)
class RawKey:
    """What an object's key says about its row (raw_store.raw_key, read backwards)."""

    key: str
    source: str
    event_type: str
    entity_id: str | None  # None when the key holds a hashed, cut entity: read the object
    event_time: str
    event_id: str
    arrival_id: str

    def sk(self) -> str:
        return occurrence_sk(self.event_time, self.event_id, self.arrival_id)


def parse_raw_key(key: str) -> RawKey | None:
    """The parts of a raw event key, or None for a key ingest never writes."""
    parts = key.split("/")
    if len(parts) != 6 or parts[0] != "raw" or not parts[4].startswith("entity="):
        return None
    fields = [part.partition("=") for part in parts[1:4]]
    if [name for name, _, _ in fields] != ["source", "event_type", "event_date"]:
        return None
    match = _OBJECT_NAME.match(parts[5])
    if match is None:
        return None
    compact = match["time"]
    event_time = (
        f"{compact[0:4]}-{compact[4:6]}-{compact[6:8]}T{compact[9:11]}:{compact[11:13]}:{compact[13:15]}{compact[15:]}"
    )
    segment = parts[4][len("entity=") :]
    return RawKey(
        key=key,
        source=fields[0][2],
        event_type=fields[1][2],
        entity_id=None if "~" in segment else unquote(segment, errors="strict"),
        event_time=event_time,
        event_id=match["event_id"],
        arrival_id=match["arrival"],
    )


def row_from_document(bucket: str, key: str, document: dict[str, Any]) -> IndexRow:
    """The row ingest wrote (or would have written) for this raw object; status is left empty
    (it depends on the other arrivals: EventIndex.restore decides it)."""
    event_time, ingest_time = str(document["event_time"]), str(document["ingest_time"])
    lag = parse_rfc3339(ingest_time) - parse_rfc3339(event_time)
    return IndexRow(
        entity_id=str(document["entity_id"]),
        event_id=str(document["event_id"]),
        event_time=event_time,
        arrival_id=str(document["arrival_id"]),
        ingest_time=ingest_time,
        ingest_lag_ms=int(lag.total_seconds() * 1000),
        status="",
        s3_bucket=bucket,
        s3_key=key,
        source=str(document["source"]),
        event_type=str(document["event_type"]),
        payload_sha256=payload_sha256(document["payload"]),
    )


def list_partitions(s3: Any, bucket: str, request: ReconcileRequest) -> list[Partition]:
    """The raw store's partitions in the request's days: LIST with a delimiter, level by level
    (sources, then event types, then the days of each, starting at start_day), never every object."""
    days = set(request.days())
    found: list[Partition] = []
    for source_prefix in _common_prefixes(s3, bucket, RAW_PREFIX):
        source = source_prefix[len(RAW_PREFIX) :].strip("/").partition("=")[2]
        for type_prefix in _common_prefixes(s3, bucket, source_prefix):
            event_type = type_prefix[len(source_prefix) :].strip("/").partition("=")[2]
            day_root = type_prefix + "event_date="
            for day_prefix in _common_prefixes(s3, bucket, day_root, start_after=day_root + request.start_day):
                day = day_prefix[len(day_root) :].strip("/")
                if day > request.end_day:
                    break
                if day in days:
                    found.append(Partition(source, event_type, day))
    return found


def _common_prefixes(s3: Any, bucket: str, prefix: str, start_after: str | None = None) -> list[str]:
    params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "Delimiter": "/"}
    if start_after:
        params["StartAfter"] = start_after
    prefixes: list[str] = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(**params):
            prefixes.extend(item["Prefix"] for item in page.get("CommonPrefixes", []))
    except AWS_CALL_ERRORS as exc:
        raise StorageUnavailable(f"could not list the raw store ({aws_error_code(exc) or 'error'})") from exc
    return prefixes


def empty_counts() -> dict[str, int]:
    return dict.fromkeys(COUNTS, 0)


def add_counts(total: dict[str, int], part: dict[str, Any]) -> dict[str, int]:
    for name in COUNTS:
        total[name] = total.get(name, 0) + int(part.get(name, 0))
    return total


class PartitionReconciler:
    """Checks (and with `repair`, repairs) one partition, a bounded number of pages per `run`."""

    def __init__(self, s3: Any, raw: RawStore, index: EventIndex, page_size: int, pages_per_task: int) -> None:
        self._s3 = s3
        self._raw = raw
        self._index = index
        self._page_size = page_size
        self._pages_per_task = pages_per_task

    def run(self, state: dict[str, Any]) -> dict[str, Any]:
        """Advance one partition's reconcile from `state` (the previous run's output, or just
        {"partition", "repair"} to begin); `done` is true once every phase finished."""
        state = {
            "phase": "objects",
            "token": None,
            "counts": empty_counts(),
            "matched": 0,
            "in_lag_index": 0,
            "done": False,
            **state,
        }
        partition = Partition.from_dict(state["partition"])
        repair = bool(state.get("repair", False))
        for _ in range(self._pages_per_task):
            if state["phase"] == "objects":
                state["token"] = self._objects_page(partition, repair, state)
                if state["token"] is None:
                    state["phase"] = "count"
            elif state["phase"] == "count":
                count, _, state["token"] = self._index.lag_partition_page(partition.lag_partition, True, state["token"])
                state["in_lag_index"] += count
                if state["token"] is None:
                    state["phase"] = "dangling" if state["in_lag_index"] > state["matched"] else "done"
            elif state["phase"] == "dangling":
                _, items, state["token"] = self._index.lag_partition_page(
                    partition.lag_partition, False, state["token"]
                )
                dangling = sum(1 for item in items if not self._object_exists(partition, item))
                state["counts"]["dangling_rows"] += dangling
                state["counts"]["rows"] += dangling
                if state["token"] is None:
                    state["phase"] = "done"
            if state["phase"] == "done":
                state["done"] = True
                break
        return state

    def _objects_page(self, partition: Partition, repair: bool, state: dict[str, Any]) -> str | None:
        counts = state["counts"]
        params: dict[str, Any] = {"Bucket": self._raw.bucket, "Prefix": partition.prefix, "MaxKeys": self._page_size}
        if state["token"]:
            params["ContinuationToken"] = state["token"]
        try:
            page = self._s3.list_objects_v2(**params)
        except AWS_CALL_ERRORS as exc:
            raise StorageUnavailable(f"could not list {partition.prefix} ({aws_error_code(exc) or 'error'})") from exc
        documents: dict[str, dict[str, Any]] = {}
        located: list[tuple[RawKey, str, str]] = []  # (key parts, pk, sk)
        for listed in page.get("Contents", []):
            parts = parse_raw_key(listed["Key"])
            if parts is None:
                continue  # not an event object (nothing ingest writes): not ours to judge
            counts["objects"] += 1
            entity_id = parts.entity_id
            if entity_id is None:
                documents[parts.key] = self._raw.get(self._raw.bucket, parts.key)
                entity_id = str(documents[parts.key]["entity_id"])
            located.append((parts, entity_pk(entity_id), parts.sk()))
        stored = self._index.items([(pk, sk) for _, pk, sk in located])
        missing: list[RawKey] = []
        for parts, pk, sk in located:
            item = stored.get((pk, sk))
            if item is None:
                missing.append(parts)
                continue
            counts["rows"] += 1
            row = IndexRow.from_item(item)
            stale = row.stale_index_keys(item)
            in_index = item.get(LAG_PK) == {"S": partition.lag_partition}
            if stale:
                counts["stale_rows"] += 1
                if repair and self._index.set_index_keys(row, stale):
                    counts["backfilled"] += 1
                    in_index = in_index or stale.get(LAG_PK) == partition.lag_partition
            state["matched"] += int(in_index)
        counts["missing_rows"] += len(missing)
        if repair:
            # Oldest arrival first: within a page, later ones then never demote an earlier restore.
            for parts in sorted(missing, key=lambda p: p.arrival_id):
                document = documents.get(parts.key) or self._raw.get(self._raw.bucket, parts.key)
                restored = self._index.restore(row_from_document(self._raw.bucket, parts.key, document))
                if restored.status != EXISTING:
                    counts["indexed"] += 1
                    counts["statuses_fixed"] += restored.demoted
                    state["matched"] += 1
        token: str | None = page.get("NextContinuationToken") if page.get("IsTruncated") else None
        return token

    def _object_exists(self, partition: Partition, item: dict[str, Any]) -> bool:
        """Whether the raw object of a LagByTypeDay row (its projected attributes) exists."""
        key = raw_key(
            partition.source,
            partition.event_type,
            item["entity_id"]["S"],
            item["event_time"]["S"],
            item["event_id"]["S"],
            arrival_of(item["sk"]["S"]),
        )
        try:
            self._s3.head_object(Bucket=self._raw.bucket, Key=key)
        except AWS_CALL_ERRORS as exc:
            if aws_error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise StorageUnavailable(f"could not check {key} ({aws_error_code(exc) or 'error'})") from exc
        return True


def result_document(request: dict[str, Any], partitions: int, parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The reconcile's result from its partitions' results (one per partition that finished)."""
    total = empty_counts()
    for part in parts:
        add_counts(total, part.get("counts", {}))
    return {
        **total,
        "partitions": partitions,
        "failed_partitions": partitions - len(parts),
        "request": request,
    }


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
