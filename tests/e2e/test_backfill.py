"""`evreplay backfill` of 5 000 events against `evreplay local`, interrupted with Ctrl-C part way and
run again: every event is stored exactly once (one raw object, one index row)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from evreplay.local.template import Template

from tests.stacks import RunningStack, wait_for

EVENTS = 5_000
ENTITIES = 10


def _sigint_as_in_a_terminal() -> None:
    # A runner started in the background (`cmd &`, some CI agents) passes SIGINT on as ignored, and
    # Python then never raises KeyboardInterrupt: give the child what a terminal's Ctrl-C meets.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _checkpoint_lines(path: Path) -> int:
    try:
        done = json.loads(path.read_text())["done"]
    except (OSError, ValueError, KeyError):
        return 0
    return sum(last - first + 1 for first, last in done)


@pytest.mark.slow
def test_backfill_of_5000_events_interrupted_and_resumed_stores_each_once(
    local_stack: RunningStack, tmp_path: Path
) -> None:
    # GIVEN a JSONL file of 5 000 distinct events (no idempotency keys: the CLI derives them)
    source = f"backfill-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "events.jsonl"
    with path.open("w") as handle:
        for n in range(EVENTS):
            handle.write(
                json.dumps(
                    {
                        "source": source,
                        "event_type": "reading",
                        "entity_id": f"{source}-{n % ENTITIES}",
                        "event_time": f"2025-05-{1 + n % 28:02d}T{n % 24:02d}:{n % 60:02d}:{(n // 60) % 60:02d}Z",
                        "payload": {"n": n},
                    }
                )
                + "\n"
            )
    checkpoint = tmp_path / "events.jsonl.checkpoint.json"
    command = [sys.executable, "-m", "evreplay.cli.main", "backfill", str(path), "--api-url", local_stack.api_url]

    # WHEN a first run is interrupted (SIGINT, what Ctrl-C sends) once some chunks are done
    first = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_sigint_as_in_a_terminal
    )
    try:
        # A bound that only stops a hang (an idle 2-core machine needs ~20 s; a loaded one several times that).
        wait_for(lambda: _checkpoint_lines(checkpoint) >= 1000, timeout=300, what="1 000 lines checkpointed")
        first.send_signal(signal.SIGINT)
        _, first_err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(10)
    done_before = _checkpoint_lines(checkpoint)
    assert first.returncode == 130, first_err
    assert done_before < EVENTS, "the interruption came before the end"

    # AND the same command runs again
    began = time.monotonic()
    second = subprocess.run([*command, "--json"], capture_output=True, text=True, timeout=300, check=False)
    assert second.returncode == 0, second.stderr
    summary = json.loads(second.stdout)

    # THEN the summary counts every line once over both runs, the second run skipped the done ones
    assert summary["complete"] is True
    assert (summary["accepted"], summary["duplicate"], summary["rejected"]) == (EVENTS, 0, 0)
    assert summary["skipped_lines"] == done_before
    # AND storage holds exactly one raw object and one index row per event, seen at the AWS endpoint
    template = Template()
    s3 = local_stack.aws("s3")
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=template.physical_name("RawBucket"), Prefix=f"raw/source={source}/"
    ):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    dynamodb = local_stack.aws("dynamodb")
    rows = 0
    for entity in range(ENTITIES):
        for page in dynamodb.get_paginator("query").paginate(
            TableName=template.physical_name("EventIndexTable"),
            KeyConditionExpression="pk = :pk AND begins_with(sk, :t)",
            ExpressionAttributeValues={":pk": {"S": f"E#{source}-{entity}"}, ":t": {"S": "T#"}},
            Select="COUNT",
        ):
            rows += page["Count"]
    assert (len(set(keys)), rows) == (EVENTS, EVENTS), f"{len(keys)} raw objects, {rows} index rows"
    print(f"\nbackfill resume of {EVENTS - done_before} lines took {time.monotonic() - began:.1f}s")
