"""Sending a replay's messages to its destination (docs/design.md §4.6, §4.8, §4.12).

One interface, `Sender.send(messages) -> SendReport`, and one batch loop (`BatchSender`) shared by every
destination type. A type says how one message becomes an entry (body, marking, FIFO ids), how entries
are cut into batches (its entry count and byte limits) and how one call reports entries that failed;
the loop sends the batches side by side, bounded (`evreplay.replay.concurrency.run_batches`; a FIFO
destination's batches of one entity in order), and resends only the failed entries, with backoff, a
few times, before the step fails with the type's error (`SqsSendFailed`, `EventBridgeSendFailed`),
which the state machine retries. botocore's standard retry mode already retries a whole call that was
throttled or failed.

- `SqsSender`: SendMessageBatch, 10 entries and 256 KiB per call; every message carries the message
  attributes `evreplay-replay-id` and `evreplay-seq`.
- `FifoSender`: the same with `MessageGroupId` = entity_id and `MessageDeduplicationId` from
  (replay_id, seq), so a resent page is deduplicated by SQS; a batch holds one entity's messages only,
  so batches of one entity (the same key) can be ordered and other entities' sent side by side.
- `EventBridgeSender`: PutEvents, 10 entries and 256 KiB per call, `Source` `evreplay.replay`,
  `DetailType` the event type, `Detail` the body; entries reported with an ErrorCode are resent.

Bodies (`BodyBuilder`): `pointer`, the §4.6 body, or `event`, the stored event inline, read from S3;
an event body too large for the destination goes as a pointer body, counted as `sent_as_pointer`.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from evreplay.core.errors import AWS_CALL_ERRORS, EventBridgeSendFailed, SqsSendFailed, aws_error_code
from evreplay.replay.concurrency import DEFAULT_WORKERS, run_batches
from evreplay.replay.destinations import DEFAULT, EVENTBRIDGE, SQS, SQS_FIFO, Destination, InvalidDestinations
from evreplay.replay.queue import BATCH_SIZE, ReplayMessage, SendReport
from evreplay.store.raw import RawStore

POINTER = "pointer"
EVENT = "event"
FORMATS = (POINTER, EVENT)

BATCH_ENTRIES = BATCH_SIZE  # SendMessageBatch and PutEvents alike
BATCH_BYTES = 256 * 1024  # a whole call, and so one entry, for both
EVENT_SOURCE = "evreplay.replay"
REPLAY_ID_ATTRIBUTE = "evreplay-replay-id"
SEQ_ATTRIBUTE = "evreplay-seq"
FAILED_ENTRY_ATTEMPTS = 5
FAILED_ENTRY_BACKOFF_SECONDS = 0.05


class Sender(Protocol):
    def send(self, messages: Sequence[ReplayMessage]) -> SendReport: ...


@dataclass(frozen=True)
class Entry:
    """One message as the destination's API takes it."""

    id: str  # the seq: unique in a call, and what a failure report names
    key: str | None  # messages of one key must arrive in order (FIFO: the entity); None: any order
    size: int  # bytes the destination counts against its limits
    request: dict[str, Any]


class BodyBuilder:
    """The body of each message in the replay's format; `event` reads the stored event from S3."""

    def __init__(self, fmt: str = POINTER, raw: RawStore | None = None) -> None:
        if fmt == EVENT and raw is None:
            raise ValueError("the event format reads stored events: give it the raw store")
        self.format = fmt
        self._raw = raw

    @property
    def reads(self) -> bool:
        """Whether a body costs a read of the stored event."""
        return self.format == EVENT and self._raw is not None

    def bodies(self, message: ReplayMessage) -> tuple[str, str]:
        """(preferred body, pointer body): the sender falls back to the pointer when too large."""
        pointer = message.body()
        if self.format == POINTER or self._raw is None:
            return pointer, pointer
        stored = self._raw.get(message.s3_bucket, message.s3_key)
        event = {
            name: stored.get(name)
            for name in ("source", "event_type", "entity_id", "event_id", "event_time", "ingest_time", "payload")
        }
        body = {"replay": {"replay_id": message.replay_id, "seq": message.seq}, "event": event}
        return _compact(body), pointer


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _utf8(text: str) -> int:
    return len(text.encode("utf-8"))


