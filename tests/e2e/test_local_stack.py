"""`evreplay local` end to end: ingest -> replay -> aggregates over HTTP and the CLI, a console-style
start of the state machine through boto3 at the printed endpoint, a poison message reaching the DLQ."""

from __future__ import annotations

import json
import urllib.request
import uuid
from typing import Any

from evreplay.local.template import Template

from tests.builders import DAY, END, START, event_at
from tests.stacks import MAX_RECEIVE_COUNT, RunningStack, wait_for


def aggregate_of(stack: RunningStack, entity: str, replay_id: str) -> dict[str, Any] | None:
    items = stack.api.pages("/aggregates", entity_id=entity, day=DAY)
    return next((item for item in items if item.get("replay_id") == replay_id), None)


def test_local_prints_where_the_api_and_the_data_are_and_health_is_ok(local_stack: RunningStack) -> None:
    output = local_stack.process.output()
    assert local_stack.api_url in output
    assert local_stack.aws_endpoint == local_stack.process.aws_endpoint
    with urllib.request.urlopen(f"{local_stack.api_url}/health", timeout=5) as response:
        assert response.status == 200
        assert json.loads(response.read()) == {"status": "ok", "aws_endpoint": local_stack.aws_endpoint}
    # The data really lives at the printed endpoint: the template's bucket is there.
    buckets = [bucket["Name"] for bucket in local_stack.aws("s3").list_buckets()["Buckets"]]
    assert Template().physical_name("RawBucket") in buckets


def test_ingest_replay_aggregates_through_the_cli_and_http(local_stack: RunningStack) -> None:
    entity = f"e2e-{uuid.uuid4().hex[:8]}"
    # GIVEN one event sent with `evreplay send` from stdin, a batch over HTTP, and a duplicate
    assert local_stack.cli("send", "--json").returncode == 2, "empty stdin is a usage error"
    first = event_at(entity, 60)
    sent = local_stack.cli("send", "--json", stdin=json.dumps(first), check=True)
    assert json.loads(sent.stdout)["status"] == "ACCEPTED"
    batch = local_stack.api.post("/events/batch", {"events": [event_at(entity, 60 * m) for m in (2, 3)] + [first]})
    assert [r["status"] for r in batch["results"]] == ["ACCEPTED", "ACCEPTED", "DUPLICATE"]
    rows = json.loads(
        local_stack.cli("events", "--entity-id", entity, "--include-duplicates", "--json", check=True).stdout
    )
    assert len(rows["items"]) == 4

    # WHEN one day of the entity is replayed with `evreplay replay start --wait`
    started = local_stack.cli(
        "replay", "start", "--entity-id", entity, "--start", START, "--end", END, "--wait", "--json", check=True
    )
    replay = json.loads(started.stdout)

    # THEN the execution succeeded, skipped the duplicate, and recorded who asked
    assert replay["status"] == "SUCCEEDED"
    assert replay["result"]["enqueued"] == 3
    assert replay["result"]["duplicates_skipped"] == 1
    assert replay["requested_by"], "requested_by comes from the request context's identity"
    # AND the processor folded every message into this replay's aggregate version
    version = wait_for(
        lambda: (
            (found := aggregate_of(local_stack, entity, replay["replay_id"])) and found["input_count"] == 3 and found
        ),
        timeout=60,
        what="the processor to fold 3 messages",
    )
    assert version["daily_event_count"] == 3
    assert version["counts_by_event_type"] == {"purchase": 3}
    shown = json.loads(local_stack.cli("aggregates", "--entity-id", entity, "--day", DAY, "--json", check=True).stdout)
    assert any(item["replay_id"] == replay["replay_id"] for item in shown["items"])
    # AND the audit trail lists it, with its history
    listed = json.loads(local_stack.cli("replay", "list", "--entity-id", entity, "--json", check=True).stdout)
    assert replay["replay_id"] in [item["replay_id"] for item in listed["items"]]
    history = local_stack.cli("replay", "history", replay["replay_id"], "--json", check=True)
    assert json.loads(history.stdout)


def test_cli_reports_a_refused_replay_with_a_non_zero_exit(local_stack: RunningStack) -> None:
    refused = local_stack.cli("replay", "start", "--entity-id", "x", "--start", END, "--end", START)
    assert refused.returncode == 1
    assert "HTTP 400" in refused.stderr


