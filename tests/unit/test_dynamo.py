"""The one DynamoDB layer (evreplay.store.dynamo) against stubbed clients: cancellation reasons read
once, other failures as StorageUnavailable, BatchGetItem in requests of 100 with unprocessed keys
asked again, Query pages followed."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from evreplay.core.errors import StorageUnavailable
from evreplay.store import dynamo


def error(code: str, **response: Any) -> ClientError:
    return ClientError({"Error": {"Code": code}, **response}, "Operation")


class Failing:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def transact_write_items(self, TransactItems: list[dict[str, Any]]) -> None:
        raise self.exc

    def query(self, **params: Any) -> None:
        raise self.exc


def test_transact_cancellation_gives_each_item_its_code_and_returned_item():
    # GIVEN a transaction of three items whose second item's condition failed (two reasons only)
    marker = {"pk": {"S": "p"}, "seq": {"N": "3"}}
    exc = error(
        "TransactionCanceledException",
        CancellationReasons=[{"Code": "None"}, {"Code": "ConditionalCheckFailed", "Item": marker}],
    )
    # WHEN it runs THEN the codes are in item order, padded, with the item the condition returned
    with pytest.raises(dynamo.TransactionCancelled) as caught:
        dynamo.transact(Failing(exc), [{}, {}, {}], "write things")
    assert caught.value.codes == ["None", "ConditionalCheckFailed", "None"]
    assert caught.value.items == [None, marker, None]
    assert caught.value.condition_failed


def test_transact_other_failure_is_storage_unavailable_naming_what():
    with pytest.raises(StorageUnavailable, match=r"could not write things \(ThrottlingException\)"):
        dynamo.transact(Failing(error("ThrottlingException")), [{}], "write things")


def test_query_failure_is_storage_unavailable_naming_what():
    with pytest.raises(StorageUnavailable, match=r"could not list things \(InternalServerError\)"):
        list(dynamo.query_pages(Failing(error("InternalServerError")), {"TableName": "T"}, "list things"))


def test_query_pages_follow_last_evaluated_key_without_changing_params():
    asked: list[dict[str, Any]] = []

    class Paged:
        def query(self, **params: Any) -> dict[str, Any]:
            asked.append(params)
            if "ExclusiveStartKey" not in params:
                return {"Items": [1], "LastEvaluatedKey": {"k": 1}}
            return {"Items": [2]}

    params = {"TableName": "T"}
    pages = list(dynamo.query_pages(Paged(), params, "read"))
    assert [page["Items"] for page in pages] == [[1], [2]]
    assert asked[1]["ExclusiveStartKey"] == {"k": 1} and params == {"TableName": "T"}


def test_batch_get_asks_in_hundreds_and_again_for_unprocessed_keys():
    # GIVEN 150 keys and a client that leaves the first key of each request unprocessed once
    requests: list[list[dict[str, Any]]] = []

    class Batch:
        def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
            keys = RequestItems["T"]["Keys"]
            requests.append(keys)
            if len(keys) > 1:
                return {"Responses": {"T": keys[1:]}, "UnprocessedKeys": {"T": {"Keys": keys[:1]}}}
            return {"Responses": {"T": keys}}

    keys = [{"pk": {"S": str(i)}} for i in range(150)]
    # WHEN they are read THEN every key comes back once, in requests of at most 100
    found = dynamo.batch_get(Batch(), "T", keys, "things", consistent=True)
    assert sorted(int(item["pk"]["S"]) for item in found) == list(range(150))
    assert [len(request) for request in requests] == [100, 1, 50, 1]


def test_batch_get_gives_up_when_keys_stay_unprocessed():
    class Stuck:
        def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
            return {"Responses": {}, "UnprocessedKeys": RequestItems}

    with pytest.raises(StorageUnavailable, match="things reads kept coming back unprocessed"):
        dynamo.batch_get(Stuck(), "T", [{"pk": {"S": "a"}}], "things", consistent=False)


def test_items_round_trip_through_serialize():
    plain = {"pk": "E#a", "n": 3, "flag": True, "tags": ["x"]}
    assert dynamo.deserialize(dynamo.serialize(plain)) == plain
