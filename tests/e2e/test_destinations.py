"""`evreplay local --destination NAME=sqs-fifo|eventbridge` end to end (docs/design.md §4.12, §4.13): the stack
creates and declares the destinations, the CLI lists them and replays there with --destination, --format and
--rate, pauses and resumes; the messages are read back with boto3 at the AWS endpoint the stack prints."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from tests.stacks import RunningStack, wait_for

WINDOW = ("--start", "2025-12-28T00:00:00Z", "--end", "2025-12-29T00:00:00Z")


def ingest(stack: RunningStack, entity: str, count: int) -> None:
    events = [
        {
            "source": "e2e",
            "event_type": "purchase",
            "entity_id": entity,
            "event_time": f"2025-12-28T10:{n // 60:02d}:{n % 60:02d}Z",
            "event_id": f"e{n}",
            "payload": {"n": n},
        }
        for n in range(count)
    ]
    results = stack.api.post("/events/batch", {"events": events})["results"]
    assert {r["status"] for r in results} == {"ACCEPTED"}


def receive_all(sqs: Any, url: str, expected: int, timeout: float = 60.0) -> list[dict[str, Any]]:
    received: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(received) < expected:
        assert time.monotonic() < deadline, f"{len(received)} of {expected} messages arrived"
        batch = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        received.extend(batch)
        for message in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return received


def started_id(printed: str) -> str:
    return str(json.loads(printed)["replay_id"])


def test_the_cli_lists_the_local_destinations(local_stack: RunningStack) -> None:
    printed = local_stack.cli("destinations", "--json", check=True)

    items = json.loads(printed.stdout)["items"]
    assert [(i["name"], i["type"]) for i in items] == [
        ("default", "sqs"),
        ("team-orders", "sqs-fifo"),
        ("team-bus", "eventbridge"),
    ]
    assert items[1]["arn"].endswith(":team-orders.fifo") and items[2]["arn"].endswith(":event-bus/team-bus")


def test_a_paced_event_format_replay_to_the_fifo_queue_paused_and_resumed(local_stack: RunningStack) -> None:
    entity = f"dest-{uuid.uuid4().hex[:8]}"
    ingest(local_stack, entity, 30)
    sqs = local_stack.aws("sqs")
    url = sqs.get_queue_url(QueueName="team-orders.fifo")["QueueUrl"]

    # WHEN the CLI replays to team-orders, inline events, 5 a second; pauses it; resumes it
    printed = local_stack.cli(
        "replay", "start", "--entity-id", entity, *WINDOW, "--destination", "team-orders", "--format", "event",
        "--rate", "5", "--json", check=True,
    )  # fmt: skip
    replay_id = started_id(printed.stdout)
    wait_for(lambda: (local_stack.api.get(f"/replays/{replay_id}").get("progress") or {}).get("enqueued"), 30, "a page")
    local_stack.cli("replay", "pause", replay_id, "--json", check=True)
    paused = wait_for(
        lambda: (r := local_stack.api.get(f"/replays/{replay_id}"))["status"] != "RUNNING" and r, 30, "the pause"
    )
    assert paused["status"] == "PAUSED"
    local_stack.cli("replay", "resume", replay_id, "--json", check=True)
    waited = local_stack.cli("replay", "wait", replay_id, "--json", check=True)

    # THEN the FIFO queue holds the 30 stored events in order, one group, marked
    assert json.loads(waited.stdout)["status"] == "SUCCEEDED"
    received = receive_all(sqs, url, 30)
    bodies = [json.loads(m["Body"]) for m in received]
    assert [b["replay"] for b in bodies] == [{"replay_id": replay_id, "seq": n} for n in range(1, 31)]
    assert [b["event"]["payload"] for b in bodies] == [{"n": n} for n in range(30)]
    assert {m["Attributes"]["MessageGroupId"] for m in received} == {entity}
    assert [m["MessageAttributes"]["evreplay-seq"]["StringValue"] for m in received] == [str(n) for n in range(1, 31)]


def test_a_replay_to_the_event_bus_reaches_a_rule_on_evreplay_replay(local_stack: RunningStack) -> None:
    entity = f"bus-{uuid.uuid4().hex[:8]}"
    ingest(local_stack, entity, 12)
    sqs, events = local_stack.aws("sqs"), local_stack.aws("events")
    # GIVEN the team's rule on the bus, feeding a queue of theirs
    target = sqs.create_queue(QueueName=f"rule-target-{entity}")["QueueUrl"]
    target_arn = sqs.get_queue_attributes(QueueUrl=target, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule = f"replays-{entity}"
    pattern = {"source": ["evreplay.replay"], "detail": {"entity_id": [entity]}}
    events.put_rule(Name=rule, EventBusName="team-bus", EventPattern=json.dumps(pattern))
    events.put_targets(Rule=rule, EventBusName="team-bus", Targets=[{"Id": "q", "Arn": target_arn}])

    printed = local_stack.cli(
        "replay", "start", "--entity-id", entity, *WINDOW, "--destination", "team-bus", "--wait", "--json", check=True
    )

    assert json.loads(printed.stdout)["result"]["enqueued"] == 12
    delivered = [json.loads(m["Body"]) for m in receive_all(sqs, target, 12)]
    assert {(d["source"], d["detail-type"]) for d in delivered} == {("evreplay.replay", "purchase")}
    assert sorted(d["detail"]["seq"] for d in delivered) == list(range(1, 13))