class BatchSender:
    """The batch loop every destination type shares; subclasses build entries and make one call."""

    error: type[Exception] = SqsSendFailed
    api = "SendMessageBatch"

    def __init__(
        self,
        bodies: BodyBuilder | None = None,
        attempts: int = FAILED_ENTRY_ATTEMPTS,
        backoff_seconds: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_workers: int = DEFAULT_WORKERS,
    ) -> None:
        self._bodies = bodies or BodyBuilder()
        self._attempts = attempts
        self._backoff = backoff_seconds
        self._sleep = sleep
        self._workers = max_workers

    @property
    def backoff_seconds(self) -> float:
        return FAILED_ENTRY_BACKOFF_SECONDS if self._backoff is None else self._backoff

    def send(self, messages: Sequence[ReplayMessage]) -> SendReport:
        report = SendReport()
        # The event format reads every stored event from S3: on AWS each read is a wait, so the reads go
        # side by side, bounded, their bodies kept in message order. The pointer format reads nothing.
        bodies = run_batches(messages, self._bodies.bodies, max_workers=self._workers if self._bodies.reads else 1)
        batches = self.batches(
            [self._entry(message, body, report) for message, body in zip(messages, bodies, strict=True)]
        )
        # On AWS each call is a wait: the batches go out side by side, bounded; a FIFO destination's
        # batches of one entity (one key) one after another, in order. Each batch reports on its own
        # (they run on several threads) and the reports are summed.
        for sent in run_batches(batches, self._send_batch, max_workers=self._workers, key=lambda b: b[0].key):
            report.calls += sent.calls
            report.resent_entries += sent.resent_entries
        return report

    def batches(self, entries: list[Entry]) -> list[list[Entry]]:
        """Consecutive entries, at most BATCH_ENTRIES and BATCH_BYTES a batch, never two keys in one."""
        out: list[list[Entry]] = []
        size = 0
        for entry in entries:
            current = out[-1] if out else None
            if (
                current is None
                or len(current) >= BATCH_ENTRIES
                or size + entry.size > BATCH_BYTES
                or current[0].key != entry.key
            ):
                out.append([entry])
                size = entry.size
            else:
                current.append(entry)
                size += entry.size
        return out

    def _entry(self, message: ReplayMessage, bodies: tuple[str, str], report: SendReport) -> Entry:
        preferred, pointer = bodies
        entry = self.entry(message, preferred)
        if preferred != pointer and entry.size > BATCH_BYTES:
            report.sent_as_pointer += 1
            entry = self.entry(message, pointer)
        return entry

    def entry(self, message: ReplayMessage, body: str) -> Entry:
        raise NotImplementedError

    def call(self, batch: list[Entry]) -> list[tuple[str, str]]:
        """Send one batch; the (id, error code) of each entry the destination reports failed."""
        raise NotImplementedError

    def _send_batch(self, batch: list[Entry]) -> SendReport:
        report = SendReport()
        pending = batch
        failures: list[tuple[str, str]] = []
        for attempt in range(self._attempts):
            if attempt:
                self._sleep(self.backoff_seconds * 2 ** (attempt - 1))
                report.resent_entries += len(pending)
            try:
                failures = self.call(pending)
            except AWS_CALL_ERRORS as exc:
                raise self.error(f"{self.api} failed ({aws_error_code(exc) or 'error'})") from exc
            report.calls += 1
            if not failures:
                return report
            failed_ids = {entry_id for entry_id, _ in failures}
            pending = [entry for entry in pending if entry.id in failed_ids]
        codes = sorted({code for _, code in failures})
        raise self.error(
            f"{len(pending)} message(s) still reported failed by {self.api} after {self._attempts} attempts "
            f"(seq {', '.join(entry.id for entry in pending)}; codes {', '.join(codes)})"
        )


class SqsSender(BatchSender):
    def __init__(self, sqs_client: Any, queue_url: str, **options: Any) -> None:
        super().__init__(**options)
        self._sqs = sqs_client
        self.queue_url = queue_url

    def entry(self, message: ReplayMessage, body: str) -> Entry:
        attributes = {
            REPLAY_ID_ATTRIBUTE: {"DataType": "String", "StringValue": message.replay_id},
            SEQ_ATTRIBUTE: {"DataType": "Number", "StringValue": str(message.seq)},
        }
        # SQS counts the body and each attribute's name, type and value against 256 KiB.
        size = _utf8(body) + sum(
            _utf8(name) + _utf8(value["DataType"]) + _utf8(value["StringValue"]) for name, value in attributes.items()
        )
        request = {"Id": str(message.seq), "MessageBody": body, "MessageAttributes": attributes}
        return Entry(str(message.seq), None, size, request)

    def call(self, batch: list[Entry]) -> list[tuple[str, str]]:
        response = self._sqs.send_message_batch(QueueUrl=self.queue_url, Entries=[e.request for e in batch])
        return [(str(failure["Id"]), str(failure.get("Code"))) for failure in response.get("Failed") or []]


