"""The one DynamoDB layer every table's store uses: items as plain values and back, Query pages,
transactions whose cancellation reasons are read in one place, and BatchGetItem in requests of 100.
Errors of the calls become the domain's StorageUnavailable, naming what was being read or written."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from evreplay.core.errors import AWS_CALL_ERRORS, StorageUnavailable, aws_error_code

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

CONDITION_FAILED = "ConditionalCheckFailed"
BATCH_GET_KEYS = 100  # BatchGetItem's limit per request
_BATCH_GET_ROUNDS = 10  # unprocessed keys asked again at most this often


def serialize(item: dict[str, Any]) -> dict[str, Any]:
    return {key: _serializer.serialize(value) for key, value in item.items()}


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    return {key: _deserializer.deserialize(value) for key, value in item.items()}


def _unavailable(exc: Exception, what: str) -> StorageUnavailable:
    return StorageUnavailable(f"could not {what} ({aws_error_code(exc) or 'error'}); retry")


class TransactionCancelled(Exception):
    """A TransactWriteItems that DynamoDB cancelled: one reason code per item, in item order (padded
    with "None" when DynamoDB gave fewer), and the item a failed condition returned
    (ReturnValuesOnConditionCheckFailure), if any."""

    def __init__(self, codes: list[str], items: list[dict[str, Any] | None]) -> None:
        super().__init__(", ".join(codes))
        self.codes = codes
        self.items = items

    @property
    def condition_failed(self) -> bool:
        return CONDITION_FAILED in self.codes


def transact(dynamodb_client: Any, items: list[dict[str, Any]], what: str) -> None:
    """One TransactWriteItems: TransactionCancelled when DynamoDB cancels it, StorageUnavailable
    ("could not <what>") for any other failure."""
    try:
        dynamodb_client.transact_write_items(TransactItems=items)
    except AWS_CALL_ERRORS as exc:
        if aws_error_code(exc) != "TransactionCanceledException":
            raise _unavailable(exc, what) from exc
        reasons = list(getattr(exc, "response", {}).get("CancellationReasons") or [])
        reasons += [{}] * (len(items) - len(reasons))
        codes = [str(reason.get("Code", "None")) for reason in reasons] or ["Unknown"]
        raise TransactionCancelled(codes, [reason.get("Item") for reason in reasons] or [None]) from exc


def query(dynamodb_client: Any, params: dict[str, Any], what: str) -> dict[str, Any]:
    """One Query page; StorageUnavailable ("could not <what>") when the call fails."""
    try:
        response: dict[str, Any] = dynamodb_client.query(**params)
    except AWS_CALL_ERRORS as exc:
        raise _unavailable(exc, what) from exc
    return response


def query_pages(dynamodb_client: Any, params: dict[str, Any], what: str) -> Iterator[dict[str, Any]]:
    """Every page of a Query, following LastEvaluatedKey (params are not changed)."""
    request = dict(params)
    while True:
        response = query(dynamodb_client, request, what)
        yield response
        if "LastEvaluatedKey" not in response:
            return
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def batch_get(
    dynamodb_client: Any,
    table: str,
    keys: list[dict[str, Any]],
    what: str,
    consistent: bool,
    projection: str | None = None,
) -> list[dict[str, Any]]:
    """BatchGetItem of distinct `keys` in requests of 100, unprocessed keys asked again (ten times
    at most); `what` names the items in errors."""
    found: list[dict[str, Any]] = []
    for start in range(0, len(keys), BATCH_GET_KEYS):
        request: dict[str, Any] = {table: {"Keys": keys[start : start + BATCH_GET_KEYS], "ConsistentRead": consistent}}
        if projection:
            request[table]["ProjectionExpression"] = projection
        attempts = 0
        while request:
            try:
                response = dynamodb_client.batch_get_item(RequestItems=request)
            except AWS_CALL_ERRORS as exc:
                raise StorageUnavailable(f"could not read the {what} ({aws_error_code(exc)})") from exc
            found.extend(response.get("Responses", {}).get(table, []))
            request = response.get("UnprocessedKeys") or {}
            attempts += 1
            if request and attempts > _BATCH_GET_ROUNDS:
                raise StorageUnavailable(f"{what} reads kept coming back unprocessed")
    return found
