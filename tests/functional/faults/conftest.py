"""Fault-injection fixtures (tests/faults.py) and what every fault test checks afterwards."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from evreplay.store.dynamo import deserialize

from tests.conftest import Stack, deployed_stack
from tests.faults import fast_retries, faults  # noqa: F401  (fixtures)


@pytest.fixture(scope="module")
def module_stack() -> Iterator[Stack]:
    """One deployment for a whole module of fault cells (deploying costs ~0.5 s, a cell ~0.05 s).
    Cells stay independent: each uses its own entity, idempotency key and replay id."""
    with deployed_stack() as stack:
        yield stack


def _partition(stack: Stack, entity_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    paginator = stack.dynamodb.get_paginator("query")
    for page in paginator.paginate(
        TableName=stack.index_table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"E#{entity_id}"}},
        ConsistentRead=True,
    ):
        items.extend(deserialize(item) for item in page["Items"])
    return items


def occurrence_rows(stack: Stack, entity_id: str) -> list[dict[str, Any]]:
    """The entity's occurrence rows in the index, in key (replay) order."""
    return [row for row in _partition(stack, entity_id) if row["sk"].startswith("T#")]


def registry(stack: Stack, entity_id: str) -> dict[str, int]:
    """event_id -> occurrences, from the index's registry items."""
    return {
        row["event_id"]: int(row["occurrences"]) for row in _partition(stack, entity_id) if row["sk"].startswith("I#")
    }


def raw_keys_of(stack: Stack, entity_id: str) -> list[str]:
    return sorted(key for key in stack.raw_keys() if f"/entity={entity_id}/" in key)


def error_shape(body: Any) -> dict[str, Any]:
    """The contract's error body (docs/design.md §2), and nothing else."""
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "field"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
    return dict(body["error"])


def expire_in_progress(stack: Stack, idempotency_key: str) -> int:
    """Move the in-progress expiry of the key's INPROGRESS idempotency record into the past: what its
    window (evreplay.core.idempotency.IN_PROGRESS_SECONDS) does, given time; test_keyed_retries.py waits
    for it in real time instead. Returns how many there were."""
    table = stack.env["IDEMPOTENCY_TABLE"]
    # Powertools' record id: "<key prefix>#<md5 of the JSON of the key>"
    suffix = "#" + hashlib.md5(json.dumps(idempotency_key).encode()).hexdigest()
    items = [
        item
        for item in stack.table_items(table)
        if item.get("status", {}).get("S") == "INPROGRESS" and item["id"]["S"].endswith(suffix)
    ]
    for item in items:
        stack.dynamodb.update_item(
            TableName=table,
            Key={"id": item["id"]},
            UpdateExpression="SET in_progress_expiration = :past",
            ExpressionAttributeValues={":past": {"N": "1"}},
        )
    return len(items)


# The README's advice to producers: retry 409 and 503 with the same key, waiting 0.2 s and doubling
# up to 1 s, for 10 s.
RETRIED = {409, 503}
RETRY_BUDGET_SECONDS = 10.0
FIRST_WAIT, LONGEST_WAIT = 0.2, 1.0


@dataclass
class Retried:
    """A producer's retries of one request: every answer it saw, how long until its last one."""

    answers: list[Any] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def final(self) -> Any:
        return self.answers[-1]

    @property
    def statuses(self) -> list[int]:
        return [answer.status for answer in self.answers]


def retry_as_advised(send: Callable[[], Any], first: Any = None) -> Retried:
    """Send until the answer is neither 409 nor 503 or the budget is spent, waiting as the README
    says; `first` is an answer already seen (the clock starts at it)."""
    retried = Retried([first] if first is not None else [])
    started, wait = time.monotonic(), FIRST_WAIT
    while not retried.answers or retried.final.status in RETRIED:
        if retried.answers:
            if time.monotonic() - started + wait > RETRY_BUDGET_SECONDS:
                break
            time.sleep(wait)
            wait = min(wait * 2, LONGEST_WAIT)
        retried.answers.append(send())
    retried.seconds = time.monotonic() - started
    return retried
