"""evreplay.ingest.metrics: a bounded `reason`, and EMF documents CloudWatch accepts (<= 100 values
of a metric in one document)."""

from __future__ import annotations

import json

import pytest
from evreplay.core.errors import InvalidRequest, PayloadTooLarge
from evreplay.ingest.metrics import REASONS, IngestMetrics, rejection_reason


@pytest.mark.parametrize(
    ("field", "reason"),
    [
        ("event_time", "event_time"),
        ("events[12].entity_id", "entity_id"),
        ("payload.amount", "payload"),
        ("events[3]", "body"),
        ("body", "body"),
        (None, "body"),
        ("Idempotency-Key", "idempotency_key"),
        ("colour", "unknown_field"),
        ("events[0].🙂" * 50, "unknown_field"),
    ],
)
def test_rejection_reason_is_one_of_a_fixed_set(field: str | None, reason: str) -> None:
    assert rejection_reason(InvalidRequest("x", field=field)) == reason
    assert reason in REASONS


def test_an_oversized_body_has_its_own_reason() -> None:
    assert rejection_reason(PayloadTooLarge("too big", field="body")) == "body_too_large"


def test_a_large_batch_of_one_stream_is_split_into_documents_of_at_most_100_values(
    capsys: pytest.CaptureFixture[str],
) -> None:
    metrics = IngestMetrics()
    for lag in range(250):
        metrics.stored("pos", "sale", lag, duplicate=lag % 2 == 0)

    metrics.flush()

    docs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    values = {
        name: [v for doc in docs for v in doc.get(name, [])]
        for name in ("IngestCount", "IngestLagMs", "DuplicateCount")
    }
    assert len(values["IngestCount"]) == 250 and len(values["DuplicateCount"]) == 125
    assert sorted(values["IngestLagMs"]) == [float(lag) for lag in range(250)]
    assert all(len(doc[name]) <= 100 for doc in docs for name in values if name in doc)
    assert all(doc["source"] == "pos" and doc["event_type"] == "sale" for doc in docs)
    # flushed means gone: a second flush writes nothing
    metrics.flush()
    assert capsys.readouterr().out == ""
