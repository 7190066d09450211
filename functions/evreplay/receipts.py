"""Receipts: what a request with an idempotency key stored, written in the same transaction as its
index row, so that running the request again can never store it twice.

Powertools' idempotency record returns the first response to a retry once that response is
recorded. Two failures leave an event stored without a recorded response:
- the index transaction was applied but every answer was lost (botocore gave up: 503), and
  Powertools deleted its record because the request failed;
- the event was stored and Powertools' UpdateItem (recording the response) failed: 503, and the
  record stays in progress until the Lambda timeout, after which Powertools runs the request again.
Either way the same request runs a second time; without a receipt it would store a second
occurrence (DUPLICATE) of one producer request.

A receipt lives in the idempotency table, expiring with the same TTL as Powertools' records:
`id = "evreplay.ingest.receipt#<sha256 of the key>"`, the 201 body and the sha256 of the request's
content. A keyed request looks for its receipt first (a consistent read) and, if there is one,
answers its body again and stores nothing.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from evreplay.errors import AWS_CALL_ERRORS, StorageUnavailable, aws_error_code

RECEIPT_PREFIX = "evreplay.ingest.receipt#"


@dataclass(frozen=True)
class Receipt:
    body: dict[str, Any]  # the 201 body the request answered
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
        return Receipt(body=json.loads(item["body"]["S"]), content_sha256=item["content_sha256"]["S"])

    def put(self, idempotency_key: str, content_sha256: str, body: dict[str, Any]) -> dict[str, Any]:
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
                    "body": {"S": json.dumps(body, ensure_ascii=False, separators=(",", ":"))},
                },
                "ConditionExpression": "attribute_not_exists(id) OR expiration < :now",
                "ExpressionAttributeValues": {":now": {"N": str(now)}},
            }
        }
