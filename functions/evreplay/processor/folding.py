"""The processor's logic: a replay message folded into its aggregate version, exactly once."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from evreplay.core.errors import EvReplayError, InvalidReplayMessage
from evreplay.core.observability import logger, metrics
from evreplay.processor.messages import contribution_of, log_keys, parse_message
from evreplay.processor.store import AggregateStore
from evreplay.store.raw import RawStore


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
