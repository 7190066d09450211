"""The replay API (docs/design.md §4): start, follow, list, explain, cancel replays; inspect index rows."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from evreplay.core import clients
from evreplay.local.gateway import LOCAL_IDENTITY

from tests.builders import WINDOW, event
from tests.stacks import Workflow

REQUEST = {"entity_id": "u1", **WINDOW}


def api(flow: Workflow, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
    return flow.stack.gateway.request(method, path, body, **kwargs)


def start(flow: Workflow, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = api(flow, "POST", "/replays", body, headers=headers)
    assert response.status == 202, response.body
    return dict(response.json())


def finished(flow: Workflow, replay_id: str) -> dict[str, Any]:
    flow.wait(replay_id)
    response = api(flow, "GET", f"/replays/{replay_id}")
    assert response.status == 200
    return dict(response.json())


def test_post_replays_starts_the_execution_named_by_the_replay_id(workflow):
    flow = workflow()
    flow.ingest([event("u1", f"2025-12-28T1{h}:00:00Z", f"e{h}") for h in range(3)])

    # WHEN a caller asks for a replay
    response = api(flow, "POST", "/replays", REQUEST)

    # THEN 202 with the replay id, RUNNING, the execution ARN and a Location
    assert response.status == 202
    body = response.json()
    assert body["status"] == "RUNNING"
    assert body["execution_arn"] == flow.execution_arn(body["replay_id"])
    assert response.headers["Location"] == f"replays/{body['replay_id']}"
    # AND the execution input is the request plus who asked, from API Gateway's identity
    execution = flow.sfn.describe_execution(executionArn=body["execution_arn"])
    execution_input = json.loads(execution["input"])
    assert execution_input["requested_by"]["user_arn"] == LOCAL_IDENTITY["userArn"]
    assert execution_input["requested_by"]["access_key"] == LOCAL_IDENTITY["accessKey"]
    # AND once finished GET /replays/{id} tells the whole story
    replay = finished(flow, body["replay_id"])
    assert replay["status"] == "SUCCEEDED"
    assert replay["result"] == {"scanned": 3, "duplicates_skipped": 0, "enqueued": 3, "truncated": False, "pages": 1}
    assert replay["request"] == {
        "entity_id": "u1",
        "start_time": "2025-12-28T00:00:00.000000Z",
        "end_time": "2025-12-29T00:00:00.000000Z",
        "include_duplicates": False,
        "limit": 500,
        "dry_run": False,
    }
    assert replay["requested_by"]["user_arn"] == LOCAL_IDENTITY["userArn"]
    assert replay["started_at"] <= replay["stopped_at"]
    assert len(flow.drain()) == 3


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**REQUEST, "requested_by": "me"}, "requested_by"),
        ({**REQUEST, "continuation": {}}, "continuation"),
        ({**REQUEST, "start_time": WINDOW["end_time"], "end_time": WINDOW["start_time"]}, "end_time"),
        ({**REQUEST, "limit": 100_001}, "limit"),
        ({**REQUEST, "dry_run": "yes"}, "dry_run"),
        ({"entity_id": "u1"}, "start_time"),
        ("not json", "body"),
    ],
)
def test_post_replays_rejects_bad_requests_naming_the_field(workflow, body, field):
    flow = workflow()

    response = api(flow, "POST", "/replays", body)

    assert response.status == 400
    assert response.json()["error"]["field"] == field
    assert flow.sfn.list_executions(stateMachineArn=flow.state_machine_arn)["executions"] == []


def test_idempotency_key_makes_the_start_idempotent(workflow):
    flow = workflow()
    key = {"Idempotency-Key": "replay-2025-12-28"}

    first = start(flow, REQUEST, key)
    again = start(flow, REQUEST, key)
    other = api(flow, "POST", "/replays", {**REQUEST, "limit": 7}, headers=key)
    unkeyed = [start(flow, REQUEST), start(flow, REQUEST)]

    assert again == first
    assert other.status == 422 and other.json()["error"]["code"] == "IdempotencyKeyReused"
    assert unkeyed[0]["replay_id"] != unkeyed[1]["replay_id"]
    names = {e["name"] for e in flow.sfn.list_executions(stateMachineArn=flow.state_machine_arn)["executions"]}
    assert names == {first["replay_id"], *(u["replay_id"] for u in unkeyed)}


def test_idempotent_start_answers_the_first_response_byte_for_byte(workflow):
    flow = workflow()
    key = {"Idempotency-Key": "replay-bytes"}

    first = api(flow, "POST", "/replays", REQUEST, headers=key)
    again = api(flow, "POST", "/replays", REQUEST, headers=key)

    assert (first.status, again.status) == (202, 202)
    assert list(first.json()) == ["replay_id", "status", "execution_arn"]
    assert again.body.encode("utf-8") == first.body.encode("utf-8")
    assert again.headers["Location"] == first.headers["Location"]


def test_listing_by_entity_and_status_pages_with_a_cursor(workflow):
    flow = workflow()
    started = [start(flow, REQUEST)["replay_id"] for _ in range(3)]
    other_entity = start(flow, {**REQUEST, "entity_id": "u2"})["replay_id"]
    flow.start({**REQUEST, "requested_by": "console:ops"}, "from-console")
    flow.start({**REQUEST, "limit": 0}, "rejected-by-the-workflow")
    for name in [*started, other_entity, "from-console", "rejected-by-the-workflow"]:
        flow.wait(name)

    first = api(flow, "GET", "/replays", query={"entity_id": "u1", "limit": "3"}).json()
    second = api(
        flow, "GET", "/replays", query={"entity_id": "u1", "limit": "3", "cursor": first["next_cursor"]}
    ).json()
    everything = api(flow, "GET", "/replays").json()
    failed = api(flow, "GET", "/replays", query={"status": "FAILED"}).json()

    listed = [item["replay_id"] for item in first["items"] + second["items"]]
    assert sorted(listed) == sorted([*started, "from-console", "rejected-by-the-workflow"]), "console starts too"
    assert len(first["items"]) == 3 and first["next_cursor"]
    assert len(second["items"]) == 2 and second["next_cursor"] is None
    rejected = {*started, other_entity, "from-console", "rejected-by-the-workflow"}
    assert {item["replay_id"] for item in everything["items"]} == rejected
    assert [(item["replay_id"], item["error"]["error"]) for item in failed["items"]] == [
        ("rejected-by-the-workflow", "InvalidReplayRequest")
    ], "an input the workflow rejects is listed as FAILED, with the error"
    for query, field in [
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"status": "DONE"}, "status"),
        ({"limit": "0"}, "limit"),
    ]:
        response = api(flow, "GET", "/replays", query=query)
        assert response.status == 400 and response.json()["error"]["field"] == field


def test_history_summarizes_every_page_and_the_outcome(workflow):
    flow = workflow(ReplayPageSize=10)
    flow.ingest([event("u1", f"2025-12-28T10:{m:02d}:00Z", f"e{m:02d}") for m in range(25)])
    replay_id = start(flow, REQUEST)["replay_id"]
    flow.wait(replay_id)

    history = api(flow, "GET", f"/replays/{replay_id}/history").json()

    assert history["status"] == "SUCCEEDED"
    assert history["history_events"] == len(flow.history(replay_id))
    started = history["events"][0]
    assert started["type"] == "ExecutionStarted" and started["detail"]["requested_by"]["user_arn"]
    pages = [e["detail"] for e in history["events"] if e["type"] == "TaskSucceeded" and e["state"] == "ReplayPage"]
    assert [p["page"]["messages"] for p in pages] == [10, 10, 5]
    assert [p["enqueued"] for p in pages] == [10, 20, 25]
    assert history["events"][-1]["type"] == "ExecutionSucceeded"
    assert history["events"][-1]["detail"]["enqueued"] == 25


class SlowSends:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self, **_: Any) -> None:
        time.sleep(self.seconds)


def test_a_running_replay_shows_progress_and_can_be_cancelled(workflow):
    flow = workflow(ReplayPageSize=10)
    flow.ingest([event("u1", f"2025-12-28T10:{m:02d}:00Z", f"e{m:02d}") for m in range(60)])
    clients.sqs().meta.events.register("before-send.sqs.SendMessageBatch", SlowSends(0.3))
    replay_id = start(flow, REQUEST)["replay_id"]

    # WHEN the first page is done
    deadline = time.monotonic() + 30
    while (running := api(flow, "GET", f"/replays/{replay_id}").json()).get("progress", {}).get("pages", 0) < 1:
        assert running["status"] == "RUNNING" and time.monotonic() < deadline
        time.sleep(0.05)
    cancelled = api(flow, "DELETE", f"/replays/{replay_id}")

    # THEN it was running with counters, and it stops for good
    assert running["status"] == "RUNNING" and running["progress"]["enqueued"] == 10 * running["progress"]["pages"]
    assert cancelled.status == 200 and cancelled.json()["status"] == "ABORTED"
    flow.wait(replay_id)
    assert api(flow, "GET", f"/replays/{replay_id}").json()["status"] == "ABORTED"
    assert len(flow.drain()) < 60
    again = api(flow, "DELETE", f"/replays/{replay_id}")
    assert again.status == 409


def test_unknown_replays_are_404(workflow):
    flow = workflow()

    for path in ["/replays/no-such-replay", "/replays/no-such-replay/history", "/replays/bad:name"]:
        response = api(flow, "GET", path)
        assert response.status == 404, path
    assert api(flow, "DELETE", "/replays/no-such-replay").status == 404


def test_events_lists_index_rows_in_replay_order_with_a_cursor(workflow):
    flow = workflow()
    flow.ingest([event("u1", f"2025-12-28T10:0{m}:00+01:00", f"e{m}") for m in range(5)])
    flow.ingest([event("u1", "2025-12-28T10:02:00+01:00", "e2", again=True)])  # a duplicate arrival
    flow.ingest([event("u1", "2025-12-30T00:00:00Z", "later")])

    first = api(flow, "GET", "/events", query={"entity_id": "u1", **WINDOW, "limit": "3"}).json()
    rest = api(
        flow, "GET", "/events", query={"entity_id": "u1", **WINDOW, "limit": "3", "cursor": first["next_cursor"]}
    ).json()
    with_duplicates = api(
        flow, "GET", "/events", query={"entity_id": "u1", **WINDOW, "include_duplicates": "true"}
    ).json()

    assert [row["event_id"] for row in first["items"]] == ["e0", "e1", "e2"]
    assert [row["event_id"] for row in rest["items"]] == ["e3", "e4"], "the DUPLICATE row is hidden by default"
    assert [(row["event_id"], row["status"]) for row in with_duplicates["items"]][2:4] == [
        ("e2", "ACCEPTED"),
        ("e2", "DUPLICATE"),
    ]
    assert first["items"][0]["event_time"] == "2025-12-28T09:00:00.000000Z"
    for query, field in [({}, "entity_id"), ({"entity_id": "u1", "cursor": "???"}, "cursor"),
                         ({"entity_id": "u1", "start_time": "yesterday"}, "start_time"),
                         ({"entity_id": "u1", "limit": "5000"}, "limit")]:  # fmt: skip
        response = api(flow, "GET", "/events", query=query)
        assert response.status == 400 and response.json()["error"]["field"] == field, query


def test_events_pages_hold_limit_shown_rows_however_many_duplicates_are_hidden(workflow):
    # GIVEN e0, then 4 duplicate arrivals of e0 (hidden by default), then e1 and e2
    flow = workflow()
    flow.ingest([event("u1", "2025-12-28T10:00:00Z", "e0")])
    flow.ingest([event("u1", "2025-12-28T10:00:00Z", "e0", n=n) for n in range(4)])
    flow.ingest([event("u1", f"2025-12-28T11:0{m}:00Z", f"e{m}") for m in (1, 2)])

    # WHEN they are listed one row per page
    pages, cursor = [], None
    while True:
        query = {"entity_id": "u1", **WINDOW, "limit": "1", **({"cursor": cursor} if cursor else {})}
        page = api(flow, "GET", "/events", query=query).json()
        pages.append([row["event_id"] for row in page["items"]])
        if not (cursor := page["next_cursor"]):
            break

    # THEN every page holds one shown row and the last page says it is the last
    assert pages == [["e0"], ["e1"], ["e2"]]


def test_health(workflow):
    flow = workflow()

    response = api(flow, "GET", "/health")

    assert response.status == 200 and response.json() == {"status": "ok"}


def test_replay_metrics_are_emitted_as_emf(workflow, capsys):
    flow = workflow()
    flow.ingest([event("u1", f"2025-12-28T1{h}:00:00Z", f"e{h}") for h in range(4)])
    capsys.readouterr()

    finished(flow, start(flow, REQUEST)["replay_id"])

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    values = {}
    for line in lines:
        for directive in line["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                values[metric["Name"]] = line[metric["Name"]]
    assert values["ReplayRequestedCount"] in (1, [1], 1.0, [1.0])
    assert values["ReplayMessageCount"] in (4, [4], 4.0, [4.0])
