"""The reconcile workflow for real: POST /reconcile through the local gateway starts
statemachines/reconcile.asl.json in moto's interpreter (ListPartitions, a Distributed Map child per
partition, Summarize), its tasks run in-process; GET /reconcile/{id} follows it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.builders import event
from tests.faults import ALWAYS, INTERNAL, Faults
from tests.stacks import Stack, Workflow, empty_index, post, post_unindexed, rows

FINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


def start(stack: Stack, body: Any) -> str:
    response = stack.gateway.request("POST", "/reconcile", body)
    assert response.status == 202, response.body
    assert response.headers["Location"] == f"reconcile/{response.json()['reconcile_id']}"
    return str(response.json()["reconcile_id"])


def finished(stack: Stack, reconcile_id: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline, pause = time.monotonic() + timeout, 0.05
    while True:
        response = stack.gateway.request("GET", f"/reconcile/{reconcile_id}")
        assert response.status == 200, response.body
        view = dict(response.json())
        if view["status"] in FINAL:
            return view
        assert time.monotonic() < deadline, view
        time.sleep(pause)
        pause = min(pause * 1.5, 0.5)


def test_post_reconcile_counts_then_repairs_across_days_and_streams(
    stack: Stack, workflow: Callable[..., Workflow], faults: Faults, fast_retries: None
) -> None:
    # GIVEN three partitions, two objects without rows
    workflow()
    lost = [
        post_unindexed(stack, faults, event("user_1", "2025-12-28T10:00:00Z", event_id="e-1")),
        post_unindexed(stack, faults, {**event("user_2", "2025-12-29T10:00:00Z"), "source": "web"}),
    ]
    post(stack, event("user_1", "2025-12-28T11:00:00Z", event_id="e-1"))
    post(stack, event("user_3", "2025-12-30T00:00:00Z"))
    # WHEN a check runs over the three days
    check = finished(stack, start(stack, {"start_day": "2025-12-28", "end_day": "2025-12-30"}))
    # THEN it counts and changes nothing
    assert check["status"] == "SUCCEEDED", check
    result = check["result"]
    assert (result["partitions"], result["objects"], result["rows"], result["missing_rows"], result["indexed"]) == (
        3,
        4,
        2,
        2,
        0,
    )
    assert result["failed_partitions"] == 0 and not set(lost) & set(rows(stack))
    # WHEN repaired, THEN both are indexed, the retry of e-1 demoted; a second run finds nothing
    repair = finished(stack, start(stack, {"start_day": "2025-12-28", "end_day": "2025-12-30", "repair": True}))
    assert (repair["result"]["indexed"], repair["result"]["statuses_fixed"]) == (2, 1)
    assert rows(stack)[lost[0]]["status"] == "ACCEPTED" and lost[1] in rows(stack)
    again = finished(stack, start(stack, {"start_day": "2025-12-28", "end_day": "2025-12-30", "repair": True}))
    assert (again["result"]["missing_rows"], again["result"]["indexed"], again["result"]["rows"]) == (0, 0, 4)


def test_a_partition_that_keeps_failing_fails_the_reconcile_visibly(
    stack: Stack, workflow: Callable[..., Workflow], faults: Faults, fast_retries: None
) -> None:
    # GIVEN two partitions, and the index unreadable for one of them (every BatchGetItem of user_2)
    workflow()
    post(stack, event("user_1", "2025-12-28T10:00:00Z"))
    post(stack, {**event("user_2", "2025-12-28T10:00:00Z"), "source": "web"})
    faults.inject("dynamodb", "BatchGetItem", INTERNAL, times=ALWAYS, when=lambda r: b"E#user_2" in (r.body or b""))
    # WHEN reconciled
    view = finished(stack, start(stack, {"start_day": "2025-12-28", "end_day": "2025-12-28"}))
    # THEN the execution fails, naming why, and still reports what the other partition counted
    assert view["status"] == "FAILED"
    assert view["error"]["error"] == "ReconcileIncomplete"
    assert (view["result"]["partitions"], view["result"]["failed_partitions"], view["result"]["objects"]) == (2, 1, 1)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"start_day": "2025-12-29", "end_day": "2025-12-28"}, "end_day"),
        ({"start_day": "2025-01-01", "end_day": "2025-03-01"}, "end_day"),
        ({"start_day": "2025-02-29", "end_day": "2025-03-01"}, "start_day"),
        ({"start_day": "2025-12-28"}, "end_day"),
        ({"start_day": "2025-12-28", "end_day": "2025-12-28", "repair": 1}, "repair"),
        ([], "body"),
    ],
)
def test_post_reconcile_bad_input_is_400_naming_the_field(stack: Stack, body: Any, field: str) -> None:
    response = stack.gateway.request("POST", "/reconcile", body)
    assert response.status == 400, response.body
    assert response.json()["error"]["field"] == field


def test_unknown_reconcile_is_404(stack: Stack, workflow: Callable[..., Workflow]) -> None:
    workflow()
    for name in ("rc-unknown", "not a name"):
        response = stack.gateway.request("GET", f"/reconcile/{name}")
        assert response.status == 404, response.body
        assert response.json()["error"]["field"] == "reconcile_id"


def test_a_console_start_with_bad_input_fails_naming_the_field(stack: Stack, workflow: Callable[..., Workflow]) -> None:
    flow = workflow()
    arn = flow.state_machine_arn.replace("-replay", "-reconcile")
    flow.sfn.start_execution(stateMachineArn=arn, name="by-hand", input='{"start_day": "2025-12-28"}')
    view = finished(stack, "by-hand")
    assert view["status"] == "FAILED" and view["error"]["error"] == "InvalidReconcileRequest"
    assert "end_day" in view["error"]["cause"]


def test_a_replay_after_rebuilding_an_emptied_index_sends_the_same_messages(
    stack: Stack, workflow: Callable[..., Workflow]
) -> None:
    # GIVEN events with duplicates (within and across days) and the messages a replay sent
    flow = workflow()
    for n in range(12):
        post(stack, event(f"user_{n % 2}", f"2025-12-28T{n:02d}:00:00Z", event_id=f"e-{n % 5}"))
    post(stack, event("user_0", "2025-12-29T01:00:00Z", event_id="e-0"))
    window = {"start_time": "2025-12-28T00:00:00Z", "end_time": "2025-12-30T00:00:00Z"}
    scopes = [(entity, include) for entity in ("user_0", "user_1") for include in (False, True)]
    before = {
        (entity, include): flow.replay(
            f"before-{entity}-{include}", entity_id=entity, include_duplicates=include, **window
        )
        for entity, include in scopes
    }
    # WHEN the index is emptied and rebuilt through POST /reconcile
    empty_index(stack)
    view = finished(stack, start(stack, {"start_day": "2025-12-28", "end_day": "2025-12-29", "repair": True}))
    assert view["status"] == "SUCCEEDED" and view["result"]["indexed"] == 13
    # THEN the same replays send the same messages, seq for seq
    for (entity, include), replay in before.items():
        after = flow.replay(f"after-{entity}-{include}", entity_id=entity, include_duplicates=include, **window)
        assert after.result == replay.result
        strip = lambda messages: [{k: v for k, v in m.items() if k != "replay_id"} for m in messages]  # noqa: E731
        assert strip(after.messages) == strip(replay.messages) and replay.messages
