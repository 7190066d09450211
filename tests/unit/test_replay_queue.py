"""Sending replay messages: 10 per SendMessageBatch, entries reported Failed resent, then SqsSendFailed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from evreplay.core.errors import SqsSendFailed
from evreplay.replay.queue import ReplayMessage
from evreplay.replay.senders import ReplayQueue


class FakeSqs:
    def __init__(self, failing: dict[str, int]) -> None:
        self.failing = dict(failing)  # entry id -> how many more times it fails
        self.calls: list[list[str]] = []
        self.delivered: list[dict[str, Any]] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        self.calls.append([entry["Id"] for entry in Entries])
        failed = []
        for entry in Entries:
            if self.failing.get(entry["Id"], 0) > 0:
                self.failing[entry["Id"]] -= 1
                failed.append({"Id": entry["Id"], "SenderFault": False, "Code": "InternalError"})
            else:
                self.delivered.append(json.loads(entry["MessageBody"]))
        return {"Successful": [], "Failed": failed}


def messages(count: int) -> list[ReplayMessage]:
    return [
        ReplayMessage("r", seq, f"e{seq}", "u", "2025-12-28T00:00:00.000000Z", "b", f"k{seq}")
        for seq in range(1, count + 1)
    ]


def test_batches_of_ten_with_entry_id_the_seq():
    sqs = FakeSqs({})

    report = ReplayQueue(sqs, "url", sleep=lambda _: None).send(messages(23))

    assert [len(call) for call in sqs.calls] == [10, 10, 3]
    assert sqs.calls[0][0] == "1" and report.calls == 3
    assert list(sqs.delivered[0]) == ["replay_id", "seq", "event_id", "entity_id", "event_time", "s3_bucket", "s3_key"]


def test_only_the_failed_entries_are_resent():
    sqs = FakeSqs({"3": 2, "7": 1})

    report = ReplayQueue(sqs, "url", sleep=lambda _: None).send(messages(10))

    assert sqs.calls == [[str(i) for i in range(1, 11)], ["3", "7"], ["3"]]
    assert sorted(m["seq"] for m in sqs.delivered) == list(range(1, 11))
    assert report.resent_entries == 3


def test_entries_that_keep_failing_raise_sqs_send_failed_naming_them():
    sqs = FakeSqs({"4": 99})

    with pytest.raises(SqsSendFailed, match="seq 4"):
        ReplayQueue(sqs, "url", attempts=3, sleep=lambda _: None).send(messages(5))

    assert len(sqs.calls) == 3
