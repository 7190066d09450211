"""Reads and writes of the aggregates table (keys: `evreplay.processor.keys`).

Exactly once per (replay_id, seq). One TransactWriteItems puts the first-occurrence marker of each
of a version's messages if absent and ADDs them to the version (counts, limbs), all or nothing. If a
marker already exists, the cancellation returns it (ReturnValuesOnConditionCheckFailure): the same
seq means this message was applied before (a redelivery, a retried batch) and nothing changes;
another seq means another occurrence of the event, applied in a later round that puts the per-seq
marker if absent and ADDs `input_count` and the limbs only (a failed condition there again means
"applied before"); the other messages of the cancelled round go again without it. A message's body
is the same on every delivery, so its (day, event_id) and thus its marker key are fixed by
(replay_id, seq); the processor also checks the body against the raw object it points at.
first/last event_time are conditional min/max SETs after the transactions, once per version per
batch: idempotent, so they run for redeliveries too and a crash between the two steps heals on the
next delivery. A reader may briefly see counts that include a message whose time has not been
widened yet.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

from evreplay.core.cursors import decode_cursor, encode_cursor
from evreplay.core.errors import AWS_CALL_ERRORS, InvalidRequest, StorageUnavailable, aws_error_code
from evreplay.core.times import format_utc, utc_now
from evreplay.processor.hashing import to_limbs
from evreplay.processor.keys import (
    TYPE_PREFIX,
    VERSION_PREFIX,
    first_marker_sk,
    limb_name,
    partition_key,
    repeat_marker_sk,
    version_sk,
)
from evreplay.processor.messages import Contribution
from evreplay.processor.versions import AggregateVersion
from evreplay.replay.concurrency import run_batches
from evreplay.store import dynamo
from evreplay.store.dynamo import CONDITION_FAILED, TransactionCancelled, deserialize


def _version_cursor(cursor: str, prefix: str) -> str:
    """The version sort key a cursor continues after; InvalidRequest(field="cursor") for anything else."""
    position = decode_cursor(cursor, ("sk",)) or {}
    sk = str(position.get("sk", ""))
    if not sk.startswith(prefix):
        raise InvalidRequest("does not belong to this query; pass the next_cursor of the same query", field="cursor")
    return sk


APPLIED = "APPLIED"  # the event's first occurrence in this version
APPLIED_REPEAT = "APPLIED_REPEAT"  # another occurrence of an event already counted (include_duplicates=true)
ALREADY_APPLIED = "ALREADY_APPLIED"  # this (replay_id, seq) was applied before: nothing changed

# Cancellation reasons worth another attempt: concurrent batches of one replay update the same
# version item, and DynamoDB cancels one of two conflicting transactions.
_RETRYABLE_REASONS = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})
# A transaction holds at most 100 items: the markers of one round, and the version's update.
_MAX_MARKERS = 99


class AggregateStore:
    """Reads and writes the aggregates table (layout: `evreplay.processor.keys`)."""

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
        (outcome,) = self.apply_all([c])
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def apply_all(self, contributions: Sequence[Contribution]) -> list[str | Exception]:
        """Fold one version's messages, each exactly once per (replay_id, seq), as if applied one by
        one in the order given, in as few transactions as their markers allow: one, unless the batch
        holds two messages with one marker key (then a round each) or a marker exists already (then
        the cancelled round is retried without it). Each message's outcome, or its error, in order.

        A round's transaction puts every selected message's marker if absent and ADDs their sum to
        the version (one item: DynamoDB allows one operation per item in a transaction). Atomic: a
        failed condition cancels the round, which then applies nothing, and the cancellation says
        which markers exist: the same seq is ALREADY_APPLIED, another seq makes the message a repeat
        occurrence (its per-seq marker, no new event) for the next round."""
        if len({(c.entity_id, c.day, c.replay_id) for c in contributions}) > 1:
            raise ValueError("apply_all folds the messages of one version")
        now = format_utc(self._clock())
        outcomes: list[str | Exception | None] = [None] * len(contributions)
        repeat: set[int] = set()  # positions known to be later occurrences of an event already counted
        first_seq: dict[str, int] = {}  # event_id -> the seq its first-occurrence marker holds
        repeats_applied: set[str] = set()  # per-seq marker keys this call wrote
        pending = list(range(len(contributions)))
        while pending:
            chosen: list[int] = []
            keys: set[str] = set()
            for i in pending:
                c = contributions[i]
                if i not in repeat and c.event_id in first_seq:
                    if first_seq[c.event_id] == c.seq:
                        outcomes[i] = ALREADY_APPLIED
                        continue
                    repeat.add(i)
                sk = self._marker_sk(c, i in repeat)
                if sk in repeats_applied:  # the same message twice in the batch
                    outcomes[i] = ALREADY_APPLIED
                    continue
                if sk not in keys and len(chosen) < _MAX_MARKERS:
                    keys.add(sk)
                    chosen.append(i)
            pending = [i for i in pending if outcomes[i] is None]
            if not chosen:
                continue
            items = [
                self._put_marker(contributions[i], self._marker_sk(contributions[i], i in repeat), now, i not in repeat)
                for i in chosen
            ]
            items.append(
                self._add_to_version([contributions[i] for i in chosen], now, [i not in repeat for i in chosen])
            )
            try:
                self._transact(items)
            except TransactionCancelled as cancelled:
                if not self._settle_cancelled(cancelled, chosen, contributions, repeat, first_seq, outcomes):
                    error = StorageUnavailable(f"could not apply the messages ({cancelled}); retry")
                    error.__cause__ = cancelled
                    for i in pending:
                        outcomes[i] = error
            except StorageUnavailable as error:
                for i in pending:
                    outcomes[i] = error
            else:
                for i in chosen:
                    if i in repeat:
                        outcomes[i] = APPLIED_REPEAT
                        repeats_applied.add(self._marker_sk(contributions[i], True))
                    else:
                        outcomes[i] = APPLIED
                        first_seq[contributions[i].event_id] = contributions[i].seq
            pending = [i for i in pending if outcomes[i] is None]
        settled = [outcome for outcome in outcomes if outcome is not None]
        assert len(settled) == len(contributions), "every message settles before the loop ends"
        return settled

    @staticmethod
    def _marker_sk(c: Contribution, repeat: bool) -> str:
        if repeat:
            return repeat_marker_sk(c.day, c.replay_id, c.event_id, c.seq)
        return first_marker_sk(c.day, c.replay_id, c.event_id)

    @staticmethod
    def _settle_cancelled(
        cancelled: TransactionCancelled,
        chosen: list[int],
        contributions: Sequence[Contribution],
        repeat: set[int],
        first_seq: dict[str, int],
        outcomes: list[str | Exception | None],
    ) -> bool:
        """What a round's failed conditions say about its markers; False when the cancellation was
        not a failed condition (the round's messages then fail, for SQS to deliver again)."""
        failed = [(i, cancelled.items[n]) for n, i in enumerate(chosen) if cancelled.codes[n] == CONDITION_FAILED]
        if not failed:
            return False
        for i, existing in failed:
            c = contributions[i]
            if i in repeat:  # the per-seq marker exists: this very message was applied before
                outcomes[i] = ALREADY_APPLIED
            elif existing is None or "seq" not in existing:
                outcomes[i] = StorageUnavailable(
                    "the marker's condition failed but DynamoDB did not return the marker; retry"
                )
            else:
                first_seq[c.event_id] = int(existing["seq"]["N"])  # the next round settles it (same seq or repeat)
        return True

    def widen_times(self, contributions: Sequence[Contribution]) -> None:
        """first_event_time = min(first, times), last_event_time = max(last, times) for the one
        version these contributions belong to: two conditional UpdateItems however many there are
        (min and max do not depend on order or grouping), sent concurrently. Idempotent: a failed
        condition only means the stored bound already covers the time."""
        (version,) = {(c.entity_id, c.day, c.replay_id) for c in contributions}
        entity_id, day, replay_id = version
        key = {"pk": {"S": partition_key(entity_id)}, "sk": {"S": version_sk(day, replay_id)}}
        times = [c.event_time for c in contributions]
        bounds = [("first_event_time", ">", min(times)), ("last_event_time", "<", max(times))]

        def widen(bound: tuple[str, str, str]) -> None:
            attribute, beyond, event_time = bound
            try:
                self._ddb.update_item(
                    TableName=self.table,
                    Key=key,
                    UpdateExpression="SET #t = :t",
                    ConditionExpression=f"attribute_exists(pk) AND (attribute_not_exists(#t) OR #t {beyond} :t)",
                    ExpressionAttributeNames={"#t": attribute},
                    ExpressionAttributeValues={":t": {"S": event_time}},
                )
            except AWS_CALL_ERRORS as exc:
                if aws_error_code(exc) != "ConditionalCheckFailedException":
                    raise StorageUnavailable(f"could not update {attribute} ({aws_error_code(exc)}); retry") from exc

        run_batches(bounds, widen, max_workers=len(bounds))

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

    def _add_to_version(self, cs: Sequence[Contribution], now: str, new_events: Sequence[bool]) -> dict[str, Any]:
        """The version's update for these messages (of one version): input_count, and for each new
        event daily_event_count and its type's count, ADDed; the limbs ADDed limb by limb, so the
        stored sums are the same however the messages were grouped."""
        c = cs[0]
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
            ":inputs": {"N": str(len(cs))},
        }
        adds = ["#inputs :inputs"]
        types = Counter(one.event_type for one, new in zip(cs, new_events, strict=True) if new)
        if types:
            names["#events"] = "daily_event_count"
            values[":events"] = {"N": str(sum(types.values()))}
            adds.append("#events :events")
        for n, (event_type, count) in enumerate(sorted(types.items())):
            names[f"#type{n}"] = TYPE_PREFIX + event_type
            values[f":type{n}"] = {"N": str(count)}
            adds.append(f"#type{n} :type{n}")
        for i, limb in enumerate(map(sum, zip(*(to_limbs(one.hash) for one in cs), strict=True))):
            names[f"#h{i}"] = limb_name(i)
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
                dynamo.transact(self._ddb, items, "write aggregates")
                return
            except TransactionCancelled as cancelled:
                retryable = not cancelled.condition_failed and any(
                    code in _RETRYABLE_REASONS for code in cancelled.codes
                )
                if not retryable or attempt == self._attempts:
                    raise
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
            response = dynamo.query(self._ddb, params, "read aggregates")
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
        response = dynamo.query(
            self._ddb,
            {
                "TableName": self.table,
                "KeyConditionExpression": "pk = :pk AND sk = :sk",
                "ExpressionAttributeValues": {
                    ":pk": {"S": partition_key(entity_id)},
                    ":sk": {"S": version_sk(day, replay_id)},
                },
            },
            "read aggregates",
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
        for page in dynamo.query_pages(self._ddb, params, "read aggregates"):
            for item in page.get("Items", []):
                plain = deserialize(item)
                plain["seq"] = int(plain["seq"])
                yield plain
