"""`evreplay local --data-dir`: stopped with SIGINT and started again, the stack still has its events,
replay records and aggregate versions, and a new replay sends the same messages; killed with -9, it
loses at most the writes of about the last second (and reconcile indexes what lost its row)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from evreplay.cli.client import ApiClient
from evreplay.cli.local_process import LocalStackProcess

from tests.stacks import wait_for

WINDOW = {"start_time": "2025-12-28T00:00:00Z", "end_time": "2025-12-29T00:00:00Z"}


def _start(data_dir: Path, log: Path) -> tuple[LocalStackProcess, ApiClient]:
    process = LocalStackProcess(log_path=log, extra_args=["--data-dir", str(data_dir), "--quiet"], start_timeout=90)
    process.start()
    return process, ApiClient(process.api_url, timeout=60)


def _event(entity_id: str, n: int, event_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "source": "ios_app",
        "event_type": "purchase",
        "entity_id": entity_id,
        "event_time": f"2025-12-28T{n // 60 % 24:02d}:{n % 60:02d}:00Z",
        "payload": {"n": n},
    }
    if event_id:
        body["event_id"] = event_id
    return body


def _events(api: ApiClient, entity_id: str) -> list[dict[str, Any]]:
    answer = api.get("/events", entity_id=entity_id, include_duplicates="true", limit="1000", **WINDOW)
    return list(answer["items"])


def _replay(api: ApiClient, entity_id: str) -> str:
    replay_id = str(api.post("/replays", {"entity_id": entity_id, **WINDOW})["replay_id"])
    wait_for(lambda: api.get(f"/replays/{replay_id}")["status"] == "SUCCEEDED", 60, f"replay {replay_id}")
    return replay_id


LAST = "2025-12-28T00:19:00.000000Z"


def _version(api: ApiClient, entity_id: str, replay_id: str, inputs: int = 20) -> dict[str, Any]:
    """The replay's aggregate version once the processor has folded all `inputs` messages (the
    first/last event times are set by a step after the counts: wait for the last one too)."""

    def found() -> dict[str, Any] | None:
        items = api.get("/aggregates", entity_id=entity_id, day="2025-12-28")["items"]
        done = (i for i in items if i["replay_id"] == replay_id and i["input_count"] == inputs)
        return next((item for item in done if item["last_event_time"] == LAST), None)

    version: dict[str, Any] = wait_for(found, 60, f"aggregate version of {replay_id}")
    return version


def _replay_records(process: LocalStackProcess, replay_id: str) -> list[dict[str, Any]]:
    dynamodb = _aws(process, "dynamodb")
    table = next(name for name in dynamodb.list_tables()["TableNames"] if "ReplayState" in name)
    items = dynamodb.scan(TableName=table)["Items"]
    plain = [{key: TypeDeserializer().deserialize(value) for key, value in item.items()} for item in items]
    return sorted((item for item in plain if replay_id in json.dumps(item, default=str)), key=lambda i: str(i["sk"]))


def _aws(process: LocalStackProcess, service: str) -> Any:
    import boto3

    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    ).client(service, endpoint_url=process.aws_endpoint)  # type: ignore[call-overload]


def test_sigint_then_start_keeps_events_replay_records_and_aggregates(tmp_path: Path) -> None:
    # GIVEN a stack with a data directory, events (one of them twice), a finished replay and its aggregate
    data_dir = tmp_path / "data"
    process, api = _start(data_dir, tmp_path / "first.log")
    try:
        bodies = [_event("keep-1", n) for n in range(20)] + [_event("keep-1", 3)]
        results = api.post("/events/batch", {"events": bodies})["results"]
        assert [r["status"] for r in results].count("DUPLICATE") == 1
        first_replay = _replay(api, "keep-1")
        version = _version(api, "keep-1", first_replay)
        events_before = _events(api, "keep-1")
        records_before = _replay_records(process, first_replay)
        assert records_before, "the replay left no record in the replay state table"
    finally:
        # WHEN it is stopped as Ctrl-C stops it
        assert process.stop() == 0
    assert (data_dir / "FORMAT").exists()
    process, api = _start(data_dir, tmp_path / "second.log")
    try:
        # THEN everything is back, and a new replay sends the same messages (the same events folded)
        # the banner says what it loaded (its line may reach the log a moment after /health answers)
        assert wait_for(lambda: "loaded 21 objects" in process.output(), 30, "the banner's loaded count")
        assert _events(api, "keep-1") == events_before
        assert _replay_records(process, first_replay) == records_before
        after = next(
            item
            for item in api.get("/aggregates", entity_id="keep-1", day="2025-12-28")["items"]
            if item["replay_id"] == first_replay
        )
        assert after == version
        second = _version(api, "keep-1", _replay(api, "keep-1"))
        same = ("daily_event_count", "input_count", "inputs_hash", "counts_by_event_type", "first_event_time")
        assert {name: second[name] for name in same} == {name: version[name] for name in same}
        assert version["input_count"] == 20
    finally:
        assert process.stop() == 0


def test_kill_9_loses_at_most_about_the_last_second_and_reconcile_repairs_the_rest(tmp_path: Path) -> None:
    # GIVEN a stack taking events one by one for ~3 s, each acknowledged at a known time
    data_dir = tmp_path / "data"
    process, api = _start(data_dir, tmp_path / "first.log")
    acked: list[tuple[float, str]] = []
    try:
        began = time.monotonic()
        n = 0
        while time.monotonic() - began < 3.0:
            answer = api.post("/events", _event("crash-1", n, event_id=f"c-{n}"))
            acked.append((time.monotonic(), answer["event_id"]))
            n += 1
    finally:
        # WHEN it is killed without warning
        assert process.process is not None
        process.process.kill()
        killed_at = time.monotonic()
        process.stop()
    process, api = _start(data_dir, tmp_path / "second.log")
    try:
        kept = {row["event_id"] for row in _events(api, "crash-1")}
        lost_ages = [killed_at - at for at, event_id in acked if event_id not in kept]
        print(
            f"\nkill -9: {len(acked)} acknowledged, {len(lost_ages)} lost, oldest lost {max(lost_ages, default=0):.2f}s before the kill"
        )
        # THEN only the last moments are lost: the flusher writes every second (plus its own run time)
        assert max(lost_ages, default=0.0) < 2.0
        assert len(kept) > len(acked) / 3
        # AND a repair indexes any object whose row had not been flushed yet
        command = [sys.executable, "-m", "evreplay.cli.main", "reconcile", "--from", "2025-12-28", "--to", "2025-12-28"]
        command += ["--repair", "--wait", "--json", "--api-url", process.api_url]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        result = json.loads(done.stdout)["result"]
        assert result["missing_rows"] == result["indexed"] and result["dangling_rows"] == 0
        assert len(_events(api, "crash-1")) == result["objects"] >= len(kept)
    finally:
        process.stop()
