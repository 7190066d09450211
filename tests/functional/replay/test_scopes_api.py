"""Entity-list and stream replays through the API (docs/design.md §4.11): bad input named, listing by source,
progress while running, DELETE stopping every worker, and a failed worker failing the replay."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from typing import Any

import botocore.exceptions
import pytest
from evreplay.core import clients
from evreplay.replay.fanout import STEPS_ROWS

from tests.builders import WINDOW, event
from tests.stacks import Workflow


def api(flow: Workflow, method: str, path: str, body: Any = None, **query: str) -> Any:
    return flow.stack.gateway.request(method, path, body, query=query or None)


def start(flow: Workflow, body: dict[str, Any]) -> str:
    response = api(flow, "POST", "/replays", body)
    assert response.status == 202, response.body
    return str(response.json()["replay_id"])


def many(entities: int, per_entity: int, source: str = "ios_app") -> list[dict[str, Any]]:
    bodies = []
    for e in range(entities):
        for n in range(per_entity):
            body = event(f"user-{e:03d}", f"2025-12-28T10:{n:02d}:00Z", f"e{n}")
            body["source"] = source
            bodies.append(body)
    return bodies


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"entity_id": "u1", "entity_ids": ["u2"], **WINDOW}, "entity_ids"),
        ({"entity_ids": [], **WINDOW}, "entity_ids"),
        ({"entity_ids": [f"u{n}" for n in range(1001)], **WINDOW}, "entity_ids"),
        ({"entity_ids": ["u1", 7], **WINDOW}, "entity_ids[1]"),
        ({"event_types": ["purchase"], **WINDOW}, "event_types"),
        ({"source": "ios/app", **WINDOW}, "source"),
        ({"source": "", **WINDOW}, "source"),
        ({"source": "ios_app", "event_types": ["bad type"], **WINDOW}, "event_types[0]"),
        ({"source": "ios_app", "event_types": [f"t{n}" for n in range(51)], **WINDOW}, "event_types"),
        ({"source": "ios_app", "max_concurrency": 0, **WINDOW}, "max_concurrency"),
        ({"source": "ios_app", "max_concurrency": "2", **WINDOW}, "max_concurrency"),
        ({"source": "ios_app", "limit": 10_000_001, **WINDOW}, "limit"),
        ({"entity_id": "u1", "limit": 100_001, **WINDOW}, "limit"),
        ({"start_time": WINDOW["start_time"], "end_time": WINDOW["end_time"]}, "entity_id"),
    ],
)
def test_bad_scopes_are_400_naming_the_field_and_start_nothing(workflow, body, field):
    flow = workflow()
    response = api(flow, "POST", "/replays", body)
    assert response.status == 400, response.body
    error = response.json()["error"]
    assert error["field"] == field
    assert error["message"].startswith(f"{field}: ")
    assert flow.sfn.list_executions(stateMachineArn=flow.state_machine_arn)["executions"] == []


def test_stream_replays_are_listed_by_source_and_show_their_scope(workflow):
    flow = workflow()
    flow.ingest(many(2, 2) + many(1, 2, source="web"))
    stream = start(flow, {"source": "ios_app", **WINDOW})
    listed = start(flow, {"entity_ids": ["user-000"], "source": "web", **WINDOW})
    one = start(flow, {"entity_id": "user-000", **WINDOW})
    for replay_id in (stream, listed, one):
        flow.wait(replay_id)

    by_source = api(flow, "GET", "/replays", source="ios_app").json()["items"]
    assert [item["replay_id"] for item in by_source] == [stream]
    assert by_source[0]["request"]["source"] == "ios_app" and "entity_id" not in by_source[0]["request"]
    assert by_source[0]["result"]["entities"] == 2 and by_source[0]["result"]["enqueued"] == 4
    web = api(flow, "GET", "/replays", source="web", status="SUCCEEDED").json()["items"]
    assert [item["replay_id"] for item in web] == [listed]
    assert web[0]["request"]["entity_ids"] == ["user-000"]
    assert api(flow, "GET", "/replays", source="ios app").json()["error"]["field"] == "source"
    assert api(flow, "GET", "/replays", source="web", entity_id="user-000").json()["error"]["field"] == "source"


class Sends:
    """When each SendMessageBatch left, slowed down so that a replay is still running when a test looks."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.times: list[float] = []
        self.threads: list[int] = []  # who sent: each worker's steps run in its own thread

    def __call__(self, **_: Any) -> None:
        self.times.append(time.monotonic())
        self.threads.append(threading.get_ident())
        time.sleep(self.seconds)


ENTITIES = 120


def test_a_stream_replay_shows_progress_and_delete_stops_every_worker(workflow):
    flow = workflow(ReplayPageSize=10)
    # 120 entities of 3 events: one work item read in steps of ~50 rows, so a cancel after the first
    # step leaves most of the stream unsent whatever the timing (with 30, the step in flight was the last)
    flow.ingest(many(ENTITIES, 3))
    sends = Sends(0.1)
    clients.sqs().meta.events.register("before-send.sqs.SendMessageBatch", sends)
    replay_id = start(flow, {"source": "ios_app", "max_concurrency": 2, **WINDOW})

    # WHEN some entities are done
    deadline = time.monotonic() + 60
    while (running := api(flow, "GET", f"/replays/{replay_id}").json()).get("progress", {}).get("entities_done", 0) < 3:
        assert running["status"] == "RUNNING" and time.monotonic() < deadline, running
        time.sleep(0.05)
    cancelled = api(flow, "DELETE", f"/replays/{replay_id}")
    stopped_at = time.monotonic()

    # THEN it showed entities done of the total and what was sent so far
    progress = running["progress"]
    assert progress["entities_total"] == ENTITIES and 3 <= progress["entities_done"] < ENTITIES
    assert progress["enqueued"] >= 3 * progress["entities_done"]
    assert cancelled.status == 200 and cancelled.json()["status"] == "ABORTED"
    flow.wait(replay_id)
    time.sleep(1.0)  # any worker still going would send within this
    # AND nothing was sent after the ABORTED answer but the steps then in flight: at most one per worker
    # (two), each sending its outbox: a step reads until it is past STEPS_ROWS pages of 10 rows, so it
    # holds at most one page more, STEPS_ROWS + 1 batches of 10
    late = Counter(thread for at, thread in zip(sends.times, sends.threads, strict=True) if at > stopped_at)
    assert len(late) <= 2 and all(calls <= STEPS_ROWS + 1 for calls in late.values()), late
    assert api(flow, "GET", f"/replays/{replay_id}").json()["status"] == "ABORTED"
    assert len(flow.drain()) < 3 * ENTITIES


def test_a_failed_worker_fails_the_replay_visibly(workflow, fast_retries):
    flow = workflow()
    flow.ingest(many(3, 2))

    def refuse(params: dict[str, Any], **_: Any) -> None:
        if any(json.loads(entry["MessageBody"])["entity_id"] == "user-001" for entry in params["Entries"]):
            raise botocore.exceptions.EndpointConnectionError(endpoint_url="https://sqs.invalid")

    clients.sqs().meta.events.register("provide-client-params.sqs.SendMessageBatch", refuse)
    replay = flow.replay("fails-1", source="ios_app", **WINDOW)

    # THEN moto's Map may succeed over the failed child, but the replay does not
    assert replay.status == "FAILED"
    assert replay.last["error"] in ("ReplayIncomplete", "States.ExceedToleratedFailureThreshold")
    assert {message["entity_id"] for message in replay.messages} <= {"user-000", "user-002"}
