"""The replay state table: per-replay duplicate markers and the audit listing of replays.

Markers (docs/design.md §4.3): one item per event_id that needs a check in a replay, `pk = "R#<replay_id>"`,
`sk = <event_id>`, `claimed_by` = the index row (its sort key) that holds the event's single message,
with a TTL. The claim is a conditional write that also succeeds for the row that already holds it, so
a page that is retried (Lambda retry, Step Functions Retry) makes exactly the same decisions.

Audit records (docs/design.md §4, `GET /replays`): what the listing shows, kept here so a listing never asks
Step Functions (which forgets closed executions after ~90 days). One replay is five items with the
same body: the record `pk = "REPLAY#<replay_id>", sk = "RECORD"` (GET /replays/{id} once the
execution is gone) and one listing item in each of `REPLAYS`, `STATUS#<status>`, `ENTITY#<entity_id>`
and `STATUS#<status>#ENTITY#<entity_id>`, all with `sk = "<started_at>#<replay_id>"` (newest last,
listed newest first), so `status=` and `entity_id=` are key conditions applied before paging. Entity
ids hold no control characters and statuses no `#`, so these keys cannot collide. The workflow's input
check writes a replay as RUNNING (console starts included); `record_end` moves it to the status an
execution ended with (from Step Functions' execution status change events), in one transaction that
also moves its two status items. A start whose input never passed the check is written by
`record_end` alone, as FAILED, under `REPLAYS` and `STATUS#FAILED` (and its entity, if it named a
usable one). No TTL. A replay with a `source` (a stream replay, or a source filter) is also listed
under `SOURCE#<source>` and `STATUS#<status>#SOURCE#<source>` (`GET /replays?source=`).

Work of entity-list and stream replays (docs/design.md §4.11), under the record's partition, with the markers'
TTL: `sk = "PROGRESS"` (the plan: entities and work items in all) and one `sk = "PROGRESS#<item>"` per
work item of the Distributed Map, overwritten by each step of that item with its counters (so a
retried step writes the same item again: progress is exact); and `sk = "CANCELLED"`, written by
DELETE /replays/{id} before it stops the execution, which every worker reads before each page.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from decimal import Decimal
from typing import Any

from evreplay.core.errors import AWS_CALL_ERRORS, StorageUnavailable, aws_error_code
from evreplay.store import dynamo
from evreplay.store.dynamo import TransactionCancelled, deserialize, serialize

MARKER_PREFIX = "R#"
ENTITY_PREFIX = "ENTITY#"
SOURCE_PREFIX = "SOURCE#"
PROGRESS_SK = "PROGRESS"
CANCELLED_SK = "CANCELLED"
ALL_REPLAYS = "REPLAYS"


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; the API speaks JSON."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


RUNNING = "RUNNING"
RECORD_PREFIX = "REPLAY#"
RECORD_SK = "RECORD"
STATUS_PREFIX = "STATUS#"
_END_RETRIES = 5
_JSON_FIELDS = frozenset({"request", "requested_by", "result", "error"})


@dataclass(frozen=True)
class ReplayRecord:
    """What the audit listing knows about a replay without asking Step Functions: the request and
    caller, and the last known status with its result or error."""

    replay_id: str
    entity_id: str | None  # None for a console start whose input named no usable entity
    started_at: str
    execution_arn: str
    request: Any
    requested_by: Any
    status: str = RUNNING
    stopped_at: str | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    generation: int = 0  # the execution of the chain the status is from (0, then one per continuation)
    source: str | None = None  # a stream replay's source (or an entity scope's source filter)

    @property
    def sk(self) -> str:
        return f"{self.started_at}#{self.replay_id}"

    def listing_pks(self) -> list[str]:
        pks = [ALL_REPLAYS, STATUS_PREFIX + self.status]
        if self.entity_id is not None:
            pks += [ENTITY_PREFIX + self.entity_id, f"{STATUS_PREFIX}{self.status}#{ENTITY_PREFIX}{self.entity_id}"]
        if self.source is not None:
            pks += [SOURCE_PREFIX + self.source, f"{STATUS_PREFIX}{self.status}#{SOURCE_PREFIX}{self.source}"]
        return pks

    def body(self) -> dict[str, Any]:
        """The item attributes. The JSON values are kept as JSON text: a console input may hold
        anything JSON can (floats, numbers beyond DynamoDB's range, empty keys)."""
        out: dict[str, Any] = {}
        for name, value in asdict(self).items():
            if name in _JSON_FIELDS:
                out[name] = json.dumps(value, separators=(",", ":"))
            elif value is not None:
                out[name] = value
        return out

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> ReplayRecord:
        plain = _plain(deserialize(item))
        known = {f.name for f in fields(cls)}
        values = {
            name: json.loads(value) if name in _JSON_FIELDS and isinstance(value, str) else value
            for name, value in plain.items()
            if name in known
        }
        values.setdefault("entity_id", None)  # not stored when None
        values.setdefault("source", None)
        return cls(**values)


def listing_pk(entity_id: str | None, status: str | None, source: str | None = None) -> str:
    """The partition `GET /replays?entity_id=&status=` (or `?source=&status=`) reads."""
    if entity_id is None and source is not None:
        by_source = SOURCE_PREFIX + source
        return f"{STATUS_PREFIX}{status}#{by_source}" if status else by_source
    if entity_id is None:
        return STATUS_PREFIX + status if status else ALL_REPLAYS
    entity = ENTITY_PREFIX + entity_id
    return f"{STATUS_PREFIX}{status}#{entity}" if status else entity


def _record_key(replay_id: str) -> dict[str, Any]:
    return {"pk": {"S": RECORD_PREFIX + replay_id}, "sk": {"S": RECORD_SK}}


class ReplayStateStore:
    def __init__(
        self, dynamodb_client: Any, table: str, marker_ttl_seconds: int, clock: Callable[[], float] = time.time
    ) -> None:
        self._ddb = dynamodb_client
        self.table = table
        self._ttl = marker_ttl_seconds
        self._clock = clock

    # ------------------------------------------------------------------ duplicate markers
    def _marker_key(self, replay_id: str, event_id: str) -> dict[str, Any]:
        return {"pk": {"S": MARKER_PREFIX + replay_id}, "sk": {"S": event_id}}

    def claim(self, replay_id: str, event_id: str, row_sk: str) -> bool:
        """True if `row_sk` is (now, or already was) the occurrence that holds this event's message."""
        try:
            self._ddb.put_item(
                TableName=self.table,
                Item={
                    **self._marker_key(replay_id, event_id),
                    "claimed_by": {"S": row_sk},
                    "expires_at": {"N": str(int(self._clock()) + self._ttl)},
                },
                ConditionExpression="attribute_not_exists(pk) OR claimed_by = :sk",
                ExpressionAttributeValues={":sk": {"S": row_sk}},
            )
        except AWS_CALL_ERRORS as exc:
            if aws_error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise StorageUnavailable(f"could not write a duplicate marker ({aws_error_code(exc) or 'error'})") from exc
        return True

    def held_by_other(self, replay_id: str, event_id: str, row_sk: str) -> bool:
        """Read-only form of `claim`: is the event's message already held by another occurrence?"""
        try:
            response = self._ddb.get_item(
                TableName=self.table,
                Key=self._marker_key(replay_id, event_id),
                ConsistentRead=True,
                ProjectionExpression="claimed_by",
            )
        except AWS_CALL_ERRORS as exc:
            raise StorageUnavailable(f"could not read a duplicate marker ({aws_error_code(exc) or 'error'})") from exc
        item = response.get("Item")
        return bool(item) and item["claimed_by"]["S"] != row_sk

    # ------------------------------------------------------------------ audit records
    def record(self, record: ReplayRecord) -> None:
        """Write the replay's items as RUNNING (idempotent: a retried input check writes the same items)."""
        items = [
            serialize({"pk": RECORD_PREFIX + record.replay_id, "sk": RECORD_SK, **record.body()}),
            *(serialize({"pk": pk, "sk": record.sk, **record.body()}) for pk in record.listing_pks()),
        ]
        requests = [{"PutRequest": {"Item": item}} for item in items]
        try:
            response = self._ddb.batch_write_item(RequestItems={self.table: requests})
            for _ in range(5):
                unprocessed = response.get("UnprocessedItems") or {}
                if not unprocessed:
                    return
                time.sleep(0.1)
                response = self._ddb.batch_write_item(RequestItems=unprocessed)
        except AWS_CALL_ERRORS as exc:
            raise StorageUnavailable(f"could not record the replay ({aws_error_code(exc) or 'error'})") from exc
        if response.get("UnprocessedItems"):
            raise StorageUnavailable("could not record the replay (writes kept coming back unprocessed)")

    def get(self, replay_id: str) -> ReplayRecord | None:
        try:
            response = self._ddb.get_item(TableName=self.table, Key=_record_key(replay_id), ConsistentRead=True)
        except AWS_CALL_ERRORS as exc:
            raise StorageUnavailable(f"could not read the replay record ({aws_error_code(exc) or 'error'})") from exc
        item = response.get("Item")
        return ReplayRecord.from_item(item) if item else None

    def record_end(self, ended: ReplayRecord) -> ReplayRecord:
        """Record how an execution of the replay ended; returns the record as it now is.

        `ended` carries the outcome (status, stopped_at, result or error, generation) and, for a replay
        never recorded (its input check never passed), what is known of it. An older execution of the
        chain never overrides a later one, and a repeated event changes nothing (EventBridge delivers
        at least once, in no particular order)."""
        for _ in range(_END_RETRIES):
            current = self.get(ended.replay_id)
            if current is not None and (
                ended.generation < current.generation
                or (ended.generation == current.generation and current.status != RUNNING)
            ):
                return current
            updated = (
                ended
                if current is None
                else replace(
                    current,
                    status=ended.status,
                    stopped_at=ended.stopped_at,
                    result=ended.result,
                    error=ended.error,
                    generation=ended.generation,
                )
            )
            if self._transition(current, updated):
                return updated
        raise StorageUnavailable(f"replay {ended.replay_id}: its record kept changing under this update; retry")

    def _transition(self, current: ReplayRecord | None, updated: ReplayRecord) -> bool:
        """One transaction: the record (if it is still `current`), its listing items in the new status,
        the old status items gone. False when another writer changed the record first."""
        if current is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            condition = {
                "ConditionExpression": "#status = :status AND #generation = :generation",
                "ExpressionAttributeNames": {"#status": "status", "#generation": "generation"},
                "ExpressionAttributeValues": {
                    ":status": {"S": current.status},
                    ":generation": {"N": str(current.generation)},
                },
            }
        record_item = serialize({"pk": RECORD_PREFIX + updated.replay_id, "sk": RECORD_SK, **updated.body()})
        writes: list[dict[str, Any]] = [{"Put": {"TableName": self.table, "Item": record_item, **condition}}]
        writes += [
            {"Put": {"TableName": self.table, "Item": serialize({"pk": pk, "sk": updated.sk, **updated.body()})}}
            for pk in updated.listing_pks()
        ]
        if current is not None:
            writes += [
                {"Delete": {"TableName": self.table, "Key": {"pk": {"S": pk}, "sk": {"S": current.sk}}}}
                for pk in set(current.listing_pks()) - set(updated.listing_pks())
            ]
        try:
            dynamo.transact(self._ddb, writes, "record the replay's end")
        except TransactionCancelled as cancelled:
            if cancelled.condition_failed:
                return False
            raise StorageUnavailable(
                f"could not record the replay's end (cancelled: {cancelled}); retry"
            ) from cancelled
        return True

    def list_records(
        self,
        entity_id: str | None,
        status: str | None,
        limit: int,
        after_sk: str | None = None,
        source: str | None = None,
    ) -> tuple[list[ReplayRecord], str | None]:
        """Newest first: one entity's or one source's replays or every replay, all or in one status
        (one Query)."""
        pk = listing_pk(entity_id, status, source)
        params: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if after_sk:
            params["ExclusiveStartKey"] = {"pk": {"S": pk}, "sk": {"S": after_sk}}
        response = dynamo.query(self._ddb, params, "list replays")
        records = [ReplayRecord.from_item(item) for item in response.get("Items", [])]
        last = response.get("LastEvaluatedKey")
        return records, (last["sk"]["S"] if last else None)

    # ------------------------------------------------------------------ entity-list and stream work
    def _put(self, item: dict[str, Any], what: str) -> None:
        try:
            self._ddb.put_item(TableName=self.table, Item=serialize(item))
        except AWS_CALL_ERRORS as exc:
            raise StorageUnavailable(f"could not record {what} ({aws_error_code(exc) or 'error'})") from exc

    def _expires_at(self) -> int:
        return int(self._clock()) + self._ttl

    def record_plan(self, replay_id: str, entities: int, items: int) -> None:
        """How much work a planned replay has: its entities and work items in all."""
        self._put(
            {
                "pk": RECORD_PREFIX + replay_id,
                "sk": PROGRESS_SK,
                "entities_total": entities,
                "items_total": items,
                "expires_at": self._expires_at(),
            },
            "the replay's plan",
        )

    def record_item(self, replay_id: str, item: int, counters: dict[str, Any]) -> None:
        """One work item's counters so far (JSON text: they may hold message bodies for a preview)."""
        self._put(
            {
                "pk": RECORD_PREFIX + replay_id,
                "sk": f"{PROGRESS_SK}#{item:07d}",
                "counters": json.dumps(counters, separators=(",", ":")),
                "expires_at": self._expires_at(),
            },
            "a work item's progress",
        )

    def work(self, replay_id: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """The plan (None before there is one) and every work item's counters, in item order."""
        params: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :progress)",
            "ExpressionAttributeValues": {":pk": {"S": RECORD_PREFIX + replay_id}, ":progress": {"S": PROGRESS_SK}},
            "ConsistentRead": True,
        }
        plan: dict[str, Any] | None = None
        items: list[dict[str, Any]] = []
        for page in dynamo.query_pages(self._ddb, params, "read the replay's progress"):
            for raw in page.get("Items", []):
                item = _plain(deserialize(raw))
                if item["sk"] == PROGRESS_SK:
                    plan = {"entities_total": item["entities_total"], "items_total": item["items_total"]}
                else:
                    items.append(json.loads(item["counters"]))
        return plan, items

    def mark_cancelled(self, replay_id: str) -> None:
        """Tell every worker of the replay to send nothing more (DELETE /replays/{id})."""
        self._put(
            {"pk": RECORD_PREFIX + replay_id, "sk": CANCELLED_SK, "expires_at": self._expires_at()},
            "the replay's cancel",
        )

    def cancelled(self, replay_id: str) -> bool:
        try:
            response = self._ddb.get_item(
                TableName=self.table,
                Key={"pk": {"S": RECORD_PREFIX + replay_id}, "sk": {"S": CANCELLED_SK}},
                ConsistentRead=True,
                ProjectionExpression="pk",
            )
        except AWS_CALL_ERRORS as exc:
            raise StorageUnavailable(
                f"could not read the replay's cancel mark ({aws_error_code(exc) or 'error'})"
            ) from exc
        return "Item" in response
