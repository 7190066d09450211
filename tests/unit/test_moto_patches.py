"""evreplay.local.moto_patches: pinned to its moto, loud when moto moves, and every replacement of a
moto internal answers exactly what moto's own code answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import moto
import moto.dynamodb.models as dynamodb_models
import moto.dynamodb.models.dynamo_type as dynamodb_type
import moto.dynamodb.models.table as dynamodb_table
import moto.dynamodb.responses as dynamodb_responses
import moto.sqs.models as sqs_models
import pytest
from evreplay.local import moto_patches
from evreplay.local.template import Template
from moto import mock_aws


@pytest.fixture(scope="module", autouse=True)
def patched() -> None:
    moto_patches.apply(Template())


def test_apply_is_idempotent():
    invoke = moto.awslambda_simple.models.LambdaSimpleBackend.invoke

    moto_patches.apply(Template())

    assert moto.awslambda_simple.models.LambdaSimpleBackend.invoke is invoke
    assert moto_patches.applied()


def test_another_moto_version_fails_loudly(monkeypatch):
    monkeypatch.setattr(moto, "__version__", "9.9.9")

    with pytest.raises(moto_patches.MotoPatchError, match=r"9\.9\.9"):
        moto_patches.apply(Template())


def test_a_moved_internal_fails_loudly(monkeypatch):
    monkeypatch.delattr(sqs_models, "unix_time_millis")

    with pytest.raises(moto_patches.MotoPatchError, match="unix_time_millis"):
        moto_patches.check()


def key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def dynamodb_scenario() -> list[Any]:
    """Queries, item reads and transactions (one cancelled) on a fresh moto; every answer."""
    answers: list[Any] = []
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(
            TableName="t",
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            BillingMode="PAY_PER_REQUEST",
        )
        for i in range(12):
            item = {
                **key("a" if i % 3 else "b", f"T#{i:02d}"),
                "n": {"N": str(i)},
                "m": {"M": {"l": {"L": [{"NULL": True}]}}},
            }
            ddb.put_item(TableName="t", Item=item)
        ddb.put_item(TableName="t", Item={**key("a", "I#x"), "bin": {"B": b"\x00\xff"}})
        queries: list[dict[str, Any]] = [
            {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "a"}}, "Limit": 3},
            {"KeyConditionExpression": "pk = :p AND sk BETWEEN :lo AND :hi", "Limit": 2,
             "ExpressionAttributeValues": {":p": {"S": "a"}, ":lo": {"S": "T#02"}, ":hi": {"S": "T#09"}},
             "ExclusiveStartKey": key("a", "T#04")},
            {"KeyConditionExpression": "pk = :p AND begins_with(sk, :t)", "ScanIndexForward": False,
             "ExpressionAttributeValues": {":p": {"S": "a"}, ":t": {"S": "T#"}}, "ProjectionExpression": "sk"},
            {"KeyConditionExpression": "pk = :p AND sk > :t", "FilterExpression": "n > :n",
             "ExpressionAttributeValues": {":p": {"S": "a"}, ":t": {"S": "T#05"}, ":n": {"N": "7"}}},
            {"KeyConditionExpression": "pk = :p AND sk < :t", "Limit": 8,
             "ExpressionAttributeValues": {":p": {"S": "a"}, ":t": {"S": "T#"}}},
            {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "nobody"}}},
        ]  # fmt: skip
        for query in queries:
            answers.append(ddb.query(TableName="t", **query))
        answers.append(ddb.batch_get_item(RequestItems={"t": {"Keys": [key("a", "I#x"), key("b", "T#00")]}}))
        ok = [{"Put": {"TableName": "t", "Item": key("c", "1")}}, {"Update": {"TableName": "t", "Key": key("a", "T#01"),
               "UpdateExpression": "SET n = :v", "ExpressionAttributeValues": {":v": {"N": "100"}}}}]  # fmt: skip
        answers.append(ddb.transact_write_items(TransactItems=ok))
        cancelled = [{"Put": {"TableName": "t", "Item": key("c", "2")}},
                     {"Put": {"TableName": "t", "Item": key("c", "1"), "ConditionExpression": "attribute_not_exists(pk)"}}]  # fmt: skip
        try:
            ddb.transact_write_items(TransactItems=cancelled)
        except ddb.exceptions.TransactionCanceledException as exc:
            answers.append(exc.response["CancellationReasons"])
        answers.append(ddb.scan(TableName="t")["Items"])
    for answer in answers:
        if isinstance(answer, dict):
            answer.pop("ResponseMetadata", None)
    return answers


def moto_dynamodb_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """Put moto's own code back where the DynamoDB patches replaced it (for this test)."""
    originals: dict[str, Callable[..., Any]] = moto_patches._originals
    monkeypatch.setattr(dynamodb_table.Table, "query", originals["dynamodb.Table.query"])
    monkeypatch.setattr(dynamodb_responses.DynamoHandler, "serialized", originals["dynamodb.serialized"])
    monkeypatch.setattr(
        dynamodb_models.DynamoDBBackend, "transact_write_items", originals["dynamodb.transact_write_items"]
    )
    monkeypatch.setattr(dynamodb_type.Item, "__init__", originals["dynamodb.Item.__init__"])


