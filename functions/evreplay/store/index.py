"""The event index in DynamoDB.

One partition per entity (`pk = "E#" + entity_id`) holds two kinds of item:

- an occurrence row per arrival, `sk = "T#<event_time>#<event_id>#<arrival_id>"`, so a time
  window is one key-range Query in replay order (event_time, then event_id, then arrival:
  `#` sorts before every character an event_id may contain, and `arrival_id` starts with the
  fixed-width ingest time);
- a registry item per event_id, `sk = "I#<event_id>"`, counting its occurrences. The first
  arrival of an event_id creates it (ACCEPTED), later ones increment it (DUPLICATE), in the same
  transaction as their occurrence row, so the count and the rows never disagree. The replay
  workflow reads it to know which event_ids need a per-replay duplicate check.

Occurrence rows also carry the keys of two global secondary indexes (investigation reads, no
scan anywhere; `evreplay.investigation.stats` reads them):

- `LagByTypeDay`: partition `lag_pk = "<source>#<event_type>#<UTC day of event_time>"`, sorted by
  `ingest_lag_ms` (a number), projecting event_id, entity_id, event_time, ingest_time and status:
  lag percentiles, the latest arrivals and per-day/hour volume of one stream read one partition.
  source and event_type cannot contain `#`, so the partition key is unambiguous;
- `DuplicatesByIngestDay`, sparse: only DUPLICATE rows carry `dup_pk = "DUP#<UTC day of
  ingest_time>"` and `dup_sk = "<source>#<ingest_time>"` (so `source=` is a begins_with key
  condition), projecting entity_id, event_id and event_type.

A hot entity is bounded by one partition's throughput: 1 000 write units/s, i.e. about 500
ingests/s per entity (each ingest is a two-item transaction), and 3 000 read units/s. The indexes
add their own bound: a GSI partition takes about 1 000 writes/s, so one (source, event_type) stream
above ~1 000 arrivals/s per event day, or more than ~1 000 duplicate arrivals/s overall, throttles
the index and, through it, ingest (DynamoDB back-pressures table writes when a GSI cannot keep up).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from evreplay.core.errors import AWS_CALL_ERRORS, StorageUnavailable, aws_error_code
from evreplay.core.times import utc_day, utc_days
from evreplay.store import dynamo
from evreplay.store.dynamo import CONDITION_FAILED, TransactionCancelled, deserialize, serialize

ENTITY_PREFIX = "E#"
OCCURRENCE_PREFIX = "T#"
REGISTRY_PREFIX = "I#"

ACCEPTED = "ACCEPTED"
DUPLICATE = "DUPLICATE"

# Global secondary indexes (template.yaml, EventIndexTable) and the attributes that key them.
LAG_INDEX = "LagByTypeDay"
LAG_PK = "lag_pk"
LAG_SK = "ingest_lag_ms"
DUPLICATES_INDEX = "DuplicatesByIngestDay"
DUP_PK = "dup_pk"
DUP_SK = "dup_sk"
DUPLICATE_PARTITION_PREFIX = "DUP#"
STREAM_INDEX = "StreamByDay"
STREAM_PK = "stream_pk"
STREAM_SK = "stream_sk"
STREAM_SHARDS = 16  # fixed for the life of a deployment: ingest and replay must agree on it


def entity_pk(entity_id: str) -> str:
    return ENTITY_PREFIX + entity_id


def occurrence_sk(event_time: str, event_id: str, arrival_id: str) -> str:
    return f"{OCCURRENCE_PREFIX}{event_time}#{event_id}#{arrival_id}"


def registry_sk(event_id: str) -> str:
    return REGISTRY_PREFIX + event_id


def arrival_of(sk: str) -> str:
    """The arrival id at the end of an occurrence sort key (event ids never contain `#`)."""
    return sk.rsplit("#", 1)[-1]


def window_condition(entity_id: str, start_time: str, end_time: str) -> dict[str, Any]:
    """Query parameters for `start_time <= event_time < end_time` (normalized times).

    BETWEEN is inclusive, but no sort key equals the bare `T#<end_time>`: every row at exactly
    end_time sorts after it (`T#<end_time>#...`), so the upper bound is exclusive in effect."""
    return {
        "KeyConditionExpression": "pk = :pk AND sk BETWEEN :lo AND :hi",
        "ExpressionAttributeValues": {
            ":pk": {"S": entity_pk(entity_id)},
            ":lo": {"S": OCCURRENCE_PREFIX + start_time},
            ":hi": {"S": OCCURRENCE_PREFIX + end_time},
        },
    }


def lag_partition(source: str, event_type: str, day: str) -> str:
    """LagByTypeDay partition of one stream's UTC event day."""
    return f"{source}#{event_type}#{day}"


