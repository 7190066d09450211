"""`evreplay replay start` for entity lists and streams (docs/design.md §4.11): the request it sends, and the
live progress line."""

from __future__ import annotations

from pathlib import Path

import pytest
from evreplay.cli import replays
from evreplay.cli.commands import UsageError, replay_request
from evreplay.cli.main import build_parser

WINDOW = ["--start", "2025-12-28T00:00:00Z", "--end", "2025-12-29T00:00:00Z"]


def parsed(*args: str):
    return build_parser().parse_args(["replay", "start", *args, *WINDOW])


def test_a_stream_with_event_types_and_max_concurrency():
    request = replay_request(parsed("--source", "ios_app", "--event-type", "purchase", "--event-type", "refund",
                                    "--max-concurrency", "4"))  # fmt: skip
    assert request == {
        "source": "ios_app",
        "event_types": ["purchase", "refund"],
        "max_concurrency": 4,
        "start_time": "2025-12-28T00:00:00Z",
        "end_time": "2025-12-29T00:00:00Z",
    }


def test_an_entity_ids_file_is_one_id_a_line(tmp_path: Path):
    ids = tmp_path / "ids.txt"
    ids.write_text("user 1\nuser-2\r\n\nuser-3\n", encoding="utf-8")
    request = replay_request(parsed("--entity-ids-file", str(ids), "--source", "web"))
    assert request["entity_ids"] == ["user 1", "user-2", "user-3"] and request["source"] == "web"
    assert "entity_id" not in request


def test_no_scope_is_a_usage_error_and_two_scopes_are_refused():
    with pytest.raises(UsageError, match="--entity-id, --entity-ids-file, or --source"):
        replay_request(parsed())
    with pytest.raises(SystemExit):
        parsed("--entity-id", "u1", "--entity-ids-file", "ids.txt")


def test_live_progress_shows_entities_done_of_the_total_and_enqueued():
    running = {"status": "RUNNING", "progress": {"entities_total": 30, "entities_done": 12, "enqueued": 240}}
    assert replays.progress_text(running, 3.0) == "RUNNING · 3.0s · entities 12/30 · enqueued 240"
