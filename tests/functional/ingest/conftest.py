from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Stack


def event(**overrides: Any) -> dict[str, Any]:
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


def index_rows(stack: Stack) -> list[dict[str, Any]]:
    """Occurrence rows of the index, plain values, in key order per entity."""
    from evreplay.store.dynamo import deserialize

    rows = [deserialize(item) for item in stack.table_items(stack.index_table)]
    return sorted((row for row in rows if row["sk"].startswith("T#")), key=lambda row: (row["pk"], row["sk"]))


def raw_object(stack: Stack, key: str) -> dict[str, Any]:
    return json.loads(stack.s3.get_object(Bucket=stack.bucket, Key=key)["Body"].read())


@pytest.fixture
def post(stack: Stack):
    def _post(body: Any, headers: dict[str, str] | None = None, path: str = "/events"):
        return stack.gateway.request("POST", path, body, headers=headers)

    return _post
