"""The console path: someone starts the state machine by hand. It checks its own input with the
API's schema and rules and fails with InvalidReplayRequest, its cause naming the field; a good
input runs the same workflow and is listed like an API replay."""

from __future__ import annotations

import json
import logging
import re

import pytest

from tests.builders import WINDOW, event

GOOD = {"entity_id": "u1", **WINDOW}


@pytest.mark.parametrize(
    ("execution_input", "field"),
    [
        pytest.param(
            {"start_time": WINDOW["start_time"], "end_time": WINDOW["end_time"]}, "entity_id", id="missing-entity"
        ),
        pytest.param({"entity_id": "u1", "end_time": WINDOW["end_time"]}, "start_time", id="missing-start"),
        pytest.param({"entity_id": "u1", "start_time": WINDOW["start_time"]}, "end_time", id="missing-end"),
        pytest.param(
            {**GOOD, "start_time": WINDOW["end_time"], "end_time": WINDOW["start_time"]},
            "end_time",
            id="reversed-window",
        ),
        pytest.param({**GOOD, "end_time": WINDOW["start_time"]}, "end_time", id="empty-window"),
        pytest.param({**GOOD, "limit": 100_001}, "limit", id="limit-over-maximum"),
        pytest.param({**GOOD, "limit": 0}, "limit", id="limit-zero"),
        pytest.param({**GOOD, "limit": "10"}, "limit", id="limit-string"),
        pytest.param({**GOOD, "limit": 2.5}, "limit", id="limit-fraction"),
        pytest.param({**GOOD, "include_duplicates": "false"}, "include_duplicates", id="include-duplicates-string"),
        pytest.param({**GOOD, "dry_run": 1}, "dry_run", id="dry-run-number"),
        pytest.param({**GOOD, "entity_id": 123}, "entity_id", id="entity-number"),
        pytest.param({**GOOD, "start_time": "2025-12-28T00:00:00"}, "start_time", id="naive-timestamp"),
        pytest.param({**GOOD, "end_time": "tomorrow"}, "end_time", id="not-a-timestamp"),
        pytest.param({**GOOD, "window": "today"}, "window", id="unknown-field"),
        pytest.param({**GOOD, "continuation": {"replay_id": "x"}}, "continuation", id="broken-continuation"),
        pytest.param(["not", "an", "object"], "input", id="not-an-object"),
    ],
)
def test_bad_console_input_fails_with_invalid_replay_request_naming_the_field(workflow, execution_input, field, caplog):
    flow = workflow()
    caplog.set_level(logging.WARNING, logger="moto.stepfunctions")

    # WHEN the state machine is started by hand with a bad input
    flow.start(execution_input, "bad-input")
    (execution,) = flow.wait("bad-input")

    # THEN the execution fails with the workflow's error, and the cause names the field
    assert execution["status"] == "FAILED"
    assert execution["error"] == "InvalidReplayRequest"
    cause = json.loads(execution["cause"])
    assert cause["errorType"] == "InvalidReplayRequest"
    assert re.match(rf"{field}(: |\.)", cause["errorMessage"]), cause["errorMessage"]
    assert f"{field}: {field}" not in cause["errorMessage"] and "body" not in cause["errorMessage"]
    assert "continuation" not in cause["errorMessage"].removeprefix("continuation"), "internal fields are not offered"
    # AND it was not retried and never reached the index
    history = flow.history("bad-input")
    assert sum(1 for e in history if e["type"] == "TaskFailed") == 1
    assert not any(e.get("stateEnteredEventDetails", {}).get("name") == "ReplayPage" for e in history)
    # AND it is listed as the failed start it is, with the error
    (listed,) = flow.stack.gateway.request("GET", "/replays", query={"status": "FAILED"}).json()["items"]
    assert (listed["replay_id"], listed["error"]["error"]) == ("bad-input", "InvalidReplayRequest")
    assert listed["request"] == execution_input, "the input as it was given"
    named_u1 = isinstance(execution_input, dict) and execution_input.get("entity_id") == "u1"
    by_entity = flow.stack.gateway.request("GET", "/replays", query={"entity_id": "u1"}).json()["items"]
    assert [item["replay_id"] for item in by_entity] == (["bad-input"] if named_u1 else [])
    # AND the interpreter logged the failure as one readable line (it was ~5 KB of its internals)
    # The failure's line (moto also warns, once per map state parsed, that ToleratedFailurePercentage has no effect).
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("moto.stepfunctions") and "ToleratedFailure" not in r.getMessage()
    ]
    assert lines == [f"state ValidateRequest failed: InvalidReplayRequest: {cause['errorMessage']}"]


def test_console_start_runs_the_same_workflow_and_is_listed(workflow):
    flow = workflow()
    flow.post(event("u1", "2025-12-28T10:00:00Z", "e1"))
    flow.post(event("u1", "2025-12-28T11:00:00Z", "e2"))

    # WHEN an operator starts it by hand, naming themselves
    replay = flow.replay("by-hand-2025-12-28", **GOOD, requested_by="console:alice")

    # THEN the name is the replay_id, the result is the contract's, and the audit listing shows it
    assert replay.status == "SUCCEEDED"
    assert [m["replay_id"] for m in replay.messages] == ["by-hand-2025-12-28"] * 2
    assert replay.result == {"scanned": 2, "duplicates_skipped": 0, "enqueued": 2, "truncated": False, "pages": 1}
    listed = flow.stack.gateway.request("GET", "/replays", query={"entity_id": "u1"}).json()
    assert [(item["replay_id"], item["status"], item["requested_by"]) for item in listed["items"]] == [
        ("by-hand-2025-12-28", "SUCCEEDED", "console:alice")
    ]


def test_the_same_input_is_the_same_request_from_the_console_and_the_api(workflow):
    flow = workflow()
    flow.post(event("u1", "2025-12-28T10:00:00Z", "e1"))

    by_hand = flow.replay("by-hand", **GOOD, limit=1)
    started = flow.stack.gateway.request("POST", "/replays", {**GOOD, "limit": 1}).json()
    via_api = flow.wait(started["replay_id"])

    from_api = json.loads(via_api[-1]["output"])["request"]
    assert from_api.pop("requested_by")["user_arn"].endswith(":user/local-developer")
    assert from_api == by_hand.output["request"]
