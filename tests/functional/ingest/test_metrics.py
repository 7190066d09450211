"""Ingest metrics as CloudWatch receives them: EMF documents on stdout, one per stream (source,
event_type) and per rejection reason, each under the service total and its own dimensions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.builders import DROP, producer_event

STREAM = [["service"], ["service", "source", "event_type"]]
REASON = [["service"], ["service", "reason"]]


def documents(captured: str) -> list[dict[str, Any]]:
    lines = (json.loads(line) for line in captured.splitlines() if line.startswith('{"_aws"'))
    return [doc for doc in lines if doc["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "EvReplay"]


def by_dimensions(docs: list[dict[str, Any]], *names: str) -> dict[tuple[str, ...], dict[str, Any]]:
    return {tuple(doc[name] for name in names): doc for doc in docs if all(name in doc for name in names)}


def test_a_batch_emits_each_stream_under_the_total_and_its_own_dimensions(
    post, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a batch mixing two streams, a duplicate and two rejects
    batch = [
        producer_event(event_id="a"),
        producer_event(event_id="a"),
        producer_event(source="web", event_type="view", event_id="b"),
        producer_event(event_time="yesterday"),
        producer_event(colour="red"),
    ]

    response = post({"events": batch}, path="/events/batch")

    # THEN one document per stream, IngestLagMs as one value per event, duplicates counted
    assert response.status == 200
    docs = documents(capsys.readouterr().out)
    streams = by_dimensions(docs, "source", "event_type")
    assert set(streams) == {("ios_app", "purchase"), ("web", "view")}
    ios = streams[("ios_app", "purchase")]
    assert ios["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == STREAM and ios["service"] == "evreplay"
    assert ios["IngestCount"] == [1.0, 1.0] and len(ios["IngestLagMs"]) == 2 and ios["DuplicateCount"] == [1.0]
    assert streams[("web", "view")]["IngestCount"] == [1.0] and "DuplicateCount" not in streams[("web", "view")]
    # ...and each reject under its bounded reason, never the client's own field name
    reasons = by_dimensions(docs, "reason")
    assert set(reasons) == {("event_time",), ("unknown_field",)}
    assert all(doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == REASON for doc in reasons.values())


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (producer_event(source=DROP), "source"),
        (producer_event(payload=[1]), "payload"),
        ("x" * (2 * 1024 * 1024), "body_too_large"),
    ],
    ids=["missing source", "payload not an object", "body too large"],
)
def test_a_rejected_event_counts_its_reason(post, capsys: pytest.CaptureFixture[str], body: Any, reason: str) -> None:
    response = post(body)

    assert response.status in (400, 413)
    (doc,) = by_dimensions(documents(capsys.readouterr().out), "reason").values()
    assert doc["reason"] == reason and doc["InvalidCount"] == [1.0]
