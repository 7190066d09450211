"""The replay queue driven into the processor as Lambda's SQS trigger would: batches of the
template's BatchSize, partial failures left on the queue, the RedrivePolicy's DLQ after
maxReceiveCount receives, nothing else lost."""

from __future__ import annotations

import json
import threading
import time

import pytest
from evreplay.local import queue_driver as driver_module
from evreplay.local.queue_driver import DrainStats, QueueDriver
from evreplay.local.runtime import function_lock

from tests.builders import emf, event_at, replay_id_of
from tests.stacks import PROCESSOR, aggregates, expected_hash, ingest, replay_messages, send, version


def queue_counts(stack, logical_id: str) -> tuple[int, int]:
    """(visible, in flight) messages of a template queue."""
    attributes = stack.sqs.get_queue_attributes(
        QueueUrl=stack.template.ref(logical_id),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def dlq_messages(stack) -> list[dict]:
    return stack.sqs.receive_message(
        QueueUrl=stack.template.ref("ReplayDeadLetterQueue"),
        MaxNumberOfMessages=10,
        VisibilityTimeout=30,
        MessageSystemAttributeNames=["All"],
    ).get("Messages", [])


def test_replay_on_the_queue_is_drained_in_template_sized_batches(stack, driver):
    # GIVEN a replay of 23 events on the replay queue
    ingest(stack, [event_at("kim", i) for i in range(23)])
    bodies = replay_messages(stack, "kim")
    send(stack, bodies)

    # WHEN the driver drains it
    stats = driver().drain()

    # THEN it ran batches of at most 10 (the trigger's BatchSize), deleted every message, and
    # the version holds all 23 with the hash computed in one go
    assert (stats.rounds, stats.received, stats.succeeded, stats.failed) == (3, 23, 23, 0)
    assert queue_counts(stack, "ReplayQueue") == (0, 0)
    found = version(stack, "kim", replay_id_of(bodies))
    assert found["input_count"] == 23
    assert found["inputs_hash"] == expected_hash(stack, "kim")


def test_poison_messages_end_in_the_dlq_after_max_receives_and_nothing_else_is_lost(stack, driver, capsys):
    # GIVEN good messages mixed with a missing-object message and a body that is no replay message
    ingest(stack, [event_at("lou", i) for i in range(12)])
    bodies = replay_messages(stack, "lou")
    missing = {**json.loads(bodies[0]), "seq": 13, "s3_key": "raw/source=test/vanished.json"}
    send(stack, [*bodies[:6], json.dumps(missing), "garbage", *bodies[6:]])
    max_receives = json.loads(
        stack.sqs.get_queue_attributes(QueueUrl=stack.template.ref("ReplayQueue"), AttributeNames=["RedrivePolicy"])[
            "Attributes"
        ]["RedrivePolicy"]
    )["maxReceiveCount"]
    assert max_receives == 5
    capsys.readouterr()

    # WHEN the driver drains the queue, failed messages coming back at once
    stats = driver(retry_visibility_timeout=0).drain(max_rounds=50)

    # THEN both bad messages were tried maxReceiveCount times, then moved to the DLQ (by the
    # queue's redrive policy on the next receive), with their bodies intact
    assert stats.failed == 2 * max_receives
    assert stats.succeeded == 12
    landed = dlq_messages(stack)
    assert sorted(message["Body"] for message in landed) == sorted([json.dumps(missing), "garbage"])
    assert all(int(message["Attributes"]["ApproximateReceiveCount"]) >= max_receives for message in landed)
    # AND every good message was folded exactly once, nothing left on the replay queue
    assert queue_counts(stack, "ReplayQueue") == (0, 0)
    assert version(stack, "lou", replay_id_of(bodies))["input_count"] == 12
    # AND each failed receive was counted
    assert emf(capsys.readouterr().out)["ProcessorErrorCount"] == 2 * max_receives


def test_a_failed_message_comes_back_after_its_visibility_timeout(stack, driver):
    send(stack, ["not a replay message"])
    patient = driver(retry_visibility_timeout=1)

    first = patient.drain()
    right_after = patient.drain()
    time.sleep(1.3)
    later = patient.drain(max_rounds=1)

    assert (first.failed, right_after.received, later.received) == (1, 0, 1)
    assert queue_counts(stack, "ReplayQueue") == (0, 1)


def test_records_have_the_shape_lambda_gives_them(stack, driver, monkeypatch):
    seen: list[dict] = []
    monkeypatch.setattr(driver_module, "invoke", lambda handler, event, name, timeout: seen.append(event))
    send(stack, ['{"hello": 1}'])

    driver().drain()

    ((record,),) = [event["Records"] for event in seen]
    assert record["body"] == '{"hello": 1}'
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == "arn:aws:sqs:us-east-1:123456789012:ReplayQueue"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert {"SentTimestamp", "ApproximateFirstReceiveTimestamp"} <= set(record["attributes"])
    assert record["messageId"] and record["receiptHandle"] and record["awsRegion"] == "us-east-1"


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param("raise", id="handler raises"),
        pytest.param({"batchItemFailures": [{"itemIdentifier": "not-in-this-batch"}]}, id="unknown id"),
        pytest.param({"batchItemFailures": [{"itemIdentifier": ""}]}, id="empty id"),
        pytest.param("not a dict", id="malformed response"),
    ],
)
def test_whole_batch_fails_when_lambda_would_fail_it(stack, driver, monkeypatch, answer):
    def fake_invoke(handler, event, name, timeout):
        if answer == "raise":
            raise RuntimeError("boom")
        return answer

    monkeypatch.setattr(driver_module, "invoke", fake_invoke)
    send(stack, ["a", "b", "c"])

    stats = driver(retry_visibility_timeout=30).drain()

    assert (stats.received, stats.succeeded, stats.failed) == (3, 0, 3)
    assert queue_counts(stack, "ReplayQueue") == (0, 3)


def test_run_loop_processes_messages_until_stopped(stack, driver):
    ingest(stack, [event_at("max", i) for i in range(4)])
    bodies = replay_messages(stack, "max")
    loop: QueueDriver = driver()
    stop = threading.Event()
    thread = threading.Thread(target=loop.run, args=(stop,), daemon=True)
    thread.start()
    try:
        send(stack, bodies)
        deadline = time.monotonic() + 10
        while loop.totals.succeeded < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(5)

    assert not thread.is_alive()
    assert loop.totals.succeeded == 4
    assert version(stack, "max", replay_id_of(bodies))["input_count"] == 4


def test_driver_runs_the_function_only_while_it_holds_the_functions_lock(stack, driver):
    # GIVEN a replay on the queue, and the processor's lock held elsewhere (an invocation running
    # on another thread, as the API server or moto's invokes hold it)
    ingest(stack, [event_at("ned", i) for i in range(3)])
    bodies = replay_messages(stack, "ned")
    send(stack, bodies)
    lock = function_lock(PROCESSOR)
    poller: QueueDriver = driver()
    polled: list[DrainStats] = []
    worker = threading.Thread(target=lambda: polled.append(poller.poll_once()), daemon=True)

    with lock:
        worker.start()
        # WHEN the driver has received the batch: it waits for the lock, the function not run yet
        deadline = time.monotonic() + 10
        while not lock._waiting and worker.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(lock._waiting) == 1, "the driver did not wait for the function's lock"
        assert aggregates(stack, "ned") == []

    # THEN once the lock is free it runs the batch
    worker.join(10)
    assert polled and (polled[0].received, polled[0].succeeded) == (3, 3)
    assert version(stack, "ned", replay_id_of(bodies))["input_count"] == 3
