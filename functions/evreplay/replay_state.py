"""The replay state table: per-replay duplicate markers and the audit listing of replays.

Markers (docs/design.md §4.3): one item per event_id that needs a check in a replay, `pk = "R#<replay_id>"`,
`sk = <event_id>`, `claimed_by` = the index row (its sort key) that holds the event's single message,
with a TTL. The claim is a conditional write that also succeeds for the row that already holds it, so
a page that is retried (Lambda retry, Step Functions Retry) makes exactly the same decisions.

Audit records: one item per replay under `pk = "ENTITY#<entity_id>"` and one under `pk = "REPLAYS"`,
`sk = "<started_at>#<replay_id>"` (newest last; listed newest first), written by the workflow's
input check, so replays started from the console are listed as well as API ones. No TTL.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from evreplay.errors import AWS_CALL_ERRORS, StorageUnavailable, aws_error_code
from evreplay.index import deserialize, serialize

MARKER_PREFIX = "R#"
ENTITY_PREFIX = "ENTITY#"
ALL_REPLAYS = "REPLAYS"


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; the API speaks JSON."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


@dataclass(frozen=True)
class ReplayRecord:
    """What the audit listing knows about a replay without asking Step Functions."""

    replay_id: str
    entity_id: str
    started_at: str
    execution_arn: str
    request: dict[str, Any]
    requested_by: dict[str, Any] | str | None

    @property
    def sk(self) -> str:
        return f"{self.started_at}#{self.replay_id}"


class ReplayStateStore:
    def __init__(
        self, dynamodb_client: Any, table: str, marker_ttl_seconds: int, clock: Callable[[], float] = time.time
    ) -> None:
        self._ddb = dynamodb_client
        self.table = table
        self._ttl = marker_ttl_seconds
        self._clock = clock

    # ------------------------------------------------------------------ duplicate markers
    def _marker_key(self, replay_id: str, event_id: str) -> dict[str, Any]:
        return {"pk": {"S": MARKER_PREFIX + replay_id}, "sk": {"S": event_id}}

    def claim(self, replay_id: str, event_id: str, row_sk: str) -> bool:
        """True if `row_sk` is (now, or already was) the occurrence that holds this event's message."""
        try:
            self._ddb.put_item(
                TableName=self.table,
                Item={
                    **self._marker_key(replay_id, event_id),
                    "claimed_by": {"S": row_sk},
                    "expires_at": {"N": str(int(self._clock()) + self._ttl)},
                },
                ConditionExpression="attribute_not_exists(pk) OR claimed_by = :sk",
                ExpressionAttributeValues={":sk": {"S": row_sk}},
            )
        except AWS_CALL_ERRORS as exc:
            if aws_error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise StorageUnavailable(f"could not write a duplicate marker ({aws_error_code(exc) or 'error'})") from exc
        return True

    def held_by_other(self, replay_id: str, event_id: str, row_sk: str) -> bool:
        """Read-only form of `claim`: is the event's message already held by another occurrence?"""
        try:
            response = self._ddb.get_item(
                TableName=self.table,
                Key=self._marker_key(replay_id, event_id),
                ConsistentRead=True,
                ProjectionExpression="claimed_by",
            )
        except AWS_CALL_ERRORS as exc:
            raise StorageUnavailable(f"could not read a duplicate marker ({aws_error_code(exc) or 'error'})") from exc
        item = response.get("Item")
        return bool(item) and item["claimed_by"]["S"] != row_sk

    # ------------------------------------------------------------------ audit records
    def record(self, record: ReplayRecord) -> None:
        """Write the replay's audit items (idempotent: a retried input check writes the same items)."""
        body = {
            "sk": record.sk,
            "replay_id": record.replay_id,
            "entity_id": record.entity_id,
            "started_at": record.started_at,
            "execution_arn": record.execution_arn,
            "request": record.request,
            "requested_by": record.requested_by,
        }
        requests = [
            {"PutRequest": {"Item": serialize({"pk": pk, **body})}}
            for pk in (ENTITY_PREFIX + record.entity_id, ALL_REPLAYS)
        ]
        try:
            response = self._ddb.batch_write_item(RequestItems={self.table: requests})
            for _ in range(5):
                unprocessed = response.get("UnprocessedItems") or {}
                if not unprocessed:
                    return
                time.sleep(0.1)
                response = self._ddb.batch_write_item(RequestItems=unprocessed)
        except AWS_CALL_ERRORS as exc:
            raise StorageUnavailable(f"could not record the replay ({aws_error_code(exc) or 'error'})") from exc
        if response.get("UnprocessedItems"):
            raise StorageUnavailable("could not record the replay (writes kept coming back unprocessed)")

    def list_records(
        self, entity_id: str | None, limit: int, after_sk: str | None = None
    ) -> tuple[list[ReplayRecord], str | None]:
        """Newest first: one entity's replays, or every replay. Returns the sk to continue after."""
        pk = ENTITY_PREFIX + entity_id if entity_id is not None else ALL_REPLAYS
        params: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if after_sk:
            params["ExclusiveStartKey"] = {"pk": {"S": pk}, "sk": {"S": after_sk}}
        try:
            response = self._ddb.query(**params)
        except AWS_CALL_ERRORS as exc:
            raise StorageUnavailable(f"could not list replays ({aws_error_code(exc) or 'error'})") from exc
        records = []
        for item in response.get("Items", []):
            plain = _plain(deserialize(item))
            records.append(
                ReplayRecord(
                    replay_id=plain["replay_id"],
                    entity_id=plain["entity_id"],
                    started_at=plain["started_at"],
                    execution_arn=plain["execution_arn"],
                    request=plain.get("request") or {},
                    requested_by=plain.get("requested_by"),
                )
            )
        last = response.get("LastEvaluatedKey")
        return records, (last["sk"]["S"] if last else None)
