"""Test data built without a stack: event bodies as producers send them, replay messages as SQS
delivers them, and the days and windows the tests' data sets live on. One home for them, so the
tiers share one shape of an event instead of a copy each (conftest files hold fixtures only)."""

from __future__ import annotations

import json
import uuid
from typing import Any, TypedDict


# ---------------------------------------------------------------- replay and reconcile: an event at a given entity and time
class Window(TypedDict):
    start_time: str
    end_time: str


WINDOW: Window = {"start_time": "2025-12-28T00:00:00Z", "end_time": "2025-12-29T00:00:00Z"}


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


RECONCILE_DAY = "2025-12-28"


# ---------------------------------------------------------------- ingest: a valid event as a producer sends it
def producer_event(**overrides: Any) -> dict[str, Any]:
    """A valid event as a producer sends it; override any field, or drop one with `field=DROP`."""
    body: dict[str, Any] = {
        "source": "ios_app",
        "event_type": "purchase",
        "entity_id": "user_123",
        "event_time": "2025-12-28T23:59:59.250+01:00",
        "payload": {"amount": 12.5, "currency": "EUR"},
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not DROP}


DROP = object()


# ---------------------------------------------------------------- the processor: events on one day, replay messages as SQS delivers them
DAY = "2025-06-01"


START, END = f"{DAY}T00:00:00Z", "2025-06-02T00:00:00Z"


START_NORMALIZED, END_NORMALIZED = f"{DAY}T00:00:00.000000Z", "2025-06-02T00:00:00.000000Z"


def event_at(entity: str, second: int, event_type: str = "purchase", **extra: Any) -> dict[str, Any]:
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


def replay_id_of(bodies: list[str]) -> str:
    return str(json.loads(bodies[0])["replay_id"])


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


def message_id(bodies: list[str], position: int) -> str:
    return str(sqs_event(bodies)["Records"][position]["messageId"])


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


# ---------------------------------------------------------------- investigation: the data set's days
D = "2025-06-01"


D_BEFORE = "2025-05-31"


D_AFTER = "2025-06-02"


D2 = "2025-06-03"
