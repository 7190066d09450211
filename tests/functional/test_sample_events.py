"""events/: sample Lambda events for `sam local invoke FUNCTION -e events/FUNCTION/NAME.json`, one
folder per function of the template. Each one runs through its function's handler on moto, unchanged,
in the order a real flow takes (ingest, replay, process, read back), and does what it says."""

from __future__ import annotations

import json
import time
from typing import Any

from evreplay.local.runtime import invoke
from evreplay.local.template import project_root
from evreplay.local.workflow import deploy_workflow

from tests.stacks import SESSION, Stack

EVENTS = project_root() / "events"


def sample(function: str, name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / function / name).read_text(encoding="utf-8")))


def run(stack: Stack, function: str, name: str) -> Any:
    return invoke(stack.template.function_handler(function), sample(function, name), function_name=function)


def answer(result: dict[str, Any]) -> tuple[int, Any]:
    return int(result["statusCode"]), json.loads(result["body"])


def finished(execution_arn: str) -> dict[str, Any]:
    """The execution once it is no longer RUNNING (moto runs it in the background)."""
    sfn = SESSION.client("stepfunctions")
    deadline = time.monotonic() + 60
    while (execution := sfn.describe_execution(executionArn=execution_arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, f"{execution_arn} did not finish"
        time.sleep(0.2)
    return dict(execution)


def ingest_samples(stack: Stack) -> None:
    """The ingest samples: three occurrences of user_123 on 2025-12-28, in two partitions."""
    assert answer(run(stack, "IngestFunction", "post-event.json"))[0] == 201
    assert answer(run(stack, "IngestFunction", "post-events-batch.json"))[0] == 200


def json_object(stack: Stack, bucket: str, key: str) -> Any:
    return json.loads(stack.s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def test_every_function_has_samples_and_every_folder_is_a_function(template) -> None:
    folders = {path.name: sorted(path.glob("*.json")) for path in EVENTS.iterdir() if path.is_dir()}

    assert set(folders) == set(template.functions())
    assert all(folders.values())
    assert sorted(path.name for path in EVENTS.iterdir() if path.is_file()) == []


def test_the_samples_carry_a_flow_from_ingest_to_aggregates(stack: Stack) -> None:
    deploy_workflow(stack.template, {name: SESSION.client(name) for name in ("iam", "lambda", "stepfunctions")})

    # ingest: one event, then a batch
    status, stored = answer(run(stack, "IngestFunction", "post-event.json"))
    assert status == 201 and stored["status"] == "ACCEPTED" and stored["s3_key"] in stack.raw_keys()
    status, batch = answer(run(stack, "IngestFunction", "post-events-batch.json"))
    assert status == 200 and [item["status"] for item in batch["results"]] == ["ACCEPTED", "ACCEPTED"]
    status, health = answer(run(stack, "ReplayApiFunction", "get-health.json"))
    assert status == 200 and health["status"] == "ok"
    status, listed = answer(run(stack, "ReplayApiFunction", "list-events.json"))
    assert status == 200 and len(listed["items"]) == 3

    # a replay through the API runs the workflow to the end
    status, started = answer(run(stack, "ReplayApiFunction", "start-replay.json"))
    assert status == 202
    execution = finished(started["execution_arn"])
    assert execution["status"] == "SUCCEEDED" and json.loads(execution["output"])["enqueued"] == 3

    # the workflow's two tasks, given the samples of their state
    state = run(stack, "ValidateReplayFunction", "execution-input.json")
    assert state["replay_id"] == "sample-replay-1" and state["progress"]["enqueued"] == 0
    page = run(stack, "ReplayPageFunction", "page.json")
    assert page["replay_id"] == "sample-replay-1" and page["progress"]["enqueued"] == 3 and page["progress"]["done"]
    # ... and EventBridge's word that its execution ended lands in the replay's record
    recorded = run(stack, "ReplayRecorderFunction", "execution-succeeded.json")
    assert recorded == {"recorded": True, "replay_id": "sample-replay-1", "status": "SUCCEEDED"}

    # the processor, given the sample SQS batch: GIVEN the raw object its message points at
    (record,) = sample("ProcessorFunction", "replay-messages.json")["Records"]
    message = json.loads(record["body"])
    stack.s3.copy_object(
        Bucket=message["s3_bucket"], Key=message["s3_key"], CopySource={"Bucket": stack.bucket, "Key": stored["s3_key"]}
    )
    assert run(stack, "ProcessorFunction", "replay-messages.json") == {"batchItemFailures": []}

    # read back: the aggregate version of that replay, and the stream's lag
    status, aggregates = answer(run(stack, "AggregatesApiFunction", "list-aggregates.json"))
    assert status == 200
    (version,) = [item for item in aggregates["items"] if item["replay_id"] == "sample-replay-1"]
    assert version["daily_event_count"] == 1
    status, lag = answer(run(stack, "InvestigationApiFunction", "lag-stats.json"))
    assert status == 200 and lag["count"] == 2


def test_the_samples_replay_an_entity_list_on_the_distributed_map(stack: Stack) -> None:
    # GIVEN the ingested samples, and the replay's validated state (entity_ids: user_123, user_456)
    ingest_samples(stack)
    queue_url = stack.env["REPLAY_QUEUE_URL"]

    # PlanReplay counts per entity and writes the pre-batched work items the Map reads
    planned = run(stack, "PlanReplayFunction", "entity-list.json")
    plan = planned["plan"]
    assert (plan["items"], plan["entities"], plan["occurrences"], plan["too_large"]) == (1, 1, 3, False)
    (item,) = json_object(stack, plan["bucket"], plan["key"])
    assert item == {"entities": [["user_123", 0, 3]]}

    # ReplayEntities, that item as its Map child gets it: its three messages on the queue
    work = sample("ReplayEntitiesFunction", "work-item.json")
    assert work["entities"] == item["entities"] and work["as_of"] == planned["progress"]["as_of"]
    stepped = run(stack, "ReplayEntitiesFunction", "work-item.json")
    assert stepped["done"] and stepped["totals"]["enqueued"] == 3 and stepped["totals"]["entities_done"] == 1
    messages = stack.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    bodies = sorted((body["seq"], body["entity_id"]) for body in (json.loads(m["Body"]) for m in messages))
    assert bodies == [(1, "user_123"), (2, "user_123"), (3, "user_123")]

    # SummarizeReplay: the result from the item's counters, the plan's counts given back
    summary = run(stack, "SummarizeReplayFunction", "items-done.json")
    assert sample("SummarizeReplayFunction", "items-done.json")["plan"] == plan
    assert (summary["enqueued"], summary["scanned"], summary["occurrences"], summary["truncated"]) == (3, 3, 3, False)


def test_the_samples_reconcile_the_index_with_the_raw_store(stack: Stack) -> None:
    deploy_workflow(stack.template, {name: SESSION.client(name) for name in ("iam", "lambda", "stepfunctions")})
    ingest_samples(stack)

    # POST /reconcile runs the workflow to the end: nothing missing, nothing dangling
    status, started = answer(run(stack, "ReconcileApiFunction", "start-reconcile.json"))
    assert status == 202 and started["request"] == {"start_day": "2025-12-28", "end_day": "2025-12-28", "repair": False}
    execution = finished(started["execution_arn"])
    assert execution["status"] == "SUCCEEDED", execution
    result = json.loads(execution["output"])
    assert (result["objects"], result["rows"], result["missing_rows"], result["partitions"]) == (3, 3, 0, 2)

    # the workflow's three tasks, given the samples of their state: the manifest the Map reads ...
    listed = run(stack, "ReconcileListFunction", "execution-input.json")
    assert listed == sample("ReconcileSummaryFunction", "partitions-done.json")
    manifest = json_object(stack, listed["manifest"]["bucket"], listed["manifest"]["key"])
    partitions = sorted((EVENTS / "ReconcilePartitionFunction").glob("*.json"))
    assert [sample("ReconcilePartitionFunction", path.name)["partition"] for path in partitions] == manifest
    # ... each partition's child step, done at once, its part written ...
    objects = []
    for path in partitions:
        state = run(stack, "ReconcilePartitionFunction", path.name)
        assert state["done"] and state["counts"]["missing_rows"] == state["counts"]["dangling_rows"] == 0
        objects.append(state["counts"]["objects"])
    assert objects == [2, 1]
    # ... and the parts summed into the result GET /reconcile/{id} answers
    summed = run(stack, "ReconcileSummaryFunction", "partitions-done.json")
    assert (summed["objects"], summed["rows"], summed["failed_partitions"]) == (3, 3, 0)
    status, view = answer(run(stack, "ReconcileApiFunction", "get-reconcile.json"))
    assert status == 200 and view["reconcile_id"] == "sample-reconcile-1" and view["status"] == "SUCCEEDED"
    assert view["result"] == summed


def test_sample_files_are_plain_json_without_local_machine_details() -> None:
    for path in EVENTS.rglob("*.json"):
        text = path.read_text(encoding="utf-8")
        json.loads(text)
        assert "/work/" not in text and "/tmp/" not in text, path
