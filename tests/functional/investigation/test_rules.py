"""The investigation rules as plain functions (no AWS): percentiles, histogram, LOW/EMPTY flags,
bucket grids; and the template's indexes and policy matching what the code queries."""

from __future__ import annotations

import math

from evreplay.investigation.stats import BucketGrid, GapsQuery, flag_buckets, lag_histogram, nearest_rank
from evreplay.store.index import DUP_PK, DUP_SK, DUPLICATES_INDEX, LAG_INDEX, LAG_PK, LAG_SK
from hypothesis import given
from hypothesis import strategies as st


@given(st.lists(st.integers(min_value=-86_400_000, max_value=10**10), min_size=1, max_size=200), st.integers(1, 100))
def test_nearest_rank_is_the_smallest_value_covering_p_percent(values, p):
    ordered = sorted(values)
    value = nearest_rank(ordered, p)

    # at least p% of the values are <= it, and fewer than p% are < it
    assert sum(v <= value for v in ordered) * 100 >= p * len(ordered)
    assert sum(v < value for v in ordered) * 100 < p * len(ordered)
    assert value == ordered[math.ceil(p * len(ordered) / 100) - 1]


def test_nearest_rank_of_nothing_is_none():
    assert nearest_rank([], 50) is None


def test_histogram_bounds_are_inclusive_and_future_events_land_first():
    histogram = lag_histogram([-5000, 1000, 1001, 86_400_000, 86_400_001])

    assert [(b["le_ms"], b["count"]) for b in histogram] == [
        (1000, 2),
        (10_000, 1),
        (60_000, 0),
        (600_000, 0),
        (3_600_000, 0),
        (21_600_000, 0),
        (86_400_000, 1),
        (None, 1),
    ]


def test_day_buckets_use_the_seven_days_before():
    starts = [f"2025-06-{day:02d}" for day in range(1, 11)]
    counts = [100, 100, 100, 100, 100, 100, 100, 49, 50, 0]

    items = flag_buckets(starts, counts, "day")

    # 49 < 50% of 100: LOW; 50 is not below it; 0 is EMPTY whatever the median
    assert [item["flag"] for item in items] == [None] * 7 + ["LOW", None, "EMPTY"]
    # day 10 looks back at days 3-9 only (seven days): 100 x5, 49, 50
    assert items[9]["trailing_median"] == 100.0
    assert [item["trailing_median"] for item in items[:3]] == [None, None, None]


def test_bucket_grid_floors_the_start_and_covers_the_end():
    grid = BucketGrid.of(GapsQuery("e", "2025-06-01T04:30:00.000000Z", "2025-06-01T06:00:00.000001Z", "hour"))

    assert grid.count == 3  # 04:00, 05:00 and the microsecond of 06:00
    assert (grid.lower(0).isoformat(), grid.upper(2).isoformat()) == (
        "2025-06-01T04:30:00+00:00",
        "2025-06-01T06:00:00.000001+00:00",
    )


def test_template_defines_the_indexes_the_code_queries(template):
    table = template.properties("EventIndexTable")
    indexes = {index["IndexName"]: index for index in table["GlobalSecondaryIndexes"]}

    assert [(k["AttributeName"], k["KeyType"]) for k in indexes[LAG_INDEX]["KeySchema"]] == [
        (LAG_PK, "HASH"),
        (LAG_SK, "RANGE"),
    ]
    assert [(k["AttributeName"], k["KeyType"]) for k in indexes[DUPLICATES_INDEX]["KeySchema"]] == [
        (DUP_PK, "HASH"),
        (DUP_SK, "RANGE"),
    ]
    types = {d["AttributeName"]: d["AttributeType"] for d in table["AttributeDefinitions"]}
    assert (types[LAG_PK], types[LAG_SK], types[DUP_PK], types[DUP_SK]) == ("S", "N", "S", "S")


def test_investigation_function_may_only_query_the_index_table_and_its_indexes(template):
    statements = [
        statement
        for policy in template.properties("InvestigationApiFunctionRole")["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
    ]
    table_arn = template.get_att("EventIndexTable", "Arn")

    assert [template.resolve(statement["Action"]) for statement in statements] == ["dynamodb:Query"]
    assert sorted(template.resolve(statements[0]["Resource"])) == sorted(
        [table_arn, f"{table_arn}/index/{DUPLICATES_INDEX}", f"{table_arn}/index/{LAG_INDEX}"]
    )
    environment = template.function_environment("InvestigationApiFunction")
    assert {name: value for name, value in environment.items() if not name.startswith("POWERTOOLS_")} == {
        "INDEX_TABLE": template.ref("EventIndexTable")
    }