def duplicate_partition(day: str) -> str:
    """DuplicatesByIngestDay partition of one UTC ingest day."""
    return DUPLICATE_PARTITION_PREFIX + day


def duplicate_sort_prefix(source: str) -> str:
    """Every DuplicatesByIngestDay sort key of a source starts with this."""
    return source + "#"


def stream_shard(row_sk: str) -> int:
    """The StreamByDay shard of one occurrence (deterministic, so a backfill writes the same keys)."""
    return int(hashlib.sha256(row_sk.encode("utf-8")).hexdigest()[:8], 16) % STREAM_SHARDS


def stream_partition(source: str, day: str, shard: int) -> str:
    """StreamByDay partition of one shard of a source's UTC event day."""
    return f"{source}#{day}#{shard}"


def stream_partitions(source: str, start_time: str, end_time: str) -> list[str]:
    """Every StreamByDay partition a window `[start_time, end_time)` of one source may have rows in."""
    days = utc_days(start_time, end_time)
    return [stream_partition(source, day, shard) for day in days for shard in range(STREAM_SHARDS)]


@dataclass(frozen=True)
class IndexRow:
    """One stored occurrence, as the index keeps it."""

    entity_id: str
    event_id: str
    event_time: str
    arrival_id: str
    ingest_time: str
    ingest_lag_ms: int
    status: str
    s3_bucket: str
    s3_key: str
    source: str
    event_type: str
    payload_sha256: str

    @property
    def sk(self) -> str:
        return occurrence_sk(self.event_time, self.event_id, self.arrival_id)

    def to_item(self) -> dict[str, Any]:
        return serialize({"pk": entity_pk(self.entity_id), "sk": self.sk, **asdict(self), **self.index_keys()})

    def index_keys(self) -> dict[str, str]:
        """The secondary-index keys this row carries (module docstring); DUPLICATE rows only are in
        the sparse duplicates index."""
        keys = {
            LAG_PK: lag_partition(self.source, self.event_type, utc_day(self.event_time)),
            STREAM_PK: stream_partition(self.source, utc_day(self.event_time), stream_shard(self.sk)),
            STREAM_SK: f"{self.event_time}#{self.event_id}",
        }
        if self.status == DUPLICATE:
            keys[DUP_PK] = duplicate_partition(utc_day(self.ingest_time))
            keys[DUP_SK] = duplicate_sort_prefix(self.source) + self.ingest_time
        return keys

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> IndexRow:
        plain = deserialize(item)
        return cls(
            entity_id=plain["entity_id"],
            event_id=plain["event_id"],
            event_time=plain["event_time"],
            arrival_id=plain["arrival_id"],
            ingest_time=plain["ingest_time"],
            ingest_lag_ms=int(plain["ingest_lag_ms"]),
            status=plain["status"],
            s3_bucket=plain["s3_bucket"],
            s3_key=plain["s3_key"],
            source=plain["source"],
            event_type=plain["event_type"],
            payload_sha256=plain["payload_sha256"],
        )

    def public(self) -> dict[str, Any]:
        """The row as the API shows it."""
        return asdict(self)

    def with_status(self, status: str) -> IndexRow:
        return IndexRow(**{**asdict(self), "status": status})

    def stale_index_keys(self, item: dict[str, Any]) -> dict[str, str]:
        """The index keys (`index_keys()`) that the stored `item` lacks or holds with another value:
        what a backfill must set. Whatever a later change adds to `index_keys()` is covered too."""
        return {name: value for name, value in self.index_keys().items() if item.get(name) != {"S": value}}


