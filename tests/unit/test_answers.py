"""Answers kept as their exact text, and read back from what older records stored."""

from __future__ import annotations

import json

from evreplay.core.answers import Answer, json_text


def test_the_text_survives_a_store_that_sorts_keys() -> None:
    answer = Answer.of(201, {"event_id": "e1", "status": "ACCEPTED", "entity_id": "usér"})
    # Powertools keeps a record as json.dumps(..., sort_keys=True) and reads it back with json.loads
    kept = json.loads(json.dumps(answer.stored(), sort_keys=True))

    back = Answer.from_stored(kept, 201)

    assert back == answer
    assert back.text == '{"event_id":"e1","status":"ACCEPTED","entity_id":"usér"}'


def test_records_written_before_the_text_was_kept_are_read_back_with_their_content() -> None:
    ingest = Answer.from_stored({"status_code": 201, "body": {"status": "ACCEPTED", "event_id": "e1"}}, 201)
    replay = Answer.from_stored({"execution_arn": "arn:x", "replay_id": "r1", "status": "RUNNING"}, 202)

    assert (ingest.status_code, ingest.body) == (201, {"status": "ACCEPTED", "event_id": "e1"})
    assert (replay.status_code, replay.body["replay_id"]) == (202, "r1")
    assert json_text(replay.body) == replay.text
