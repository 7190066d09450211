"""Idempotent calls through Powertools' Idempotency utility, with its errors mapped to ours.

Used by POST /events (key from the header or the body) and POST /replays (the header). The
wrapped function gets `call={"idempotency_key": ..., <payload_field>: ...}` plus any other keyword
arguments and returns an `Answer`; Powertools hashes the key, validates the payload and stores the
answer, whose text a retry gets back byte for byte.

How long a key stays locked after an attempt that did not finish cleanly (README, "409"):
- Powertools dates an in-progress record with the Lambda's remaining time (up to the function
  timeout, ~29 s): a retry meeting it is answered 409 that long, though nothing may be in flight
  (the attempt failed and its record could not be deleted, or recording its answer failed). Here
  the record expires after `IN_PROGRESS_SECONDS` (or the Lambda's remaining time, if shorter):
  the time one attempt normally needs, not its worst case. An attempt that is still running after
  that can meet a second one with the same key; that is safe because each wrapped function is
  safe to run twice: ingest's receipt (evreplay.ingest.receipts) and conditional writes store an event
  at most once, and a keyed replay's execution name is derived from its key (evreplay.replay.service).
- botocore retries a PutItem whose first attempt was applied but whose answer was lost; the
  retry then meets the in-progress record that first attempt wrote and Powertools would answer
  "already in progress". `IdempotencyStore` recognises that record as this call's own (it is
  exactly what this call put) and lets the call go on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyInconsistentStateError,
    IdempotencyItemAlreadyExistsError,
    IdempotencyPersistenceLayerError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import STATUS_CONSTANTS, DataRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from evreplay.core.answers import Answer
from evreplay.core.errors import Conflict, IdempotencyKeyReused, StorageUnavailable
from evreplay.core.observability import logger

# How long an attempt holds its key (module docstring); the README promises a 409 lasts no longer.
IN_PROGRESS_SECONDS = 5


class IdempotencyStore(DynamoDBPersistenceLayer):
    """Powertools' DynamoDB persistence layer that recognises its own in-progress record.

    `records_answers = False` (set by `IdempotentCall(answers_kept_by_caller=True)`) is for a caller
    that keeps each answer itself, in the same write as its effect (ingest's receipts): the record
    is then only the in-flight lock, and Powertools' success UpdateItem, a write per request that
    nothing would read, is skipped. The record ends with its in-progress window and its TTL."""

    records_answers = True

    def save_success(self, data: dict[str, Any], result: dict[str, Any]) -> None:
        if self.records_answers:
            super().save_success(data=data, result=result)

    def _put_record(self, data_record: DataRecord) -> None:
        try:
            super()._put_record(data_record=data_record)
        except IdempotencyItemAlreadyExistsError as exc:
            if not _same_record(exc.old_data_record, data_record):
                raise
            # The condition failed on the very item this put wrote: botocore's retry of a put that
            # was applied and whose answer was lost. The record is this call's: go on.
            logger.info("idempotency record already written by this call (a retried put)")


def _same_record(found: DataRecord | None, put: DataRecord) -> bool:
    # Times in the record are this call's own clock readings (milliseconds for in-progress): a
    # different attempt writes different ones, unless it wrote in the same millisecond, and then
    # going on is safe as well (module docstring).
    return (
        found is not None
        and found.status == STATUS_CONSTANTS["INPROGRESS"]
        and (found.expiry_timestamp, found.in_progress_expiry_timestamp, found.payload_hash)
        == (put.expiry_timestamp, put.in_progress_expiry_timestamp, put.payload_hash)
    )


class _InProgressWindow:
    """What Powertools reads as "the Lambda's remaining time" to date an in-progress record: the
    window, or less when the invocation has less left. Without an invocation (tests, tools) the
    window still applies, never Powertools' fallback of no in-progress expiry at all."""

    def __init__(self, seconds: int) -> None:
        self._millis = seconds * 1000
        self.invocation: LambdaContext | None = None

    def get_remaining_time_in_millis(self) -> int:
        if self.invocation is None:
            return self._millis
        return min(self._millis, self.invocation.get_remaining_time_in_millis())


class IdempotentCall:
    """`function` run at most once per idempotency key (within `ttl_seconds`)."""

    def __init__(
        self,
        function: Callable[..., Answer],
        persistence: DynamoDBPersistenceLayer,
        ttl_seconds: int,
        key_prefix: str,
        payload_field: str,
        key_field: str,
        in_flight_message: str,
        reused_message: str,
        status_code: int,
        answers_kept_by_caller: bool = False,
    ) -> None:
        if answers_kept_by_caller:
            # The caller answers a retry of a finished call from its own record, before this runs.
            if not isinstance(persistence, IdempotencyStore):
                raise TypeError("answers_kept_by_caller needs an IdempotencyStore")
            persistence.records_answers = False
        self._window = _InProgressWindow(IN_PROGRESS_SECONDS)
        self.config = IdempotencyConfig(
            event_key_jmespath="idempotency_key",
            payload_validation_jmespath=payload_field,
            expires_after_seconds=ttl_seconds,
            raise_on_no_idempotency_key=True,
            # Powertools reads nothing else from it (LambdaContext types the method static).
            lambda_context=cast(LambdaContext, self._window),
        )
        # Powertools configures the store lazily on the first call and flags it configured before
        # it has read the key settings: threads racing that first call (batch ingest) could hash the
        # whole request instead of the key. Configure it here, once, before any thread runs.
        persistence.configure(self.config, key_prefix=key_prefix)
        self._function = function
        self._once = idempotent_function(
            data_keyword_argument="call",
            persistence_store=persistence,
            config=self.config,
            key_prefix=key_prefix,
        )(self._stored_answer)
        self._key_field = key_field
        self._in_flight_message = in_flight_message
        self._reused_message = reused_message
        self._status_code = status_code

    def register_lambda_context(self, context: LambdaContext) -> None:
        self._window.invocation = context

    def _stored_answer(self, call: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self._function(call=call, **kwargs).stored()

    def __call__(self, call: dict[str, Any], **kwargs: Any) -> Answer:
        try:
            stored = self._once(call=call, **kwargs)
        except IdempotencyAlreadyInProgressError as exc:
            raise Conflict(self._in_flight_message, field=self._key_field) from exc
        except IdempotencyValidationError as exc:
            raise IdempotencyKeyReused(self._reused_message, field=self._key_field) from exc
        except (IdempotencyPersistenceLayerError, IdempotencyInconsistentStateError) as exc:
            raise StorageUnavailable("the idempotency store is unavailable; retry") from exc
        return Answer.from_stored(stored, self._status_code)
