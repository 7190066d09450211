"""A stream replay of 2 000 entities end to end on `evreplay local` (docs/design.md §4.11): ingested through
the API, replayed as one request (the Distributed Map on moto's interpreter in the child process), every
message processed into aggregates, which are checked for every entity."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from evreplay.cli.client import ApiClient
from evreplay.cli.local_process import LocalStackProcess

from tests.stacks import RunningStack, printed_aws_endpoint, wait_for

ENTITIES = 2_000
DAY = "2025-12-28"


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """A stack of its own: 2 000 replay messages keep a stack's processor busy for a while, and the
    other end-to-end tests share theirs."""
    log = tmp_path_factory.mktemp("stream") / "evreplay-local.log"
    process = LocalStackProcess(log_path=log, start_timeout=90)
    process.start()
    try:
        yield RunningStack(process, ApiClient(process.api_url, timeout=120), printed_aws_endpoint(process))
    finally:
        process.stop()


@pytest.mark.slow
def test_a_stream_replay_of_2000_entities_reaches_every_entity_aggregate(own_stack: RunningStack) -> None:
    api = own_stack.api
    tag = uuid.uuid4().hex[:8]
    source = f"stream{tag}"
    entities = [f"{tag}-{n:04d}" for n in range(ENTITIES)]
    # GIVEN one event per entity, a duplicate arrival for every tenth, and events of another source
    events = [
        {
            "source": source,
            "event_type": "purchase" if n % 2 else "view",
            "entity_id": entity,
            "event_time": f"{DAY}T{n % 24:02d}:{n % 60:02d}:00Z",
            "event_id": f"e{n}",
            "payload": {"n": n},
        }
        for n, entity in enumerate(entities)
    ]
    repeats = events[::10]
    noise = [{**body, "source": f"other{tag}", "event_id": f"x{n}"} for n, body in enumerate(events[:50])]
    for start in range(0, len(events + repeats + noise), 500):
        chunk = (events + repeats + noise)[start : start + 500]
        assert all(
            r["status"] in ("ACCEPTED", "DUPLICATE") for r in api.post("/events/batch", {"events": chunk})["results"]
        )

    # WHEN the whole stream is replayed in one request
    started = time.monotonic()
    replay_id = api.post(
        "/replays",
        {"source": source, "start_time": f"{DAY}T00:00:00Z", "end_time": "2025-12-29T00:00:00Z", "limit": 10_000},
    )["replay_id"]
    replay = wait_for(
        lambda: (r := api.get(f"/replays/{replay_id}"))["status"] != "RUNNING" and r,
        300,
        "the stream replay to end",
        1.0,
    )
    print(f"\nSTREAM-E2E replay of {ENTITIES} entities: {time.monotonic() - started:.1f}s", flush=True)

    # THEN one message per (entity, event_id), the repeats skipped, no other source
    assert replay["status"] == "SUCCEEDED", replay
    result = replay["result"]
    assert (result["entities"], result["occurrences"]) == (ENTITIES, ENTITIES + len(repeats))
    assert (result["enqueued"], result["duplicates_skipped"]) == (ENTITIES, len(repeats))

    # AND every entity's aggregate under this replay counts its one event
    def aggregate(entity: str) -> dict:
        items = api.get("/aggregates", entity_id=entity, day=DAY)["items"]
        return next((item for item in items if item["replay_id"] == replay_id), {})

    sqs = own_stack.aws("sqs")
    queue = next(url for url in sqs.list_queues()["QueueUrls"] if url.endswith("/ReplayQueue"))

    def drained() -> bool:
        counts = sqs.get_queue_attributes(
            QueueUrl=queue,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return all(value == "0" for value in counts.values()) and aggregate(entities[-1]).get("input_count") == 1

    wait_for(drained, 600, "the processor to fold the replay in", 1.0)
    with ThreadPoolExecutor(max_workers=8) as pool:
        found = list(pool.map(aggregate, entities))
    assert [item.get("input_count") for item in found] == [1] * ENTITIES
    types = {n: ("purchase" if n % 2 else "view") for n in range(ENTITIES)}
    assert all(item["counts_by_event_type"] == {types[n]: 1} for n, item in enumerate(found))
