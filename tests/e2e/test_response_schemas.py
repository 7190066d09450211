"""Real answers of every route of `evreplay local`, over HTTP, checked against the response schema
files themselves (`core/schemas/<name>.response.schema.json`), not the generated document: one
story (ingest, a replay and a second one, the aggregates and their diff, the investigation routes,
a reconcile) and the error answers on the way."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from evreplay.cli.client import ApiError
from evreplay.core import schemas

from tests.stacks import RunningStack, wait_for

DAY = "2025-07-01"
WINDOW = {"start_time": f"{DAY}T00:00:00Z", "end_time": "2025-07-02T00:00:00Z"}


def conforms(name: str, body: Any) -> Any:
    found = [
        f"{'/'.join(map(str, error.absolute_path)) or '(body)'}: {error.message}"
        for error in schemas.response_validator(f"{name}.response").iter_errors(body)
    ]
    assert found == [], f"{name}.response.schema.json: {found}"
    return body


def refused(call: Any, status: int) -> None:
    with pytest.raises(ApiError) as raised:
        call()
    assert raised.value.status == status, raised.value
    conforms("error", raised.value.body)


def finished(stack: RunningStack, path: str, schema: str) -> dict[str, Any]:
    view: dict[str, Any] = wait_for(
        lambda: (v := conforms(schema, stack.api.get(path)))["status"] != "RUNNING" and v,
        timeout=90,
        what=f"{path} to end",
    )
    return view


def test_every_route_answers_as_its_response_schema_file_says(local_stack: RunningStack) -> None:
    api, entity, source = local_stack.api, f"schemas-{uuid.uuid4().hex[:8]}", f"src-{uuid.uuid4().hex[:6]}"

    def event(minute: int, event_id: str, amount: int = 1) -> dict[str, Any]:
        return {
            "source": source,
            "event_type": "purchase",
            "entity_id": entity,
            "event_id": event_id,
            "event_time": f"{DAY}T10:{minute:02d}:00Z",
            "payload": {"amount": amount},
        }

    conforms("health", api.get("/health"))
    # ingest: one event, a batch with a duplicate and a rejected item, a refused body
    conforms("event_accepted", api.post("/events", event(1, "a")))
    batch = conforms("batch_results", api.post("/events/batch", {"events": [event(2, "b"), event(1, "a"), {"x": 1}]}))
    assert [r["status"] for r in batch["results"]] == ["ACCEPTED", "DUPLICATE", "REJECTED"]
    refused(lambda: api.post("/events", {"source": source}), 400)
    listed = conforms("event_list", api.get("/events", entity_id=entity, include_duplicates="true", **WINDOW))
    assert len(listed["items"]) == 3

    # replays: two of the same window (a version each), listed, their history, a cancel refused
    replay_ids = []
    for _ in range(2):
        started = conforms("replay_started", api.post("/replays", {"entity_id": entity, **WINDOW}))
        replay = finished(local_stack, f"/replays/{started['replay_id']}", "replay")
        assert replay["status"] == "SUCCEEDED", replay
        replay_ids.append(replay["replay_id"])
        conforms("replay_history", api.get(f"/replays/{replay['replay_id']}/history"))
    conforms("replay_list", api.get("/replays", entity_id=entity))
    refused(lambda: api.delete(f"/replays/{replay_ids[0]}"), 409)
    refused(lambda: api.get("/replays/no-such-replay"), 404)

    # what the processor made of them, and the investigation routes
    versions = wait_for(
        lambda: (
            len((v := conforms("aggregate_list", api.get("/aggregates", entity_id=entity, day=DAY)))["items"]) == 2
            and v
        ),
        timeout=60,
        what="both replays' aggregate versions",
    )
    assert {item["replay_id"] for item in versions["items"]} == set(replay_ids)
    base, other = replay_ids
    conforms("aggregate_diff", api.get("/aggregates/diff", entity_id=entity, day=DAY, base=base, other=other))
    conforms("lag_stats", api.get("/stats/lag", source=source, event_type="purchase", day=DAY))
    conforms("volume_stats", api.get("/stats/volume", source=source, event_type="purchase", start_day=DAY, end_day=DAY))
    conforms("duplicate_stats", api.get("/stats/duplicates", day=DAY, source=source))
    conforms("gaps", api.get("/gaps", entity_id=entity, **WINDOW))
    refused(lambda: api.get("/stats/lag", source=source), 400)

    # reconcile: started, followed to its end
    started = conforms("reconcile_started", api.post("/reconcile", {"start_day": DAY, "end_day": DAY}))
    reconcile = finished(local_stack, f"/reconcile/{started['reconcile_id']}", "reconcile")
    assert reconcile["status"] == "SUCCEEDED", reconcile
