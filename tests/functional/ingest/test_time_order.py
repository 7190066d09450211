"""Index order equals time order, whatever offsets producers use (docs/design.md §2–3)."""

from __future__ import annotations

import json

from evreplay.core.times import parse_rfc3339

from tests.builders import producer_event
from tests.stacks import index_rows


def test_same_instant_with_three_offsets_is_one_normalized_time(stack, post):
    times = ["2025-12-28T22:59:59.250Z", "2025-12-28T23:59:59.250+01:00", "2025-12-28T17:29:59.250-05:30"]

    bodies = [post(producer_event(event_time=t, event_id=f"id-{i}")).json() for i, t in enumerate(times)]

    assert {b["event_time"] for b in bodies} == {"2025-12-28T22:59:59.250000Z"}
    assert {row["event_time"] for row in index_rows(stack)} == {"2025-12-28T22:59:59.250000Z"}


def test_same_content_with_different_offsets_gets_the_same_derived_id(stack, post):
    first = post(producer_event(event_time="2025-12-28T22:59:59.250Z")).json()
    second = post(producer_event(event_time="2025-12-28T17:29:59.250-05:30")).json()

    assert first["event_id"] == second["event_id"]
    assert second["status"] == "DUPLICATE"


def test_index_order_is_time_order_across_offsets(stack, post):
    # GIVEN events whose local clock order differs from their real order
    times = [
        "2025-06-01T10:00:00+05:00",  # 05:00Z
        "2025-06-01T01:00:00-03:00",  # 04:00Z
        "2025-06-01T04:30:00Z",  # 04:30Z
        "2025-06-01T06:00:00.000001+01:00",  # 05:00:00.000001Z
        "2025-05-31T23:59:59.999999-05:00",  # 04:59:59.999999Z
    ]
    for i, t in enumerate(times):
        post(producer_event(event_time=t, event_id=f"e{i}"))

    # WHEN the index partition is read in key order
    rows = index_rows(stack)

    # THEN it is ordered by the real instant
    assert [row["event_time"] for row in rows] == sorted(row["event_time"] for row in rows)
    order = [row["event_id"] for row in rows]
    assert order == [f"e{i}" for i in sorted(range(len(times)), key=lambda i: parse_rfc3339(times[i]))]


def test_metrics_are_emitted_as_emf(stack, post, capsys):
    post(producer_event())
    post(producer_event())
    post(producer_event(source="bad source"))

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    names = {metric["Name"] for line in lines for d in line["_aws"]["CloudWatchMetrics"] for metric in d["Metrics"]}
    assert {"IngestCount", "DuplicateCount", "IngestLagMs", "InvalidCount"} <= names
    assert all(d["Namespace"] == "EvReplay" for line in lines for d in line["_aws"]["CloudWatchMetrics"])
    assert sum(sum(line.get("IngestCount", [])) for line in lines) == 2
