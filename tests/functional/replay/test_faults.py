"""No message lost (DESIGN §4.8): faults injected at the botocore layer of the page function's own
clients. SendMessageBatch entries reported `Failed` are resent; DynamoDB throttling is retried by
botocore and, past its attempts, by the state machine; an execution that cannot deliver fails."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import botocore.retries.standard
import moto.stepfunctions.parser.asl.component.common.retry.retrier_decl as retrier_decl
import pytest
from botocore.awsrequest import AWSResponse
from evreplay import clients, replay_queue
from moto.core.botocore_stubber import MockRawResponse

from tests.functional.replay.conftest import WINDOW, Workflow, event
from tests.replay_reference import Occurrence, reference_replay


class FailEntries:
    """Makes SQS answer some SendMessageBatch entries as `Failed` (and not enqueue them), as SQS may."""

    def __init__(self, should_fail: Any) -> None:
        self.should_fail = should_fail  # (seq, attempt for that seq) -> bool
        self.attempts: dict[str, int] = {}
        self.failing: list[str] = []
        self.reported = 0

    def _failure(self, entry_id: str) -> dict[str, Any]:
        return {"Id": entry_id, "SenderFault": False, "Code": "InternalError", "Message": "injected"}

    def choose(self, params: dict[str, Any], **_: Any) -> None:
        self.failing = []
        for entry in params["Entries"]:
            self.attempts[entry["Id"]] = attempt = self.attempts.get(entry["Id"], 0) + 1
            if self.should_fail(int(entry["Id"]), attempt):
                self.failing.append(entry["Id"])
        kept = [entry for entry in params["Entries"] if entry["Id"] not in self.failing]
        if kept:  # SQS refuses an empty batch; an all-failed batch is answered without reaching moto
            params["Entries"] = kept

    def answer_all_failed(self, request: Any, **_: Any) -> AWSResponse | None:
        sent = json.loads(request.body)
        if not self.failing or len(self.failing) < len(sent["Entries"]):
            return None
        # botocore takes the first answer but still calls every before-send handler, moto's too:
        # point the request at a sink queue so that none of these entries reaches the replay queue.
        request.body = json.dumps({**sent, "QueueUrl": self.sink_url}).encode()
        body = json.dumps({"Successful": [], "Failed": [self._failure(i) for i in self.failing]}).encode()
        self.reported += len(self.failing)
        self.failing = []
        return AWSResponse(request.url, 200, {"Content-Type": "application/x-amz-json-1.0"}, MockRawResponse(body))

    def report(self, parsed: dict[str, Any], **_: Any) -> None:
        self.reported += len(self.failing)
        parsed.setdefault("Failed", []).extend(self._failure(i) for i in self.failing)
        self.failing = []

    def install(self) -> None:
        self.sink_url = clients.sqs().create_queue(QueueName="injected-failure-sink")["QueueUrl"]
        events = clients.sqs().meta.events
        events.register("before-parameter-build.sqs.SendMessageBatch", self.choose)
        events.register_first("before-send.sqs.SendMessageBatch", self.answer_all_failed)
        events.register("after-call.sqs.SendMessageBatch", self.report)


class Throttle:
    """The first `times` DynamoDB Query requests are throttled (HTTP 400 ProvisionedThroughputExceeded)."""

    def __init__(self, times: int) -> None:
        self.left = times
        self.sent = 0

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        self.sent += 1
        if self.left <= 0:
            return None
        self.left -= 1
        body = json.dumps({"__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                           "message": "injected throttling"}).encode()  # fmt: skip
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "throttled"}
        return AWSResponse(request.url, 400, headers, MockRawResponse(body))

    def install(self) -> None:
        clients.dynamodb().meta.events.register_first("before-send.dynamodb.Query", self)


@pytest.fixture
def fast_retries(monkeypatch):
    """Retry waits shortened (the waits are real in moto and botocore); the retry logic is untouched."""
    monkeypatch.setattr(retrier_decl, "time", SimpleNamespace(sleep=lambda seconds: None))
    monkeypatch.setattr(botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.01)
    monkeypatch.setattr(replay_queue, "FAILED_ENTRY_BACKOFF_SECONDS", 0.001)


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


def test_dynamodb_throttling_is_retried_by_the_client(workflow, fast_retries):
    flow = workflow()
    stored = stored_events(flow, 12)
    throttle = Throttle(times=3)
    throttle.install()

    replay = flow.replay("throttled", entity_id="u1", **WINDOW)

    assert replay.status == "SUCCEEDED" and throttle.left == 0 and throttle.sent == 4
    assert task_failures(flow, "throttled") == []
    assert sorted(replay.messages, key=lambda m: m["seq"]) == reference_replay(stored, "throttled", "u1", **WINDOW)[0]


def test_dynamodb_throttling_past_the_clients_retries_is_retried_by_the_state_machine(workflow, fast_retries):
    flow = workflow()
    stored = stored_events(flow, 12)
    # botocore's standard mode makes 1 + 8 attempts (evreplay.clients: max_attempts=8 retries)
    throttle = Throttle(times=9)
    throttle.install()

    replay = flow.replay("throttled-long", entity_id="u1", **WINDOW)

    assert replay.status == "SUCCEEDED" and throttle.left == 0 and throttle.sent == 10
    assert task_failures(flow, "throttled-long") == ["StorageUnavailable"]
    assert (
        sorted(replay.messages, key=lambda m: m["seq"]) == reference_replay(stored, "throttled-long", "u1", **WINDOW)[0]
    )
