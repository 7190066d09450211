"""`evreplay local --parameter EnableProcessor=false`: the stack a team deploys when its own consumer
reads the replay queue. No processor exists, so a replay's messages wait on the queue for that
consumer, and no aggregate is written."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from evreplay.cli.client import ApiClient
from evreplay.cli.local_process import LocalStackProcess

from tests.stacks import wait_for

ENTITY = "consumer-owned-1"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    log = tmp_path_factory.mktemp("no-processor") / "evreplay-local.log"
    with LocalStackProcess(
        log_path=log, extra_args=["--parameter", "EnableProcessor=false"], start_timeout=90
    ) as running:
        yield running


def test_replay_messages_wait_on_the_queue_for_the_teams_consumer(stack: LocalStackProcess) -> None:
    api = ApiClient(stack.api_url, timeout=60)
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    sqs = session.client("sqs", endpoint_url=stack.aws_endpoint)  # type: ignore[call-overload]
    functions = session.client("lambda", endpoint_url=stack.aws_endpoint)  # type: ignore[call-overload]
    # GIVEN three stored events
    for minute in range(3):
        api.post(
            "/events",
            {"source": "web", "event_type": "view", "entity_id": ENTITY,
             "event_time": f"2025-12-28T10:0{minute}:00Z", "payload": {"n": minute}},
        )  # fmt: skip

    # WHEN they are replayed
    started = api.post(
        "/replays", {"entity_id": ENTITY, "start_time": "2025-12-28T00:00:00Z", "end_time": "2025-12-29T00:00:00Z"}
    )
    replay = wait_for(
        lambda: (r := api.get(f"/replays/{started['replay_id']}"))["status"] != "RUNNING" and r,
        timeout=60,
        what="the replay to finish",
    )

    # THEN every message is on the replay queue, unconsumed, and nothing was aggregated
    assert replay["status"] == "SUCCEEDED" and replay["result"]["enqueued"] == 3
    queue_url = sqs.get_queue_url(QueueName="ReplayQueue")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "3"
    assert api.get("/aggregates", entity_id=ENTITY, day="2025-12-28")["items"] == []
    names = {f["FunctionName"] for f in functions.list_functions()["Functions"]}
    assert "ProcessorFunction" not in names and "ReplayPageFunction" in names
