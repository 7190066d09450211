"""No message lost (docs/design.md §4.8): faults injected at the botocore layer of the page function's own
clients. SendMessageBatch entries reported `Failed` are resent; DynamoDB throttling is retried by
botocore and, past its attempts, by the state machine; an execution that cannot deliver fails."""

from __future__ import annotations

import json
from typing import Any

from tests.builders import WINDOW, event
from tests.faults import CLIENT_ATTEMPTS, THROTTLED, FailEntries, Faults
from tests.replay_reference import Occurrence, reference_replay
from tests.stacks import Workflow


def stored_events(flow: Workflow, count: int) -> list[Occurrence]:
    bodies = [event("u1", f"2025-12-28T10:{m // 60:02d}:{m % 60:02d}Z", f"e{m:03d}") for m in range(count)]
    flow.ingest(bodies)
    rows = {row["event_id"]: row for row in flow.index_rows()}
    return [Occurrence("u1", b["event_id"], b["event_time"], i, rows[b["event_id"]]["s3_bucket"],
                       rows[b["event_id"]]["s3_key"]) for i, b in enumerate(bodies)]  # fmt: skip


def task_failures(flow: Workflow, name: str) -> list[str]:
    return [e["taskFailedEventDetails"]["error"] for e in flow.history(name) if e["type"] == "TaskFailed"]


def test_entries_reported_failed_are_resent_and_every_message_arrives_once(workflow):
    flow = workflow(ReplayPageSize=20)
    stored = stored_events(flow, 45)
    # GIVEN SQS reports every 7th message as Failed on its first two attempts
    faults = FailEntries(lambda seq, attempt: seq % 7 == 0 and attempt <= 2)
    faults.install()
    request = {"entity_id": "u1", **WINDOW}

    replay = flow.replay("failed-entries", **request)

    # THEN every message is on the queue exactly once, as counted
    assert replay.status == "SUCCEEDED"
    expected, _ = reference_replay(stored, "failed-entries", "u1", **WINDOW)
    assert sorted(replay.messages, key=lambda m: m["seq"]) == expected
    assert replay.result["enqueued"] == len(replay.messages) == 45
    assert faults.reported == 2 * len([seq for seq in range(1, 46) if seq % 7 == 0])
    # AND the retries happened inside the page task: no page failed, the history shows the resends
    assert task_failures(flow, "failed-entries") == []
    pages = [json.loads(e["taskSucceededEventDetails"]["output"])["Payload"]["progress"]["last_page"]
             for e in flow.history("failed-entries") if e["type"] == "TaskSucceeded"][1:]  # fmt: skip
    assert sum(page["resent_entries"] for page in pages) == faults.reported
    assert sum(page["send_calls"] for page in pages) == flow.sqs_calls.send_message_batch


def test_entries_that_keep_failing_fail_the_page_which_the_state_machine_retries(workflow, fast_retries):
    flow = workflow(ReplayPageSize=20)
    stored = stored_events(flow, 25)
    # GIVEN seq 13 is reported Failed on its first 5 attempts (all the page task's attempts)
    faults = FailEntries(lambda seq, attempt: seq == 13 and attempt <= 5)
    faults.install()

    replay = flow.replay("page-retried", entity_id="u1", **WINDOW)

    # THEN the page failed once with SqsSendFailed, was retried whole, and the replay completed
    assert replay.status == "SUCCEEDED"
    assert task_failures(flow, "page-retried") == ["SqsSendFailed"]
    # AND the resent page repeated the same (replay_id, seq) messages: each seq has one body
    expected, _ = reference_replay(stored, "page-retried", "u1", **WINDOW)
    bodies_by_seq: dict[int, list[dict[str, Any]]] = {}
    for message in replay.messages:
        bodies_by_seq.setdefault(message["seq"], []).append(message)
    assert sorted(bodies_by_seq) == list(range(1, 26))
    assert all(all(body == expected[seq - 1] for body in bodies) for seq, bodies in bodies_by_seq.items())
    assert replay.result["enqueued"] == 25


def test_an_execution_that_cannot_deliver_fails_visibly(workflow, fast_retries):
    flow = workflow()
    stored_events(flow, 3)
    faults = FailEntries(lambda seq, attempt: seq == 2)
    faults.install()

    flow.start({"entity_id": "u1", **WINDOW}, "undeliverable")
    (execution,) = flow.wait("undeliverable")

    assert execution["status"] == "FAILED"
    assert execution["error"] == "SqsSendFailed"
    assert "seq 2" in json.loads(execution["cause"])["errorMessage"]
    assert task_failures(flow, "undeliverable") == ["SqsSendFailed"] * 6, "the first try and 5 retries"


def test_dynamodb_throttling_is_retried_by_the_client(workflow, fast_retries, faults: Faults):
    flow = workflow()
    stored = stored_events(flow, 12)
    throttle = faults.inject("dynamodb", "Query", THROTTLED, times=3)

    replay = flow.replay("throttled", entity_id="u1", **WINDOW)

    assert replay.status == "SUCCEEDED" and throttle.fired == 3 and throttle.seen == 4
    assert task_failures(flow, "throttled") == []
    assert sorted(replay.messages, key=lambda m: m["seq"]) == reference_replay(stored, "throttled", "u1", **WINDOW)[0]


def test_dynamodb_throttling_past_the_clients_retries_is_retried_by_the_state_machine(
    workflow, fast_retries, faults: Faults
):
    flow = workflow()
    stored = stored_events(flow, 12)
    # botocore's standard mode makes 1 + 8 attempts (evreplay.core.clients: max_attempts=8 retries)
    throttle = faults.inject("dynamodb", "Query", THROTTLED, times=CLIENT_ATTEMPTS)

    replay = flow.replay("throttled-long", entity_id="u1", **WINDOW)

    assert replay.status == "SUCCEEDED" and throttle.fired == 9 and throttle.seen == 10
    assert task_failures(flow, "throttled-long") == ["StorageUnavailable"]
    assert (
        sorted(replay.messages, key=lambda m: m["seq"]) == reference_replay(stored, "throttled-long", "u1", **WINDOW)[0]
    )
