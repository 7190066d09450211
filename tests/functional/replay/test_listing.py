"""The audit listing and GET /replays/{id} read the replays' records (evreplay.replay.state), whose
status the execution status change events keep up to date (evreplay.replay.outcomes): a listing
costs one Query per page, applies `status=` before paging, and answers the same once Step Functions
has forgotten an execution; GET of a forgotten execution answers its last known status."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import pytest
from evreplay.core import clients
from evreplay.core.settings import get_settings
from evreplay.handlers import replay_api
from evreplay.replay.outcomes import record_status_change
from evreplay.replay.tasks import state_store
from evreplay.replay.workflow import continuation_name

from tests.builders import WINDOW, event
from tests.stacks import Workflow

REQUEST = {"entity_id": "u1", **WINDOW}


def api(flow: Workflow, method: str, path: str, **kwargs: Any) -> Any:
    return flow.stack.gateway.request(method, path, **kwargs)


def start(flow: Workflow, body: dict[str, Any]) -> str:
    response = flow.stack.gateway.request("POST", "/replays", body)
    assert response.status == 202, response.body
    return str(response.json()["replay_id"])


def same_view(recorded: dict[str, Any], live: dict[str, Any]) -> bool:
    """Equal, but for started_at's precision: moto's StartDate has microseconds, the execution's context
    object (what the record holds) and AWS's StartDate milliseconds."""
    return {**recorded, "started_at": recorded["started_at"][:23]} == {**live, "started_at": live["started_at"][:23]}


@pytest.fixture
def api_calls() -> Any:
    """The AWS operations the replay API's own clients call (Step Functions and DynamoDB)."""
    calls: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    # Importing the module builds its clients: the handler may not have run yet in this process.
    sfn, ddb = replay_api.service._sfn, replay_api.service._store._ddb
    for client in (sfn, ddb):
        client.meta.events.register("before-call", count)
    yield calls
    for client in (sfn, ddb):
        client.meta.events.unregister("before-call", count)


def test_a_listing_reads_only_records_and_survives_an_expired_execution(workflow, api_calls):
    # GIVEN replays that succeeded, one that the workflow rejected, and one Step Functions forgot
    flow = workflow()
    flow.post(event("u1", "2025-12-28T10:00:00Z", "e1"))
    kept = [start(flow, REQUEST) for _ in range(2)]
    expired = start(flow, REQUEST)
    flow.start({**REQUEST, "limit": 0}, "rejected")
    for name in [*kept, expired, "rejected"]:
        flow.wait(name)
    flow.expire(expired)
    api_calls.clear()

    # WHEN the listing is read, unfiltered and by entity
    everything = api(flow, "GET", "/replays")
    by_entity = api(flow, "GET", "/replays", query={"entity_id": "u1"})

    # THEN it answers from the records alone: one Query each, no DescribeExecution
    assert everything.status == 200 and by_entity.status == 200, everything.body
    assert {i["replay_id"]: i["status"] for i in everything.json()["items"]} == {
        **dict.fromkeys([*kept, expired], "SUCCEEDED"),
        "rejected": "FAILED",
    }
    assert by_entity.json()["items"] == everything.json()["items"]
    assert api_calls == Counter({"Query": 2})
    (gone,) = [i for i in everything.json()["items"] if i["replay_id"] == expired]
    assert gone["result"] == {"scanned": 1, "duplicates_skipped": 0, "enqueued": 1, "truncated": False, "pages": 1}
    assert gone["request"]["entity_id"] == "u1" and gone["requested_by"]["user_arn"].endswith(":user/local-developer")


def test_get_of_an_expired_execution_answers_the_record(workflow):
    flow = workflow()
    flow.post(event("u1", "2025-12-28T10:00:00Z", "e1"))
    replay_id = start(flow, REQUEST)
    flow.wait(replay_id)
    live = api(flow, "GET", f"/replays/{replay_id}").json()

    flow.expire(replay_id)
    remembered = api(flow, "GET", f"/replays/{replay_id}")
    history = api(flow, "GET", f"/replays/{replay_id}/history")
    cancel = api(flow, "DELETE", f"/replays/{replay_id}")

    assert remembered.status == 200, remembered.body
    assert same_view(remembered.json(), live), "the same answer as while Step Functions kept the execution"
    assert history.status == 404 and "no longer keeps its execution" in history.json()["error"]["message"]
    assert cancel.status == 409 and "already ended (SUCCEEDED)" in cancel.json()["error"]["message"]
    assert api(flow, "GET", "/replays/never-was").status == 404


def test_status_is_a_key_of_the_listing_so_pages_are_never_short(workflow):
    # GIVEN failed starts interleaved with successful ones (newest first: F S F S F S)
    flow = workflow()
    names = []
    for n in range(3):
        flow.start({**REQUEST, "limit": 0}, f"bad-{n}")
        names.append(f"bad-{n}")
        names.append(start(flow, REQUEST))
    for name in names:
        flow.wait(name)

    # WHEN the failed ones are listed one per page
    pages, cursor = [], None
    while True:
        query = {"status": "FAILED", "limit": "1", **({"cursor": cursor} if cursor else {})}
        page = api(flow, "GET", "/replays", query=query).json()
        pages.append([item["replay_id"] for item in page["items"]])
        if not (cursor := page["next_cursor"]):
            break
    by_entity = api(flow, "GET", "/replays", query={"status": "SUCCEEDED", "entity_id": "u1", "limit": "3"}).json()

    # THEN every page holds one (the last may be empty only because DynamoDB cannot know it is the last)
    assert [p for p in pages if p] == [["bad-2"], ["bad-1"], ["bad-0"]]
    assert all(pages[:3])
    assert len(by_entity["items"]) == 3 and all(i["status"] == "SUCCEEDED" for i in by_entity["items"])


