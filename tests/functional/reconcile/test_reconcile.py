"""The reconcile core against moto: missing rows found and indexed exactly as ingest would have,
stale rows backfilled, dangling rows reported and kept, an emptied index rebuilt item for item."""

from __future__ import annotations

import threading
from typing import Any

from evreplay.store.index import (
    ACCEPTED,
    DUP_PK,
    DUP_SK,
    DUPLICATE,
    LAG_PK,
    STREAM_INDEX,
    STREAM_PK,
    STREAM_SK,
    stream_partitions,
)

from tests.builders import RECONCILE_DAY, event
from tests.faults import Faults
from tests.stacks import Reconcile, Stack, empty_index, index_items, post, post_unindexed, rows

NOTHING_TO_DO = {"missing_rows": 0, "stale_rows": 0, "indexed": 0, "backfilled": 0, "statuses_fixed": 0}


def _counts(result: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: result[name] for name in names}


def test_reconcile_finds_an_object_whose_index_write_failed_and_repair_indexes_it_first(
    stack: Stack, faults: Faults, fast_retries: None, reconcile: Reconcile
) -> None:
    # GIVEN a producer whose first POST failed at the index write (503) and who sent it again
    body = event("user_1", "2025-12-28T10:00:00Z", event_id="order-1")
    lost = post_unindexed(stack, faults, body)
    again = post(stack, body)
    post(stack, event("user_1", "2025-12-28T11:00:00Z", event_id="order-2"))
    assert again["status"] == ACCEPTED  # the index never saw the first arrival
    # WHEN a check runs, THEN it finds the object and changes nothing
    check = reconcile()
    assert _counts(check, "objects", "rows", "missing_rows", "indexed", "dangling_rows") == {
        "objects": 3,
        "rows": 2,
        "missing_rows": 1,
        "indexed": 0,
        "dangling_rows": 0,
    }
    assert lost not in rows(stack)
    # WHEN a repair runs, THEN the first arrival is ACCEPTED and the retry becomes its DUPLICATE
    repair = reconcile(repair=True)
    assert _counts(repair, "missing_rows", "indexed", "statuses_fixed") == {
        "missing_rows": 1,
        "indexed": 1,
        "statuses_fixed": 1,
    }
    stored = rows(stack)
    assert stored[lost]["status"] == ACCEPTED and DUP_PK not in stored[lost]
    retried = stored[again["s3_key"]]
    assert retried["status"] == DUPLICATE
    assert retried[DUP_PK] == f"DUP#{again['ingest_time'][:10]}"
    assert retried[DUP_SK] == f"ios_app#{again['ingest_time']}"
    registry = index_items(stack)[("E#user_1", "I#order-1")]
    assert registry["occurrences"] == 2 and registry["first_sk"] == stored[lost]["sk"]
    # AND a second reconcile finds nothing
    assert _counts(reconcile(repair=True), *NOTHING_TO_DO) == NOTHING_TO_DO


