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
from evreplay.store.index import EventIndex
from evreplay.store.raw import RawStore

from tests.builders import RECONCILE_DAY
from tests.faults import fast_retries, faults  # noqa: F401  (fixtures)
from tests.stacks import Reconcile, Stack


@pytest.fixture
def reconcile(stack: Stack) -> Reconcile:
    """Run the reconcile core over a day range the way the workflow does (list the partitions, run
    each partition's reconciler until done) and return the summed result."""

    def run(
        start_day: str = RECONCILE_DAY,
        end_day: str = RECONCILE_DAY,
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
