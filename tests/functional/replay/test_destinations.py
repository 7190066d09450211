"""docs/design.md §4.12: replays into the team's own pipeline. Real moto queues and buses declared through
the template parameter ReplayDestinations, the real state machine on moto's interpreter, the messages read
back off the destination: exactly the selected messages, marked; FIFO order per entity; EventBridge entries
a rule on `evreplay.replay` matches; `event` bodies equal to the stored events; oversize events as
pointers; partial failures of SendMessageBatch and PutEvents resent without loss."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import pytest
from evreplay.local.template import ACCOUNT_ID as ACCOUNT

from tests.builders import WINDOW, event
from tests.faults import FailEntries, FailPutEvents
from tests.stacks import Destinations, deploy

POINTER_FIELDS = ["replay_id", "seq", "event_id", "entity_id", "event_time", "s3_bucket", "s3_key"]


def marking(message: dict[str, Any]) -> tuple[str, int]:
    attributes = message["MessageAttributes"]
    return attributes["evreplay-replay-id"]["StringValue"], int(attributes["evreplay-seq"]["StringValue"])


def test_a_standard_queue_receives_exactly_the_selected_messages_marked(workflow, destinations):
    flow = deploy(workflow, destinations, ReplayPageSize=10)
    # GIVEN 25 events of u1 (one duplicate) and some of another entity
    flow.ingest([event("u1", f"2025-12-28T10:00:{s:02d}Z", f"e{s}") for s in range(24)])
    flow.ingest([event("u1", "2025-12-28T11:00:00Z", "e3"), event("u2", "2025-12-28T10:00:00Z", "x")])

    # WHEN u1 is replayed to the declared queue `orders`
    reference = flow.replay("to-default", entity_id="u1", **WINDOW)
    replay = flow.replay("to-orders", entity_id="u1", destination="orders", **WINDOW)

    # THEN orders holds the messages the built-in queue would have held, each marked, and nothing else
    assert replay.status == "SUCCEEDED" and replay.messages == []
    received = destinations.receive(destinations.orders)
    bodies = sorted((json.loads(m["Body"]) for m in received), key=lambda b: b["seq"])
    expected = [{**b, "replay_id": "to-orders"} for b in sorted(reference.messages, key=lambda b: b["seq"])]
    assert bodies == expected and len(bodies) == 24
    assert all(list(body) == POINTER_FIELDS for body in bodies)
    assert sorted(marking(m) for m in received) == [("to-orders", seq) for seq in range(1, 25)]
    assert replay.output["request"]["destination"] == "orders"


def test_a_fifo_queue_keeps_each_entitys_order_across_pages_and_workers(workflow, destinations):
    flow = deploy(workflow, destinations, ReplayPageSize=10)
    # GIVEN 4 entities of 23 events each (3 pages each), events of one entity interleaved with others'
    flow.ingest(
        [
            event(f"user-{e}", f"2025-12-28T{10 + n // 60:02d}:{n % 60:02d}:00Z", f"e{n}")
            for n in range(23)
            for e in range(4)
        ]
    )

    # WHEN a stream replay with 3 workers sends them to the FIFO queue
    replay = flow.replay("fifo", source="ios_app", destination="ordered", max_concurrency=3, limit=1000, **WINDOW)

    # THEN each entity is one message group, in seq order (= event_time order), every seq once
    assert replay.status == "SUCCEEDED", replay.last
    received = destinations.receive(destinations.ordered)
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for message in received:
        body = json.loads(message["Body"])
        assert message["Attributes"]["MessageGroupId"] == body["entity_id"]
        groups[body["entity_id"]].append(body)
    assert sorted(groups) == [f"user-{e}" for e in range(4)]
    for bodies in groups.values():
        assert [b["event_time"] for b in bodies] == sorted(b["event_time"] for b in bodies)
        assert [b["seq"] for b in bodies] == sorted(b["seq"] for b in bodies) and len(bodies) == 23
    assert sorted(marking(m)[1] for m in received) == list(range(1, 93))
    assert len({m["Attributes"]["MessageDeduplicationId"] for m in received}) == 92


def test_eventbridge_entries_are_matched_by_a_rule_on_evreplay_replay(workflow, destinations):
    flow = deploy(workflow, destinations)
    flow.ingest([event("u1", f"2025-12-28T10:00:{s:02d}Z", f"e{s}") for s in range(12)])
    flow.ingest([{**event("u1", "2025-12-28T12:00:00Z", "r1"), "event_type": "refund"}])

    replay = flow.replay("to-bus", entity_id="u1", destination="bus", **WINDOW)

    # THEN the rule delivered every entry: Source evreplay.replay, DetailType the event type, Detail the body
    assert replay.status == "SUCCEEDED"
    delivered = [json.loads(m["Body"]) for m in destinations.receive(destinations.rule_target)]
    assert {d["source"] for d in delivered} == {"evreplay.replay"}
    by_seq = {d["detail"]["seq"]: d for d in delivered}
    assert sorted(by_seq) == list(range(1, 14))
    assert by_seq[13]["detail-type"] == "refund" and by_seq[1]["detail-type"] == "purchase"
    assert list(by_seq[13]["detail"]) == POINTER_FIELDS and by_seq[13]["detail"]["event_id"] == "r1"


def test_event_format_bodies_are_the_stored_events(workflow, destinations):
    flow = deploy(workflow, destinations)
    sent = [event("u1", f"2025-12-28T10:00:{s:02d}Z", f"e{s}", amount=s, note="ünïcode") for s in range(5)]
    answers = flow.ingest(sent)

    replay = flow.replay("inline", entity_id="u1", destination="orders", format="event", **WINDOW)

    assert replay.status == "SUCCEEDED"
    assert replay.output["sent_as_pointer"] == 0
    bodies = sorted(
        (json.loads(m["Body"]) for m in destinations.receive(destinations.orders)), key=lambda b: b["replay"]["seq"]
    )
    rows = {row["event_id"]: row for row in flow.index_rows()}
    assert [b["replay"] for b in bodies] == [{"replay_id": "inline", "seq": n} for n in range(1, 6)]
    for body, original, answer in zip(bodies, sent, answers, strict=True):
        assert body["event"] == {
            "source": original["source"],
            "event_type": original["event_type"],
            "entity_id": "u1",
            "event_id": answer["event_id"],
            "event_time": rows[answer["event_id"]]["event_time"],
            "ingest_time": rows[answer["event_id"]]["ingest_time"],
            "payload": original["payload"],
        }


def test_an_event_too_large_for_the_destination_goes_as_a_pointer(workflow, destinations):
    flow = deploy(workflow, destinations)
    # GIVEN one event of ~300 KB (accepted: under MaxBodyBytes) between two small ones
    flow.ingest([event("u1", "2025-12-28T10:00:00Z", "small-1")])
    flow.ingest([event("u1", "2025-12-28T10:00:01Z", "large", blob="x" * 300_000)])
    flow.ingest([event("u1", "2025-12-28T10:00:02Z", "small-2")])

    for destination in ("orders", "bus"):
        replay = flow.replay(
            f"oversize-{destination}", entity_id="u1", destination=destination, format="event", **WINDOW
        )

        # THEN the large one is a pointer body, counted; the others carry the event
        assert replay.status == "SUCCEEDED" and replay.output["sent_as_pointer"] == 1
        if destination == "orders":
            bodies = [json.loads(m["Body"]) for m in destinations.receive(destinations.orders)]
        else:
            bodies = [json.loads(m["Body"])["detail"] for m in destinations.receive(destinations.rule_target)]
        by_id = {b.get("event_id") or b["event"]["event_id"]: b for b in bodies}
        assert sorted(by_id) == ["large", "small-1", "small-2"]
        assert list(by_id["large"]) == POINTER_FIELDS and by_id["large"]["seq"] == 2
        assert by_id["small-1"]["event"]["event_id"] == "small-1"


def test_send_message_batch_partial_failures_to_a_fifo_queue_lose_nothing(workflow, destinations):
    flow = deploy(workflow, destinations, ReplayPageSize=20)
    flow.ingest([event("u1", f"2025-12-28T10:{m // 60:02d}:{m % 60:02d}Z", f"e{m}") for m in range(45)])
    # GIVEN SQS reports every 7th message Failed twice
    faults = FailEntries(lambda seq, attempt: seq % 7 == 0 and attempt <= 2)
    faults.install()

    replay = flow.replay("fifo-faults", entity_id="u1", destination="ordered", **WINDOW)

    assert replay.status == "SUCCEEDED"
    received = destinations.receive(destinations.ordered)
    assert sorted(marking(m)[1] for m in received) == list(range(1, 46))
    assert faults.reported == 2 * len(range(7, 46, 7))


def test_put_events_partial_failures_are_resent_and_lose_nothing(workflow, destinations):
    flow = deploy(workflow, destinations, ReplayPageSize=20)
    flow.ingest([event("u1", f"2025-12-28T10:{m // 60:02d}:{m % 60:02d}Z", f"e{m}") for m in range(35)])
    # GIVEN EventBridge answers every 4th entry with an ErrorCode on its first two attempts
    faults = FailPutEvents(lambda seq, attempt: seq % 4 == 0 and attempt <= 2)
    faults.install()

    replay = flow.replay("bus-faults", entity_id="u1", destination="bus", format="event", **WINDOW)

    assert replay.status == "SUCCEEDED"
    delivered = [json.loads(m["Body"])["detail"] for m in destinations.receive(destinations.rule_target)]
    assert sorted(d["replay"]["seq"] for d in delivered) == list(range(1, 36))
    assert faults.reported == 2 * len(range(4, 36, 4))


@pytest.fixture
def api_destinations(monkeypatch: pytest.MonkeyPatch, destinations: Destinations) -> Destinations:
    """The API process read ReplayDestinations at its cold start; give it this test's."""
    from evreplay.handlers import replay_api
    from evreplay.replay.destinations import parse_destinations

    declared = parse_destinations(destinations.parameter, replay_api.settings.replay_queue_arn)
    monkeypatch.setattr(replay_api.service, "destinations", declared)
    return destinations


