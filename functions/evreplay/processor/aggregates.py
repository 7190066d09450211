"""Aggregates versioned by replay: what the processor folds replay messages into, and what
`GET /aggregates` reads back.

Table layout (AggregatesTable, `pk`/`sk` strings). One partition per entity, `pk = "AGG#" + entity_id`:

- a version item per (UTC day of event_time, replay): `sk = "V#<day>#<replay_id>"`, holding
  - `input_count`: replay messages applied to this version, each (replay_id, seq) once;
  - `daily_event_count`: distinct event_ids among those messages. A replay with
    include_duplicates=false sends each event_id at most once, so the two are equal; with
    include_duplicates=true every stored occurrence is a message: `input_count` counts them all,
    `daily_event_count` counts each event once;
  - `ET#<event_type>`: distinct events per event_type (the type of the event's first applied
    occurrence), so the per-type counts add up to `daily_event_count`; shown as the
    `counts_by_event_type` object. Top-level attributes rather than a map because `ADD` on a
    nested map path fails while the map does not exist yet;
  - `h0`..`h7`: the `inputs_hash` as eight 32-bit limbs, least significant first (below);
  - `first_event_time` / `last_event_time`: min / max event_time of the inputs;
  - `created_at` / `updated_at`: when the version got its first / latest input.
- an applied-marker item per message, kept forever (no TTL) because diffing two versions reads
  them: `sk = "M#<day>#<replay_id>#<event_id>"` for the first occurrence of an event_id in the
  version, `sk = "M#<day>#<replay_id>#<event_id>#<seq:010d>"` for later occurrences
  (include_duplicates=true only). Each records replay_id, seq, event_id, event_type, event_time,
  payload_sha256 and s3_key. `#` sorts below every character an event_id may hold and a
  replay_id never contains one (Step Functions execution names cannot), so one version's markers
  are a contiguous key range sorted by event_id: two versions diff by merging two Queries.

Exactly once per (replay_id, seq). One TransactWriteItems puts the first-occurrence marker if
absent and ADDs the message to the version (counts, limbs). If the marker already exists, the
cancellation returns it (ReturnValuesOnConditionCheckFailure): the same seq means this message was
applied before (a redelivery, a retried batch) and nothing changes; another seq means another
occurrence of the event, applied with a second transaction that puts the per-seq marker if absent
and ADDs `input_count` and the limbs only (a failed condition there again means "applied
before"). A message's body is the same on every delivery, so its (day, event_id) and thus its
marker key are fixed by (replay_id, seq); the processor also checks the body against the raw
object it points at. first/last event_time are conditional min/max SETs after the transaction:
idempotent, so they run for redeliveries too and a crash between the two steps heals on the
next delivery. A reader may briefly see counts that include a message whose time has not been
widened yet.

inputs_hash: h(i) = sha256 of the canonical JSON `[event_id, payload_sha256]` as a 256-bit
integer, and inputs_hash = Σ h(i) mod 2^256 over the version's inputs, shown as 64 hex digits.
A sum is order-independent and can be accumulated batch by batch with DynamoDB `ADD`: each limb
sum stays exact in DynamoDB's 38-digit numbers (2^32 per input leaves room for ~10^28 inputs),
and the carries are folded on read. It is a fingerprint for comparing versions, not a
commitment an adversary cannot forge.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from evreplay.core import schemas
from evreplay.core.cursors import decode_cursor, encode_cursor
from evreplay.core.errors import (
    AWS_CALL_ERRORS,
    EvReplayError,
    InvalidReplayMessage,
    InvalidRequest,
    StorageUnavailable,
    aws_error_code,
)
from evreplay.core.event_ids import canonical_json, payload_sha256, sha256_hex
from evreplay.core.observability import logger, metrics
from evreplay.core.times import format_utc, utc_day, utc_now
from evreplay.http.query import calendar_day, schema_checked
from evreplay.replay.queue import ReplayMessage
from evreplay.store.index import deserialize
from evreplay.store.raw import RawStore

# ---------------------------------------------------------------- inputs_hash (pure)
HASH_BITS = 256
LIMB_BITS = 32
LIMB_COUNT = HASH_BITS // LIMB_BITS
_MODULUS = 1 << HASH_BITS
_LIMB_MASK = (1 << LIMB_BITS) - 1


def input_hash(event_id: str, payload_hash: str) -> int:
    """h(i) of one input: sha256 of the canonical JSON `[event_id, payload_sha256]`."""
    return int(sha256_hex(canonical_json([event_id, payload_hash])), 16)


def to_limbs(value: int) -> tuple[int, ...]:
    """A 256-bit value as 32-bit limbs, least significant first."""
    value %= _MODULUS
    return tuple((value >> (LIMB_BITS * i)) & _LIMB_MASK for i in range(LIMB_COUNT))


def from_limbs(limbs: Sequence[int]) -> int:
    """Σ limb_i·2^(32·i) mod 2^256: limb sums may exceed 32 bits; their carries fold in here."""
    return sum(int(limb) << (LIMB_BITS * i) for i, limb in enumerate(limbs)) % _MODULUS


def render_hash(value: int) -> str:
    return f"{value % _MODULUS:064x}"


def inputs_hash(inputs: Iterable[tuple[str, str]]) -> str:
    """The inputs_hash of (event_id, payload_sha256) pairs computed in one go: the reference the
    batch-by-batch accumulation must equal."""
    return render_hash(sum(input_hash(event_id, digest) for event_id, digest in inputs))


# ---------------------------------------------------------------- messages
def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_message(body: str) -> ReplayMessage:
    """The message, or InvalidReplayMessage naming the offending field (schema: replay_message)."""
    try:
        data = json.loads(body, parse_constant=_reject_constant)
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


# ---------------------------------------------------------------- keys
PARTITION_PREFIX = "AGG#"
VERSION_PREFIX = "V#"
MARKER_PREFIX = "M#"
TYPE_PREFIX = "ET#"
SEQ_WIDTH = 10


def partition_key(entity_id: str) -> str:
    return PARTITION_PREFIX + entity_id


def version_sk(day: str, replay_id: str) -> str:
    return f"{VERSION_PREFIX}{day}#{replay_id}"


def first_marker_sk(day: str, replay_id: str, event_id: str) -> str:
    return f"{MARKER_PREFIX}{day}#{replay_id}#{event_id}"


def repeat_marker_sk(day: str, replay_id: str, event_id: str, seq: int) -> str:
    return f"{first_marker_sk(day, replay_id, event_id)}#{seq:0{SEQ_WIDTH}d}"


def _limb_name(i: int) -> str:
    return f"h{i}"


# ---------------------------------------------------------------- read model
@dataclass(frozen=True)
class AggregateVersion:
    """One version of an entity's day, as the API shows it."""

    replay_id: str
    entity_id: str
    day: str
    daily_event_count: int
    counts_by_event_type: dict[str, int]
    input_count: int
    inputs_hash: str
    first_event_time: str | None
    last_event_time: str | None
    created_at: str | None
    updated_at: str | None

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> AggregateVersion:
        plain = deserialize(item)
        day, _, replay_id = plain["sk"][len(VERSION_PREFIX) :].partition("#")
        return cls(
            replay_id=plain.get("replay_id", replay_id),
            entity_id=plain.get("entity_id", plain["pk"][len(PARTITION_PREFIX) :]),
            day=plain.get("day", day),
            daily_event_count=int(plain.get("daily_event_count", 0)),
            counts_by_event_type={
                name[len(TYPE_PREFIX) :]: int(value)
                for name, value in sorted(plain.items())
                if name.startswith(TYPE_PREFIX)
            },
            input_count=int(plain.get("input_count", 0)),
            inputs_hash=render_hash(from_limbs([int(plain.get(_limb_name(i), 0)) for i in range(LIMB_COUNT)])),
            first_event_time=plain.get("first_event_time"),
            last_event_time=plain.get("last_event_time"),
            created_at=plain.get("created_at"),
            updated_at=plain.get("updated_at"),
        )

    def public(self) -> dict[str, Any]:
        return {
            "replay_id": self.replay_id,
            "entity_id": self.entity_id,
            "day": self.day,
            "daily_event_count": self.daily_event_count,
            "counts_by_event_type": dict(self.counts_by_event_type),
            "input_count": self.input_count,
            "inputs_hash": self.inputs_hash,
            "first_event_time": self.first_event_time,
            "last_event_time": self.last_event_time,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class ListQuery:
    entity_id: str
    day: str | None
    limit: int
    cursor: str | None


DEFAULT_LIST_LIMIT = 100


def parse_list_query(params: dict[str, str]) -> ListQuery:
    """GET /aggregates query string, checked against aggregates_query.schema.json."""
    values = schema_checked(schemas.AGGREGATES_QUERY, params, integers=("limit",))
    day = values.get("day")
    if day is not None:
        calendar_day(day, "day")
    return ListQuery(
        entity_id=values["entity_id"],
        day=day,
        limit=int(values.get("limit", DEFAULT_LIST_LIMIT)),
        cursor=values.get("cursor"),
    )


def _version_cursor(cursor: str, prefix: str) -> str:
    """The version sort key a cursor continues after; InvalidRequest(field="cursor") for anything else."""
    position = decode_cursor(cursor, ("sk",)) or {}
    sk = str(position.get("sk", ""))
    if not sk.startswith(prefix):
        raise InvalidRequest("does not belong to this query; pass the next_cursor of the same query", field="cursor")
    return sk


# ---------------------------------------------------------------- data access
APPLIED = "APPLIED"  # the event's first occurrence in this version
APPLIED_REPEAT = "APPLIED_REPEAT"  # another occurrence of an event already counted (include_duplicates=true)
ALREADY_APPLIED = "ALREADY_APPLIED"  # this (replay_id, seq) was applied before: nothing changed

_CONDITION_FAILED = "ConditionalCheckFailed"
# Cancellation reasons worth another attempt: concurrent batches of one replay update the same
# version item, and DynamoDB cancels one of two conflicting transactions.
_RETRYABLE_REASONS = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})