def test_a_cancelled_replay_is_listed_as_aborted_with_the_reason(workflow):
    flow = workflow(ReplayPageSize=10)
    flow.ingest([event("u1", f"2025-12-28T10:{m:02d}:00Z", f"e{m:02d}") for m in range(30)])
    clients.sqs().meta.events.register("before-send.sqs.SendMessageBatch", lambda **_: time.sleep(0.2))
    replay_id = start(flow, REQUEST)
    deadline = time.monotonic() + 30
    while flow.recorded_status(replay_id) != "RUNNING":  # the input check has recorded it
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert api(flow, "GET", "/replays", query={"status": "RUNNING"}).json()["items"][0]["replay_id"] == replay_id
    api(flow, "DELETE", f"/replays/{replay_id}")
    flow.wait(replay_id)

    (listed,) = api(flow, "GET", "/replays", query={"status": "ABORTED"}).json()["items"]
    running = api(flow, "GET", "/replays", query={"status": "RUNNING"}).json()["items"]

    assert listed["replay_id"] == replay_id and listed["stopped_at"] and "error" in listed
    assert running == [], "the RUNNING item moved, it was not copied"


def test_a_continued_replay_is_recorded_once_with_its_last_execution(workflow):
    flow = workflow(ReplayPageSize=10, ReplayPagesPerExecution=1)
    flow.ingest([event("u1", f"2025-12-28T10:{m:02d}:00Z", f"e{m:02d}") for m in range(25)])
    replay_id = start(flow, REQUEST)
    chain = flow.wait(replay_id)
    live = api(flow, "GET", f"/replays/{replay_id}").json()
    for execution in chain:
        flow.expire(execution["name"])

    (listed,) = api(flow, "GET", "/replays").json()["items"]
    remembered = api(flow, "GET", f"/replays/{replay_id}").json()

    assert len(chain) >= 3
    assert listed["status"] == "SUCCEEDED" and listed["result"]["enqueued"] == 25
    assert listed["executions"] == [e["executionArn"] for e in chain]
    assert same_view(remembered, live)


def test_late_or_repeated_events_never_move_a_record_back(workflow):
    # GIVEN a replay that continued once and then succeeded
    flow = workflow(ReplayPageSize=10, ReplayPagesPerExecution=1)
    flow.ingest([event("u1", f"2025-12-28T10:{m:02d}:00Z", f"e{m:02d}") for m in range(15)])
    replay_id = start(flow, REQUEST)
    chain = flow.wait(replay_id)
    before = api(flow, "GET", "/replays").json()
    store = state_store(get_settings())

    # WHEN an older execution's end (say it was retried by EventBridge) and the last one's again arrive
    def end_event(execution: dict[str, Any], status: str) -> dict[str, Any]:
        detail = {
            "executionArn": execution["executionArn"],
            "stateMachineArn": flow.state_machine_arn,
            "name": execution["name"],
            "status": status,
            "startDate": 1766000000000,
            "stopDate": 1766000001000,
            "input": execution["input"],
            "output": None,
            "error": "States.Timeout",
            "cause": None,
        }
        return {"detail-type": "Step Functions Execution Status Change", "source": "aws.states", "detail": detail}

    record_status_change(end_event(chain[0], "TIMED_OUT"), store, 100_000)
    again = {**end_event(chain[-1], "SUCCEEDED")}
    again["detail"]["output"] = chain[-1]["output"]
    record_status_change(again, store, 100_000)

    # THEN the listing is unchanged
    assert continuation_name(replay_id, 1) == chain[1]["name"]
    assert api(flow, "GET", "/replays").json() == before


def test_an_execution_that_timed_out_is_recorded_from_its_event(workflow):
    # No ASL state runs when an execution times out: only the status change event tells.
    flow = workflow()
    store = state_store(get_settings())
    detail = {
        "executionArn": flow.execution_arn("slow"),
        "stateMachineArn": flow.state_machine_arn,
        "name": "slow",
        "status": "TIMED_OUT",
        "startDate": 1766000000000,
        "stopDate": 1766000060000,
        "input": json.dumps({**REQUEST, "requested_by": "console:bob"}),
        "output": None,
        "error": "States.Timeout",
        "cause": "the execution ran longer than TimeoutSeconds",
    }

    record_status_change({"detail": detail}, store, 100_000)

    (listed,) = api(flow, "GET", "/replays", query={"status": "TIMED_OUT", "entity_id": "u1"}).json()["items"]
    assert listed["error"] == {"error": "States.Timeout", "cause": "the execution ran longer than TimeoutSeconds"}
    assert (listed["started_at"], listed["stopped_at"]) == (
        "2025-12-17T19:33:20.000000Z",
        "2025-12-17T19:34:20.000000Z",
    )
    assert listed["requested_by"] == "console:bob" and listed["request"]["limit"] == 500
    assert api(flow, "GET", "/replays/slow").json() == {k: v for k, v in listed.items() if k != "entity_id"}