def test_get_destinations_lists_the_built_in_queue_first_then_the_declared(workflow, api_destinations):
    flow = deploy(workflow, api_destinations)

    response = flow.stack.gateway.request("GET", "/destinations")

    assert response.status == 200
    assert response.json()["items"] == [
        {"name": "default", "type": "sqs", "arn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:ReplayQueue"},
        {"name": "orders", "type": "sqs", "arn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:orders"},
        {"name": "ordered", "type": "sqs-fifo", "arn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:ordered.fifo"},
        {"name": "bus", "type": "eventbridge", "arn": f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/team-bus"},
    ]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"destination": "nowhere"}, "destination"),
        ({"destination": "no/slash"}, "destination"),
        ({"format": "xml"}, "format"),
        ({"max_events_per_second": 0}, "max_events_per_second"),
        ({"max_events_per_second": 1.5}, "max_events_per_second"),
        ({"max_events_per_second": 10_001}, "max_events_per_second"),
    ],
)
def test_bad_destination_format_or_rate_is_a_400_naming_the_field(workflow, api_destinations, extra, field):
    flow = deploy(workflow, api_destinations)

    response = flow.stack.gateway.request("POST", "/replays", {"entity_id": "u1", **WINDOW, **extra})

    assert response.status == 400, response.body
    assert response.json()["error"]["field"] == field
    assert flow.sfn.list_executions(stateMachineArn=flow.state_machine_arn)["executions"] == []


def test_a_console_start_with_an_unknown_destination_fails_naming_it(workflow, destinations):
    flow = deploy(workflow, destinations)

    flow.start({"entity_id": "u1", **WINDOW, "destination": "nowhere"}, "console-bad-destination")
    (execution,) = flow.wait("console-bad-destination")

    assert execution["status"] == "FAILED"
    assert execution["error"] == "InvalidReplayRequest"
    assert json.loads(execution["cause"])["errorMessage"].startswith("destination: 'nowhere' is not a declared")