def test_repair_orders_arrivals_of_one_event_id_across_partitions_run_in_parallel(
    stack: Stack, faults: Faults, fast_retries: None, reconcile: Reconcile
) -> None:
    # GIVEN one producer event_id stored four times for one entity, on three event days and two
    # streams, the first three arrivals never indexed and the last one indexed (ACCEPTED)
    bodies = [
        event("user_2", "2025-12-28T08:00:00Z", event_id="shared"),
        event("user_2", "2025-12-30T08:00:00Z", event_id="shared"),
        {**event("user_2", "2025-12-29T08:00:00Z", event_id="shared"), "event_type": "refund"},
    ]
    lost = [post_unindexed(stack, faults, body) for body in bodies]
    last = post(stack, event("user_2", "2025-12-29T09:00:00Z", event_id="shared"))
    # WHEN the four partitions are repaired concurrently, latest day first
    results: list[dict[str, Any]] = []
    threads = [
        threading.Thread(target=lambda day=day: results.append(reconcile(day, day, repair=True)))
        for day in ("2025-12-30", "2025-12-29", "2025-12-28")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN the earliest arrival is the one ACCEPTED, every other a DUPLICATE, counted once each
    assert sum(result["indexed"] for result in results) == 3
    stored = rows(stack)
    statuses = [stored[key]["status"] for key in [*lost, last["s3_key"]]]
    assert statuses == [ACCEPTED, DUPLICATE, DUPLICATE, DUPLICATE]
    registry = index_items(stack)[("E#user_2", "I#shared")]
    assert registry["occurrences"] == 4 and registry["first_sk"] == stored[lost[0]]["sk"]
    assert all(DUP_PK in stored[key] for key in [*lost[1:], last["s3_key"]])
    assert _counts(reconcile("2025-12-28", "2025-12-30"), *NOTHING_TO_DO) == NOTHING_TO_DO


def test_repair_backfills_index_keys_missing_from_rows_written_before_the_indexes(
    stack: Stack, reconcile: Reconcile
) -> None:
    # GIVEN rows (one of them a DUPLICATE) stripped of every secondary-index key, as rows written
    # before the investigation GSIs existed are
    for hour in range(3):
        post(stack, event(f"user_{hour}", f"2025-12-28T0{hour}:00:00Z"))
    post(stack, event("user_0", "2025-12-28T00:00:00Z"))
    before = rows(stack)
    for row in before.values():
        stack.dynamodb.update_item(
            TableName=stack.index_table,
            Key={"pk": {"S": row["pk"]}, "sk": {"S": row["sk"]}},
            UpdateExpression="REMOVE lag_pk, dup_pk, dup_sk",
        )
    # WHEN checked, then repaired
    check = reconcile()
    repair = reconcile(repair=True)
    # THEN every row is found stale, then backfilled to exactly what ingest wrote
    assert _counts(check, "rows", "stale_rows", "backfilled", "missing_rows") == {
        "rows": 4,
        "stale_rows": 4,
        "backfilled": 0,
        "missing_rows": 0,
    }
    assert _counts(repair, "stale_rows", "backfilled") == {"stale_rows": 4, "backfilled": 4}
    assert rows(stack) == before
    lag = stack.dynamodb.query(
        TableName=stack.index_table,
        IndexName="LagByTypeDay",
        KeyConditionExpression="lag_pk = :p",
        ExpressionAttributeValues={":p": {"S": f"ios_app#purchase#{RECONCILE_DAY}"}},
    )
    assert lag["Count"] == 4 and all(LAG_PK in row for row in before.values())
    assert _counts(reconcile(repair=True), *NOTHING_TO_DO) == NOTHING_TO_DO


def test_repair_backfills_the_stream_index_keys_of_rows_stored_before_the_stream_index(
    stack: Stack, reconcile: Reconcile
) -> None:
    # GIVEN rows stripped of the stream index's keys, as rows stored before StreamByDay existed are:
    # a whole-stream replay cannot see them
    for hour in range(3):
        post(stack, event(f"user_{hour}", f"2025-12-28T0{hour}:00:00Z"))
    before = rows(stack)
    for row in before.values():
        stack.dynamodb.update_item(
            TableName=stack.index_table,
            Key={"pk": {"S": row["pk"]}, "sk": {"S": row["sk"]}},
            UpdateExpression=f"REMOVE {STREAM_PK}, {STREAM_SK}",
        )

    def stream_rows() -> int:
        return sum(
            stack.dynamodb.query(
                TableName=stack.index_table,
                IndexName=STREAM_INDEX,
                KeyConditionExpression=f"{STREAM_PK} = :p",
                ExpressionAttributeValues={":p": {"S": partition}},
            )["Count"]
            for partition in stream_partitions(
                "ios_app", f"{RECONCILE_DAY}T00:00:00.000000Z", f"{RECONCILE_DAY}T23:59:59.999999Z"
            )
        )

    assert stream_rows() == 0
    # WHEN repaired
    repair = reconcile(repair=True)
    # THEN the rows carry exactly the keys ingest writes today, and the stream index sees them all
    assert _counts(repair, "stale_rows", "backfilled") == {"stale_rows": 3, "backfilled": 3}
    assert rows(stack) == before
    assert stream_rows() == 3
    assert _counts(reconcile(repair=True), *NOTHING_TO_DO) == NOTHING_TO_DO


def test_a_row_whose_object_is_gone_is_reported_dangling_and_kept(stack: Stack, reconcile: Reconcile) -> None:
    # GIVEN two stored events, one of whose objects is removed behind evreplay's back
    kept = post(stack, event("user_1", "2025-12-28T01:00:00Z"))
    gone = post(stack, event("user_2", "2025-12-28T02:00:00Z"))
    stack.s3.delete_object(Bucket=stack.bucket, Key=gone["s3_key"])
    before = index_items(stack)
    # WHEN a repair runs
    result = reconcile(repair=True)
    # THEN the row is reported and left exactly as it was
    assert _counts(result, "objects", "rows", "dangling_rows", "missing_rows", "indexed") == {
        "objects": 1,
        "rows": 2,
        "dangling_rows": 1,
        "missing_rows": 0,
        "indexed": 0,
    }
    assert index_items(stack) == before
    assert kept["s3_key"] in rows(stack) and gone["s3_key"] in rows(stack)
    assert reconcile()["dangling_rows"] == 1


def list_events(stack: Stack) -> dict[str, Any]:
    query = {
        "entity_id": "user_1",
        "start_time": "2025-12-27T00:00:00Z",
        "end_time": "2025-12-30T00:00:00Z",
        "include_duplicates": "true",
    }
    response = stack.gateway.request("GET", "/events", query=query)
    assert response.status == 200, response.body
    return dict(response.json())


def test_an_emptied_index_is_rebuilt_item_for_item(stack: Stack, reconcile: Reconcile) -> None:
    # GIVEN a mix: derived and producer ids, duplicates within and across days, a long Unicode entity
    # (its key holds a hash, so it is read from the object), fractional times, nested payloads
    long_entity = "ünïcode/../" + "x" * 200
    bodies = [
        event("user_1", "2025-12-28T00:00:00.123456+01:00", amount=1.5),
        event("user_1", "2025-12-28T00:00:00.123456+01:00", amount=1.5),
        event("user_1", "2025-12-29T10:00:00Z", event_id="p-1", nested={"a": [1, 2, {"b": None}]}),
        event("user_1", "2025-12-28T23:59:59.999999Z", event_id="p-1"),
        event(long_entity, "2025-12-29T05:00:00Z", event_id="p-2"),
        event(long_entity, "2025-12-29T05:00:00Z", event_id="p-2"),
        {**event("user_2", "2025-12-28T12:00:00Z"), "source": "web", "event_type": "click"},
    ]
    for body in bodies:
        post(stack, body)
    before = index_items(stack)
    listed_before = list_events(stack)
    # WHEN the index is emptied and repaired
    empty_index(stack)
    result = reconcile("2025-12-27", "2025-12-29", repair=True)
    # THEN every row and registry item is back, every attribute equal, and GET /events agrees
    assert _counts(result, "objects", "rows", "missing_rows", "indexed") == {
        "objects": 7,
        "rows": 0,
        "missing_rows": 7,
        "indexed": 7,
    }
    assert index_items(stack) == before
    listed_after = list_events(stack)
    assert listed_after == listed_before and len(listed_after["items"]) == 4
    assert _counts(reconcile("2025-12-27", "2025-12-29", repair=True), *NOTHING_TO_DO) == NOTHING_TO_DO


def test_small_pages_and_short_runs_count_the_same(stack: Stack, reconcile: Reconcile) -> None:
    # GIVEN 7 events in one partition, 2 of their rows removed
    stored = [post(stack, event(f"user_{n % 3}", f"2025-12-28T0{n}:00:00Z")) for n in range(7)]
    for answer in stored[:2]:
        item = rows(stack)[answer["s3_key"]]
        stack.dynamodb.delete_item(TableName=stack.index_table, Key={"pk": {"S": item["pk"]}, "sk": {"S": item["sk"]}})
    # WHEN checked one object per page, one page per run, THEN the counts are those of one big page
    small = reconcile(page_size=1, pages_per_task=1)
    big = reconcile()
    assert small == big
    assert _counts(big, "objects", "rows", "missing_rows") == {"objects": 7, "rows": 5, "missing_rows": 2}


def test_days_outside_the_range_are_not_touched(
    stack: Stack, faults: Faults, fast_retries: None, reconcile: Reconcile
) -> None:
    inside = post_unindexed(stack, faults, event("user_1", "2025-12-28T10:00:00Z"))
    outside = post_unindexed(stack, faults, event("user_1", "2025-12-29T00:00:00Z"))
    result = reconcile(repair=True)
    assert (result["objects"], result["indexed"], result["partitions"]) == (1, 1, 1)
    assert inside in rows(stack) and outside not in rows(stack)
