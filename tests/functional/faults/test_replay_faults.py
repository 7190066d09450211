"""The replay workflow under AWS faults: every call the state machine, its two Lambda tasks and the
replay API make, failed the ways AWS fails it (docs/design.md §4.8: no message lost; failures visible).

The calls:
- ValidateRequest (Lambda): DynamoDB BatchWriteItem - the replay's audit records;
- ReplayPage (Lambda): DynamoDB Query (one index page), BatchGetItem (registry counts), PutItem
  (per-replay duplicate claims), GetItem (a claim read past the limit), SQS SendMessageBatch;
- the state machine itself: Lambda Invoke of each task, Step Functions StartExecution (continue in
  a new execution);
- the replay API: Step Functions StartExecution (POST /replays), DescribeExecution (GET /replays/{id}).

The scenario makes every one of them happen: 13 stored rows of a fresh entity (e01 twice on one
page, e10 twice with its second arrival past the limit), limit 10, pages of 10 rows and one page
per execution (so the replay continues in a second execution). Under each fault the replay
succeeds - botocore retried the call, or the state machine retried the task - and the queue holds
exactly the reference's messages: each seq at least once, every copy of a seq the same message
(a retried page resends the same (replay_id, seq), which the processor applies once).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from evreplay.core.idempotency import IN_PROGRESS_SECONDS
from evreplay.core.settings import reset_settings
from evreplay.local import moto_patches
from evreplay.local.workflow import deploy_workflow
from evreplay.replay import tasks as replay_tasks

from tests.builders import WINDOW, event
from tests.faults import (
    APPLIED_THEN_INTERNAL,
    CLIENT_ATTEMPTS,
    CONNECT_TIMEOUT,
    INTERNAL,
    READ_TIMEOUT,
    THROTTLED,
    Faults,
    Kind,
    body_has,
    url_has,
)
from tests.replay_reference import Occurrence, reference_replay
from tests.stacks import (
    LONGEST_WAIT,
    SqsCalls,
    Stack,
    Workflow,
    configure,
    error_shape,
    occurrence_rows,
    raw_keys_of,
    retry_as_advised,
    workflow_clients,
)

PARAMETERS = {"ReplayPageSize": 10, "ReplayPagesPerExecution": 1}
LIMIT = 10


@pytest.fixture(scope="module")
def flow(module_stack: Stack) -> Iterator[Workflow]:
    """The template's functions and state machine, deployed once for the module's cells."""
    saved = dict(os.environ)
    template = configure(module_stack, PARAMETERS)
    moto_patches.apply(template)
    handles = workflow_clients()
    arns = deploy_workflow(template, handles)
    flow = Workflow(module_stack, template, handles["stepfunctions"], arns["ReplayStateMachine"], SqsCalls())
    yield flow
    deadline = time.monotonic() + 10  # nothing may keep running into another module's moto
    while flow.sfn.list_executions(stateMachineArn=flow.state_machine_arn, statusFilter="RUNNING")["executions"]:
        assert time.monotonic() < deadline, "an execution is still running"
        time.sleep(0.05)
    os.environ.clear()
    os.environ.update(saved)
    reset_settings()
    replay_tasks.reset()


def stored(flow: Workflow) -> tuple[str, list[Occurrence]]:
    """A fresh entity's 13 rows (see the module docstring), stored through the ingest API."""
    entity = f"u-{uuid.uuid4().hex[:8]}"
    bodies = [event(entity, f"2025-12-28T10:{m:02d}:00Z", f"e{m:02d}") for m in range(11)]
    bodies.insert(2, event(entity, "2025-12-28T10:01:00Z", "e01", v=2))  # same page, later arrival
    bodies.append(event(entity, "2025-12-28T11:00:00Z", "e10", v=2))  # past the limit: a claim read
    for body in bodies:  # one at a time: arrival order is list order
        flow.post(body)
    rows = sorted(occurrence_rows(flow.stack, entity), key=lambda row: row["arrival_id"])
    return entity, [
        Occurrence(entity, row["event_id"], row["event_time"], arrival, row["s3_bucket"], row["s3_key"])
        for arrival, row in enumerate(rows)
    ]


