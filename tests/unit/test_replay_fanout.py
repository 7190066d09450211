"""The plan of an entity-list or stream replay, and the stream index's keys (docs/design.md §4.11)."""

from __future__ import annotations

import math
from itertools import pairwise

from evreplay.core.times import utc_days
from evreplay.replay.fanout import ITEM_ROWS, MIN_ITEM_ROWS, balanced_item_rows, batch_plan
from evreplay.store.index import STREAM_SHARDS, IndexRow, stream_partitions


def test_plan_reserves_each_entity_a_seq_range_in_entity_id_order():
    items = batch_plan({"b": 3, "a": 2, "c": 1}, item_rows=100)
    assert items == [{"entities": [["a", 0, 2], ["b", 2, 3], ["c", 5, 1]]}]


def test_plan_puts_a_large_entity_alone_and_groups_small_ones():
    counts = {"big": 50, "s1": 4, "s2": 4, "s3": 4, "t": 1}
    items = batch_plan(counts, item_rows=10, item_entities=2)
    assert [[e[0] for e in item["entities"]] for item in items] == [["big"], ["s1", "s2"], ["s3", "t"]]
    ranges = [(base, base + count) for item in items for _, base, count in item["entities"]]
    assert all(end == following for (_, end), (following, _) in pairwise(ranges))
    assert ranges[-1][1] == sum(counts.values())


def test_plan_closes_an_item_once_it_holds_its_rows_so_a_remainder_takes_no_item_of_its_own():
    # GIVEN 10 entities of 3 rows and items of 10 rows: one more entity than fits 10 exactly
    counts = {f"e{n}": 3 for n in range(10)}
    # WHEN planned
    items = batch_plan(counts, item_rows=10)
    # THEN items of 12, 12 and 6 rows (under the old "never past item_rows" rule: 9, 9, 9 and 3, four items)
    assert [sum(count for _, _, count in item["entities"]) for item in items] == [12, 12, 6]


def test_items_are_sized_so_every_round_of_workers_is_full():
    # One round of 40 items when the rows allow, never below the floor, never above ITEM_ROWS.
    assert balanced_item_rows(30_000, 40) == 750
    assert balanced_item_rows(10_000, 40) == MIN_ITEM_ROWS
    assert balanced_item_rows(100, 40) == MIN_ITEM_ROWS
    # 100 000 rows: two full rounds of 40 items of 1 250, not 50 items of 2 000 (a second round of 10).
    assert balanced_item_rows(100_000, 40) == 1_250
    assert balanced_item_rows(1_000_000, 40) <= ITEM_ROWS
    assert math.ceil(1_000_000 / balanced_item_rows(1_000_000, 40)) == 13 * 40
    assert balanced_item_rows(5_000, 1) == 1_667  # one worker: three items, evenly


def test_a_balanced_plan_has_at_most_a_round_of_items_per_round():
    counts = {f"e{n:05d}": 1 + n % 17 for n in range(9_000)}  # uneven entities, 80 937 rows
    total = sum(counts.values())
    items = batch_plan(counts, balanced_item_rows(total, 40))
    assert len(items) <= 80 and sum(count for item in items for _, _, count in item["entities"]) == total


def test_a_window_reads_every_shard_of_every_day_it_touches():
    assert utc_days("2025-12-28T00:00:00.000000Z", "2025-12-29T00:00:00.000000Z") == ["2025-12-28"]
    assert utc_days("2025-12-28T23:00:00.000000Z", "2025-12-29T00:00:00.000001Z") == ["2025-12-28", "2025-12-29"]
    partitions = stream_partitions("ios_app", "2025-12-28T23:00:00.000000Z", "2025-12-30T01:00:00.000000Z")
    assert len(partitions) == 3 * STREAM_SHARDS and partitions[0] == "ios_app#2025-12-28#0"


def test_stream_keys_spread_one_stream_over_the_shards():
    rows = [
        IndexRow("u1", f"e{n}", "2025-12-28T10:00:00.000000Z", f"a{n}", "2025-12-28T10:00:01.000000Z", 1000,
                 "ACCEPTED", "b", "k", "ios_app", "purchase", "0" * 64)
        for n in range(400)
    ]  # fmt: skip
    keys = [row.index_keys() for row in rows]
    assert {key["stream_pk"] for key in keys} == {f"ios_app#2025-12-28#{s}" for s in range(STREAM_SHARDS)}
    assert keys[0]["stream_sk"] == "2025-12-28T10:00:00.000000Z#e0"