class ReplayQueue(SqsSender):
    """The built-in queue (destination `default`), the processor's."""


def deduplication_id(replay_id: str, seq: int) -> str:
    """At most 128 characters whatever the replay_id: a digest of the pair."""
    return hashlib.sha256(f"{replay_id}#{seq}".encode()).hexdigest()


class FifoSender(SqsSender):
    def entry(self, message: ReplayMessage, body: str) -> Entry:
        plain = super().entry(message, body)
        request = {
            **plain.request,
            "MessageGroupId": message.entity_id,
            "MessageDeduplicationId": deduplication_id(message.replay_id, message.seq),
        }
        return Entry(plain.id, message.entity_id, plain.size, request)


class EventBridgeSender(BatchSender):
    error = EventBridgeSendFailed
    api = "PutEvents"

    def __init__(self, events_client: Any, bus_name: str, **options: Any) -> None:
        super().__init__(**options)
        self._events = events_client
        self.bus_name = bus_name

    def entry(self, message: ReplayMessage, body: str) -> Entry:
        detail_type = message.event_type or "evreplay.replay"
        request = {
            "Source": EVENT_SOURCE,
            "DetailType": detail_type,
            "Detail": body,
            "EventBusName": self.bus_name,
        }
        # PutEvents counts Source, DetailType and Detail (and Time and Resources, which we do not set).
        return Entry(str(message.seq), None, _utf8(EVENT_SOURCE) + _utf8(detail_type) + _utf8(body), request)

    def call(self, batch: list[Entry]) -> list[tuple[str, str]]:
        response = self._events.put_events(Entries=[entry.request for entry in batch])
        if not response.get("FailedEntryCount"):
            return []
        # Results come in the order of the entries.
        return [
            (entry.id, str(result.get("ErrorCode")))
            for entry, result in zip(batch, response.get("Entries") or [], strict=False)
            if result.get("ErrorCode")
        ]


class Senders:
    """The sender of each (destination, format) a replay asks for, built on first use. The built-in
    queue is reached by the URL the template gives; the others by their ARN."""

    def __init__(
        self,
        destinations: dict[str, Destination],
        *,
        sqs_client: Any,
        default_queue_url: str | None = None,
        events_client: Callable[[], Any] | None = None,
        raw: Callable[[], RawStore] | None = None,
    ) -> None:
        self.destinations = destinations
        self._sqs = sqs_client
        self._default_queue_url = default_queue_url
        self._events = events_client
        self._raw = raw
        self._built: dict[tuple[str, str], BatchSender] = {}

    def get(self, destination: str | None, fmt: str | None) -> BatchSender:
        name, fmt = destination or DEFAULT, fmt or POINTER
        if (name, fmt) not in self._built:
            self._built[name, fmt] = self._build(name, fmt)
        return self._built[name, fmt]

    def _build(self, name: str, fmt: str) -> BatchSender:
        if name == DEFAULT and name not in self.destinations and self._default_queue_url:
            target = Destination(DEFAULT, SQS, "")
        elif name in self.destinations:
            target = self.destinations[name]
        else:
            # The request was checked against the same list: only a changed deployment gets here.
            raise InvalidDestinations(f"destination {name!r} is not declared in ReplayDestinations")
        bodies = BodyBuilder(fmt, self._raw() if fmt == EVENT and self._raw else None)
        if target.type == EVENTBRIDGE:
            if self._events is None:
                raise InvalidDestinations("this function was not given an EventBridge client")
            return EventBridgeSender(self._events(), target.bus_name, bodies=bodies)
        url = self._default_queue_url if name == DEFAULT and self._default_queue_url else target.queue_url
        if name == DEFAULT:
            return ReplayQueue(self._sqs, url, bodies=bodies)
        if target.type == SQS_FIFO:
            return FifoSender(self._sqs, url, bodies=bodies)
        return SqsSender(self._sqs, url, bodies=bodies)
