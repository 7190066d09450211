"""Ingest: validate an event, store it immutably, index it, and make retries idempotent.

Order of writes: the raw object first (conditional, never overwritten), then the index
transaction. An index row therefore never points at a missing object. If the index write fails,
the raw object stays behind unindexed (the one acceptable leftover, which a reconcile repair
indexes: evreplay.reconcile.reconciler) and the caller gets a retryable 503; a retry stores a new object
and indexes that one. A request with an idempotency key writes its receipt in the index
transaction (evreplay.ingest.receipts), so running it again after a failure that hid its success
answers the first response and stores nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
)

from evreplay.core import schemas
from evreplay.core.answers import Answer
from evreplay.core.errors import (
    EvReplayError,
    IdempotencyKeyReused,
    InvalidRequest,
    StorageUnavailable,
    error_body,
)
from evreplay.core.event_ids import canonical_json, derive_event_id, payload_sha256, sha256_hex
from evreplay.core.idempotency import IN_PROGRESS_SECONDS, IdempotentCall
from evreplay.core.observability import logger
from evreplay.core.times import InvalidTimestamp, format_utc, parse_rfc3339, utc_now
from evreplay.ingest.metrics import IngestMetrics
from evreplay.ingest.receipts import Receipts
from evreplay.store.index import DUPLICATE, EventIndex, IndexRow
from evreplay.store.raw import RawStore, raw_key

BATCH_WORKERS = 16


@dataclass(frozen=True)
class Event:
    """A validated event with its normalized time and its (given or derived) id."""

    source: str
    event_type: str
    entity_id: str
    event_time: str
    event_time_original: str
    payload: dict[str, Any]
    event_id: str
    event_id_derived: bool
    idempotency_key: str | None

    def content(self) -> dict[str, Any]:
        """What makes two requests "the same body" for idempotency: everything but the key."""
        return {
            "source": self.source,
            "event_type": self.event_type,
            "entity_id": self.entity_id,
            "event_time": self.event_time_original,
            "payload": self.payload,
            "event_id": None if self.event_id_derived else self.event_id,
        }


def parse_event(
    body: Any,
    now: datetime,
    max_future_seconds: int,
    header_key: str | None = None,
    prefix: str = "",
) -> Event:
    """Validate one event against the schema and the time rules; raise InvalidRequest naming the field."""
    schemas.check(schemas.EVENT, body, prefix=prefix)
    field = f"{prefix}.event_time" if prefix else "event_time"
    try:
        moment = parse_rfc3339(body["event_time"])
    except InvalidTimestamp as exc:
        raise InvalidRequest(str(exc), field=field) from exc
    if moment > now + timedelta(seconds=max_future_seconds):
        raise InvalidRequest(f"more than {max_future_seconds} s in the future (MaxFutureSeconds)", field=field)
    event_time = format_utc(moment)
    body_key = body.get("idempotency_key")
    if header_key is not None:
        # The header is the body field sent another way: the same rules (an empty one used to reach
        # Powertools as "no key" and fail with a 500).
        schemas.check_property(schemas.EVENT, "idempotency_key", header_key, field="Idempotency-Key")
    if header_key is not None and body_key is not None and header_key != body_key:
        raise InvalidRequest(
            "disagrees with the Idempotency-Key header; send one, or the same key in both",
            field=f"{prefix}.idempotency_key" if prefix else "idempotency_key",
        )
    given_id = body.get("event_id")
    event_id = given_id or derive_event_id(
        body["source"], body["event_type"], body["entity_id"], event_time, body["payload"]
    )
    return Event(
        source=body["source"],
        event_type=body["event_type"],
        entity_id=body["entity_id"],
        event_time=event_time,
        event_time_original=body["event_time"],
        payload=body["payload"],
        event_id=event_id,
        event_id_derived=given_id is None,
        idempotency_key=body_key or header_key,
    )


def new_arrival_id(now: datetime) -> str:
    """Fixed-width ingest time then randomness: orders arrivals of one event_id by arrival."""
    return f"{now.strftime('%Y%m%dT%H%M%S%f')}-{uuid.uuid4().hex[:16]}"


class Ingestor:
    """Stores events. One instance per process, built from settings and clients."""

    def __init__(
        self,
        raw_store: RawStore,
        index: EventIndex,
        idempotency_persistence: DynamoDBPersistenceLayer,
        idempotency_ttl_seconds: int,
        clock: Callable[[], datetime] = utc_now,
        receipts: Receipts | None = None,
        metrics: IngestMetrics | None = None,
    ) -> None:
        self.metrics = metrics or IngestMetrics()
        self._raw = raw_store
        self._index = index
        self._clock = clock
        self._receipts = receipts
        self.idempotent = IdempotentCall(
            self._store_request,
            idempotency_persistence,
            idempotency_ttl_seconds,
            key_prefix="evreplay.ingest",
            payload_field="event",
            key_field="idempotency_key",
            in_flight_message=(
                "a request with this idempotency key is in progress (it started less than "
                f"{IN_PROGRESS_SECONDS} s ago); retry in a second"
            ),
            reused_message="this idempotency key was used with a different body",
            status_code=201,
            # A finished keyed request is answered from its receipt (`ingest` below), so Powertools'
            # record is only the in-flight lock and its success write is skipped.
            answers_kept_by_caller=receipts is not None,
        )

    def ingest(self, event: Event, request_id: str = "") -> Answer:
        """Store one validated event, at most once per idempotency key."""
        if event.idempotency_key is None:
            return self._store(event, request_id)
        # What a receipt keeps to tell a retry from a reused key; computed once per request.
        digest = self._content_digest(event) if self._receipts is not None else ""
        # A retry of a finished request: its receipt answers, before the key's lock is asked for.
        earlier = self._earlier_answer(event, digest)
        if earlier is not None:
            return earlier
        return self.idempotent(
            {"idempotency_key": event.idempotency_key, "event": event.content()},
            event=event,
            request_id=request_id,
            digest=digest,
        )

    def ingest_batch(
        self, bodies: list[Any], request_id: str = "", max_future_seconds: int = 86400
    ) -> list[dict[str, Any]]:
        """Each item valid or rejected on its own; one result per input, in input order.

        Items run concurrently (a 500-item batch must fit API Gateway's 29 s), except that
        items of the same (entity_id, event_id) run one after another in input order, so the
        earlier item of a batch is the earlier arrival."""
        results: list[dict[str, Any] | None] = [None] * len(bodies)
        groups: dict[tuple[str, str], list[tuple[int, Event]]] = {}
        now = self._clock()
        for position, body in enumerate(bodies):
            try:
                event = parse_event(body, now, max_future_seconds, prefix=f"events[{position}]")
            except InvalidRequest as error:
                self.metrics.rejected(error)
                results[position] = {"index": position, "status": "REJECTED", **error_body(error)}
                continue
            groups.setdefault((event.entity_id, event.event_id), []).append((position, event))

        def run_group(group: list[tuple[int, Event]]) -> None:
            for position, event in group:
                try:
                    body = self.ingest(event, request_id).body
                except EvReplayError as error:
                    # REJECTED: the item itself is wrong. FAILED: retry it (storage trouble, in flight).
                    status = "REJECTED" if isinstance(error, (InvalidRequest, IdempotencyKeyReused)) else "FAILED"
                    results[position] = {"index": position, "status": status, **error_body(error)}
                    continue
                results[position] = {
                    "index": position,
                    "status": body["status"],
                    "event_id": body["event_id"],
                }

        if groups:
            with ThreadPoolExecutor(max_workers=min(BATCH_WORKERS, len(groups))) as pool:
                list(pool.map(run_group, groups.values()))
        return [result for result in results if result is not None]

    def _store_request(self, call: dict[str, Any], event: Event, request_id: str, digest: str) -> Answer:
        # Called through Powertools' idempotency wrapper, which hashes `call` (key and body)
        # and stores what this returns, so a retry gets exactly the first response back.
        return self._store(event, request_id, digest)

    @staticmethod
    def _content_digest(event: Event) -> str:
        return sha256_hex(canonical_json(event.content()))

    def _earlier_answer(self, event: Event, digest: str) -> Answer | None:
        """What an earlier run of this keyed request answered, from its receipt (None: no run stored it)."""
        if self._receipts is None or event.idempotency_key is None:
            return None
        earlier = self._receipts.find(event.idempotency_key)
        if earlier is None:
            return None
        if earlier.content_sha256 != digest:
            raise IdempotencyKeyReused("this idempotency key was used with a different body", field="idempotency_key")
        logger.info("answered from the request's receipt", extra={"event_id": event.event_id})
        return earlier.answer

    def _store(self, event: Event, request_id: str, digest: str = "") -> Answer:
        """`digest`: the content's, for a keyed request with receipts (`ingest`); "" otherwise."""
        receipts, idempotency_key = self._receipts, event.idempotency_key
        keyed = receipts is not None and idempotency_key is not None
        # Again under the key's lock: a run that held it before this one may have stored the event
        # since the look in `ingest`; reading first keeps this run from writing a raw object for nothing.
        earlier = self._earlier_answer(event, digest)
        if earlier is not None:
            return earlier
        now = self._clock()
        ingest_time = format_utc(now)
        arrival_id = new_arrival_id(now)
        key = raw_key(event.source, event.event_type, event.entity_id, event.event_time, event.event_id, arrival_id)
        lag_ms = int((now - parse_rfc3339(event.event_time)).total_seconds() * 1000)
        stored = self._raw.put_new(
            key,
            {
                "event_id": event.event_id,
                "event_id_derived": event.event_id_derived,
                "source": event.source,
                "event_type": event.event_type,
                "entity_id": event.entity_id,
                "event_time": event.event_time,
                "event_time_original": event.event_time_original,
                "payload": event.payload,
                "ingest_time": ingest_time,
                "arrival_id": arrival_id,
                "request_id": request_id,
                "idempotency_key": event.idempotency_key,
            },
        )
        row = IndexRow(
            entity_id=event.entity_id,
            event_id=event.event_id,
            event_time=event.event_time,
            arrival_id=arrival_id,
            ingest_time=ingest_time,
            ingest_lag_ms=lag_ms,
            status="",
            s3_bucket=stored.bucket,
            s3_key=stored.key,
            source=event.source,
            event_type=event.event_type,
            payload_sha256=payload_sha256(event.payload),
        )

        def answer(status: str) -> Answer:
            return Answer.of(201, self._answer(event, status, ingest_time, lag_ms, key))

        def receipt(status: str) -> list[dict[str, Any]]:
            if receipts is None or idempotency_key is None:
                return []
            return [receipts.put(idempotency_key, digest, answer(status))]

        try:
            status = self._index.record(row, receipt)
        except StorageUnavailable:
            # Another run of this keyed request may have stored it meanwhile (its receipt cancels
            # this transaction), or this transaction was applied and every answer lost: either way
            # the receipt holds the first response.
            earlier = self._earlier_answer(event, digest) if keyed else None
            if earlier is None:
                raise
            return earlier
        self.metrics.stored(event.source, event.event_type, lag_ms, duplicate=status == DUPLICATE)
        logger.info(
            "event stored",
            extra={"event_id": event.event_id, "entity_id": event.entity_id, "status": status, "s3_key": key},
        )
        return answer(status)

    @staticmethod
    def _answer(event: Event, status: str, ingest_time: str, lag_ms: int, s3_key: str) -> dict[str, Any]:
        return {
            "event_id": event.event_id,
            "status": status,
            "entity_id": event.entity_id,
            "event_time": event.event_time,
            "ingest_time": ingest_time,
            "ingest_lag_ms": lag_ms,
            "s3_key": s3_key,
        }
