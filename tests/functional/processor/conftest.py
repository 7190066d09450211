"""Helpers for the processor tests: real events ingested through the API, replay messages built
from the real index rows (as the replay workflow would build them, docs/design.md §4.6), and the
processor run either on SQS-shaped events or through the local queue driver."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from evreplay.local.queue_driver import QueueDriver
from evreplay.local.runtime import invoke
from evreplay.processor.hashing import inputs_hash
from evreplay.store.index import EventIndex, IndexRow

from tests.conftest import Stack

DAY = "2025-06-01"
START, END = f"{DAY}T00:00:00Z", "2025-06-02T00:00:00Z"
START_NORMALIZED, END_NORMALIZED = f"{DAY}T00:00:00.000000Z", "2025-06-02T00:00:00.000000Z"
PROCESSOR = "ProcessorFunction"


def event(entity: str, second: int, event_type: str = "purchase", **extra: Any) -> dict[str, Any]:
    """A valid event on DAY, `second` seconds after 10:00 UTC."""
    minute, sec = divmod(second, 60)
    return {
        "source": "test",
        "event_type": event_type,
        "entity_id": entity,
        "event_time": f"{DAY}T10:{minute:02d}:{sec:02d}Z",
        "payload": {"n": second},
        **extra,
    }


def ingest(stack: Stack, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """POST /events one at a time. (Not /events/batch: its concurrent items race inside moto's
    TransactWriteItems, which deep-copies tables without a lock.)"""
    results: list[dict[str, Any]] = []
    for body in events:
        response = stack.gateway.request("POST", "/events", body)
        assert response.status == 201, response.body
        results.append(response.json())
    return results


def index_rows(stack: Stack, entity: str, start: str = START_NORMALIZED, end: str = END_NORMALIZED) -> list[IndexRow]:
    index = EventIndex(stack.dynamodb, stack.index_table)
    rows: list[IndexRow] = []
    key = None
    while True:
        page, key = index.query_window(entity, start, end, limit=100, exclusive_start_key=key)
        rows.extend(page)
        if not key:
            return rows


def replay_messages(
    stack: Stack,
    entity: str,
    replay_id: str | None = None,
    include_duplicates: bool = False,
    start: str = START_NORMALIZED,
    end: str = END_NORMALIZED,
) -> list[str]:
    """Message bodies of a replay of [start, end), in replay order with 1-based seq (docs/design.md §4)."""
    replay_id = replay_id or f"r-{uuid.uuid4().hex[:12]}"
    seen: set[str] = set()
    bodies: list[str] = []
    for row in index_rows(stack, entity, start, end):
        if not include_duplicates and row.event_id in seen:
            continue
        seen.add(row.event_id)
        bodies.append(
            json.dumps(
                {
                    "replay_id": replay_id,
                    "seq": len(bodies) + 1,
                    "event_id": row.event_id,
                    "entity_id": row.entity_id,
                    "event_time": row.event_time,
                    "s3_bucket": row.s3_bucket,
                    "s3_key": row.s3_key,
                }
            )
        )
    return bodies


def replay_id_of(bodies: list[str]) -> str:
    return str(json.loads(bodies[0])["replay_id"])


def expected_hash(stack: Stack, entity: str, include_duplicates: bool = False) -> str:
    """inputs_hash of the window computed in one go from the index rows."""
    rows = index_rows(stack, entity)
    if not include_duplicates:
        rows = list({row.event_id: row for row in reversed(rows)}.values())
    return inputs_hash((row.event_id, row.payload_sha256) for row in rows)


def sqs_event(bodies: list[str], receive_count: int = 1) -> dict[str, Any]:
    """An SQS Lambda event with one record per body; message ids are stable per body+position."""
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid5(uuid.NAMESPACE_OID, f"{position}:{body}")),
                "receiptHandle": f"handle-{position}",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": str(receive_count),
                    "SentTimestamp": "1748772000000",
                    "SenderId": "AIDALOCAL",
                    "ApproximateFirstReceiveTimestamp": "1748772000001",
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:ReplayQueue",
                "awsRegion": "us-east-1",
            }
            for position, body in enumerate(bodies)
        ]
    }


def process(stack: Stack, bodies: list[str]) -> list[str]:
    """Run the template's processor on one batch; return the failed message ids."""
    event = sqs_event(bodies)
    response = invoke(stack.template.function_handler(PROCESSOR), event, PROCESSOR)
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


def message_id(bodies: list[str], position: int) -> str:
    return str(sqs_event(bodies)["Records"][position]["messageId"])


def aggregates(stack: Stack, entity: str, day: str | None = DAY) -> list[dict[str, Any]]:
    """Every version through GET /aggregates, following cursors."""
    items: list[dict[str, Any]] = []
    query: dict[str, str | list[str]] = {"entity_id": entity, **({"day": day} if day else {})}
    while True:
        response = stack.gateway.request("GET", "/aggregates", query=query)
        assert response.status == 200, response.body
        page = response.json()
        items.extend(page["items"])
        if not page["next_cursor"]:
            return items
        query["cursor"] = page["next_cursor"]


def version(stack: Stack, entity: str, replay_id: str, day: str = DAY) -> dict[str, Any]:
    (found,) = [item for item in aggregates(stack, entity, day) if item["replay_id"] == replay_id]
    return found


def aggregate_items(stack: Stack) -> list[dict[str, Any]]:
    """The whole aggregates table, in key order: a snapshot to compare before/after."""
    items = stack.table_items(stack.env["AGGREGATES_TABLE"])
    return sorted(items, key=lambda item: (item["pk"]["S"], item["sk"]["S"]))


def send(stack: Stack, bodies: list[str]) -> None:
    url = stack.template.ref("ReplayQueue")
    for start in range(0, len(bodies), 10):
        chunk = bodies[start : start + 10]
        response = stack.sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(chunk)]
        )
        assert not response.get("Failed"), response


def emf(output: str) -> dict[str, float]:
    """Metric name -> sum over every EMF line printed."""
    totals: dict[str, float] = {}
    for line in output.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == "EvReplay"
            for metric in directive["Metrics"]:
                values = document[metric["Name"]]
                totals[metric["Name"]] = totals.get(metric["Name"], 0) + sum(
                    values if isinstance(values, list) else [values]
                )
    return totals


@pytest.fixture
def driver(stack: Stack) -> Callable[..., QueueDriver]:
    (trigger,) = [t for t in stack.template.queue_triggers() if t.function == PROCESSOR]

    def _driver(retry_visibility_timeout: int | None = 0) -> QueueDriver:
        return QueueDriver(stack.template, stack.sqs, trigger, retry_visibility_timeout=retry_visibility_timeout)

    return _driver
