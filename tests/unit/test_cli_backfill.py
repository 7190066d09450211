"""Backfill logic without a network: chunking, keys, checkpoint, retries, resume.

A fake API stands in for POST /events/batch and behaves like the real one where it matters:
an idempotency key seen before returns the first answer and stores nothing new."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from evreplay.cli.backfill import (
    DEFAULT_BACKOFF_SECONDS,
    DEFAULT_RETRIES,
    Backfill,
    BackfillError,
    Checkpoint,
    chunk_lines,
    line_idempotency_key,
    parse_line,
    read_lines,
    retry_waits,
)
from evreplay.cli.client import ApiError
from evreplay.cli.main import main
from evreplay.core.idempotency import IN_PROGRESS_SECONDS

DIGEST = "ab" * 32


def event(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "source": "test",
        "event_type": "tick",
        "entity_id": f"e-{n % 3}",
        "event_time": "2025-06-01T00:00:00Z",
        "payload": {"n": n},
        **extra,
    }


def write_jsonl(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


class FakeApi:
    """POST /events/batch with idempotency: stores each key once, returns the first answer after."""

    def __init__(
        self,
        fail_first: int = 0,
        stop_after_batches: int | None = None,
        max_events: int | None = None,
        fail_code: str = "StorageUnavailable",
    ):
        self.stored: list[dict[str, Any]] = []
        self.answers: dict[str, dict[str, Any]] = {}
        self.batches = 0
        self.fail_first = fail_first  # items reported FAILED on their first attempt
        self.failed_once: set[str] = set()
        self.fail_code = fail_code
        self.stop_after_batches = stop_after_batches
        self.max_events = max_events
        self.lock = threading.Lock()

    def post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
        assert path == "/events/batch"
        events = body["events"]
        with self.lock:
            self.batches += 1
            if self.stop_after_batches is not None and self.batches > self.stop_after_batches:
                raise KeyboardInterrupt  # what Ctrl-C looks like to the running thread
            if self.max_events is not None and len(events) > self.max_events:
                raise ApiError(413, "PayloadTooLarge", "too big", "body")
            results = []
            for index, item in enumerate(events):
                key = item["idempotency_key"]
                if not item["event_time"].endswith("Z"):  # the real API's rule is richer; enough here
                    # What the real API says of a batch item: its position in the batch.
                    error = {
                        "code": "InvalidRequest",
                        "message": f"events[{index}].event_time: timestamp has no UTC offset; add Z or ±hh:mm",
                        "field": f"events[{index}].event_time",
                    }
                    results.append({"index": index, "status": "REJECTED", "error": error})
                    continue
                if key not in self.failed_once and len(self.failed_once) < self.fail_first:
                    self.failed_once.add(key)
                    results.append({"index": index, "status": "FAILED", "error": {"code": self.fail_code}})
                    continue
                if key not in self.answers:
                    self.stored.append(item)
                    self.answers[key] = {"status": "ACCEPTED", "event_id": f"id-{key}"}
                results.append({"index": index, **self.answers[key]})
            return {"results": results}


def make(tmp_path: Path, api: FakeApi, lines: list[Any], **options: Any) -> Backfill:
    source = write_jsonl(tmp_path / "events.jsonl", lines)
    return Backfill(api, source, backoff_seconds=0.0, **options)  # type: ignore[arg-type]


def test_parse_line_derives_a_key_from_file_hash_and_line_number() -> None:
    line = parse_line(7, json.dumps(event(1)), DIGEST)
    assert line is not None and line.event is not None
    assert line.event["idempotency_key"] == line_idempotency_key(DIGEST, 7) == f"backfill:{DIGEST[:32]}:7"


def test_parse_line_keeps_the_producers_own_key() -> None:
    line = parse_line(1, json.dumps(event(1, idempotency_key="mine")), DIGEST)
    assert line is not None and line.event is not None and line.event["idempotency_key"] == "mine"


def test_parse_line_rejects_non_json_and_non_objects_locally_and_skips_blank_lines() -> None:
    assert parse_line(1, "   \n", DIGEST) is None
    bad = parse_line(2, "{nope", DIGEST)
    array = parse_line(3, "[1, 2]", DIGEST)
    assert bad is not None and bad.event is None and bad.error is not None and bad.error["code"] == "InvalidJson"
    assert array is not None and array.event is None and array.error is not None


def test_chunks_are_contiguous_and_respect_count_and_size(tmp_path: Path) -> None:
    # GIVEN 12 events, one of them large
    lines = [event(n) for n in range(12)]
    lines[5]["payload"]["blob"] = "x" * 5000
    source = write_jsonl(tmp_path / "f.jsonl", lines)
    # WHEN chunked at 5 events / 6000 bytes
    chunks = list(chunk_lines(read_lines(source, DIGEST), max_events=5, max_bytes=6000))
    # THEN chunks cover every line once, in order, within both limits
    assert [line.number for chunk in chunks for line in chunk.lines] == list(range(1, 13))
    assert all(len(chunk.events) <= 5 for chunk in chunks)
    assert all(sum(line.size for line in chunk.lines) <= 6000 or len(chunk.lines) == 1 for chunk in chunks)
    assert all(chunk.first == chunk.lines[0].number and chunk.last == chunk.lines[-1].number for chunk in chunks)


def test_backfill_stores_every_line_and_writes_rejects(tmp_path: Path) -> None:
    api = FakeApi()
    naive = event(99)
    naive["event_time"] = "2025-06-01T00:00:00"
    backfill = make(tmp_path, api, [event(0), "not json", event(1), naive, "", event(2)], max_events=2)
    summary = backfill.run()
    assert len(api.stored) == 3
    assert summary.counts == {"ACCEPTED": 3, "DUPLICATE": 0, "REJECTED": 2}
    assert summary.complete
    rejected = [json.loads(line) for line in backfill.rejects_path.read_text().splitlines()]
    assert [entry["line"] for entry in rejected] == [2, 4]
    assert rejected[0]["text"] == "not json"
    # AND a reject names the line and its field, not the position in a batch of this run
    assert rejected[1]["error"] == {
        "code": "InvalidRequest",
        "message": "event_time: timestamp has no UTC offset; add Z or ±hh:mm",
        "field": "event_time",
    }


def test_interrupted_backfill_resumes_without_storing_anything_twice(tmp_path: Path) -> None:
    # GIVEN a run that is interrupted after 3 batches (some chunks may have been stored
    # without being checkpointed, as when a process dies with requests in flight)
    lines = [event(n) for n in range(100)]
    api = FakeApi(stop_after_batches=3)
    first = make(tmp_path, api, lines, max_events=10, concurrency=3)
    with pytest.raises(KeyboardInterrupt):
        first.run()
    done_after_first = Checkpoint.load(first.checkpoint_path, first.digest, "").done
    assert done_after_first, "some chunks were checkpointed before the interruption"
    # WHEN the same command runs again
    api.stop_after_batches = None
    again = Backfill(api, first.path, backoff_seconds=0.0, max_events=10, concurrency=3)  # type: ignore[arg-type]
    summary = again.run()
    # THEN every line is stored exactly once and the counts add up over both runs
    keys = [item["idempotency_key"] for item in api.stored]
    assert len(keys) == len(set(keys)) == 100
    assert summary.complete and summary.counts["ACCEPTED"] == 100
    assert summary.skipped_lines >= 10


def test_resume_refuses_a_checkpoint_of_another_file_version(tmp_path: Path) -> None:
    api = FakeApi()
    make(tmp_path, api, [event(0)]).run()
    write_jsonl(tmp_path / "events.jsonl", [event(0), event(1)])
    with pytest.raises(BackfillError, match="different version"):
        Backfill(api, tmp_path / "events.jsonl")  # type: ignore[arg-type]
    restarted = Backfill(api, tmp_path / "events.jsonl", restart=True, backoff_seconds=0.0)  # type: ignore[arg-type]
    assert restarted.run().complete


def test_items_reported_failed_are_sent_again_until_stored(tmp_path: Path) -> None:
    api = FakeApi(fail_first=3)
    summary = make(tmp_path, api, [event(n) for n in range(5)]).run()
    assert summary.counts["ACCEPTED"] == 5 and len(api.stored) == 5
    assert api.batches == 2


def test_a_too_large_batch_is_split(tmp_path: Path) -> None:
    api = FakeApi(max_events=2)
    summary = make(tmp_path, api, [event(n) for n in range(5)], max_events=5).run()
    assert summary.counts["ACCEPTED"] == 5 and len(api.stored) == 5


def test_unreachable_api_gives_up_with_a_resumable_error(tmp_path: Path) -> None:
    class Down:
        def post(self, *_: Any, **__: Any) -> Any:
            raise ApiError(0, "Unreachable", "connection refused")

    source = write_jsonl(tmp_path / "events.jsonl", [event(0)])
    backfill = Backfill(Down(), source, retries=2, backoff_seconds=0.0)  # type: ignore[arg-type]
    with pytest.raises(BackfillError, match="resume"):
        backfill.run()
    assert Checkpoint.load(backfill.checkpoint_path, backfill.digest, "").done == []


def test_a_refused_batch_stops_the_backfill_and_marks_nothing_done(tmp_path: Path) -> None:
    # GIVEN an API that refuses the request itself (expired credentials)
    class Forbidden:
        def post(self, *_: Any, **__: Any) -> Any:
            raise ApiError(403, "ApiGateway", "The security token included in the request is expired")

    source = write_jsonl(tmp_path / "events.jsonl", [event(0), event(1)])
    backfill = Backfill(Forbidden(), source)  # type: ignore[arg-type]
    # WHEN it runs THEN it stops with the reason, and the lines stay to be sent after the fix
    with pytest.raises(BackfillError, match="expired"):
        backfill.run()
    assert Checkpoint.load(backfill.checkpoint_path, backfill.digest, "").done == []
    assert not backfill.rejects_path.exists()


def test_items_failed_because_their_key_is_held_are_retried_until_each_is_stored_once(tmp_path: Path) -> None:
    # GIVEN an API that answers 409 Conflict (FAILED) for the first attempt of 7 items' keys
    api = FakeApi(fail_first=7, fail_code="Conflict")
    backfill = make(tmp_path, api, [event(n) for n in range(10)])

    # WHEN the backfill runs
    summary = backfill.run()

    # THEN those items were sent again and every line is stored exactly once
    assert summary.complete and summary.counts["ACCEPTED"] == 10
    assert len(api.stored) == 10 and len({item["idempotency_key"] for item in api.stored}) == 10
    assert api.batches == 2


def test_default_retry_schedule_outlasts_the_longest_409() -> None:
    # A key is held at most IN_PROGRESS_SECONDS (README: 409); the backfill keeps retrying longer.
    waits = retry_waits(DEFAULT_RETRIES, DEFAULT_BACKOFF_SECONDS)
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0]
    assert sum(waits) > 2 * IN_PROGRESS_SECONDS


def test_chunk_size_help_shows_its_default(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["backfill", "--help"])

    help_text = " ".join(capsys.readouterr().out.split())
    assert "events per batch, at most 500 (default 500)" in help_text