def replay(flow: Workflow, entity: str, name: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run a replay of the entity's day by hand (as the console would); its executions and messages."""
    flow.drain()  # whatever a failed cell before this one left behind
    flow.start({"entity_id": entity, **WINDOW, "limit": LIMIT}, name)
    deadline = time.monotonic() + 60
    executions = flow.wait(name)
    while any(execution["status"] == "RUNNING" for execution in executions):  # one still retrying
        assert time.monotonic() < deadline, executions
        time.sleep(0.05)
        executions = flow.wait(name)
    messages = flow.drain()
    assert {message["replay_id"] for message in messages} <= {name}, "nothing of another cell on the queue"
    return executions, messages


def task_failures(flow: Workflow, executions: list[dict[str, Any]]) -> list[str]:
    return [
        event["taskFailedEventDetails"]["error"]
        for execution in executions
        for event in flow.history(execution["name"])
        if event["type"] == "TaskFailed"
    ]


def assert_reference_messages(
    messages: list[dict[str, Any]], occurrences: list[Occurrence], name: str, entity: str
) -> dict[int, int]:
    """Every seq of the reference at least once, every copy identical; returns seq -> copies."""
    expected, _ = reference_replay(occurrences, name, entity, **WINDOW, limit=LIMIT)
    copies: dict[int, int] = {}
    for message in messages:
        assert message == expected[message["seq"] - 1], message
        copies[message["seq"]] = copies.get(message["seq"], 0) + 1
    assert sorted(copies) == list(range(1, len(expected) + 1)), "no message lost"
    return copies


def assert_result(executions: list[dict[str, Any]], occurrences: list[Occurrence], name: str, entity: str) -> None:
    _, result = reference_replay(occurrences, name, entity, **WINDOW, limit=LIMIT)
    output = json.loads(executions[-1]["output"])
    assert {key: output[key] for key in result} == result
    assert output["pages"] == 2 and result["truncated"] is True


# ---------------------------------------------------------------- the tasks' own calls (botocore)
STATE_TABLE = "ReplayStateTable"
TASK_CALLS = [
    ("dynamodb", "BatchWriteItem", "StorageUnavailable"),
    ("dynamodb", "Query", "StorageUnavailable"),
    ("dynamodb", "BatchGetItem", "StorageUnavailable"),
    ("dynamodb", "PutItem", "StorageUnavailable"),
    ("dynamodb", "GetItem", "StorageUnavailable"),
    ("sqs", "SendMessageBatch", "SqsSendFailed"),
]
TASK_CELLS = [
    pytest.param(service, operation, kind, times, error, id=f"{operation}-{kind}-{label}")
    for service, operation, error in TASK_CALLS
    for kind, times, label in [
        (THROTTLED, 1, "once"),
        (READ_TIMEOUT, 1, "once"),
        (THROTTLED, CLIENT_ATTEMPTS, "past-the-client"),
        (INTERNAL, CLIENT_ATTEMPTS, "past-the-client"),
        (CONNECT_TIMEOUT, CLIENT_ATTEMPTS, "past-the-client"),
        (READ_TIMEOUT, CLIENT_ATTEMPTS, "past-the-client"),
    ]
]


@pytest.mark.parametrize(("service", "operation", "kind", "times", "error"), TASK_CELLS)
def test_task_call_under_fault_is_retried_and_every_message_arrives(
    flow, faults: Faults, fast_retries, service, operation, kind: Kind, times, error
):
    entity, occurrences = stored(flow)
    name = f"r-{uuid.uuid4().hex[:12]}"
    # GIVEN the call fails once (botocore retries it) or on all 9 attempts of one call (the task
    # fails; the state machine retries it)
    fault = faults.inject(service, operation, kind, times=times)

    executions, messages = replay(flow, entity, name)

    # THEN the replay succeeded and its messages are the reference's, none lost
    assert fault.fired == times, "the call was made, and failed as often as asked"
    assert [execution["status"] for execution in executions] == ["SUCCEEDED", "SUCCEEDED"]
    copies = assert_reference_messages(messages, occurrences, name, entity)
    assert_result(executions, occurrences, name, entity)
    # AND the failure shows in the history exactly when the task had to be retried
    assert task_failures(flow, executions) == ([] if times == 1 else [error])
    if not kind.lost and operation == "SendMessageBatch":
        assert set(copies.values()) == {1}, "a refused send enqueued nothing"


# ---------------------------------------------------------------- the state machine's own calls
def _continuation(request: Any) -> bool:
    return b"continuation" in (request.body if isinstance(request.body, bytes) else request.body.encode())


MACHINE_CELLS = [
    pytest.param("lambda", "Invoke", url_has("ValidateReplayFunction"), THROTTLED,
                 "Lambda.TooManyRequestsException", id="Invoke-ValidateRequest-throttled"),
    pytest.param("lambda", "Invoke", url_has("ValidateReplayFunction"), INTERNAL,
                 "Lambda.ServiceException", id="Invoke-ValidateRequest-internal"),
    pytest.param("lambda", "Invoke", url_has("ReplayPageFunction"), THROTTLED,
                 "Lambda.TooManyRequestsException", id="Invoke-ReplayPage-throttled"),
    pytest.param("lambda", "Invoke", url_has("ReplayPageFunction"), INTERNAL,
                 "Lambda.ServiceException", id="Invoke-ReplayPage-internal"),
    # the page ran (its messages are on the queue) and its invocation is reported failed
    pytest.param("lambda", "Invoke", url_has("ReplayPageFunction"), APPLIED_THEN_INTERNAL,
                 "Lambda.ServiceException", id="Invoke-ReplayPage-applied-then-internal"),
    pytest.param("sfn", "StartExecution", _continuation, THROTTLED,
                 "StepFunctions.", id="StartExecution-ContinueAsNew-throttled"),
    pytest.param("sfn", "StartExecution", _continuation, INTERNAL,
                 "StepFunctions.", id="StartExecution-ContinueAsNew-internal"),
    pytest.param("sfn", "StartExecution", _continuation, APPLIED_THEN_INTERNAL,
                 "StepFunctions.", id="StartExecution-ContinueAsNew-applied-then-internal"),
]  # fmt: skip


@pytest.mark.parametrize(("service", "operation", "when", "kind", "error"), MACHINE_CELLS)
def test_state_machine_call_under_fault_is_retried_by_the_state_machine(
    flow, faults: Faults, fast_retries, service, operation, when, kind: Kind, error
):
    entity, occurrences = stored(flow)
    name = f"r-{uuid.uuid4().hex[:12]}"
    # GIVEN one of the interpreter's own calls fails once (its client does not retry: the ASL does)
    fault = faults.inject(service, operation, kind, times=1, when=when)

    executions, messages = replay(flow, entity, name)

    assert fault.fired == 1
    assert [execution["status"] for execution in executions] == ["SUCCEEDED", "SUCCEEDED"]
    (failure,) = task_failures(flow, executions)
    assert failure.startswith(error), failure
    copies = assert_reference_messages(messages, occurrences, name, entity)
    assert_result(executions, occurrences, name, entity)
    if kind is APPLIED_THEN_INTERNAL and operation == "Invoke":
        assert max(copies.values()) == 2, "the retried page sent its messages again, same seq"


def test_continuation_started_but_unanswered_after_it_finished_does_not_fail_the_replay(
    flow, faults: Faults, fast_retries
):
    """StartExecution of the continuation applied, its answer lost, and the continuation already
    finished when the state machine retries: Step Functions answers ExecutionAlreadyExists."""
    entity, occurrences = stored(flow)
    name = f"r-{uuid.uuid4().hex[:12]}"
    child = f"{name}--c1"

    def child_finishes() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                status = flow.sfn.describe_execution(executionArn=flow.execution_arn(child))["status"]
            except flow.sfn.exceptions.ExecutionDoesNotExist:
                status = "PENDING"
            if status != "RUNNING" and status != "PENDING":
                return
            time.sleep(0.02)
        raise AssertionError("the continuation did not finish")

    faults.inject("sfn", "StartExecution", APPLIED_THEN_INTERNAL, when=_continuation, meanwhile=child_finishes)

    executions, messages = replay(flow, entity, name)

    # THEN both executions succeeded: the parent knows its continuation is the one that exists
    assert [execution["status"] for execution in executions] == ["SUCCEEDED", "SUCCEEDED"]
    assert json.loads(executions[0]["output"])["continued_as"] == child
    assert_reference_messages(messages, occurrences, name, entity)
    assert_result(executions, occurrences, name, entity)


def test_execution_that_cannot_read_the_index_fails_visibly(flow, faults: Faults, fast_retries):
    entity, _ = stored(flow)
    name = f"r-{uuid.uuid4().hex[:12]}"
    faults.inject("dynamodb", "Query", INTERNAL, times=10**9)

    executions, messages = replay(flow, entity, name)

    (execution,) = executions
    assert (execution["status"], execution["error"]) == ("FAILED", "StorageUnavailable")
    assert task_failures(flow, executions) == ["StorageUnavailable"] * 6, "the first try and 5 retries"
    assert messages == []


# ---------------------------------------------------------------- the replay API's calls
def post_replay(flow: Workflow, entity: str, key: str | None = None) -> Any:
    headers = {"Idempotency-Key": key} if key else None
    return flow.stack.gateway.request("POST", "/replays", {"entity_id": entity, **WINDOW, "limit": LIMIT}, headers)


def api_start(entity: str) -> Any:
    """StartExecution of a replay of this entity by the API (not the workflow's continuation)."""
    mentions = body_has(entity)
    return lambda request: mentions(request) and not _continuation(request)


def executions_of(flow: Workflow, entity: str) -> list[dict[str, Any]]:
    """Every execution whose input is a replay of this entity (continuations excluded)."""
    found = []
    for page in flow.sfn.get_paginator("list_executions").paginate(stateMachineArn=flow.state_machine_arn):
        for execution in page["executions"]:
            if "--c" in execution["name"]:
                continue
            described = flow.sfn.describe_execution(executionArn=execution["executionArn"])
            if json.loads(described["input"]).get("entity_id") == entity:
                found.append(described)
    return found


@pytest.mark.parametrize(
    ("kind", "times"),
    [(THROTTLED, 1), (READ_TIMEOUT, 1), (THROTTLED, 10**9), (INTERNAL, 10**9), (CONNECT_TIMEOUT, 10**9),
     (READ_TIMEOUT, 10**9)],
    ids=["throttled-once", "read-timeout-once", "throttled-always", "internal-always", "connect-timeout-always",
         "read-timeout-always"],
)  # fmt: skip
def test_post_replays_under_fault_starts_one_replay_or_answers_503(flow, faults: Faults, fast_retries, kind, times):
    entity, _ = stored(flow)
    fault = faults.inject("sfn", "StartExecution", kind, times=times, when=api_start(entity))

    answer = post_replay(flow, entity)
    faults.clear()

    assert fault.fired >= 1
    if times == 1:
        assert answer.status == 202, answer.body
        (execution,) = executions_of(flow, entity)
        assert execution["name"] == answer.json()["replay_id"]
    else:
        assert answer.status == 503 and error_shape(answer.json())["code"] == "StorageUnavailable"
        if not kind.lost:
            assert executions_of(flow, entity) == [], "a refused start started nothing"
    for replay_id in {execution["name"] for execution in executions_of(flow, entity)}:
        flow.wait(replay_id)
    flow.drain()


def test_post_replays_whose_answer_is_lost_until_the_replay_finished_answers_that_replay(
    flow, faults: Faults, fast_retries
):
    """botocore's retry of StartExecution meets ExecutionAlreadyExists: the execution its first
    attempt started (same name, same input) has already finished."""
    entity, _ = stored(flow)

    def replay_finishes() -> None:
        (execution,) = executions_of(flow, entity)
        flow.wait(execution["name"])

    faults.inject("sfn", "StartExecution", READ_TIMEOUT, when=api_start(entity), meanwhile=replay_finishes)

    answer = post_replay(flow, entity)

    assert answer.status == 202, answer.body
    (execution,) = executions_of(flow, entity)
    assert (answer.json()["replay_id"], answer.json()["execution_arn"]) == (
        execution["name"],
        execution["executionArn"],
    )
    flow.drain()


def _in_progress_record(request: Any) -> bool:
    return b"INPROGRESS" in (request.body or b"")


def _completed_record(request: Any) -> bool:
    return b"COMPLETED" in (request.body or b"")


@pytest.mark.parametrize("kind", [READ_TIMEOUT, APPLIED_THEN_INTERNAL], ids=str)
def test_keyed_start_whose_record_put_lost_its_answer_starts_one_replay_at_once(
    flow, faults: Faults, fast_retries, kind
):
    # GIVEN the idempotency record's PutItem is applied and its answer lost (botocore retries it)
    entity, _ = stored(flow)
    key = f"replay-{uuid.uuid4().hex}"
    put = faults.inject("dynamodb", "PutItem", kind, when=_in_progress_record)

    first = post_replay(flow, entity, key)
    faults.clear()

    # THEN the retried put knows the record for its own: 202 at once, and a retry answers its bytes
    assert put.fired == 1
    assert first.status == 202, first.body
    again = post_replay(flow, entity, key)
    assert (again.status, again.body) == (202, first.body)
    (execution,) = executions_of(flow, entity)
    assert execution["name"] == first.json()["replay_id"]
    flow.wait(execution["name"])
    flow.drain()


KEYED_STANDING = [
    pytest.param([("sfn", "StartExecution", INTERNAL), ("dynamodb", "DeleteItem", INTERNAL)], False,
                 id="failed-and-its-record-could-not-be-deleted"),
    pytest.param([("dynamodb", "UpdateItem", INTERNAL)], True, id="started-but-its-answer-could-not-be-recorded"),
]  # fmt: skip


@pytest.mark.parametrize(("failing", "started_by_first"), KEYED_STANDING)
def test_keyed_start_that_leaves_its_record_in_progress_is_retried_into_one_replay_within_the_bound(
    flow, faults: Faults, fast_retries, failing, started_by_first
):
    # GIVEN a keyed start that fails after saving its idempotency record and leaves it standing
    entity, _ = stored(flow)
    key = f"replay-{uuid.uuid4().hex}"
    for service, operation, kind in failing:
        when = _completed_record if operation == "UpdateItem" else api_start(entity) if service == "sfn" else None
        faults.inject(service, operation, kind, times=10**9, when=when)
    first = post_replay(flow, entity, key)
    faults.clear()
    assert first.status == 503 and error_shape(first.json())["code"] == "StorageUnavailable", first.body
    assert len(executions_of(flow, entity)) == (1 if started_by_first else 0)

    # WHEN the caller retries as advised (each retry is a new API request: another requested_by)
    retried = retry_as_advised(lambda: post_replay(flow, entity, key), first)

    # THEN 409 for at most the window, then 202: one replay, the one the first attempt started if
    # it started one (its execution name comes from the key and the request)
    assert retried.final.status == 202, retried.statuses
    assert set(retried.statuses[1:-1]) == {409} and retried.seconds <= IN_PROGRESS_SECONDS + LONGEST_WAIT + 1
    (execution,) = executions_of(flow, entity)
    assert execution["name"] == retried.final.json()["replay_id"]
    assert post_replay(flow, entity, key).body == retried.final.body
    flow.wait(execution["name"])
    flow.drain()


@pytest.mark.parametrize(("kind", "times"), [(THROTTLED, 1), (THROTTLED, 10**9), (CONNECT_TIMEOUT, 10**9)],
                         ids=["throttled-once", "throttled-always", "connect-timeout-always"])  # fmt: skip
def test_get_replay_under_fault_answers_the_replay_or_503_never_404(flow, faults: Faults, fast_retries, kind, times):
    entity, _ = stored(flow)
    name = f"r-{uuid.uuid4().hex[:12]}"
    replay(flow, entity, name)
    faults.inject("sfn", "DescribeExecution", kind, times=times)

    answer = flow.stack.gateway.request("GET", f"/replays/{name}")
    faults.clear()

    if times == 1:
        assert answer.status == 200 and answer.json()["status"] == "SUCCEEDED"
    else:
        assert answer.status == 503 and error_shape(answer.json())["code"] == "StorageUnavailable"
    again = flow.stack.gateway.request("GET", f"/replays/{name}")
    assert again.status == 200 and again.json()["result"]["enqueued"] == LIMIT


# ---------------------------------------------------------------- end to end: one effect
def test_resent_messages_and_the_unindexed_leftover_reach_the_aggregates_once(flow, faults: Faults, fast_retries):
    """A page whose sends were applied but unanswered is retried: its messages are on the queue
    twice; an event whose index write failed left a raw object no row points at. The processor,
    fed everything on the queue, counts each replayed event once and never the leftover."""
    from evreplay.local.runtime import invoke

    from tests.builders import sqs_event
    from tests.stacks import PROCESSOR, aggregates

    entity, occurrences = stored(flow)
    # GIVEN one more event whose index write fails on every attempt: 503, a raw object left behind
    late = event(entity, "2025-12-28T10:30:00Z", "late")
    faults.inject("dynamodb", "TransactWriteItems", INTERNAL, times=10**9)
    assert flow.stack.gateway.request("POST", "/events", late, {"Idempotency-Key": f"k-{entity}"}).status == 503
    faults.clear()
    (leftover,) = set(raw_keys_of(flow.stack, entity)) - {o.s3_key for o in occurrences}
    # AND SendMessageBatch applied on every attempt of one call, its answers lost
    faults.inject("sqs", "SendMessageBatch", READ_TIMEOUT, times=1)
    name = f"r-{uuid.uuid4().hex[:12]}"

    # WHEN the entity's day is replayed and the processor drains the queue
    _, messages = replay(flow, entity, name)
    copies = assert_reference_messages(messages, occurrences, name, entity)
    assert max(copies.values()) > 1, "the retried send resent"
    assert leftover not in {message["s3_key"] for message in messages}, "the leftover is never replayed"
    bodies = [json.dumps(message) for message in messages]
    for start in range(0, len(bodies), 10):
        response = invoke(flow.template.function_handler(PROCESSOR), sqs_event(bodies[start : start + 10]), PROCESSOR)
        assert response["batchItemFailures"] == []

    # THEN the version counts each of the replay's 10 messages once
    (version,) = [v for v in aggregates(flow.stack, entity, "2025-12-28") if v["replay_id"] == name]
    assert (version["input_count"], version["daily_event_count"]) == (LIMIT, LIMIT)
    # AND the retried request stores and indexes its own object; the leftover stays unindexed
    retry = flow.stack.gateway.request("POST", "/events", late, {"Idempotency-Key": f"k-{entity}"})
    assert retry.status == 201
    assert leftover not in {row["s3_key"] for row in occurrence_rows(flow.stack, entity)}
    assert retry.json()["s3_key"] in {row["s3_key"] for row in occurrence_rows(flow.stack, entity)}
