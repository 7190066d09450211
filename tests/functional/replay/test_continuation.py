"""Continue-as-new (docs/design.md §4.9): after REPLAY_PAGES_PER_EXECUTION pages an execution starts the
same state machine again with the cursor and counters, so no execution nears the history quota;
the replay (messages, counters, status) is the same as if it had run in one execution."""

from __future__ import annotations

import json
from itertools import pairwise

from evreplay.replay.workflow import continuation_name

from tests.builders import WINDOW, event
from tests.replay_reference import Occurrence, reference_replay


def test_a_long_replay_continues_in_new_executions_and_is_followed_as_one(workflow):
    # GIVEN pages of 10 rows, 2 pages per execution, and 55 events with 5 later duplicates
    flow = workflow(ReplayPageSize=10, ReplayPagesPerExecution=2)
    bodies = [event("u1", f"2025-12-28T10:{m:02d}:00Z", f"e{m:02d}", v=1) for m in range(55)]
    bodies += [event("u1", f"2025-12-28T11:{m:02d}:00Z", f"e{m * 11:02d}", v=2) for m in range(5)]
    flow.ingest(bodies)
    rows = {(row["event_id"], row["event_time"][11:16]): row for row in flow.index_rows()}
    stored = [
        Occurrence(
            "u1",
            b["event_id"],
            b["event_time"],
            i,
            flow.stack.bucket,
            rows[(b["event_id"], b["event_time"][11:16])]["s3_key"],
        )
        for i, b in enumerate(bodies)
    ]

    # WHEN it is replayed through the API
    replay_id = flow.stack.gateway.request("POST", "/replays", {"entity_id": "u1", **WINDOW}).json()["replay_id"]
    chain = flow.wait(replay_id)
    messages = flow.drain()

    # THEN it ran in several executions named after the replay, each handing over to the next
    assert len(chain) >= 3
    assert [e["name"] for e in chain] == [replay_id] + [continuation_name(replay_id, g) for g in range(1, len(chain))]
    assert [e["status"] for e in chain] == ["SUCCEEDED"] * len(chain)
    for generation, (parent, child) in enumerate(pairwise(chain), start=1):
        handed = json.loads(child["input"])
        assert handed["continuation"]["generation"] == generation
        assert handed["continuation"]["replay_id"] == replay_id
        assert handed["continuation"]["previous_execution"] == parent["executionArn"]
        assert handed["requested_by"] == json.loads(chain[0]["input"])["requested_by"]
        assert json.loads(parent["output"])["continued_as"] == child["executionArn"]
    # AND the messages and counters are exactly those of one replay
    expected, result = reference_replay(stored, replay_id, "u1", **WINDOW)
    assert sorted(messages, key=lambda m: m["seq"]) == expected
    followed = flow.stack.gateway.request("GET", f"/replays/{replay_id}").json()
    assert followed["status"] == "SUCCEEDED"
    assert followed["executions"] == [e["executionArn"] for e in chain]
    assert {k: followed["result"][k] for k in result} == result
    assert followed["result"]["duplicates_skipped"] == 5
    assert followed["result"]["pages"] >= 6
    # AND no execution ran more than 2 pages
    for execution in chain:
        entered = [
            e["stateEnteredEventDetails"]["name"]
            for e in flow.history(execution["name"])
            if "stateEnteredEventDetails" in e
        ]
        assert entered.count("ReplayPage") <= 2
    history = flow.stack.gateway.request("GET", f"/replays/{replay_id}/history").json()
    assert history["executions"] == followed["executions"]
    assert history["events"][-1]["detail"]["enqueued"] == result["enqueued"]
