"""`evreplay replay status|wait` and `evreplay aggregates` as a person reads them: ids whole (what
other commands take back), a failure as its error and message (the stack trace with --verbose)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from evreplay.cli.client import ApiClient
from evreplay.cli.main import main

TRACE = [
    '  File "/var/task/evreplay/handlers/validate_replay.py", line 22, in handler\n    return start_replay(\n',
    '  File "/var/task/evreplay/replay/request.py", line 61, in parse_replay_request\n    schemas.check(...)\n',
]
FAILED = {
    "replay_id": "by-hand-2025-12-28",
    "status": "FAILED",
    "execution_arn": "arn:aws:states:us-east-1:123456789012:execution:evreplay-replay:by-hand-2025-12-28",
    "request": {"entity_id": "u1", "end_time": "2025-12-29T00:00:00Z"},
    "requested_by": "console:alice",
    "started_at": "2025-12-28T10:00:00.000000Z",
    "stopped_at": "2025-12-28T10:00:01.000000Z",
    "error": {
        "error": "InvalidReplayRequest",
        "cause": json.dumps(
            {
                "errorMessage": "start_time: required",
                "errorType": "InvalidReplayRequest",
                "requestId": "7f0c",
                "stackTrace": TRACE,
            }
        ),
    },
}
AGGREGATE = {
    "entity_id": "u1",
    "day": "2025-12-28",
    "daily_event_count": 3,
    "counts_by_event_type": {"purchase": 3},
    "input_count": 3,
    "inputs_hash": "ab" * 32,
    "first_event_time": "2025-12-28T10:00:00.000000Z",
    "last_event_time": "2025-12-28T12:00:00.000000Z",
    "created_at": "2025-12-28T13:00:00.000000Z",
    "updated_at": "2025-12-28T13:00:05.000000Z",
}


class FakeApi:
    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers

    def get(self, path: str, **query: Any) -> Any:
        return self.answers[path]

    def pages(self, path: str, max_items: int | None = None, **query: Any) -> list[dict[str, Any]]:
        return list(self.answers[path]["items"])


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> FakeApi:
    fake = FakeApi(
        {
            "/replays/by-hand-2025-12-28": FAILED,
            "/aggregates": {
                "items": [
                    {**AGGREGATE, "replay_id": "by-hand-2025-12-28-before-the-fix"},
                    {**AGGREGATE, "replay_id": "by-hand-2025-12-28-after-the-fix"},
                ],
                "next_cursor": None,
            },
        }
    )
    monkeypatch.setattr(ApiClient, "for_url", classmethod(lambda cls, *args, **kwargs: fake))
    return fake


def test_status_of_a_failed_replay_shows_the_error_and_its_message_not_the_raw_cause(api, capsys) -> None:
    code = main(["replay", "status", "by-hand-2025-12-28"])
    out = capsys.readouterr().out

    assert code == 0
    assert "InvalidReplayRequest: start_time: required" in out
    assert "stackTrace" not in out and "validate_replay.py" not in out and "errorType" not in out
    assert "--verbose" in out


def test_status_verbose_adds_the_stack_trace(api, capsys) -> None:
    main(["replay", "status", "by-hand-2025-12-28", "--verbose"])
    out = capsys.readouterr().out

    assert "InvalidReplayRequest: start_time: required" in out
    assert "validate_replay.py" in out and "parse_replay_request" in out


def test_aggregates_show_whole_replay_ids_even_when_they_share_a_prefix(api, capsys) -> None:
    main(["aggregates", "--entity-id", "u1"])
    out = capsys.readouterr().out

    assert "by-hand-2025-12-28-before-the-fix" in out
    assert "by-hand-2025-12-28-after-the-fix" in out
