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

from tests.conftest import SESSION, Stack

EVENTS = project_root() / "events"


def sample(function: str, name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / function / name).read_text(encoding="utf-8")))


def run(stack: Stack, function: str, name: str) -> Any:
    return invoke(stack.template.function_handler(function), sample(function, name), function_name=function)


def answer(result: dict[str, Any]) -> tuple[int, Any]:
    return int(result["statusCode"]), json.loads(result["body"])


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
    sfn = SESSION.client("stepfunctions")
    deadline = time.monotonic() + 60
    while (execution := sfn.describe_execution(executionArn=started["execution_arn"]))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the sample replay did not finish"
        time.sleep(0.2)
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


def test_sample_files_are_plain_json_without_local_machine_details() -> None:
    for path in EVENTS.rglob("*.json"):
        text = path.read_text(encoding="utf-8")
        json.loads(text)
        assert "/work/" not in text and "/tmp/" not in text, path
