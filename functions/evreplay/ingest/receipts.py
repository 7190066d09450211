"""Receipts: what a request with an idempotency key stored, written in the same transaction as its
index row, so that running the request again can never store it twice.

Powertools' idempotency record returns the first response to a retry once that response is
recorded. Three cases run a keyed request again before (or without) that:
- the index transaction was applied but every answer was lost (botocore gave up: 503), and
  Powertools deleted its record because the request failed;
- the event was stored and Powertools' UpdateItem (recording the response) failed: 503, and the
  record stays in progress until its short window passes (evreplay.core.idempotency), after which
  Powertools runs the request again;
- an attempt still running when its window passed meets a retry with the same key: both run.
Without a receipt each would store a second occurrence (DUPLICATE) of one producer request.

A receipt lives in the idempotency table, expiring with the same TTL as Powertools' records:
`id = "evreplay.ingest.receipt#<sha256 of the key>"`, the 201 body (its exact text) and the sha256
of the request's content. A keyed request looks for its receipt first (a consistent read) and, if
there is one, answers its body again and stores nothing. Its transaction's condition on the receipt
cancels a second store; the attempt that loses then answers the receipt that won.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from evreplay.core.answers import Answer
from evreplay.core.errors import AWS_CALL_ERRORS, StorageUnavailable, aws_error_code

RECEIPT_PREFIX = "evreplay.ingest.receipt#"


@dataclass(frozen=True)
class Receipt:
    answer: Answer  # what the request answered (201), byte for byte
    content_sha256: str  # what the request sent, to tell a retry from a reused key


class Receipts:
    def __init__(
        self, dynamodb_client: Any, table: str, ttl_seconds: int, clock: Callable[[], float] = time.time
    ) -> None:
        self._ddb = dynamodb_client
        self.table = table
        self._ttl = ttl_seconds
        self._clock = clock

    @staticmethod
    def _id(idempotency_key: str) -> dict[str, Any]:
        return {"S": RECEIPT_PREFIX + hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()}

    def find(self, idempotency_key: str) -> Receipt | None:
        """The receipt of an earlier run of a request with this key, if one stored it."""
        try:
            response = self._ddb.get_item(
                TableName=self.table, Key={"id": self._id(idempotency_key)}, ConsistentRead=True
            )
        except AWS_CALL_ERRORS as exc:
            raise StorageUnavailable(f"could not read the request's receipt ({aws_error_code(exc)}); retry") from exc
        item = response.get("Item")
        if not item or int(item["expiration"]["N"]) < self._clock():
            return None  # none, or expired and not yet removed by the TTL sweeper
        return Receipt(answer=Answer(201, item["body"]["S"]), content_sha256=item["content_sha256"]["S"])

    def put(self, idempotency_key: str, content_sha256: str, answer: Answer) -> dict[str, Any]:
        """The receipt as a TransactWriteItems item, for the transaction that indexes the event. Its
        condition cancels the transaction if a live receipt exists (a concurrent run with the key)."""
        now = int(self._clock())
        return {
            "Put": {
                "TableName": self.table,
                "Item": {
                    "id": self._id(idempotency_key),
                    "expiration": {"N": str(now + self._ttl)},
                    "content_sha256": {"S": content_sha256},
                    "body": {"S": answer.text},
                },
                "ConditionExpression": "attribute_not_exists(id) OR expiration < :now",
                "ExpressionAttributeValues": {":now": {"N": str(now)}},
            }
        }