def test_dynamodb_patches_answer_exactly_what_moto_answers(monkeypatch):
    patched_answers = dynamodb_scenario()
    moto_dynamodb_code(monkeypatch)

    assert dynamodb_scenario() == patched_answers


def index_scenario() -> list[Any]:
    """Global secondary index queries (INCLUDE, KEYS_ONLY and ALL projections, ties on the index's range
    key, items missing it, every page of a paged read) and item writes at the size limit; every answer."""
    answers: list[Any] = []
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        names = ("pk", "sk", "gpk", "gsk")
        ddb.create_table(
            TableName="t",
            AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in names],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            GlobalSecondaryIndexes=[
                {"IndexName": name, "Projection": projection,
                 "KeySchema": [{"AttributeName": "gpk", "KeyType": "HASH"}, {"AttributeName": "gsk", "KeyType": "RANGE"}]}
                for name, projection in (
                    ("include", {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["x", "s"]}),
                    ("keys", {"ProjectionType": "KEYS_ONLY"}),
                    ("all", {"ProjectionType": "ALL"}),
                )
            ],
            BillingMode="PAY_PER_REQUEST",
        )  # fmt: skip
        for i in range(40):
            item: dict[str, Any] = {**key(f"e{i % 7}", f"T#{i:02d}"), "gpk": {"S": f"g{i % 3}"}, "s": {"S": f"v{i}"}}
            if i % 5:
                item["gsk"] = {"S": f"2025-06-01T{i % 4:02d}"}  # ties: ordered by the table's keys
            item["x"] = {"N": str(i)} if i % 2 else {"M": {"l": {"L": [{"S": "a"}, {"NULL": True}]}}}
            ddb.put_item(TableName="t", Item=item)
        queries: list[dict[str, Any]] = [
            {"IndexName": "include", "KeyConditionExpression": "gpk = :p", "ExpressionAttributeValues": {":p": {"S": "g1"}}},
            {"IndexName": "include", "KeyConditionExpression": "gpk = :p AND gsk BETWEEN :lo AND :hi",
             "ExpressionAttributeValues": {":p": {"S": "g0"}, ":lo": {"S": "2025-06-01T01"}, ":hi": {"S": "2025-06-01T02"}},
             "ProjectionExpression": "pk, s"},
            {"IndexName": "keys", "KeyConditionExpression": "gpk = :p AND begins_with(gsk, :t)", "ScanIndexForward": False,
             "ExpressionAttributeValues": {":p": {"S": "g2"}, ":t": {"S": "2025"}}},
            {"IndexName": "all", "KeyConditionExpression": "gpk = :p AND gsk > :t", "FilterExpression": "s <> :s",
             "ExpressionAttributeValues": {":p": {"S": "g1"}, ":t": {"S": "2025-06-01T00"}, ":s": {"S": "v7"}}},
            {"IndexName": "all", "KeyConditionExpression": "gpk = :p", "ProjectionExpression": "x, s",
             "ExpressionAttributeValues": {":p": {"S": "g2"}}},
            {"IndexName": "include", "KeyConditionExpression": "gpk = :p", "ExpressionAttributeValues": {":p": {"S": "none"}}},
        ]  # fmt: skip
        for query in queries:
            answers.append(ddb.query(TableName="t", **query))
        for forward in (True, False):
            paged = {"IndexName": "include", "KeyConditionExpression": "gpk = :p AND gsk <= :t", "Limit": 3,
                     "ScanIndexForward": forward, "ExpressionAttributeValues": {":p": {"S": "g0"}, ":t": {"S": "2025-06-01T02"}}}  # fmt: skip
            while True:
                page = ddb.query(TableName="t", **paged)
                answers.append(page)
                if "LastEvaluatedKey" not in page:
                    break
                paged["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        for size in (1_000, 399_000, 404_990, 405_100):
            try:
                ddb.put_item(TableName="t", Item={**key("big", str(size)), "b": {"S": "x" * size}})
                answers.append(len(ddb.get_item(TableName="t", Key=key("big", str(size)))["Item"]["b"]["S"]))
            except ddb.exceptions.ClientError as exc:
                answers.append(exc.response["Error"])
    for answer in answers:
        if isinstance(answer, dict):
            answer.pop("ResponseMetadata", None)
    return answers


def test_index_queries_and_item_sizes_answer_exactly_what_moto_answers(monkeypatch):
    patched_answers = index_scenario()
    moto_dynamodb_code(monkeypatch)

    assert index_scenario() == patched_answers
    assert any(isinstance(answer, dict) and answer.get("Code") == "ValidationException" for answer in patched_answers)
