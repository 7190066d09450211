"""Reconcile on moto: events ingested through the real API (the local gateway), objects left without
a row by failing the index write with the fault harness, and the index compared item by item."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from evreplay.core import clients
from evreplay.reconcile.reconciler import (
    PartitionReconciler,
    ReconcileRequest,
    list_partitions,
    result_document,
)
from evreplay.store.dynamo import deserialize
from evreplay.store.index import EventIndex
from evreplay.store.raw import RawStore

from tests.conftest import Stack
from tests.faults import ALWAYS, INTERNAL, Faults, fast_retries, faults  # noqa: F401  (fixtures)
from tests.functional.replay.conftest import workflow  # noqa: F401  (fixture)

DAY = "2025-12-28"


def event(entity_id: str, event_time: str, event_id: str | None = None, **payload: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "source": "ios_app",
        "event_type": "purchase",
        "entity_id": entity_id,
        "event_time": event_time,
        "payload": payload or {"amount": 1},
    }
    if event_id is not None:
        body["event_id"] = event_id
    return body


def post(stack: Stack, body: dict[str, Any]) -> dict[str, Any]:
    response = stack.gateway.request("POST", "/events", body)
    assert response.status == 201, response.body
    return dict(response.json())


def post_unindexed(stack: Stack, injector: Faults, body: dict[str, Any]) -> str:
    """POST an event whose index write fails on every attempt: the raw object stays, no row (503).
    Returns the key of the object it left."""
    before = set(stack.raw_keys())
    injector.inject("dynamodb", "TransactWriteItems", INTERNAL, times=ALWAYS)
    try:
        response = stack.gateway.request("POST", "/events", body)
    finally:
        injector.clear()
    assert response.status == 503, response.body
    (left,) = set(stack.raw_keys()) - before
    return left


def index_items(stack: Stack) -> dict[tuple[str, str], dict[str, Any]]:
    """Every item of the index table (rows and registry), plain values, by (pk, sk)."""
    return {(item["pk"], item["sk"]): item for item in map(deserialize, stack.table_items(stack.index_table))}


def rows(stack: Stack) -> dict[str, dict[str, Any]]:
    """Occurrence rows by s3_key."""
    return {item["s3_key"]: item for item in index_items(stack).values() if item["sk"].startswith("T#")}


def empty_index(stack: Stack) -> None:
    for item in stack.table_items(stack.index_table):
        stack.dynamodb.delete_item(TableName=stack.index_table, Key={"pk": item["pk"], "sk": item["sk"]})


Reconcile = Callable[..., dict[str, Any]]


@pytest.fixture
def reconcile(stack: Stack) -> Reconcile:
    """Run the reconcile core over a day range the way the workflow does (list the partitions, run
    each partition's reconciler until done) and return the summed result."""

    def run(
        start_day: str = DAY,
        end_day: str = DAY,
        repair: bool = False,
        page_size: int = 1000,
        pages_per_task: int = 20,
        order: Callable[[list[Any]], list[Any]] = list,
    ) -> dict[str, Any]:
        request = ReconcileRequest(start_day, end_day, repair)
        reconciler = PartitionReconciler(
            clients.s3(),
            RawStore(clients.s3(), stack.bucket),
            EventIndex(clients.dynamodb(), stack.index_table),
            page_size,
            pages_per_task,
        )
        parts = []
        for partition in order(list_partitions(clients.s3(), stack.bucket, request)):
            state: dict[str, Any] = {"partition": partition.as_dict(), "repair": repair}
            while not state.get("done"):
                state = reconciler.run(state)
            parts.append(state)
        return result_document(request.as_dict(), len(parts), parts)

    return run
