"""evreplay.local.moto_patches: pinned to its moto, loud when moto moves, and every replacement of a
moto internal answers exactly what moto's own code answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import moto
import moto.dynamodb.models as dynamodb_models
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


def test_dynamodb_patches_answer_exactly_what_moto_answers(monkeypatch):
    patched_answers = dynamodb_scenario()
    originals: dict[str, Callable[..., Any]] = moto_patches._originals
    monkeypatch.setattr(dynamodb_table.Table, "query", originals["dynamodb.Table.query"])
    monkeypatch.setattr(dynamodb_responses.DynamoHandler, "serialized", originals["dynamodb.serialized"])
    monkeypatch.setattr(
        dynamodb_models.DynamoDBBackend, "transact_write_items", originals["dynamodb.transact_write_items"]
    )

    assert dynamodb_scenario() == patched_answers