class EventIndex:
    """Reads and writes the index table."""

    def __init__(self, dynamodb_client: Any, table: str) -> None:
        self._ddb = dynamodb_client
        self.table = table

    def record(self, row: IndexRow, also: Callable[[str], list[dict[str, Any]]] | None = None) -> str:
        """Index one arrival and return its status: ACCEPTED for the entity's first occurrence of
        this event_id, DUPLICATE otherwise. Both the registry and the row change in one
        transaction, so a failure leaves neither. `also(status)` adds items written in the same
        transaction (a keyed request's receipt, evreplay.ingest.receipts)."""
        extra = also or (lambda status: [])
        pk = {"S": entity_pk(row.entity_id)}
        registry_key = {"pk": pk, "sk": {"S": registry_sk(row.event_id)}}
        first = self._new_registry(registry_key, row)
        try:
            self._transact([first, self._put_row(row, ACCEPTED), *extra(ACCEPTED)])
            return ACCEPTED
        except TransactionCancelled as cancelled:
            if cancelled.codes[0] != CONDITION_FAILED:
                raise StorageUnavailable("could not index the event (transaction cancelled); retry") from cancelled
        again = {
            "Update": {
                "TableName": self.table,
                "Key": registry_key,
                "UpdateExpression": "ADD occurrences :one",
                "ConditionExpression": "attribute_exists(pk)",
                "ExpressionAttributeValues": {":one": {"N": "1"}},
            }
        }
        try:
            self._transact([again, self._put_row(row, DUPLICATE), *extra(DUPLICATE)])
        except TransactionCancelled as cancelled:
            raise StorageUnavailable("could not index the duplicate (transaction cancelled); retry") from cancelled
        return DUPLICATE

    def restore(self, row: IndexRow, attempts: int = 20) -> Restored:
        """Index an occurrence that ingest stored but never indexed, as ingest would have: the
        earliest arrival (by arrival id, which starts with the fixed-width ingest time) of an
        (entity, event_id) is ACCEPTED and every later one DUPLICATE, with the registry counting
        them all. Unlike `record`, the restored occurrence may be earlier than the registry's first:
        then the earlier first row is demoted to DUPLICATE (given the duplicates-index keys) in the
        same transaction. Every write is conditioned on the registry item as it was read, so
        restores of one event_id running in parallel (reconcile partitions, live ingest) serialize:
        the loser reads again and retries. An occurrence whose row already exists is left alone."""
        registry_key = {"pk": {"S": entity_pk(row.entity_id)}, "sk": {"S": registry_sk(row.event_id)}}
        for _ in range(attempts):
            registry = self._get(registry_key)
            if registry is None:
                first = self._new_registry(registry_key, row)
                outcome = self._try([first, self._put_row(row, ACCEPTED)], Restored(ACCEPTED))
            else:
                outcome = self._restore_after(row, registry_key, registry["first_sk"]["S"])
            if outcome is not None:
                return outcome
        raise StorageUnavailable(f"could not restore {row.sk}: its registry item kept changing; retry")

    def _restore_after(self, row: IndexRow, registry_key: dict[str, Any], first_sk: str) -> Restored | None:
        """One attempt against a registry whose first occurrence is `first_sk` (None: read again)."""
        unchanged = {":first": {"S": first_sk}, ":one": {"N": "1"}}
        earlier = arrival_of(row.sk) < arrival_of(first_sk)
        first_row = self._get({"pk": registry_key["pk"], "sk": {"S": first_sk}}) if earlier else None
        if first_row is not None and first_row.get("status") != {"S": ACCEPTED}:
            first_row = None  # an index that already disagrees with itself: add, never flip a second row
        if not earlier or first_row is None:
            # Later than the first (or the first's row is gone: nothing to demote): one more DUPLICATE,
            # or a new first when it is earlier than a first that no longer exists.
            status = ACCEPTED if earlier else DUPLICATE
            update = "ADD occurrences :one" + (" SET first_sk = :new" if earlier else "")
            values = {**unchanged, **({":new": {"S": row.sk}} if earlier else {})}
            registry = self._registry_update(registry_key, update, values)
            return self._try([registry, self._put_row(row, status)], Restored(status))
        demoted = IndexRow.from_item(first_row).with_status(DUPLICATE)
        keys = demoted.index_keys()
        names = {f"#k{n}": name for n, name in enumerate(keys)}
        demote = {
            "Update": {
                "TableName": self.table,
                "Key": {"pk": registry_key["pk"], "sk": {"S": first_sk}},
                "UpdateExpression": "SET #status = :dup, " + ", ".join(f"{alias} = :v{alias[2:]}" for alias in names),
                "ConditionExpression": "#status = :accepted",
                "ExpressionAttributeNames": {"#status": "status", **names},
                "ExpressionAttributeValues": {
                    ":dup": {"S": DUPLICATE},
                    ":accepted": {"S": ACCEPTED},
                    **{f":v{alias[2:]}": {"S": keys[name]} for alias, name in names.items()},
                },
            }
        }
        registry = self._registry_update(
            registry_key, "ADD occurrences :one SET first_sk = :new", {**unchanged, ":new": {"S": row.sk}}
        )
        return self._try([registry, self._put_row(row, ACCEPTED), demote], Restored(ACCEPTED, demoted=1))

    def _registry_update(self, key: dict[str, Any], expression: str, values: dict[str, Any]) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self.table,
                "Key": key,
                "UpdateExpression": expression,
                "ConditionExpression": "first_sk = :first",
                "ExpressionAttributeValues": values,
            }
        }

    def _try(self, items: list[dict[str, Any]], outcome: Restored) -> Restored | None:
        """Run a restore transaction: its outcome, None when the registry changed under it (read
        again), or `Restored(EXISTING)` when the row is already there."""
        try:
            self._transact(items)
            return outcome
        except TransactionCancelled as cancelled:
            reasons = cancelled.codes
            if reasons[1] == CONDITION_FAILED:
                return Restored(EXISTING)
            if CONDITION_FAILED in reasons or "TransactionConflict" in reasons:
                return None
            raise StorageUnavailable(f"could not restore the row (cancelled: {cancelled}); retry") from cancelled

    def _get(self, key: dict[str, Any]) -> dict[str, Any] | None:
        try:
            response = self._ddb.get_item(TableName=self.table, Key=key, ConsistentRead=True)
        except AWS_CALL_ERRORS as exc:
            raise StorageUnavailable(f"could not read the index ({aws_error_code(exc) or 'error'})") from exc
        item: dict[str, Any] | None = response.get("Item")
        return item

    def items(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """The stored items at these (pk, sk) keys, by key; absent keys are left out."""
        unique = list(dict.fromkeys(keys))
        found = dynamo.batch_get(
            self._ddb, self.table, [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in unique], "index", consistent=True
        )
        return {(item["pk"]["S"], item["sk"]["S"]): item for item in found}

    def set_index_keys(self, row: IndexRow, keys: dict[str, str]) -> bool:
        """Backfill: give a stored row index keys it lacks, if it still has the status the keys were
        computed for (a concurrent restore may have demoted it). False when it did not."""
        names = {f"#k{n}": name for n, name in enumerate(keys)}
        try:
            self._ddb.update_item(
                TableName=self.table,
                Key={"pk": {"S": entity_pk(row.entity_id)}, "sk": {"S": row.sk}},
                UpdateExpression="SET " + ", ".join(f"{alias} = :v{alias[2:]}" for alias in names),
                ConditionExpression="#status = :status",
                ExpressionAttributeNames={"#status": "status", **names},
                ExpressionAttributeValues={
                    ":status": {"S": row.status},
                    **{f":v{alias[2:]}": {"S": keys[name]} for alias, name in names.items()},
                },
            )
        except AWS_CALL_ERRORS as exc:
            if aws_error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise StorageUnavailable(f"could not backfill the row ({aws_error_code(exc) or 'error'})") from exc
        return True

    def lag_partition_page(
        self, partition: str, count_only: bool, exclusive_start_key: dict[str, Any] | None = None
    ) -> tuple[int, list[dict[str, Any]], dict[str, Any] | None]:
        """One page of the LagByTypeDay partition: (rows on it, their projected items unless
        `count_only`, the key to continue from)."""
        params: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": LAG_INDEX,
            "KeyConditionExpression": "lag_pk = :p",
            "ExpressionAttributeValues": {":p": {"S": partition}},
        }
        if count_only:
            params["Select"] = "COUNT"
        if exclusive_start_key:
            params["ExclusiveStartKey"] = exclusive_start_key
        response = dynamo.query(self._ddb, params, "query the index")
        return int(response.get("Count", 0)), response.get("Items", []), response.get("LastEvaluatedKey")

    def _new_registry(self, registry_key: dict[str, Any], row: IndexRow) -> dict[str, Any]:
        """The transaction item that creates an event_id's registry with `row` as its first occurrence."""
        return {
            "Put": {
                "TableName": self.table,
                "Item": {
                    **registry_key,
                    "occurrences": {"N": "1"},
                    "first_sk": {"S": row.sk},
                    "event_id": {"S": row.event_id},
                },
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def _put_row(self, row: IndexRow, status: str) -> dict[str, Any]:
        item = row.with_status(status).to_item()
        return {
            "Put": {
                "TableName": self.table,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def _transact(self, items: list[dict[str, Any]]) -> None:
        dynamo.transact(self._ddb, items, "index the event")

    def occurrences(self, entity_id: str, event_ids: list[str], consistent: bool = False) -> dict[str, int]:
        """How many stored occurrences each event_id has for this entity (0 when unknown)."""
        counts: dict[str, int] = dict.fromkeys(event_ids, 0)
        keys = [
            {"pk": {"S": entity_pk(entity_id)}, "sk": {"S": registry_sk(event_id)}}
            for event_id in dict.fromkeys(event_ids)
        ]
        for item in dynamo.batch_get(
            self._ddb, self.table, keys, "registry", consistent, projection="event_id, occurrences"
        ):
            counts[item["event_id"]["S"]] = int(item["occurrences"]["N"])
        return counts

    def query_window(
        self,
        entity_id: str,
        start_time: str,
        end_time: str,
        limit: int,
        exclusive_start_key: dict[str, Any] | None = None,
        consistent: bool = False,
        source: str | None = None,
        event_types: list[str] | None = None,
    ) -> tuple[list[IndexRow], dict[str, Any] | None]:
        """One page of the entity's occurrences in `[start_time, end_time)`, in replay order,
        and the key to continue from (None at the window's end). `source` and `event_types` filter
        the page (DynamoDB applies `limit` before the filter: a page may hold fewer rows)."""
        params: dict[str, Any] = {
            "TableName": self.table,
            "Limit": limit,
            "ConsistentRead": consistent,
            **_with_filter(window_condition(entity_id, start_time, end_time), source, event_types),
        }
        if exclusive_start_key:
            params["ExclusiveStartKey"] = exclusive_start_key
        response = dynamo.query(self._ddb, params, "query the index")
        rows = [IndexRow.from_item(item) for item in response.get("Items", [])]
        return rows, response.get("LastEvaluatedKey")

    def count_window(
        self,
        entity_id: str,
        start_time: str,
        end_time: str,
        as_of: str,
        source: str | None = None,
        event_types: list[str] | None = None,
    ) -> int:
        """How many of the entity's occurrences in the window pass the filters and were stored by
        `as_of` (strongly consistent; Select=COUNT, so only the count leaves DynamoDB)."""
        condition = _with_filter(window_condition(entity_id, start_time, end_time), source, event_types, as_of)
        params: dict[str, Any] = {"TableName": self.table, "Select": "COUNT", "ConsistentRead": True, **condition}
        return sum(int(page.get("Count", 0)) for page in dynamo.query_pages(self._ddb, params, "count the index"))

    def stream_rows(self, source: str, start_time: str, end_time: str) -> Iterator[tuple[str, str, str]]:
        """(entity_id, event_type, ingest_time) of every occurrence of a source in the window, from the
        stream index: one key-range Query per (UTC day, shard), paged; no Scan. Eventually consistent
        (a GSI), so a row stored in the last moment before a replay may not be there yet."""
        for partition in stream_partitions(source, start_time, end_time):
            yield from self.stream_partition_rows(partition, start_time, end_time)

    def stream_partition_rows(self, partition: str, start_time: str, end_time: str) -> Iterator[tuple[str, str, str]]:
        """`stream_rows` of one StreamByDay partition (one day's shard): the partitions are independent,
        so a reader may read them side by side."""
        params: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": STREAM_INDEX,
            "KeyConditionExpression": "stream_pk = :pk AND stream_sk BETWEEN :lo AND :hi",
            "ExpressionAttributeValues": {
                ":pk": {"S": partition},
                ":lo": {"S": start_time},
                ":hi": {"S": end_time},
            },
            "ProjectionExpression": "entity_id, event_type, ingest_time",
        }
        for page in dynamo.query_pages(self._ddb, params, "read the stream index"):
            for item in page.get("Items", []):
                yield item["entity_id"]["S"], item["event_type"]["S"], item["ingest_time"]["S"]


def _with_filter(
    condition: dict[str, Any], source: str | None, event_types: list[str] | None, as_of: str | None = None
) -> dict[str, Any]:
    """A Query's key condition with a FilterExpression for the request's filters (and `as_of`)."""
    clauses: list[str] = []
    values = dict(condition["ExpressionAttributeValues"])
    names: dict[str, str] = {}
    if source is not None:
        clauses.append("#source = :source")
        names["#source"] = "source"
        values[":source"] = {"S": source}
    if event_types is not None:
        placeholders = [f":type{n}" for n in range(len(event_types))]
        clauses.append(f"event_type IN ({', '.join(placeholders)})")
        values.update({placeholder: {"S": name} for placeholder, name in zip(placeholders, event_types, strict=True)})
    if as_of is not None:
        clauses.append("ingest_time <= :as_of")
        values[":as_of"] = {"S": as_of}
    if not clauses:
        return condition
    out = {**condition, "ExpressionAttributeValues": values, "FilterExpression": " AND ".join(clauses)}
    if names:
        out["ExpressionAttributeNames"] = names
    return out


EXISTING = "EXISTING"


@dataclass(frozen=True)
class Restored:
    """What `restore` did: the status given (or EXISTING: the row was already there) and how many
    rows it demoted from ACCEPTED to DUPLICATE (0 or 1)."""

    status: str
    demoted: int = 0