def test_console_style_start_through_boto3_at_the_printed_endpoint(local_stack: RunningStack) -> None:
    # GIVEN stored events and the state machine as `aws stepfunctions` sees it at the printed endpoint
    entity = f"console-{uuid.uuid4().hex[:8]}"
    local_stack.api.post("/events/batch", {"events": [event_at(entity, 60 * m, "view") for m in range(5)]})
    sfn = local_stack.aws("stepfunctions")
    arn = _replay_state_machine_arn(sfn)
    # WHEN someone starts it by hand, as from the console
    name = f"console-{uuid.uuid4().hex[:12]}"
    request = {"entity_id": entity, "start_time": START, "end_time": END, "requested_by": "console:e2e-test"}
    execution = sfn.start_execution(stateMachineArn=arn, name=name, input=json.dumps(request))["executionArn"]
    described = wait_for(
        lambda: (d := sfn.describe_execution(executionArn=execution))["status"] != "RUNNING" and d,
        timeout=60,
        what="the console-started execution to end",
    )
    # THEN it runs the same workflow: 5 messages enqueued, folded under the execution's name
    assert described["status"] == "SUCCEEDED", described
    assert json.loads(described["output"])["enqueued"] == 5
    wait_for(
        lambda: (found := aggregate_of(local_stack, entity, name)) and found["input_count"] == 5,
        timeout=60,
        what="aggregates of the console-started replay",
    )
    # AND a bad input fails visibly, naming the error the workflow promises
    bad = sfn.start_execution(
        stateMachineArn=arn, name=f"bad-{uuid.uuid4().hex[:12]}", input=json.dumps({"entity_id": entity})
    )["executionArn"]
    failed = wait_for(
        lambda: (d := sfn.describe_execution(executionArn=bad))["status"] != "RUNNING" and d,
        timeout=60,
        what="the bad execution to end",
    )
    assert failed["status"] == "FAILED"
    assert failed.get("error") == "InvalidReplayRequest"


def test_a_poison_message_lands_in_the_dlq_after_max_receives(local_stack: RunningStack) -> None:
    # GIVEN the template's replay queue and its DLQ, found at the printed endpoint
    template = Template()
    queue_id, dlq_id = _queue_with_redrive(template)
    sqs = local_stack.aws("sqs")
    queue_url = sqs.get_queue_url(QueueName=template.physical_name(queue_id))["QueueUrl"]
    dlq_url = sqs.get_queue_url(QueueName=template.physical_name(dlq_id))["QueueUrl"]
    redrive = json.loads(sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"])
                         ["Attributes"]["RedrivePolicy"])  # fmt: skip
    assert int(redrive["maxReceiveCount"]) == MAX_RECEIVE_COUNT, "the parameter override reached the queue"
    # An operator shortens the visibility timeout so failed receives come back quickly.
    original = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["VisibilityTimeout"])["Attributes"]
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"VisibilityTimeout": "1"})
    try:
        # WHEN a message whose raw object does not exist is put on the replay queue
        marker = f"poison-{uuid.uuid4().hex[:8]}"
        body = {
            "replay_id": marker, "seq": 1, "event_id": "missing", "entity_id": marker,
            "event_time": f"{DAY}T10:00:00.000000Z", "s3_bucket": template.physical_name("RawBucket"),
            "s3_key": f"raw/missing/{marker}.json",
        }  # fmt: skip
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(body))

        # THEN after maxReceiveCount failed receives it is in the DLQ, and no aggregate was made
        def in_dlq() -> dict[str, Any] | None:
            messages = sqs.receive_message(
                QueueUrl=dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=0, AttributeNames=["All"]
            ).get("Messages", [])
            return next((m for m in messages if marker in m["Body"]), None)

        landed = wait_for(in_dlq, timeout=60, what="the poison message in the DLQ", interval=0.5)
        assert int(landed["Attributes"]["ApproximateReceiveCount"]) >= MAX_RECEIVE_COUNT
        assert local_stack.api.pages("/aggregates", entity_id=marker, day=DAY) == []
    finally:
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes=original)


def _replay_state_machine_arn(sfn: Any) -> str:
    template = Template()
    machines = {machine["name"]: machine["stateMachineArn"] for machine in sfn.list_state_machines()["stateMachines"]}
    expected = template.physical_name("ReplayStateMachine")  # the template has a reconcile one too
    assert expected in machines, f"{expected} not in {sorted(machines)}"
    return machines[expected]


def _queue_with_redrive(template: Template) -> tuple[str, str]:
    for logical_id, resource in template.of_type("AWS::SQS::Queue").items():
        redrive = (resource.get("Properties") or {}).get("RedrivePolicy")
        if redrive:
            target = redrive["deadLetterTargetArn"]
            return logical_id, target["Fn::GetAtt"][0]
    raise AssertionError("the template has no queue with a redrive policy")
