"""Idempotent calls through Powertools' Idempotency utility, with its errors mapped to ours.

Used by POST /events (key from the header or the body) and POST /replays (the header). The
wrapped function gets `call={"idempotency_key": ..., <payload_field>: ...}` plus any other keyword
arguments; Powertools hashes the key, validates the payload and stores what the function returns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from evreplay.errors import Conflict, IdempotencyKeyReused, StorageUnavailable


class IdempotentCall:
    """`function` run at most once per idempotency key (within `ttl_seconds`)."""

    def __init__(
        self,
        function: Callable[..., dict[str, Any]],
        persistence: DynamoDBPersistenceLayer,
        ttl_seconds: int,
        key_prefix: str,
        payload_field: str,
        key_field: str,
        in_flight_message: str,
        reused_message: str,
    ) -> None:
        self.config = IdempotencyConfig(
            event_key_jmespath="idempotency_key",
            payload_validation_jmespath=payload_field,
            expires_after_seconds=ttl_seconds,
            raise_on_no_idempotency_key=True,
        )
        # Powertools configures the store lazily on the first call and flags it configured before
        # it has read the key settings: threads racing that first call (batch ingest) could hash the
        # whole request instead of the key. Configure it here, once, before any thread runs.
        persistence.configure(self.config, key_prefix=key_prefix)
        self._once = idempotent_function(
            data_keyword_argument="call",
            persistence_store=persistence,
            config=self.config,
            key_prefix=key_prefix,
        )(function)
        self._key_field = key_field
        self._in_flight_message = in_flight_message
        self._reused_message = reused_message

    def register_lambda_context(self, context: LambdaContext) -> None:
        self.config.register_lambda_context(context)

    def __call__(self, call: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        try:
            return self._once(call=call, **kwargs)
        except IdempotencyAlreadyInProgressError as exc:
            raise Conflict(self._in_flight_message, field=self._key_field) from exc
        except IdempotencyValidationError as exc:
            raise IdempotencyKeyReused(self._reused_message, field=self._key_field) from exc
        except IdempotencyPersistenceLayerError as exc:
            raise StorageUnavailable("the idempotency store is unavailable; retry") from exc
