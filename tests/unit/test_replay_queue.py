"""Sending replay messages: 10 per SendMessageBatch, entries reported Failed resent, then SqsSendFailed."""

from __future__ import annotations

import json
import threading
import time
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

        self.lock = threading.Lock()
        self.running = self.most_at_once = 0

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        with self.lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        time.sleep(0.002)  # a call's round trip, so concurrent calls overlap
        with self.lock:
            self.running -= 1
            return self._answer(Entries)

    def _answer(self, Entries: list[dict[str, str]]) -> dict[str, Any]:
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

    report = ReplayQueue(sqs, "url", sleep=lambda _: None, max_workers=1).send(messages(23))

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


def test_a_page_of_batches_goes_out_concurrently_each_entry_once():
    sqs = FakeSqs({"13": 1, "57": 2})

    report = ReplayQueue(sqs, "url", sleep=lambda _: None, max_workers=4).send(messages(100))

    assert sorted(m["seq"] for m in sqs.delivered) == list(range(1, 101))
    assert 1 < sqs.most_at_once <= 4
    assert report.calls == 10 + 3 and report.resent_entries == 3  # every Failed entry still resent


def test_a_batch_that_keeps_failing_fails_the_send_after_the_others_finish():
    sqs = FakeSqs({"24": 99})

    with pytest.raises(SqsSendFailed, match="seq 24"):
        ReplayQueue(sqs, "url", attempts=3, sleep=lambda _: None, max_workers=4).send(messages(100))

    assert sqs.running == 0
