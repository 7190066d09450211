"""Sending replay messages: SendMessageBatch, 10 entries per call (docs/design.md §4.6, §4.8).

botocore's standard retry mode already retries throttling and transient errors of a whole call.
What it cannot see is a successful call that reports some entries `Failed`: those entries (and only
those) are sent again, with backoff, a few times; if they keep failing the page fails with
`SqsSendFailed`, which the state machine retries as a whole page. A resent page repeats the same
(replay_id, seq) pairs, which the processor deduplicates.

A page's batches go out concurrently (`run_batches`, bounded): on AWS each call is a wait, and the
queue is a standard one, so batches have no order to keep.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from evreplay.core.errors import AWS_CALL_ERRORS, SqsSendFailed, aws_error_code
from evreplay.replay.concurrency import DEFAULT_WORKERS, run_batches

BATCH_SIZE = 10
FAILED_ENTRY_ATTEMPTS = 5
FAILED_ENTRY_BACKOFF_SECONDS = 0.05


@dataclass(frozen=True)
class ReplayMessage:
    """One message. The body is exactly the contract's seven fields, in this order."""

    replay_id: str
    seq: int
    event_id: str
    entity_id: str
    event_time: str
    s3_bucket: str
    s3_key: str

    def body(self) -> str:
        return json.dumps(
            {
                "replay_id": self.replay_id,
                "seq": self.seq,
                "event_id": self.event_id,
                "entity_id": self.entity_id,
                "event_time": self.event_time,
                "s3_bucket": self.s3_bucket,
                "s3_key": self.s3_key,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )


@dataclass
class SendReport:
    calls: int = 0  # SendMessageBatch calls made
    resent_entries: int = 0  # entries sent again after SQS reported them Failed


class ReplayQueue:
    def __init__(
        self,
        sqs_client: Any,
        queue_url: str,
        attempts: int = FAILED_ENTRY_ATTEMPTS,
        backoff_seconds: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_workers: int = DEFAULT_WORKERS,
    ) -> None:
        self._sqs = sqs_client
        self.queue_url = queue_url
        self._attempts = attempts
        self._backoff = backoff_seconds
        self._sleep = sleep
        self._workers = max_workers

    @property
    def backoff_seconds(self) -> float:
        return FAILED_ENTRY_BACKOFF_SECONDS if self._backoff is None else self._backoff

    def send(self, messages: Sequence[ReplayMessage]) -> SendReport:
        batches = [
            [{"Id": str(m.seq), "MessageBody": m.body()} for m in messages[start : start + BATCH_SIZE]]
            for start in range(0, len(messages), BATCH_SIZE)
        ]
        report = SendReport()
        for batch in run_batches(batches, self._send_batch, max_workers=self._workers):
            report.calls += batch.calls
            report.resent_entries += batch.resent_entries
        return report

    def _send_batch(self, entries: list[dict[str, str]]) -> SendReport:
        """One batch, its Failed entries resent; what it took (a report of its own: batches run on
        several threads)."""
        report = SendReport()
        pending = entries
        failures: list[dict[str, Any]] = []
        for attempt in range(self._attempts):
            if attempt:
                self._sleep(self.backoff_seconds * 2 ** (attempt - 1))
                report.resent_entries += len(pending)
            try:
                response = self._sqs.send_message_batch(QueueUrl=self.queue_url, Entries=pending)
            except AWS_CALL_ERRORS as exc:
                raise SqsSendFailed(f"SendMessageBatch failed ({aws_error_code(exc) or 'error'})") from exc
            report.calls += 1
            failures = list(response.get("Failed") or [])
            if not failures:
                return report
            failed_ids = {failure["Id"] for failure in failures}
            pending = [entry for entry in pending if entry["Id"] in failed_ids]
        codes = sorted({str(failure.get("Code")) for failure in failures})
        raise SqsSendFailed(
            f"{len(pending)} message(s) still reported Failed after {self._attempts} attempts "
            f"(seq {', '.join(entry['Id'] for entry in pending)}; codes {', '.join(codes)})"
        )
