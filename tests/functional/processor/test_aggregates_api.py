"""GET /aggregates: versions of an entity's day, paginated with cursors, bad parameters named."""

from __future__ import annotations

import pytest

from tests.builders import DAY, event_at
from tests.stacks import aggregates, ingest, process, replay_messages


@pytest.fixture
def three_versions(stack):
    ingest(stack, [event_at("pia", 1), event_at("pia", 2, "view")])
    for replay_id in ("r-a", "r-b", "r-c"):
        assert process(stack, replay_messages(stack, "pia", replay_id=replay_id)) == []


def test_lists_versions_one_page_at_a_time(stack, three_versions):
    pages, cursor = [], None
    while True:
        query = {"entity_id": "pia", "day": DAY, "limit": "2", **({"cursor": cursor} if cursor else {})}
        response = stack.gateway.request("GET", "/aggregates", query=query)
        assert response.status == 200
        body = response.json()
        assert set(body) == {"items", "next_cursor"}
        pages.append([item["replay_id"] for item in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            break

    assert pages == [["r-a", "r-b"], ["r-c"]]


def test_every_version_carries_the_contract_fields(stack, three_versions):
    (item, *_) = aggregates(stack, "pia")

    assert {
        "replay_id",
        "entity_id",
        "day",
        "daily_event_count",
        "counts_by_event_type",
        "input_count",
        "inputs_hash",
        "first_event_time",
        "last_event_time",
    } <= set(item)
    assert (item["entity_id"], item["day"], item["counts_by_event_type"]) == ("pia", DAY, {"purchase": 1, "view": 1})


def test_without_day_lists_every_day_and_an_unknown_entity_lists_nothing(stack):
    ingest(stack, [event_at("quin", 1), {**event_at("quin", 2), "event_time": "2025-06-02T08:00:00Z"}])
    assert process(stack, replay_messages(stack, "quin", "r-x", end="2025-06-03T00:00:00.000000Z")) == []

    assert [(item["day"], item["replay_id"]) for item in aggregates(stack, "quin", day=None)] == [
        (DAY, "r-x"),
        ("2025-06-02", "r-x"),
    ]
    assert [item["day"] for item in aggregates(stack, "quin", day="2025-06-02")] == ["2025-06-02"]
    assert aggregates(stack, "nobody") == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({}, "entity_id"),
        ({"entity_id": ""}, "entity_id"),
        ({"entity_id": "pia", "day": "2025-6-1"}, "day"),
        ({"entity_id": "pia", "day": "2025-02-30"}, "day"),
        ({"entity_id": "pia", "limit": "0"}, "limit"),
        ({"entity_id": "pia", "limit": "many"}, "limit"),
        ({"entity_id": "pia", "limit": "100000"}, "limit"),
        ({"entity_id": "pia", "cursor": "%%%"}, "cursor"),
        ({"entity_id": "pia", "cursor": "eyJzayI6ICJNIzIwMjUifQ"}, "cursor"),  # {"sk": "M#2025"}: not a version key
        ({"entity_id": "pia", "dya": DAY}, "dya"),
    ],
)
def test_bad_parameters_are_a_400_naming_the_field(stack, query, field):
    response = stack.gateway.request("GET", "/aggregates", query=query)

    assert response.status == 400
    assert response.json()["error"]["field"] == field
    assert response.json()["error"]["code"] == "InvalidRequest"
