"""Reconcile input rules and reading a raw key back into its row's key."""

from __future__ import annotations

import pytest
from evreplay.reconcile.reconciler import InvalidReconcileRequest, parse_raw_key, parse_reconcile_request
from evreplay.store.index import occurrence_sk
from evreplay.store.raw import raw_key


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"start_day": "2025-12-29", "end_day": "2025-12-28"}, "end_day"),
        ({"start_day": "2025-01-01", "end_day": "2025-02-01"}, "end_day"),
        ({"start_day": "2025-02-30", "end_day": "2025-03-01"}, "start_day"),
        ({"start_day": "2025-02-01", "end_day": "2025-13-01"}, "end_day"),
        ({"start_day": "28.12.2025", "end_day": "2025-12-28"}, "start_day"),
        ({"end_day": "2025-12-28"}, "start_day"),
        ({"start_day": "2025-12-28", "end_day": "2025-12-28", "repair": "yes"}, "repair"),
        ({"start_day": "2025-12-28", "end_day": "2025-12-28", "dry": True}, "dry"),
    ],
)
def test_reconcile_request_bad_input_names_the_field(body: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidReconcileRequest) as raised:
        parse_reconcile_request(body, max_days=31)
    assert raised.value.field == field


def test_reconcile_request_takes_max_days_inclusive() -> None:
    request = parse_reconcile_request({"start_day": "2025-12-01", "end_day": "2025-12-31"}, max_days=31)
    assert (request.repair, len(request.days()), request.days()[-1]) == (False, 31, "2025-12-31")


@pytest.mark.parametrize("entity_id", ["user_123", "a/b%c~d..", "ü" * 10, "x" * 256])
def test_raw_key_reads_back_into_the_row_key(entity_id: str) -> None:
    event_time, event_id, arrival = (
        "2025-12-28T22:59:59.250000Z",
        "order_1:a.b-c",
        "20251228T230000123456-0123456789abcdef",
    )
    parts = parse_raw_key(raw_key("ios_app", "purchase", entity_id, event_time, event_id, arrival))
    assert parts is not None
    assert parts.sk() == occurrence_sk(event_time, event_id, arrival)
    # A long entity is cut and hashed in the key: the reconciler reads it from the object instead.
    assert parts.entity_id == (None if len(entity_id) > 40 else entity_id)


@pytest.mark.parametrize(
    "key", ["raw/x.json", "manifests/a/b/c/d/e.json", "raw/source=a/event_type=b/event_date=c/entity=d/e.json"]
)
def test_keys_ingest_never_writes_are_not_read_as_events(key: str) -> None:
    assert parse_raw_key(key) is None
