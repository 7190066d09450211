"""The processor's logic: a batch of replay messages folded into their aggregate versions, each
message exactly once.

A batch is folded in three waves, each one concurrent round of requests rather than one request per
message after another (on AWS the batch's time is waiting):
1. read every message's raw object (S3 GetObject), all at once;
2. apply the messages (`AggregateStore.apply_all`), one lane per aggregate version: a version's
   messages together, as if one by one in batch order (they update the same item, and the first
   occurrence of an event_id keeps its marker), usually in one transaction; different versions
   concurrently;
3. widen each version's first/last event_time once, to the min/max of its messages' times: min and
   max do not depend on order or grouping, so once per version per batch equals once per message.

Each message keeps its own outcome: a bad body or a missing object fails that message only; a
version whose widening fails fails the messages applied to it, so SQS delivers them again and the
redelivery (ALREADY_APPLIED, then the widening) heals it, as it did per message.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from evreplay.core.errors import EvReplayError, InvalidReplayMessage
from evreplay.core.observability import logger, metrics
from evreplay.processor.messages import Contribution, contribution_of, log_keys, parse_message
from evreplay.processor.store import AggregateStore
from evreplay.replay.concurrency import run_batches
from evreplay.replay.queue import ReplayMessage
from evreplay.store.raw import RawStore

# Requests in flight per wave: a batch is at most 10 messages (the trigger's BatchSize; SQS allows 10
# per receive for a Lambda trigger without a batching window), so a wave is one round trip. The
# clients of evreplay.core.clients hold more pooled connections than this.
FOLD_WORKERS = 10


@dataclass
class _Message:
    """One message of the batch on its way through the waves."""

    message_id: str
    body: str
    keys: dict[str, Any]
    message: ReplayMessage | None = None
    contribution: Contribution | None = None
    outcome: str | None = None
    error: Exception | None = None

    def fail(self, error: Exception) -> None:
        self.outcome, self.error = None, error


@dataclass
class FoldedBatch:
    """A folded batch's outcomes, handed to Powertools' batch processor one record at a time:
    `outcome(record)` returns the message's outcome or raises its error, so the response reports
    exactly the failed messages (ReportBatchItemFailures)."""

    _by_id: dict[str, deque[_Message]] = field(init=False, default_factory=lambda: defaultdict(deque))

    def add(self, m: _Message) -> None:
        self._by_id[m.message_id].append(m)

    def outcome(self, record: SQSRecord) -> str:
        """APPLIED, APPLIED_REPEAT or ALREADY_APPLIED, or the message's error raised."""
        return self.outcome_of(record.message_id)

    def outcome_of(self, message_id: str) -> str:
        # A message id repeated within one batch (a delivery SQS duplicated) takes its results in order.
        folded = self._by_id[message_id].popleft()
        if folded.error is not None:
            raise folded.error
        assert folded.outcome is not None
        return folded.outcome


def _version_of(c: Contribution) -> tuple[str, str, str]:
    return c.entity_id, c.day, c.replay_id


class MessageFolder:
    """Folds replay messages into aggregate versions: parse, read the raw object, apply once."""

    def __init__(self, raw_store: RawStore, store: AggregateStore, workers: int = FOLD_WORKERS) -> None:
        self._raw = raw_store
        self._store = store
        self._workers = workers

    def fold_batch(self, records: Sequence[tuple[str, str]]) -> FoldedBatch:
        """Fold (message_id, body) pairs. Every failure is counted, logged with the message's
        replay_id and event_id, and kept for that message, so the batch reports it as failed and SQS
        delivers it again (then to the DLQ); the other messages are folded regardless."""
        batch = [_Message(message_id, body, {"message_id": message_id}) for message_id, body in records]
        for m in batch:
            self._parse(m)
        run_batches([m for m in batch if m.message is not None], self._read, max_workers=self._workers)

        lanes: dict[tuple[str, str, str], list[_Message]] = {}
        for m in batch:
            if m.contribution is not None:
                lanes.setdefault(_version_of(m.contribution), []).append(m)
        run_batches(list(lanes.values()), self._apply, max_workers=self._workers)
        run_batches(list(lanes.values()), self._widen, max_workers=self._workers)

        folded = FoldedBatch()
        for m in batch:
            self._report(m)
            folded.add(m)
        return folded

    # ------------------------------------------------------------ the waves (never raise: each message keeps its error)
    def _parse(self, m: _Message) -> None:
        try:
            message = parse_message(m.body)
            m.keys |= {"replay_id": message.replay_id, "seq": message.seq, "event_id": message.event_id}
            if message.s3_bucket != self._raw.bucket:
                raise InvalidReplayMessage(
                    f"s3_bucket {message.s3_bucket!r} is not the raw bucket this processor reads", field="s3_bucket"
                )
            m.message = message
        except Exception as error:
            m.fail(error)

    def _read(self, m: _Message) -> None:
        assert m.message is not None
        try:
            m.contribution = contribution_of(m.message, self._raw.get(m.message.s3_bucket, m.message.s3_key))
            m.keys |= {"entity_id": m.contribution.entity_id, "day": m.contribution.day}
        except Exception as error:
            m.fail(error)

    def _apply(self, lane: list[_Message]) -> None:
        """The version's messages in batch order, in as few transactions as exactness allows."""
        try:
            outcomes = self._store.apply_all([m.contribution for m in lane if m.contribution is not None])
        except Exception as error:
            outcomes = [error] * len(lane)
        for m, outcome in zip(lane, outcomes, strict=True):
            if isinstance(outcome, Exception):
                m.fail(outcome)
            else:
                m.outcome = outcome

    def _widen(self, lane: list[_Message]) -> None:
        """first/last event_time once for the version: widened to the times of every message applied
        to it in this batch, ALREADY_APPLIED ones included (that heals a crash between the steps)."""
        applied = [m for m in lane if m.outcome is not None]
        if not applied:
            return
        try:
            self._store.widen_times([m.contribution for m in applied if m.contribution is not None])
        except Exception as error:
            for m in applied:
                m.fail(error)

    def _report(self, m: _Message) -> None:
        if m.error is None:
            metrics.add_metric(name="ProcessorMessageCount", unit=MetricUnit.Count, value=1)
            logger.info("replay message folded", extra={**m.keys, "outcome": m.outcome})
            return
        error = m.error
        metrics.add_metric(name="ProcessorErrorCount", unit=MetricUnit.Count, value=1)
        known = isinstance(error, EvReplayError)
        logger.warning(
            "replay message failed; SQS will deliver it again, then move it to the DLQ",
            extra={
                **log_keys(m.body),
                **m.keys,
                "error_code": error.code if isinstance(error, EvReplayError) else type(error).__name__,
                "error_field": error.field if isinstance(error, EvReplayError) else None,
                "error": str(error),
            },
            exc_info=None if known else error,
        )