class _Cancelled(Exception):
    def __init__(self, codes: list[str], items: list[dict[str, Any] | None]) -> None:
        super().__init__(", ".join(codes))
        self.codes = codes
        self.items = items


class AggregateStore:
    """Reads and writes the aggregates table (layout in the module docstring)."""

    def __init__(
        self,
        dynamodb_client: Any,
        table: str,
        clock: Callable[[], datetime] = utc_now,
        transaction_attempts: int = 6,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._ddb = dynamodb_client
        self.table = table
        self._clock = clock
        self._attempts = transaction_attempts
        self._sleep = sleep

    # ------------------------------------------------------------ writes
    def apply(self, c: Contribution) -> str:
        """Fold one message into its version, exactly once per (replay_id, seq)."""
        now = format_utc(self._clock())
        first = self._put_marker(c, first_marker_sk(c.day, c.replay_id, c.event_id), now, return_existing=True)
        try:
            self._transact([first, self._add_to_version(c, now, new_event=True)])
            return APPLIED
        except _Cancelled as cancelled:
            if cancelled.codes[0] != _CONDITION_FAILED:
                raise StorageUnavailable(f"could not apply the message ({cancelled}); retry") from cancelled
            existing = cancelled.items[0]
        if existing is None or "seq" not in existing:
            raise StorageUnavailable("the marker's condition failed but DynamoDB did not return the marker; retry")
        if int(existing["seq"]["N"]) == c.seq:
            return ALREADY_APPLIED
        repeat = self._put_marker(c, repeat_marker_sk(c.day, c.replay_id, c.event_id, c.seq), now)
        try:
            self._transact([repeat, self._add_to_version(c, now, new_event=False)])
            return APPLIED_REPEAT
        except _Cancelled as cancelled:
            if cancelled.codes[0] == _CONDITION_FAILED:
                return ALREADY_APPLIED
            raise StorageUnavailable(f"could not apply the message ({cancelled}); retry") from cancelled

    def widen_times(self, c: Contribution) -> None:
        """first_event_time = min(first, t), last_event_time = max(last, t). Idempotent: a failed
        condition only means the stored bound already covers t."""
        key = {"pk": {"S": partition_key(c.entity_id)}, "sk": {"S": version_sk(c.day, c.replay_id)}}
        for attribute, beyond in (("first_event_time", ">"), ("last_event_time", "<")):
            try:
                self._ddb.update_item(
                    TableName=self.table,
                    Key=key,
                    UpdateExpression="SET #t = :t",
                    ConditionExpression=f"attribute_exists(pk) AND (attribute_not_exists(#t) OR #t {beyond} :t)",
                    ExpressionAttributeNames={"#t": attribute},
                    ExpressionAttributeValues={":t": {"S": c.event_time}},
                )
            except AWS_CALL_ERRORS as exc:
                if aws_error_code(exc) != "ConditionalCheckFailedException":
                    raise StorageUnavailable(f"could not update {attribute} ({aws_error_code(exc)}); retry") from exc

    def _put_marker(self, c: Contribution, sk: str, now: str, return_existing: bool = False) -> dict[str, Any]:
        put: dict[str, Any] = {
            "TableName": self.table,
            "Item": {
                "pk": {"S": partition_key(c.entity_id)},
                "sk": {"S": sk},
                "replay_id": {"S": c.replay_id},
                "seq": {"N": str(c.seq)},
                "day": {"S": c.day},
                "event_id": {"S": c.event_id},
                "event_type": {"S": c.event_type},
                "event_time": {"S": c.event_time},
                "payload_sha256": {"S": c.payload_sha256},
                "s3_key": {"S": c.s3_key},
                "applied_at": {"S": now},
            },
            "ConditionExpression": "attribute_not_exists(pk)",
        }
        if return_existing:
            put["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        return {"Put": put}

    def _add_to_version(self, c: Contribution, now: str, new_event: bool) -> dict[str, Any]:
        names = {
            "#entity": "entity_id",
            "#day": "day",
            "#replay": "replay_id",
            "#created": "created_at",
            "#updated": "updated_at",
            "#inputs": "input_count",
        }
        values: dict[str, Any] = {
            ":entity": {"S": c.entity_id},
            ":day": {"S": c.day},
            ":replay": {"S": c.replay_id},
            ":now": {"S": now},
            ":one": {"N": "1"},
        }
        adds = ["#inputs :one"]
        if new_event:
            names |= {"#events": "daily_event_count", "#type": TYPE_PREFIX + c.event_type}
            adds += ["#events :one", "#type :one"]
        for i, limb in enumerate(to_limbs(c.hash)):
            names[f"#h{i}"] = _limb_name(i)
            values[f":h{i}"] = {"N": str(limb)}
            adds.append(f"#h{i} :h{i}")
        return {
            "Update": {
                "TableName": self.table,
                "Key": {"pk": {"S": partition_key(c.entity_id)}, "sk": {"S": version_sk(c.day, c.replay_id)}},
                "UpdateExpression": (
                    "SET #entity = :entity, #day = :day, #replay = :replay, "
                    "#created = if_not_exists(#created, :now), #updated = :now ADD " + ", ".join(adds)
                ),
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }

    def _transact(self, items: list[dict[str, Any]]) -> None:
        """One transaction; conflicts with concurrent batches are retried with jittered backoff."""
        for attempt in range(1, self._attempts + 1):
            try:
                self._ddb.transact_write_items(TransactItems=items)
                return
            except AWS_CALL_ERRORS as exc:
                if aws_error_code(exc) != "TransactionCanceledException":
                    raise StorageUnavailable(
                        f"could not write aggregates ({aws_error_code(exc) or 'error'}); retry"
                    ) from exc
                reasons = exc.response.get("CancellationReasons") or []
                codes = [str(reason.get("Code", "None")) for reason in reasons] or ["Unknown"]
                retryable = _CONDITION_FAILED not in codes and any(code in _RETRYABLE_REASONS for code in codes)
                if not retryable or attempt == self._attempts:
                    raise _Cancelled(codes, [reason.get("Item") for reason in reasons] or [None]) from exc
            self._sleep(random.uniform(0, 0.025 * 2**attempt))

    # ------------------------------------------------------------ reads
    def list_versions(
        self, entity_id: str, day: str | None, limit: int, cursor: str | None = None
    ) -> tuple[list[AggregateVersion], str | None]:
        """Versions of an entity's day (or of every day), ordered by day then replay_id."""
        prefix = version_sk(day, "") if day else VERSION_PREFIX
        pk = partition_key(entity_id)
        params: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": pk}, ":prefix": {"S": prefix}},
        }
        if cursor:
            params["ExclusiveStartKey"] = {"pk": {"S": pk}, "sk": {"S": _version_cursor(cursor, prefix)}}
        items: list[dict[str, Any]] = []
        # One more than asked: next_cursor is null exactly when nothing follows.
        while len(items) <= limit:
            params["Limit"] = limit + 1 - len(items)
            response = self._query(params)
            items.extend(response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                break
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        page = items[:limit]
        next_cursor = encode_cursor({"sk": page[-1]["sk"]["S"]}) if len(items) > limit else None
        return [AggregateVersion.from_item(item) for item in page], next_cursor

    def version(self, entity_id: str, day: str, replay_id: str) -> AggregateVersion | None:
        """One version, or None. A Query on the exact key (one item read) rather than GetItem:
        the aggregates API's role is allowed Query only."""
        response = self._query(
            {
                "TableName": self.table,
                "KeyConditionExpression": "pk = :pk AND sk = :sk",
                "ExpressionAttributeValues": {
                    ":pk": {"S": partition_key(entity_id)},
                    ":sk": {"S": version_sk(day, replay_id)},
                },
            }
        )
        items = response.get("Items", [])
        return AggregateVersion.from_item(items[0]) if items else None

    def markers(self, entity_id: str, day: str, replay_id: str) -> Iterator[dict[str, Any]]:
        """Every applied-marker of one version, sorted by event_id (then seq)."""
        params: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {
                ":pk": {"S": partition_key(entity_id)},
                ":prefix": {"S": first_marker_sk(day, replay_id, "")},
            },
        }
        while True:
            response = self._query(params)
            for item in response.get("Items", []):
                plain = deserialize(item)
                plain["seq"] = int(plain["seq"])
                yield plain
            if "LastEvaluatedKey" not in response:
                return
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _query(self, params: dict[str, Any]) -> dict[str, Any]:
        try:
            response: dict[str, Any] = self._ddb.query(**params)
        except AWS_CALL_ERRORS as exc:
            raise StorageUnavailable(f"could not read aggregates ({aws_error_code(exc) or 'error'}); retry") from exc
        return response


# ---------------------------------------------------------------- the processor's logic
class MessageFolder:
    """Folds replay messages into aggregate versions: parse, read the raw object, apply once."""

    def __init__(self, raw_store: RawStore, store: AggregateStore) -> None:
        self._raw = raw_store
        self._store = store

    def fold(self, body: str, message_id: str = "") -> str:
        """Apply one message body; return APPLIED, APPLIED_REPEAT or ALREADY_APPLIED. Any error
        is counted, logged with the message's replay_id and event_id, and raised, so the batch
        reports the message as failed and SQS delivers it again (then to the DLQ)."""
        keys: dict[str, Any] = {"message_id": message_id}
        try:
            message = parse_message(body)
            keys |= {"replay_id": message.replay_id, "seq": message.seq, "event_id": message.event_id}
            if message.s3_bucket != self._raw.bucket:
                raise InvalidReplayMessage(
                    f"s3_bucket {message.s3_bucket!r} is not the raw bucket this processor reads", field="s3_bucket"
                )
            contribution = contribution_of(message, self._raw.get(message.s3_bucket, message.s3_key))
            keys |= {"entity_id": contribution.entity_id, "day": contribution.day}
            outcome = self._store.apply(contribution)
            self._store.widen_times(contribution)
        except Exception as error:
            metrics.add_metric(name="ProcessorErrorCount", unit=MetricUnit.Count, value=1)
            known = isinstance(error, EvReplayError)
            logger.warning(
                "replay message failed; SQS will deliver it again, then move it to the DLQ",
                extra={
                    **log_keys(body),
                    **keys,
                    "error_code": error.code if isinstance(error, EvReplayError) else type(error).__name__,
                    "error_field": error.field if isinstance(error, EvReplayError) else None,
                    "error": str(error),
                },
                exc_info=not known,
            )
            raise
        metrics.add_metric(name="ProcessorMessageCount", unit=MetricUnit.Count, value=1)
        logger.info("replay message folded", extra={**keys, "outcome": outcome})
        return outcome
